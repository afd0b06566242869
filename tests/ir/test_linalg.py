"""matmul and param in the IR: the shape rule (NumPy's matmul on per-sample shapes,
worked out by hand), its errors with line and column, a param's parameter (name,
fans, decay, count), weight files, and the builder and formatter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.errors import ArgumentError, ShapeError
from nnc.ir.passes.params import model_params
from nnc.ir.weights import init_weights, load_weights, save_npz


def out_shape(body: str) -> tuple[object, ...]:
    return nnc.parse(f"model M {{\n    {body}\n}}\n").models["M"].output_types[0].shape


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("[3, 4]", "[4, 5]", (3, 5)),
        ("[4]", "[4, 5]", (5,)),  # a vector on the left: a row, removed again
        ("[3, 4]", "[4]", (3,)),  # on the right: a column
        ("[4]", "[4]", ()),  # a dot product
        ("[2, 3, 4]", "[4, 5]", (2, 3, 5)),  # leading axes broadcast
        ("[4, 5]", "[2, 5, 3]", (2, 4, 3)),
        ("[2, 1, 3, 4]", "[5, 4, 6]", (2, 5, 3, 6)),  # size-1 axes stretch
        ("[4]", "[2, 4, 3]", (2, 3)),  # a vector times a stack of matrices
        ("[2, 3, 4]", "[4]", (2, 3)),
        ("[t, 3, 4]", "[4, 2]", ("t", 3, 2)),  # symbolic leading axis
        ("[t, 4]", "[4, 2]", ("t", 2)),
    ],
)
def test_shape_rule(a: str, b: str, expected: tuple[object, ...]) -> None:
    assert out_shape(f"input x: {a}\n    input y: {b}\n    output x @ y") == expected
    # the call form is the same node
    assert out_shape(f"input x: {a}\n    input y: {b}\n    output matmul(x, y)") == expected


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ("[3, 4]", "[5, 6]", "matmul: inner dims differ: [3, 4] @ [5, 6] contracts 4 with 5"),
        ("[4]", "[3]", "matmul: inner dims differ: [4] @ [3] contracts 4 with 3"),
        ("[3, 4]", "[3]", "matmul: inner dims differ: [3, 4] @ [3] contracts 4 with 3"),
        (
            "[2, 3, 4]",
            "[5, 4, 2]",
            "matmul: [2, 3, 4] @ [5, 4, 2]: leading axes: cannot broadcast [2] with [5]: "
            "dim -1 is 2 against 5",
        ),
        ("[t, 3, 4]", "[u, 4, 2]", "leading axes: cannot broadcast [t] with [u]"),
    ],
)
def test_shape_errors_show_both_shapes_at_the_operator(a: str, b: str, message: str) -> None:
    source = f"model M {{\n    input x: {a}\n    input y: {b}\n    output x @ y\n}}\n"
    with pytest.raises(ShapeError) as info:
        nnc.parse(source)
    assert message in str(info.value)
    assert "<string>:4:12:" in str(info.value)  # the '@' expression's line and column


def test_other_errors_have_line_and_column() -> None:
    with pytest.raises(ShapeError, match=r"<string>:3:12: matmul: '@' needs operands of rank"):
        nnc.parse("model M {\n    input x: [4]\n    output x @ param([])\n}\n")
    with pytest.raises(ShapeError, match=r"<string>:4:12: matmul: expects a float32 input"):
        nnc.parse("model M {\n    input x: int64[4]\n    input y: [4, 2]\n    output x @ y\n}\n")
    with pytest.raises(ArgumentError, match=r"<string>:3:5: param takes 0 inputs. Received: 1"):
        nnc.parse("model M {\n    input x: [4]\n    param([4])\n}\n")
    with pytest.raises(
        ArgumentError, match=r"<string>:3:15: param: argument 'shape' expects an integer or a list"
    ):
        nnc.parse("model M {\n    input x: [4]\n    w = param([4, t])\n    output x @ w\n}\n")


CUSTOM = """
block mydense(k, n) {
    input x: [k]
    w = param([k, n])
    b = param([n], init = zeros)
    output x @ w + b
}

