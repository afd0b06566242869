"""The generated NumPy module of a GAN recipe: both models written out by hand, and
their losses and optimizers; the two adversarial rounds of docs/semantics.md ("GAN")
are :mod:`nnc.backends.numpy.learning`'s, and nnc's adapter
(:class:`~nnc.backends.numpy.runtime.NumpyGanRuntime`) wraps the module.

In order: the header, both parameter tables and ``initial_weights``, the kernels and
the learning code, one class per model (weights, forward and backward passes), the
two losses, ``probabilities``, both optimizers, ``draw_noise`` and ``fit``. The
generator learns through the discriminator: its round backpropagates D's loss to D's
input (``input_gradients=True``) and from there through G, and only G's optimizer
moves.
"""

from __future__ import annotations

from nnc.backends import gancode
from nnc.backends.codegen import CodeWriter
from nnc.backends.numpy.module import (
    NAME,
    _gap,
    _name_table,
    emit_shared_code,
    model_class,
    walk_model,
)
from nnc.backends.numpy.training import emit_make_optimizer, optimizer_class
from nnc.backends.pystyle import double_quoted, wrap_long_lines
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe


def generate_gan(program: Program, recipe: GanRecipe, source: str) -> str:
    """The generated NumPy module of a checked program's GAN recipe."""
    opts = gancode.optimizers(recipe)
    roles = (("generator", recipe.generator), ("discriminator", recipe.discriminator))
    parts = {role: walk_model(program, program.models[name]) for role, name in roles}
    logits = recipe.from_logits
    used = set().union(*(p.walk.kernels for p in parts.values()))
    used.add(f"binary_cross_entropy_from_{'logits' if logits else 'probabilities'}")
    if logits:
        used.add("sigmoid")
    learning = ["discriminator_round", "generator_round"]
    learning += [optimizer_class(o) for o in opts.values()]

    w = CodeWriter()
    w.lines_(gancode.gan_header(source, recipe, NAME))
    w.docstring(
        f"GAN recipe {recipe.name} in plain NumPy: the generator {recipe.generator} and the\n"
        f"discriminator {recipe.discriminator}, their forward propagation and backpropagation\n"
        "written out by hand, their losses and optimizers, and fit(x) to train them.\n\n"
        "    generator, discriminator, history = fit(x)"
    )
    w.blank()
    w.line("import zlib")
    w.blank()
    w.line("import numpy as np")
    w.blank()
    params = gancode.emit_gan_parameters(w, program, recipe)
    for role, part in parts.items():
        w.blank()
        _name_table(
            w,
            f"{role.upper()}_TRAINABLE",
            f"Parameters the {role}'s optimizer updates (frozen layers excluded).",
            part.trainable,
        )
    w.blank(2)
    gancode.emit_gan_initial_weights(w, params, recipe)
    _gap(w)
    emit_shared_code(w, used, learning)
    for role, part in parts.items():
        model_class(w, part, f"Model {part.model.name}, the {role}")
        _gap(w)
    _losses(w, recipe)
    _gap(w)
    for role, optimizer in opts.items():
        trainable = f"{role.upper()}_TRAINABLE"
        emit_make_optimizer(w, optimizer, trainable, f"make_{role}_optimizer")
        _gap(w)
    gancode.emit_draw_noise(w, recipe.noise)
    _gap(w)
    _fit(w, recipe, parts["generator"].class_name, parts["discriminator"].class_name)
    return wrap_long_lines(double_quoted(w.render()))


def _losses(w: CodeWriter, recipe: GanRecipe) -> None:
    kernel = f"binary_cross_entropy_from_{'logits' if recipe.from_logits else 'probabilities'}"
    d_doc, g_doc = gancode.loss_docs(recipe)
    with w.block("def discriminator_loss(real_scores, fake_scores):"):
        w.docstring(
            d_doc + "\nReturns it and its gradients with respect to both batches of scores."
        )
        _call(w, "real_loss, d_real = ", kernel, "real_scores, np.ones_like(real_scores)")
        _call(w, "fake_loss, d_fake = ", kernel, "fake_scores, np.zeros_like(fake_scores)")
        w.line("return real_loss + fake_loss, d_real, d_fake")
    w.blank(2)
    with w.block("def generator_loss(fake_scores):"):
        w.docstring(g_doc + "\nReturns it and its gradient.")
        if recipe.loss == "non_saturating":
            w.line(f"return {kernel}(fake_scores, np.ones_like(fake_scores))")
        else:
            _call(w, "loss, d_scores = ", kernel, "fake_scores, np.zeros_like(fake_scores)")
            w.line("return -loss, -d_scores")
    w.blank(2)
    with w.block("def probabilities(scores):"):
        if recipe.from_logits:
            w.docstring("D's scores (logits) as the probabilities that the samples are real.")
            w.line("return sigmoid(scores)")
        else:
            w.docstring("D's scores, which are already probabilities that the samples are real.")
            w.line("return scores")


