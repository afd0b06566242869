"""Assembling a generated NumPy module.

In order: the header, the parameter table and ``initial_weights``, the kernels and
the learning code (:mod:`nnc.backends.numpy.learning`) the model uses, the model's
class (its weights, forward propagation and written-out backpropagation), then
``compute_loss``, ``make_optimizer``, ``learning_rate`` and, for a supervised recipe,
``fit``. nnc's Runtime interface wraps the module (:mod:`nnc.backends.numpy.runtime`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from nnc.backends import codegen, gancode
from nnc.backends.codegen import CodeWriter, py_class_name, py_literal
from nnc.backends.numpy import kernels, learning
from nnc.backends.numpy.lower_arith import LOWERINGS as ARITH
from nnc.backends.numpy.lower_attention import LOWERINGS as ATTENTION
from nnc.backends.numpy.lower_elementwise import LOWERINGS as ELEMENTWISE
from nnc.backends.numpy.lower_energy import LOWERINGS as ENERGY
from nnc.backends.numpy.lower_layers import LOWERINGS as LAYERS
from nnc.backends.numpy.lower_layout import LOWERINGS as LAYOUT
from nnc.backends.numpy.lower_linalg import LOWERINGS as LINALG
from nnc.backends.numpy.lower_math import LOWERINGS as MATH
from nnc.backends.numpy.lower_positions import LOWERINGS as POSITIONS
from nnc.backends.numpy.lower_resample import LOWERINGS as RESAMPLE
from nnc.backends.numpy.lower_spatial import LOWERINGS as SPATIAL
from nnc.backends.numpy.lower_stateful import LOWERINGS as STATEFUL
from nnc.backends.numpy.training import (
    TrainingSetup,
    emit_compute_loss,
    emit_make_optimizer,
    loss_kernel,
    optimizer_class,
    training_setup,
)
from nnc.backends.numpy.walk import WIDTH, Lowering, Walk
from nnc.backends.pystyle import double_quoted, wrap_long_lines
from nnc.errors import BackendError
from nnc.ir.passes import inline_calls, model_params
from nnc.ir.program import Model, Program
from nnc.ir.training import CrossEntropy, Recipe

NAME = "numpy"

# Every IR op (but ``call``, which inline_calls removes) and how it is written.
LOWERINGS: dict[str, Lowering] = {
    **LAYERS,
    **SPATIAL,
    **RESAMPLE,
    **STATEFUL,
    **ELEMENTWISE,
    **ENERGY,
    **MATH,
    **LAYOUT,
    **ARITH,
    **LINALG,
    **ATTENTION,
    **POSITIONS,
}


def generate(program: Program, model: str | None, source: str) -> str:
    """The generated module for ``model`` (default: the trained one) of a checked program."""
    m, recipe = codegen.select(program, model)
    part = walk_model(program, m)
    setup = training_setup(m, recipe)
    decayed = [p.name for p in model_params(program, m) if p.spec.decay]
    decayed = [name for name in decayed if name in part.trainable] if setup.l2 > 0 else []
    used = set(part.walk.kernels)
    learning: list[str] = []
    if setup.loss is not None:
        padded = isinstance(setup.loss, CrossEntropy) and setup.loss.ignore is not None
        used.update({"as_padded_target" if padded else "as_target", loss_kernel(setup.loss)})
        learning.append("train_step")
    if setup.optimizer is not None:
        learning.append(optimizer_class(setup.optimizer))

    w = CodeWriter()
    w.lines_(codegen.header(source, m, NAME))
    _module_docstring(w, m, part.class_name, setup, isinstance(recipe, Recipe))
    w.line("import zlib")
    w.blank()
    w.line("import numpy as np")
    w.blank()
    codegen.emit_parameter_table(w, program, m)
    w.blank()
    _name_table(
        w, "TRAINABLE", "Parameters the optimizer updates (frozen layers excluded).", part.trainable
    )
    if decayed:
        _name_table(
            w, "DECAYED", "Parameters with L2 regularisation (weights, not biases).", decayed
        )
        w.line("L2 = " + repr(setup.l2) + "  # g += L2 * p for them (not decoupled decay)")
    if setup.loss is None:
        one = f"NOT_TRAINABLE = {py_literal(setup.reason)}"
        if len(one) <= WIDTH:
            w.line(one)
        else:
            with w.block("NOT_TRAINABLE = ("):
                for chunk in textwrap.wrap(setup.reason, 80, drop_whitespace=False):
                    w.line(py_literal(chunk))
            w.line(")")
    w.blank(2)
    seed = recipe.seed if recipe is not None else 0
    codegen.emit_initial_weights(w, program, m, seed)
    _gap(w)
    emit_shared_code(w, used, learning)
    model_class(w, part, f"Model {m.name}", seed)
    _gap(w)
    if setup.loss is not None:
        emit_compute_loss(w, setup.loss)
        _gap(w)
    if setup.optimizer is not None:
        emit_make_optimizer(w, setup.optimizer)
        _gap(w)
    codegen.emit_learning_rate(w, recipe)
    if isinstance(recipe, Recipe):
        _gap(w)
        _fit(w, recipe, part.class_name, bool(decayed))
    return wrap_long_lines(double_quoted(w.render()))


@dataclass
class Part:
    """One model walked for its forward and backward passes: what its class is written
    from."""

    model: Model
    class_name: str
    walk: Walk
    forward: CodeWriter
    seeds: tuple[list[str], list[str]]
    backward: CodeWriter
    trainable: list[str]


def walk_model(program: Program, model: Model) -> Part:
    """Walk ``model`` (its called models inlined) forwards and backwards."""
    flat = inline_calls(program, model)
    params = model_params(program, model)
    trainable = [p.name for p in params if p.spec.trainable and not p.spec.buffer]
    walk = Walk(flat, LOWERINGS, frozenset(trainable))
    walk.kernels.add("as_batch")
    forward = CodeWriter()
    forward.level = 2
    walk.forward(forward)
    seeds = walk.output_gradients()
    backward = CodeWriter()
    backward.level = 2
    walk.backward(backward)
    name = py_class_name(model.name)
    if name in RESERVED or name in kernels.KERNELS or name in learning.LEARNING:
        raise BackendError(
            f"model name '{model.name}' is also a name of the generated module; rename the model"
        )
    return Part(model, name, walk, forward, seeds, backward, trainable)


def emit_shared_code(w: CodeWriter, used: set[str], learning_names: list[str]) -> None:
    """The kernels in ``used`` (and those they call), then the learning code named
    (each an ordinary function or class of nnc, copied verbatim)."""
    for name in kernels.closure(used):
        w.lines_(kernels.source(name).splitlines())
        _gap(w)
    wanted = set(learning_names)
    wanted.update(*(learning.NEEDS.get(name, ()) for name in learning_names))
    for name in learning.LEARNING:
        if name in wanted:
            w.lines_(learning.source(name).splitlines())
            _gap(w)


# Module-level names of a generated module besides the kernels; model classes avoid them.
RESERVED = frozenset(
    {
        "PARAMETERS",
        "TRAINABLE",
        "DECAYED",
        "L2",
        "NOT_TRAINABLE",
        "compute_loss",
        "make_optimizer",
        "learning_rate",
        "fit",
        "initial_weights",
        "discriminator_loss",
        "generator_loss",
        "probabilities",
        "draw_noise",
        "make_generator_optimizer",
        "make_discriminator_optimizer",
        "GENERATOR_TRAINABLE",
        "DISCRIMINATOR_TRAINABLE",
        *gancode.TABLES.values(),
    }
)


def _gap(w: CodeWriter) -> None:
    """Two blank lines between top-level definitions (however the last one ended)."""
    while w.lines and w.lines[-1] == "":
        w.lines.pop()
    w.blank(2)


def _module_docstring(
    w: CodeWriter, m: Model, class_name: str, setup: TrainingSetup, fits: bool
) -> None:
    if setup.optimizer is not None:
        what = f"forward propagation, backpropagation and the\n{setup.optimizer.kind} update"
    else:
        what = "forward propagation and\nbackpropagation"
    lines = [f"Model {m.name} in plain NumPy: {what}, written out by hand.", ""]
    first = m.inputs[0].name
    lines.append(f"    model = {class_name}(initial_weights())   # weights drawn from the seed")
    lines.append(f"    output = model.forward({first})")
    if fits:
        lines.append("    model, history = fit(x, y)   # train as nnc train does")
    w.docstring("\n".join(lines))
    w.blank()


def _name_table(w: CodeWriter, name: str, comment: str, names: list[str]) -> None:
    w.line(f"# {comment}")
    if not names:
        w.line(f"{name} = ()")
        return
    with w.block(f"{name} = ("):
        for n in names:
            w.line(f"{n!r},")
    w.line(")")


def model_class(w: CodeWriter, part: Part, title: str, seed: int = 0) -> None:
    """The model's class: its weights, forward propagation and backpropagation."""
    walk = part.walk
    m = walk.model  # the flat model (called models inlined)
    with w.block(f"class {part.class_name}:"):
        inputs = ", ".join(f"{d.name}: {py_literal(list(d.type.shape))}" for d in m.inputs)
        w.docstring(
            f"{title}: weights, forward propagation and backpropagation.\n\n"
            "Arrays are batch first and channels first; ``weights`` are canonical\n"
            f"(``{{'<node>.<param>': array}}``), inputs ({inputs}).\n"
            "``rng`` draws the dropout masks."
        )
        w.blank()
        rows = [f"({node!r}, {saved!r}, {momentum!r})" for node, saved, momentum in walk.statistics]
        if rows:
            w.line("# batchnorm nodes: (node, its batch statistics in the cache, momentum)")
        one = f"batchnorms = ({rows[0]},)" if len(rows) == 1 else "batchnorms = ()"
        if len(rows) <= 1 and len(w.indent * w.level + one) <= WIDTH:
            w.line(one)
        else:  # one row a line (the trailing commas keep them so)
            with w.block("batchnorms = ("):
                for row in rows:
                    w.line(row + ",")
            w.line(")")
        w.blank()
        with w.block(f"def __init__(self, weights, dtype=np.float32, seed={seed}):"):
            w.line("self.dtype = np.dtype(dtype)")
            w.line("self.weights = {k: np.array(v, dtype=self.dtype) for k, v in weights.items()}")
            w.line("self.rng = np.random.default_rng(seed)")
        w.blank()
        _forward_methods(w, m, walk, part.forward)
        _backward_method(w, m, walk, part.seeds, part.backward)


