"""Import of Add, Sum, Sub, Mul, Div, Pow, Max, Min and Neg built with ``onnx.helper``:
broadcasting tensors, one-element constants (the op's number), tensor constants (a
``constant`` node, the batch axis of size 1 dropped only at the full rank), matched
against onnxruntime on the NumPy backend; and what stays refused, with its message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import require


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require("onnx")
    require("onnxruntime")


def _graph(
    op: str,
    operands: list[str | np.ndarray],
    shapes: dict[str, list[Any]],
    opset: int = 17,
) -> bytes:
    """One node ``op`` over graph inputs (by name, with ``shapes``) and initializers."""
    from onnx import TensorProto, helper, numpy_helper

    names, initializers = [], []
    for k, operand in enumerate(operands):
        if isinstance(operand, str):
            names.append(operand)
        else:
            names.append(f"c{k}")
            initializers.append(numpy_helper.from_array(np.asarray(operand), f"c{k}"))
    node = helper.make_node(op, names, ["out"], name="n1")
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    rank = max(len(s) for s in shapes.values())
    dims = ["N", *(f"d{k}" for k in range(1, rank))]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, dims)
    graph = helper.make_graph([node], "g", inputs, [out], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _matches(data: bytes, shapes: dict[str, list[Any]]) -> list[Any]:
    """Import; the NumPy backend agrees with onnxruntime. Returns the imported nodes."""
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import open_session, run_session

    rng = np.random.default_rng(0)
    feeds = {
        n: rng.uniform(0.5, 2.0, [2 if d == "N" else d for d in s]).astype(np.float32)
        for n, s in shapes.items()
    }
    (want,) = run_session(open_session(data, threads=1), feeds)
    imported = backend.import_model(data)
    runtime = get_backend("numpy").build(imported.program, imported.model, imported.weights)
    got = np.asarray(runtime.forward(*feeds.values()))
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-6 * max(1.0, float(np.abs(want).max()))
    return list(imported.program.models[imported.model].nodes)


OPS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow"}
OPS |= {"Max": "maximum", "Min": "minimum"}


@pytest.mark.parametrize("op_type", sorted(OPS))
@pytest.mark.parametrize(
    ("a", "b"),
    [
        (["N", 3, 4], ["N", 3, 4]),
        (["N", 3, 1], ["N", 1, 4]),
        (["N", 1, 4], ["N", 3, 1]),
    ],
)
def test_tensors_broadcast(op_type: str, a: list[Any], b: list[Any]) -> None:
    shapes = {"x": a, "y": b}
    nodes = _matches(_graph(op_type, ["x", "y"], shapes), shapes)
    assert [n.op for n in nodes] == [OPS[op_type]]
    assert nodes[0].scalar is None


@pytest.mark.parametrize("op_type", sorted(OPS))
@pytest.mark.parametrize("side", ["left", "right"])
def test_one_element_constant_is_the_number(op_type: str, side: str) -> None:
    c = np.array([[1.5]], np.float32)  # shape [1, 1]: still one number
    operands: list[str | np.ndarray] = ["x", c] if side == "right" else [c, "x"]
    shapes = {"x": ["N", 3, 4]}
    nodes = _matches(_graph(op_type, operands, shapes), shapes)
    (node,) = nodes
    assert (node.op, node.scalar, node.scalar_side) == (OPS[op_type], 1.5, side)


@pytest.mark.parametrize(
    ("constant", "per_sample"),
    [
        (np.arange(4, dtype=np.float32) + 1, (4,)),  # lower rank: right-aligned
        (np.arange(3, dtype=np.float32).reshape(3, 1) + 1, (3, 1)),
        (np.arange(12, dtype=np.float32).reshape(1, 3, 4) + 1, (3, 4)),  # full rank: batch 1
    ],
)
@pytest.mark.parametrize("op_type", ["Mul", "Sub", "Div"])
def test_tensor_constant_is_a_constant_node(
    op_type: str, constant: np.ndarray, per_sample: tuple[int, ...]
) -> None:
    shapes = {"x": ["N", 3, 4]}
    nodes = _matches(_graph(op_type, [constant, "x"], shapes), shapes)
    assert [n.op for n in nodes] == ["constant", OPS[op_type]]
    assert nodes[0].shape == per_sample
    assert nodes[1].inputs == (nodes[0].name, "x")  # the constant stays on the left


def test_sum_max_min_of_three() -> None:
    shapes = {"x": ["N", 3, 4], "y": ["N", 1, 4], "z": ["N", 3, 1]}
    for op_type, op in (("Sum", "add"), ("Max", "maximum"), ("Min", "minimum")):
        nodes = _matches(_graph(op_type, ["x", "y", "z"], shapes), shapes)
        assert [n.op for n in nodes] == [op, op]


def test_neg() -> None:
    shapes = {"x": ["N", 5]}
    assert [n.op for n in _matches(_graph("Neg", ["x"], shapes), shapes)] == ["neg"]


def test_square_pattern_still_wins() -> None:
    shapes = {"x": ["N", 5]}
    assert [n.op for n in _matches(_graph("Mul", ["x", "x"], shapes), shapes)] == ["square"]


def test_bias_folding_still_wins() -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "w")
    c = numpy_helper.from_array(np.array([0.5, -1.0], np.float32), "c")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "c"], ["y"], name="bias"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    graph = helper.make_graph(nodes, "g", [x], [y], [w, c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    imported = _matches(model.SerializeToString(), {"x": ["N", 3]})
    assert [n.op for n in imported] == ["dense"]


def test_export_import_round_trip() -> None:
    """nnc's own export of every arithmetic construct imports back to the same ops."""
    import nnc
    from nnc.backends import onnx as backend

    source = """
model M {
    input x: [3, 4]
    input y: [4]
    a = x * 0.5
    b = 1 - y
    c = a / b + constant([[1, 2, 3, 4]])
    d = pow(x, 2) - maximum(x, y) + minimum(0.25, y)
    output -(c * d)
}
"""
    program = nnc.parse(source)
    data = nnc.emit(program, "onnx")
    assert isinstance(data, bytes)
    imported = backend.import_model(data)
    ops = sorted(n.op for n in imported.program.models[imported.model].nodes)
    assert ops == sorted(
        [
            *("mul", "sub", "div", "constant", "add", "pow", "maximum", "sub", "minimum"),
            *("add", "mul", "neg"),
            # the exporter's Unsqueeze of y [4] to [1, 4] before each broadcast with x
            *("reshape", "reshape", "reshape"),
        ]
    )
    _matches(data, {"x": ["N", 3, 4], "y": ["N", 4]})


