"""Contrastive divergence for an RBM with Bernoulli hidden units and Bernoulli or
unit-variance Gaussian visible units, as docs/semantics.md ("RBM and contrastive
divergence") specifies it.

The uniforms that sample the Gibbs chain are drawn here, from nnc's NumPy generator
``default_rng([seed, crc32("cd")])``, and passed to the step, so a backend that
implements :func:`cd_step` with the same uniforms follows the same trajectory (as
the GAN noise is drawn once and passed in). Arrays are canonical: ``weight`` is
``[visible, hidden]``.
"""

from __future__ import annotations

import zlib

import numpy as np

from nnc.backends.cd import Arrays, CdSettings, Uniforms

VISIBLE_KINDS = ("bernoulli", "gaussian")


def cd_generator(seed: int) -> np.random.Generator:
    """The generator of every CD uniform: ``default_rng([seed, crc32("cd")])``."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(b"cd")])


def draw_uniforms(
    rng: np.random.Generator,
    k: int,
    rows: int,
    visible: int,
    hidden: int,
    kind: str = "bernoulli",
) -> Uniforms:
    """A batch's draws, in this order: ``rng.random((k, rows, hidden))``, then
    ``rng.random((k, rows, visible))`` (Bernoulli visible units) or
    ``rng.standard_normal((k, rows, visible))`` (Gaussian ones), float64.

    >>> u = draw_uniforms(cd_generator(0), 1, 2, 3, 4)
    >>> u.hidden.shape, u.visible.shape
    ((1, 2, 4), (1, 2, 3))
    """
    hidden_u = rng.random((k, rows, hidden))
    if kind == "gaussian":
        return Uniforms(hidden_u, rng.standard_normal((k, rows, visible)))
    return Uniforms(hidden_u, rng.random((k, rows, visible)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # finite for any z


def hidden_probabilities(w: Arrays, v: np.ndarray) -> np.ndarray:
    """``p(h = 1 | v) = σ(v W + c)``: the up pass, what the layer computes."""
    return sigmoid(v @ w["weight"] + w["hidden_bias"])


def visible_probabilities(w: Arrays, h: np.ndarray, kind: str = "bernoulli") -> np.ndarray:
    """The visible units' mean given ``h``: ``p(v = 1 | h) = σ(h Wᵀ + b)`` (Bernoulli),
    ``E[v | h] = h Wᵀ + b`` (Gaussian)."""
    a = h @ w["weight"].T + w["visible_bias"]
    return a if kind == "gaussian" else sigmoid(a)


def sample_visible(mean: np.ndarray, draw: np.ndarray, kind: str) -> np.ndarray:
    """``[U < p]`` (Bernoulli) or ``mean + Z`` (Gaussian, ``Z`` cast to the mean's
    dtype first), in the mean's dtype."""
    if kind == "gaussian":
        return mean + draw.astype(mean.dtype)
    return (draw < mean).astype(mean.dtype)


def gibbs(w: Arrays, v: np.ndarray, u: Uniforms, kind: str = "bernoulli") -> np.ndarray:
    """``k`` Gibbs steps from ``v``: ``h_j = [U_h[j] < p(h | v_j)]``, then
    ``v_{j+1}`` sampled from ``p(v | h_j)`` (:func:`sample_visible`); returns ``v_k``."""
    for j in range(len(u.hidden)):
        h = (u.hidden[j] < hidden_probabilities(w, v)).astype(v.dtype)
        v = sample_visible(visible_probabilities(w, h, kind), u.visible[j], kind)
    return v


def cd_step(
    w: Arrays,
    velocity: Arrays,
    v0: np.ndarray,
    u: Uniforms,
    cd: CdSettings,
    chain: np.ndarray | None = None,
    visible: str = "bernoulli",
) -> tuple[Arrays, Arrays, np.ndarray, float]:
    """One CD-k (or PCD-k) update of a batch ``v0 [N, F]``, for ``visible`` units
    ``bernoulli`` or ``gaussian`` (unit variance).

    The negative chain starts at ``v0`` (CD) or at ``chain`` (PCD: the persistent
    chains, as many rows as the batch). With ``p0 = p(h | v0)``, ``pk = p(h | v_k)``:
    ``g_W = (v0ᵀ p0 - v_kᵀ pk) / N - λ W``, ``g_b = mean(v0 - v_k)``,
    ``g_c = mean(p0 - pk)``; per parameter ``Δ = μ Δ + lr g`` and ``θ += Δ``.
    Returns the new weights, the new velocities, the chain's end ``v_k`` (the next
    persistent chains) and the batch's reconstruction error: the mean over elements
    of ``(v0 - E[v | h_0])²``, with ``h_0`` the first sampled hidden state of a chain
    started at ``v0``.
    """
    n = len(v0)
    p0 = hidden_probabilities(w, v0)
    h0 = (u.hidden[0] < p0).astype(v0.dtype)
    error = float(np.mean((v0 - visible_probabilities(w, h0, visible)) ** 2))
    vk = gibbs(w, v0 if chain is None else chain, u, visible)
    pk = hidden_probabilities(w, vk)
    grads = {
        "weight": (v0.T @ p0 - vk.T @ pk) / n - cd.weight_decay * w["weight"],
        "visible_bias": (v0 - vk).mean(axis=0),
        "hidden_bias": (p0 - pk).mean(axis=0),
    }
    new_velocity = {name: cd.momentum * velocity[name] + cd.lr * g for name, g in grads.items()}
    new_w = {name: w[name] + new_velocity[name] for name in grads}
    return new_w, new_velocity, vk, error


