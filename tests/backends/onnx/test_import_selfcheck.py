"""``nnc import`` checks the import against the original in onnxruntime with the
original's own input shapes, converts an opset onnxruntime no longer runs, and says
what it checked (issue 17: fixed batches of 1, 2, 3 or 10 and old opsets were refused
as if the model were broken)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require, run_nnc


def gemm_relu(opset: int, batch: int | str) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "C"], ["y"], transB=1),
            helper.make_node("Relu", ["y"], ["z"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 2])],
        initializer=[
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(np.full(2, 0.1, np.float32), "C"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 4
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.mark.parametrize("batch", [1, 2, 3, 10])
def test_a_fixed_batch_is_checked_at_its_own_size(batch: int, tmp_path: Path) -> None:
    require("onnxruntime")
    (tmp_path / "m.onnx").write_bytes(gemm_relu(13, batch))
    result = run_nnc("import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.nn"))
    assert result.returncode == 0, result.stderr  # was "Got: 4 Expected: <batch>"
    assert (
        f"checked: the same outputs as the original in onnxruntime on a random batch of {batch} "
        in result.stderr
    )
    assert (tmp_path / "m.nn").exists() and (tmp_path / "m.safetensors").exists()


def test_an_opset_onnxruntime_no_longer_runs_is_converted_for_the_check(tmp_path: Path) -> None:
    require("onnxruntime")
    (tmp_path / "old.onnx").write_bytes(gemm_relu(6, "N"))  # onnxruntime: NOT_IMPLEMENTED
    result = run_nnc("import", str(tmp_path / "old.onnx"), "-o", str(tmp_path / "old.nn"))
    assert result.returncode == 0, result.stderr
    assert (
        "on a random batch of 4 (relative deviation 0.0e+00); "
        "the original's opset 6 converted to 17" in result.stderr
    )
    assert run_nnc("check", str(tmp_path / "old.nn")).returncode == 0


def test_an_original_nothing_can_run_is_imported_and_said_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require("onnxruntime")
    from nnc.backends import onnx as backend
    from nnc.backends.onnx import verify

    data = gemm_relu(6, "N")
    monkeypatch.setattr(verify, "_converted", lambda original, axes: (None, 6))
    found = verify.self_check(data, backend.import_model(data))
    assert found.deviation is None
    assert found.summary.startswith(
        "not compared with the original: onnxruntime cannot load the model: "
    )
    assert "NOT_IMPLEMENTED" in found.summary and "\n" not in found.summary
