"""nnc check on a search space: every value checked, the space listed, a value that
breaks the network named at its line and column; plain files still get every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnc.cli.main import main
from tests.conftest import EXAMPLES

BREAKS = """\
model Small {
    input x: [1, 8, 8]
    conv2d(4, choice(3, 9)) relu
    flatten
    dense(10)
}
"""


def test_check_lists_the_space_of_the_search_example(capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES / "digits_mlp_search.nn"
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: ok (1 model, 1 recipe, a search space of 3 parameters: "
        "dense_1.units, dropout_1.rate, optimizer.lr)\n"
    )


def test_check_names_the_choice_that_breaks_a_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.nn"
    path.write_text(BREAKS, encoding="utf-8")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"{path}:3:25: error: conv2d_1.kernel = 9 makes the spec invalid: conv2d: window of "
        "size 9 does not fit input of size 8"
    )


def test_check_still_reports_every_error_of_a_plain_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two.nn"
    path.write_text(
        "model A { input x: [4]  dense(0) }\nmodel C { input z: [3]  desne(2) }\n",
        encoding="utf-8",
    )
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1:" in err and f"{path}:2:" in err and f"{path}: 2 errors" in err
