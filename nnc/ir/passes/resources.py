"""Resource limits at check time: refuse specs that could never run.

A spec whose parameters, or whose activations at the recipe's batch size, exceed the
memory budget is refused with the estimated size, naming the layer responsible:
``dense 'dense_1' needs 3.7 TiB of parameters``. The budget is 16 GiB unless the
``NNC_MEMORY_BUDGET`` environment variable (``8GiB``, ``512MiB``, bytes) or an
explicit argument says otherwise.
"""

from __future__ import annotations

import os
import re

from nnc.errors import ResourceError
from nnc.ir.ops.graph import Call
from nnc.ir.passes.params import node_param_values, param_totals
from nnc.ir.program import Model, Program
from nnc.ir.summary import BYTES_PER_VALUE, human_bytes
from nnc.ir.training import Recipe
from nnc.ir.types import numel

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
    totals = param_totals(program)
    for model in program.models.values():
        _check_params(model, totals, limit)
        _check_activations(model, batches.get(model.name, 1), limit)
    return program


def _batch_sizes(program: Program) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for r in program.recipes.values():
        if isinstance(r, Recipe) and isinstance(r.batch, int):
            sizes[r.model] = max(sizes.get(r.model, 1), r.batch)
    return sizes


def _check_params(model: Model, totals: dict[str, int], limit: int) -> None:
    per_node = {node.name: node_param_values(model, node, totals) for node in model.nodes}
    budget = f"the memory budget is {human_bytes(limit)} (NNC_MEMORY_BUDGET)"
    for node in model.nodes:
        size = per_node.get(node.name, 0) * BYTES_PER_VALUE
        if size > limit:
            what = f"model '{node.model}'" if isinstance(node, Call) else node.op
            raise ResourceError(
                f"{what} '{node.name}' needs {human_bytes(size)} of parameters "
                f"({per_node[node.name]:,} float32 values); {budget}",
                node.span,
            )
    total = sum(per_node.values()) * BYTES_PER_VALUE
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
