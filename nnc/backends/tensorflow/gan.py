"""The generated TensorFlow module of a GAN recipe: both models as ``keras.Model``
classes, their losses, each model's optimizer written out (``make_generator_optimizer``,
``make_discriminator_optimizer``), ``draw_noise`` and a standalone ``fit(x)``.

nnc's runtime adapter (:class:`nnc.backends.tensorflow.runtime.TensorflowGanRuntime`)
runs the two adversarial steps (docs/semantics.md, "GAN") as two players of the same
machinery as the supervised runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnc.backends import gancode
from nnc.backends.codegen import CodeWriter, checked
from nnc.backends.tensorflow.emit import MODULE_NAMES, model_info, tidy
from nnc.backends.tensorflow.graph import ModelEmitter, Names, callees_first, uses_dropout
from nnc.backends.tensorflow.library import DEFINED_NAMES, emit_library
from nnc.backends.tensorflow.lowered import LoweredGan
from nnc.backends.tensorflow.training import OptimizerCode, emit_make_optimizer, emit_optimizer
from nnc.ir.program import Model, Program
from nnc.ir.training import GanRecipe

NAME = "tensorflow"

GAN_NAMES = frozenset(
    {
        "discriminator_loss",
        "generator_loss",
        "make_generator_optimizer",
        "make_discriminator_optimizer",
        "draw_noise",
    }
)


@dataclass
class Part:
    role: str
    model: Model
    class_name: str
    dropout: bool
    optimizer: OptimizerCode | None = None


def emit_gan_module(program: Program, recipe: GanRecipe, source: str) -> str:
    """The TensorFlow module of a GAN recipe, as Python source; emitting it imports no
    framework."""
    return lower_gan(program, recipe, source).source


def lower_gan(program: Program, recipe: GanRecipe, source: str) -> LoweredGan:
    """The generated GAN module and what nnc's runtime adapter reads of it."""
    program = checked(program)
    module = Names(MODULE_NAMES | DEFINED_NAMES | GAN_NAMES)
    models: list[Model] = []
    for name in (recipe.generator, recipe.discriminator):
        callees_first(program, program.models[name], models)
    class_names = {m.name: module.claim(m.name) for m in models}
    reserved = frozenset(module.used)
    library: set[str] = set()
    model_code = CodeWriter()
    for m in models:
        emitter = ModelEmitter(program, m, class_names[m.name], class_names, reserved)
        model_code.blank(2)
        emitter.emit(model_code)
        library |= emitter.library

    w = CodeWriter()
    w.lines_(gancode.gan_header(source, recipe, NAME))
    w.docstring(
        f"GAN recipe {recipe.name} for TensorFlow: {recipe.generator} against "
        f"{recipe.discriminator},\ncomputing exactly what nnc's docs/semantics.md defines: "
        "both models, their\nlosses and optimizers, draw_noise and fit(x) to train them."
    )
    w.blank()
    w.line("import contextlib")
    w.line("import zlib")
    w.blank()
    w.line("import keras")
    w.line("import numpy as np")
    w.line("import tensorflow as tf")
    emit_library(w, library)
    w.lines_(model_code.lines)
    w.blank(2)
    _losses(w, recipe)

    parts = []
    for role, name in (("generator", recipe.generator), ("discriminator", recipe.discriminator)):
        model = program.models[name]
        parts.append(Part(role, model, class_names[name], uses_dropout(program, model)))
    emitted: dict[str, list[str]] = {}  # class name -> its source
    for part, optimizer in zip(parts, gancode.optimizers(recipe).values(), strict=True):
        code = CodeWriter()
        part.optimizer = emit_optimizer(code, optimizer)
        if part.optimizer.cls in emitted and emitted[part.optimizer.cls] != code.lines:
            # Two variants of SGD (plain and momentum, say): the second gets its own class.
            code = CodeWriter()
            part.optimizer = emit_optimizer(code, optimizer, f"{part.role.capitalize()}SGD")
        if part.optimizer.cls not in emitted:
            emitted[part.optimizer.cls] = code.lines
            w.blank(2)
            w.lines_(code.lines)
    for part in parts:
        assert part.optimizer is not None
        w.blank(2)
        emit_make_optimizer(w, f"make_{part.role}_optimizer", part.optimizer)
    w.blank(2)
    gancode.emit_draw_noise(w, recipe.noise)
    w.blank(2)
    _fit(w, recipe, parts)
    infos = {part.role: model_info(program, part.model, part.class_name) for part in parts}
    return LoweredGan(tidy(w.render()), infos, recipe.from_logits)


