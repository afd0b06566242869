"""The learning code every generated NumPy module shares: the optimizers of
docs/semantics.md ("Optimizers"), batchnorm's running statistics and one training
step, one discriminator round and one generator round of a GAN.

Like the kernels, these are ordinary functions and classes of nnc, linted and tested,
that the code generator copies (``inspect.getsource``) into a generated module when it
uses them, so the module stays standalone (NumPy only); :mod:`nnc.backends.numpy.runtime`
imports them from here, so ``nnc train`` and a generated module's ``fit`` run the same
code. They use only ``np`` and builtins, and no annotations (the copies must define
without imports).

A model object (a generated model class) has ``weights`` (canonical name -> array),
``propagate(*inputs, training)`` -> ``(output, cache)``, and
``backpropagate(cache, d_output, input_gradients=False)`` -> ``(grads, d_input)``.
"""

from __future__ import annotations

import inspect

import numpy as np

__all__ = [
    "Adagrad",
    "Adam",
    "Optimizer",
    "Rmsprop",
    "Sgd",
    "discriminator_round",
    "generator_round",
    "train_step",
    "update_running_statistics",
]


class Optimizer:
    """The state every optimizer keeps: ``steps`` (updates made so far) and, per
    parameter in ``names`` and per slot, an array shaped like the parameter, under
    the canonical name '<param>.<slot>'. ``update`` changes the weights in place.
    """

    slots: tuple[str, ...] = ()
    initial = 0.0  # the slots' starting value

    def __init__(self, weights, names):
        self.names = tuple(names)
        self.steps = 0
        self.state = {}
        for name in self.names:
            for slot in self.slots:
                self.state[f"{name}.{slot}"] = np.full_like(weights[name], self.initial)

    def update(self, weights, grads, lr):
        """One update of the parameters in ``names`` with their gradients."""
        lr = float(lr)  # a Python float keeps float32 arrays float32
        self.steps += 1
        for name in self.names:
            self.update_parameter(name, weights[name], grads[name], lr)

    def update_parameter(self, name, p, g, lr):
        raise NotImplementedError


class Sgd(Optimizer):
    """Stochastic gradient descent: p -= lr * g; with momentum, v = momentum * v + g
    and p -= lr * v (Nesterov: p -= lr * (g + momentum * v)).
    """

    def __init__(self, weights, names, momentum=0.0, nesterov=False):
        self.momentum = momentum
        self.nesterov = nesterov
        self.slots = ("velocity",) if momentum > 0 else ()
        super().__init__(weights, names)

    def update_parameter(self, name, p, g, lr):
        if not self.slots:
            p -= lr * g
            return
        v = self.state[name + ".velocity"]
        v *= self.momentum
        v += g
        p -= lr * (g + self.momentum * v) if self.nesterov else lr * v


class Adagrad(Optimizer):
    """AdaGrad: G += g^2; p -= lr * g / (sqrt(G) + eps), G starting at ``initial``."""

    slots = ("accumulator",)

    def __init__(self, weights, names, eps=1e-10, initial=0.0):
        self.eps = eps
        self.initial = initial
        super().__init__(weights, names)

    def update_parameter(self, name, p, g, lr):
        accumulator = self.state[name + ".accumulator"]
        accumulator += g * g
        p -= lr * g / (np.sqrt(accumulator) + self.eps)


class Rmsprop(Optimizer):
    """RMSprop: v = rho v + (1 - rho) g^2; p -= lr * g / (sqrt(v) + eps) (epsilon
    outside the root)."""

    slots = ("square_avg",)

    def __init__(self, weights, names, rho=0.99, eps=1e-8):
        self.rho = rho
        self.eps = eps
        super().__init__(weights, names)

    def update_parameter(self, name, p, g, lr):
        square_avg = self.state[name + ".square_avg"]
        square_avg *= self.rho
        square_avg += (1 - self.rho) * g * g
        p -= lr * g / (np.sqrt(square_avg) + self.eps)


