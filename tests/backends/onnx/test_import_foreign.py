"""Import of ONNX models nnc did not write: exported by PyTorch (the TorchScript
exporter, ``dynamo=False``: the dynamo exporter needs onnxscript) or built by hand
with ``onnx.helper``. Each imports and matches onnxruntime on every backend."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import nnc
from tests.backends.onnx.helpers import max_deviation, outputs_list
from tests.backends.onnx.test_roundtrip import available_backends
from tests.conftest import require

TOLERANCE = 2e-5


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def onnxruntime_outputs(data: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    from nnc.backends.onnx.runtime import open_session, run_session

    return run_session(open_session(data, threads=1), feeds)


def assert_imports_and_matches(
    data: bytes, feeds: dict[str, np.ndarray], batch_first: dict[str, np.ndarray] | None = None
) -> nnc.Program:
    """Import ``data``; onnxruntime on the original and every backend on the import
    agree. ``batch_first`` gives the nnc model's inputs where they differ from ``feeds``."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend

    want = [o.astype(np.float64) for o in onnxruntime_outputs(data, feeds)]
    imported = backend.import_model(data)
    program = nnc.parse(nnc.format(imported.program))  # the written spec checks
    inputs = list((batch_first or feeds).values())
    scale = max(1.0, *(float(np.abs(w).max()) for w in want))
    runtimes = {"onnx": backend.build(program, imported.model, imported.weights, threads=1)}
    for name in available_backends():
        runtimes[name] = get_backend(name).build(program, imported.model, imported.weights)
    for name, runtime in runtimes.items():
        got = outputs_list(runtime.forward(*inputs))
        deviation = max_deviation(got, want) / scale
        assert deviation < TOLERANCE, f"{name}: max deviation {deviation:.2e}"
    return imported.program


# -- models exported by PyTorch ------------------------------------------------------


def torch_export(module: object, example: object, axes: dict[str, dict[int, str]]) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is deprecated, and about LSTM batch
        # sizes; neither concerns these fixed, tested graphs.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            input_names=list(axes),
            output_names=["y"],
            dynamic_axes=axes,
            opset_version=17,
        )
    return buffer.getvalue()


def _torch_modules():  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class ConvPoolGemm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.norm = nn.BatchNorm2d(4)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(4, 6, 3, stride=2, bias=False)
            self.avg = nn.AvgPool2d(2)
            self.fc1 = nn.Linear(6, 5)
            self.fc2 = nn.Linear(5, 3)

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = self.pool(torch.relu(self.norm(self.conv1(x))))
            y = self.avg(torch.nn.functional.leaky_relu(self.conv2(y), 0.2))
            y = torch.tanh(self.fc1(torch.flatten(y, 1)))
            return torch.log_softmax(self.fc2(y), dim=1)

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(2, 4, 3, padding=1)
            self.a = nn.Conv2d(4, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]
            x = torch.relu(self.stem(x))
            y = self.b(torch.relu(self.a(x)))
            y = torch.relu(x + y)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.one = nn.Conv1d(3, 2, 1)
            self.three = nn.Conv1d(3, 4, 3, padding=1)
            self.fc = nn.Linear(6 * 7, 3)

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = torch.cat([torch.sigmoid(self.one(x)), torch.relu(self.three(x))], dim=1)
            return self.fc(torch.flatten(y, 1))

    class Sequence(nn.Module):
        """LSTM over every step, a Linear per step, a GRU; the last state or every step."""

        def __init__(self, every_step: bool) -> None:
            super().__init__()
            self.every_step = every_step
            self.lstm = nn.LSTM(3, 5, batch_first=True)
            self.per_step = nn.Linear(5, 5)
            self.gru = nn.GRU(5, 4, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]
            steps, _ = self.lstm(x)  # [N, t, 5]
            steps = torch.tanh(self.per_step(steps))  # MatMul + Add on [N, t, 5]
            every, last = self.gru(steps)
            return self.head(every if self.every_step else last.squeeze(0))

    return {
        "conv_pool_gemm": ConvPoolGemm,
        "residual": Residual,
        "branches": Branches,
        "lstm_gru_last_state": lambda: Sequence(every_step=False),
        "lstm_gru_every_step": lambda: Sequence(every_step=True),
    }


TORCH_CASES = {
    "conv_pool_gemm": ((2, 1, 12, 12), {"x": {0: "N"}}),
    "residual": ((2, 2, 6, 6), {"x": {0: "N"}}),
    "branches": ((2, 3, 7), {"x": {0: "N"}}),
    "lstm_gru_last_state": ((2, 6, 3), {"x": {0: "N", 1: "t"}}),
    "lstm_gru_every_step": ((2, 6, 3), {"x": {0: "N", 1: "t"}}),
}


