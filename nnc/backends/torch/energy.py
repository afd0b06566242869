"""Contrastive divergence on PyTorch: the step of docs/semantics.md ("RBM and
contrastive divergence"), on the uniforms nnc draws and passes in, so its chain
samples what the NumPy step samples. Arrays come and go in canonical layout;
torch is imported when a step runs."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnc.backends.cd import Arrays, CdSettings, Uniforms

PARAMS = ("weight", "visible_bias", "hidden_bias")


def cd_step(
    w: Arrays,
    velocity: Arrays,
    v0: np.ndarray,
    u: Uniforms,
    cd: CdSettings,
    chain: np.ndarray | None = None,
    visible: str = "bernoulli",
    device: str = "cpu",
) -> tuple[Arrays, Arrays, np.ndarray, float]:
    """As :func:`nnc.train.energy.cd_step`, computed by torch in the weights' dtype
    (the uniforms stay float64, as nnc draws them; a Gaussian unit's normal is cast to
    the weights' dtype, then added to its mean)."""
    import torch

    def t(a: np.ndarray) -> Any:
        return torch.as_tensor(np.ascontiguousarray(a), device=device)

    W, b, c = (t(w[p]) for p in PARAMS)
    x0 = t(v0).to(W.dtype)
    uh, uv = t(u.hidden), t(u.visible)

    def up(v: Any) -> Any:
        return torch.sigmoid(v @ W + c)

    def down(h: Any) -> Any:
        a = h @ W.T + b
        return a if visible == "gaussian" else torch.sigmoid(a)

    def sample(draw: Any, mean: Any) -> Any:
        if visible == "gaussian":
            return mean + draw.to(W.dtype)
        return (draw < mean).to(W.dtype)

    n = x0.shape[0]
    p0 = up(x0)
    h0 = (uh[0] < p0).to(W.dtype)
    error = float(torch.mean((x0 - down(h0)) ** 2))
    v = x0 if chain is None else t(chain).to(W.dtype)
    for j in range(uh.shape[0]):
        h = (uh[j] < up(v)).to(W.dtype)
        v = sample(uv[j], down(h))
    pk = up(v)
    grads = {
        "weight": (x0.T @ p0 - v.T @ pk) / n - cd.weight_decay * W,
        "visible_bias": (x0 - v).mean(dim=0),
        "hidden_bias": (p0 - pk).mean(dim=0),
    }
    params = dict(zip(PARAMS, (W, b, c), strict=True))
    new_velocity = {p: cd.momentum * t(velocity[p]) + cd.lr * g for p, g in grads.items()}
    new_w = {p: params[p] + new_velocity[p] for p in PARAMS}

    def back(a: Any) -> np.ndarray:
        return a.detach().cpu().numpy()

    return (
        {p: back(a) for p, a in new_w.items()},
        {p: back(a) for p, a in new_velocity.items()},
        back(v),
        error,
    )
