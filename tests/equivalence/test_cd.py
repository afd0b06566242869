"""Contrastive divergence joins the equivalence matrix: ``nnc verify`` on a CD recipe
(:func:`nnc.verify.cd.verify_cd`) runs 10 CD steps of every rbm layer on numpy, torch
and tensorflow (float32) on the same batches and uniforms and compares every step's
reconstruction error, chains, and the weights and velocities after the steps with
the float64 NumPy reference and with each other."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.cli.main import main
from nnc.train.energy import cd_step
from nnc.verify.cd import verify_cd
from tests.conftest import EXAMPLES
from tests.equivalence.matrix import TRAINING, need

VARIANTS = {
    "rbm_digits": (EXAMPLES / "rbm_digits.nn").read_text(),
    "dbn_stack_pcd_k2": """
model Stack {
    input x: [64]
    rbm(12)
    rbm(6)
}

train Stack {
    data      digits, binarize = true
    optimizer cd(k = 2, lr = 0.3, momentum = 0.9, weight_decay = 0.01, persistent = true)
}
""",
    "gaussian_visible": """
model G {
    input x: [64]
    rbm(24, visible = gaussian)
    rbm(8)
}

train G {
    data      digits
    optimizer cd(k = 1, lr = 0.05, momentum = 0.5)
}
""",
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_ten_cd_steps_agree_on_every_backend(name: str) -> None:
    for b in TRAINING:
        need(b)
    report = verify_cd(nnc.parse(VARIANTS[name]), backends=TRAINING, steps=10)
    for r in report.rows:
        print(
            f"{name}: {r.backend} vs {r.against}: recon errors {r.forward.max_rel:.1e}, "
            f"after 10 steps {r.training.max_rel:.1e} ({r.training.where})"
        )
    assert report.equivalent, [(r.backend, r.against, r.diagnosis) for r in report.rows]
    assert len(report.rows) == 6  # 3 against the reference, 3 pairs
    for r in report.rows:
        assert r.training.max_rel < report.tolerance.training / 10  # far inside
        assert r.training.max_abs > 0  # float32 is not float64: the backends really ran


def _no_momentum_step(w, velocity, v0, u, cd, chain=None, visible="bernoulli"):  # type: ignore[no-untyped-def]
    """A wrong CD step: it forgets the velocity (no momentum)."""
    zeros = {p: np.zeros_like(a) for p, a in velocity.items()}
    return cd_step(w, zeros, v0, u, cd, chain, visible)


def test_verify_catches_a_wrong_cd_step() -> None:
    need("torch")
    program = nnc.parse(VARIANTS["rbm_digits"])
    report = verify_cd(
        program, backends=["numpy", "torch"], steps=10, steps_of={"numpy": _no_momentum_step}
    )
    assert not report.equivalent
    bad = report.rows[0]
    assert (bad.backend, bad.against, bad.passed) == ("numpy", "reference", False)
    assert bad.training.max_rel > 100 * report.tolerance.training
    assert bad.diagnosis, bad
    assert report.rows[1].passed  # torch against the reference is still right


def test_nnc_verify_runs_cd_steps_on_a_cd_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    for b in TRAINING:
        need(b)
    code = main(["verify", str(EXAMPLES / "rbm_digits.nn"), "--steps", "10"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "recon errors" in out and "contrastive divergence, recipe DigitsRbm" in out
    assert out.count("pass") == 6
    assert "verdict: equivalent" in out