model Custom {
    input x: [64]
    h = mydense(x, 64, 32, name = l1) |> relu
    output mydense(h, 32, 10, name = l2)
}
"""


def test_param_names_fans_and_decay() -> None:
    program = nnc.parse(CUSTOM)
    params = {p.name: p.spec for p in model_params(program, "Custom")}
    assert list(params) == ["l1_w.value", "l1_b.value", "l2_w.value", "l2_b.value"]
    w, b = params["l1_w.value"], params["l1_b.value"]
    assert (w.shape, w.fan_in, w.fan_out, w.decay) == ((64, 32), 64, 32, True)
    assert (b.shape, b.fan_in, b.fan_out, b.decay) == ((32,), 32, 32, False)
    stack = model_params(nnc.parse("model S { input x: [3]  output x @ param([5, 3, 2]) }"), "S")
    assert (stack[0].spec.fan_in, stack[0].spec.fan_out) == (3, 2)  # leading axes: a stack


def test_param_count_equals_torch_linear() -> None:
    program = nnc.parse(CUSTOM)
    # 64*32 + 32 + 32*10 + 10, as two nn.Linear layers count them
    assert nnc.count_params(program, "Custom") == 2410
    torch = pytest.importorskip("torch")
    reference = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    assert nnc.count_params(program, "Custom") == sum(p.numel() for p in reference.parameters())


def test_param_initializer_uses_its_fans() -> None:
    program = nnc.parse("model M { input x: [300]  output x @ param([300, 100]) }")
    w = init_weights(program, "M", seed=0)["param_1.value"]
    limit = np.sqrt(6.0 / (300 + 100))  # glorot_uniform with fan_in 300, fan_out 100
    assert w.shape == (300, 100)
    assert limit * 0.99 < np.abs(w).max() <= limit
    zeros = nnc.parse("model M { input x: [3]  output x @ param([3, 2], init = zeros) }")
    assert not init_weights(zeros, "M", 0)["param_1.value"].any()


def test_weight_files_hold_params(tmp_path: Path) -> None:
    program = nnc.parse(CUSTOM)
    weights = init_weights(program, "Custom", seed=4)
    path = save_npz(tmp_path / "w.npz", weights)
    loaded = load_weights(path, program, "Custom")
    assert sorted(loaded) == sorted(weights)
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)


def test_flops_count_the_product() -> None:
    from nnc.ir.flops import count_macs

    program = nnc.parse("model M { input x: [2, 3, 4]  w = param([4, 5])  output x @ w }")
    macs = count_macs(program, "M")
    assert macs.per_node == {"w": 0, "matmul_1": 2 * 3 * 5 * 4}


def test_format_round_trips_and_writes_the_operator() -> None:
    program = nnc.parse(CUSTOM)
    text = nnc.format(program)
    assert "l1_w = param([64, 32])" in text
    assert "l1_b = param([32], init = zeros)" in text
    assert "x @ l1_w" in text
    assert nnc.parse(text) == program
    source = "model M {\n    input x: [4]\n    output matmul(x, param([4, 2]))\n}\n"
    assert nnc.parse(nnc.format(nnc.parse(source))) == nnc.parse(source)
    assert nnc.format_source("model M { input x: [4]  output x@param([4,2]) }") == (
        "model M {\n    input x: [4]\n    output x @ param([4, 2])\n}\n"
    )


def test_builder_equals_parser() -> None:
    b = nnc.Builder("Custom")
    x = b.input("x", [64])

    @nnc.block
    def mydense(b: nnc.Builder, x: object, k: int, n: int) -> object:
        w = b.param([k, n], name="w")
        bias = b.param([n], init="zeros", name="b")
        return b.add(b.matmul(x, w), bias)

    h = b.relu(mydense(b, x, 64, 32, name="l1"), name="h")
    b.output(mydense(b, h, 32, 10, name="l2"))
    assert b.build().models["Custom"] == nnc.parse(CUSTOM).models["Custom"]
    with pytest.raises(ArgumentError, match="param takes no tensor input"):
        b2 = nnc.Builder("M")
        b2.param(b2.input("x", [4]), [4])


def test_an_output_of_params_alone_is_an_error() -> None:
    """A param has no batch axis of its own (it is held [1, *shape]), so an output
    computed from params alone would have a batch of 1 whatever the input."""
    from nnc.errors import GraphError

    source = "model M {\n    input x: [3]\n    w = param([3])\n    output w |> tanh\n}\n"
    with pytest.raises(GraphError, match=r"<string>:4:17: output 'tanh_1' of model 'M' does "):
        nnc.parse(source)
    # read by an input-dependent node, it is fine
    assert out_shape("input x: [3]\n    w = param([3])\n    output x + (w |> tanh)") == (3,)
