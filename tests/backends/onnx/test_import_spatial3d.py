"""ONNX import of the 3-D ops and of pooling's pads, dilations and ceil_mode,
InstanceNormalization and GroupNormalization: nnc's own exports round-trip, and
graphs built with ``onnx.helper`` import and match onnxruntime on the NumPy backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends.onnx.reader import OnnxImportError
from tests.backends.onnx.helpers import max_deviation, random_inputs, random_weights
from tests.backends.spatial_cases import SPATIAL_CASES
from tests.conftest import require

# Exported at opset 19, where AveragePool takes dilations (before it they become a
# depthwise Conv of ones, which imports as that conv).
DILATED_AVERAGES = {"avgpool_sumpool_dilated"}


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


@pytest.mark.parametrize("case", sorted(SPATIAL_CASES))
def test_spatial_case_round_trips(case: str) -> None:
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    program = nnc.parse("model M {\n " + SPATIAL_CASES[case] + "\n}\n")
    model = program.models["M"]
    opset = 19 if case in DILATED_AVERAGES else 17
    weights = random_weights(program, model)
    first = backend.emit(program, "M", weights=weights, opset=opset)
    imported = backend.import_model(first)
    second = backend.emit(imported.program, imported.model, weights=imported.weights)
    inputs = random_inputs(model)
    outs = []
    for data in (first, second):
        session = open_session(data, threads=1)
        feed = {i.name: x for i, x in zip(session.get_inputs(), inputs, strict=True)}
        outs.append(run_session(session, feed))
    assert max_deviation(outs[1], [o.astype(np.float64) for o in outs[0]]) < 1e-6
    original = {n.op for n in model.nodes} - {"log_softmax"}
    assert original <= {n.op for n in imported.program.models[imported.model].nodes}
    assert nnc.parse(nnc.format(imported.program)) == imported.program
    assert nnc.count_params(imported.program, imported.model) == nnc.count_params(program, "M")


def _model(op: str, shape: list[int], opset: int, inputs: dict[str, Any], **attrs: Any) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    names, initializers = ["x"], []
    for name, array in inputs.items():
        names.append(name)
        initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
    node = helper.make_node(op, names, ["y"], name="n", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"] + ["?"] * len(shape))],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _matches(data: bytes, shape: list[int]) -> Any:
    """Import; the NumPy backend agrees with onnxruntime. Returns the imported node."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    (want,) = run_session(open_session(data, threads=1), {"x": x})
    imported = backend.import_model(data)
    got = get_backend("numpy").build(imported.program, imported.model, imported.weights).forward(x)
    assert np.asarray(got).shape == want.shape
    assert np.abs(np.asarray(got) - want).max() < 1e-5
    (node,) = imported.program.models[imported.model].nodes
    return node


RNG = np.random.default_rng(1)


def test_conv_3d_pads_dilations_groups() -> None:
    weight = RNG.standard_normal((4, 2, 2, 3, 2))
    data = _model(
        "Conv", [4, 5, 6, 7], 17, {"w": weight, "b": RNG.standard_normal(4)},
        pads=[1, 0, 2, 0, 1, 1], dilations=[2, 1, 1], strides=[1, 2, 1], group=2,
    )  # fmt: skip
    node = _matches(data, [4, 5, 6, 7])
    assert (node.op, node.groups, node.dilation, node.padding) == (
        "conv3d", 2, (2, 1, 1), (1, 0, 2, 0, 1, 1)
    )  # fmt: skip


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_3d_ceil_mode_and_pads(op: str) -> None:
    data = _model(op, [3, 5, 6, 7], 17, {}, kernel_shape=[2, 3, 3], strides=[2, 2, 2],
                  pads=[1, 0, 1, 0, 1, 1], ceil_mode=1)  # fmt: skip
    node = _matches(data, [3, 5, 6, 7])
    assert node.op == ("maxpool3d" if op == "MaxPool" else "avgpool3d")
    assert node.ceil_mode and node.padding == (1, 0, 1, 0, 1, 1)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_2d_dilations_and_ceil_mode(op: str) -> None:
    opset = 19  # AveragePool takes dilations from opset 19
    data = _model(op, [2, 9, 8], opset, {}, kernel_shape=[2, 3], strides=[2, 2],
                  dilations=[2, 1], pads=[0, 1, 1, 0], ceil_mode=1)  # fmt: skip
    node = _matches(data, [2, 9, 8])
    assert node.dilation == (2, 1) and node.ceil_mode


