"""Judging runs against the reference: which deviations count, and by how much.

:func:`compare` makes one row of a report (a backend against the reference, or two
backends against each other) from their runs; :class:`Noise` says what the loss does
not determine; the allowances of ill-conditioned tensors come from
:mod:`nnc.verify.sensitivity`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nnc.ir.graph import base_name
from nnc.ir.ops.normalization import BatchNorm
from nnc.ir.passes.inline import inline_calls
from nnc.ir.passes.params import model_params
from nnc.ir.program import Program
from nnc.verify.sensitivity import RHO, Spread
from nnc.verify.tolerance import (
    OUTPUT_FLOOR,
    QUIET,
    QUIET_STEP,
    Deviation,
    Tolerance,
    deviation,
)

if TYPE_CHECKING:
    from nnc.verify.cases import Row, Run


@dataclass(frozen=True)
class Noise:
    """What the loss does not determine, so float32 backends may not agree on it.

    - ``parameters``: tensors whose reference gradient is zero up to float64 rounding
      (a bias feeding a batchnorm, whose mean subtraction cancels it, is the usual
      case). A float32 backend's gradient there is rounding noise: it is compared
      relative to the model's largest gradient (``gradient_scale``), and their
      optimizer state (pure noise, scaled up by adaptive optimizers) is not compared,
      nor is the state of a quiet element (below);
    - ``quiet``: per parameter element, how far it may drift (see
      ``run(record_quiet=True)``): elements of those tensors, and single elements
      whose gradient cancels at some step. ``absorbed``: the running statistics of the
      batchnorms downstream of noise parameters, which follow their drift;
      ``loss_margins``: per training step, how far that drift may move the loss.
    """

    parameters: frozenset[str] = frozenset()
    absorbed: frozenset[str] = frozenset()
    gradient_scale: float = 0.0
    quiet: Mapping[str, np.ndarray] = field(default_factory=dict)
    loss_margins: tuple[float, ...] = ()

    @staticmethod
    def of(program: Program, model: str, ref: Run, lr_sum: float) -> Noise:
        """From the reference run: its gradients on the first batch, and its quiet
        elements when recorded (otherwise every element of a noise parameter may drift
        ``QUIET_STEP`` times the sum of the learning rates)."""
        gradients = ref.gradients
        scale = max((float(np.abs(g).max()) for g in gradients.values() if g.size), default=0.0)
        zero = frozenset(
            n for n, g in gradients.items() if g.size and float(np.abs(g).max()) <= QUIET * scale
        )
        # A bias shifts the batchnorm's mean only; any other parameter may scale too.
        biases = {n for n in zero if n.rpartition(".")[2].startswith("bias")}
        absorbed = {f"{bn}.running_mean" for bn in downstream_batchnorms(program, model, zero)}
        absorbed |= {
            f"{bn}.running_var" for bn in downstream_batchnorms(program, model, zero - biases)
        }
        quiet = dict(ref.quiet)
        for name in zero - set(quiet):
            quiet[name] = np.full(gradients[name].shape, QUIET_STEP * lr_sum)
        return Noise(zero, frozenset(absorbed), scale, quiet, tuple(ref.loss_margins))

    def state_key(self, key: str) -> bool:
        """Whether an optimizer-state entry (``<param>.<slot>``) belongs to a noise
        parameter."""
        return key.rpartition(".")[0] in self.parameters

    def without_quiet_state(
        self, state: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """``state`` with the slots of quiet elements set to the reference's: their
        gradient was rounding noise at some step, and the optimizer state built from it
        (an ``adagrad`` accumulator of noise squared, then of the gradients at the
        drifted weight) is noise too. The weights themselves are still compared, within
        their margin."""
        out = dict(state)
        for key, value in state.items():
            mask = self.quiet.get(key.rpartition(".")[0])
            if mask is None or key not in ref or np.shape(value) != np.shape(mask):
                continue
            quiet = mask > 0
            if quiet.any():
                out[key] = np.where(quiet, ref[key], value)
        return out

    def margins(self, pair: bool = False) -> dict[str, np.ndarray | float]:
        """Per tensor, the absolute drift allowed to each element of the weights after
        training (twice as much between two float32 backends)."""
        factor = 2.0 if pair else 1.0
        out: dict[str, np.ndarray | float] = {n: factor * b for n, b in self.quiet.items()}
        widest = max((float(b.max()) for b in self.quiet.values() if b.size), default=0.0)
        for name in self.absorbed:
            out[name] = factor * widest
        return out

    def note(self) -> str:
        return (
            "not identifiable: these parameters have a zero gradient (up to float64 "
            "rounding) whose float32 rounding noise adaptive optimizers amplify; their "
            "gradients are compared relative to the largest gradient, their values after "
            f"training (and the batchnorm statistics absorbing them) within {QUIET_STEP:g} "
            f"learning rates per step: {', '.join(sorted(self.parameters))}"
        )


def gradient_deviation(
    got: Mapping[str, np.ndarray],
    ref: Mapping[str, np.ndarray],
    noise: Noise,
    spread: Spread | None = None,
    tol: float | None = None,
) -> Deviation:
    """Gradients against the reference (see :func:`deviation` for ``spread`` and
    ``tol``); a noise parameter's relative to the model's largest gradient rather than
    its own (which is zero)."""
    allowed = spread.gradients if spread else {}
    worst = deviation(got, ref, noise.parameters, allowed, tol)
    for name in noise.parameters:
        if name in got and name in ref:
            diff = float(np.abs(np.asarray(got[name], np.float64) - ref[name]).max())
            scale = max(noise.gradient_scale, 1e-6)
            if tol:  # noise a batchnorm of zero variance amplifies, say
                scale = max(scale, allowed.get(name, 0.0) / tol)
            worst = worst.worse(Deviation(diff, diff / scale, name))
    return worst


def training_deviation(
    weights: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray],
    losses: Sequence[float],
    ref: Run,
    noise: Noise,
    spread: Spread | None = None,
    tol: float | None = None,
    first_step: int = 0,
    pair: bool = False,
) -> Deviation:
    """Parameters, optimizer state and losses after training against the reference's
    (its losses from ``first_step`` on); see :class:`Noise` for what may drift."""
    allowed = spread.training() if spread else None
    margins = noise.margins(pair)
    after = deviation(weights, ref.weights_after, frozenset(), allowed, tol, margins=margins)
    state_ref = {k: v for k, v in ref.state_after.items() if not noise.state_key(k)}
    state = noise.without_quiet_state(state, state_ref)
    after = after.worse(deviation(state, state_ref, frozenset(), allowed, tol))
    if losses:
        ref_losses = {"loss": np.array(ref.losses[first_step:])}
        drift = np.array(noise.loss_margins[first_step:]) * (2.0 if pair else 1.0)
        loss_margins = {"loss": drift} if drift.shape == (len(losses),) else None
        after = after.worse(
            deviation(
                {"loss": np.array(losses)}, ref_losses, frozenset(), allowed, tol, loss_margins
            )
        )
    return after


def compare(
    name: str,
    against: str,
    got: Run,
    ref: Run,
    tol: Tolerance,
    noise: Noise,
    spread: Spread | None,
    train: bool,
    pair: bool = False,
) -> Row:
    """One row of the report: ``got`` against ``ref`` on every check that both ran."""
    # Two float32 backends may each be off by a tolerance, in opposite directions.
    scale = 2.0 if pair else 1.0
    outputs = spread.outputs if spread else None
    forward = deviation(
        got.outputs, ref.outputs, frozenset(), outputs, scale * tol.forward, floor=OUTPUT_FLOOR
    )
    passed = forward.max_rel <= scale * tol.forward
    grads = training = None
    if train:
        grads = gradient_deviation(
            got.gradients, ref.gradients, noise, spread, scale * tol.gradient
        )
        training = training_deviation(
            got.weights_after,
            got.state_after,
            got.losses,
            ref,
            noise,
            spread,
            scale * tol.training,
            pair=pair,
        )
        passed = passed and grads.max_rel <= scale * tol.gradient
        passed = passed and training.max_rel <= scale * tol.training
    from nnc.verify.cases import Row

    return Row(name, against, forward, grads, training, passed)


def conditioning_note(ref: Run, spread: Spread, tol: Tolerance) -> list[str]:
    """Which tensors are compared within the reference's own spread, not relative to
    their magnitude (their spread is larger than the relative tolerance allows)."""
    loose = []
    for what, values, allowed, limit in (
        ("output", ref.outputs, spread.outputs, tol.forward),
        ("gradient", ref.gradients, spread.gradients, tol.gradient),
        (
            "after training",
            {**ref.weights_after, **ref.state_after},
            spread.training(),
            tol.training,
        ),
    ):
        for name, value in values.items():
            magnitude = float(np.abs(value).max()) if np.size(value) else 0.0
            if allowed.get(name, 0.0) > limit * magnitude:
                loose.append(f"{name} ({what})")
    if not loose:
        return []
    shown = ", ".join(loose[:8]) + (f" and {len(loose) - 8} more" if len(loose) > 8 else "")
    return [
        "ill-conditioned, so compared within what their conditioning explains (every float32 "
        "implementation is off by more than the relative tolerance, or the float64 reference "
        f"itself moves more under a {RHO:g} relative perturbation of the weights): {shown}"
    ]


def downstream_batchnorms(program: Program, model: str, parameters: Iterable[str]) -> list[str]:
    """The batchnorm nodes (flat names, as in canonical weight names) that read, through
    any path, the output of a layer owning one of ``parameters``."""
    flat = inline_calls(program, model)
    owners = {p.name: p.node for p in model_params(program, model)}
    frontier = {owners[p] for p in parameters if p in owners}
    reached: set[str] = set()
    for node in flat.nodes:  # topological: one pass follows every path
        if node.name in frontier or any(base_name(r) in reached for r in node.inputs):
            reached.add(node.name)
    # A batchnorm's statistics follow its input, not its own (noisy or not) γ and β.
    return [
        n.name
        for n in flat.nodes
        if isinstance(n, BatchNorm) and any(base_name(r) in reached for r in n.inputs)
    ]
