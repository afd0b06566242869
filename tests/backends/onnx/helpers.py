"""Shared pieces of the ONNX backend tests: specs, weights and inputs with meaning."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import nnc
from nnc.ir.ops import OPS
from nnc.ir.passes import inline_calls, model_params
from nnc.ir.program import Model, Program
from tests import conftest
from tests.backends.onnx import reference

SYMBOL_SIZE = 5  # every symbolic dim (t, h, w) is run at this size
BATCH = 3


def op_program(op: str) -> Program:
    """The registry's example model of ``op``."""
    body = OPS[op].example.format(op=op)
    return nnc.parse(f"model M {{\n    {body}\n}}\n", f"<{op} example>")


def random_weights(program: Program, model: Model | str, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights far from their initializers (zeros, ones) so every term matters;
    running variances stay positive."""
    rng = np.random.default_rng(seed)
    out = {}
    for p in model_params(program, model):
        if p.name.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, size=p.shape)
        else:
            value = rng.normal(0.0, 0.5, size=p.shape)
        out[p.name] = value.astype(np.float32)
    return out


def random_inputs(model: Model, seed: int = 1, batch: int = BATCH) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for i in model.inputs:
        shape = [batch, *(d if isinstance(d, int) else SYMBOL_SIZE for d in i.type.shape)]
        if i.type.dtype == "int64":
            vocab = min(n.vocab for n in model.nodes if n.op == "embedding" and i.name in n.inputs)
            arrays.append(rng.integers(0, vocab, size=shape).astype(np.int64))
        else:
            arrays.append(rng.normal(0.0, 1.0, size=shape).astype(np.float32))
    return arrays


def reference_forward(
    program: Program, model: Model, weights: dict[str, np.ndarray], inputs: list[np.ndarray]
) -> list[np.ndarray]:
    return reference.forward(inline_calls(program, model), weights, *inputs)


def outputs_list(result: object) -> list[np.ndarray]:
    return list(result) if isinstance(result, tuple) else [np.asarray(result)]


def max_deviation(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    assert len(got) == len(want)
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape, f"shape {g.shape} != {w.shape}"
        worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w))) if g.size else 0.0)
    return worst


def load_example(path: Path) -> tuple[Program, Model]:
    from nnc.backends.codegen import select

    program = conftest.load_example(path)
    model, _ = select(program)
    return program, model
