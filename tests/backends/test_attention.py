"""attention: shapes, errors with line:column, parameter counts equal to torch's
nn.MultiheadAttention, every backend against the independent float64 loop reference
(causal, key mask with a fully masked sample, cross-attention over another length),
NumPy gradients through the masks, fmt round trip and builder == parser."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.errors import NncError
from nnc.ir.weights import init_weights
from tests.backends import attention_reference
from tests.backends.numpy.gradcheck import check, runtime_for
from tests.conftest import require

CASES = {
    "self, causal": "input x: [5, 8]\n    output attention(x, heads = 2, causal = true)",
    "cross, other length, key mask": "input x: [4, 6]\n    input m: [7, 5]\n    input mask: [7]\n"
    "    output attention(x, m, mask, heads = 3, key_dim = 4, value_dim = 2)",
    "symbolic t and s, causal cross": "input x: [t, 6]\n    input m: [s, 6]\n"
    "    output attention(x, m, heads = 2, causal = true)",
    "q, k, v, causal, key mask, no bias": "input x: [6, 4]\n    input k: [6, 3]\n"
    "    input v: [6, 5]\n    input mask: [6]\n"
    "    output attention(x, k, v, mask, heads = 2, causal = true, bias = false)",
}
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}


def _program(body: str) -> nnc.Program:
    return nnc.parse(f"model A {{\n    {body}\n}}\n")


def _inputs(program: nnc.Program, seed: int = 0) -> list[np.ndarray]:
    """Random float inputs; a mask [s] of 0/1 whose first sample attends no key."""
    rng = np.random.default_rng(seed)
    arrays = []
    for decl in program.models["A"].inputs:
        shape = (
            3,
            *({"t": 4, "s": 7}.get(d, d) if isinstance(d, str) else d for d in decl.type.shape),
        )
        if decl.name == "mask":
            mask = (rng.random(shape) < 0.6).astype(np.float32)
            mask[0] = 0.0
            mask[1, 0] = 1.0
            arrays.append(mask)
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays


def _weights(program: nnc.Program) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        k: rng.standard_normal(v.shape).astype(np.float32) * 0.5
        for k, v in init_weights(program, "A").items()
    }


def _prefixed(w: dict[str, np.ndarray], node: str) -> dict[str, np.ndarray]:
    return {k[len(node) + 1 :]: v for k, v in w.items() if k.startswith(node + ".")}


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow", "onnx"])
@pytest.mark.parametrize("case", list(CASES))
def test_backend_matches_loop_reference(case: str, backend: str) -> None:
    require(FRAMEWORK[backend])
    from nnc.backends import get_backend

    program = _program(CASES[case])
    weights = _weights(program)
    xs = _inputs(program)
    (node,) = program.models["A"].nodes
    want = attention_reference.evaluate(node, list(xs), _prefixed(weights, node.name))
    got = get_backend(backend).build(program, "A", weights).forward(*xs)
    deviation = float(np.abs(np.asarray(got, np.float64) - want).max())
    print(f"{case} on {backend}: max |deviation| {deviation:.2e}")
    assert deviation < 2e-5
    if "mask" in case:  # the first sample attends no key: the output is the output bias
        bias = weights.get(f"{node.name}.output.bias", np.zeros(want.shape[-1]))
        assert np.abs(np.asarray(got)[0] - bias).max() < 1e-6


@pytest.mark.parametrize("case", list(CASES))
def test_numpy_gradients_through_masks(case: str) -> None:
    source = f"model A {{\n    {CASES[case]}\n}}"
    runtime = runtime_for(source)
    errors = check(runtime, [x.astype(np.float64) for x in _inputs(_program(CASES[case]))])
    worst = max(errors, key=errors.__getitem__)
    print(f"{case}: worst relative gradient error {errors[worst]:.2e} ({worst})")
    assert errors[worst] < 1e-6


@pytest.mark.parametrize(
    ("heads", "d", "bias", "kdim", "vdim"),
    [(2, 8, True, None, None), (4, 8, False, None, None), (2, 6, True, 5, 3), (3, 9, False, 4, 7)],
)
def test_parameter_count_equals_torch(
    heads: int, d: int, bias: bool, kdim: int | None, vdim: int | None
) -> None:
    require("torch")
    import torch

    inputs = f"input x: [4, {d}]\n"
    call = f"attention(x, heads = {heads}, bias = {str(bias).lower()})"
    if kdim is not None:
        inputs += f"    input k: [6, {kdim}]\n    input v: [6, {vdim}]\n"
        call = f"attention(x, k, v, heads = {heads}, bias = {str(bias).lower()})"
    program = _program(f"{inputs}    output {call}")
    mha = torch.nn.MultiheadAttention(d, heads, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    assert nnc.count_params(program, "A") == sum(p.numel() for p in mha.parameters())


def test_shapes_and_symbolic_lengths() -> None:
    program = _program(
        "input x: [t, 8]\n    input m: [s, 3]\n    output attention(x, m, heads = 2)"
    )
    (node,) = program.models["A"].nodes
    assert node.type.shape == ("t", 8)


@pytest.mark.parametrize(
    ("body", "where", "text"),
    [
        ("input x: [4, 6]\n    attention(4)", "3:5", "query width 6 is not divisible by heads = 4"),
        (
            "input x: [4, 6]\n    input k: [5, 6]\n    input v: [7, 6]\n"
            "    output attention(x, k, v, heads = 2)",
            "5:12",
            "keys [5, 6] and values [7, 6]",
        ),
        (
            "input x: [4, 6]\n    input m: [5, 6]\n    input mask: [4]\n"
            "    output attention(x, m, mask, heads = 2)",
            "5:12",
            "mask [4] for keys [5, 6]",
        ),
        ("input x: [6]\n    attention(2)", "3:5", "rank-2 query"),
    ],
)
def test_errors_name_the_place_and_shapes(body: str, where: str, text: str) -> None:
    with pytest.raises(NncError) as info:
        _program(body)
    message = str(info.value)
    assert where in message and text in message, message


def test_fmt_round_trip_and_builder_equals_parser() -> None:
    source = (
        "model A {\n    input x: [5, 8]\n    input m: [7, 6]\n    input mask: [7]\n"
        "    y = attention(x, m, mask, heads = 4, key_dim = 3, causal = true, dropout = 0.1)\n"
        "    output y\n}\n"
    )
    program = nnc.parse(source)
    assert nnc.parse(nnc.format(program)) == program
    b = nnc.Builder("A")
    x, m, mask = b.input("x", [5, 8]), b.input("m", [7, 6]), b.input("mask", [7])
    b.output(b.attention(x, m, mask, heads=4, key_dim=3, causal=True, dropout=0.1, name="y"))
    assert b.build() == program


def test_parameter_names_and_layouts() -> None:
    program = _program(
        "input x: [5, 8]\n    input m: [7, 6]\n    output attention(x, m, heads = 2, value_dim = 3)"
    )
    shapes = {k: v.shape for k, v in init_weights(program, "A").items()}
    assert shapes == {
        "attention_1.query.weight": (8, 8),
        "attention_1.query.bias": (8,),
        "attention_1.key.weight": (8, 6),
        "attention_1.key.bias": (8,),
        "attention_1.value.weight": (6, 6),
        "attention_1.value.bias": (6,),
        "attention_1.output.weight": (8, 6),
        "attention_1.output.bias": (8,),
    }


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow", "onnx"])
def test_twenty_steps_match_the_float64_reference(backend: str) -> None:
    """nnc verify's matrix (forward, gradients, 20 sgd steps) on two stacked
    self-attention layers, causal and not (training takes one input, so the key mask
    and cross-attention are covered by the forward and gradient tests above)."""
    require(FRAMEWORK[backend])
    from nnc.verify import verify

    program = _program(
        "input x: [5, 6]\n    attention(2, causal = true)\n"
        "    attention(3, key_dim = 2, value_dim = 3, bias = false)"
    )
    report = verify(program, backends=[backend], steps=20)
    assert report.equivalent, report


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_dropout_on_the_weights_in_training_only(backend: str) -> None:
    require(FRAMEWORK[backend])
    from nnc.backends import get_backend

    program = _program("input x: [6, 8]\n    output attention(x, heads = 2, dropout = 0.5)")
    plain = _program("input x: [6, 8]\n    output attention(x, heads = 2)")
    weights = _weights(program)
    (x,) = _inputs(program)
    runtime = get_backend(backend).build(program, "A", weights)
    evaluation = np.asarray(runtime.forward(x), np.float64)
    want = np.asarray(get_backend("numpy").build(plain, "A", weights).forward(x), np.float64)
    assert np.abs(evaluation - want).max() < 1e-5  # evaluation: no dropout
    runtime.seed(3)
    first = np.asarray(runtime.forward(x, training=True), np.float64)
    runtime.seed(3)
    again = np.asarray(runtime.forward(x, training=True), np.float64)
    assert np.array_equal(first, again)  # masks from the backend's seeded generator
    assert np.abs(first - want).max() > 1e-3  # training: the weights are dropped