def test_pool_1d_ceil_mode_window_starting_in_the_end_pad_is_dropped() -> None:
    # 5 + 1 + 1 - 3 = 4 over stride 3: ceil gives 3 windows, but the third would
    # start at 6, inside the end pad, so ONNX (and nnc) keep 2.
    data = _model("MaxPool", [2, 5], 17, {}, kernel_shape=[3], strides=[3], pads=[1, 1],
                  ceil_mode=1)  # fmt: skip
    node = _matches(data, [2, 5])
    assert node.type.shape == (2, 2)


def test_average_pool_counting_pads_is_refused() -> None:
    from nnc.backends import onnx as backend

    data = _model("AveragePool", [2, 5, 5], 17, {}, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                  count_include_pad=1)  # fmt: skip
    with pytest.raises(OnnxImportError, match="count_include_pad"):
        backend.import_model(data)


def test_instance_normalization() -> None:
    inputs = {"scale": RNG.standard_normal(3), "bias": RNG.standard_normal(3)}
    node = _matches(_model("InstanceNormalization", [3, 4, 5, 2], 17, inputs, epsilon=0.01),
                    [3, 4, 5, 2])  # fmt: skip
    assert (node.op, node.eps) == ("instancenorm", 0.01)


def test_group_normalization() -> None:
    # GroupNormalization-21 scales per channel (-18, per group, fails onnx's checker).
    inputs = {"scale": RNG.standard_normal(6), "bias": RNG.standard_normal(6)}
    data = _model("GroupNormalization", [6, 3, 4], 21, inputs, num_groups=2, epsilon=0.001)
    node = _matches(data, [6, 3, 4])
    assert (node.op, node.groups, node.eps) == ("groupnorm", 2, 0.001)


def test_group_norm_exports_group_normalization_at_opset_21() -> None:
    import onnx

    from nnc.backends import onnx as backend

    program = nnc.parse("model M {\n    input x: [6, 3, 4]\n    groupnorm(3)\n}\n")
    data = backend.emit(program, "M", opset=21)
    ops = [n.op_type for n in onnx.load_from_string(data).graph.node]
    assert ops == ["GroupNormalization"]
    node = _matches(data, [6, 3, 4])
    assert node.groups == 3


def _torch_cases():  # type: ignore[no-untyped-def]
    from torch import nn

    return {
        "conv3d_grouped_maxpool3d_ceil_avgpool3d": (
            nn.Sequential(
                nn.Conv3d(2, 4, 3, padding=1, groups=2),
                nn.MaxPool3d(2, ceil_mode=True),
                nn.AvgPool3d(2, stride=1, padding=1, count_include_pad=False),
            ),
            (2, 5, 5, 5),
            ["conv3d", "maxpool3d", "avgpool3d"],
        ),
        "instance_norm_3d": (
            nn.Sequential(nn.Conv3d(2, 4, 1), nn.InstanceNorm3d(4, affine=True)),
            (2, 3, 4, 4),
            ["conv3d", "instancenorm"],
        ),
        # torch writes GroupNorm as Reshape -> InstanceNormalization -> Reshape(Shape(x))
        # -> Mul -> Add below opset 21
        "group_norm_3d": (
            nn.Sequential(nn.Conv3d(2, 6, 1), nn.GroupNorm(3, 6, eps=1e-3)),
            (2, 3, 4, 4),
            ["conv3d", "groupnorm"],
        ),
        "maxpool_dilated_ceil": (
            nn.Sequential(nn.MaxPool2d(3, stride=2, dilation=2, padding=1, ceil_mode=True)),
            (2, 9, 9),
            ["maxpool"],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "conv3d_grouped_maxpool3d_ceil_avgpool3d",
        "instance_norm_3d",
        "group_norm_3d",
        "maxpool_dilated_ceil",
    ],
)
def test_torch_exports_import(case: str) -> None:
    require("torch")
    import torch

    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from tests.backends.onnx.test_import_foreign import torch_export

    torch.manual_seed(0)
    module, shape, ops = _torch_cases()[case]
    module.eval()
    x = torch.randn(3, *shape)
    imported = backend.import_model(torch_export(module, x, {"x": {0: "N"}}))
    assert [n.op for n in imported.program.models[imported.model].nodes] == ops
    runtime = get_backend("numpy").build(imported.program, imported.model, imported.weights)
    want = module(x).detach().numpy()
    assert np.abs(runtime.forward(x.numpy()) - want).max() < 1e-5 * max(1.0, np.abs(want).max())
