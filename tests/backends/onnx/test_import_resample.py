"""Import of Resize, DepthToSpace and SpaceToDepth built with ``onnx.helper``: the
coordinate rules nnc implements import and match onnxruntime on the NumPy backend;
every other rule is refused, naming the attribute."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import require


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def _model(op: str, shape: list[int], opset: int, inputs: dict[str, Any], **attrs: Any) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    names, initializers = ["x"], []
    for name, array in inputs.items():
        if array is None:
            names.append("")
            continue
        names.append(name)
        initializers.append(numpy_helper.from_array(np.asarray(array), name))
    node = helper.make_node(op, names, ["y"], name="r", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"] + ["?"] * len(shape))],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _resize(shape: list[int], scales: list[float], opset: int = 13, **attrs: Any) -> bytes:
    roi = np.zeros(0, np.float32) if opset < 13 else None
    inputs = {"roi": roi, "scales": np.array(scales, np.float32)}
    return _model("Resize", shape, opset, inputs, **attrs)


def _matches(data: bytes, shape: list[int]) -> dict[str, Any]:
    """Import; the NumPy backend agrees with onnxruntime. Returns the node's attributes."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    (want,) = run_session(open_session(data, threads=1), {"x": x})
    imported = backend.import_model(data)
    got = get_backend("numpy").build(imported.program, imported.model, imported.weights).forward(x)
    assert np.abs(np.asarray(got) - want).max() < 1e-5
    (node,) = imported.program.models[imported.model].nodes
    return {"op": node.op, **node.attributes()}


NEAREST = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}


@pytest.mark.parametrize(
    ("name", "data", "shape", "want"),
    [
        (
            "torch nearest, opset 11",
            _resize([2, 3, 4], [1, 1, 2, 3], 11, nearest_mode="floor", **NEAREST),
            [2, 3, 4],
            {"scale": (2, 3), "mode": "nearest"},
        ),
        (
            "ONNX default nearest (half_pixel, round_prefer_floor)",
            _resize([2, 3, 4], [1, 1, 3, 3], mode="nearest"),
            [2, 3, 4],
            {"scale": (3,), "mode": "nearest"},
        ),
        (
            "linear half_pixel",
            _resize([2, 3, 4], [1, 1, 2, 2], mode="linear"),
            [2, 3, 4],
            {"scale": (2,), "mode": "bilinear", "align_corners": False},
        ),
        (
            "linear pytorch_half_pixel, 1-d",
            _resize(
                [2, 5],
                [1, 1, 3],
                mode="linear",
                coordinate_transformation_mode="pytorch_half_pixel",
            ),
            [2, 5],
            {"scale": (3,), "mode": "bilinear"},
        ),
        (
            "linear align_corners",
            _resize(
                [1, 3, 3],
                [1, 1, 2, 2],
                mode="linear",
                coordinate_transformation_mode="align_corners",
            ),
            [1, 3, 3],
            {"scale": (2,), "align_corners": True},
        ),
        (
            "DepthToSpace DCR",
            _model("DepthToSpace", [8, 2, 3], 13, {}, blocksize=2),
            [8, 2, 3],
            {"op": "depth_to_space", "block": 2},
        ),
        (
            "SpaceToDepth",
            _model("SpaceToDepth", [2, 4, 6], 11, {}, blocksize=2),
            [2, 4, 6],
            {"op": "space_to_depth", "block": 2},
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_imports_and_matches_onnxruntime(
    name: str, data: bytes, shape: list[int], want: dict[str, Any]
) -> None:
    got = _matches(data, shape)
    assert {k: got[k] for k in want if k != "op"} == {k: v for k, v in want.items() if k != "op"}
    assert got["op"] == want.get("op", "resize")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _resize([2, 3, 4], [1, 1, 2, 2], nearest_mode="ceil", **NEAREST),
            "attribute nearest_mode='ceil' is not supported",
        ),
        (
            _resize(
                [2, 3, 4], [1, 1, 2, 2], mode="linear", coordinate_transformation_mode="asymmetric"
            ),
            "attribute coordinate_transformation_mode='asymmetric' is not supported",
        ),
        (
            _resize([2, 3, 4], [1, 1, 2, 2], mode="cubic"),
            "attribute mode='cubic' is not supported",
        ),
        (
            _resize([2, 3, 4], [1, 1, 1.5, 2], nearest_mode="floor", **NEAREST),
            "spatial scales [1.5, 2.0] are not integers >= 1",
        ),
        (
            _resize([2, 3, 4], [1, 2, 2, 2], nearest_mode="floor", **NEAREST),
            "resize the batch or channels",
        ),
        (
            _model("DepthToSpace", [8, 2, 3], 13, {}, blocksize=2, mode="CRD"),
            "attribute mode='CRD' is not supported: nnc's depth_to_space is DCR",
        ),
    ],
    ids=lambda v: v.split(" is ")[0] if isinstance(v, str) else "",
)
def test_other_rules_are_refused(data: bytes, message: str) -> None:
    from nnc.backends import onnx as backend
    from nnc.errors import NncError

    with pytest.raises(NncError) as err:
        backend.import_model(data)
    assert message in err.value.message
