"""Optimizer state moves between backends and training carries on as if it had not.

Canonical optimizer state (``step`` and ``<param>.velocity`` / ``accumulator`` /
``square_avg`` / ``m`` / ``v``, see :mod:`nnc.backends.runtime`) is what makes a
checkpoint written by one backend resumable on another. For every ordered pair of
training backends (the float64 reference included), :func:`transfers` takes the
source's weights and optimizer state after the first half of the steps, loads them
into the target's runtime, trains the second half there on the same batches, and
compares the final parameters, optimizer state and losses with the reference's
uninterrupted run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nnc.errors import NncError
from nnc.verify.tolerance import Deviation, Tolerance

if TYPE_CHECKING:
    from nnc.verify.harness import Case, Noise, Run, Transfer
    from nnc.verify.sensitivity import Spread


def transfers(
    runs: dict[str, Run],
    case: Case,
    ref: Run,
    tol: Tolerance,
    noise: Noise,
    spread: Spread | None = None,
) -> list[Transfer]:
    """One :class:`~nnc.verify.harness.Transfer` per ordered pair of ``runs`` (the
    runs must keep their runtimes; each target's runtime is reused and left changed)."""
    from nnc.verify.harness import Transfer, training_deviation
    from nnc.verify.locate import describe

    mid = case.midpoint
    if mid == 0 or len(runs) < 2:
        return []
    out: list[Transfer] = []
    for source, before in runs.items():
        for target, after in runs.items():
            if source == target or after.runtime is None:
                continue
            runtime = after.runtime
            try:
                runtime.set_weights(before.weights_mid)
                runtime.set_optimizer_state(before.state_mid)
                losses = [
                    float(runtime.train_step(inputs[0], y, lr))
                    for (inputs, y), lr in zip(case.batches[mid:], case.lrs[mid:], strict=False)
                ]
                d = training_deviation(
                    runtime.get_weights(),
                    runtime.get_optimizer_state(),
                    losses,
                    ref,
                    noise,
                    spread,
                    tol.training,
                    first_step=mid,
                )
            except (NncError, KeyError, ValueError) as exc:
                # A backend refusing another's state is the failure this check exists for.
                d = Deviation(math.inf, math.inf, f"{type(exc).__name__}: {exc}")
            passed = d.max_rel <= tol.training
            why = [] if passed else [f"worst {describe(case.program, case.model, d.where)}"]
            slots = sorted({key.rpartition(".")[2] for key in before.state_mid})
            out.append(Transfer(source, target, d, passed, slots, why))
    return out
