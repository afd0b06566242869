"""Broadcasting arithmetic on every backend (issue 19): edge cases of the broadcast
(size-1 axes on either side, rank mismatch, per-sample rank 0, numbers, constants)
against a float64 NumPy reference written out here, NumPy gradients against central
finite differences, and the gradients nnc defines at ties and at a <= 0 for pow on
numpy, torch and tensorflow."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import nnc
from tests.backends.numpy.gradcheck import check, runtime_for
from tests.conftest import require

BACKENDS = ["numpy", "torch", "tensorflow", "onnx"]
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}
BATCH = 3
FORWARD_TOLERANCE = 2e-6  # float32 against float64, relative to max(1, |reference|)
GRADIENT_TOLERANCE = 1e-6

Ref = Callable[..., np.ndarray]

BINARY: dict[str, tuple[str, Ref]] = {
    "add": ("x + y", np.add),
    "sub": ("x - y", np.subtract),
    "mul": ("x * y", np.multiply),
    "div": ("x / y", np.divide),
    "pow": ("pow(x, y)", lambda a, b: np.exp(b * np.log(a))),
    "maximum": ("maximum(x, y)", lambda a, b: np.where(a >= b, a, b)),
    "minimum": ("minimum(x, y)", lambda a, b: np.where(a <= b, a, b)),
}

# (x shape, y shape, x and y batched [N, ...] -> both as [N, ...] of the result's rank)
SHAPES: dict[str, tuple[list[int], list[int], Callable[..., tuple[np.ndarray, np.ndarray]]]] = {
    "unit axes on both sides": ([3, 1], [1, 4], lambda x, y: (x, y)),
    "unit axis on the right": ([2, 3], [2, 1], lambda x, y: (x, y)),
    "lower rank on the right": ([2, 3, 4], [4], lambda x, y: (x, y[:, None, None, :])),
    "lower rank with a unit axis": ([2, 3, 4], [3, 1], lambda x, y: (x, y[:, None, :, :])),
    "lower rank on the left": ([4], [2, 3, 4], lambda x, y: (x[:, None, None, :], y)),
    "both stretched": ([3, 1, 5], [4, 1], lambda x, y: (x, y[:, None, :, :])),
}


def _inputs(*shapes: list[int], seed: int = 0) -> list[np.ndarray]:
    """Positive values away from 0 (pow's base, div's denominator), float32-exact."""
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(0.5, 2.0, size=(BATCH, *s)).astype(np.float32).astype(np.float64)
        for s in shapes
    ]


def _forward(backend: str, source: str, inputs: list[np.ndarray]) -> np.ndarray:
    require(FRAMEWORK[backend])
    program = nnc.parse(source)
    runtime = nnc.runtime(program, backend)
    out = runtime.forward(*[a.astype(np.float32) for a in inputs])
    return np.asarray(out, dtype=np.float64)


def _deviation(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, f"{got.shape} != {want.shape}"
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


def _model(shapes: list[list[int]], names: str, body: str) -> str:
    decls = "\n".join(
        f"    input {n}: [{', '.join(map(str, s))}]" for n, s in zip(names, shapes, strict=True)
    )
    return f"model M {{\n{decls}\n    {body}\n}}\n"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(SHAPES))
@pytest.mark.parametrize("op", sorted(BINARY))
def test_broadcasting_binary_op(op: str, case: str, backend: str) -> None:
    expr, fn = BINARY[op]
    xs, ys, align = SHAPES[case]
    x, y = _inputs(xs, ys)
    want = fn(*align(x, y))
    got = _forward(backend, _model([xs, ys], "xy", f"output {expr}"), [x, y])
    assert _deviation(got, want) < FORWARD_TOLERANCE


# Numbers on either side, rank-0 operands and constants: (inputs, body, reference).
SCALAR_CASES: dict[str, tuple[list[list[int]], str, Ref]] = {
    "number right of +": ([[2, 3]], "output x + 1", lambda x: x + 1),
    "number left of -": ([[2, 3]], "output 1 - x", lambda x: 1 - x),
    "number right of -": ([[2, 3]], "output x - 0.25", lambda x: x - 0.25),
    "number left of *": ([[2, 3]], "output 2 * x", lambda x: 2 * x),
    "number right of /": ([[2, 3]], "output x / 2", lambda x: x / 2),
    "number left of /": ([[2, 3]], "output 3 / x", lambda x: 3 / x),
    "pow with a number exponent": ([[2, 3]], "output pow(x, 2)", lambda x: x * x),
    "pow with a number base": ([[2, 3]], "output pow(2, x)", lambda x: np.exp(x * np.log(2))),
    "negative number base in brackets": (
        [[2]],
        "output pow(-2, x - x + 2)",
        lambda x: np.full_like(x, 4.0),
    ),
    "maximum with a number": ([[2, 3]], "output maximum(x, 1)", lambda x: np.where(x >= 1, x, 1)),
    "minimum with a number left": (
        [[2, 3]],
        "output minimum(1.5, x)",
        lambda x: np.where(x >= 1.5, 1.5, x),
    ),
    "unary minus": ([[2, 3]], "output -x", lambda x: -x),
    "negative number operand": ([[4]], "output x * -0.5", lambda x: x * -0.5),
    "rank-0 operand": (
        [[4]],
        "s = x |> sum\n    output x * s",
        lambda x: x * x.sum(axis=1)[:, None],
    ),
    "rank-0 on both sides": (
        [[4]],
        "s = x |> sum\n    output s - s * 2",
        lambda x: -x.sum(axis=1),
    ),
    "constant tensor": (
        [[2, 3]],
        "c = constant([[1, 0.5, 2], [3, -4, 5]])\n    output x * c",
        lambda x: x * np.array([[1, 0.5, 2], [3, -4, 5]]),
    ),
    "constant of lower rank": (
        [[2, 3]],
        "output x + constant([1, 2, 3])",
        lambda x: x + np.array([1, 2, 3])[None, None, :],
    ),
    "constant of higher rank": (
        [[3]],
        "output constant([[1], [2]]) - x",
        lambda x: np.array([[1], [2]])[None] - x[:, None, :],
    ),
    "rank-0 constant": ([[3]], "output x / constant(0.5)", lambda x: x / 0.5),
    "computed constant": (
        [[3]],
        "c = constant([1, -2, 3]) |> relu\n    output x * c + 1",
        lambda x: x * np.array([1, 0, 3]) + 1,
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(SCALAR_CASES))
def test_numbers_and_constants(case: str, backend: str) -> None:
    shapes, body, fn = SCALAR_CASES[case]
    inputs = _inputs(*shapes)
    got = _forward(backend, _model(shapes, "x", body), inputs)
    assert _deviation(got, fn(*inputs)) < FORWARD_TOLERANCE


def test_generated_code_reads_like_the_source() -> None:
    source = _model([[2, 3], [3]], "xy", "h = x * 0.5\n    g = 1 - y\n    output h / g")
    program = nnc.parse(source)
    numpy_code = nnc.emit(program, "numpy")
    assert "h = x * 0.5\n" in numpy_code
    assert "g = 1.0 - y\n" in numpy_code
    assert "h / g[:, None]" in numpy_code  # the rank alignment, only where ranks differ
    torch_code = nnc.emit(program, "torch")
    assert "h = x * 0.5\n" in torch_code and "1.0 - y\n" in torch_code
    tf_code = nnc.emit(program, "tensorflow")
    assert "h = x * 0.5\n" in tf_code and "1.0 - y\n" in tf_code


# -- gradients ------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(SHAPES))
@pytest.mark.parametrize("op", sorted(BINARY))
def test_broadcast_gradients_against_finite_differences(op: str, case: str) -> None:
    """Both operands' gradients, summed back over the stretched and inserted axes."""
    expr, _ = BINARY[op]
    xs, ys, _ = SHAPES[case]
    source = _model([xs, ys], "xy", f"output {expr}")
    errors = check(runtime_for(source), _inputs(xs, ys))
    assert set(errors) == {"input 0", "input 1"}, errors
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


