"""Assembling a generated NumPy module.

In order: the header, the parameter table and ``initial_weights``, the kernels the
model uses, the ``Runtime`` class (weights, forward propagation, backpropagation,
loss, optimizer and its state), then ``learning_rate`` and, for a supervised recipe,
``fit``.
"""

from __future__ import annotations

import textwrap

from nnc.backends import codegen
from nnc.backends.codegen import CodeWriter, py_literal
from nnc.backends.numpy import kernels
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
    emit_apply_gradients,
    emit_optimizer_init,
    emit_optimizer_state,
    emit_running_statistics,
    emit_training,
    loss_kernel,
    training_setup,
)
from nnc.backends.numpy.walk import Lowering, Walk
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
    flat = inline_calls(program, m)
    params = model_params(program, m)
    trainable = [p.name for p in params if p.spec.trainable and not p.spec.buffer]
    setup = training_setup(m, recipe)
    decayed = [p.name for p in params if p.spec.decay and p.name in trainable]
    decayed = decayed if setup.l2 > 0 else []
    walk = Walk(flat, LOWERINGS, frozenset(trainable))
    walk.kernels.add("as_batch")
    if setup.loss is not None:
        padded = isinstance(setup.loss, CrossEntropy) and setup.loss.ignore is not None
        walk.kernels.update(
            {"as_padded_target" if padded else "as_target", loss_kernel(setup.loss)}
        )

    forward = CodeWriter()
    forward.level = 2
    walk.forward(forward)
    seeds = walk.output_gradients()
    backward = CodeWriter()
    backward.level = 2
    walk.backward(backward)

    w = CodeWriter()
    w.lines_(codegen.header(source, m, NAME))
    _module_docstring(w, m, setup)
    w.line("import zlib")
    w.blank()
    w.line("import numpy as np")
    w.blank(2)
    codegen.emit_parameter_table(w, program, m)
    w.blank()
    _name_table(
        w, "TRAINABLE", "Parameters the optimizer updates (frozen layers excluded).", trainable
    )
    if decayed:
        _name_table(
            w, "DECAYED", "Parameters with L2 regularisation (weights, not biases).", decayed
        )
    if setup.loss is None:
        with w.block("NOT_TRAINABLE = ("):
            for chunk in textwrap.wrap(setup.reason, 80, drop_whitespace=False):
                w.line(py_literal(chunk))
        w.line(")")
    w.blank(2)
    seed = recipe.seed if recipe is not None else 0
    codegen.emit_initial_weights(w, program, m, seed)
    w.blank(2)
    for name in kernels.closure(walk.kernels):
        w.lines_(kernels.source(name).splitlines())
        _gap(w)
    _runtime_class(w, m, walk, setup, decayed, seed, forward, (seeds, backward))
    _gap(w)
    codegen.emit_learning_rate(w, recipe)
    if isinstance(recipe, Recipe):
        _gap(w)
        codegen.emit_fit(w, recipe)
    return w.render()


def _gap(w: CodeWriter) -> None:
    """Two blank lines between top-level definitions (however the last one ended)."""
    while w.lines and w.lines[-1] == "":
        w.lines.pop()
    w.blank(2)


def _module_docstring(w: CodeWriter, m: Model, setup: TrainingSetup) -> None:
    if setup.optimizer is not None:
        what = f"forward propagation, backpropagation and the\n{setup.optimizer.kind} update"
    else:
        what = "forward propagation and\nbackpropagation"
    lines = [f"Model {m.name} in plain NumPy: {what}, written out by hand.", ""]
    first = m.inputs[0].name
    lines.append("    runtime = Runtime()                   # initial weights drawn from the seed")
    lines.append(f"    output = runtime.forward({first})")
    if setup.loss is not None:
        lines.append("    loss = runtime.train_step(x, y, lr)   # one update on one batch")
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


def _runtime_class(
    w: CodeWriter,
    m: Model,
    walk: Walk,
    setup: TrainingSetup,
    decayed: list[str],
    seed: int,
    forward: CodeWriter,
    backward: tuple[tuple[list[str], list[str]], CodeWriter],
) -> None:
    with w.block("class Runtime:"):
        summary = f"Model {m.name}: weights, forward and backward passes"
        if setup.optimizer is not None:
            summary += f", {setup.optimizer.kind} updates"
        w.docstring(
            f"{summary}.\n\n"
            "Arrays are batch first and channels first; weights are canonical\n"
            "(``{'<node>.<param>': array}``). ``weights=None`` draws ``initial_weights(seed)``;\n"
            "``seed`` also seeds the generator of dropout masks."
        )
        w.blank()
        w.line(f"backend = {NAME!r}")
        w.blank()
        _init_and_weights(w, setup, seed)
        _forward_methods(w, walk.model, walk, forward)
        _backward_method(w, walk.model, walk, *backward)
        emit_training(
            w, setup, decayed, statistics=bool(walk.statistics) and setup.loss is not None
        )
        if setup.optimizer is not None:
            emit_apply_gradients(w, setup.optimizer)
        if walk.statistics:
            emit_running_statistics(w, walk.statistics)
        emit_optimizer_state(w)


def _init_and_weights(w: CodeWriter, setup: TrainingSetup, seed: int) -> None:
    with w.block(f"def __init__(self, weights=None, dtype=np.float32, seed={seed}):"):
        w.line("self.dtype = np.dtype(dtype)")
        w.line("self.rng = np.random.default_rng(seed)")
        w.line("self.set_weights(initial_weights(seed) if weights is None else weights)")
        emit_optimizer_init(w, setup.optimizer)
    w.blank()
    with w.block("def seed(self, seed):"):
        w.docstring("Reseed the generator of dropout masks.")
        w.line("self.rng = np.random.default_rng(seed)")
    w.blank()
    with w.block("def get_weights(self):"):
        w.docstring("The canonical weights (copies).")
        w.line("return {name: value.copy() for name, value in self.weights.items()}")
    w.blank()
    with w.block("def set_weights(self, weights):"):
        w.docstring("Load canonical weights: every tensor of PARAMETERS, in its shape.")
        w.line("names = [name for name, *_ in PARAMETERS]")
        w.line("missing = [name for name in names if name not in weights]")
        w.line("unknown = sorted(set(weights) - set(names))")
        with w.block("if missing or unknown:"):
            w.line("raise ValueError(f'weights do not fit: missing {missing}, unknown {unknown}')")
        w.line("loaded = {}")
        with w.block("for name, shape, *_ in PARAMETERS:"):
            w.line("value = np.array(weights[name], dtype=self.dtype)")
            with w.block("if value.shape != shape:"):
                w.line("raise ValueError(")
                w.line("    f'weight {name} must have shape {list(shape)}. '")
                w.line("    f'Received: {list(value.shape)}'")
                w.line(")")
            w.line("loaded[name] = value")
        w.line("self.weights = loaded")
    w.blank()


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
