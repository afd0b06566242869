"""learned_positions and sinusoidal_positions: the encoding's values from its formula
written by hand, every backend against the independent float64 loop reference
(symbolic lengths, an odd feature dim, long sequences), errors with line:column,
NumPy gradients, the torch parameter count, fmt round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnc
from nnc.errors import NncError
from nnc.ir.weights import init_weights
from tests.backends import positions_reference
from tests.backends.numpy.gradcheck import check, runtime_for
from tests.conftest import require

CASES = {
    "learned, symbolic t": ("input x: [t, 6]\n    learned_positions(9)", (3, 9)),
    "sinusoidal, odd d, long": ("input x: [t, 7]\n    sinusoidal_positions", (60,)),
    "sinusoidal, base 100": ("input x: [5, 4]\n    sinusoidal_positions(base = 100)", (5,)),
    "learned after sinusoidal": (
        "input x: [t, 8]\n    sinusoidal_positions\n    learned_positions(16)",
        (2, 16),
    ),
}
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}


def _program(body: str) -> nnc.Program:
    return nnc.parse(f"model P {{\n    {body}\n}}\n")


def test_encoding_values_from_the_formula() -> None:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...): d = 4, by hand."""
    program = _program("input x: [3, 4]\n    sinusoidal_positions")
    got = nnc.backends.get_backend("numpy").build(program, "P").forward(np.zeros((1, 3, 4)))
    want = [
        [0.0, 1.0, 0.0, 1.0],
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
    ]
    np.testing.assert_allclose(got[0], want, atol=1e-7)


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow", "onnx"])
@pytest.mark.parametrize("case", list(CASES))
def test_backend_matches_loop_reference(case: str, backend: str) -> None:
    require(FRAMEWORK[backend])
    from nnc.backends import get_backend

    body, lengths = CASES[case]
    program = _program(body)
    rng = np.random.default_rng(3)
    weights = {
        k: rng.standard_normal(v.shape).astype(np.float32)
        for k, v in init_weights(program, "P").items()
    }
    runtime = get_backend(backend).build(program, "P", weights)
    d = program.models["P"].inputs[0].type.shape[1]
    for t in lengths:
        x = rng.standard_normal((2, t, d)).astype(np.float32)
        want = x.astype(np.float64)
        for node in program.models["P"].nodes:
            own = {
                k[len(node.name) + 1 :]: v for k, v in weights.items() if k.startswith(node.name)
            }
            want = positions_reference.evaluate(node, want, own)
        deviation = float(np.abs(np.asarray(runtime.forward(x), np.float64) - want).max())
        print(f"{case}, t={t} on {backend}: max |deviation| {deviation:.2e}")
        assert deviation < 1e-6


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "input x: [10, 4]\n    learned_positions(8)",
            r"3:5: learned_positions: a sequence of 10 "
            r"positions is longer than max_len = 8. Received: \[10, 4\]",
        ),
        (
            "input x: [6]\n    sinusoidal_positions",
            r"3:5: sinusoidal_positions: expects a rank-2 "
            r"sequence \[t, features\]",
        ),
        (
            "input x: [t, d]\n    learned_positions(8)",
            r"3:5: learned_positions: cannot resolve "
            r"symbolic dim 'd'",
        ),
        (
            "input x: int64[4, 3]\n    sinusoidal_positions",
            r"3:5: sinusoidal_positions: expects a float32 input",
        ),
        ("input x: [4, 3]\n    sinusoidal_positions(base = 1)", r"base"),
    ],
)
def test_errors_name_the_op_and_the_place(body: str, message: str) -> None:
    with pytest.raises(NncError, match=message):
        _program(body)


def test_numpy_refuses_a_longer_sequence_at_run_time() -> None:
    runtime = nnc.backends.get_backend("numpy").build(
        _program(CASES["learned, symbolic t"][0]), "P"
    )
    with pytest.raises(ValueError, match="a sequence of 10 positions is longer than max_len = 9"):
        runtime.forward(np.zeros((1, 10, 6), np.float32))


@pytest.mark.parametrize("case", list(CASES))
def test_numpy_gradients(case: str) -> None:
    body, lengths = CASES[case]
    source = f"model P {{\n    {body}\n    dense(3) tanh\n}}"
    runtime = runtime_for(source)
    rng = np.random.default_rng(1)
    d = _program(body).models["P"].inputs[0].type.shape[1]
    for t in lengths:
        errors = check(runtime, [rng.standard_normal((2, t, d))], training=True)
        worst = max(errors, key=errors.__getitem__)
        assert errors[worst] < 1e-6, f"t={t}: {worst} relative error {errors[worst]:.2e}"


def test_parameter_count_equals_a_torch_position_table() -> None:
    """A learned table [max_len, d] has the parameters of torch's nn.Embedding(max_len, d)."""
    require("torch")
    import torch

    program = _program("input x: [t, 32]\n    learned_positions(128)\n    sinusoidal_positions")
    table = torch.nn.Embedding(128, 32)
    assert nnc.count_params(program, "P") == sum(p.numel() for p in table.parameters()) == 4096


def test_format_round_trips() -> None:
    program = _program(CASES["learned after sinusoidal"][0])
    assert nnc.parse(nnc.format(program)) == program