def _randomize(module: object) -> None:
    """Running statistics far from 0 and 1, so batchnorm's conversion matters."""
    import torch

    torch.manual_seed(0)
    for m in module.modules():  # type: ignore[attr-defined]
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-1, 1)


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_torch_exported_model_imports(case: str) -> None:
    require("torch")
    import torch

    torch.manual_seed(0)
    module = _torch_modules()[case]().eval()
    _randomize(module)
    shape, axes = TORCH_CASES[case]
    data = torch_export(module, torch.randn(*shape), axes)
    x = np.random.default_rng(1).normal(size=(3, *shape[1:])).astype(np.float32)
    assert_imports_and_matches(data, {"x": x})


# -- models built by hand with onnx.helper -------------------------------------------


def hand_model(nodes, inputs, outputs, initializers, name: str = "hand_built") -> bytes:  # type: ignore[no-untyped-def]
    """A checked opset-17 model; float initializers are stored as float32."""
    from onnx import checker, helper, numpy_helper

    tensors = [
        numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f" else v, k)
        for k, v in initializers.items()
    ]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    checker.check_model(model, full_check=True)
    return model.SerializeToString()


def test_hand_built_time_major_lstm_with_recurrent_bias() -> None:
    """Time-major input, a nonzero recurrent bias Rb (canonical bias = Wb + Rb), and
    both Y and Y_h used (two nnc layers sharing the weights)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    hidden, features, steps = 4, 3, 6
    weights = {
        "W": rng.normal(0, 0.5, (1, 4 * hidden, features)),
        "R": rng.normal(0, 0.5, (1, 4 * hidden, hidden)),
        "B": rng.normal(0, 0.5, (1, 8 * hidden)),
        "dense_w": rng.normal(0, 0.5, (2, hidden)),
    }
    nodes = [
        helper.make_node("Constant", [], ["axis0"], value_ints=[0]),
        helper.make_node(
            "LSTM", ["x", "W", "R", "B"], ["y", "y_h"], hidden_size=hidden, name="rnn"
        ),
        helper.make_node("Squeeze", ["y_h", "axis0"], ["h"]),
        helper.make_node("Gemm", ["h", "dense_w"], ["last"], transB=1, name="head"),
        helper.make_node("Constant", [], ["axis1"], value_ints=[1]),
        helper.make_node("Squeeze", ["y", "axis1"], ["steps"]),
        helper.make_node("Transpose", ["steps"], ["every"], perm=[1, 0, 2]),
    ]
    data = hand_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["t", "N", features])],
        [
            helper.make_tensor_value_info("last", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("every", TensorProto.FLOAT, ["N", "t", hidden]),
        ],
        weights,
    )
    x = rng.normal(size=(steps, 3, features)).astype(np.float32)
    program = assert_imports_and_matches(data, {"x": x}, {"x": x.transpose(1, 0, 2).copy()})
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.verify import compare_with_original

    imported = backend.import_model(data)
    assert "graph input 'x' is time-major" in imported.notes[0]
    assert imported.batch_axes == {"x": 1}
    assert compare_with_original(data, imported) < 1e-6  # what `nnc import` checks
    model = program.models["HandBuilt"]
    assert [(n.op, getattr(n, "return_sequences", None)) for n in model.nodes] == [
        ("lstm", True),
        ("lstm", False),
        ("dense", None),
    ]
    # ONNX i, o, f, c with B = [Wb, Rb] -> canonical i, f, g, o with one bias Wb + Rb.
    wb, rb = weights["B"][0, : 4 * hidden], weights["B"][0, 4 * hidden :]
    gate = {name: k for k, name in enumerate("iofc")}
    want = np.concatenate([(wb + rb)[gate[g] * hidden : (gate[g] + 1) * hidden] for g in "ifco"])
    np.testing.assert_allclose(imported.weights["rnn.bias"], want, rtol=1e-6)


def test_hand_built_layers_with_conversions() -> None:
    """A conv without bias plus an Add (folded into the bias), SAME_UPPER, batchnorm,
    prelu, avg pool over real elements, dropout with a ratio input, Gemm with
    transB=0/alpha/beta, a three-way Sum, elu and softmax."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(1)
    c = 4
    weights = {
        "conv_w": rng.normal(0, 0.4, (c, 2, 3, 3)),
        "conv_b": rng.normal(0, 0.4, (1, c, 1, 1)),
        "scale": rng.uniform(0.5, 1.5, c),
        "shift": rng.normal(0, 0.5, c),
        "mean": rng.normal(0, 0.5, c),
        "var": rng.uniform(0.5, 2.0, c),
        "slope": rng.uniform(0.1, 0.3, (c, 1, 1)),
        "ratio": np.array(0.3),
        "gemm_b": rng.normal(0, 0.5, (c, 3)),
        "gemm_c": rng.normal(0, 0.5, (1, 3)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "conv_w"], ["conv"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Add", ["conv", "conv_b"], ["biased"]),
        helper.make_node(
            "BatchNormalization", ["biased", "scale", "shift", "mean", "var"], ["bn"], epsilon=1e-3
        ),
        helper.make_node("PRelu", ["bn", "slope"], ["act"]),
        helper.make_node("AveragePool", ["act"], ["pool"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Dropout", ["pool", "ratio"], ["drop", "mask"]),
        helper.make_node("GlobalAveragePool", ["drop"], ["gap"]),
        helper.make_node("Reshape", ["gap", "flat"], ["vec"]),
        helper.make_node("Gemm", ["vec", "gemm_b", "gemm_c"], ["g"], alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g"], ["g_relu"]),
        helper.make_node("Sigmoid", ["g"], ["g_sig"]),
        helper.make_node("Sum", ["g", "g_relu", "g_sig"], ["total"]),
        helper.make_node("Elu", ["total"], ["e"], alpha=0.5),
        helper.make_node("Softmax", ["e"], ["y"]),
    ]
    flat = helper.make_node("Constant", [], ["flat"], value_ints=[0, -1])
    data = hand_model(
        [flat, *nodes],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 7, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        weights,
    )
    x = rng.normal(size=(3, 2, 7, 7)).astype(np.float32)
    program = assert_imports_and_matches(data, {"x": x})
    assert nnc.format(program).splitlines()[1:8] == [
        "    input x: [2, 7, 7]",
        "    conv2d_1 = conv2d(x, 4, 3, stride = 2, padding = same)",
        "    batchnorm_1 = batchnorm(conv2d_1, eps = 0.001)",
        "    prelu_1 = prelu(batchnorm_1)",
        "    avgpool_1 = avgpool(prelu_1, 3, 1, padding = same)",
        "    dropout_1 = dropout(avgpool_1, 0.3)",
        "    global_avg_pool_1 = global_avg_pool(dropout_1)",
    ]


def test_hand_built_decoder() -> None:
    """Gemm -> Reshape to an image -> ConvTranspose with crops and output padding ->
    LRN -> MaxPool SAME_UPPER -> Flatten -> LayerNormalization, weights from a
    Constant node, and opset 13 (axes as inputs)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    weights = {
        "fc_b": rng.normal(0, 0.5, (8,)),
        "image": np.array([0, 2, 2, 2]),
        "up_w": rng.normal(0, 0.5, (2, 3, 3, 3)),
        "up_b": rng.normal(0, 0.5, (3,)),
        "ln_scale": rng.uniform(0.5, 1.5, 27),
        "ln_bias": rng.normal(0, 0.5, 27),
    }
    fc_w = numpy_helper.from_array(rng.normal(0, 0.5, (5, 8)).astype(np.float32))
    nodes = [
        helper.make_node("Constant", [], ["fc_w"], value=fc_w),
        helper.make_node("MatMul", ["x", "fc_w"], ["mm"], name="fc"),
        helper.make_node("Add", ["fc_b", "mm"], ["fc_out"]),
        helper.make_node("Reshape", ["fc_out", "image"], ["img"]),
        helper.make_node(
            "ConvTranspose",
            ["img", "up_w", "up_b"],
            ["up"],
            strides=[2, 2],
            pads=[1, 0, 0, 1],
            output_padding=[1, 1],
            name="up",
        ),
        helper.make_node("LRN", ["up"], ["norm"], size=3, alpha=0.2, beta=0.5, bias=2.0),
        helper.make_node(
            "MaxPool",
            ["norm"],
            ["pooled"],
            kernel_shape=[2, 2],
            strides=[2, 2],
            auto_pad="SAME_UPPER",
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node(
            "LayerNormalization", ["flat", "ln_scale", "ln_bias"], ["y"], epsilon=1e-4
        ),
    ]
    data = hand_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 27])],
        weights,
        name="decoder",
    )
    x = rng.normal(size=(3, 5)).astype(np.float32)
    program = assert_imports_and_matches(data, {"x": x})
    ops = [n.op for n in program.models["Decoder"].nodes]
    assert ops == ["dense", "reshape", "conv2d_transpose", "lrn", "maxpool", "flatten", "layernorm"]
