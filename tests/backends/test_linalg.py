"""matmul and param on every backend against the float64 reference of
tests/linalg_reference.py (a per-sample loop over np.matmul): the forward pass on
NumPy, torch, TensorFlow and ONNX, and the gradients (parameters, the param's
included, and inputs) on torch and TensorFlow against central differences of the
reference. NumPy's gradients are checked by tests/backends/numpy/test_gradients.py
(the registry examples and the matmul variants there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nnc
from nnc.ir.passes import inline_calls
from tests.backends.onnx import reference as onnx_reference
from tests.backends.onnx.helpers import random_inputs, random_weights
from tests.conftest import require

MYDENSE = """
block mydense(k, n) {
    input x: [k]
    w = param([k, n])
    b = param([n], init = zeros)
    output x @ w + b
}
"""

# Each case: a model body T with one output, covering one corner of the rule.
CASES = {
    "vector @ matrix": "input x: [4]\n    w = param([4, 3])\n    output x @ w",
    "matrix @ vector": "input x: [4]\n    w = param([3, 4])\n    output w @ x",
    "vector @ vector": "input x: [4]\n    v = param([4])\n    output (x @ v) |> reshape([1])",
    "leading axes, rank 3 @ rank 2": "input x: [2, 3, 4]\n    w = param([4, 5])\n    output x @ w",
    "size-1 leading axis": "input x: [2, 3, 4]\n    w = param([1, 4, 5])\n    output x @ w",
    # TensorFlow 2.21's broadcasting BatchMatMulV2 gradient corrupted memory here
    "size-1 axis on both sides": "input x: [1, 6, 2]\n    w = param([2, 4])\n"
    "    output (x |> tanh) @ w",
    "vector @ stack": "input x: [3]\n    s = param([2, 3, 2])\n    output x @ s",
    "stack @ vector": "input x: [3]\n    s = param([2, 2, 3])\n    output s @ x",
    "tensor @ tensor": "input x: [3, 4]\n    y = x |> dense(3)\n    z = x |> dense(2)\n"
    "    output matmul(y, z)",
    "custom dense layer": "input x: [5]\n    h = mydense(x, 5, 4) |> tanh\n"
    "    output mydense(h, 4, 2)",
}
RTOL = 2e-5  # float32 against float64, relative to max(1, |reference|)


def program(name: str) -> nnc.Program:
    recipe = 'train T {\n    data "unused.npz"\n    loss mse\n}\n'
    return nnc.parse(f"{MYDENSE}\nmodel T {{\n    {CASES[name]}\n}}\n{recipe}", f"<{name}>")


def relative(got: Any, want: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))


def reference(p: nnc.Program, weights: dict[str, np.ndarray], xs: list[np.ndarray]) -> np.ndarray:
    (out,) = onnx_reference.forward(inline_calls(p, "T"), weights, *xs)
    return np.asarray(out)


def forward_deviation(backend: str, name: str) -> float:
    """The forward pass of ``backend`` on a case, against the reference."""
    p = program(name)
    model = p.models["T"]
    weights = random_weights(p, model)
    xs = random_inputs(model)
    if backend == "numpy":
        from nnc.backends import numpy as numpy_backend

        got = numpy_backend.build(p, "T", weights).forward(*xs)
    elif backend == "torch":
        require("torch")
        from nnc.backends import torch as torch_backend

        got = torch_backend.build(p, "T", weights=weights).forward(*xs)
    elif backend == "tensorflow":
        require("tensorflow")
        from nnc.backends import tensorflow as tf_backend

        runtime = tf_backend.build(p, "T")
        runtime.set_weights(weights)
        got = runtime.forward(*xs)
    else:
        require("onnx")
        require("onnxruntime")
        from nnc.backends import onnx as onnx_backend

        got = onnx_backend.build(p, "T", weights=weights, threads=1).forward(*xs)
    return relative(got, reference(p, weights, xs))


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow", "onnx"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_the_reference(backend: str, name: str) -> None:
    assert forward_deviation(backend, name) < RTOL


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_gradients_match_the_reference(name: str) -> None:
    require("torch")
    from tests.backends.torch import support

    support.assert_close(support.reference_check(program(name), "T"))


@pytest.mark.parametrize(
    "name", ["vector @ matrix", "stack @ vector", "size-1 axis on both sides", "custom dense layer"]
)
def test_tensorflow_gradients_match_the_reference(name: str) -> None:
    require("tensorflow")
    from tests.backends.tensorflow.test_ops import check_against_reference

    source = nnc.format(program(name))
    check_against_reference(source, lambda key, make: make(), f"linalg-{name}")


CALLED_AND_FROZEN = """
model Inner {
    input a: [4]
    w = param([4, 4], init = orthogonal)
    output (a @ w) |> tanh
}

model Outer {
    input x: [4]
    h = x |> Inner |> Inner |> Inner
    f = param([4, 3], trainable = false)
    output (h @ f) |> dense(2)
}

train Outer {
    data "unused.npz"
    loss mse
}
"""


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow", "onnx"])
def test_params_in_called_models_and_frozen_params(backend: str) -> None:
    """A param inside a model used as a layer (twice: two parameters, prefixed with
    each call) and a frozen param: forward, gradients and 5 sgd steps agree with the
    float64 reference, and the frozen param keeps its value."""
    from nnc.verify import verify
    from tests.equivalence.matrix import explain, need

    need(backend)
    program = nnc.parse(CALLED_AND_FROZEN)
    names = [p.name for p in nnc.model_params(program, "Outer")]
    assert names[:4] == ["inner_1.w.value", "inner_2.w.value", "h.w.value", "f.value"]
    assert nnc.count_params(program, "Outer", trainable_only=True) == 3 * 16 + 3 * 2 + 2
    report = verify(program, backends=[backend], steps=5)
    assert report.equivalent, explain(report)


def test_a_frozen_param_keeps_its_value_and_a_trainable_one_moves() -> None:
    from nnc.backends import numpy as numpy_backend

    program = nnc.parse(CALLED_AND_FROZEN)
    model = program.models["Outer"]
    weights = random_weights(program, model)
    runtime = numpy_backend.build(program, "Outer", weights)
    (x,) = random_inputs(model)
    runtime.train_step(x, np.ones((len(x), 2), np.float32), 0.1)
    after = runtime.get_weights()
    assert np.array_equal(after["f.value"], weights["f.value"])
    assert not np.array_equal(after["h.w.value"], weights["h.w.value"])


MIXED = """
model Mix {
    input x: [2, 4, 4]
    w = param([2, 4, 4], init = normal(0, 0.5))
    v = param([4, 4])
    y = (x + w) |> conv2d(3, 3, padding = same) |> tanh
    z = (y @ v) @ v
    output z |> flatten |> dense(2)
}

train Mix {
    data "unused.npz"
    loss mse
    l2   0.01
}
"""


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow", "onnx"])
def test_params_feeding_a_conv_and_read_twice_with_l2(backend: str) -> None:
    """A rank-3 param added to an image before a conv (TensorFlow's channels-last
    layout), a param read by two products (its gradients accumulate), and L2 on both
    (params of rank >= 2 decay): 5 sgd steps agree with the float64 reference."""
    from nnc.verify import verify
    from tests.equivalence.matrix import explain, need

    need(backend)
    specs = {p.name: p.spec for p in nnc.model_params(nnc.parse(MIXED), "Mix")}
    assert specs["w.value"].decay and specs["v.value"].decay
    report = verify(nnc.parse(MIXED), backends=[backend], steps=5)
    assert report.equivalent, explain(report)
