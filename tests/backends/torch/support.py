"""Shared helpers of the PyTorch backend's tests: programs, inputs, weights, and the
differential check against the float64 reference (:mod:`.reference`).

Tolerances (float32 against float64): forward values within
``FORWARD_RTOL * max(1, max|reference|)``; gradients within
``GRADIENT_RTOL * max(1e-2, max|reference gradient|)`` per tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

import nnc
from nnc.ir.ops.reshape import Dropout
from nnc.ir.passes.params import model_params
from nnc.ir.program import Model, Program
from nnc.ir.types import TensorType
from nnc.ir.weights import init_weights
from tests.backends.torch import reference

FORWARD_RTOL = 1e-5
GRADIENT_RTOL = 1e-4
SEQUENCE_LENGTH = 6


def op_program(op: str, example: str) -> Program:
    """``model T { <example> }`` for one op of the registry."""
    return nnc.parse("model T {\n    " + example.format(op=op) + "\n}\n")


def without_dropout(program: Program) -> Program:
    """The program with every dropout rate set to 0: masks are each framework's own,
    so comparisons in training mode run without them (docs/semantics.md)."""
    models = {}
    for name, m in program.models.items():
        nodes = tuple(
            n.model_copy(update={"rate": 0.0}) if isinstance(n, Dropout) else n for n in m.nodes
        )
        models[name] = m.model_copy(update={"nodes": nodes})
    return program.model_copy(update={"models": models})


def concrete(t: TensorType, length: int) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else length for d in t.shape)


def random_inputs(
    program: Program, model: Model, batch: int, rng: np.random.Generator, length: int
) -> list[np.ndarray]:
    """One random batch per model input; int64 inputs index the first embedding."""
    vocab = min(
        (getattr(n, "vocab", 1 << 30) for n in model.nodes if n.op == "embedding"), default=5
    )
    out = []
    for decl in model.inputs:
        shape = (batch, *concrete(decl.type, length))
        if decl.type.dtype == "int64":
            out.append(rng.integers(0, vocab, size=shape).astype(np.int64))
        else:
            out.append(rng.normal(size=shape).astype(np.float32))
    return out


def random_weights(
    program: Program, model: Model, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """nnc's initial weights, perturbed so that no bias is zero and no scale is one;
    running variances stay positive."""
    weights = init_weights(program, model, seed=3)
    for p in model_params(program, model):
        noise = rng.normal(scale=0.3, size=p.shape)
        if p.name.endswith("running_var"):
            weights[p.name] = (1 + np.abs(noise)).astype(np.float32)
        else:
            weights[p.name] = (weights[p.name] + noise).astype(np.float32)
    return weights


def trainable_names(program: Program, model: Model) -> list[str]:
    return [p.name for p in model_params(program, model) if p.spec.trainable and not p.spec.buffer]


@dataclass
class Deviation:
    name: str
    max_abs: float
    scale: float
    limit: float

    def __str__(self) -> str:
        return (
            f"{self.name}: max |diff| {self.max_abs:.3g} "
            f"(scale {self.scale:.3g}, limit {self.limit:.3g})"
        )

    @property
    def ok(self) -> bool:
        return self.max_abs <= self.limit


def deviation(
    name: str, actual: np.ndarray, expected: np.ndarray, rtol: float, floor: float
) -> Deviation:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected), initial=0.0))
    diff = float(np.max(np.abs(actual - expected), initial=0.0))
    return Deviation(name, diff, scale, rtol * max(floor, scale))


def assert_close(deviations: Sequence[Deviation]) -> None:
    """Fail listing every tensor's deviation when any is out of tolerance."""
    bad = [d for d in deviations if not d.ok]
    assert not bad, "deviations from the float64 reference:\n" + "\n".join(
        str(d) for d in deviations
    )


def forward_deviations(
    program: Program,
    model: str,
    weights: Mapping[str, np.ndarray],
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    training: bool,
) -> list[Deviation]:
    expected = reference.run(program, model, weights, inputs, training=training)
    return [
        deviation(f"output {k}", got, want, FORWARD_RTOL, 1.0)
        for k, (got, want) in enumerate(zip(outputs, expected, strict=True))
    ]


def reference_check(
    program: Program, model: str, length: int = SEQUENCE_LENGTH, batch: int = 3, seed: int = 0
) -> list[Deviation]:
    """Differential check of the generated module against the float64 reference.

    With random weights and inputs it compares: outputs in evaluation mode; outputs
    and updated batchnorm statistics in training mode (dropout off); and the
    gradients of ``sum_k <output_k, R_k>`` (R random) with respect to every trainable
    parameter and every float input, from torch's autograd and from central
    differences of the reference.
    """
    import torch

    from nnc.backends import torch as backend

    m = program.models[model]
    rng = np.random.default_rng(seed)
    weights = random_weights(program, m, rng)
    inputs = random_inputs(program, m, batch, rng, length)
    evaluated = backend.build(program, model, weights=weights).forward(*inputs)
    evaluated = evaluated if isinstance(evaluated, tuple) else (evaluated,)
    found = forward_deviations(program, model, weights, inputs, evaluated, training=False)

    program = without_dropout(program)
    runtime = backend.build(program, model, weights=weights)
    runtime.model.train()
    tensors = [torch.tensor(x, requires_grad=x.dtype == np.float32) for x in inputs]
    outputs = runtime.model(*tensors)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    directions = [rng.normal(size=tuple(o.shape)) for o in outputs]
    pairs = zip(outputs, directions, strict=True)
    total = sum((o.double() * torch.from_numpy(r)).sum() for o, r in pairs)
    total.backward()  # type: ignore[union-attr]

    trace = reference.Trace()
    expected = reference.run(program, model, weights, inputs, training=True, trace=trace)
    for k, (got, want) in enumerate(zip(outputs, expected, strict=True)):
        found.append(
            deviation(f"training output {k}", got.detach().numpy(), want, FORWARD_RTOL, 1.0)
        )
    statistics = runtime.get_weights()
    for name, want in trace.running.items():
        found.append(deviation(name, statistics[name], want, FORWARD_RTOL, 1.0))

    analytic = {name: runtime.tensors[name].grad.numpy() for name in trainable_names(program, m)}
    point = {name: weights[name] for name in weights}
    for i, (x, t) in enumerate(zip(inputs, tensors, strict=True)):
        if t.requires_grad:
            analytic[f"input {i}"] = t.grad.numpy()
            point[f"input {i}"] = x

    def functional(p: dict[str, np.ndarray]) -> float:
        xs = [p.get(f"input {i}", x) for i, x in enumerate(inputs)]
        frozen = reference.Trace(steps=trace.steps, frozen=True)
        outs = reference.run(program, model, p, xs, training=True, trace=frozen)
        return float(sum(np.sum(o * r) for o, r in zip(outs, directions, strict=True)))

    numeric = reference.numeric_gradient(functional, point, list(analytic))
    for name, (indices, derivatives) in numeric.items():
        got = analytic[name].reshape(-1)[indices]
        found.append(deviation(f"d/d {name}", got, derivatives, GRADIENT_RTOL, 1e-2))
    return found
