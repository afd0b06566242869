"""Lowerings of activations: a table of torch calls, and functions for the rest.

Every torch function used here computes nnc's formula (docs/semantics.md,
Activations): ``F.gelu`` is the exact erf form, ``F.selu`` uses the same constants,
``F.relu``'s gradient at 0 is 0. ``F.softplus`` returns ``x`` itself above 20, where
``log(1 + e^x)`` differs from ``x`` by less than 3e-9. The step needs a helper for
its straight-through gradient.
"""

from __future__ import annotations

from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.torch.layers import Layer, Lowering, Site, call
from nnc.ir.ops.activations import Elu, LeakyRelu, PRelu, _SoftmaxFamily

# Activations that are one torch call on their input.
SIMPLE: dict[str, str] = {
    "sigmoid": "torch.sigmoid",
    "tanh": "torch.tanh",
    "relu": "F.relu",
    "selu": "F.selu",
    "gelu": "F.gelu",
    "softplus": "F.softplus",
    "silu": "F.silu",
}


def simple(node: Any, site: Site) -> Layer:
    return Layer(forward=f"{SIMPLE[node.op]}({site.x})")


def linear(node: Any, site: Site) -> Layer:
    return Layer(forward=None)


def step(node: Any, site: Site) -> Layer:
    return Layer(forward=f"step({site.x})", helpers=("step",))


def leaky_relu(node: LeakyRelu, site: Site) -> Layer:
    return Layer(forward=f"F.leaky_relu({site.x}, {py_literal(node.alpha)})")


def elu(node: Elu, site: Site) -> Layer:
    return Layer(forward=f"F.elu({site.x}, alpha={py_literal(node.alpha)})")


def prelu(node: PRelu, site: Site) -> Layer:
    """nn.PReLU keeps one slope per channel of dim 1 (the sample's axis 0), as nnc does."""
    channels = site.ins[0].shape[0]
    return Layer(
        module=f"nn.PReLU({call(channels)})",
        forward=f"{site.attr}({site.x})",
        renames={"alpha": "weight"},
    )


def _dim(node: _SoftmaxFamily) -> int:
    return node.axis + 1 if node.axis >= 0 else node.axis


def softmax(node: _SoftmaxFamily, site: Site) -> Layer:
    return Layer(forward=f"torch.softmax({site.x}, dim={_dim(node)})")


def log_softmax(node: _SoftmaxFamily, site: Site) -> Layer:
    return Layer(forward=f"F.log_softmax({site.x}, dim={_dim(node)})")


ACTIVATIONS: dict[str, Lowering] = {
    **dict.fromkeys(SIMPLE, simple),
    "linear": linear,
    "step": step,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "prelu": prelu,
    "softmax": softmax,
    "log_softmax": log_softmax,
}
