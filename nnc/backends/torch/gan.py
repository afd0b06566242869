"""The generated PyTorch module of a GAN recipe: what varies per recipe, nothing else.

Both models as ``nn.Module`` classes, the two losses of docs/semantics.md ("GAN"),
one ``torch.optim`` optimizer per model, ``draw_noise`` and a standalone ``fit(x)``.
nnc's runtime adapter (:class:`nnc.backends.torch.runtime.TorchGanRuntime`) wraps the
imported module: two players of the same machinery as a supervised model, with the
adversarial steps, canonical weights and optimizer state under the models' roles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nnc.backends import gancode
from nnc.backends.codegen import CodeWriter
from nnc.backends.pystyle import double_quoted, wrap_long_lines
from nnc.backends.torch.helpers import HELPERS, emit_helpers, helper_imports, helper_names
from nnc.backends.torch.module import MODULE_NAMES, ModuleClass, _lower
from nnc.backends.torch.training import _optimizer
from nnc.ir.passes.params import model_params
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe, Noise, Optimizer
from nnc.ir.types import TensorType

NAME = "torch"
_FUNCTIONAL = re.compile(r"(?<![\w.])F\.")

GAN_NAMES = frozenset(
    {
        "discriminator_loss",
        "generator_loss",
        "make_generator_optimizer",
        "make_discriminator_optimizer",
        "draw_noise",
        "zlib",
    }
)


@dataclass(frozen=True)
class GanPart:
    """One model of a GAN as the runtime adapter needs it, from the IR."""

    role: str
    class_name: str
    parameters: tuple[str, ...]
    torch_names: dict[str, str]
    buffers: bool
    optimizer: Optimizer
    input: TensorType


@dataclass(frozen=True)
class LoweredGan:
    source: str
    recipe: GanRecipe
    parts: tuple[GanPart, GanPart]  # the generator, then the discriminator


def emit_gan_module(program: Program, recipe: GanRecipe, source: str) -> str:
    """The generated module's source for a checked program's GAN recipe."""
    return lower_gan(program, recipe, source).source


def lower_gan(program: Program, recipe: GanRecipe, source: str = "<program>") -> LoweredGan:
    """The generated module of a checked program's GAN recipe, with what the runtime
    adapter needs."""
    taken = set(MODULE_NAMES) | GAN_NAMES
    for helper in HELPERS:
        taken.update(helper_names(helper))
    done: dict[str, ModuleClass] = {}
    for name in (recipe.generator, recipe.discriminator):
        _lower(program, program.models[name], done, taken)
    classes = list(done.values())
    helpers = set().union(*(c.helpers for c in classes))
    imports = set().union(*(c.imports for c in classes)) | helper_imports(helpers) | {"zlib"}
    opts = gancode.optimizers(recipe)
    parts = []
    for role, name in (("generator", recipe.generator), ("discriminator", recipe.discriminator)):
        model = program.models[name]
        params = model_params(program, model)
        cls = done[name]
        parts.append(
            GanPart(
                role=role,
                class_name=cls.name,
                parameters=tuple(p.name for p in params),
                torch_names={k: v for k, v in cls.torch_names.items() if k != v},
                buffers=any(p.spec.buffer for p in params),
                optimizer=opts[role],
                input=model.inputs[0].type,
            )
        )
    g, d = parts

    body = CodeWriter()
    emit_helpers(body, helpers)
    for cls in classes:
        body.blank(2)
        cls.emit(body)
    body.blank(2)
    _losses(body, recipe)
    for part in parts:
        body.blank(2)
        _make_optimizer(body, part)
    body.blank(2)
    _draw_noise(body, recipe.noise)
    body.blank(2)
    _fit(body, recipe, g, d)
    code = body.render()

    w = CodeWriter()
    w.lines_(gancode.gan_header(source, recipe, NAME))
    w.docstring(
        f"GAN recipe {recipe.name} in PyTorch: {recipe.generator} against "
        f"{recipe.discriminator}, each with its\ntorch.optim optimizer, computing exactly "
        "what nnc's docs/semantics.md defines.\n\n"
        "    generator, discriminator, history = fit(x)  # x: real samples\n"
    )
    w.blank()
    w.lines_([f"import {name}" for name in sorted(imports)])
    w.blank()
    w.lines_(["import numpy as np", "import torch"])
    if _FUNCTIONAL.search(code):
        w.line("import torch.nn.functional as F")
    w.line("from torch import nn")
    w.blank(2)
    w.lines_(code.lstrip("\n").splitlines())
    return LoweredGan(wrap_long_lines(double_quoted(w.render())), recipe, (g, d))


def _losses(w: CodeWriter, recipe: GanRecipe) -> None:
    if recipe.from_logits:
        bce = "F.binary_cross_entropy_with_logits({s}, torch.{fill}_like({s}))"
        form = "From logits: max(s, 0) - s t + log(1 + e^-|s|), stable for any score."
    else:
        bce = "F.binary_cross_entropy({s}.clamp(1e-7, 1 - 1e-7), torch.{fill}_like({s}))"
        form = "From probabilities clipped to [1e-7, 1 - 1e-7]."
    with w.block("def discriminator_loss(real_scores, fake_scores):"):
        w.docstring(
            "The discriminator's loss, -(mean log D(x) + mean log(1 - D(G(z)))): binary\n"
            "cross-entropy against 1 for real samples and 0 for generated ones, each the\n"
            f"mean over its batch.\n{form}"
        )
        w.line(f"real = {bce.format(s='real_scores', fill='ones')}")
        w.line(f"fake = {bce.format(s='fake_scores', fill='zeros')}")
        w.line("return real + fake")
    w.blank(2)
    with w.block("def generator_loss(fake_scores):"):
        if recipe.loss == "non_saturating":
            w.docstring(
                "The generator's non-saturating loss, -mean log D(G(z)): binary cross-entropy\n"
                "against 1 for generated samples."
            )
            w.line(f"return {bce.format(s='fake_scores', fill='ones')}")
        else:
            w.docstring(
                "The generator's minimax loss, mean log(1 - D(G(z))), which the generator\n"
                "minimises: minus the binary cross-entropy against 0."
            )
            w.line(f"return -{bce.format(s='fake_scores', fill='zeros')}")


def _make_optimizer(w: CodeWriter, part: GanPart) -> None:
    doc, constructor = _optimizer(part.optimizer)
    with w.block(f"def make_{part.role}_optimizer(model):"):
        w.docstring(doc)
        w.line("parameters = [p for p in model.parameters() if p.requires_grad]")
        w.line(f"return {constructor.format(params='parameters')}")


def _draw_noise(w: CodeWriter, noise: Noise) -> None:
    with w.block("def draw_noise(rng, count):"):
        if noise.dist == "normal":
            w.docstring(
                f"A batch of noise: count rows of {noise.size} values from N(0, 1), drawn in\n"
                "float64 by a NumPy generator and cast to float32, as nnc train draws them."
            )
            draw = f"rng.standard_normal((count, {noise.size}))"
        else:
            w.docstring(
                f"A batch of noise: count rows of {noise.size} values from U(-1, 1), drawn in\n"
                "float64 by a NumPy generator and cast to float32, as nnc train draws them."
            )
            draw = f"rng.uniform(-1.0, 1.0, (count, {noise.size}))"
        w.line(f"return torch.from_numpy({draw}.astype(np.float32))")


def _fit(w: CodeWriter, recipe: GanRecipe, g: GanPart, d: GanPart) -> None:
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
            "the generator, each on fresh noise, drawn as nnc train draws them; the\n"
            "weights start from torch's own initialisation."
        )
        w.line("torch.manual_seed(seed)")
        w.line(f"generator, discriminator = {g.class_name}(), {d.class_name}()")
        w.line("g_optimizer = make_generator_optimizer(generator)")
        w.line("d_optimizer = make_discriminator_optimizer(discriminator)")
        w.line("x = torch.as_tensor(x, dtype=torch.float32)")
        size = "batch"
        if batch == "None":
            w.line("size = len(x) if batch is None else batch")
            size = "size"
        w.line("order_rng = np.random.default_rng(seed)")
        w.line('noise_rng = np.random.default_rng([seed, zlib.crc32(b"noise")])')
        w.line("history = []")
        with w.block("for epoch in range(epochs):"):
            w.line("generator.train()")
            w.line("discriminator.train()")
            w.line("d_total = g_total = 0.0")
            with w.block(
                f"for real in x[torch.from_numpy(order_rng.permutation(len(x)))].split({size}):"
            ):
                with w.block("for _ in range(d_steps):"):
                    with w.block("with torch.no_grad():  # a batch of samples, not in D's graph"):
                        w.line("fake = generator(draw_noise(noise_rng, len(real)))")
                    w.line("d_optimizer.zero_grad()")
                    w.line("d_loss = discriminator_loss(discriminator(real), discriminator(fake))")
                    w.line("d_loss.backward()")
                    w.line("d_optimizer.step()")
                    w.line("d_total += d_loss.item() * len(real) / d_steps")
                w.line("g_optimizer.zero_grad()")
                w.line("fake = generator(draw_noise(noise_rng, len(real)))")
                w.line("g_loss = generator_loss(discriminator(fake))")
                w.line("g_loss.backward()")
                w.line("g_optimizer.step()")
                w.line("g_total += g_loss.item() * len(real)")
            w.line("d_mean, g_mean = d_total / len(x), g_total / len(x)")
            w.line('history.append({"d_loss": d_mean, "g_loss": g_mean})')
            with w.block("if verbose:"):
                w.line(
                    'print(f"epoch {epoch + 1}/{epochs}: d_loss {d_mean:.4f}  g_loss {g_mean:.4f}")'
                )
        w.line("return generator, discriminator, history")


__all__ = ["GanPart", "LoweredGan", "emit_gan_module", "lower_gan"]
