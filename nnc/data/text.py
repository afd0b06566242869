"""Character-level text: the bundled corpora, UTF-8 files, a vocabulary and windows.

A recipe names its text with ``data text(sonnets)`` (a corpus shipped in this folder,
:data:`nnc.ir.datasets.CORPORA`) or ``data text("notes.txt")`` (a UTF-8 file, relative
to the .nn file). Characters become class numbers through a :class:`Vocabulary`: every
distinct character of the training text sorted by code point, or, with ``vocabulary =
"chars.txt"``, the characters of that file in the order they first appear. The model's
input ``int64[L]`` sets the window length: sample ``i`` is characters ``iL .. iL+L-1``
and its targets the characters one further on, ``iL+1 .. iL+L``, so a causal model
learns to predict each next character (``cross_entropy`` at every position).

>>> v = Vocabulary.of_text("abracadabra")
>>> v.characters, v.encode("cab", "example").tolist()
('abcdr', [2, 0, 1])
>>> x, y = windows(v.encode("abracadabra", "example"), 4)
>>> v.decode(x[0]), v.decode(y[0]), len(x)
('abra', 'brac', 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnc.data.samples import Samples
from nnc.errors import DataError, Span, did_you_mean
from nnc.ir.datasets import CORPORA
from nnc.ir.training import TextData
from nnc.userfiles import read_regular

PACKAGE_DIR = Path(__file__).resolve().parent

# The largest text file read whole: 256 MiB (its one-hot targets are far larger).
MAX_TEXT_BYTES = 2**28


@dataclass(frozen=True)
class Vocabulary:
    """The characters a model's classes stand for: class ``k`` is ``characters[k]``."""

    characters: str
    source: str = ""

    def __len__(self) -> int:
        return len(self.characters)

    @classmethod
    def of_text(cls, text: str, source: str = "") -> Vocabulary:
        """Every distinct character of ``text``, sorted by code point."""
        return cls("".join(sorted(set(text))), source)

    @classmethod
    def in_order(cls, text: str, source: str = "") -> Vocabulary:
        """The distinct characters of ``text`` in the order they first appear."""
        return cls("".join(dict.fromkeys(text)), source)

    def encode(self, text: str, where: str) -> np.ndarray:
        """The class numbers of ``text`` (int64), or a DataError pointing at the first
        character outside the vocabulary (line and column of ``where``)."""
        points = _code_points(text)
        table = _code_points(self.characters)
        order = np.argsort(table)
        sorted_table = table[order]
        pos = np.searchsorted(sorted_table, points)
        pos = np.minimum(pos, max(len(sorted_table) - 1, 0))
        known = sorted_table[pos] == points if len(sorted_table) else np.zeros(len(points), bool)
        if not known.all():
            raise _unknown_character(text, int(np.argmin(known)), where, self)
        return order[pos].astype(np.int64)

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """The characters of class numbers ``ids``."""
        return "".join(self.characters[int(i)] for i in np.asarray(ids).reshape(-1))


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _unknown_character(text: str, index: int, where: str, vocabulary: Vocabulary) -> DataError:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    char = text[index]
    origin = f" (from {vocabulary.source})" if vocabulary.source else ""
    error = DataError(
        f"character {char!r} (U+{ord(char):04X}) is not in the vocabulary of "
        f"{len(vocabulary)} characters{origin}",
        Span(file=where, line=line, col=col, end_line=line, end_col=col + 1),
        hint="add it to the vocabulary file" if vocabulary.source else None,
    )
    return error.with_source(text)  # type: ignore[return-value]


def read_text_file(path: Path) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped, ``\\r\\n`` read as
    ``\\n``), or a DataError naming the file."""
    try:
        data = read_regular(path, MAX_TEXT_BYTES, DataError)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path} is not UTF-8 text (line {line}, byte {exc.start}: {exc.reason})"
        ) from None
    return text.replace("\r\n", "\n")


def corpus_text(name: str) -> str:
    """The text of a bundled corpus."""
    info = CORPORA.get(name)
    if info is None:
        raise DataError(
            f"unknown text corpus '{name}'. Available: {', '.join(sorted(CORPORA))}",
            hint=did_you_mean(name, CORPORA),
        )
    path = PACKAGE_DIR / info.file
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"the packaged text {path} is missing or damaged ({exc})", hint="reinstall nnc"
        ) from None


def resolve(path: str, base: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def source_text(source: TextData, base: Path | None = None) -> str:
    """The text a ``text(...)`` source names."""
    if source.corpus is not None:
        return corpus_text(source.corpus)
    if source.path is None:
        raise DataError("text(...) names neither a corpus nor a file")
    return read_text_file(resolve(source.path, base))


def vocabulary_of(
    source: TextData, base: Path | None = None, text: str | None = None
) -> Vocabulary:
    """The vocabulary of a training source: its ``vocabulary`` file's characters in
    order, else the distinct characters of its text (``text``, when already read)."""
    if source.vocabulary is not None:
        path = resolve(source.vocabulary, base)
        chars = read_text_file(path)
        if not chars:
            raise DataError(f"the vocabulary file {path} is empty")
        return Vocabulary.in_order(chars, str(path))
    return Vocabulary.of_text(source_text(source, base) if text is None else text)


def windows(ids: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``[n, length]`` and next-character targets ``[n, length]`` from consecutive,
    non-overlapping windows of ``ids``: ``n = (len(ids) - 1) // length``."""
    n = (len(ids) - 1) // length
    x = ids[: n * length].reshape(n, length)
    y = ids[1 : n * length + 1].reshape(n, length)
    return x, y


def text_samples(
    source: TextData, length: int, vocabulary: Vocabulary, base: Path | None = None
) -> Samples:
    """The windows of a text as samples: ``x`` class numbers ``[n, length]`` and ``y``
    the next characters ``[n, length]`` (both int64)."""
    text = source_text(source, base)
    where = source.path if source.path is not None else f"<corpus {source.corpus}>"
    ids = vocabulary.encode(text, where)
    if len(ids) < length + 1:
        raise DataError(
            f"{source.label} holds {len(ids):,} characters; windows of the model's "
            f"{length} need at least {length + 1}"
        )
    x, y = windows(ids, length)
    return Samples(x=x, y=y, source=source.label, classes=len(vocabulary))
