"""Differential fuzzing: random valid networks (``networks.py``) pass ``nnc check``,
compile on every backend, and agree with the float64 reference on forward outputs,
gradients and a few training steps (with state moved between backends half-way).

A modest, derandomized number of programs runs here; ``scripts/fuzz_equivalence.py``
is the soak run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, reject, settings

from tests.conftest import require
from tests.equivalence import networks
from tests.equivalence.fuzzing import BACKENDS, differential
from tests.equivalence.matrix import FRAMEWORK
from tests.equivalence.networks import Builder, Value

T = TypeVar("T")


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(networks.networks())
def test_random_networks_agree_on_every_backend(source: str) -> None:
    for backend in BACKENDS:
        require(FRAMEWORK[backend])
    outcome = differential(source)
    if outcome.status == "diverged":
        reject()
    assert outcome.status == "ok", f"{source}\n{outcome.message}"


class _Scripted:
    """A chooser that takes the first option, and every chance while ``eager``."""

    eager = False

    def integer(self, lo: int, hi: int) -> int:
        return lo

    def choice(self, options: Sequence[T]) -> T:
        return options[0]

    def chance(self, p: float) -> bool:
        return self.eager


@pytest.mark.parametrize(
    ("layers", "ends_in_step"),
    [
        (["dense(3)"], True),
        (["batchnorm"], False),
        (["layernorm", "tanh"], False),
        (["batchnorm", "dropout(0.1)", "relu"], False),
        (["batchnorm", "dense(3)"], True),
    ],
)
def test_step_never_ends_a_normalisation(
    layers: list[str], ends_in_step: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Soak finding (seed 44783577 of `fuzz_equivalence.py --seed 12`): a conv stack,
    # batchnorm, then step, with sse and sgd. A conv bias reaching the batchnorm
    # through a selu gets a nearly cancelled gradient, 0.5% to 1.9% wrong on every
    # float32 backend, so the weights part; at the fifth step a batchnorm output the
    # reference puts at -0.0031 is +0.011 with TensorFlow's weights, the step flips,
    # and TensorFlow's batchnorm weight ends 1.05e-2 away (without the step every
    # backend agrees, TensorFlow within 7.2e-5). Not a backend bug
    # (docs/semantics.md, Tolerances, item 4): the generator no longer ends a
    # normalisation with a step.
    chooser = _Scripted()
    b = Builder(chooser, inputs=["input x: [4]"])
    b.values.append(Value("x", (4,)))
    for layer in layers:
        monkeypatch.setattr(networks, "LAYERS", {1: [(lambda c, shape, layer=layer: layer, 1)]})
        assert networks._layer(b, b.current) is not None, layer
    chooser.eager = True
    networks._head(b, "sse")
    assert b.statements[-1].endswith("|> step") == ends_in_step, b.statements


@pytest.mark.parametrize("shape", [(1,), (1, 4), (3, 1, 1), (2, 1, 5)])
def test_softmax_is_never_drawn_over_one_value(shape: tuple[int, ...]) -> None:
    # Soak finding (seed 3960147947 of `fuzz_equivalence.py --seed 14`): softmax over
    # a channel axis of one value is exactly 1; its global average is a constant, and
    # the batchnorm after it normalised float32 rounding noise into a relu's kink,
    # which torch's noise crossed (a gradient 1.1 where the others have 0).
    chooser = networks.RandomChooser(0)
    drawn = [networks.activation(chooser, shape) for _ in range(400)]
    axes = [int(a.split("axis = ")[1].rstrip(")")) for a in drawn if "softmax" in a]
    assert all(shape[axis] != 1 for axis in axes), axes
    assert axes or all(d == 1 for d in shape)  # softmax is still drawn where it fits


def test_the_generator_draws_every_registry_op() -> None:
    # A new op joins the draw (networks.LAYERS or MERGES) or networks.NOT_DRAWN with
    # its reason; the domain-restricted ops only ever follow a positive op.
    drawn: set[str] = set()
    for seed in range(300):
        source = networks.random_network(networks.RandomChooser(seed))
        drawn |= networks.ops_of(source)
        for before, op in re.findall(r"(\S+) \|> (log|sqrt|rsqrt)\b", source):
            assert before in networks.POSITIVE, (seed, before, op)
    missing = networks.ALL_OPS - drawn - set(networks.NOT_DRAWN)
    assert not missing, f"the fuzzer never draws {sorted(missing)}"
    assert not drawn & set(networks.NOT_DRAWN)