def _losses(w: CodeWriter, recipe: GanRecipe) -> None:
    if recipe.from_logits:
        form = "From logits: max(s, 0) - s t + log(1 + e^-|s|), TensorFlow's stable form."
    else:
        form = "From probabilities clipped to [1e-7, 1 - 1e-7]."
        with w.block("def binary_cross_entropy(p, target):"):
            w.docstring(
                "Binary cross-entropy of probabilities clipped to [1e-7, 1 - 1e-7], mean over\n"
                "all elements."
            )
            w.line("p = tf.clip_by_value(p, 1e-7, 1.0 - 1e-7)")
            w.line(
                "return tf.reduce_mean(-(target * tf.math.log(p) + "
                "(1.0 - target) * tf.math.log(1.0 - p)))"
            )
        w.blank(2)

    def bce(scores: str, labels: str) -> str:
        if recipe.from_logits:
            return f"tf.nn.sigmoid_cross_entropy_with_logits(labels={labels}, logits={scores})"
        return f"binary_cross_entropy({scores}, {labels})"

    mean = "tf.reduce_mean({})" if recipe.from_logits else "{}"
    with w.block("def discriminator_loss(real_scores, fake_scores):"):
        w.docstring(
            "The discriminator's loss, -(mean log D(x) + mean log(1 - D(G(z)))): binary\n"
            "cross-entropy against 1 for real samples and 0 for generated ones, each the\n"
            f"mean over its batch.\n{form}"
        )
        w.line("ones, zeros = tf.ones_like(real_scores), tf.zeros_like(fake_scores)")
        w.line(f"real = {bce('real_scores', 'ones')}")
        w.line(f"fake = {bce('fake_scores', 'zeros')}")
        w.line(f"return {mean.format('real')} + {mean.format('fake')}")
    w.blank(2)
    with w.block("def generator_loss(fake_scores):"):
        if recipe.loss == "non_saturating":
            w.docstring(
                "The generator's non-saturating loss, -mean log D(G(z)): binary cross-entropy\n"
                "against 1 for generated samples."
            )
            w.line("ones = tf.ones_like(fake_scores)")
            w.line(f"return {mean.format(bce('fake_scores', 'ones'))}")
        else:
            w.docstring(
                "The generator's minimax loss, mean log(1 - D(G(z))), which the generator\n"
                "minimises: minus the binary cross-entropy against 0."
            )
            w.line("zeros = tf.zeros_like(fake_scores)")
            w.line(f"return -{mean.format(bce('fake_scores', 'zeros'))}")