@pytest.mark.parametrize("case", sorted(SCALAR_CASES))
def test_number_and_constant_gradients(case: str) -> None:
    shapes, body, _ = SCALAR_CASES[case]
    errors = check(runtime_for(_model(shapes, "x", body)), _inputs(*shapes))
    assert errors and max(errors.values()) < GRADIENT_TOLERANCE, errors


def test_gradient_through_a_constant_reaches_parameters() -> None:
    """A dense layer applied to a constant runs on its batch of 1; its gradient is
    summed over the real batch."""
    source = _model([[3]], "x", "p = constant([1, 0.5, -2]) |> dense(3)\n    output x * p")
    errors = check(runtime_for(source), _inputs([3]))
    assert {"p.weight", "p.bias"} <= set(errors), errors
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


# The gradients nnc defines where the maths leaves a choice, on each training backend.
DEFINED: dict[str, tuple[str, list[np.ndarray], list[np.ndarray]]] = {
    # ties: the left operand takes the whole gradient
    "maximum tie": (
        "output maximum(x, y)",
        [np.array([[1.0, 2.0]]), np.array([[1.0, 3.0]])],
        [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])],
    ),
    "minimum tie": (
        "output minimum(x, y)",
        [np.array([[1.0, 2.0]]), np.array([[1.0, 3.0]])],
        [np.array([[1.0, 1.0]]), np.array([[0.0, 0.0]])],
    ),
    # d/db = a^b ln a where a > 0, 0 where a <= 0; d/da = b a^(b-1)
    "pow at a <= 0": (
        "output pow(x, y)",
        [np.array([[-2.0, 0.0, 4.0]]), np.array([[2.0, 3.0, 0.5]])],
        [
            np.array([[2.0 * -2.0, 0.0, 0.5 * 4.0**-0.5]]),
            np.array([[0.0, 0.0, 2.0 * np.log(4.0)]]),
        ],
    ),
}


def _input_gradients(backend: str, source: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """d sum(output) / d inputs on ``backend``, through its framework's autodiff."""
    require(FRAMEWORK[backend])
    program = nnc.parse(source)
    arrays = [a.astype(np.float32) for a in inputs]
    if backend == "numpy":
        runtime = nnc.runtime(program, "numpy")
        out, cache = runtime.propagate(*arrays)
        _, grads = runtime.backpropagate(cache, np.ones_like(out), input_gradients=True)
        return [np.asarray(g, dtype=np.float64) for g in grads]
    if backend == "torch":
        import torch

        module = nnc.runtime(program, "torch").model
        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        module(*tensors).sum().backward()
        return [t.grad.numpy().astype(np.float64) for t in tensors]
    import tensorflow as tf

    model = nnc.runtime(program, "tensorflow").model
    tensors = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        for t in tensors:
            tape.watch(t)
        total = tf.reduce_sum(model(*tensors))
    return [g.numpy().astype(np.float64) for g in tape.gradient(total, tensors)]


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
@pytest.mark.parametrize("case", sorted(DEFINED))
def test_defined_gradients(case: str, backend: str) -> None:
    body, inputs, want = DEFINED[case]
    shapes = [list(a.shape[1:]) for a in inputs]
    grads = _input_gradients(backend, _model(shapes, "xy", body), inputs)
    for got, expected in zip(grads, want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
