"""A small Runtime written in NumPy for driver tests: a linear model (one dense
layer) with softmax cross-entropy, MSE or SSE, trained by SGD with momentum.
Parameters and state are float32, as across the real interface, so saving and
restoring them is lossless and a resumed run can match an uninterrupted one exactly.

It implements the whole Runtime interface and records what the driver asks of it
(seeds, learning rates, batches), so tests can check the driver's side of the
contract without any backend.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnc.ir.program import Program
from nnc.ir.training import Recipe, Sgd


class FakeRuntime:
    backend = "fake"

    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        recipe: Recipe,
        nan_at_step: int = 0,
        sigint_at_step: int = 0,
    ):
        self.w = np.array(weights["dense_1.weight"], dtype=np.float32)
        self.b = np.array(weights["dense_1.bias"], dtype=np.float32)
        self.loss_kind = recipe.loss.kind
        opt = recipe.optimizer
        assert isinstance(opt, Sgd), "the fake runtime implements sgd only"
        self.momentum = opt.momentum
        self.velocity = {
            "dense_1.weight": np.zeros_like(self.w),
            "dense_1.bias": np.zeros_like(self.b),
        }
        self.step = 0
        self.nan_at_step = nan_at_step
        self.sigint_at_step = sigint_at_step
        self.seeds: list[int] = []
        self.lrs: list[float] = []
        self.batches: list[np.ndarray] = []
        self.losses: list[float] = []

    # -- maths ---------------------------------------------------------------
    def forward(self, *inputs: np.ndarray, training: bool = False) -> np.ndarray:
        x = inputs[0].reshape(len(inputs[0]), -1).astype(np.float32)
        return x @ self.w.T + self.b

    def _loss_and_grad(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        z = self.forward(x).astype(np.float64)
        y = y.reshape(z.shape).astype(np.float64)
        if self.loss_kind == "cross_entropy":
            shifted = z - z.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            return float(-(y * logp).sum() / len(z)), (np.exp(logp) - y) / len(z)
        if self.loss_kind == "sse":
            return float(0.5 * ((z - y) ** 2).sum()), z - y
        return float(((z - y) ** 2).mean()), 2 * (z - y) / z.size

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return self._loss_and_grad(x, y)[0]

    def gradients(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        _, dz = self._loss_and_grad(x, y)
        flat = x.reshape(len(x), -1).astype(np.float64)
        return {"dense_1.weight": dz.T @ flat, "dense_1.bias": dz.sum(axis=0)}

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        self.batches.append(np.array(x))
        self.lrs.append(lr)
        loss = self.loss(x, y)
        grads = self.gradients(x, y)
        self.step += 1
        for name, param in (("dense_1.weight", self.w), ("dense_1.bias", self.b)):
            v = self.momentum * self.velocity[name] + grads[name].astype(np.float32)
            self.velocity[name] = v = v.astype(np.float32)
            param -= (lr * v).astype(np.float32)
        if self.nan_at_step and self.step >= self.nan_at_step:
            self.w[...] = np.nan
            return float("nan")
        self.losses.append(loss)
        if self.step == self.sigint_at_step:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C now
        return loss

    # -- state ---------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self.seeds.append(seed)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {
            "dense_1.weight": self.w.astype(np.float32),
            "dense_1.bias": self.b.astype(np.float32),
        }

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self.w = np.array(weights["dense_1.weight"], dtype=np.float32)
        self.b = np.array(weights["dense_1.bias"], dtype=np.float32)

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        state = {"step": np.asarray(self.step, dtype=np.int64)}
        if self.momentum:
            state.update({f"{k}.velocity": v.copy() for k, v in self.velocity.items()})
        return state

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.step = int(state["step"])
        for k in self.velocity:
            if f"{k}.velocity" in state:
                self.velocity[k] = np.array(state[f"{k}.velocity"], dtype=np.float32)


class ScriptedValidation(FakeRuntime):
    """Reports scripted validation losses, one per epoch, for early-stopping tests.
    Validation samples are recognised by a first feature of 100 or more."""

    script: tuple[float, ...] = ()

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        if x[0].reshape(-1)[0] >= 100:
            epoch = max(len(self.seeds) - 1, 0)
            return self.script[min(epoch, len(self.script) - 1)]
        return super().loss(x, y)


class FakeBackend:
    """A ``build`` function that remembers every runtime it made."""

    def __init__(
        self, nan_at_step: int = 0, script: tuple[float, ...] = (), sigint_at_step: int = 0
    ):
        self.nan_at_step = nan_at_step
        self.sigint_at_step = sigint_at_step
        self.script = script
        self.runtimes: list[FakeRuntime] = []
        self.options: list[dict[str, Any]] = []

    def __call__(
        self,
        program: Program,
        model: str | None = None,
        weights: Any = None,
        seed: Any = None,
        **options: Any,
    ) -> FakeRuntime:
        recipe = next(
            r for r in program.recipes.values() if isinstance(r, Recipe) and r.model == model
        )
        runtime = FakeRuntime(weights, recipe, self.nan_at_step, self.sigint_at_step)
        if self.script:
            runtime = ScriptedValidation(weights, recipe, self.nan_at_step)
            runtime.script = self.script
        self.runtimes.append(runtime)
        self.options.append(options)
        return runtime

    @property
    def last(self) -> FakeRuntime:
        return self.runtimes[-1]
