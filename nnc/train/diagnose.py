"""Where a diverged training step first went non-finite.

When a batch's loss comes back NaN or infinite, "the loss diverged" tells a user
little. This module answers the better question: which value went non-finite
first? Given the canonical weights the step started from and the batch, it checks
the parameters in node order, then runs the batch forward through the NumPy backend
in float32 (the precision every backend trains in, so overflow happens where it
happened there) keeping the output of every node, and reports the first non-finite
one in topological order. When every value is finite, the loss computation itself
went non-finite (typically a squared error that overflowed).

>>> import numpy as np, nnc
>>> program = nnc.parse("model M { input x: [1]  dense(1) relu }")
>>> weights = {"dense_1.weight": np.array([[3e38]], np.float32),
...            "dense_1.bias": np.zeros(1, np.float32)}
>>> print(first_non_finite(program, "M", weights, [np.array([[2.0]], np.float32)]))
the output of layer 'dense_1' (dense) is the first non-finite value (infinite)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nnc.ir.passes import inline_calls, model_params
from nnc.ir.program import Model, Program


@dataclass(frozen=True)
class Finding:
    """The first non-finite value of a step: a parameter, a layer's output, or (every
    value finite) the loss."""

    kind: Literal["parameter", "layer", "loss"]
    name: str
    op: str = ""
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "parameter":
            return f"parameter '{self.name}' was already non-finite ({self.detail})"
        if self.kind == "layer":
            return (
                f"the output of layer '{self.name}' ({self.op}) is the first non-finite "
                f"value ({self.detail})"
            )
        return (
            f"every layer's output is finite ({self.detail}), so the loss computation "
            "itself went non-finite"
        )


def first_non_finite(
    program: Program,
    model: Model | str,
    weights: Mapping[str, np.ndarray],
    inputs: Sequence[np.ndarray],
    training: bool = True,
) -> Finding:
    """The first non-finite parameter, else the first node whose output is non-finite
    for ``inputs`` (in topological order), else a loss finding with the largest
    magnitude seen. ``training`` runs dropout and batch statistics as a train step does.
    """
    for param in model_params(program, model):
        problem = _non_finite(weights[param.name])
        if problem:
            return Finding("parameter", param.name, detail=problem)
    flat = inline_calls(program, model)
    values = _every_output(program, flat, weights, inputs, training)
    largest, where = 0.0, ""
    for node in flat.nodes:
        for value in values[node.name]:
            problem = _non_finite(value)
            if problem:
                return Finding("layer", node.name, node.op, problem)
            if value.size and np.issubdtype(value.dtype, np.floating):
                peak = float(np.max(np.abs(value)))
                if peak >= largest:
                    largest, where = peak, node.name
    return Finding("loss", "", detail=f"the largest magnitude is {largest:.3g}, in '{where}'")


def _non_finite(value: np.ndarray) -> str:
    """``"NaN"``, ``"infinite"`` or ``""`` (all finite)."""
    value = np.asarray(value)
    if not np.issubdtype(value.dtype, np.floating) or np.all(np.isfinite(value)):
        return ""
    return "NaN" if np.any(np.isnan(value)) else "infinite"


def _every_output(
    program: Program,
    flat: Model,
    weights: Mapping[str, np.ndarray],
    inputs: Sequence[np.ndarray],
    training: bool,
) -> dict[str, list[np.ndarray]]:
    """Each node's outputs for one batch, from a NumPy module of the flat model whose
    outputs are all of its nodes."""
    # The numpy backend is imported here: nnc.train stays free of backends until a
    # run actually diverges.
    from nnc.backends.codegen import load_module, py_class_name
    from nnc.backends.numpy.module import generate
    from nnc.backends.numpy.runtime import build_runtime

    refs: list[tuple[str, str]] = []
    for node in flat.nodes:
        outs = (
            [node.name]
            if len(node.outs) == 1
            else [f"{node.name}:{k}" for k in range(len(node.outs))]
        )
        refs.extend((node.name, ref) for ref in outs)
    probe = flat.model_copy(update={"outputs": tuple(ref for _, ref in refs)})
    # The flat model's dotted names are a lowering form; generate() takes them as is
    # (validation would refuse them, and they come from a checked program).
    source = generate(Program(models={probe.name: probe}), probe.name, "<diagnosis>")
    module = load_module(source, f"diagnose_{probe.name}")
    runtime = build_runtime(module, py_class_name(probe.name), dict(weights), seed=0)
    with np.errstate(all="ignore"):
        results = runtime.forward(*inputs, training=training)
    if len(refs) == 1:
        results = (results,)
    values: dict[str, list[np.ndarray]] = {}
    for (name, _), value in zip(refs, results, strict=True):
        values.setdefault(name, []).append(np.asarray(value))
    return values
