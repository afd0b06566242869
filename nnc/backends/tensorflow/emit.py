"""Assemble a generated TensorFlow module, in reading order.

header and imports; ``PARAMETERS`` and ``initial_weights`` (shared codegen); the
helpers and layer classes the model uses (:mod:`.library`); one ``keras.Model`` class
per model, callees first (:mod:`.graph`, :mod:`.ops`); the loss and the optimizer
(:mod:`.training`); the tables and the ``Runtime`` class (:mod:`.runtime`);
``learning_rate`` and ``fit`` (shared codegen).
"""

from __future__ import annotations

import re

from nnc.backends import gancode
from nnc.backends.codegen import (
    CodeWriter,
    checked,
    emit_learning_rate,
    header,
    py_literal,
    select,
)

# ruff format's quotes and line splits, as the torch emitter writes them
from nnc.backends.pystyle import LINE_LENGTH, double_quoted, wrap_long_lines
from nnc.backends.tensorflow.graph import ModelEmitter, Names, callees_first, uses_dropout
from nnc.backends.tensorflow.library import DEFINED_NAMES, LIBRARY, emit_library
from nnc.backends.tensorflow.lowered import Lowered, ModelInfo, Training
from nnc.backends.tensorflow.training import (
    LossSpec,
    emit_fit,
    emit_l2,
    emit_loss,
    emit_make_optimizer,
    emit_optimizer,
    loss_name,
)
from nnc.ir.ops.dense import Embedding
from nnc.ir.passes import inline_calls, model_params
from nnc.ir.program import Model, Program
from nnc.ir.training import BinaryCrossEntropy, GanRecipe, Optimizer, Recipe

NAME = "tensorflow"

