"""Assemble a generated TensorFlow module, in reading order.

header and imports; ``PARAMETERS`` and ``initial_weights`` (shared codegen); the
helpers and layer classes the model uses (:mod:`.library`); one ``tf.Module`` class
per model, callees first (:mod:`.graph`, :mod:`.ops`); the loss and the optimizer
(:mod:`.training`); the tables and the ``Runtime`` class (:mod:`.runtime`);
``learning_rate`` and ``fit`` (shared codegen).
"""

from __future__ import annotations

from nnc.backends import gancode
from nnc.backends.codegen import (
    CodeWriter,
    checked,
    emit_fit,
    emit_initial_weights,
    emit_learning_rate,
    emit_parameter_table,
    header,
    py_literal,
    select,
)
from nnc.backends.tensorflow.graph import (
    ModelEmitter,
    Names,
    uses_dropout,
)
from nnc.backends.tensorflow.library import DEFINED_NAMES, MODEL_PART, RUNTIME_PART, emit_library
from nnc.backends.tensorflow.runtime import RuntimeSpec, emit_runtime, emit_tables
from nnc.backends.tensorflow.training import LossSpec, emit_loss, emit_optimizer, loss_name
from nnc.ir.ops.dense import Embedding
from nnc.ir.ops.graph import Call
from nnc.ir.passes import inline_calls, model_params
from nnc.ir.program import Model, Program
from nnc.ir.training import BinaryCrossEntropy, GanRecipe, Optimizer, Recipe

NAME = "tensorflow"

# Top-level names of a generated module besides the library's.
MODULE_NAMES = frozenset(
    {
        "tf",
        "np",
        "zlib",
        "contextlib",
        "PARAMETERS",
        "_draw",
        "initial_weights",
        "learning_rate",
        "fit",
        "Runtime",
        "INPUTS",
        "VOCAB",
        "OUTPUT_SHAPE",
        "SHAPES",
        "L2",
        "DECAYED",
        "BUFFERS",
        "JIT_COMPILE",
        "NOT_TRAINABLE",
        "SGD",
        "Adagrad",
        "RMSprop",
        "Adam",
        "mse",
        "mae",
        "sse",
        "cross_entropy",
        "binary_cross_entropy",
    }
)


def training_of(
    program: Program, model: Model, recipe: Recipe | GanRecipe | None
) -> tuple[LossSpec | None, Optimizer | None, str]:
    """The loss and optimizer that train ``model`` here, or why there are none."""
    if isinstance(recipe, Recipe):
        return recipe.loss, recipe.optimizer, ""
    if isinstance(recipe, GanRecipe):
        if model.name == recipe.discriminator:
            # The discriminator's half of the game is a supervised step: real samples
            # labelled 1, generated ones 0, binary cross-entropy on its score.
            optimizer = recipe.discriminator_optimizer or recipe.optimizer
            return BinaryCrossEntropy(from_logits=recipe.from_logits), optimizer, ""
        return (
            None,
            None,
            f"model {model.name} is the generator of GAN recipe '{recipe.name}'; it trains "
            "through the discriminator, in the GAN training loop, not on (x, y) batches",
        )
    return (
        None,
        None,
        f"model {model.name} has no train recipe; add `train {model.name} {{ ... }}` to train it",
    )


# Whether generated modules XLA-compile the train step by default, and why. Measured
# with benchmarks/bench_tensorflow.py (batch 64, 2-core CPU): XLA made the step slower
# for both the digits MLP and the digits CNN; TensorFlow's own (oneDNN) kernels, with
# Grappler's graph optimisations, win at these sizes. Runtime(jit_compile=True) and
# nnc.backends.tensorflow.build(..., jit_compile=True) still turn it on.
JIT_DEFAULT = (
    False,
    "off: on CPU it made the digits MLP's and CNN's train steps slower\n"
    "# (benchmarks/bench_tensorflow.py). Runtime(jit_compile=True) turns it on.",
)


def index_limits(program: Program, model: Model) -> dict[str, int]:
    """For each int64 input, the smallest vocabulary among the embeddings it feeds."""
    flat = inline_calls(program, model)
    limits: dict[str, int] = {}
    for decl in model.inputs:
        if decl.type.dtype != "int64":
            continue
        reached = {decl.name}
        for node in flat.nodes:
            if any(ref.partition(":")[0] in reached for ref in node.inputs):
                reached.add(node.name)
                if isinstance(node, Embedding):
                    limits[decl.name] = min(limits.get(decl.name, node.vocab), node.vocab)
    return limits


def _callees_first(program: Program, model: Model, out: list[Model]) -> list[Model]:
    for node in model.nodes:
        if isinstance(node, Call):
            _callees_first(program, program.models[node.model], out)
    if all(m.name != model.name for m in out):
        out.append(model)
    return out


