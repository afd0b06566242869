"""Specs that could never run are refused at check time with the estimated size."""

from __future__ import annotations

import pytest

import nnc
from nnc.errors import ResourceError
from nnc.ir.passes.resources import parse_size
from tests.conftest import run_nnc


def test_huge_dense_layer_is_refused_with_its_size() -> None:
    with pytest.raises(ResourceError) as info:
        nnc.parse("model M { input x: [1024]  dense(1000000000) }", "r.nn")
    # (1024 + 1) * 1e9 float32 values = 4.1e12 bytes = 3.7 TiB
    assert "dense 'dense_1' needs 3.7 TiB of parameters (1,025,000,000,000 float32 values)" in str(
        info.value
    )
    assert (info.value.span.line, info.value.span.col) == (1, 28)  # type: ignore[union-attr]


def test_activations_at_the_recipe_batch_size() -> None:
    src = (
        "model M { input x: [3, 512, 512]  conv2d(64, 3, padding = same) }\n"
        'train M { data "a.csv"  loss mse  batch 64 }'
    )
    with pytest.raises(ResourceError) as info:
        nnc.parse(src, memory_budget=parse_size("2GiB"))
    # 64 * 64 * 512 * 512 * 4 bytes = 4 GiB for the conv output, plus the input
    assert "needs 4.2 GiB of activations at batch 64" in info.value.message
    assert "largest: 'conv2d_1' [64, 512, 512], 4.0 GiB" in info.value.message
    # the same spec fits a larger budget
    nnc.parse(src, memory_budget=parse_size("8GiB"))


def test_budget_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    src = "model M { input x: [1000]  dense(1000) }"  # 4 MB of parameters
    nnc.parse(src)
    monkeypatch.setenv("NNC_MEMORY_BUDGET", "1MiB")
    with pytest.raises(ResourceError, match=r"the memory budget is 1\.0 MiB"):
        nnc.parse(src)


def test_cli_memory_budget_flag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "m.nn"
    spec.write_text("model M {\n    input x: [1000]\n    dense(1000)\n}\n")
    assert run_nnc("check", str(spec)).returncode == 0
    result = run_nnc("check", "--memory-budget", "1MiB", str(spec))
    assert result.returncode == 1
    assert "m.nn:3:5: error: dense 'dense_1' needs 3.8 MiB of parameters" in result.stderr


def test_bad_size_text() -> None:
    with pytest.raises(ResourceError, match="cannot read the memory size 'lots'"):
        parse_size("lots")
