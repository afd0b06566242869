"""Users' data files: CSV with a header row, and NPZ archives.

Every problem is a :class:`~nnc.errors.DataError` that names the file and, for a
CSV, the line and column; where it can, it points a caret at the offending cell::

    houses.csv:4:12: error: column 'rooms' holds 'three', which is not a number
        4 | 120.5,30,three,1
          |          ^^^^^

A CSV's label column is named by ``label = name`` and is the last column by default.
An NPZ holds its features in ``x`` and its targets in ``y`` (or in the array that
``label`` names). Files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path

import numpy as np

from nnc.data.samples import Samples
from nnc.errors import DataError, Span, did_you_mean
from nnc.ir.types import FLOAT32_MAX
from nnc.ir.weights import check_npz_sizes
from nnc.userfiles import open_regular, read_regular

# The largest data file read whole (a CSV): 2 GiB.
MAX_DATA_BYTES = 2**31

SUFFIXES = (".csv", ".npz")


def read_data_file(path: str | Path, label: str | None = None, *, targets: bool = True) -> Samples:
    """Read features (and, with ``targets``, the label column or array) from a file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unknown data file type '{path.suffix or '(none)'}'; expected a .csv file "
            "with a header row or a .npz archive with arrays 'x' and 'y'"
        )
    if not path.exists():
        raise DataError(f"no such data file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected a {suffix} file")
    if suffix == ".csv":
        return read_csv(path, label, targets=targets)
    return read_npz(path, label, targets=targets)


# -- CSV ---------------------------------------------------------------------------


def read_csv(path: Path, label: str | None = None, *, targets: bool = True) -> Samples:
    """Read a CSV file: a header row naming the columns, then one numeric row per sample.

    With ``targets``, the column ``label`` (default: the last one) holds the targets;
    without, ``label`` (if given and present) is left out and every other column is
    a feature.
    """
    try:
        text = read_regular(path, MAX_DATA_BYTES, DataError).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    lines = text.splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise DataError(
            f"{path} is empty; expected a header row naming the columns, then one row per sample"
        )
    header_line, header_text = numbered[0]
    header = [name.strip() for name in _cells(path, text, header_line, header_text)]
    _check_header(path, header, header_line, header_text, text)
    rows = numbered[1:]
    if not rows:
        raise DataError(f"{path} has a header row but no data rows")

    values = np.empty((len(rows), len(header)), dtype=np.float64)
    line_numbers = np.empty(len(rows), dtype=np.int64)
    for r, (number, line) in enumerate(rows):
        cells = _cells(path, text, number, line)
        if len(cells) != len(header):
            raise DataError(
                f"line {number} has {len(cells)} values but the header has {len(header)} "
                f"columns ({', '.join(header)})",
                Span(file=str(path), line=number, col=1, end_line=number, end_col=len(line) + 1),
            ).with_source(text)
        for c, cell in enumerate(cells):
            values[r, c] = _number(path, text, rows, r, c, cell, header)
        line_numbers[r] = number
    _check_float32(path, text, rows, values, header)

    if targets:
        label_index = _label_column(path, header, label)
        features = [c for c in range(len(header)) if c != label_index]
        if not features:
            raise DataError(f"{path} has only the label column '{header[label_index]}'")
        return Samples(
            x=values[:, features].astype(np.float32),
            y=values[:, label_index],
            source=str(path),
            lines=line_numbers,
        )
    keep = [c for c, name in enumerate(header) if label is None or name != label]
    return Samples(
        x=values[:, keep].astype(np.float32), y=None, source=str(path), lines=line_numbers
    )


def _check_header(path: Path, header: list[str], line: int, text: str, source: str) -> None:
    seen: set[str] = set()
    for c, name in enumerate(header):
        span = _cell_span(path, line, text, c)
        if not name:
            raise DataError(f"the header's column {c + 1} has no name", span).with_source(source)
        if name in seen:
            raise DataError(f"the header names column '{name}' twice", span).with_source(source)
        seen.add(name)
        if _is_number(name):
            raise DataError(
                f"the first row should be a header naming the columns; received the number "
                f"'{name}' in column {c + 1}",
                span,
                hint="add a header row such as 'x1,x2,label'",
            ).with_source(source)


def _number(
    path: Path,
    source: str,
    rows: list[tuple[int, str]],
    r: int,
    c: int,
    cell: str,
    header: list[str],
) -> float:
    number, line = rows[r]
    text = cell.strip()
    column = f"column '{header[c]}'"
    if not text:
        raise DataError(
            f"{column} is empty on line {number}; every cell needs a number",
            _cell_span(path, number, line, c),
        ).with_source(source)
    try:
        value = float(text)
    except ValueError:
        numeric_elsewhere = any(
            _is_number(_cell(other, c)) for i, (_, other) in enumerate(rows) if i != r
        )
        what = (
            f"{column} mixes numbers and text: line {number} holds '{text}'"
            if numeric_elsewhere
            else f"{column} holds '{text}', which is not a number"
        )
        raise DataError(
            what,
            _cell_span(path, number, line, c),
            hint="nnc reads numeric columns only; encode categories as numbers",
        ).with_source(source) from None
    if not math.isfinite(value):
        kind = "NaN" if math.isnan(value) else "an infinite value"
        raise DataError(
            f"{column} holds {kind} on line {number} (row {r + 1})",
            _cell_span(path, number, line, c),
            hint="remove or fill in missing values before training",
        ).with_source(source)
    return value


