"""Generated Python as ``ruff format`` writes it, for the code generators whose
lowerings write ``repr`` literals and long calls (torch, numpy): double quotes where
that needs no new escape, and long ``target = call(arguments)`` lines split."""

from __future__ import annotations

import io
import re
import tokenize


def double_quoted(source: str) -> str:
    """``source`` with its single-quoted strings double-quoted where that needs no new
    escape, as ``ruff format`` writes them (the lowerings write ``repr`` literals)."""
    out: list[str] = []
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    last = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.STRING:
            continue  # from Python 3.12 on f-strings are other tokens: left as written
        start = offsets[token.start[0] - 1] + token.start[1]
        text = token.string
        prefix = re.match(r"[A-Za-z]*", text)
        assert prefix is not None
        body = text[prefix.end() :]
        if body.startswith("'''") or not body.startswith("'") or '"' in body or "\\'" in body:
            continue
        out.append(source[last:start])
        out.append(f'{text[: prefix.end()]}"{body[1:-1]}"')
        last = start + len(text)
    out.append(source[last:])
    return "".join(out)


LINE_LENGTH = 100  # nnc's own ruff setting, which generated files follow


def wrap_long_lines(source: str) -> str:
    """Lines over :data:`LINE_LENGTH` of the form ``target = call(arguments)`` split
    as ``ruff format`` splits them: the arguments on a line of their own (comments
    are left alone)."""
    out = []
    for line in source.splitlines():
        code = not line.lstrip().startswith("#")
        if code and len(line) > LINE_LENGTH and line.endswith(")") and "(" in line:
            indent = line[: len(line) - len(line.lstrip())]
            opening = _matching_open(line)
            if opening is not None:
                head, arguments = line[: opening + 1], line[opening + 1 : -1]
                out += [head, f"{indent}    {arguments}", f"{indent})"]
                continue
        out.append(line)
    return "\n".join(out) + "\n"


def _matching_open(line: str) -> int | None:
    """The index of the parenthesis that the line's last one closes (None when a
    string literal makes it unsafe to tell)."""
    if "'" in line or '"' in line:
        return None
    depth = 0
    for i in range(len(line) - 1, -1, -1):
        if line[i] == ")":
            depth += 1
        elif line[i] == "(":
            depth -= 1
            if depth == 0:
                return i
    return None


__all__ = ["LINE_LENGTH", "double_quoted", "wrap_long_lines"]
