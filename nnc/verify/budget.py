"""The memory ``nnc verify`` holds at its peak, refused before it runs (issue 26).

``nnc check`` and ``nnc train`` count the copies of the parameters that training or
the ONNX export holds (:mod:`nnc.ir.passes.resources`); ``nnc verify`` holds many
more. It keeps every backend's run for the comparisons: the initial weights, the
gradients, the weights and optimizer state half-way and at the end, and the runtime
itself for the state transfers, and it runs a float64 reference that also keeps an
allowance and a mask per parameter. A 30-million-parameter model that trains in
2 GB held 7 GB in ``nnc verify``.

The copies below were measured as the growth of the peak resident set between two
sizes of a dense model (1.08M and 4.15M parameters, Adam, two steps), in float32
copies of the parameters: 30 with ``--backends onnx`` (the float64 reference, trained,
and an inference backend), 126 with numpy, 143 with torch, 194 with numpy, torch,
tensorflow and onnx together. The phases do not all overlap, so the copies do not add
up per backend: the first training backend (its run and the state transfers with the
reference) costs the most, each further one less. The constants round up from there.
"""

from __future__ import annotations

from collections.abc import Iterable

from nnc.errors import ResourceError
from nnc.ir.ops.graph import Call
from nnc.ir.passes.params import node_param_values, param_totals
from nnc.ir.passes.resources import memory_budget
from nnc.ir.program import Program
from nnc.ir.summary import BYTES_PER_VALUE, human_bytes

REFERENCE_COPIES = 30  # the float64 reference run and the case
FIRST_TRAINING_COPIES = 115  # the first float32 training backend, with the transfers
TRAINING_COPIES = 25  # each further training backend (numpy, torch, tensorflow)
INFERENCE_COPIES = 5  # each inference backend (onnx): its model and its outputs


def peak_copies(backends: Iterable[tuple[str, bool]]) -> int:
    """Copies of the parameters ``nnc verify`` holds with these ``(name, trains)``
    backends.

    >>> peak_copies([("numpy", True)]), peak_copies([("onnx", False)])
    (145, 35)
    >>> peak_copies([("numpy", True), ("torch", True), ("tensorflow", True), ("onnx", False)])
    200
    """
    chosen = list(backends)
    training = sum(1 for _, trains in chosen if trains)
    copies = REFERENCE_COPIES + INFERENCE_COPIES * (len(chosen) - training)
    if training:
        copies += FIRST_TRAINING_COPIES + TRAINING_COPIES * (training - 1)
    return copies


def check_verify_memory(
    program: Program,
    models: Iterable[str],
    backends: Iterable[tuple[str, bool]],
    budget: int | None = None,
) -> None:
    """Raise a :class:`ResourceError` at the largest layer when verifying ``models``
    on ``backends`` (``(name, trains)``) would hold more than the memory budget."""
    chosen = list(backends)
    copies = peak_copies(chosen)
    limit = memory_budget(budget)
    totals = param_totals(program)
    names = list(dict.fromkeys(models))
    values = sum(totals[name] for name in names)
    peak = values * BYTES_PER_VALUE * copies
    if peak <= limit:
        return
    largest, model, node = max(
        (
            (node_param_values(program.models[name], n, totals), name, n)
            for name in names
            for n in program.models[name].nodes
        ),
        key=lambda item: item[0],
    )
    what = f"model '{node.model}'" if isinstance(node, Call) else node.op
    raise ResourceError(
        f"model '{model}' needs {human_bytes(peak)} at its peak in 'nnc verify': the "
        f"float64 reference and {len(chosen)} backend{'s' * (len(chosen) != 1)} "
        f"({', '.join(name for name, _ in chosen)}) hold {copies} copies of its "
        f"{values:,} float32 parameters ({human_bytes(values * BYTES_PER_VALUE)}; the "
        f"largest, {what} '{node.name}', has {largest:,}); the memory budget is "
        f"{human_bytes(limit)} (NNC_MEMORY_BUDGET)",
        node.span,
        hint="verify on fewer backends (--backends), or a narrower model with the same "
        "layers: verify checks the layers' arithmetic, which does not depend on their width",
    )