def emit(program: Program, model: str | None = None, source: str = "<program>") -> str:
    """The TensorFlow module for ``model`` (default: the trained one), as Python source.

    It imports only tensorflow, numpy and the standard library; emitting it imports
    no framework.

    >>> import nnc
    >>> code = emit(nnc.load("examples/xor.nn"), source="examples/xor.nn")
    >>> "class Xor(tf.Module):" in code and "class Runtime:" in code
    True

    When the model is trained by a GAN recipe, this is the GAN's module (:func:`emit_gan`).
    """
    program = checked(program)
    gan = gancode.default_gan(program, model)
    if gan is not None:
        from nnc.backends.tensorflow.gan import emit_gan_module

        return emit_gan_module(program, gan, source)
    m, recipe = select(program, model)
    loss, optimizer, reason = training_of(program, m, recipe)
    seed = recipe.seed if recipe is not None else 0

    module = Names(MODULE_NAMES | DEFINED_NAMES)
    models = _callees_first(program, m, [])
    class_names = {x.name: module.claim(x.name) for x in models}
    reserved = frozenset(module.used)
    emitters = [
        ModelEmitter(program, x, class_names[x.name], class_names, reserved) for x in models
    ]
    model_code = CodeWriter()
    library: set[str] = {"InputError", "named_parameters", "as_batch"}
    for emitter in emitters:
        model_code.blank(2)
        emitter.emit(model_code)
        library |= emitter.library
    if loss is None:
        library.add("TrainingError")

    params = model_params(program, m)
    buffers = tuple(p.name for p in params if p.spec.buffer)
    w = CodeWriter()
    w.lines_(header(source, m, NAME))
    w.docstring(_module_doc(m, loss is not None))
    w.blank()
    if buffers:
        w.line("import contextlib")
    w.line("import zlib")
    w.blank()
    w.line("import numpy as np")
    w.line("import tensorflow as tf")
    w.blank(2)
    emit_parameter_table(w, program, m)
    w.blank(2)
    emit_initial_weights(w, program, m, seed)
    emit_library(w, library, MODEL_PART)
    w.lines_(model_code.lines)

    optimizer_code = None
    if loss is not None and optimizer is not None:
        w.blank(2)
        emit_loss(w, loss)
        w.blank(2)
        optimizer_code = emit_optimizer(w, optimizer)

    l2 = recipe.l2 if isinstance(recipe, Recipe) else 0.0
    spec = RuntimeSpec(
        model=m,
        class_name=class_names[m.name],
        params=emitters[-1].params,
        loss=loss,
        optimizer=optimizer_code,
        no_training_reason=reason,
        l2=l2,
        dropout=uses_dropout(program, m),
        buffers=buffers,
        embedding=any(
            isinstance(n, Embedding) and n.trainable for n in inline_calls(program, m).nodes
        ),
        vocab=index_limits(program, m),
        seed=seed,
        trainable=any(p.spec.trainable and not p.spec.buffer for p in params),
    )
    decayed = [p.name for p in params if p.spec.decay and p.spec.trainable]
    emit_library(w, library, RUNTIME_PART)
    w.blank(2)
    emit_tables(w, spec, decayed, JIT_DEFAULT)
    w.blank(2)
    emit_runtime(w, spec)
    if loss is not None and optimizer is not None:
        w.blank(2)
        if isinstance(recipe, Recipe):
            emit_learning_rate(w, recipe)
            w.blank(2)
            emit_fit(w, recipe, parallel="tensorflow")
        else:
            with w.block("def learning_rate(epoch):"):
                w.docstring("A constant learning rate.")
                w.line(f"return {py_literal(optimizer.lr)}")
    return w.render()


def emit_gan(
    program: Program, recipe: str | GanRecipe | None = None, source: str = "<program>"
) -> str:
    """The TensorFlow module of a GAN recipe (default: the only one): both models,
    both optimizers, ``GanRuntime`` and ``fit``."""
    from nnc.backends.tensorflow.gan import emit_gan_module

    program = checked(program)
    return emit_gan_module(program, gancode.select_gan(program, recipe), source)


def _module_doc(model: Model, trains: bool) -> str:
    lines = [f"{model.name} for TensorFlow, generated by nnc.", ""]
    if trains:
        lines += [
            "    runtime = Runtime()                  # the canonical initial weights",
            "    loss = runtime.train_step(x, y, learning_rate(0))",
            "    outputs = runtime.forward(x)",
        ]
    else:
        lines += [
            "    runtime = Runtime()                  # the canonical initial weights",
            "    outputs = runtime.forward(x)",
        ]
    return "\n".join(lines)


__all__ = ["emit", "emit_gan", "loss_name"]
