"""Import across opsets 11 to 20 and the current one: the ops whose form changed
between opsets (axes, split sizes, clip bounds, pads, resize scales and dropout
ratios as attributes or as inputs; batchnorm kept by the exporter) import and
match onnxruntime on the original file within 1e-5 relative, on the numpy backend
(the other backends run the same IR; test_import_foreign covers them)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pytest

from tests.conftest import require

TOLERANCE = 1e-5
OPSETS = list(range(11, 21))


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def assert_matches(data: bytes, x: np.ndarray) -> float:
    """Import ``data``; the numpy backend on the import gives onnxruntime's output on
    the original; returns the relative max deviation."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    want = run_session(open_session(data, threads=1), {"x": x})[0].astype(np.float64)
    imported = backend.import_model(data)
    runtime = get_backend("numpy").build(imported.program, imported.model, imported.weights)
    got = runtime.forward(x)
    got = got[0] if isinstance(got, list | tuple) else got
    deviation = float(np.abs(np.asarray(got, np.float64) - want).max())
    deviation /= max(1.0, float(np.abs(want).max()))
    assert deviation < TOLERANCE, f"max relative deviation {deviation:.2e}"
    return deviation


# -- torch's exporter at every opset ---------------------------------------------------


def _torch_net() -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        """relu6 and clamp (Clip), split (Split), reflect pad (Pad), nearest upsample
        (Resize), mean and sum over axes (ReduceMean/ReduceSum), unsqueeze/squeeze,
        concat, dropout, softmax."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(4, 4, 3)
            self.fc = nn.Linear(8, 5)
            self.drop = nn.Dropout(0.3)

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = torch.clamp(F.relu6(self.norm(self.conv1(x))), -1.0, 2.5)
            a, b = torch.split(y, 4, dim=1)
            y = self.conv2(F.pad(a, (1, 1, 1, 1), mode="reflect")) + b
            y = F.max_pool2d(F.interpolate(y, scale_factor=2, mode="nearest"), 2)
            z = y.mean(dim=(2, 3)).unsqueeze(1).squeeze(1)
            z = torch.cat([z, y.sum(dim=(2, 3))], dim=1)
            return self.fc(self.drop(z)).softmax(-1)

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.norm.running_mean.uniform_(-1, 1)
        net.norm.running_var.uniform_(0.5, 2)
    return net


@pytest.mark.parametrize("keep_batchnorm", [False, True], ids=["eval", "batchnorm_kept"])
@pytest.mark.parametrize("opset", OPSETS)
def test_torch_export_imports_at_every_opset(opset: int, keep_batchnorm: bool) -> None:
    """Eval mode folds batchnorm into the conv and folds constants; PRESERVE without
    constant folding keeps BatchNormalization and writes pads, scales and clip
    bounds as computed constants (Cast, Concat, ConstantOfShape)."""
    require("torch")
    import torch

    net = _torch_net()
    x = np.random.default_rng(opset).normal(size=(2, 3, 8, 8)).astype(np.float32)
    mode = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            (torch.from_numpy(x),),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
            training=mode,
            do_constant_folding=not keep_batchnorm,
        )
    assert_matches(buffer.getvalue(), x)


# -- hand-built graphs: each op in its opset's form ------------------------------------


def _model(
    opset: int, nodes: list[Any], out_shape: list[Any], consts: dict[str, np.ndarray]
) -> bytes:
    from onnx import TensorProto, checker, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        f"opset{opset}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _axes(
    opset: int, since: int, name: str, values: list[int], consts: dict[str, np.ndarray]
) -> dict[str, Any]:
    """``axes`` as an attribute before ``since``, as an input (added to ``consts``) from it."""
    if opset < since:
        return {"axes": values}
    consts[name] = np.array(values, dtype=np.int64)
    return {}


def _with_axes(
    op: str,
    opset: int,
    since: int,
    x: str,
    out: str,
    values: list[int],
    consts: dict[str, np.ndarray],
    **attrs: Any,
) -> Any:
    from onnx import helper

    name = f"{out}_axes"
    extra = _axes(opset, since, name, values, consts)
    inputs = [x, name] if not extra else [x]
    return helper.make_node(op, inputs, [out], **extra, **attrs)


def _split(opset: int, consts: dict[str, np.ndarray]) -> Any:
    from onnx import helper

    outs = ["s0", "s1"]
    if opset < 13:
        return helper.make_node("Split", ["x"], outs, axis=1, split=[1, 3])
    consts["sizes"] = np.array([1, 3], dtype=np.int64)
    return helper.make_node("Split", ["x", "sizes"], outs, axis=1)


def _reductions(opset: int) -> bytes:
    """Split, Squeeze/Unsqueeze, ReduceSum (axes an input from 13), ReduceMean and
    ReduceMax (from 18), in one graph: [N, 4, 6, 6] -> [N, 6]."""
    from onnx import helper

    consts: dict[str, np.ndarray] = {}
    nodes = [
        _split(opset, consts),
        _with_axes("ReduceSum", opset, 13, "s1", "r_sum", [1], consts, keepdims=1),
        _with_axes("ReduceMean", opset, 18, "r_sum", "r_mean", [3], consts, keepdims=1),
        _with_axes("ReduceMax", opset, 18, "s0", "r_max", [3], consts, keepdims=1),
        helper.make_node("Add", ["r_mean", "r_max"], ["both"]),
        _with_axes("Squeeze", opset, 13, "both", "flat", [1, 3], consts),
        _with_axes("Unsqueeze", opset, 13, "flat", "again", [1], consts),
        _with_axes("Squeeze", opset, 13, "again", "y", [1], consts),
    ]
    return _model(opset, nodes, ["N", 6], consts)


def _bounds_and_pads(opset: int) -> bytes:
    """Clip with min and max inputs (11+), or only a max (min left empty); Pad
    with pads and a constant value as inputs (11+); Dropout with a ratio input
    (12+) or attribute (11); nearest Resize by scales (roi empty from 13)."""
    from onnx import helper

    consts: dict[str, np.ndarray] = {
        "low": np.array(-0.5, np.float32),
        "high": np.array(0.75, np.float32),
        "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
        "fill": np.array(0.25, np.float32),
        "scales": np.array([1, 1, 2, 2], np.float32),
        "roi": np.array([], np.float32),
    }
    if opset >= 12:
        consts["ratio"] = np.array(0.4, np.float32)
        dropout = helper.make_node("Dropout", ["clip2", "ratio"], ["drop"])
    else:
        dropout = helper.make_node("Dropout", ["clip2"], ["drop"], ratio=0.4)
    roi = "roi" if opset < 13 else ""
    nodes = [
        helper.make_node("Clip", ["x", "low", "high"], ["clip1"]),
        helper.make_node("Clip", ["clip1", "", "high"], ["clip2"]),
        dropout,
        helper.make_node("Pad", ["drop", "pads", "fill"], ["pad"], mode="constant"),
        helper.make_node("Resize", ["pad", roi, "scales"], ["y"], mode="nearest"),
    ]
    return _model(opset, nodes, ["N", 4, 18, 18], consts)


def _batchnorm(opset: int) -> bytes:
    """BatchNormalization in its inference form (training_mode=0 from 14; one output)."""
    from onnx import helper

    rng = np.random.default_rng(opset)
    consts = {
        "scale": rng.uniform(0.5, 1.5, 4).astype(np.float32),
        "shift": rng.uniform(-1, 1, 4).astype(np.float32),
        "mean": rng.uniform(-1, 1, 4).astype(np.float32),
        "var": rng.uniform(0.5, 2, 4).astype(np.float32),
    }
    attrs = {"epsilon": 1e-3} | ({"training_mode": 0} if opset >= 14 else {})
    nodes = [
        helper.make_node(
            "BatchNormalization", ["x", "scale", "shift", "mean", "var"], ["bn"], **attrs
        ),
        helper.make_node("Relu", ["bn"], ["y"]),
    ]
    return _model(opset, nodes, ["N", 4, 6, 6], consts)


HAND_BUILT = {
    "reductions": _reductions,
    "bounds_and_pads": _bounds_and_pads,
    "batchnorm": _batchnorm,
}


def _current() -> int:
    from onnx import defs

    return int(defs.onnx_opset_version())


@pytest.mark.parametrize("opset", [*OPSETS, "current"])
@pytest.mark.parametrize("case", sorted(HAND_BUILT))
def test_hand_built_ops_import_in_each_opsets_form(case: str, opset: int | str) -> None:
    version = _current() if opset == "current" else int(opset)
    data = HAND_BUILT[case](version)
    x = np.random.default_rng(version).normal(size=(2, 4, 6, 6)).astype(np.float32)
    assert_matches(data, x)


def test_split_by_num_outputs_from_opset_18() -> None:
    """Opset 18's ``num_outputs`` splits into equal parts without sizes."""
    from onnx import helper

    consts: dict[str, np.ndarray] = {}
    nodes = [
        helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2),
        helper.make_node("Sub", ["a", "b"], ["y"]),
    ]
    data = _model(18, nodes, ["N", 2, 6, 6], consts)
    x = np.random.default_rng(0).normal(size=(3, 4, 6, 6)).astype(np.float32)
    assert_matches(data, x)
