"""The generated NumPy module of a GAN recipe: both models written out by hand, and
the two adversarial steps of docs/semantics.md ("GAN") as plain backpropagation.

In order: the header, both parameter tables and ``initial_weights``, the kernels,
one class per model (weights, forward and backward passes, its optimizer), the two
losses, ``GanRuntime`` (:class:`nnc.backends.runtime.GanRuntime`), ``draw_noise``
and ``fit``. The generator learns through the discriminator: the generator step
backpropagates D's loss to D's input (``input_gradients=True``) and from there
through G, and only G's optimizer moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnc.backends import gancode
from nnc.backends.codegen import CodeWriter, py_class_name
from nnc.backends.numpy import kernels
from nnc.backends.numpy.module import (
    LOWERINGS,
    NAME,
    _backward_method,
    _forward_methods,
    _gap,
    _name_table,
)
from nnc.backends.numpy.training import (
    emit_apply_gradients,
    emit_optimizer_init,
    emit_optimizer_state,
    emit_running_statistics,
)
from nnc.backends.numpy.walk import Walk
from nnc.errors import BackendError
from nnc.ir.ops.reshape import Dropout
from nnc.ir.passes import inline_calls, model_params
from nnc.ir.program import Model, Program
from nnc.ir.training import GanRecipe, Optimizer

# Module-level names of a GAN module besides the kernels; model classes avoid them.
MODULE_NAMES = frozenset(
    {
        "GanRuntime",
        "by_role",
        "discriminator_loss",
        "generator_loss",
        "draw_noise",
        "fit",
        "initial_weights",
        *gancode.TABLES.values(),
        "GENERATOR_TRAINABLE",
        "DISCRIMINATOR_TRAINABLE",
    }
)


@dataclass
class Part:
    """One of the two models, walked for its forward and backward passes."""

    role: str
    model: Model
    class_name: str
    walk: Walk
    forward: CodeWriter
    seeds: tuple[list[str], list[str]]
    backward: CodeWriter
    trainable: list[str]
    optimizer: Optimizer
    dropout: bool

    @property
    def table(self) -> str:
        return gancode.TABLES[self.role]

    @property
    def trainable_table(self) -> str:
        return f"{self.role.upper()}_TRAINABLE"


def _part(program: Program, role: str, model: Model, optimizer: Optimizer) -> Part:
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
    if name in MODULE_NAMES or name in kernels.KERNELS:
        raise BackendError(
            f"model name '{model.name}' is also a name of the generated GAN module; rename "
            "the model"
        )
    dropout = any(isinstance(n, Dropout) for n in flat.nodes)
    return Part(role, model, name, walk, forward, seeds, backward, trainable, optimizer, dropout)


def generate_gan(program: Program, recipe: GanRecipe, source: str) -> str:
    """The generated NumPy module of a checked program's GAN recipe."""
    opts = gancode.optimizers(recipe)
    parts = [
        _part(program, role, program.models[name], opts[role])
        for role, name in (("generator", recipe.generator), ("discriminator", recipe.discriminator))
    ]
    logits = recipe.from_logits
    used = set().union(*(p.walk.kernels for p in parts))
    used.add(f"binary_cross_entropy_from_{'logits' if logits else 'probabilities'}")
    if logits:
        used.add("sigmoid")

    w = CodeWriter()
    w.lines_(gancode.gan_header(source, recipe, NAME))
    w.docstring(
        f"GAN recipe {recipe.name} in plain NumPy: the generator {recipe.generator} and the\n"
        f"discriminator {recipe.discriminator}, their forward propagation, backpropagation and\n"
        "optimizer updates written out by hand, and the two adversarial steps.\n\n"
        + "\n".join(gancode.usage(recipe))
    )
    w.blank()
    w.line("import zlib")
    w.blank()
    w.line("import numpy as np")
    w.blank(2)
    params = gancode.emit_gan_parameters(w, program, recipe)
    for part in parts:
        w.blank()
        _name_table(
            w,
            part.trainable_table,
            f"Parameters the {part.role}'s optimizer updates (frozen layers excluded).",
            part.trainable,
        )
    w.blank(2)
    gancode.emit_gan_initial_weights(w, params, recipe)
    _gap(w)
    for name in kernels.closure(used):
        w.lines_(kernels.source(name).splitlines())
        _gap(w)
    for part in parts:
        _model_class(w, part)
        _gap(w)
    _losses(w, recipe)
    _gap(w)
    gancode.emit_by_role(w, "ValueError")
    _gap(w)
    _gan_runtime(w, recipe, parts)
    _gap(w)
    gancode.emit_draw_noise(w, recipe.noise)
    _gap(w)
    gancode.emit_gan_fit(w, recipe)
    return w.render()