def _fit(w: CodeWriter, recipe: GanRecipe, parts: list[Part]) -> None:
    """Emit ``fit(x)``: nnc train's GAN loop (docs/semantics.md, GAN) on real samples."""
    g, d = parts
    lrs = gancode.optimizers(recipe)
    batch = "None" if recipe.batch == "all" else str(int(recipe.batch))
    signature = (
        f"x, epochs={recipe.epochs}, batch={batch}, d_steps={recipe.d_steps}, "
        f"seed={recipe.seed}, verbose=True"
    )
    with w.block(f"def fit({signature}):"):
        w.docstring(
            f"Train a new {g.class_name} against a new {d.class_name} on real samples x;\n"
            "return both and the mean losses of each epoch. Per epoch a permutation of\n"
            "the samples, and per batch d_steps updates of the discriminator then one of\n"
            "the generator, each on fresh noise, drawn as nnc train draws them; kernels\n"
            "start Glorot-uniform (nnc's runtime adapter starts from nnc's initializers)."
        )
        if g.dropout or d.dropout:
            w.line("random = tf.random.Generator.from_seed(seed)  # dropout masks")
        models = []
        for part in parts:
            arg = "generator=random" if part.dropout else ""
            models.append(f"{part.class_name}({arg})")
        w.line(f"generator, discriminator = {', '.join(models)}")
        w.line("# the tf.Variables under the Keras variables, which the optimizers update")
        w.line("g_variables = [var.value for var in generator.trainable_variables]")
        w.line("d_variables = [var.value for var in discriminator.trainable_variables]")
        with (
            w.block("for index, var in enumerate(g_variables + d_variables):"),
            w.block("if var.shape.rank > 1:"),
        ):
            w.line("var.assign(keras.initializers.GlorotUniform(seed + index)(var.shape))")
        w.line("g_optimizer = make_generator_optimizer(g_variables)")
        w.line("d_optimizer = make_discriminator_optimizer(d_variables)")
        zero = "unconnected_gradients=tf.UnconnectedGradients.ZERO"
        w.blank()
        w.line("@tf.function(reduce_retracing=True)")
        with w.block("def d_step(real, z, lr):"):
            w.line("fake = generator(z, training=True)  # a batch of samples, not in D's graph")
            with w.block("with tf.GradientTape() as tape:"):
                w.line("real_scores = discriminator(real, training=True)")
                w.line("fake_scores = discriminator(fake, training=True)")
                w.line("loss = discriminator_loss(real_scores, fake_scores)")
            w.line(f"gradients = tape.gradient(loss, d_variables, {zero})")
            w.line("d_optimizer.apply(gradients, d_variables, lr)")
            w.line("return loss")
        w.blank()
        w.line("@tf.function(reduce_retracing=True)")
        with w.block("def g_step(z, lr):"):
            with w.block("with tf.GradientTape() as tape:"):
                w.line("scores = discriminator(generator(z, training=True), training=True)")
                w.line("loss = generator_loss(scores)")
            w.line(f"gradients = tape.gradient(loss, g_variables, {zero})")
            w.line("g_optimizer.apply(gradients, g_variables, lr)")
            w.line("return loss")
        w.blank()
        w.line(f"g_lr = tf.constant({lrs['generator'].lr!r}, tf.float32)")
        w.line(f"d_lr = tf.constant({lrs['discriminator'].lr!r}, tf.float32)")
        w.line("x = np.asarray(x, dtype=np.float32)")
        size = "batch"
        if batch == "None":
            w.line("size = len(x) if batch is None else batch")
            size = "size"
        w.line("order_rng = np.random.default_rng(seed)")
        w.line('noise_rng = np.random.default_rng([seed, zlib.crc32(b"noise")])')
        w.line("history = []")
        with w.block("for epoch in range(epochs):"):
            w.line("order = order_rng.permutation(len(x))")
            w.line("d_total = g_total = 0.0")
            with w.block(f"for start in range(0, len(x), {size}):"):
                w.line(f"real = x[order[start : start + {size}]]")
                with w.block("for _ in range(d_steps):"):
                    w.line("d_loss = d_step(real, draw_noise(noise_rng, len(real)), d_lr)")
                    w.line("d_total += float(d_loss) * len(real) / d_steps")
                w.line("g_loss = g_step(draw_noise(noise_rng, len(real)), g_lr)")
                w.line("g_total += float(g_loss) * len(real)")
            w.line("d_mean, g_mean = d_total / len(x), g_total / len(x)")
            w.line('history.append({"d_loss": d_mean, "g_loss": g_mean})')
            with w.block("if verbose:"):
                w.line(
                    'print(f"epoch {epoch + 1}/{epochs}: d_loss {d_mean:.4f}  g_loss {g_mean:.4f}")'
                )
        w.line("return generator, discriminator, history")
