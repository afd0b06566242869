"""The NumPy backend: nnc's from-scratch teaching backend and float64 reference.

``emit`` writes a standalone module (it imports only NumPy and the standard library)
in which forward propagation and backpropagation are written out by hand; ``build``
loads that module and wraps it in nnc's runtime adapter
(:class:`~nnc.backends.numpy.runtime.NumpyRuntime`). See ``docs/backends/numpy.md``.

>>> import nnc
>>> source = emit(nnc.load("examples/xor.nn"), source="examples/xor.nn")
>>> "def backpropagate(self, cache, d_sigmoid_2, input_gradients=False):" in source
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnc.backends import codegen, gancode
from nnc.backends.codegen import py_class_name
from nnc.backends.numpy.gan import generate_gan
from nnc.backends.numpy.module import LOWERINGS, NAME, generate
from nnc.backends.numpy.runtime import build_gan_runtime, build_runtime
from nnc.errors import BackendError
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe
from nnc.ir.weights import check_gan_weights, check_weights

__all__ = ["LOWERINGS", "NAME", "build", "build_gan", "emit", "emit_gan"]


def emit(program: Program, model: str | None = None, source: str = "<program>") -> str:
    """The generated NumPy module for ``model`` (default: the model of the first train
    recipe, else the only model; when that recipe is a GAN, the GAN's module, as
    :func:`emit_gan`). Imports no framework."""
    checked = codegen.checked(program)
    gan = gancode.default_gan(checked, model)
    if gan is not None:
        return generate_gan(checked, gan, source)
    return generate(checked, model, source)


def emit_gan(
    program: Program, recipe: str | GanRecipe | None = None, source: str = "<program>"
) -> str:
    """The generated NumPy module of a GAN recipe (default: the only one): both
    models, both optimizers, ``GanRuntime`` and ``fit``."""
    checked = codegen.checked(program)
    return generate_gan(checked, gancode.select_gan(checked, recipe), source)


def build_gan(
    program: Program,
    recipe: str | GanRecipe | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    dtype: Any = "float32",
    seed: int | None = None,
) -> Any:
    """A ready :class:`~nnc.backends.runtime.GanRuntime` on NumPy for a GAN recipe.

    ``weights`` hold both models under their roles (``generator/<param>``); without
    them the initial weights are drawn from ``seed`` (default: the recipe's).
    ``dtype`` is ``float32`` or ``float64`` (the reference).
    """
    program = codegen.checked(program)
    gan = gancode.select_gan(program, recipe)
    resolved = _dtype(dtype)
    if weights is not None:
        check_gan_weights(program, gan, weights)
    module = codegen.load_module(generate_gan(program, gan, "<program>"), f"gan_{gan.name}")
    names = {
        "generator": py_class_name(gan.generator),
        "discriminator": py_class_name(gan.discriminator),
    }
    chosen = gan.seed if seed is None else seed
    return build_gan_runtime(module, names, weights, dtype=resolved, seed=chosen)


def _dtype(dtype: Any) -> np.dtype:
    resolved = np.dtype(dtype)
    if resolved not in (np.float32, np.float64):
        raise BackendError(f"the numpy backend runs in float32 or float64. Received: {resolved}")
    return resolved


def build(
    program: Program,
    model: str | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    dtype: Any = "float32",
    seed: int | None = None,
) -> Any:
    """A ready :class:`~nnc.backends.runtime.Runtime` running on NumPy.

    ``weights`` are canonical (checked against the model); without them the initial
    weights are drawn from ``seed`` (default: the recipe's seed). ``dtype`` is
    ``float32`` (default) or ``float64`` (the reference the other backends are
    compared with).
    """
    program = codegen.checked(program)
    m, recipe = codegen.select(program, model)
    resolved = _dtype(dtype)
    if weights is not None:
        check_weights(program, m, weights)  # a clear WeightsError for a wrong file
    module = codegen.load_module(generate(program, m.name, "<program>"), m.name)
    chosen = seed if seed is not None else (recipe.seed if recipe is not None else 0)
    return build_runtime(module, py_class_name(m.name), weights, dtype=resolved, seed=chosen)