def _fit(w: CodeWriter, recipe: Recipe, class_name: str, decayed: bool) -> None:
    """A standalone ``fit(x, y)``: the updates of ``nnc train`` on the same samples."""
    signature = f"x, y, epochs={recipe.epochs}, batch={recipe.batch!r}, seed={recipe.seed}"
    with w.block(f"def fit({signature}, verbose=True):"):
        w.docstring(
            f"Train a new {class_name} from initial_weights(seed) on arrays x and y (targets\n"
            "as compute_loss takes them) and return it with the mean training loss of each\n"
            "epoch. It makes the updates of nnc train: per epoch a permutation of the\n"
            "samples from np.random.default_rng(seed), and dropout masks drawn from\n"
            "SeedSequence([seed, epoch])."
        )
        w.line(f"model = {class_name}(initial_weights(seed))")
        w.line("optimizer = make_optimizer(model.weights)")
        w.line("rng = np.random.default_rng(seed)")
        w.line("size = len(x) if batch == 'all' else int(batch)")
        w.line("history = []")
        with w.block("for epoch in range(epochs):"):
            w.line("lr = learning_rate(epoch)")
            w.line("# the dropout masks of nnc train's epoch")
            w.line("dropout_seed = np.random.SeedSequence([seed, epoch]).generate_state(1)[0]")
            w.line("model.rng = np.random.default_rng(int(dropout_seed))")
            w.line("order = rng.permutation(len(x))")
            w.line("total = 0.0")
            with w.block("for start in range(0, len(x), size):"):
                w.line("index = order[start : start + size]")
                l2 = ", L2, DECAYED" if decayed else ""
                w.line("batch_x, batch_y = x[index], y[index]")
                w.line(
                    f"loss = train_step(model, optimizer, compute_loss, batch_x, batch_y, lr{l2})"
                )
                w.line("total += loss * len(index)")
            w.line("history.append(total / len(x))")
            with w.block("if verbose:"):
                w.line('print(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.6f}")')
        w.line("return model, history")