def _model_class(w: CodeWriter, part: Part) -> None:
    with w.block(f"class {part.class_name}:"):
        w.docstring(
            f"Model {part.model.name}, the {part.role}: weights, forward and backward passes,\n"
            f"{part.optimizer.kind} updates. GanRuntime drives it.\n\n"
            "Arrays are batch first and channels first; weights are canonical and carry\n"
            "no role (``{'<node>.<param>': array}``)."
        )
        w.blank()
        signature = "self, weights, dtype=np.float32" + (", rng=None" if part.dropout else "")
        with w.block(f"def __init__({signature}):"):
            w.line("self.dtype = np.dtype(dtype)")
            if part.dropout:
                w.line("self.rng = rng  # the generator of dropout masks (GanRuntime's)")
            w.line("self.set_weights(weights)")
            emit_optimizer_init(w, part.optimizer, part.trainable_table)
        w.blank()
        with w.block("def get_weights(self):"):
            w.docstring("The canonical weights (copies).")
            w.line("return {name: value.copy() for name, value in self.weights.items()}")
        w.blank()
        with w.block("def set_weights(self, weights):"):
            w.docstring(f"Load canonical weights: every tensor of {part.table}, in its shape.")
            w.line(f"names = [name for name, *_ in {part.table}]")
            w.line("missing = [name for name in names if name not in weights]")
            w.line("unknown = sorted(set(weights) - set(names))")
            with w.block("if missing or unknown:"):
                w.line("raise ValueError(")
                fit = f"{part.role} weights do not fit"
                w.line(f"    f'{fit}: missing {{missing}}, unknown {{unknown}}'")
                w.line(")")
            w.line("loaded = {}")
            with w.block(f"for name, shape, *_ in {part.table}:"):
                w.line("value = np.array(weights[name], dtype=self.dtype)")
                with w.block("if value.shape != shape:"):
                    w.line("raise ValueError(")
                    w.line("    f'weight {name} must have shape {list(shape)}. '")
                    w.line("    f'Received: {list(value.shape)}'")
                    w.line(")")
                w.line("loaded[name] = value")
            w.line("self.weights = loaded")
        w.blank()
        _forward_methods(w, part.walk.model, part.walk, part.forward)
        _backward_method(w, part.walk.model, part.walk, part.seeds, part.backward)
        emit_apply_gradients(w, part.optimizer, part.trainable_table)
        if part.walk.statistics:
            emit_running_statistics(w, part.walk.statistics)
        emit_optimizer_state(w)


