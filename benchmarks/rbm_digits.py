"""RBM CD-1 on the binarised digits (64 -> 64 hidden, lr 0.5, momentum 0.5, batch 32,
20 epochs) with the float64 reference loop of nnc.train.energy: the reconstruction
error per epoch, then filters.png and samples.png (64 Gibbs chains from noise, 1000
steps, drawn by nnc.train.energy_pictures as `nnc train` draws them) in the folder
given (default: .). `nnc train examples/rbm_digits.nn` trains the same RBM in float32.

    python benchmarks/rbm_digits.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nnc.data.builtin import load_builtin
from nnc.data.images import ImageGeometry
from nnc.train.energy import CdSettings, train_rbm
from nnc.train.energy_pictures import save_rbm_pictures


def main(out: Path) -> None:
    s = load_builtin("digits")
    x = (np.asarray(s.x, dtype=np.float64).reshape(len(s.x), -1) / 16.0 > 0.5).astype(float)
    rng = np.random.default_rng(0)
    w = {
        "weight": rng.normal(0.0, 0.01, (64, 64)),
        "visible_bias": np.zeros(64),
        "hidden_bias": np.zeros(64),
    }
    w, errors = train_rbm(w, x, CdSettings(k=1, lr=0.5, momentum=0.5), 20, 32, 0)
    print("reconstruction error per epoch:", " ".join(f"{e:.4f}" for e in errors))
    print(f"epoch 1 / epoch 20: {errors[0] / errors[-1]:.2f}")
    out.mkdir(parents=True, exist_ok=True)
    drawn = save_rbm_pictures(w, ImageGeometry(1, 8, 8, 0.0, 1.0), out, "RBM 64-64", seed=0)
    print("drew", ", ".join(str(p) for p in drawn) or "nothing (matplotlib is missing)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