def train_rbm(
    w: Arrays, x: np.ndarray, cd: CdSettings, epochs: int, batch: int, seed: int
) -> tuple[Arrays, list[float]]:
    """CD on ``x [n, F]`` (values in [0, 1]) for ``epochs``; epoch ``e`` visits the rows
    in the order ``rng.permutation(n)`` of ``default_rng(seed)``. Returns the weights
    and the reconstruction error of each epoch (the mean over its batches, weighted
    by rows). PCD's chains start from ``x``'s first ``batch`` rows of epoch 0's order
    and keep as many rows as the batch (a short last batch uses the first rows)."""
    order_rng, rng = np.random.default_rng(seed), cd_generator(seed)
    velocity = {name: np.zeros_like(a) for name, a in w.items()}
    visible, hidden = w["weight"].shape
    chain: np.ndarray | None = None
    errors: list[float] = []
    for _ in range(epochs):
        order = order_rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch):
            v0 = x[order[start : start + batch]]
            if cd.persistent and chain is None:
                chain = v0.copy()
            u = draw_uniforms(rng, cd.k, len(v0), visible, hidden)
            start_chain = chain[: len(v0)] if chain is not None else None
            w, velocity, vk, error = cd_step(w, velocity, v0, u, cd, start_chain)
            if chain is not None:
                chain[: len(v0)] = vk
            total += error * len(v0)
        errors.append(total / len(x))
    return w, errors


def sample_chains(
    w: Arrays, count: int, steps: int, seed: int, kind: str = "bernoulli"
) -> np.ndarray:
    """Samples from noise: ``count`` chains start at ``[U < 0.5]`` (Bernoulli visible
    units) or at standard normals (Gaussian ones) and run ``steps`` Gibbs steps;
    returns the last ``E[v | h]`` (the samples' means), all draws from
    ``default_rng([seed, crc32("samples")])`` (the start, then per step hidden,
    visible)."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(b"samples")])
    visible, hidden = w["weight"].shape
    w = {p: np.asarray(a, np.float64) for p, a in w.items()}

    def draw() -> np.ndarray:
        size = (count, visible)
        return rng.standard_normal(size) if kind == "gaussian" else rng.random(size)

    start = draw()
    v = start if kind == "gaussian" else (start < 0.5).astype(np.float64)
    means = v
    for _ in range(steps):
        h = (rng.random((count, hidden)) < hidden_probabilities(w, v)).astype(np.float64)
        means = visible_probabilities(w, h, kind)
        v = sample_visible(means, draw(), kind)
    return means


# -- how well an RBM models its data ----------------------------------------------------

EXACT_UNITS = 12  # the exact log-likelihood enumerates 2^min(visible, hidden) states


def _softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + e^z)``, finite for any z (faster than ``np.logaddexp(0, z)``)."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def free_energy(w: Arrays, v: np.ndarray, kind: str = "bernoulli") -> np.ndarray:
    """``F(v) = -v·b - Σ_j softplus(c_j + (v W)_j)`` per row (float64), so that
    ``p(v) = exp(-F(v)) / Z``; with Gaussian visible units the first term is
    ``½‖v - b‖²``."""
    v = np.asarray(v, np.float64)
    b = w["visible_bias"].astype(np.float64)
    a = v @ w["weight"].astype(np.float64) + w["hidden_bias"].astype(np.float64)
    first = 0.5 * ((v - b) ** 2).sum(axis=1) if kind == "gaussian" else -(v @ b)
    return first - _softplus(a).sum(axis=1)


def _states(n: int) -> np.ndarray:
    """All ``2^n`` binary vectors ``[2^n, n]``."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def gaussian_log_partition(w: Arrays) -> float:
    """``log Z`` of an RBM with unit-variance Gaussian visible units, by enumeration
    over the ``2^H`` hidden states (the visible integral is Gaussian):
    ``(F/2) log 2π + log Σ_h exp(h·c + b·(W h) + ½‖W h‖²)``.

    >>> zero = {"weight": np.zeros((3, 2)), "visible_bias": np.zeros(3), "hidden_bias": np.zeros(2)}
    >>> z = gaussian_log_partition(zero) - 1.5 * np.log(2 * np.pi)  # 4 hidden states
    >>> round(float(z / np.log(2)), 6)
    2.0
    """
    visible, hidden = w["weight"].shape
    if hidden > EXACT_UNITS:
        raise ValueError(
            f"log Z of Gaussian visible units enumerates the hidden states: at most "
            f"{EXACT_UNITS}. Received: {hidden} hidden"
        )
    h = _states(hidden)
    a = h @ w["weight"].astype(np.float64).T  # [2^H, F]: W h per state
    terms = (
        h @ w["hidden_bias"].astype(np.float64)
        + a @ w["visible_bias"].astype(np.float64)
        + 0.5 * (a**2).sum(axis=1)
    )
    top = float(terms.max())
    return 0.5 * visible * float(np.log(2 * np.pi)) + top + float(np.log(np.exp(terms - top).sum()))