def _reads_weights(body: CodeWriter) -> bool:
    """Whether generated lines read the weights through ``w[...]``."""
    return any(re.search(r"(?<![\w.])w\[", line) for line in body.lines)


def _input_names(walk: Walk, m: Model) -> list[str]:
    return [walk.values[i.name].ident for i in m.inputs]


def _output_expr(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"


def _forward_methods(w: CodeWriter, m: Model, walk: Walk, body: CodeWriter) -> None:
    inputs = _input_names(walk, m)
    signature = ", ".join(inputs)
    several = len(m.outputs) > 1
    with w.block(f"def forward(self, {signature}, training=False):"):
        w.docstring(
            "The model's output" + ("s (a tuple)" if several else "") + " for a batch; "
            "evaluation mode unless training=True."
        )
        w.line(f"return self.propagate({signature}, training=training)[0]")
    w.blank()
    with w.block(f"def propagate(self, {signature}, training=False):"):
        w.docstring(
            "Forward propagation: the output"
            + ("s" if several else "")
            + ", and the cache of the values that\nbackpropagation needs."
        )
        if _reads_weights(body):
            w.line("w = self.weights")
        for decl, ident in zip(m.inputs, inputs, strict=True):
            dtype = "np.int64" if decl.type.dtype == "int64" else "self.dtype"
            shape = py_literal(decl.type.shape)
            w.line(f"{ident} = as_batch({ident}, {decl.name!r}, {shape}, {dtype})")
        w.blank()
        w.lines.extend(body.lines)
        names = walk.cache_names()
        if walk.uses_training_flag:
            names.append("training")
        if names:
            with w.block("cache = {"):
                for name in names:
                    w.line(f"{name!r}: {name},")
            w.line("}")
        else:
            w.line("cache = {}")
        outputs = [walk.values[o].ident for o in m.outputs]
        w.line(f"return {_output_expr(outputs)}, cache")
    w.blank()


def _backward_method(
    w: CodeWriter, m: Model, walk: Walk, seeds: tuple[list[str], list[str]], body: CodeWriter
) -> None:
    params, extra = seeds
    several_in = len(m.inputs) > 1
    with w.block(f"def backpropagate(self, cache, {', '.join(params)}, input_gradients=False):"):
        w.docstring(
            "Backpropagation from d loss / d output"
            + ("s" if len(m.outputs) > 1 else "")
            + ": d loss / d parameter for every\n"
            "trainable parameter, and, with input_gradients, d loss / d input"
            + (" (a tuple)" if several_in else "")
            + ".\nReturns (grads, input gradient or None)."
        )
        if _reads_weights(body):
            w.line("w = self.weights")
        for name in walk.cache_names():
            if name in walk.saved:
                w.line(f"{name} = cache[{name!r}]")
        if walk.uses_training_flag:
            w.line("training = cache['training']")
        w.lines_(extra)
        w.line("grads = {}")
        w.blank()
        w.lines.extend(body.lines)
        results = []
        for decl in m.inputs:
            value = walk.values[decl.name]
            if value.need == "no" or value.grad not in walk.assigned:
                results.append("None")
            else:
                results.append(f"{value.grad} if input_gradients else None")
        returned = results[0] if not several_in else "(" + ", ".join(results) + ")"
        if not several_in and returned != "None":
            returned = f"({returned})"
        w.line(f"return grads, {returned}")
    w.blank()
