"""Resource limits at check time: refuse specs that could never run.

A spec whose parameters, or whose activations at the recipe's batch size, exceed the
memory budget is refused with the estimated size, naming the layer responsible:
``dense 'dense_1' needs 3.7 TiB of parameters``. The budget is 16 GiB unless the
``NNC_MEMORY_BUDGET`` environment variable (``8GiB``, ``512MiB``, bytes) or an
explicit argument says otherwise.

Parameters are not held once. The estimate is the peak of the commands that hold
them all: ``nnc train`` and ``nnc compile --backend onnx`` / ``nnc export``, in
copies of the parameters' float32 bytes (see :func:`peak_copies`). A model whose
peak passes the budget is refused at its largest layer, with the peak's size.
Initial weights are drawn in float32 chunks (:meth:`nnc.ir.initializers._Init.draw`),
so the draw adds no float64 copy.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from nnc.errors import ResourceError
from nnc.ir.graph import callee_first
from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call
from nnc.ir.passes.params import node_param_values
from nnc.ir.summary import BYTES_PER_VALUE, human_bytes
from nnc.ir.training import Adagrad, Adam, GanRecipe, Optimizer, Recipe, Rmsprop, Sgd
from nnc.ir.types import numel

if TYPE_CHECKING:
    from nnc.ir.program import Model, Program

DEFAULT_BUDGET = 16 * 1024**3
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}


def parse_size(text: str) -> int:
    """``"8GiB"`` -> bytes.

    >>> parse_size("512MiB"), parse_size("2GB"), parse_size("1000")
    (536870912, 2000000000, 1000)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in _UNITS:
        raise ResourceError(f"cannot read the memory size {text!r}; write e.g. 8GiB or 512MiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def memory_budget(budget: int | None = None) -> int:
    if budget is not None:
        return budget
    env = os.environ.get("NNC_MEMORY_BUDGET")
    return parse_size(env) if env else DEFAULT_BUDGET


def check_resources(program: Program, budget: int | None = None) -> Program:
    """Raise a ResourceError for the first model that cannot fit the budget."""
    limit = memory_budget(budget)
    batches = _batch_sizes(program)
    per_node = _values_per_node(program)
    optimizers = _optimizers(program)
    for model in program.models.values():
        _check_params(model, per_node[model.name], limit)
        _check_activations(model, batches.get(model.name, 1), limit)
        _check_peak(model, per_node[model.name], optimizers.get(model.name), limit)
    return program


def _values_per_node(program: Program) -> dict[str, list[tuple[int, Node]]]:
    """Each model's nodes with their parameter values (a call: its callee's total),
    computed once, callees first (:func:`nnc.ir.passes.params.param_totals`)."""
    totals: dict[str, int] = {}
    out: dict[str, list[tuple[int, Node]]] = {}
    for name in callee_first(program):
        model = program.models[name]
        out[name] = [(node_param_values(model, node, totals), node) for node in model.nodes]
        totals[name] = sum(values for values, _ in out[name])
    return out


# Copies of the parameters (float32) that a command holds at its peak, measured on a
# 30-million-parameter dense model (tracemalloc for numpy, the resident set for torch
# and the ONNX export, whose copies are protobuf's):
# - the ONNX export (``compile --backend onnx``, ``export``): the weights, their bytes
#   in the initializers, the model's protobuf copy and its serialized bytes, and the
#   checker's copy: 6.7 measured, 8 counted;
# - training: the run's weights, the runtime's weights and optimizer slots, a copy of
#   both kept to replay a diverging step, a copy handed to the checkpoint and its
#   serialized bytes (four times weights and slots), plus gradients and the initial
#   weights: 13.2 measured with Adam on numpy (15.4 in the resident set), 14.5 on
#   torch; 4 * (1 + slots) + 5 counted (17 with Adam).
EXPORT_COPIES = 8


def optimizer_slots(optimizer: Optimizer) -> int:
    """The arrays of the parameters' size an optimizer keeps (Adam's two moments)."""
    if isinstance(optimizer, Adam):
        return 2
    if isinstance(optimizer, Adagrad | Rmsprop):
        return 1
    assert isinstance(optimizer, Sgd)
    return 1 if optimizer.momentum else 0


def peak_copies(optimizer: Optimizer | None) -> tuple[int, str]:
    """Copies of the parameters held at the peak, and the command that holds them."""
    if optimizer is None:
        return EXPORT_COPIES, "the ONNX export"
    train = 4 * (1 + optimizer_slots(optimizer)) + 5
    if train < EXPORT_COPIES:
        return EXPORT_COPIES, "the ONNX export"
    return train, f"training with {optimizer.kind}"


def _optimizers(program: Program) -> dict[str, Optimizer]:
    """Each trained model's optimizer with the most slots."""
    found: dict[str, Optimizer] = {}
    for r in program.recipes.values():
        pairs: list[tuple[str, Optimizer]] = []
        if isinstance(r, Recipe):
            pairs = [(r.model, r.optimizer)]
        elif isinstance(r, GanRecipe):
            pairs = [
                (r.generator, r.generator_optimizer or r.optimizer),
                (r.discriminator, r.discriminator_optimizer or r.optimizer),
            ]
        for model, optimizer in pairs:
            held = found.get(model)
            if held is None or optimizer_slots(optimizer) > optimizer_slots(held):
                found[model] = optimizer
    return found


def _check_peak(
    model: Model, per_node: list[tuple[int, Node]], optimizer: Optimizer | None, limit: int
) -> None:
    if not per_node:
        return
    values = sum(n for n, _ in per_node)
    copies, command = peak_copies(optimizer)
    peak = values * BYTES_PER_VALUE * copies
    if peak <= limit:
        return
    largest, node = max(per_node, key=lambda item: item[0])
    what = f"model '{node.model}'" if isinstance(node, Call) else node.op
    raise ResourceError(
        f"model '{model.name}' needs {human_bytes(peak)} at its peak: {command} holds "
        f"{copies} copies of its {values:,} float32 parameters "
        f"({human_bytes(values * BYTES_PER_VALUE)}; the largest, {what} '{node.name}', has "
        f"{largest:,}); the memory budget is {human_bytes(limit)} (NNC_MEMORY_BUDGET)",
        node.span,
    )


def _batch_sizes(program: Program) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for r in program.recipes.values():
        if isinstance(r, Recipe) and isinstance(r.batch, int):
            sizes[r.model] = max(sizes.get(r.model, 1), r.batch)
    return sizes


def _check_params(model: Model, per_node: list[tuple[int, Node]], limit: int) -> None:
    budget = f"the memory budget is {human_bytes(limit)} (NNC_MEMORY_BUDGET)"
    for values, node in per_node:
        size = values * BYTES_PER_VALUE
        if size > limit:
            what = f"model '{node.model}'" if isinstance(node, Call) else node.op
            raise ResourceError(
                f"{what} '{node.name}' needs {human_bytes(size)} of parameters "
                f"({values:,} float32 values); {budget}",
                node.span,
            )
    total = sum(values for values, _ in per_node) * BYTES_PER_VALUE
    if total > limit:
        raise ResourceError(
            f"model '{model.name}' needs {human_bytes(total)} of parameters; {budget}", model.span
        )


def _check_activations(model: Model, batch: int, limit: int) -> None:
    total = 0
    largest: tuple[int, str, object] = (0, "", None)
    items = [(i.name, i.type, i.span) for i in model.inputs]
    items += [(n.name, t, n.span) for n in model.nodes for t in n.outs]
    for name, t, span in items:
        n = numel(t.shape)
        if isinstance(n, str):
            continue
        size = n * (8 if t.dtype == "int64" else BYTES_PER_VALUE) * batch
        total += size
        if size > largest[0]:
            largest = (size, f"'{name}' {t}", span)
    if total > limit:
        raise ResourceError(
            f"model '{model.name}' needs {human_bytes(total)} of activations at batch {batch} "
            f"(largest: {largest[1]}, {human_bytes(largest[0])}); the memory budget is "
            f"{human_bytes(limit)} (NNC_MEMORY_BUDGET)",
            largest[2],  # type: ignore[arg-type]
        )
