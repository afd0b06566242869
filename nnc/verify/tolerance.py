"""How close is close enough: deviations between backends, and their tolerances.

Backends run in float32 and are compared with a float64 NumPy reference run from the
same canonical weights on the same batches. A deviation is measured per tensor,
relative to the reference's largest magnitude (so tiny values do not blow up a
ratio):

    rel(tensor) = max|a - b| / max(max|b|, floor)

with ``floor`` 1e-6 (``OUTPUT_FLOOR`` for model outputs), or relative to the
tensor's allowance when its conditioning explains more (:mod:`nnc.verify.sensitivity`).

The tolerance scales with the largest reduction in the model, the longest sum a
float32 result is accumulated over (a dense layer's fan-in, a convolution's
``C/groups * kh * kw``, a recurrence's ``F + H`` per step times its steps, a pool's
window, a softmax's axis, a batchnorm's batch and positions): float32 rounding
error of such a sum grows like ``sqrt(K) * 2^-24`` relative to its terms. The forward
tolerance is ``FORWARD_FACTOR * sqrt(K)`` kept within ``[FLOOR, CEILING]``; gradients
(two passes) get 5 times that, parameters and optimizer state after K training steps
25 times. The constants are set from the deviations measured over the whole matrix
(``scripts/equivalence_report.py``): the largest is about a seventh of its tolerance,
and a wrong layout, gate order, pad order, epsilon placement or kink gradient
deviates by 1e-3 to 1 relative. See ``docs/semantics.md``, "Tolerances".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nnc.ir.passes.inline import inline_calls
from nnc.ir.program import Program
from nnc.ir.types import numel

FORWARD_FACTOR = 2e-6  # relative tolerance = FORWARD_FACTOR * sqrt(K), within bounds
FLOOR, CEILING = 2e-6, 2e-5
SYMBOLIC_LENGTH = 6  # the length the harness gives a symbolic dim (a sequence's t)
# Outputs smaller than this are compared absolutely: float32 values near zero carry
# absolute rounding errors (onnxruntime's Elu and Selu compute exp(x) - 1).
OUTPUT_FLOOR = 1e-2
QUIET = 1e-9  # a gradient this small relative to the model's largest is rounding noise
QUIET_STEP = 3.0  # the largest update, in learning rates, an optimizer makes on noise


@dataclass(frozen=True)
class Deviation:
    """The worst deviation over a set of tensors and where it is."""

    max_abs: float
    max_rel: float
    where: str

    @staticmethod
    def none() -> Deviation:
        return Deviation(0.0, 0.0, "")

    def worse(self, other: Deviation) -> Deviation:
        return other if other.max_rel > self.max_rel else self


def deviation(
    got: Mapping[str, np.ndarray],
    ref: Mapping[str, np.ndarray],
    skip: frozenset[str] = frozenset(),
    spread: Mapping[str, float] | None = None,
    tol: float | None = None,
    margins: Mapping[str, np.ndarray | float] | None = None,
    floor: float = 1e-6,
) -> Deviation:
    """The worst relative deviation of ``got`` from ``ref`` over their common keys.

    Each tensor's deviation is relative to its largest magnitude, or, when ``spread``
    (the absolute deviation its conditioning explains, see
    :mod:`nnc.verify.sensitivity`) and the check's tolerance ``tol`` are given, to
    ``spread / tol`` if that is larger: an ill-conditioned tensor passes when it
    deviates by at most its allowance. ``floor`` is the smallest magnitude used.
    ``margins`` (absolute, per element or per tensor) are subtracted from each
    element's difference first: drift that is allowed outright.
    """
    worst = Deviation.none()
    for name, r in ref.items():
        if name in skip or name not in got:
            continue
        a = np.asarray(got[name], dtype=np.float64)
        b = np.asarray(r, dtype=np.float64)
        if a.shape != b.shape:
            return Deviation(math.inf, math.inf, f"{name} (shape {a.shape} vs {b.shape})")
        if a.size == 0:
            continue
        diff = np.abs(a - b)
        if not np.all(np.isfinite(a)):
            return Deviation(math.inf, math.inf, f"{name} (non-finite values)")
        if margins and name in margins:
            diff = np.maximum(diff - margins[name], 0.0)
        max_abs = float(diff.max())
        scale = max(float(np.abs(b).max()), floor)
        if spread and tol:
            scale = max(scale, spread.get(name, 0.0) / tol)
        worst = worst.worse(Deviation(max_abs, max_abs / scale, name))
    return worst


@dataclass(frozen=True)
class Tolerance:
    reduction: int
    forward: float
    gradient: float
    training: float

    def describe(self) -> str:
        return (
            f"largest reduction K = {self.reduction}: forward {self.forward:.1e}, "
            f"gradients {self.gradient:.1e}, parameters after training {self.training:.1e} "
            "(relative to each tensor's largest magnitude)"
        )


def largest_reduction(program: Program, model: str, batch: int, steps: int = 1) -> int:
    """The longest float32 accumulation in one forward pass of ``model`` on ``batch``:
    the largest of its nodes' (:meth:`~nnc.ir.base.Op.accumulation`) and the loss's."""
    flat = inline_calls(program, model)
    k = 1
    for node in flat.nodes:
        ins = [flat.value_type(r) for r in node.inputs]
        x = ins[0] if ins else None
        if x is None:
            continue
        k = max(k, node.accumulation(ins, batch, steps, _static))
    for t in flat.output_types:
        k = max(k, batch * _static(numel(t.shape)))  # the loss's reduction
    return k


def _static(d: object) -> int:
    """A dim's size; a symbolic dim counts as the length the harness feeds it."""
    return d if isinstance(d, int) else SYMBOLIC_LENGTH


def tolerance_for(program: Program, model: str, batch: int) -> Tolerance:
    k = largest_reduction(program, model, batch)
    forward = min(max(FORWARD_FACTOR * math.sqrt(k), FLOOR), CEILING)
    return Tolerance(reduction=k, forward=forward, gradient=5 * forward, training=25 * forward)