def _losses(w: CodeWriter, recipe: GanRecipe) -> None:
    kernel = f"binary_cross_entropy_from_{'logits' if recipe.from_logits else 'probabilities'}"
    form = (
        "From logits: softplus(-s) and softplus(s), stable for any score."
        if recipe.from_logits
        else "From probabilities clipped to [1e-7, 1 - 1e-7]."
    )
    with w.block("def discriminator_loss(real_scores, fake_scores):"):
        w.docstring(
            "The discriminator's loss, -(mean log D(x) + mean log(1 - D(G(z)))): binary\n"
            "cross-entropy against 1 for real samples and 0 for generated ones, each the\n"
            f"mean over its batch. {form}\n"
            "Returns it and its gradients with respect to both batches of scores."
        )
        _call(w, "real_loss, d_real = ", kernel, "real_scores, np.ones_like(real_scores)")
        _call(w, "fake_loss, d_fake = ", kernel, "fake_scores, np.zeros_like(fake_scores)")
        w.line("return real_loss + fake_loss, d_real, d_fake")
    w.blank(2)
    with w.block("def generator_loss(fake_scores):"):
        if recipe.loss == "non_saturating":
            w.docstring(
                "The generator's non-saturating loss, -mean log D(G(z)): binary cross-entropy\n"
                "against 1 for generated samples. Returns it and its gradient."
            )
            w.line(f"return {kernel}(fake_scores, np.ones_like(fake_scores))")
        else:
            w.docstring(
                "The generator's minimax loss, mean log(1 - D(G(z))), which the generator\n"
                "minimises: minus the binary cross-entropy against 0. Returns it and its\n"
                "gradient."
            )
            _call(w, "loss, d_scores = ", kernel, "fake_scores, np.zeros_like(fake_scores)")
            w.line("return -loss, -d_scores")


def _call(w: CodeWriter, target: str, function: str, args: str) -> None:
    """``target function(args)``, the arguments on their own line when it is long."""
    line = f"{target}{function}({args})"
    if len(w.indent * w.level + line) <= 100:
        w.line(line)
        return
    w.line(f"{target}{function}(")
    w.line(f"    {args}")
    w.line(")")