class Adam(Optimizer):
    """Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections
    m_hat = m / (1 - b1^t) and v_hat = v / (1 - b2^t), t = steps.
    """

    slots = ("m", "v")

    def __init__(self, weights, names, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        super().__init__(weights, names)

    def update_parameter(self, name, p, g, lr):
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        m, v = self.state[name + ".m"], self.state[name + ".v"]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        p -= lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


def update_running_statistics(weights, cache, batchnorms):
    """Batchnorm's running statistics after a training step, for each (node, key of
    its batch statistics in the cache, momentum) of ``batchnorms``:
    running = (1 - momentum) * running + momentum * batch, with the unbiased batch
    variance (n / (n - 1) times the biased one).
    """
    for node, saved, momentum in batchnorms:
        _, _, mean, var, count = cache[saved]
        unbiased = var * count / max(count - 1, 1)
        mean_key, var_key = node + ".running_mean", node + ".running_var"
        weights[mean_key] = (1 - momentum) * weights[mean_key] + momentum * mean
        weights[var_key] = (1 - momentum) * weights[var_key] + momentum * unbiased


def train_step(model, optimizer, compute_loss, x, y, lr, l2=0.0, decayed=()):
    """One update of ``model`` on one batch, in training mode: the loss and its
    gradient (``compute_loss(output, y)``), backpropagation, L2 (g += l2 * p for the
    parameters in ``decayed``; not decoupled decay), the optimizer's update, then the
    running statistics of its batchnorms (``model.batchnorms``). Returns the loss
    before the update. ``x`` is one input array, or a tuple of them.
    """
    inputs = x if isinstance(x, tuple) else (x,)
    output, cache = model.propagate(*inputs, training=True)
    loss, d_output = compute_loss(output, y)
    grads, _ = model.backpropagate(cache, d_output)
    for name in decayed:
        grads[name] = grads[name] + l2 * model.weights[name]
    optimizer.update(model.weights, grads, lr)
    if model.batchnorms:
        update_running_statistics(model.weights, cache, model.batchnorms)
    return float(loss)


def discriminator_round(generator, discriminator, optimizer, discriminator_loss, x, z, lr):
    """One update of the discriminator on real samples x and generated ones G(z), both
    in training mode (two passes); the generator does not change. Returns the loss,
    D's scores for x and for G(z), before the update.
    """
    fake = generator.propagate(z, training=True)[0]
    real_scores, real_cache = discriminator.propagate(x, training=True)
    fake_scores, fake_cache = discriminator.propagate(fake, training=True)
    loss, d_real, d_fake = discriminator_loss(real_scores, fake_scores)
    grads, _ = discriminator.backpropagate(real_cache, d_real)
    fake_grads, _ = discriminator.backpropagate(fake_cache, d_fake)
    grads = {name: g + fake_grads[name] for name, g in grads.items()}
    optimizer.update(discriminator.weights, grads, lr)
    if discriminator.batchnorms:  # the real batch's statistics, then the generated one's
        for cache in (real_cache, fake_cache):
            update_running_statistics(discriminator.weights, cache, discriminator.batchnorms)
    return float(loss), real_scores, fake_scores


def generator_round(generator, discriminator, optimizer, generator_loss, z, lr):
    """One update of the generator: its loss backpropagates through the discriminator
    (to D's input) and then through G; the discriminator does not change. Returns the
    loss and D's scores for G(z), before the update.
    """
    fake, generator_cache = generator.propagate(z, training=True)
    scores, cache = discriminator.propagate(fake, training=True)
    loss, d_scores = generator_loss(scores)
    _, d_fake = discriminator.backpropagate(cache, d_scores, input_gradients=True)
    grads, _ = generator.backpropagate(generator_cache, d_fake)
    optimizer.update(generator.weights, grads, lr)
    if generator.batchnorms:
        update_running_statistics(generator.weights, generator_cache, generator.batchnorms)
    return float(loss), scores


# In the order a module defines them (a base class before its subclasses).
ORDER = (
    "Optimizer",
    "Sgd",
    "Adagrad",
    "Rmsprop",
    "Adam",
    "update_running_statistics",
    "train_step",
    "discriminator_round",
    "generator_round",
)
LEARNING = {name: globals()[name] for name in ORDER}

# What each of them uses besides NumPy.
NEEDS = {
    "Sgd": ("Optimizer",),
    "Adagrad": ("Optimizer",),
    "Rmsprop": ("Optimizer",),
    "Adam": ("Optimizer",),
    "train_step": ("update_running_statistics",),
    "discriminator_round": ("update_running_statistics",),
    "generator_round": ("update_running_statistics",),
}


def source(name: str) -> str:
    """The source text of one of these functions or classes, to copy into a module."""
    return inspect.getsource(LEARNING[name]).rstrip("\n")
