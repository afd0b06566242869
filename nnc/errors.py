"""Typed errors with source locations.

Every user-facing failure in nnc is an :class:`NncError`. When it knows where in a
``.nn`` file the problem is, it renders as ``file:line:col: message`` followed by the
source line and a caret under the offending text, the way compilers do.

>>> err = ShapeError("dense expects a vector input. Received: [16, 4, 4]",
...                  Span(file="m.nn", line=3, col=5, end_line=3, end_col=14))
>>> print(err.render("model M {\\n  input x: [16, 4, 4]\\n    dense(10)\\n}\\n"))
m.nn:3:5: error: dense expects a vector input. Received: [16, 4, 4]
    3 |     dense(10)
      |     ^^^^^^^^^
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A region of a source file; lines and columns are 1-based, ``end_col`` exclusive.

    A plain slotted dataclass rather than a pydantic model: every syntax-tree and IR
    node carries one, and a pydantic instance costs about 1 KB where this costs about
    110 bytes (a 1 MB spec holds some 200,000 of them). IR fields typed ``Span`` still
    validate and serialise through pydantic.
    """

    file: str = "<string>"
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class NncError(Exception):
    """Base class of every error nnc reports to a user."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source: str | None = None

    def with_source(self, source: str) -> NncError:
        """Attach the text the span points into, so :meth:`render` can quote it."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"

    def render(self, source: str | None = None) -> str:
        """The compiler-style report: location, message, source line and caret.

        Control characters from the input (a terminal escape sequence in a file name,
        a carriage return in a CSV cell, a bidirectional override in a spec) are shown
        escaped, so a hostile file cannot rewrite the user's terminal or disguise the
        line it quotes.
        """
        text = source if source is not None else self.source
        message = visible(self.message, keep="\n")
        head = f"{visible(str(self.span))}: error: {message}" if self.span else f"error: {message}"
        lines = [head]
        if self.span is not None and text is not None:
            src_lines = source_lines(text)
            if 1 <= self.span.line <= len(src_lines):
                raw = src_lines[self.span.line - 1].expandtabs(1)
                line_text = visible(raw)
                gutter = f"{self.span.line:>5} | "
                lines.append(gutter + line_text)
                # Columns count characters of the raw line; escapes make some wider.
                first = max(self.span.col - 1, 0)
                start = len(visible(raw[:first]))
                if self.span.end_line == self.span.line and self.span.end_col > self.span.col:
                    width = len(visible(raw[first : self.span.end_col - 1]))
                else:
                    width = max(len(line_text) - start, 1)
                width = max(1, min(width, max(len(line_text) - start, 1)))
                lines.append(" " * (len(gutter) - 2) + "| " + " " * start + "^" * width)
        if self.hint:
            hint = visible(self.hint, keep="\n")
            lines.append(f"  hint: {hint}")
        return "\n".join(lines)


# Bidirectional controls reorder how a line is displayed ("Trojan Source").
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def source_lines(text: str) -> list[str]:
    r"""The lines of a source text as every span counts them: split at "\n" only (the
    parser's rule; U+2028, U+2029, \x0b, \x0c and \x85 are characters of a line, as
    in a comment), without a final empty line after a closing newline, and without
    the "\r" of a CRLF ending.

    >>> source_lines("a\u2028b\r\nc\n")
    ['a\u2028b', 'c']
    """
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def visible(text: str, keep: str = "") -> str:
    """``text`` with control characters (but those in ``keep``) and bidirectional
    overrides written as escapes, for printing to a terminal.

    >>> visible("a\\x1b[2Jb\\rc")
    'a\\\\x1b[2Jb\\\\rc'
    """
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    out = []
    for ch in text:
        if ch in keep or (ch.isprintable() and ch not in _BIDI) or ch == " ":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


class ParseError(NncError):
    """The text is not valid .nn syntax."""


class NameResolutionError(NncError):
    """An unknown, duplicate or undefined name."""


class ArgumentError(NncError):
    """A call received the wrong number or type of arguments."""


class ShapeError(NncError):
    """Tensor shapes do not fit an op's rule, or a symbolic dim cannot be resolved."""


class GraphError(NncError):
    """The model graph is malformed: a cycle, a dangling input, a missing output."""


class RecipeError(NncError):
    """A train recipe is inconsistent with its models or data."""


class ResourceError(NncError):
    """A spec would exceed a resource budget (memory, depth, sequence length)."""


class DataError(NncError):
    """Training or prediction data is missing, malformed or does not fit the model."""


class TrainingError(NncError):
    """Training cannot go on: the loss diverged, or a run cannot be resumed."""


class WorkerError(TrainingError):
    """A data-parallel worker failed (killed, crashed, or cut off from the others), so
    every worker was stopped; names the rank."""

    def __init__(self, message: str, rank: int | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.rank = rank


class WeightsError(NncError):
    """A weight or checkpoint file is missing, corrupted or does not fit the model."""


class RewriteError(NncError):
    """A rewrite or pass cannot apply as asked, or produced a program that does not
    check; the message names the pass."""


class BackendError(NncError):
    """A backend cannot lower or run something, or its framework is unavailable."""


class UnsupportedOpError(BackendError):
    """An op the IR knows but a backend cannot lower; names the op and the backend."""

    def __init__(self, op: str, backend: str, span: Span | None = None, detail: str = ""):
        extra = f": {detail}" if detail else ""
        super().__init__(f"op '{op}' is not supported by the {backend} backend{extra}", span)
        self.op = op
        self.backend = backend


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A "did you mean ...?" hint for ``name``, or None when nothing is close.

    >>> did_you_mean("desne", ["dense", "conv2d", "dropout"])
    "did you mean 'dense'?"
    """
    import difflib  # only an error needs it: not on `nnc check`'s way

    matches = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
