"""Broken and hostile data files through ``nnc train``: exit 1 and a message naming
the file, and for a CSV the line and column (with the line quoted and a caret);
never a traceback. The reader's own unit tests are in tests/data/test_datafiles.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnc.cli.main import main

SPEC = """model M {{
    input x: [2]
    dense(1)
}}

train M {{
    data      "{file}"{label}
    loss      mse
    optimizer sgd(lr = 0.01)
    epochs    1
}}
"""

# name -> (file contents, label setting, the first line of the report: {f} is the file)
CSV_CASES: dict[str, tuple[bytes, str, str]] = {
    "empty_file": (
        b"",
        "",
        "error: {f} is empty; expected a header row naming the columns, then one row per sample",
    ),
    "blank_lines_only": (b"\n \n\n", "", "error: {f} is empty;"),
    "header_only": (b"a,b,y\n", "", "error: {f} has a header row but no data rows"),
    "ragged_row": (
        b"a,b,y\n1,2,3\n4,5\n",
        "",
        "{f}:3:1: error: line 3 has 2 values but the header has 3 columns (a, b, y)",
    ),
    "mixed_types": (
        b"a,b,y\n1,2,3\n4,two,6\n",
        "",
        "{f}:3:3: error: column 'b' mixes numbers and text: line 3 holds 'two'",
    ),
    "label_column_missing": (
        b"a,b,prices\n1,2,3\n",
        ", label = price",
        "error: {f} has no column 'price' for the label. Columns: a, b, prices",
    ),
    "label_not_numeric": (
        b"a,b,y\n1,2,cat\n3,4,dog\n",
        "",
        "{f}:2:5: error: column 'y' holds 'cat', which is not a number",
    ),
    "empty_cell": (
        b"a,b,y\n1,,3\n",
        "",
        "{f}:2:3: error: column 'b' is empty on line 2; every cell needs a number",
    ),
    "nan_cell": (b"a,b,y\n1,nan,3\n", "", "{f}:2:3: error: column 'b' holds NaN on line 2 (row 1)"),
    "beyond_float32": (
        b"a,b,y\n1,2,3\n1e39,2,3\n",
        "",
        "{f}:3:1: error: column 'a' holds 1e+39 on line 3, beyond the float32 range",
    ),
    "field_over_the_csv_limit": (
        b"a,b,y\n1," + b"9" * 200_000 + b",3\n",
        "",
        "{f}:2:1: error: line 2 cannot be read as CSV (field larger than field limit (131072))",
    ),
    "nul_byte": (b"a,b,y\n1,2\x00,3\n", "", "{f}:2:3: error: column 'b' holds '2\\x00'"),
    "terminal_escape": (
        b"a,b,y\n1,\x1b[2J,3\n",
        "",
        "{f}:2:3: error: column 'b' holds '\\x1b[2J', which is not a number",
    ),
    "number_as_header": (
        b"1,2,3\n4,5,6\n",
        "",
        "{f}:1:1: error: the first row should be a header naming the columns; received the "
        "number '1' in column 1",
    ),
    "not_utf8": (b"a,b,y\n1,2,\xff\n", "", "error: {f} is not UTF-8 text (byte 10: invalid start"),
}


def train_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes, label: str = ""
) -> tuple[int, str, Path]:
    file = tmp_path / name
    file.write_bytes(data)
    spec = tmp_path / "m.nn"
    spec.write_text(SPEC.format(file=name, label=label))
    code = main(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return code, err, file


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_broken_csv_through_nnc_train(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, label, first_line = CSV_CASES[case]
    code, err, file = train_on(tmp_path, capsys, "d.csv", data, label)
    assert code == 1
    assert err.splitlines()[0].startswith(first_line.format(f=file)), err
    if first_line.startswith("{f}:"):
        # the offending line, quoted, then a caret under the cell
        assert err.splitlines()[1].startswith(f"{first_line.split(':')[1]:>5} | ")
        assert "^" in err.splitlines()[2]
    assert not (tmp_path / "run" / "weights.safetensors").exists()


NPZ_CASES: dict[str, tuple[dict[str, np.ndarray], str]] = {
    "no_arrays": ({}, "error: {f} holds no arrays; expected 'x' (features) and 'y' (targets)"),
    "no_targets": ({"x": np.zeros((3, 2))}, "error: {f} has no array 'y' (targets). Arrays: x"),
    "complex_values": (
        {"x": np.zeros((3, 2), np.complex64), "y": np.zeros(3)},
        "error: {f}: 'x' has dtype complex64; expected real numbers",
    ),
    "text_values": (
        {"x": np.array([["a", "b"]]), "y": np.zeros(1)},
        "error: {f}: 'x' has dtype <U1; expected real numbers",
    ),
    "beyond_float32": (
        {"x": np.array([[1.0, 2.0], [3.0, 1e300]]), "y": np.zeros(2)},
        "error: {f}: 'x' holds 1e+300 at sample 1, index [1], beyond the float32 range",
    ),
    "infinite_target": (
        {"x": np.zeros((2, 2)), "y": np.array([1.0, np.inf])},
        "error: {f}: 'y' holds an infinite value at sample 1",
    ),
    "lengths_differ": (
        {"x": np.zeros((3, 2)), "y": np.zeros(2)},
        "error: {f}: 'x' has 3 samples but 'y' has 2; expected one target per sample",
    ),
}


@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_broken_npz_through_nnc_train(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrays, first_line = NPZ_CASES[case]
    file = tmp_path / "d.npz"
    np.savez(file, **arrays)  # type: ignore[arg-type]
    code, err, _ = train_on(tmp_path, capsys, "d.npz", file.read_bytes())
    assert code == 1
    assert err.splitlines()[0].startswith(first_line.format(f=file)), err


def test_missing_data_file_through_nnc_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "m.nn"
    spec.write_text(SPEC.format(file="gone.csv", label=""))
    assert main(["train", str(spec), "--quiet"]) == 1
    assert capsys.readouterr().err.startswith(f"error: no such data file: {tmp_path / 'gone.csv'}")
