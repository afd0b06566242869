"""``build``: lower the model, import the generated module, and wrap it in nnc's
runtime adapter (:mod:`nnc.backends.tensorflow.runtime`).

This is the only place that imports TensorFlow (through
:func:`~nnc.backends.tensorflow.framework.import_tensorflow`), and only when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnc.backends import gancode, require_framework
from nnc.backends.codegen import checked, load_module, select
from nnc.backends.tensorflow.errors import TensorflowInputError, TensorflowTrainingError
from nnc.backends.tensorflow.framework import import_tensorflow
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe
from nnc.ir.weights import check_gan_weights, check_weights, init_gan_weights, init_weights

__all__ = ["TensorflowInputError", "TensorflowTrainingError", "build", "build_gan"]


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
    XLA-compiles the train step (default: off, ``emit.JIT_DEFAULT``). ``strategy``,
    a ``tf.distribute.MultiWorkerMirroredStrategy`` with one replica per worker,
    makes a data-parallel runtime (docs/distributed.md).
    """
    from nnc.backends.tensorflow.emit import JIT_DEFAULT, lower_module

    require_framework("tensorflow")
    program = checked(program)
    m, recipe = select(program, model)
    lowered = lower_module(program, m.name)
    if weights is not None:
        weights = check_weights(program, m, weights)
    chosen_seed = seed if seed is not None else (recipe.seed if recipe is not None else 0)
    if weights is None:
        weights = init_weights(program, m, chosen_seed)
    if strategy is not None and lowered.training.loss is None:
        raise TensorflowTrainingError(
            f"model {m.name} has no train recipe, so it cannot train data-parallel"
        )
    import_tensorflow()
    from nnc.backends.tensorflow.runtime import TensorflowRuntime

    module = load_module(lowered.source, f"tensorflow_{m.name}")
    return TensorflowRuntime(
        module,
        lowered.info,
        lowered.training,
        weights,
        seed=chosen_seed,
        jit_compile=JIT_DEFAULT if jit_compile is None else jit_compile,
        strategy=strategy,
    )


def build_gan(
    program: Program,
    recipe: str | GanRecipe | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    seed: int | None = None,
) -> Any:
    """A TensorFlow :class:`~nnc.backends.runtime.GanRuntime` for a GAN recipe
    (default: the only one). ``weights`` hold both models under their roles
    (default: drawn from ``seed``, itself the recipe's by default)."""
    from nnc.backends.tensorflow.gan import lower_gan

    require_framework("tensorflow")
    program = checked(program)
    gan = gancode.select_gan(program, recipe)
    lowered = lower_gan(program, gan, "<program>")
    chosen_seed = gan.seed if seed is None else seed
    if weights is not None:
        weights = check_gan_weights(program, gan, weights)
    else:
        weights = init_gan_weights(program, gan, chosen_seed)
    import_tensorflow()
    from nnc.backends.tensorflow.runtime import TensorflowGanRuntime

    module = load_module(lowered.source, f"tensorflow_gan_{gan.name}")
    return TensorflowGanRuntime(
        module, lowered.infos, weights, from_logits=gan.from_logits, seed=chosen_seed
    )
