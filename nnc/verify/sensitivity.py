"""How much deviation a tensor's own conditioning explains.

float32 rounding perturbs every value a backend computes by a few parts in 10⁷. Most
tensors respond in proportion, and a relative tolerance judges them. Some do not:

- values much smaller than the terms they are computed from: a gradient that a
  batchnorm (or a second batchnorm, or a softmax) nearly cancels, the tiny output of
  a saturated gate. Their rounding error is relative to those terms, not to
  themselves, so every float32 implementation is off by more than the relative
  tolerance;
- values on a discontinuity: a relu, leaky_relu, prelu or elu input, or an ``mae``
  residual, within rounding distance of its kink; two maxpool candidates within
  rounding distance of each other; a ``step`` input near 0. float32 and float64 may
  take different sides, and a gradient (and every update after it) then differs by
  one element's contribution;
- training trajectories that amplify small differences.

Two allowances cover them, per tensor (:class:`Baseline`), both measured on NumPy,
whose float32 build runs the reference's own algorithm:

- ``float32``: ``FLOAT32_SLACK`` times how far NumPy in float32 is from NumPy in
  float64, at the case's weights and at ``TRIES`` points nearby: the rounding error
  the computation itself suffers. Another float32 implementation sums in another
  order and may be off by many times as much: on the gradient of a bias that a
  batchnorm nearly cancels (through a softplus), TensorFlow's was 4 to 25 times as
  far from float64 as NumPy's, step by step, in the soak's two cases (seeds
  3048946468 and 3003011010 of ``--seed 13``), with the forward pass and every other
  gradient agreeing to 1e-7. (NumPy's own row uses the nearby points only, so that
  its error at the case is still checked against something.)
- ``moved``: how far the float64 reference itself moves from the case to those
  nearby points, whose weights are multiplied by ``1 + RHO·N(0, 1)``. ``RHO`` is
  about 25 float32 ulps: enough to cross any kink that float32 rounding can cross.
  Exact zeros stay exact (the perturbation is multiplicative), so a backend that
  mishandles a kink it sits on exactly, such as an activation at a zero bias, still
  fails. ``MOVED_SLACK`` widens it: the largest of ``TRIES`` draws underestimates
  the spread of a chaotic trajectory (resnet_block under rmsprop: the reference's
  last loss moved 0.035 in the three draws here, 0.053 in three others, and torch
  was 0.053 away).

A deviation is then measured relative to the tensor's magnitude, or to its
allowance divided by the tolerance when that is larger
(:func:`nnc.verify.tolerance.deviation`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nnc.errors import TrainingError

if TYPE_CHECKING:
    from nnc.verify.cases import Case, Run

RHO = 3e-6  # relative perturbation of every weight: about 25 float32 ulps
TRIES = 3
FLOAT32_SLACK = 30.0  # one float32 implementation may be off 30x as much as another
MOVED_SLACK = 2.0  # the widest of TRIES draws of the reference's spread, widened
_FIELDS = ("outputs", "gradients", "weights", "state", "losses")


@dataclass
class Spread:
    """Per tensor, the absolute deviation that its conditioning explains."""

    outputs: dict[str, float] = field(default_factory=dict)
    gradients: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)  # after training
    state: dict[str, float] = field(default_factory=dict)  # after training
    losses: dict[str, float] = field(default_factory=dict)  # {"loss": over every step}

    def training(self) -> dict[str, float]:
        return {**self.weights, **self.state, **self.losses}


def changes(got: Run, ref: Run) -> Spread:
    """Per tensor, the largest absolute difference between two runs of a case."""
    out = Spread()
    _largest(out.outputs, got.outputs, ref.outputs)
    _largest(out.gradients, got.gradients, ref.gradients)
    _largest(out.weights, got.weights_after, ref.weights_after)
    _largest(out.state, got.state_after, ref.state_after)
    if ref.losses and got.losses:
        _largest(out.losses, {"loss": np.array(got.losses)}, {"loss": np.array(ref.losses)})
    return out


@dataclass
class Baseline:
    """The allowances of a case, from its reference runs."""

    quiet_ref: Run  # the reference run again, with its quiet elements recorded
    moved: Spread  # the float64 reference from the case to the nearby points
    rounding_nearby: Spread  # NumPy float32 against float64 at the nearby points
    rounding_here: Spread  # the same at the case

    def allowance(self, backend: str | None = None) -> Spread:
        """The allowances for ``backend`` (None: for two backends or a state transfer)."""
        rounding = [self.rounding_nearby] + ([] if backend == "numpy" else [self.rounding_here])
        out = Spread()
        for name in _FIELDS:
            allowed = {k: MOVED_SLACK * v for k, v in getattr(self.moved, name).items()}
            for spread in rounding:
                for tensor, error in getattr(spread, name).items():
                    allowed[tensor] = max(allowed.get(tensor, 0.0), FLOAT32_SLACK * error)
            setattr(out, name, allowed)
        return out


def baseline(
    case: Case, ref: Run, float32: Run | None = None, tries: int = TRIES, rho: float = RHO
) -> Baseline:
    """The case's :class:`Baseline`, given its reference run (``float32``, NumPy's
    float32 run of the case, is reused when given). It costs a few NumPy runs, so
    :func:`nnc.verify.verify` asks for it only when a check fails without it."""
    from nnc.verify.cases import REFERENCE, run

    quiet_ref = run(REFERENCE, case, record_quiet=True)
    float32 = float32 or run("numpy", case)
    overflow = _non_finite(float32)
    if overflow:
        raise TrainingError(
            f"model '{case.model}' leaves float32's range within {len(case.lrs)} steps "
            f"({overflow} overflows in NumPy's float32 run, not in the float64 reference), "
            "so float32 backends cannot be compared; lower the learning rate or the number "
            "of steps"
        )
    moved, nearby = Spread(), Spread()
    rng = np.random.default_rng(20240521)
    for _ in range(tries):
        point = dataclasses.replace(case, weights=perturbed(case.weights, rng, rho))
        ref_there = run(REFERENCE, point)
        _widest(moved, changes(ref_there, ref))
        _widest(nearby, changes(run("numpy", point), ref_there))
    return Baseline(quiet_ref, moved, nearby, changes(float32, ref))


Tensors = Mapping[str, np.ndarray]


def perturbed(
    weights: Tensors, rng: np.random.Generator, rho: float = RHO
) -> dict[str, np.ndarray]:
    """``weights`` with every element multiplied by ``1 + rho·N(0, 1)`` (exact zeros
    stay exact), as float32."""
    return {
        k: (v * (1.0 + rho * rng.standard_normal(v.shape))).astype(np.float32)
        for k, v in weights.items()
    }


def trajectory_allowance(
    run: Callable[[str, Tensors], Tensors],
    weights: Tensors,
    backend: str | None = None,
    tries: int = TRIES,
    rho: float = RHO,
) -> dict[str, float]:
    """Per tensor, the absolute deviation that a run's own conditioning explains:
    ``MOVED_SLACK`` times how far the float64 reference moves when the weights move
    by ``rho``, or ``FLOAT32_SLACK`` times how far NumPy's float32 run is from it,
    whichever is larger (the two allowances of :class:`Baseline`).

    ``run(backend, weights)`` runs the case from ``weights`` on ``"reference"`` or
    ``"numpy"`` (float32) and returns every tensor it is judged on, by name: the
    same sums in another order (another framework, another processor's kernels)
    may cross a kink the reference does not, and change the trajectory by one
    element's contribution. ``backend`` is the backend being judged: NumPy's own
    row uses the nearby points only, so that its error at the case is still
    checked against something. Used where a run is not a :class:`Case` (GAN
    rounds, the training driver's epochs).
    """
    from nnc.verify.cases import REFERENCE

    ref = run(REFERENCE, weights)
    allowed: dict[str, float] = {}
    if backend != "numpy":
        _raise(allowed, run("numpy", weights), ref, FLOAT32_SLACK)
    rng = np.random.default_rng(20240521)
    for _ in range(tries):
        point = perturbed(weights, rng, rho)
        there = run(REFERENCE, point)
        _raise(allowed, there, ref, MOVED_SLACK)
        _raise(allowed, run("numpy", point), there, FLOAT32_SLACK)
    return allowed


def _raise(allowed: dict[str, float], got: Tensors, ref: Tensors, slack: float) -> None:
    changed: dict[str, float] = {}
    _largest(changed, got, ref)
    for name, change in changed.items():
        allowed[name] = max(allowed.get(name, 0.0), slack * change)


_REFERENCES: dict[str, Run] = {}


def reference(case: Case) -> Run:
    """The reference's run of ``case``, kept for the last few cases (the matrix
    verifies one case once per backend)."""
    from nnc.verify.cases import REFERENCE, run

    key = _fingerprint(case)
    if key not in _REFERENCES:
        if len(_REFERENCES) >= 4:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = run(REFERENCE, case)
    return _REFERENCES[key]


def _non_finite(got: Run) -> str:
    """The first tensor of a run holding an inf or a nan ("" if none)."""
    for tensors in (got.outputs, got.gradients, got.weights_after, got.state_after):
        for name, value in tensors.items():
            if not np.all(np.isfinite(value)):
                return name
    return "" if all(np.isfinite(got.losses)) else "the loss"


def _widest(into: Spread, other: Spread) -> None:
    for name in _FIELDS:
        mine = getattr(into, name)
        for tensor, value in getattr(other, name).items():
            mine[tensor] = max(mine.get(tensor, 0.0), value)


def _fingerprint(case: Case) -> str:
    digest = hashlib.sha256(case.program.model_dump_json().encode())
    digest.update(case.model.encode())
    for name in sorted(case.weights):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(case.weights[name]).tobytes())
    for inputs, target in case.batches:
        for array in (*inputs, target):
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(case.lrs).encode())
    return digest.hexdigest()


def _largest(
    out: dict[str, float], got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]
) -> None:
    for name, r in ref.items():
        if name in got and np.size(r):
            change = float(np.abs(np.asarray(got[name], np.float64) - r).max())
            if np.isfinite(change):
                out[name] = change
