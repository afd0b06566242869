"""``build``: emit the module, import it, and hand back its ``Runtime``.

This is the only place that imports TensorFlow (through
:func:`~nnc.backends.tensorflow.framework.import_tensorflow`), and only when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from nnc.backends import gancode, require_framework
from nnc.backends.codegen import checked, load_module, select
from nnc.backends.tensorflow.framework import import_tensorflow
from nnc.errors import DataError, RecipeError
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe
from nnc.ir.weights import check_gan_weights, check_weights


class TensorflowInputError(DataError, ValueError):
    """Arrays given to a TensorFlow runtime that do not fit the model."""


class TensorflowTrainingError(RecipeError, RuntimeError):
    """A training method of a TensorFlow runtime whose model has no supervised recipe."""


def build(
    program: Program,
    model: str | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    seed: int | None = None,
    jit_compile: bool | None = None,
    strategy: Any = None,
) -> Any:
    """A TensorFlow runtime (:class:`nnc.backends.runtime.Runtime`) for ``model``.

    ``weights`` are canonical (default: the initial weights drawn from ``seed``);
    ``seed`` defaults to the recipe's and also seeds dropout; ``jit_compile``
    overrides the generated module's choice of XLA for the train step. ``strategy``,
    a ``tf.distribute.MultiWorkerMirroredStrategy`` with one replica per worker,
    makes a data-parallel runtime (docs/distributed.md).
    """
    from nnc.backends.codegen import checked
    from nnc.backends.tensorflow.emit import emit

    require_framework("tensorflow")
    program = checked(program)
    m, recipe = select(program, model)
    source = emit(program, m.name)
    if weights is not None:
        weights = check_weights(program, m, weights)
    import_tensorflow()
    module = load_module(source, f"tensorflow_{m.name}")
    _typed_errors(module)
    chosen_seed = seed if seed is not None else (recipe.seed if recipe is not None else 0)
    options: dict[str, Any] = {}
    if jit_compile is not None and hasattr(module, "JIT_COMPILE"):
        options["jit_compile"] = jit_compile
    if strategy is not None:
        if not hasattr(module, "JIT_COMPILE"):
            raise TensorflowTrainingError(
                f"model {m.name} has no train recipe, so it cannot train data-parallel"
            )
        options["strategy"] = strategy
    return module.Runtime(weights, seed=chosen_seed, **options)


def build_gan(
    program: Program,
    recipe: str | GanRecipe | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    seed: int | None = None,
) -> Any:
    """A TensorFlow :class:`~nnc.backends.runtime.GanRuntime` for a GAN recipe
    (default: the only one). ``weights`` hold both models under their roles
    (default: drawn from ``seed``, itself the recipe's by default)."""
    from nnc.backends.tensorflow.gan import emit_gan_module

    require_framework("tensorflow")
    program = checked(program)
    gan = gancode.select_gan(program, recipe)
    source = emit_gan_module(program, gan, "<program>")
    if weights is not None:
        weights = check_gan_weights(program, gan, weights)
    import_tensorflow()
    module = load_module(source, f"tensorflow_gan_{gan.name}")
    _typed_errors(module)
    return module.GanRuntime(weights, seed=gan.seed if seed is None else seed)


def _typed_errors(module: ModuleType) -> None:
    """Make the generated module raise nnc's typed errors (its own are plain ones, so
    that it runs without nnc)."""
    setattr(module, "InputError", TensorflowInputError)  # noqa: B010
    if hasattr(module, "TrainingError"):
        setattr(module, "TrainingError", TensorflowTrainingError)  # noqa: B010
