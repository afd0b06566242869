"""Differential fuzzing: random valid networks (``networks.py``) pass ``nnc check``,
compile on every backend, and agree with the float64 reference on forward outputs,
gradients and a few training steps (with state moved between backends half-way).

A modest, derandomized number of programs runs here; ``scripts/fuzz_equivalence.py``
is the soak run.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, reject, settings

from tests.conftest import require
from tests.equivalence.fuzzing import BACKENDS, differential
from tests.equivalence.matrix import FRAMEWORK
from tests.equivalence.networks import networks


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(networks())
def test_random_networks_agree_on_every_backend(source: str) -> None:
    for backend in BACKENDS:
        require(FRAMEWORK[backend])
    outcome = differential(source)
    if outcome.status == "diverged":
        reject()
    assert outcome.status == "ok", f"{source}\n{outcome.message}"
