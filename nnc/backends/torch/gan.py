"""The generated PyTorch module of a GAN recipe: both models as ``nn.Module``
classes, each with its ``torch.optim`` optimizer, and ``GanRuntime``
(:class:`nnc.backends.runtime.GanRuntime`) taking the two adversarial steps of
docs/semantics.md ("GAN") with autograd.

The discriminator step detaches the generated batch (the generator runs under
``no_grad``); the generator step backpropagates through the discriminator but asks
autograd for the generator's gradients only (``backward(inputs=...)``), so the
discriminator's ``.grad`` and weights stay as they were. Batchnorm running
statistics move only for the model being updated: torch moves them in every
training-mode forward pass, so the runtime puts the other model's back.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnc.backends import gancode
from nnc.backends.codegen import CodeWriter, py_literal
from nnc.backends.torch.helpers import HELPERS, emit_helpers, helper_imports, helper_names
from nnc.backends.torch.module import MODULE_NAMES, ModuleClass, _lower
from nnc.backends.torch.training import _optimizer, counts_steps, state_slots
from nnc.ir.passes.params import Param
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe, Optimizer

NAME = "torch"

GAN_NAMES = frozenset(
    {
        "GanRuntime",
        "discriminator_loss",
        "generator_loss",
        "make_generator_optimizer",
        "make_discriminator_optimizer",
        "draw_noise",
        "as_batch",
        "STATE_SLOTS",
        "COUNTS_STEPS",
        "NOISE_SHAPE",
        "SAMPLE_SHAPE",
        *gancode.TABLES.values(),
        "GENERATOR_TORCH_NAMES",
        "DISCRIMINATOR_TORCH_NAMES",
    }
)


@dataclass
class Part:
    role: str
    cls: ModuleClass
    params: list[Param]
    optimizer: Optimizer

    @property
    def renamed(self) -> dict[str, str]:
        return {k: v for k, v in self.cls.torch_names.items() if k != v}

    @property
    def buffers(self) -> bool:
        return any(p.spec.buffer for p in self.params)


def emit_gan_module(program: Program, recipe: GanRecipe, source: str) -> str:
    """The generated module's source for a checked program's GAN recipe."""
    taken = set(MODULE_NAMES) | GAN_NAMES
    for helper in HELPERS:
        taken.update(helper_names(helper))
    done: dict[str, ModuleClass] = {}
    for name in (recipe.generator, recipe.discriminator):
        _lower(program, program.models[name], done, taken)
    classes = list(done.values())
    helpers = set().union(*(c.helpers for c in classes))
    imports = set().union(*(c.imports for c in classes)) | helper_imports(helpers)

    body = CodeWriter()
    params = gancode.emit_gan_parameters(body, program, recipe)
    opts = gancode.optimizers(recipe)
    parts = [
        Part(role, done[name], params[role], opts[role])
        for role, name in (("generator", recipe.generator), ("discriminator", recipe.discriminator))
    ]
    _tables(body, program, recipe, parts)
    body.blank(2)
    gancode.emit_gan_initial_weights(body, params, recipe)
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
    body.line("def as_batch(array, shape, what):")
    body.level += 1
    _as_batch_body(body)
    body.level -= 1
    body.blank(2)
    _runtime(body, recipe, parts)
    body.blank(2)
    gancode.emit_draw_noise(body, recipe.noise)
    body.blank(2)
    gancode.emit_gan_fit(body, recipe)
    code = body.render()

    w = CodeWriter()
    w.lines_(gancode.gan_header(source, recipe, NAME))
    w.docstring(
        f"GAN recipe {recipe.name} in PyTorch: {recipe.generator} against "
        f"{recipe.discriminator}, each\nwith its torch.optim optimizer, computing "
        "exactly what nnc's docs/semantics.md\ndefines.\n\n" + "\n".join(gancode.usage(recipe))
    )
    w.blank()
    w.lines_([f"import {name}" for name in sorted(imports | {"zlib"})])
    w.blank()
    w.lines_(["import numpy as np", "import torch", "import torch.nn.functional as F"])
    w.line("from torch import nn")
    w.blank(2)
    w.lines_(code.splitlines())
    return w.render()


def _tables(w: CodeWriter, program: Program, recipe: GanRecipe, parts: list[Part]) -> None:
    for part in parts:
        if part.renamed:
            w.blank()
            w.line(f"# The {part.role}'s canonical names that torch stores under another name.")
            with w.block(f"{part.role.upper()}_TORCH_NAMES = {{"):
                for canonical, torch_name in part.renamed.items():
                    w.line(f"{canonical!r}: {torch_name!r},")
            w.line("}")
    w.blank()
    w.line("# Per model: nnc's canonical optimizer state slots -> torch's names for them, and")
    w.line("# whether its torch optimizer counts steps in its own state.")
    with w.block("STATE_SLOTS = {"):
        for part in parts:
            slots = state_slots(part.optimizer)
            w.line(f"{part.role!r}: {{{', '.join(f'{k!r}: {v!r}' for k, v in slots.items())}}},")
    w.line("}")
    counts = ", ".join(f"{p.role!r}: {counts_steps(p.optimizer)!r}" for p in parts)
    w.line(f"COUNTS_STEPS = {{{counts}}}")
    g = program.models[recipe.generator]
    d = program.models[recipe.discriminator]
    w.line("# Per-sample shapes: the noise, and the samples the discriminator judges.")
    w.line(f"NOISE_SHAPE = {py_literal(g.inputs[0].type.shape)}")
    w.line(f"SAMPLE_SHAPE = {py_literal(d.inputs[0].type.shape)}")


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


def _make_optimizer(w: CodeWriter, part: Part) -> None:
    doc, constructor = _optimizer(part.optimizer)
    with w.block(f"def make_{part.role}_optimizer(model):"):
        w.docstring(doc)
        w.line("parameters = [p for p in model.parameters() if p.requires_grad]")
        w.line(f"return {constructor.format(params='parameters')}")


def _as_batch_body(w: CodeWriter) -> None:
    w.docstring("A NumPy batch as float32, checked against a per-sample shape (a name: any size).")
    w.line("array = np.asarray(array, dtype=np.float32)")
    w.line("fits = array.ndim == len(shape) + 1 and all(")
    w.line("    isinstance(want, str) or want == got for want, got in zip(shape, array.shape[1:])")
    w.line(")")
    with w.block("if not fits:"):
        w.line("expected = ', '.join(['N', *map(str, shape)])")
        w.line("raise ValueError(")
        w.line("    f'{what} must be a batch of shape [{expected}]. Received: {list(array.shape)}'")
        w.line(")")
    w.line("return array")


def _runtime(w: CodeWriter, recipe: GanRecipe, parts: list[Part]) -> None:
    g, d = parts
    buffered = [p for p in parts if p.buffers]
    if recipe.from_logits:
        mean = "torch.sigmoid({}.detach()).mean().item()"
    else:
        mean = "{}.detach().mean().item()"
    with w.block("class GanRuntime:"):
        w.docstring(
            f"GAN recipe {recipe.name}: {g.cls.name} (the generator) against {d.cls.name} (the\n"
            "discriminator), each with its optimizer, NumPy arrays in and out.\n\n"
            "It implements nnc's GanRuntime interface: weights and optimizer state use nnc's\n"
            "canonical names, each after its model's role ('generator/<param>',\n"
            "'discriminator/step', ...), so they move to and from every nnc backend."
        )
        w.blank()
        w.line("backend = 'torch'")
        w.blank()
        with w.block(f"def __init__(self, weights=None, device='cpu', seed={recipe.seed}):"):
            w.line("self.device = torch.device(device)")
            with w.block("if self.device.type == 'cuda' and not torch.cuda.is_available():"):
                w.line(
                    "raise RuntimeError(f'device {device!r} was requested but CUDA is not "
                    "available')"
                )
            w.line(f"self.generator = {g.cls.name}().to(self.device)")
            w.line(f"self.discriminator = {d.cls.name}().to(self.device)")
            w.line("# canonical name ('<role>/<param>') -> the torch tensor holding it")
            w.line("self.tensors = {}")
            w.line("# per role: canonical name (without the role) -> trainable tensor")
            w.line("self.trainable = {}")
            for part in parts:
                w.line(f"model = self.{part.role}")
                w.line("found = dict(model.named_parameters()) | dict(model.named_buffers())")
                lookup = (
                    f"{part.role.upper()}_TORCH_NAMES.get(name, name)" if part.renamed else "name"
                )
                table = gancode.TABLES[part.role]
                w.line(f"tensors = {{name: found[{lookup}] for name, *_ in {table}}}")
                w.line(
                    f"self.tensors.update({{f'{part.role}/{{n}}': t for n, t in tensors.items()}})"
                )
                w.line(
                    f"self.trainable[{part.role!r}] = "
                    "{n: t for n, t in tensors.items() if t.requires_grad}"
                )
            w.line("self.set_weights(initial_weights(seed) if weights is None else weights)")
            w.line("self.optimizers = {")
            w.line("    'generator': make_generator_optimizer(self.generator),")
            w.line("    'discriminator': make_discriminator_optimizer(self.discriminator),")
            w.line("}")
            w.line("self.steps = {'generator': 0, 'discriminator': 0}  # updates so far")
            w.line("self.seed(seed)")
        w.blank()
        with w.block("def seed(self, seed):"):
            w.docstring("Reseed torch's generator, which draws the dropout masks.")
            w.line("torch.manual_seed(seed)")
        w.blank()
        with w.block("def _train(self, training):"):
            w.line("self.generator.train(training)")
            w.line("self.discriminator.train(training)")
        w.blank()
        with w.block("def _tensor(self, array, shape, what):"):
            w.docstring(
                "A checked NumPy batch as a tensor on the device; on the CPU it shares the\n"
                "array's memory when it can (torch shares writable memory only)."
            )
            w.line("array = as_batch(array, shape, what)")
            with w.block("if not array.flags.writeable:"):
                w.line("array = array.copy()")
            w.line("tensor = torch.from_numpy(array)")
            w.line("return tensor if self.device.type == 'cpu' else tensor.to(self.device)")
        if buffered:
            w.blank()
            w.line("@staticmethod")
            with w.block("def _statistics(model):"):
                w.line("return [buffer.clone() for buffer in model.buffers()]")
            w.blank()
            w.line("@staticmethod")
            with w.block("def _restore(model, statistics):"):
                w.docstring(
                    "Put a model's running statistics back: they move only in that model's\n"
                    "own update (torch moves them in every training-mode forward pass)."
                )
                with (
                    w.block("with torch.no_grad():"),
                    w.block("for buffer, saved in zip(model.buffers(), statistics):"),
                ):
                    w.line("buffer.copy_(saved)")
        w.blank()
        score = "logit" if recipe.from_logits else "probability"
        for part, method, arg, shape, doc in (
            (g, "generate", "z", "NOISE_SHAPE", "G(z): samples for a batch of noise."),
            (
                d,
                "discriminate",
                "x",
                "SAMPLE_SHAPE",
                f"D(x): the {score} that each sample is real.",
            ),
        ):
            with w.block(f"def {method}(self, {arg}, training=False):"):
                w.docstring(doc)
                what = "noise" if arg == "z" else "samples"
                w.line(f"{arg} = self._tensor({arg}, {shape}, {what!r})")
                w.line("self._train(training)")
                if part.buffers:
                    w.line(f"statistics = self._statistics(self.{part.role})")
                with w.block("with torch.no_grad():"):
                    w.line(f"output = self.{part.role}({arg})")
                if part.buffers:
                    w.line(f"self._restore(self.{part.role}, statistics)")
                w.line("return output.cpu().numpy()")
            w.blank()
        with (
            w.block("def _learning_rate(self, role, lr):"),
            w.block("for group in self.optimizers[role].param_groups:"),
        ):
            w.line("group['lr'] = lr")
        w.blank()
        with w.block("def discriminator_step(self, x, z, lr):"):
            w.docstring(
                "One update of the discriminator on real samples x and generated ones G(z),\n"
                "both in training mode (two passes); the generator does not change.\n"
                "Returns the loss, mean D(x) and mean D(G(z)) before the update."
            )
            w.line("x = self._tensor(x, SAMPLE_SHAPE, 'samples')")
            w.line("z = self._tensor(z, NOISE_SHAPE, 'noise')")
            w.line("self._train(True)")
            if g.buffers:
                w.line("statistics = self._statistics(self.generator)")
            with w.block("with torch.no_grad():  # a batch of samples, not part of D's graph"):
                w.line("fake = self.generator(z)")
            if g.buffers:
                w.line("self._restore(self.generator, statistics)")
            w.line("self._learning_rate('discriminator', lr)")
            w.line("self.optimizers['discriminator'].zero_grad(set_to_none=True)")
            w.line("real_scores = self.discriminator(x)")
            w.line("fake_scores = self.discriminator(fake)")
            w.line("loss = discriminator_loss(real_scores, fake_scores)")
            w.line("loss.backward()")
            w.line("self.optimizers['discriminator'].step()")
            w.line("self.steps['discriminator'] += 1")
            with w.block("return {"):
                w.line("'d_loss': loss.item(),")
                w.line(f"'d_real': {mean.format('real_scores')},")
                w.line(f"'d_fake': {mean.format('fake_scores')},")
            w.line("}")
        w.blank()
        with w.block("def generator_step(self, z, lr):"):
            w.docstring(
                "One update of the generator through the discriminator: autograd computes\n"
                "the generator's gradients only, and the discriminator does not change.\n"
                "Returns the loss and mean D(G(z)) before the update."
            )
            w.line("z = self._tensor(z, NOISE_SHAPE, 'noise')")
            w.line("self._train(True)")
            if d.buffers:
                w.line("statistics = self._statistics(self.discriminator)")
            w.line("self._learning_rate('generator', lr)")
            w.line("self.optimizers['generator'].zero_grad(set_to_none=True)")
            w.line("scores = self.discriminator(self.generator(z))")
            w.line("loss = generator_loss(scores)")
            w.line("loss.backward(inputs=list(self.trainable['generator'].values()))")
            w.line("self.optimizers['generator'].step()")
            if d.buffers:
                w.line("self._restore(self.discriminator, statistics)")
            w.line("self.steps['generator'] += 1")
            w.line(f"return {{'g_loss': loss.item(), 'g_fake': {mean.format('scores')}}}")
        w.blank()
        _weights_and_state(w)


def _weights_and_state(w: CodeWriter) -> None:
    with w.block("def get_weights(self):"):
        w.docstring("Canonical weights of both models, buffers included, as NumPy copies.")
        w.line("return {name: t.detach().cpu().numpy().copy() for name, t in self.tensors.items()}")
    w.blank()
    with w.block("def set_weights(self, weights):"):
        w.docstring("Load canonical weights: every tensor of both models, by 'role/name'.")
        w.line("missing = [name for name in self.tensors if name not in weights]")
        w.line("unexpected = [name for name in weights if name not in self.tensors]")
        with w.block("if missing or unexpected:"):
            w.line(
                "raise KeyError(f'weights do not fit: missing {missing}, unexpected {unexpected}')"
            )
        with (
            w.block("with torch.no_grad():"),
            w.block("for name, tensor in self.tensors.items():"),
        ):
            w.line("value = torch.tensor(np.asarray(weights[name], dtype=np.float32))")
            with w.block("if value.shape != tensor.shape:"):
                w.line("raise ValueError(f'weight {name} has shape {list(value.shape)}; '")
                w.line(" " * 17 + "f'expected {list(tensor.shape)}')")
            w.line("tensor.copy_(value)")
    w.blank()
    with w.block("def get_optimizer_state(self):"):
        w.docstring(
            "Canonical optimizer state of both models: '<role>/step', and\n"
            "'<role>/<parameter>.<slot>' for every trainable parameter and slot of\n"
            "STATE_SLOTS (zeros before the first step)."
        )
        w.line("state = {}")
        with w.block("for role, optimizer in self.optimizers.items():"):
            w.line("state[f'{role}/step'] = np.array(self.steps[role], dtype=np.int64)")
            with w.block("for name, tensor in self.trainable[role].items():"):
                w.line("held = optimizer.state.get(tensor, {})")
                with w.block("for slot, torch_slot in STATE_SLOTS[role].items():"):
                    w.line("value = held.get(torch_slot)")
                    w.line("key = f'{role}/{name}.{slot}'")
                    with w.block("if value is None:"):
                        w.line("state[key] = np.zeros(tuple(tensor.shape), np.float32)")
                    with w.block("else:"):
                        w.line("state[key] = value.detach().cpu().numpy().copy()")
        w.line("return state")
    w.blank()
    with w.block("def set_optimizer_state(self, state):"):
        w.docstring("Load canonical optimizer state, as get_optimizer_state returns it.")
        w.line("expected = self.get_optimizer_state()")
        w.line("missing = [key for key in expected if key not in state]")
        w.line("unexpected = [key for key in state if key not in expected]")
        with w.block("if missing or unexpected:"):
            w.line("raise KeyError(f'optimizer state does not fit: missing {missing}, '")
            w.line("               f'unexpected {unexpected}')")
        with w.block("for role, optimizer in self.optimizers.items():"):
            w.line("self.steps[role] = int(state[f'{role}/step'])")
            with w.block("if not STATE_SLOTS[role]:"):
                w.line("continue")
            with w.block("for name, tensor in self.trainable[role].items():"):
                w.line("held = optimizer.state[tensor]")
                with w.block("for slot, torch_slot in STATE_SLOTS[role].items():"):
                    w.line("key = f'{role}/{name}.{slot}'")
                    w.line("value = np.asarray(state[key], dtype=np.float32)")
                    with w.block("if value.shape != tuple(tensor.shape):"):
                        w.line("raise ValueError(f'optimizer state {key} has shape '")
                        w.line(" " * 17 + "f'{list(value.shape)}; expected {list(tensor.shape)}')")
                    w.line("held[torch_slot] = torch.tensor(value, device=self.device)")
                with w.block("if COUNTS_STEPS[role]:"):
                    w.line("held['step'] = torch.tensor(float(self.steps[role]))  # torch's count")


__all__ = ["emit_gan_module"]
