"""RBM CD-1 on the binarised digits (64 -> 64 hidden, lr 0.5, momentum 0.5, batch 32,
20 epochs): the reconstruction error per epoch, then filters.png and samples.png
(64 Gibbs chains from noise, 1000 steps) in the folder given (default: .).

    python benchmarks/rbm_digits.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nnc.data.builtin import load_builtin
from nnc.train.energy import CdSettings, sample_chains, train_rbm
from nnc.train.images import mosaic


def main(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    big = np.ones((6, 6))
    samples = sample_chains(w, 64, 1000, 0).reshape(64, 8, 8)
    plt.imsave(
        out / "samples.png", np.kron(mosaic(samples, 8, 8), big), cmap="gray", vmin=0, vmax=1
    )
    f = w["weight"].T.reshape(64, 8, 8)
    f = (f - f.min()) / (f.max() - f.min())
    plt.imsave(out / "filters.png", np.kron(mosaic(f, 8, 8), big), cmap="gray", vmin=0, vmax=1)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