def log_partition(w: Arrays) -> float:
    """``log Z`` by enumeration over the smaller layer's ``2^min(F, H)`` states: over
    the hidden ones ``log Σ_h exp(h·c + Σ_i softplus(b_i + (W h)_i))``, over the visible
    ones ``log Σ_v exp(-F(v))``.

    >>> zero = {"weight": np.zeros((3, 2)), "visible_bias": np.zeros(3), "hidden_bias": np.zeros(2)}
    >>> round(float(log_partition(zero) / np.log(2)), 6)  # 2^(3+2) equally likely states
    5.0
    """
    visible, hidden = w["weight"].shape
    if min(visible, hidden) > EXACT_UNITS:
        raise ValueError(
            f"log Z by enumeration takes at most {EXACT_UNITS} units in the smaller layer. "
            f"Received: {visible} visible, {hidden} hidden"
        )
    if hidden <= visible:
        h = _states(hidden)
        wt = w["weight"].astype(np.float64)
        terms = h @ w["hidden_bias"].astype(np.float64) + _softplus(
            h @ wt.T + w["visible_bias"].astype(np.float64)
        ).sum(axis=1)
    else:
        terms = -free_energy(w, _states(visible))
    top = float(terms.max())
    return top + float(np.log(np.exp(terms - top).sum()))


def log_likelihood(w: Arrays, v: np.ndarray, kind: str = "bernoulli") -> float:
    """The exact mean log-likelihood ``mean(-F(v)) - log Z`` of the rows of ``v``
    (nats per sample; a density for Gaussian visible units), for an RBM whose smaller
    layer (Gaussian visible units: whose hidden layer) has at most :data:`EXACT_UNITS`
    units."""
    z = gaussian_log_partition(w) if kind == "gaussian" else log_partition(w)
    return float(np.mean(-free_energy(w, v, kind))) - z


def pseudo_log_likelihood(w: Arrays, v: np.ndarray, chunk: int = 256) -> float:
    """The exact pseudo-log-likelihood ``Σ_i log p(v_i | v_{-i})`` (every visible unit,
    no sampling), mean over the rows of ``v`` (binary): ``p(v_i | v_{-i}) =
    σ(F(ṽ) - F(v))`` with ``ṽ`` the row with unit ``i`` flipped. Computed in the
    weights' dtype (float32 in training: twice as fast, and a figure to watch)."""
    dtype = np.result_type(w["weight"].dtype, np.float32)
    wt = w["weight"].astype(dtype)
    b = w["visible_bias"].astype(dtype)
    c = w["hidden_bias"].astype(dtype)
    total = 0.0
    for start in range(0, len(v), chunk):
        x = np.asarray(v[start : start + chunk], dtype)
        a = x @ wt + c  # [N, H]
        base = -(x @ b) - _softplus(a).sum(axis=1)  # F(v)
        sign = 1.0 - 2.0 * x  # +1 where a 0 flips to 1, -1 where a 1 flips to 0
        flipped_a = a[:, None, :] + sign[:, :, None] * wt[None, :, :]  # [N, F, H]
        flipped = -(x @ b)[:, None] - sign * b - _softplus(flipped_a).sum(axis=2)  # F(ṽ_i)
        total += float(-_softplus(base[:, None] - flipped).sum())
    return total / len(v)