def _cells(path: Path, source: str, number: int, line: str) -> list[str]:
    """The cells of one line; what the csv module refuses (a field over its size
    limit, a NUL byte) is a DataError on that line."""
    try:
        return next(csv.reader([line]))
    except csv.Error as exc:
        raise DataError(
            f"line {number} cannot be read as CSV ({exc})",
            Span(file=str(path), line=number, col=1, end_line=number, end_col=len(line) + 1),
        ).with_source(source) from None


# Every backend trains in float32: a value beyond its range would become infinite.


def _check_float32(
    path: Path, source: str, rows: list[tuple[int, str]], values: np.ndarray, header: list[str]
) -> None:
    huge = np.argwhere(np.abs(values) > FLOAT32_MAX)
    if len(huge):
        r, c = (int(i) for i in huge[0])
        number, line = rows[r]
        raise DataError(
            f"column '{header[c]}' holds {values[r, c]:g} on line {number}, beyond the float32 "
            f"range (about ±{FLOAT32_MAX:.2g}) that nnc trains in",
            _cell_span(path, number, line, c),
            hint="rescale the column",
        ).with_source(source)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell(line: str, c: int) -> str:
    try:
        cells = next(csv.reader([line]))
    except csv.Error:
        return ""
    return cells[c].strip() if c < len(cells) else ""


def _cell_span(path: Path, line_number: int, line: str, c: int) -> Span:
    """The span of cell ``c`` on a line (the whole line when quotes make it ambiguous)."""
    if '"' in line:
        return Span(
            file=str(path), line=line_number, col=1, end_line=line_number, end_col=len(line) + 1
        )
    start = 0
    for cell in line.split(",")[:c]:
        start += len(cell) + 1
    cell = line.split(",")[c] if c < len(line.split(",")) else ""
    lead = len(cell) - len(cell.lstrip())
    width = max(len(cell.strip()), 1)
    col = start + lead + 1
    return Span(
        file=str(path), line=line_number, col=col, end_line=line_number, end_col=col + width
    )


def _label_column(path: Path, header: list[str], label: str | None) -> int:
    if label is None:
        if len(header) < 2:
            raise DataError(
                f"{path} has one column ('{header[0]}'); expected feature columns and a label "
                "column (the last one, or the one named by label = ...)"
            )
        return len(header) - 1
    if label not in header:
        raise DataError(
            f"{path} has no column '{label}' for the label. Columns: {', '.join(header)}",
            hint=did_you_mean(label, header),
        )
    return header.index(label)


# -- NPZ ---------------------------------------------------------------------------


def read_npz(path: Path, label: str | None = None, *, targets: bool = True) -> Samples:
    """Read an NPZ archive: features in ``x``, targets in ``y`` (or ``label``)."""
    try:
        # Open the file here: np.load leaks its own handle when the archive is corrupt.
        with open_regular(path, DataError) as f:
            if not zipfile.is_zipfile(f):
                raise DataError(f"{path} is not a readable .npz archive (not a zip file)")
            f.seek(0)
            with zipfile.ZipFile(f) as members:
                check_npz_sizes(members, path, DataError)
            f.seek(0)
            with np.load(f, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
    except MemoryError:
        raise DataError(f"{path} does not fit in memory") from None
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise DataError(
                f"{path} holds Python objects; nnc reads plain numeric arrays only "
                "(saved with numpy.savez)"
            ) from None
        raise DataError(f"{path} is not a readable .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz archive ({exc})") from None
    if not arrays:
        raise DataError(f"{path} holds no arrays; expected 'x' (features) and 'y' (targets)")
    x = _npz_array(path, arrays, "x", "features")
    if len(x) == 0:
        raise DataError(f"{path}: 'x' holds no samples (shape {list(x.shape)})")
    y = None
    if targets:
        y = _npz_array(path, arrays, label or "y", "targets")
        if len(y) != len(x):
            raise DataError(
                f"{path}: 'x' has {len(x)} samples but '{label or 'y'}' has {len(y)}; "
                "expected one target per sample"
            )
    return Samples(x=x.astype(np.float32), y=None if y is None else y, source=str(path))


def _npz_array(path: Path, arrays: dict[str, np.ndarray], name: str, what: str) -> np.ndarray:
    if name not in arrays:
        raise DataError(
            f"{path} has no array '{name}' ({what}). Arrays: {', '.join(arrays)}",
            hint=did_you_mean(name, arrays),
        )
    value = arrays[name]
    if value.ndim == 0:
        raise DataError(
            f"{path}: '{name}' is a single value; expected one row per sample (shape [N, ...])"
        )
    if not (
        np.issubdtype(value.dtype, np.integer)
        or np.issubdtype(value.dtype, np.floating)
        or value.dtype == np.bool_
    ):
        raise DataError(f"{path}: '{name}' has dtype {value.dtype}; expected real numbers")
    finite = np.isfinite(value) if np.issubdtype(value.dtype, np.floating) else None
    if finite is not None and not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        kind = "NaN" if np.isnan(value[index]) else "an infinite value"
        raise DataError(
            f"{path}: '{name}' holds {kind} at sample {index[0]}"
            + (f", index {list(index[1:])}" if len(index) > 1 else ""),
            hint="remove or fill in missing values before training",
        )
    if finite is not None and value.dtype.itemsize > 4 and value.size:
        huge = np.argwhere(np.abs(value) > FLOAT32_MAX)
        if len(huge):
            index = tuple(int(i) for i in huge[0])
            raise DataError(
                f"{path}: '{name}' holds {value[index]:g} at sample {index[0]}"
                + (f", index {list(index[1:])}" if len(index) > 1 else "")
                + ", beyond the float32 range that nnc trains in",
                hint="rescale the data",
            )
    return value