# Top-level names of a generated module besides the library's.
MODULE_NAMES = frozenset(
    {
        "tf",
        "np",
        "keras",
        "contextlib",
        "zlib",
        "learning_rate",
        "fit",
        "make_optimizer",
        "L2",
        "L2_PARAMETERS",
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


# Whether the runtime XLA-compiles the train step by default, and why. Measured with
# benchmarks/bench_tensorflow.py (batch 64, 2-core CPU): XLA made the step slower for
# both the digits MLP and the digits CNN; TensorFlow's own (oneDNN) kernels, with
# Grappler's graph optimisations, win at these sizes.
# nnc.backends.tensorflow.build(..., jit_compile=True) still turns it on.
JIT_DEFAULT = False


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


NUMPY = "import numpy as np"
_CONDITIONAL = re.compile(r"^( *)(\w+) = (.+) if training else (\w+)$")


def tidy(source: str) -> str:
    """The generated source as ``ruff format`` writes it: double quotes, long calls and
    long ``x = a if training else b`` lines split, numpy imported only where used."""
    lines = []
    for line in wrap_long_lines(double_quoted(source)).splitlines():
        match = _CONDITIONAL.match(line)
        if match is None or len(line) <= LINE_LENGTH:
            lines.append(line)
            continue
        indent, target, value, other = match.groups()
        inner = f"{indent}    {value} if training else {other}"
        lines.append(f"{indent}{target} = (")
        if len(inner) <= LINE_LENGTH:
            lines.append(inner)
        else:
            lines += [
                f"{indent}    {value}",
                f"{indent}    if training",
                f"{indent}    else {other}",
            ]
        lines.append(f"{indent})")
    text = "\n".join(lines) + "\n"
    if not re.search(r"(?<![\w.])np\.", text):
        text = text.replace(NUMPY + "\n", "", 1)
    return text


def model_info(program: Program, model: Model, class_name: str) -> ModelInfo:
    """What the runtime adapter needs to know of a model's generated class."""
    params = model_params(program, model)
    flat = inline_calls(program, model).nodes
    return ModelInfo(
        class_name=class_name,
        inputs=tuple((i.name, i.type.shape, i.type.dtype) for i in model.inputs),
        shapes={p.name: tuple(p.spec.shape) for p in params},
        buffers=tuple(p.name for p in params if p.spec.buffer),
        dropout=uses_dropout(program, model),
        embedding=any(isinstance(n, Embedding) and n.trainable for n in flat),
        vocab=index_limits(program, model),
        outputs=len(model.outputs),
    )


def emit(program: Program, model: str | None = None, source: str = "<program>") -> str:
    """The TensorFlow module for ``model`` (default: the trained one), as Python source.

    It imports only tensorflow and numpy; emitting it imports no framework.

    >>> import nnc
    >>> code = emit(nnc.load("examples/xor.nn"), source="examples/xor.nn")
    >>> "class Xor(keras.Model):" in code and "def make_optimizer(variables):" in code
    True

    When the model is trained by a GAN recipe, this is the GAN's module (:func:`emit_gan`).
    """
    program = checked(program)
    gan = gancode.default_gan(program, model)
    if gan is not None:
        from nnc.backends.tensorflow.gan import emit_gan_module

        return emit_gan_module(program, gan, source)
    return lower_module(program, model, source).source


def lower_module(program: Program, model: str | None = None, source: str = "<program>") -> Lowered:
    """The generated module of one model and what nnc's runtime adapter reads of it."""
    program = checked(program)
    m, recipe = select(program, model)
    loss, optimizer, reason = training_of(program, m, recipe)
    trains = loss is not None and optimizer is not None

    module = Names(MODULE_NAMES | DEFINED_NAMES)
    models = callees_first(program, m, [])
    class_names = {x.name: module.claim(x.name) for x in models}
    reserved = frozenset(module.used)
    emitters = [
        ModelEmitter(program, x, class_names[x.name], class_names, reserved) for x in models
    ]
    model_code = CodeWriter()
    library: set[str] = set()
    for emitter in emitters:
        model_code.blank(2)
        emitter.emit(model_code)
        library |= emitter.library

    params = model_params(program, m)
    l2 = recipe.l2 if isinstance(recipe, Recipe) and trains else 0.0
    decayed = [p.name for p in params if p.spec.decay and p.spec.trainable]
    if l2 > 0:
        library.add("named_parameters")
    w = CodeWriter()
    w.lines_(header(source, m, NAME))
    w.docstring(_module_doc(m, trains))
    w.blank()
    w.line("import contextlib")
    w.blank()
    w.line("import keras")
    w.line(NUMPY)
    w.line("import tensorflow as tf")
    emit_library(w, library, LIBRARY)
    w.lines_(model_code.lines)

    if loss is not None and optimizer is not None:
        w.blank(2)
        emit_loss(w, loss)
        w.blank(2)
        code = emit_optimizer(w, optimizer)
        w.blank(2)
        emit_make_optimizer(w, "make_optimizer", code)
        if l2 > 0:
            w.blank(2)
            emit_l2(w, l2, decayed)
        w.blank(2)
        if isinstance(recipe, Recipe):
            emit_learning_rate(w, recipe)
        else:
            with w.block("def learning_rate(epoch):"):
                w.docstring("A constant learning rate.")
                w.line(f"return {py_literal(optimizer.lr)}")
        if isinstance(recipe, Recipe):
            w.blank(2)
            emit_fit(
                w,
                recipe,
                class_names[m.name],
                loss_name(loss),
                dropout=uses_dropout(program, m),
                integer=any(i.type.dtype == "int64" for i in m.inputs),
                l2=l2 > 0,
            )
    output_shape = m.output_types[0].shape if len(m.outputs) == 1 else ()
    training = Training(loss_name(loss) if trains and loss else None, output_shape, reason)
    return Lowered(tidy(w.render()), model_info(program, m, class_names[m.name]), training)


def emit_gan(
    program: Program, recipe: str | GanRecipe | None = None, source: str = "<program>"
) -> str:
    """The TensorFlow module of a GAN recipe (default: the only one): both models,
    both optimizers, ``GanRuntime`` and ``fit``."""
    from nnc.backends.tensorflow.gan import emit_gan_module

    program = checked(program)
    return emit_gan_module(program, gancode.select_gan(program, recipe), source)


def _module_doc(model: Model, trains: bool) -> str:
    if trains:
        return (
            f"{model.name} for TensorFlow, computing exactly what nnc's docs/semantics.md\n"
            "defines: the model, its loss and optimizer, and fit(x, y) to train it."
        )
    return (
        f"{model.name} for TensorFlow, computing exactly what nnc's docs/semantics.md\n"
        "defines (inference only: no train recipe)."
    )


__all__ = ["emit", "emit_gan", "loss_name", "lower_module", "model_info"]