def _call(w: CodeWriter, target: str, function: str, args: str) -> None:
    """``target function(args)``, the arguments on their own line when it is long."""
    line = f"{target}{function}({args})"
    if len(w.indent * w.level + line) <= 100:
        w.line(line)
        return
    w.line(f"{target}{function}(")
    w.line(f"    {args}")
    w.line(")")


def _fit(w: CodeWriter, recipe: GanRecipe, generator: str, discriminator: str) -> None:
    """A standalone ``fit(x)``: nnc train's GAN loop (docs/semantics.md, GAN)."""
    lrs = gancode.optimizers(recipe)
    w.line("def fit(")
    w.line("    x,")
    w.line(f"    epochs={recipe.epochs},")
    w.line(f"    batch={recipe.batch!r},")
    w.line(f"    d_steps={recipe.d_steps},")
    w.line(f"    seed={recipe.seed},")
    w.line(f"    generator_lr={lrs['generator'].lr!r},")
    w.line(f"    discriminator_lr={lrs['discriminator'].lr!r},")
    w.line("    verbose=True,")
    with w.block("):"):
        w.docstring(
            f"Train a new {generator} against a new {discriminator} from initial_weights(seed)\n"
            "on real samples x; return both and the mean losses of each epoch. As nnc train\n"
            "does: per epoch a permutation of the samples, and per batch d_steps updates of\n"
            "the discriminator then one of the generator, each on fresh noise from one\n"
            "generator seeded with (seed, crc32('noise'))."
        )
        w.line("parts = {'generator': {}, 'discriminator': {}}")
        with w.block("for key, value in initial_weights(seed).items():"):
            w.line("role, _, name = key.partition('/')")
            w.line("parts[role][name] = value")
        w.line(f"generator = {generator}(parts['generator'])")
        w.line(f"discriminator = {discriminator}(parts['discriminator'])")
        w.line("g_optimizer = make_generator_optimizer(generator.weights)")
        w.line("d_optimizer = make_discriminator_optimizer(discriminator.weights)")
        w.line("order_rng = np.random.default_rng(seed)")
        w.line("noise_rng = np.random.default_rng([seed, zlib.crc32(b'noise')])")
        w.line("size = len(x) if batch == 'all' else min(int(batch), len(x))")
        w.line("history = []")
        with w.block("for epoch in range(epochs):"):
            w.line("# the dropout masks of nnc train's epoch, one generator for both models")
            w.line("dropout_seed = np.random.SeedSequence([seed, epoch]).generate_state(1)[0]")
            w.line("generator.rng = discriminator.rng = np.random.default_rng(int(dropout_seed))")
            w.line("order = order_rng.permutation(len(x))")
            w.line("d_total = g_total = 0.0")
            with w.block("for start in range(0, len(x), size):"):
                w.line("real = x[order[start : start + size]]")
                with w.block("for _ in range(d_steps):"):
                    w.line("z = draw_noise(noise_rng, len(real))")
                    w.line("d_loss, _, _ = discriminator_round(")
                    for argument in ("generator", "discriminator", "d_optimizer"):
                        w.line(f"    {argument},")
                    for argument in ("discriminator_loss", "real", "z", "discriminator_lr"):
                        w.line(f"    {argument},")
                    w.line(")")
                    w.line("d_total += d_loss * len(real) / d_steps")
                w.line("z = draw_noise(noise_rng, len(real))")
                w.line("g_loss, _ = generator_round(")
                w.line("    generator, discriminator, g_optimizer, generator_loss, z, generator_lr")
                w.line(")")
                w.line("g_total += g_loss * len(real)")
            w.line("d_mean, g_mean = d_total / len(x), g_total / len(x)")
            w.line("history.append({'d_loss': d_mean, 'g_loss': g_mean})")
            with w.block("if verbose:"):
                w.line(
                    "print(f'epoch {epoch + 1}/{epochs}: d_loss {d_mean:.4f}  g_loss {g_mean:.4f}')"
                )
        w.line("return generator, discriminator, history")
