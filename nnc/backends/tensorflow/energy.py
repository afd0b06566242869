"""Contrastive divergence on TensorFlow: the step of docs/semantics.md ("RBM and
contrastive divergence"), on the uniforms nnc draws and passes in, so its chain
samples what the NumPy step samples. Arrays come and go in canonical layout;
TensorFlow is imported when a step runs."""

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
) -> tuple[Arrays, Arrays, np.ndarray, float]:
    """As :func:`nnc.train.energy.cd_step`, computed by TensorFlow in the weights'
    dtype (the uniforms, float64 as nnc draws them, are compared in float64, as NumPy
    compares them; a Gaussian unit's normal is cast to the weights' dtype, then added
    to its mean)."""
    import tensorflow as tf

    dtype = tf.as_dtype(w["weight"].dtype)
    W, b, c = (tf.constant(w[p]) for p in PARAMS)
    x0 = tf.cast(tf.constant(v0), dtype)
    uh, uv = tf.constant(u.hidden), tf.constant(u.visible)

    def up(v: Any) -> Any:
        return tf.sigmoid(tf.matmul(v, W) + c)

    def down(h: Any) -> Any:
        a = tf.matmul(h, W, transpose_b=True) + b
        return a if visible == "gaussian" else tf.sigmoid(a)

    def sample(uniform: Any, p: Any) -> Any:
        return tf.cast(uniform < tf.cast(p, tf.float64), dtype)

    n = tf.cast(tf.shape(x0)[0], dtype)
    p0 = up(x0)
    h0 = sample(uh[0], p0)
    error = float(tf.reduce_mean(tf.square(x0 - down(h0))))
    v = x0 if chain is None else tf.cast(tf.constant(chain), dtype)
    for j in range(u.hidden.shape[0]):
        h = sample(uh[j], up(v))
        mean = down(h)
        v = mean + tf.cast(uv[j], dtype) if visible == "gaussian" else sample(uv[j], mean)
    pk = up(v)
    grads = {
        "weight": (tf.matmul(x0, p0, transpose_a=True) - tf.matmul(v, pk, transpose_a=True)) / n
        - cd.weight_decay * W,
        "visible_bias": tf.reduce_mean(x0 - v, axis=0),
        "hidden_bias": tf.reduce_mean(p0 - pk, axis=0),
    }
    params = dict(zip(PARAMS, (W, b, c), strict=True))
    new_velocity = {p: cd.momentum * tf.constant(velocity[p]) + cd.lr * g for p, g in grads.items()}
    new_w = {p: params[p] + new_velocity[p] for p in PARAMS}
    return (
        {p: a.numpy() for p, a in new_w.items()},
        {p: a.numpy() for p, a in new_velocity.items()},
        v.numpy(),
        error,
    )
