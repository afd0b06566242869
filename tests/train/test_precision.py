"""--precision mixed (docs/training.md#precision): autocast on torch, float32 elsewhere.

The CPU runs autocast in bfloat16 (8 significant bits): a forward pass then differs
from the float32 one by about 2^-8 relative, never by float32 rounding alone, while the
parameters and the optimizer state stay float32. No GPU here: the float16 path with its
GradScaler is written for CUDA and not exercised by the suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.cli.main import main
from nnc.errors import BackendError, TrainingError
from nnc.train.options import RunOptions

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
MLP = """
model M {
    input x: [16]
    dense(32) relu
    dense(4)
}

train M {
    data      "d.npz"
    loss      cross_entropy
    optimizer adam(lr = 0.01)
    epochs    1
    batch     16
    metrics   accuracy
}
"""


def _runtime(precision: str):  # type: ignore[no-untyped-def]
    from nnc.backends.torch import build

    return build(nnc.parse(MLP), weights=None, seed=3, precision=precision)


def test_mixed_forward_is_bfloat16_on_the_cpu_and_the_weights_stay_float32() -> None:
    x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[np.arange(64) % 4]
    full, mixed = _runtime("float32"), _runtime("mixed")
    p32, p16 = full.forward(x), mixed.forward(x)
    assert p16.dtype == np.float32
    deviation = float(np.max(np.abs(p16 - p32)))
    # bfloat16 rounding (unit roundoff 2^-8 = 3.9e-3 on each product), not float32's
    assert 1e-4 < deviation < 3e-2, deviation
    loss32, loss16 = full.train_step(x, y, lr=0.01), mixed.train_step(x, y, lr=0.01)
    assert abs(loss16 - loss32) < 2e-2 * loss32
    assert all(t.dtype.is_floating_point and t.dtype.itemsize == 4 for t in mixed.tensors.values())
    state = mixed.get_optimizer_state()
    assert {v.dtype for v in state.values() if v.ndim} == {np.dtype(np.float32)}
    # Adam's first step moves every weight by lr * sign(gradient): the float32 master
    # weights agree where bfloat16 kept the gradient's sign, which is almost everywhere
    w32, w16 = full.get_weights(), mixed.get_weights()
    same = np.concatenate([(np.abs(w32[k] - w16[k]) < 1e-6).ravel() for k in w32])
    assert 0.9 < same.mean() < 1.0, same.mean()


def test_a_mixed_run_converges_like_a_float32_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=3.0, size=(4, 16))
    labels = rng.integers(0, 4, size=512)
    x = (centres[labels] + rng.normal(size=(512, 16))).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=labels)
    program = nnc.parse(MLP.replace("epochs = 1", "epochs = 4"))
    finals = {}
    for precision in ("float32", "mixed"):
        result = nnc.fit(
            program, backend="torch", precision=precision, base=tmp_path, out=tmp_path / precision
        )
        finals[precision] = result.final["accuracy"]
        environment = json.loads((tmp_path / precision / "environment.json").read_text())
        assert environment["precision"] == precision
    assert finals["mixed"] > 0.95 and abs(finals["mixed"] - finals["float32"]) < 0.02, finals


def test_a_backend_without_mixed_precision_is_refused_by_name() -> None:
    with pytest.raises(BackendError) as caught:
        RunOptions(backend="numpy", precision="mixed")
    assert (
        caught.value.message
        == "the numpy backend trains in float32 only. Received: --precision mixed"
    )
    with pytest.raises(
        BackendError, match=r"unknown precision 'half'\. Expected one of: float32, mixed"
    ):
        RunOptions(backend="torch", precision="half")


def test_mixed_precision_is_refused_for_a_gan_recipe() -> None:
    program = nnc.load(ROOT / "examples" / "gan.nn")
    with pytest.raises(TrainingError, match="gan recipe; --precision mixed applies to supervised"):
        nnc.fit(program, backend="torch", precision="mixed", save=False)


def test_the_cli_refuses_mixed_precision_on_tensorflow(capsys: pytest.CaptureFixture[str]) -> None:
    xor = str(ROOT / "examples" / "xor.nn")
    assert main(["train", xor, "--backend", "tensorflow", "--precision", "mixed"]) == 1
    err = capsys.readouterr().err
    assert "the tensorflow backend trains in float32 only. Received: --precision mixed" in err
    assert "--precision mixed runs on torch" in err
