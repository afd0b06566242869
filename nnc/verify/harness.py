"""Differential testing of backends: one model, the same canonical weights and
batches everywhere, compared with a float64 NumPy reference.

:func:`verify` runs a model on every requested backend and measures, against the
reference, the forward outputs, the gradients of the loss with respect to every
parameter, and the parameters, losses and optimizer state after ``steps`` training
steps. It then moves the optimizer state between backends half-way through
(:mod:`nnc.verify.transfer`). Dropout is disabled for the comparison (each
framework draws its own masks). When a check fails, :mod:`nnc.verify.locate` names
the first layer whose output (or backward pass) deviates, or the parameter whose
update does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnc.backends import registry
from nnc.backends.registry import parse_backend
from nnc.errors import BackendError, TrainingError
from nnc.ir.program import Program
from nnc.verify.cases import (
    BATCH,
    REFERENCE,
    Case,
    Report,
    Row,
    Run,
    Transfer,
    _no_dropout,
    build,
    comparable,
    make_case,
    outputs,
    run,
    static_shape,
    synthetic_batch,
)
from nnc.verify.compare import Noise, compare, conditioning_note
from nnc.verify.locate import diagnose
from nnc.verify.sensitivity import Baseline, baseline, reference
from nnc.verify.tolerance import (
    Deviation,
    tolerance_for,
)
from nnc.verify.transfer import judge, move_state


def verify(
    program: Program,
    model: str | None = None,
    backends: Sequence[str] | None = None,
    steps: int = 20,
    seed: int = 0,
    optimizer: Any = None,
    schedule: Any = None,
    locate: bool = True,
    transfer: bool = True,
) -> Report:
    """Compare every requested (default: every installed) backend with the reference.

    ``optimizer`` and ``schedule`` (IR specs) replace the recipe's. With ``transfer``,
    every ordered pair of training backends (the reference included) also continues
    from each other's state half-way (:mod:`nnc.verify.transfer`). When a check fails
    the tensors' allowances are worked out (:mod:`nnc.verify.sensitivity`) and every
    check judged again with them; with ``locate``, a backend that still fails is
    diagnosed (:mod:`nnc.verify.locate`). A reference that is not finite, or that
    float32 cannot follow, raises :class:`~nnc.errors.TrainingError`.
    """
    prog, name = comparable(program, model, optimizer, schedule)
    case = make_case(prog, name, steps, seed)
    tol = tolerance_for(prog, name, BATCH)
    specs = [parse_backend(b) for b in backends] if backends else registry.backends(installed=True)
    chosen = [spec.name for spec in specs]
    inference = {spec.name for spec in specs if not spec.trains}
    ref = reference(case)
    _check_finite(ref, case)
    failures: list[Row] = []
    runs: dict[str, Run] = {}
    for b in chosen:
        try:
            runs[b] = run(b, case, b not in inference)
        except BackendError as exc:
            failures.append(
                Row(b, REFERENCE, Deviation(math.inf, math.inf, str(exc)), None, None, False)
            )
    trained = {b: r for b, r in runs.items() if b not in inference}
    moved = move_state({REFERENCE: ref, **trained}, case) if transfer else []

    def judged(base: Baseline | None) -> Report:
        noise = Noise.of(prog, name, base.quiet_ref if base else ref, sum(case.lrs))
        notes = [noise.note()] if noise.parameters else []
        notes += [f"{r.backend}: {r.forward.where}" for r in failures]
        rows = list(failures)
        for b, got in runs.items():
            allowed = base.allowance(b) if base else None
            rows.append(compare(b, REFERENCE, got, ref, tol, noise, allowed, b in trained))
        shared = base.allowance() if base else None
        for i, a in enumerate(names := list(runs)):
            for b in names[i + 1 :]:
                both = a in trained and b in trained
                rows.append(compare(a, b, runs[a], runs[b], tol, noise, shared, both, pair=True))
        if shared is not None:
            notes += conditioning_note(ref, shared, tol)
        done = judge(moved, case, ref, tol, noise, shared)
        report = Report(name, tol, steps, rows, notes, done)
        report.noise = noise
        return report

    # The allowances only ever loosen a check: work them out only when one fails.
    report = judged(None)
    if not report.equivalent:
        report = judged(baseline(case, ref, runs.get("numpy")))
    if locate:
        for row in report.rows:
            if not row.passed and row.against == REFERENCE and row.backend in runs:
                diagnose(row, row.backend, case, tol, runs[row.backend], ref, report.noise)
    return report


def _check_finite(ref: Run, case: Case) -> None:
    """A reference that overflows says nothing about the backends: refuse clearly."""
    tensors = {**ref.outputs, **ref.gradients, **ref.weights_after}
    bad = sorted(n for n, v in tensors.items() if not np.all(np.isfinite(v)))
    if bad or not all(math.isfinite(loss) for loss in ref.losses):
        raise TrainingError(
            f"the float64 reference of model '{case.model}' is not finite after "
            f"{len(case.lrs)} steps ({', '.join(bad[:3]) or 'the loss'}), so the backends "
            "cannot be compared; lower the learning rate or the number of steps"
        )


__all__ = [
    "BATCH",
    "REFERENCE",
    "Case",
    "Report",
    "Row",
    "Run",
    "Transfer",
    "_no_dropout",
    "build",
    "comparable",
    "make_case",
    "outputs",
    "run",
    "static_shape",
    "synthetic_batch",
    "verify",
]