@pytest.mark.parametrize(
    ("operands", "shapes", "message"),
    [
        (
            ["x", "y"],
            {"x": ["N", 3, 4], "y": ["N", 4]},
            "node 'n1' (Mul): broadcasts [N, 3, 4] with [N, 4]: ONNX lines up the batch axis "
            "of one with a sample axis of the other, which nnc does not (give both the same "
            "rank)",
        ),
        (
            ["x", np.ones((2, 3, 4), np.float32)],
            {"x": ["N", 3, 4]},
            "node 'n1' (Mul): the constant operand [2, 3, 4] has 2 on the batch axis; nnc's "
            "constants broadcast over the batch (size 1 there)",
        ),
        (
            ["x", np.ones((1, 1, 3, 4), np.float32)],
            {"x": ["N", 3, 4]},
            "node 'n1' (Mul): the constant operand [1, 1, 3, 4] has more axes than the tensor "
            "(rank 3); nnc would broadcast it over the batch",
        ),
        (
            ["x", "y"],
            {"x": ["N", 3], "y": ["N", 4]},
            "node 'n1' (Mul): as nnc's mul: '*' cannot broadcast [3] with [4]: dim -1 is 3 "
            "against 4",
        ),
    ],
)
def test_refused(operands: list[Any], shapes: dict[str, list[Any]], message: str) -> None:
    from nnc.backends import onnx as backend
    from nnc.errors import NncError

    with pytest.raises(NncError) as info:
        backend.import_model(_graph("Mul", operands, shapes))
    assert info.value.message == message


def test_torch_export_of_a_gated_block() -> None:
    """PyTorch's own export: a squeeze-and-excitation gate, numbers on either side, a
    power, a maximum and a constant tensor all import, and match torch."""
    require("torch")
    import io
    import warnings

    import torch

    from nnc.backends import get_backend
    from nnc.backends import onnx as backend

    class Gated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv(x)
            y = h * torch.sigmoid(h.mean(dim=(2, 3), keepdim=True))
            y = (1 - y) / 2 + y**2 - torch.maximum(y, torch.zeros(1))
            return -y * 0.5 + torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1)

    module = Gated().eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.randn(2, 3, 5, 5),),
            buffer,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
    imported = backend.import_model(buffer.getvalue())
    ops = [n.op for n in imported.program.models[imported.model].nodes]
    assert ops == [
        *("conv2d", "mean", "sigmoid", "mul", "sub", "pow", "maximum", "div", "add"),
        *("sub", "neg", "mul", "constant", "add"),
    ]
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    want = module(torch.tensor(x)).detach().numpy()
    runtime = get_backend("numpy").build(imported.program, imported.model, imported.weights)
    assert np.abs(np.asarray(runtime.forward(x)) - want).max() < 1e-5
