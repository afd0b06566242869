"""DBN 64-32-16 on the binarised digits: greedy CD-1 pretraining of two RBMs
(nnc.train.energy), then backprop fine-tuning of the same weights plus a softmax
classifier on the numpy runtime; against the same MLP from its initial weights.

    python benchmarks/dbn_digits.py
"""

from __future__ import annotations

import numpy as np

import nnc
from nnc.data.builtin import load_builtin
from nnc.train.energy import CdSettings, hidden_probabilities, train_rbm

SPEC = """
model Dbn {
    input x: [64]
    rbm(32)
    rbm(16)
    dense(10)
}

train Dbn {
    data digits
    loss cross_entropy
    optimizer sgd(lr = 0.1, momentum = 0.9)
    batch 32
    seed 0
}
"""


def fine_tune(program: nnc.Program, weights: dict, x, y, xv, yv, epochs: int) -> float:
    rt = nnc.runtime(program, "numpy", weights=weights)
    order_rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = order_rng.permutation(len(x))
        for s in range(0, len(x), 32):
            i = order[s : s + 32]
            rt.train_step(x[i].astype(np.float32), y[i], 0.1)
    return float((rt.forward(xv.astype(np.float32)).argmax(axis=1) == yv).mean())


def main() -> None:
    s = load_builtin("digits")
    x = (np.asarray(s.x, dtype=np.float64).reshape(len(s.x), -1) / 16.0 > 0.5).astype(float)
    y = np.asarray(s.y)
    perm = np.random.default_rng(1).permutation(len(x))
    train, val = perm[:1437], perm[1437:]
    program = nnc.parse(SPEC)
    initial = dict(nnc.runtime(program, "numpy").get_weights())
    pretrained = dict(initial)
    layer_input = x[train]
    for name in ("rbm_1", "rbm_2"):
        w = {
            p: initial[f"{name}.{p}"].astype(np.float64)
            for p in ("weight", "visible_bias", "hidden_bias")
        }
        w, errors = train_rbm(w, layer_input, CdSettings(k=1, lr=0.1, momentum=0.5), 30, 32, 0)
        print(f"{name}: reconstruction error {errors[0]:.4f} -> {errors[-1]:.4f}")
        for p, a in w.items():
            pretrained[f"{name}.{p}"] = a.astype(np.float32)
        layer_input = hidden_probabilities(w, layer_input)
    for label, weights in (("pretrained", pretrained), ("from init", initial)):
        acc = fine_tune(program, weights, x[train], y[train], x[val], y[val], epochs=30)
        print(f"{label}: validation accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
