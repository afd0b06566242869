"""Multi-head scaled dot-product attention over batched q [N, t, d_q], k [N, s, d_k],
v [N, s, d_v], with its written-out backward pass.

``params`` is (wq, bq, wk, bk, wv, bv, wo, bo) in nnc's layout (torch's Linear
``[out, in]``; a bias may be None). The masked softmax gives a key that is not
attended a weight of exactly 0, and a query that attends no key all-zero weights.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "attention_allowed",
    "attention_backward",
    "attention_forward",
    "attention_heads",
    "attention_linear_backward",
]


def attention_allowed(t, s, causal, mask):
    """Which keys each query attends: [N or 1, 1, t, s] booleans. Causal: key j <= query
    i; mask [N, s]: key j where mask != 0."""
    allowed = np.ones((1, 1, t, s), dtype=bool)
    if causal:
        allowed = allowed & (np.arange(s)[None, :] <= np.arange(t)[:, None])
    if mask is not None:
        allowed = allowed & (mask != 0)[:, None, None, :]
    return allowed


def attention_heads(x, w, b, heads):
    """x W^T + b, split into heads: [N, L, heads * d] -> [N, heads, L, d]."""
    y = x @ w.T
    if b is not None:
        y = y + b
    n, length, width = y.shape
    return y.reshape(n, length, heads, width // heads).transpose(0, 2, 1, 3)


def attention_forward(q, k, v, params, heads, causal=False, mask=None, rate=0.0, rng=None):
    """Returns y [N, t, d_q] and what the backward pass reads. ``rng``: dropout on the
    attention weights (inverted, keep probability 1 - rate); None: no dropout."""
    wq, bq, wk, bk, wv, bv, wo, bo = params
    q_h, k_h, v_h = (
        attention_heads(q, wq, bq, heads),
        attention_heads(k, wk, bk, heads),
        attention_heads(v, wv, bv, heads),
    )
    scale = 1.0 / np.sqrt(q_h.shape[-1])
    scores = (q_h @ k_h.transpose(0, 1, 3, 2)) * np.asarray(scale, q.dtype)
    allowed = attention_allowed(q.shape[1], k.shape[1], causal, mask)
    # max-shifted softmax over the attended keys only
    top = np.where(allowed, scores, -np.inf).max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    e = np.where(allowed, np.exp(np.minimum(scores - top, 0)), 0)
    total = e.sum(axis=-1, keepdims=True)
    probs = e / np.where(total > 0, total, 1)
    keep = None
    if rng is not None and rate > 0:
        keep = (rng.random(probs.shape, dtype=probs.dtype) < 1 - rate).astype(probs.dtype)
        keep /= probs.dtype.type(1 - rate)
    weights = probs if keep is None else probs * keep
    n, _, t, _ = weights.shape
    mixed = (weights @ v_h).transpose(0, 2, 1, 3).reshape(n, t, -1)
    y = mixed @ wo.T
    if bo is not None:
        y = y + bo
    return y, (q, k, v, q_h, k_h, v_h, probs, keep, mixed, scale)


def attention_linear_backward(d_h, x, w, has_bias):
    """Gradients of x W^T + b from the head-split gradient [N, heads, L, d]."""
    n, _, length, _ = d_h.shape
    d = d_h.transpose(0, 2, 1, 3).reshape(n, length, -1)
    d_w = np.einsum("nlo,nli->oi", d, x)
    return d @ w, d_w, (d.sum(axis=(0, 1)) if has_bias else None)


def attention_backward(d_y, saved, params):
    """Returns (d_q, d_k, d_v) and the parameter gradients in ``params`` order."""
    wq, bq, wk, bk, wv, bv, wo, bo = params
    q, k, v, q_h, k_h, v_h, probs, keep, mixed, scale = saved
    d_wo = np.einsum("nto,nti->oi", d_y, mixed)
    d_bo = d_y.sum(axis=(0, 1)) if bo is not None else None
    n, t, _ = d_y.shape
    heads = q_h.shape[1]
    d_mixed = (d_y @ wo).reshape(n, t, heads, -1).transpose(0, 2, 1, 3)
    weights = probs if keep is None else probs * keep
    d_v_h = weights.transpose(0, 1, 3, 2) @ d_mixed
    d_probs = d_mixed @ v_h.transpose(0, 1, 3, 2)
    if keep is not None:
        d_probs = d_probs * keep
    # softmax backward; keys not attended have probs 0, so their scores get 0
    d_scores = probs * (d_probs - (d_probs * probs).sum(axis=-1, keepdims=True))
    d_scores = d_scores * np.asarray(scale, d_y.dtype)
    d_q_h = d_scores @ k_h
    d_k_h = d_scores.transpose(0, 1, 3, 2) @ q_h
    d_q, d_wq, d_bq = attention_linear_backward(d_q_h, q, wq, bq is not None)
    d_k, d_wk, d_bk = attention_linear_backward(d_k_h, k, wk, bk is not None)
    d_v, d_wv, d_bv = attention_linear_backward(d_v_h, v, wv, bv is not None)
    return (d_q, d_k, d_v), (d_wq, d_bq, d_wk, d_bk, d_wv, d_bv, d_wo, d_bo)
