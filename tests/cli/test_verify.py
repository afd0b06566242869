"""``nnc verify``: the table, the state-transfer matrix, --json, and exit codes 0/1/2.

Run in-process (``main([...])``): the backends' frameworks are imported once for the
session instead of once per command, and a test can break a backend first.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from nnc.backends.torch import layers as torch_layers
from nnc.cli.main import main
from tests.conftest import EXAMPLES, require

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_equivalent_backends_print_a_passing_table(capsys: pytest.CaptureFixture[str]) -> None:
    require("torch")
    code = main(
        ["verify", str(EXAMPLES / "xor.nn"), "--backends", "numpy", "torch", "--steps", "4"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "model Xor: 4 training steps, batch 8" in out
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()]
    rows = [r for r in rows if len(r) == 6]  # backend, against, 3 checks, verdict
    assert [(r[0], r[1], r[5]) for r in rows] == [
        ("numpy", "reference", "pass"),
        ("torch", "reference", "pass"),
        ("numpy", "torch", "pass"),
    ]
    assert all(float(cell) < 1e-4 for r in rows for cell in r[2:5])
    # the state-transfer matrix: every ordered pair, the reference included
    assert "optimizer state moved after 2 steps" in out and "state moved: step" in out
    matrix = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()]
    matrix = [r for r in matrix if len(r) == 4 and r[0] in ("reference", "numpy", "torch")]
    assert [r[0] for r in matrix] == ["reference", "numpy", "torch"]
    assert sum(cell == "-" for r in matrix for cell in r) == 3  # the diagonal
    assert all(float(cell) < 1e-4 for r in matrix for cell in r[1:] if cell != "-")
    assert out.rstrip().endswith("verdict: equivalent")


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["verify", str(EXAMPLES / "xor.nn"), "--backends", "numpy", "--json", "--steps", "2"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["equivalent"] is True and report["steps"] == 2 and report["model"] == "Xor"
    (row,) = report["rows"]
    assert (row["backend"], row["against"], row["passed"]) == ("numpy", "reference", True)
    assert row["forward"]["max_rel"] < report["tolerance"]["forward"]
    assert {(t["source"], t["target"]) for t in report["transfers"]} == {
        ("reference", "numpy"),
        ("numpy", "reference"),
    }


def test_a_deviating_backend_exits_1_and_names_the_layer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    require("torch")

    def pads_not_reversed(pads: object) -> tuple[int, ...]:  # F.pad wants the last dim first
        return tuple(p for pair in pads for p in pair)  # type: ignore[attr-defined]

    monkeypatch.setattr(torch_layers, "torch_pads", pads_not_reversed)
    spec = tmp_path / "pads.nn"
    spec.write_text(
        "model Pads {\n    input x: [2, 6, 6]\n    conv2d(3, 3, padding = [0, 1, 1, 0])\n"
        "    flatten\n    dense(2)\n}\n"
    )
    code = main(["verify", str(spec), "--backends", "torch", "--steps", "2"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "verdict: NOT equivalent" in out
    assert "torch: forward: first deviating layer: conv2d_1 (conv2d): max abs" in out


def test_json_says_not_equivalent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require("torch")
    original = torch_layers.LAYERS["dense"]

    def no_bias(node: object, site: object) -> object:  # a dense layer that drops its bias
        layer = original(node, site)  # type: ignore[arg-type]
        return dataclasses.replace(layer, forward=f"{layer.forward} - {site.attr}.bias")  # type: ignore[attr-defined]

    monkeypatch.setitem(torch_layers.LAYERS, "dense", no_bias)
    spec = EXAMPLES / "house_prices.nn"
    code = main(["verify", str(spec), "--backends", "torch", "--steps", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["equivalent"] is False
    assert not report["rows"][0]["passed"]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(EXAMPLES / "xor.nn"), "--steps", "0"])
    assert exc.value.code == 2
    assert "expected a number of at least 1. Received: 0" in capsys.readouterr().err


def test_unknown_backend_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["verify", str(EXAMPLES / "xor.nn"), "--backends", "pytorc"])
    assert exit.value.code == 2  # a bad flag, as for every command (nnc/cli/options.py)
    err = capsys.readouterr().err
    assert "unknown backend 'pytorc'" in err and "did you mean 'torch'" in err


BIG = """model Big {
    input x: [64]
    dense(1000) relu
    dense(1000) relu
    dense(10)
}

train Big {
    data       digits, scale = unit
    loss       cross_entropy
    optimizer  adam(lr = 0.001)
    epochs     1
    batch      8
}
"""


def test_verify_is_refused_where_its_peak_passes_the_budget_though_training_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,076,010 parameters are 4.1 MiB: training holds 17 copies with Adam (70 MiB),
    verify on numpy 145 (the float64 reference, the numpy run, the transfers: 595 MiB).
    Under a 200 MiB budget `nnc check` passes and `nnc verify` refuses before it runs,
    at the largest layer's line and column (issue 26: 30M parameters held 7 GB)."""
    spec = tmp_path / "big.nn"
    spec.write_text(BIG)
    monkeypatch.setenv("NNC_MEMORY_BUDGET", "200MiB")
    assert main(["check", str(spec)]) == 0
    capsys.readouterr()
    assert main(["verify", str(spec), "--backends", "numpy", "--steps", "2"]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:4:5: error: model 'Big' needs 595.2 MiB at its peak in 'nnc verify'" in err
    assert (
        "the float64 reference and 1 backend (numpy) hold 145 copies of its 1,076,010 "
        "float32 parameters (4.1 MiB; the largest, dense 'dense_2', has 1,001,000); the "
        "memory budget is 200.0 MiB (NNC_MEMORY_BUDGET)" in err
    )
    assert "    4 |     dense(1000) relu" in err
    # more backends hold more copies: numpy and torch 170 (697.7 MiB), so a budget
    # that lets numpy alone through (595.2 MiB) still refuses both
    monkeypatch.setenv("NNC_MEMORY_BUDGET", "600MiB")
    assert main(["verify", str(spec), "--backends", "numpy", "torch", "--steps", "2"]) == 1
    assert "hold 170 copies" in capsys.readouterr().err
