"""What a contrastive-divergence step takes, on every backend: canonical arrays, the
``cd(...)`` settings and one batch's uniforms (``docs/semantics.md``, "RBM and
contrastive divergence"). The NumPy step and the driver are :mod:`nnc.train.energy`;
the torch and TensorFlow steps implement the same contract from these types alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class CdSettings:
    """``cd(k, lr, momentum, weight_decay, persistent)``."""

    k: int = 1
    lr: float = 0.1
    momentum: float = 0.5
    weight_decay: float = 0.0002
    persistent: bool = False

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"cd: k must be at least 1 Gibbs step. Received: k = {self.k}")


@dataclass(frozen=True)
class Uniforms:
    """One batch's draws: uniforms in [0, 1) ``hidden [k, N, H]``, then ``visible
    [k, N, F]``: uniforms for Bernoulli visible units, standard normals for Gaussian
    ones."""

    hidden: np.ndarray
    visible: np.ndarray