def _gan_runtime(w: CodeWriter, recipe: GanRecipe, parts: list[Part]) -> None:
    g, d = parts
    dropout = [p for p in parts if p.dropout]
    mean = "float(np.mean(sigmoid({})))" if recipe.from_logits else "float(np.mean({}))"
    with w.block("class GanRuntime:"):
        w.docstring(
            f"GAN recipe {recipe.name}: {g.class_name} (the generator) against "
            f"{d.class_name} (the\ndiscriminator), each with its own optimizer.\n\n"
            "Weights and optimizer state are canonical, each name after its model's role:\n"
            "'generator/<param>', 'discriminator/<param>', 'generator/step'. The noise\n"
            "comes in as arrays, so any generator (nnc train uses NumPy's) can draw it."
        )
        w.blank()
        w.line(f"backend = {NAME!r}")
        w.blank()
        with w.block(f"def __init__(self, weights=None, dtype=np.float32, seed={recipe.seed}):"):
            if dropout:
                w.line("self.rng = np.random.default_rng(seed)  # dropout masks of both models")
            w.line("weights = initial_weights(seed) if weights is None else weights")
            w.line("parts = by_role(weights, 'weight')")
            for part in parts:
                rng = ", self.rng" if part.dropout else ""
                w.line(f"self.{part.role} = {part.class_name}(parts[{part.role!r}], dtype{rng})")
        w.blank()
        with w.block("def seed(self, seed):"):
            if dropout:
                w.docstring("Reseed the generator of dropout masks, which both models share.")
                w.line("self.rng = np.random.default_rng(seed)")
                for part in dropout:
                    w.line(f"self.{part.role}.rng = self.rng")
            else:
                w.docstring("Nothing to reseed: neither model draws random numbers.")
        w.blank()
        with w.block("def generate(self, z, training=False):"):
            w.docstring("G(z): samples for a batch of noise.")
            w.line("return self.generator.forward(z, training=training)")
        w.blank()
        with w.block("def discriminate(self, x, training=False):"):
            w.docstring(
                "D(x): the discriminator's "
                + ("logit" if recipe.from_logits else "probability")
                + " that each sample is real."
            )
            w.line("return self.discriminator.forward(x, training=training)")
        w.blank()
        with w.block("def discriminator_step(self, x, z, lr):"):
            w.docstring(
                "One update of the discriminator on real samples x and generated ones G(z),\n"
                "both in training mode (two passes); the generator does not change.\n"
                "Returns the loss, mean D(x) and mean D(G(z)) before the update."
            )
            w.line("fake = self.generator.forward(z, training=True)")
            w.line("real_scores, real_cache = self.discriminator.propagate(x, training=True)")
            w.line("fake_scores, fake_cache = self.discriminator.propagate(fake, training=True)")
            w.line("loss, d_real, d_fake = discriminator_loss(real_scores, fake_scores)")
            w.line("grads, _ = self.discriminator.backpropagate(real_cache, d_real)")
            w.line("fake_grads, _ = self.discriminator.backpropagate(fake_cache, d_fake)")
            w.line("grads = {name: g + fake_grads[name] for name, g in grads.items()}")
            w.line("self.discriminator.apply_gradients(grads, lr)")
            if d.walk.statistics:
                w.line("# batchnorm statistics: the real batch's, then the generated batch's")
                w.line("self.discriminator.update_running_statistics(real_cache)")
                w.line("self.discriminator.update_running_statistics(fake_cache)")
            with w.block("return {"):
                w.line("'d_loss': float(loss),")
                w.line(f"'d_real': {mean.format('real_scores')},")
                w.line(f"'d_fake': {mean.format('fake_scores')},")
            w.line("}")
        w.blank()
        with w.block("def generator_step(self, z, lr):"):
            w.docstring(
                "One update of the generator: its loss backpropagates through the\n"
                "discriminator (to D's input) and then through G; the discriminator does not\n"
                "change. Returns the loss and mean D(G(z)) before the update."
            )
            w.line("fake, generator_cache = self.generator.propagate(z, training=True)")
            w.line("scores, cache = self.discriminator.propagate(fake, training=True)")
            w.line("loss, d_scores = generator_loss(scores)")
            w.line(
                "_, d_fake = self.discriminator.backpropagate(cache, d_scores, "
                "input_gradients=True)"
            )
            w.line("grads, _ = self.generator.backpropagate(generator_cache, d_fake)")
            w.line("self.generator.apply_gradients(grads, lr)")
            if g.walk.statistics:
                w.line("self.generator.update_running_statistics(generator_cache)")
            w.line(f"return {{'g_loss': float(loss), 'g_fake': {mean.format('scores')}}}")
        w.blank()
        models = "{'generator': self.generator, 'discriminator': self.discriminator}"
        with w.block("def get_weights(self):"):
            w.docstring("The canonical weights of both models (copies), under their roles.")
            w.line(f"models = {models}")
            w.line("return {")
            w.line("    f'{role}/{name}': value")
            w.line("    for role, model in models.items()")
            w.line("    for name, value in model.get_weights().items()")
            w.line("}")
        w.blank()
        with w.block("def set_weights(self, weights):"):
            w.docstring("Load the canonical weights of both models ('generator/<param>', ...).")
            w.line("parts = by_role(weights, 'weight')")
            w.line("self.generator.set_weights(parts['generator'])")
            w.line("self.discriminator.set_weights(parts['discriminator'])")
        w.blank()
        with w.block("def get_optimizer_state(self):"):
            w.docstring(
                "Both optimizers' canonical state under their roles: 'generator/step',\n"
                "'discriminator/<param>.<slot>', ..."
            )
            w.line(f"models = {models}")
            w.line("return {")
            w.line("    f'{role}/{name}': value")
            w.line("    for role, model in models.items()")
            w.line("    for name, value in model.get_optimizer_state().items()")
            w.line("}")
        w.blank()
        with w.block("def set_optimizer_state(self, state):"):
            w.docstring("Load both optimizers' state, as get_optimizer_state returns it.")
            w.line("parts = by_role(state, 'optimizer state')")
            w.line("self.generator.set_optimizer_state(parts['generator'])")
            w.line("self.discriminator.set_optimizer_state(parts['discriminator'])")
