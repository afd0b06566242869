"""``build``: emit the module, import it, and hand back its ``Runtime``.

This is the only place that imports TensorFlow, and only when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from nnc.backends import require_framework
from nnc.backends.codegen import load_module, select
from nnc.errors import DataError, RecipeError
from nnc.ir.program import Program
from nnc.ir.weights import check_weights


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
) -> Any:
    """A TensorFlow runtime (:class:`nnc.backends.runtime.Runtime`) for ``model``.

    ``weights`` are canonical (default: the initial weights drawn from ``seed``);
    ``seed`` defaults to the recipe's and also seeds dropout; ``jit_compile``
    overrides the generated module's choice of XLA for the train step.
    """
    from nnc.backends.codegen import checked
    from nnc.backends.tensorflow.emit import emit

    require_framework("tensorflow")
    program = checked(program)
    m, recipe = select(program, model)
    source = emit(program, m.name)
    if weights is not None:
        weights = check_weights(program, m, weights)
    module = load_module(source, f"tensorflow_{m.name}")
    _typed_errors(module)
    chosen_seed = seed if seed is not None else (recipe.seed if recipe is not None else 0)
    options: dict[str, Any] = {}
    if jit_compile is not None and hasattr(module, "JIT_COMPILE"):
        options["jit_compile"] = jit_compile
    return module.Runtime(weights, seed=chosen_seed, **options)


def _typed_errors(module: ModuleType) -> None:
    """Make the generated module raise nnc's typed errors (its own are plain ones, so
    that it runs without nnc)."""
    setattr(module, "InputError", TensorflowInputError)  # noqa: B010
    if hasattr(module, "TrainingError"):
        setattr(module, "TrainingError", TensorflowTrainingError)  # noqa: B010
