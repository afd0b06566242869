"""Users' CSV and NPZ files: what is read, and the message for each kind of bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data import prepare, read_data_file
from nnc.errors import DataError
from nnc.ir.training import Recipe

GOOD = "size,rooms,price\n120.5,3,310\n80,2,190\n200,5,520\n"


def write(tmp_path: Path, text: str, name: str = "houses.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error(path: Path, label: str | None = None, targets: bool = True) -> DataError:
    with pytest.raises(DataError) as err:
        read_data_file(path, label, targets=targets)
    return err.value


def test_csv_label_is_the_last_column_by_default(tmp_path: Path) -> None:
    s = read_data_file(write(tmp_path, GOOD))
    assert s.x.tolist() == [[120.5, 3], [80, 2], [200, 5]] and s.x.dtype == np.float32
    assert s.y is not None and s.y.tolist() == [310, 190, 520]
    assert s.lines is not None and s.lines.tolist() == [2, 3, 4]


def test_csv_label_by_name(tmp_path: Path) -> None:
    s = read_data_file(write(tmp_path, GOOD), label="rooms")
    assert s.x.tolist() == [[120.5, 310], [80, 190], [200, 520]]
    assert s.y is not None and s.y.tolist() == [3, 2, 5]


def test_csv_without_targets_drops_the_named_label(tmp_path: Path) -> None:
    s = read_data_file(write(tmp_path, GOOD), label="price", targets=False)
    assert s.x.shape == (3, 2) and s.y is None


def test_missing_file(tmp_path: Path) -> None:
    err = error(tmp_path / "nope.csv")
    assert err.message == f"no such data file: {tmp_path / 'nope.csv'}"


def test_unknown_suffix(tmp_path: Path) -> None:
    err = error(write(tmp_path, GOOD, "houses.txt"))
    assert "unknown data file type '.txt'; expected a .csv file" in err.message


def test_empty_file(tmp_path: Path) -> None:
    err = error(write(tmp_path, "\n  \n"))
    assert err.message.endswith(
        "houses.csv is empty; expected a header row naming the columns, then one row per sample"
    )


def test_header_only(tmp_path: Path) -> None:
    err = error(write(tmp_path, "size,rooms,price\n"))
    assert err.message.endswith("houses.csv has a header row but no data rows")


def test_missing_header(tmp_path: Path) -> None:
    err = error(write(tmp_path, "1,2,3\n4,5,6\n"))
    assert "the first row should be a header naming the columns; received the number '1'" in (
        err.message
    )


def test_ragged_row_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "size,rooms,price\n120.5,3,310\n80,2\n")
    err = error(path)
    assert err.message == "line 3 has 2 values but the header has 3 columns (size, rooms, price)"
    assert str(err.span) == f"{path}:3:1"
    assert "    3 | 80,2" in err.render()


def test_non_numeric_cell_points_at_it(tmp_path: Path) -> None:
    path = write(tmp_path, "size,rooms,price\nbig,three,310\n")
    err = error(path)
    assert err.message == "column 'size' holds 'big', which is not a number"
    assert str(err.span) == f"{path}:2:1"


def test_mixed_column_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "size,rooms,price\n120.5,3,310\n80,three,190\n")
    err = error(path)
    assert err.message == "column 'rooms' mixes numbers and text: line 3 holds 'three'"
    assert str(err.span) == f"{path}:3:4"
    rendered = err.render()
    assert "    3 | 80,three,190" in rendered
    assert rendered.splitlines()[2].endswith("|    ^^^^^")
    assert err.hint == "nnc reads numeric columns only; encode categories as numbers"


def test_empty_cell(tmp_path: Path) -> None:
    err = error(write(tmp_path, "size,rooms,price\n120.5,,310\n"))
    assert err.message == "column 'rooms' is empty on line 2; every cell needs a number"


@pytest.mark.parametrize(("cell", "kind"), [("nan", "NaN"), ("inf", "an infinite value")])
def test_nan_and_inf_name_row_and_column(tmp_path: Path, cell: str, kind: str) -> None:
    path = write(tmp_path, f"size,rooms,price\n120.5,3,310\n80,2,{cell}\n")
    err = error(path)
    assert err.message == f"column 'price' holds {kind} on line 3 (row 2)"
    assert str(err.span) == f"{path}:3:6"


def test_missing_label_column_suggests_one(tmp_path: Path) -> None:
    err = error(write(tmp_path, GOOD), label="prise")
    assert err.message.endswith("has no column 'prise' for the label. Columns: size, rooms, price")
    assert err.hint == "did you mean 'price'?"


def test_duplicate_column(tmp_path: Path) -> None:
    err = error(write(tmp_path, "a,a\n1,2\n"))
    assert err.message == "the header names column 'a' twice"


# -- NPZ --------------------------------------------------------------------------


def test_npz_reads_x_and_y(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 0]))
    s = read_data_file(path)
    assert s.x.shape == (3, 2) and s.y is not None and s.y.tolist() == [0, 1, 0]


def test_npz_missing_array(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((3, 2)), y=np.zeros(3))
    err = error(path)
    assert err.message == f"{path} has no array 'x' (features). Arrays: features, y"


def test_npz_length_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 2)), y=np.zeros(2))
    assert "'x' has 3 samples but 'y' has 2" in error(path).message


def test_npz_nan_names_the_sample(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    x = np.zeros((4, 2, 3))
    x[2, 1, 0] = np.nan
    np.savez(path, x=x, y=np.zeros(4))
    assert error(path).message == f"{path}: 'x' holds NaN at sample 2, index [1, 0]"


def test_npz_with_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    assert "holds Python objects; nnc reads plain numeric arrays only" in error(path).message


def test_truncated_npz(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((30, 2)), y=np.zeros(30))
    path.write_bytes(path.read_bytes()[:100])
    assert "is not a readable .npz archive" in error(path).message


# -- fitting a file to a model -------------------------------------------------------

CLASSIFIER = """
model C {{
    input x: [{features}]
    dense(3)
}}
train C {{
    data "{file}"
    loss cross_entropy
}}
"""


def recipe_for(tmp_path: Path, file: Path, features: int = 2) -> tuple[nnc.Program, Recipe]:
    program = nnc.parse(CLASSIFIER.format(features=features, file=file.name))
    recipe = program.recipes["C"]
    assert isinstance(recipe, Recipe)
    return program, recipe


def test_labels_outside_the_classes(tmp_path: Path) -> None:
    file = write(tmp_path, "a,b,label\n1,2,0\n3,4,2\n5,6,3\n", "c.csv")
    program, recipe = recipe_for(tmp_path, file)
    with pytest.raises(DataError) as err:
        prepare(program, recipe, base=tmp_path)
    assert err.value.message == (
        f"{file}, line 4: label 3 is outside the classes 0..2 of the model's output [3]"
    )


def test_fractional_label(tmp_path: Path) -> None:
    file = write(tmp_path, "a,b,label\n1,2,0.5\n", "c.csv")
    program, recipe = recipe_for(tmp_path, file)
    with pytest.raises(DataError, match=r"line 2: label 0.5 is not a class number"):
        prepare(program, recipe, base=tmp_path)


def test_feature_count_differs_from_the_model_input(tmp_path: Path) -> None:
    file = write(tmp_path, "a,b,c,label\n1,2,3,0\n", "c.csv")
    program, recipe = recipe_for(tmp_path, file, features=2)
    with pytest.raises(DataError) as err:
        prepare(program, recipe, base=tmp_path)
    assert err.value.message == (
        f"{file}: samples have shape [3] but the model input is [2]: dim 0 expected 2, received 3"
    )


def test_good_file_one_hot_targets_relative_to_the_spec(tmp_path: Path) -> None:
    file = write(tmp_path, "a,b,label\n1,2,0\n3,4,2\n", "c.csv")
    program, recipe = recipe_for(tmp_path, file)
    data = prepare(program, recipe, base=tmp_path)
    assert data.train.y.tolist() == [[1, 0, 0], [0, 0, 1]]
    assert data.task.kind == "categorical" and data.task.classes == 3
