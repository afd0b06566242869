"""Optimizer state moves between backends and training carries on as if it had not.

Canonical optimizer state (``step`` and ``<param>.velocity`` / ``accumulator`` /
``square_avg`` / ``m`` / ``v``, see :mod:`nnc.backends.runtime`) is what makes a
checkpoint written by one backend resumable on another. For every ordered pair of
training backends (the float64 reference included), :func:`move_state` takes the
source's weights and optimizer state after the first half of the steps, loads them
into the target's runtime and trains the second half there on the same batches;
:func:`judge` compares the final parameters, optimizer state and losses with the
reference's uninterrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nnc.errors import NncError
from nnc.verify.tolerance import Deviation, Tolerance

if TYPE_CHECKING:
    from nnc.verify.cases import Case, Run, Transfer
    from nnc.verify.compare import Noise
    from nnc.verify.sensitivity import Spread


@dataclass
class Moved:
    """What the target computed after taking over the source's state (or why not)."""

    source: str
    target: str
    slots: list[str]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, np.ndarray] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    error: str = ""


def move_state(runs: dict[str, Run], case: Case) -> list[Moved]:
    """One :class:`Moved` per ordered pair of ``runs`` (the runs must keep their
    runtimes; each target's runtime is reused and left changed)."""
    mid = case.midpoint
    if mid == 0 or len(runs) < 2:
        return []
    out: list[Moved] = []
    for source, before in runs.items():
        slots = sorted({key.rpartition(".")[2] for key in before.state_mid})
        for target, after in runs.items():
            if source == target or after.runtime is None:
                continue
            runtime = after.runtime
            moved = Moved(source, target, slots)
            try:
                runtime.set_weights(before.weights_mid)
                runtime.set_optimizer_state(before.state_mid)
                moved.losses = [
                    float(runtime.train_step(inputs[0], y, lr))
                    for (inputs, y), lr in zip(case.batches[mid:], case.lrs[mid:], strict=False)
                ]
                moved.weights = dict(runtime.get_weights())
                moved.state = dict(runtime.get_optimizer_state())
            except (NncError, KeyError, ValueError) as exc:
                # A backend refusing another's state is the failure this check exists for.
                moved.error = f"{type(exc).__name__}: {exc}"
            out.append(moved)
    return out


def judge(
    moved: list[Moved],
    case: Case,
    ref: Run,
    tol: Tolerance,
    noise: Noise,
    spread: Spread | None = None,
) -> list[Transfer]:
    """The verdict on each transfer, against the reference's uninterrupted run."""
    from nnc.verify.cases import Transfer
    from nnc.verify.compare import training_deviation
    from nnc.verify.locate import describe

    out = []
    for m in moved:
        if m.error:
            d = Deviation(float("inf"), float("inf"), m.error)
        else:
            d = training_deviation(
                m.weights,
                m.state,
                m.losses,
                ref,
                noise,
                spread,
                tol.training,
                first_step=case.midpoint,
            )
        passed = d.max_rel <= tol.training
        why = [] if passed else [f"worst {describe(case.program, case.model, d.where)}"]
        out.append(Transfer(m.source, m.target, d, passed, m.slots, why))
    return out
