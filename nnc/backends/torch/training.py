"""Emit the loss, the optimizer and the ``Runtime`` class of a generated torch module.

Every optimizer of nnc is computed exactly by its ``torch.optim`` class with the
right arguments (checked against a float64 transcription of docs/semantics.md by
``tests/backends/torch/test_optimizers.py``), so the generated code uses them and
says why in the docstring:

- sgd: ``v = μv + g; p -= lr·v`` (Nesterov ``p -= lr·(g + μv)``). torch's first step
  sets ``v = g``, which is ``μ·0 + g``; ``lr`` multiplies the whole step, so a new
  rate applies at once, momentum included;
- adagrad: ``lr_decay`` 0 and ``initial_accumulator_value`` = G₀;
- rmsprop: torch's ``alpha`` is ρ and its ε is outside the root, as nnc's;
- adam: torch's bias correction and ε placement are nnc's; ``weight_decay`` is L2
  added to the gradient (not AdamW's decoupled decay).

L2 regularisation applies to the parameters with ``decay`` only: they form their own
parameter group with ``weight_decay = l2``.
"""

from __future__ import annotations

from nnc.backends.codegen import CodeWriter, py_identifier, py_literal
from nnc.errors import BackendError
from nnc.ir.passes.params import Param
from nnc.ir.program import Model
from nnc.ir.training import (
    Adagrad,
    Adam,
    BinaryCrossEntropy,
    CrossEntropy,
    GanRecipe,
    Loss,
    Mae,
    Mse,
    Optimizer,
    Recipe,
    Rmsprop,
    Sgd,
    Sse,
)
from nnc.ir.types import TensorType


def emit_loss(w: CodeWriter, loss: Loss, output: TensorType) -> None:
    """Emit ``compute_loss(output, target)``: nnc's loss, mean or sum as it defines."""
    if isinstance(loss, CrossEntropy) and loss.ignore is not None:
        _padded_cross_entropy(w, loss)
        return
    doc, body = _loss(loss, output)
    with w.block("def compute_loss(output, target):"):
        w.docstring(doc)
        w.line(f"return {body}")


def _padded_cross_entropy(w: CodeWriter, loss: CrossEntropy) -> None:
    """Cross-entropy with a padding label: its positions arrive as all-zero target
    rows, which add 0 to the sum (as torch's ``ignore_index``), and the mean divides
    by the positions that are not padding."""
    summed = loss.reduction == "sum"
    with w.block("def compute_loss(output, target):"):
        w.docstring(
            f"Cross-entropy {'from logits' if loss.from_logits else 'of probabilities'} with "
            f"label {loss.ignore} as padding: a padding\n"
            "position has an all-zero target row, adds 0 (torch's ignore_index) and is not\n"
            f"counted; the {'sum' if summed else 'mean'} is over the other positions."
        )
        w.line("output, target = output.flatten(0, -2), target.flatten(0, -2)")
        if loss.from_logits:
            w.line("total = F.cross_entropy(output, target, reduction='sum')")
        else:
            w.line("total = -(target * torch.log(output.clamp_min(1e-7))).sum()")
        if summed:
            w.line("return total")
        else:
            w.line("return total / target.any(dim=-1).sum().clamp_min(1)")


def _loss(loss: Loss, output: TensorType) -> tuple[str, str]:
    if isinstance(loss, Sse):
        return "Half the sum of squared errors over the batch: 0.5 * sum (y - t)^2.", (
            "0.5 * F.mse_loss(output, target, reduction='sum')"
        )
    summed = loss.reduction == "sum"
    mean = "sum" if summed else "mean"  # the words of the docstrings
    title = "Summed" if summed else "Mean"
    keyword = ", reduction='sum'" if summed else ""  # torch's losses take the mean by default
    if isinstance(loss, Mse):
        return f"{title} squared error: the {mean} over all elements of (y - t)^2.", (
            f"F.mse_loss(output, target{keyword})"
        )
    if isinstance(loss, Mae):
        return (
            f"{title} absolute error: the {mean} over all elements of |y - t| (gradient\n"
            "sign(y - t), 0 at 0).",
            f"F.l1_loss(output, target{keyword})",
        )
    if isinstance(loss, CrossEntropy) and loss.from_logits:
        if output.rank == 1:
            return (
                f"Cross-entropy from logits against one-hot (or probability) rows: the {mean}\n"
                "of -sum_c t_c log_softmax(y)_c, computed through log-sum-exp. torch reads\n"
                "float targets as class probabilities.",
                f"F.cross_entropy(output, target{keyword})",
            )
        return (
            f"Cross-entropy from logits against one-hot (or probability) rows: the {mean}\n"
            "of -sum_c t_c log_softmax(y)_c, computed through log-sum-exp. torch reads\n"
            "float targets as class probabilities; the classes are the last axis, so\n"
            "every other position becomes a row.",
            f"F.cross_entropy(output.flatten(0, -2), target.flatten(0, -2){keyword})",
        )
    if isinstance(loss, CrossEntropy):
        return (
            "Cross-entropy of probabilities against one-hot (or probability) rows: the\n"
            f"{mean} over positions of -sum_c t_c log(max(p_c, 1e-7)).",
            f"-(target * torch.log(output.clamp_min(1e-7))).sum(dim=-1).{mean}()",
        )
    if isinstance(loss, BinaryCrossEntropy) and loss.from_logits:
        return (
            f"Binary cross-entropy from logits, max(y, 0) - y t + log(1 + e^-|y|), {mean}\n"
            "over all elements.",
            f"F.binary_cross_entropy_with_logits(output, target{keyword})",
        )
    if not isinstance(loss, BinaryCrossEntropy):
        raise BackendError(f"the torch backend has no lowering for loss '{loss.kind}'")
    return (
        f"Binary cross-entropy of probabilities clipped to [1e-7, 1 - 1e-7], {mean} over\n"
        "all elements.",
        f"F.binary_cross_entropy(output.clamp(1e-7, 1 - 1e-7), target{keyword})",
    )


# -- optimizers --------------------------------------------------------------------------

# canonical state slot -> torch's name for it, per optimizer
_SLOTS: dict[str, dict[str, str]] = {
    "sgd": {"velocity": "momentum_buffer"},
    "adagrad": {"accumulator": "sum"},
    "rmsprop": {"square_avg": "square_avg"},
    "adam": {"m": "exp_avg", "v": "exp_avg_sq"},
}


def state_slots(optimizer: Optimizer) -> dict[str, str]:
    if isinstance(optimizer, Sgd) and optimizer.momentum == 0:
        return {}
    return _SLOTS[optimizer.kind]


def _torch_counts_steps(optimizer: Optimizer) -> bool:
    """Whether the torch optimizer keeps a per-parameter ``step`` in its state."""
    return not isinstance(optimizer, Sgd)


def _optimizer(opt: Optimizer) -> tuple[str, str]:
    """(docstring, constructor call with ``{params}`` for the parameters)."""
    if isinstance(opt, Sgd):
        args = f"lr={opt.lr!r}"
        if opt.momentum:
            args += f", momentum={opt.momentum!r}"
            if opt.nesterov:
                args += ", nesterov=True"
                doc = (
                    "SGD with Nesterov momentum as nnc defines it, which torch.optim.SGD\n"
                    "computes exactly: v = mu v + g; p -= lr (g + mu v). Its first step sets\n"
                    "v = g (= mu 0 + g), and lr multiplies the whole step, so a new rate\n"
                    "applies at once, momentum included."
                )
            else:
                doc = (
                    "SGD with momentum as nnc defines it, which torch.optim.SGD computes\n"
                    "exactly: v = mu v + g; p -= lr v. Its first step sets v = g (= mu 0 + g),\n"
                    "and lr multiplies the whole step, so a new rate applies at once,\n"
                    "momentum included."
                )
        else:
            doc = "Plain gradient descent, p -= lr g: torch.optim.SGD without momentum."
        return doc, f"torch.optim.SGD({{params}}, {args})"
    if isinstance(opt, Adagrad):
        return (
            "AdaGrad as nnc defines it, which torch.optim.Adagrad computes exactly:\n"
            "G += g^2; p -= lr g / (sqrt(G) + eps), G starting at initial_accumulator_value\n"
            "(and no lr_decay).",
            f"torch.optim.Adagrad({{params}}, lr={opt.lr!r}, eps={opt.eps!r}, "
            f"initial_accumulator_value={opt.initial_accumulator!r})",
        )
    if isinstance(opt, Rmsprop):
        return (
            "RMSprop as nnc defines it, which torch.optim.RMSprop computes exactly:\n"
            "v = rho v + (1 - rho) g^2; p -= lr g / (sqrt(v) + eps), eps outside the root.\n"
            "torch calls rho alpha.",
            f"torch.optim.RMSprop({{params}}, lr={opt.lr!r}, alpha={opt.rho!r}, eps={opt.eps!r})",
        )
    if not isinstance(opt, Adam):
        raise BackendError(f"the torch backend has no lowering for optimizer '{opt.kind}'")
    return (
        "Adam as nnc defines it, which torch.optim.Adam computes exactly:\n"
        "m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;\n"
        "p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).",
        f"torch.optim.Adam({{params}}, lr={opt.lr!r}, betas=({opt.beta1!r}, {opt.beta2!r}), "
        f"eps={opt.eps!r})",
    )


def emit_optimizer(w: CodeWriter, recipe: Recipe) -> None:
    """Emit ``make_optimizer(model)`` over the trainable parameters."""
    doc, constructor = _optimizer(recipe.optimizer)
    with w.block("def make_optimizer(model):"):
        if recipe.l2:
            doc += (
                f"\n\nL2 regularisation adds {recipe.l2!r} * p to the gradient of the parameters\n"
                "in L2_PARAMETERS (weights, not biases or norm scales): torch's\n"
                "weight_decay does exactly that, in their own parameter group."
            )
            w.docstring(doc)
            w.line("decayed, others = [], []")
            with (
                w.block("for name, parameter in model.named_parameters():"),
                w.block("if parameter.requires_grad:"),
            ):
                w.line("(decayed if name in L2_PARAMETERS else others).append(parameter)")
            w.line(
                f"groups = [{{'params': decayed, 'weight_decay': {recipe.l2!r}}}, "
                "{'params': others}]"
            )
            w.line(f"return {constructor.format(params='groups')}")
        else:
            w.docstring(doc)
            w.line("parameters = [p for p in model.parameters() if p.requires_grad]")
            w.line(f"return {constructor.format(params='parameters')}")


def emit_tables(
    w: CodeWriter, torch_names: dict[str, str], params: list[Param], recipe: Recipe | None
) -> None:
    """Emit TORCH_NAMES (canonical names torch stores differently), L2_PARAMETERS and
    STATE_SLOTS, each only when the module needs it."""
    renamed = {k: v for k, v in torch_names.items() if k != v}
    if renamed:
        w.blank()
        w.line("# Canonical names that torch stores under another name (the layouts are equal).")
        with w.block("TORCH_NAMES = {"):
            for canonical, torch_name in renamed.items():
                w.line(f"{canonical!r}: {torch_name!r},")
        w.line("}")
    if recipe is not None and recipe.l2:
        decayed = [torch_names[p.name] for p in params if p.spec.decay and p.spec.trainable]
        w.blank()
        w.line("# The parameters L2 regularisation applies to: weights, not biases or norm scales.")
        with w.block("L2_PARAMETERS = {"):
            for name in decayed:
                w.line(f"{name!r},")
        w.line("}")
    slots = state_slots(recipe.optimizer) if recipe is not None else {}
    if slots:
        w.blank()
        w.line("# nnc's canonical optimizer state slots -> torch's names for them.")
        w.line(f"STATE_SLOTS = {{{', '.join(f'{k!r}: {v!r}' for k, v in slots.items())}}}")


# -- the Runtime class ----------------------------------------------------------------------


class RuntimeEmitter:
    """Writes the ``Runtime`` class: nnc's runtime interface over the generated module."""

    def __init__(
        self,
        w: CodeWriter,
        model: Model,
        class_name: str,
        recipe: Recipe | GanRecipe | None,
        params: list[Param],
        renamed: bool,
        batchnorm: bool = False,
    ):
        self.w = w
        self.model = model
        self.cls = class_name
        # validated identifiers, so they may sit inside generated string literals
        self.name = py_identifier(model.name, "model name")
        self.input_names = ", ".join(py_identifier(i.name) for i in model.inputs)
        self.recipe = recipe if isinstance(recipe, Recipe) else None
        self.gan = recipe if isinstance(recipe, GanRecipe) else None
        self.seed = recipe.seed if recipe is not None else 0
        self.renamed = renamed
        self.trainable = any(p.spec.trainable and not p.spec.buffer for p in params)
        self.buffers = any(p.spec.buffer for p in params)
        self.multi_output = len(model.outputs) > 1
        self.batchnorm = batchnorm  # data-parallel training swaps in GlobalBatchNorm

    def emit(self) -> None:
        w = self.w
        with w.block("class Runtime:"):
            w.docstring(
                f"{self.model.name} with its loss and optimizer, NumPy arrays in and out.\n\n"
                "It implements nnc's Runtime interface: arrays are batch first, float32 and\n"
                "channels first; weights and optimizer state use nnc's canonical names and\n"
                "layouts, so they move to and from every other nnc backend."
            )
            w.blank()
            w.line("backend = 'torch'")
            w.blank()
            self._init()
            self._basics()
            if self.recipe is None:
                self._no_training()
            else:
                self._training()
                self._optimizer_state()

    def _init(self) -> None:
        w = self.w
        signature = f"self, weights=None, device='cpu', seed={self.seed}"
        if self.recipe is not None:
            signature += ", distributed=False"
        with w.block(f"def __init__({signature}):"):
            w.line("self.device = torch.device(device)")
            with w.block("if self.device.type == 'cuda' and not torch.cuda.is_available():"):
                w.line(
                    "raise RuntimeError(f'device {device!r} was requested but CUDA is not "
                    "available')"
                )
            w.line(f"self.model = {self.cls}().to(self.device)")
            if self.recipe is not None and self.batchnorm:
                with w.block("if distributed:"):
                    w.line("use_global_batchnorm(self.model)  # statistics of the global batch")
            w.line("found = dict(self.model.named_parameters()) | dict(self.model.named_buffers())")
            w.line("# canonical name -> the torch tensor holding it, in the same layout")
            lookup = "TORCH_NAMES.get(name, name)" if self.renamed else "name"
            w.line(f"self.tensors = {{name: found[{lookup}] for name, *_ in PARAMETERS}}")
            if self.recipe is not None:
                w.line(
                    "self.trainable = {n: t for n, t in self.tensors.items() if t.requires_grad}"
                )
            w.line("self.set_weights(initial_weights(seed) if weights is None else weights)")
            if self.recipe is not None:
                self._data_parallel()
                if self.trainable:
                    w.line("self.optimizer = make_optimizer(self.model)")
                else:
                    w.line("self.optimizer = None  # every parameter is frozen")
                w.line("self.steps = 0")
            w.line("self.seed(seed)")

    def _basics(self) -> None:
        w = self.w
        w.blank()
        with w.block("def seed(self, seed):"):
            if self.recipe is None:
                w.docstring("Reseed torch's generator, which draws the dropout masks.")
                w.line("torch.manual_seed(seed)")
            else:
                w.docstring(
                    "Reseed torch's generator, which draws the dropout masks; each\n"
                    "data-parallel worker adds its rank, so their masks differ."
                )
                w.line("torch.manual_seed(seed + self.rank)")
        w.blank()
        with (
            w.block("def _mode(self, training):"),
            w.block("if self.model.training != training:"),
        ):
            w.line("self.model.train(training)")
        w.blank()
        with w.block("def _tensor(self, array, dtype=np.float32):"):
            w.docstring(
                "A NumPy array as a tensor on the device; on the CPU it shares the array's\n"
                "memory when the dtype fits (torch shares writable memory only)."
            )
            with w.block(
                "if not (isinstance(array, np.ndarray) and array.dtype == dtype "
                "and array.flags.writeable):"
            ):
                w.line("array = np.array(array, dtype=dtype)")
            w.line("tensor = torch.from_numpy(array)")
            w.line("return tensor if self.device.type == 'cpu' else tensor.to(self.device)")
        w.blank()
        count = len(self.model.inputs)
        with w.block("def _inputs(self, arrays):"):
            with w.block(f"if len(arrays) != {count}:"):
                w.line(
                    f"raise ValueError(f'{self.name} takes {count} input(s) "
                    f"({self.input_names}). Received: {{len(arrays)}}')"
                )
            tensors = ", ".join(
                f"self._tensor(arrays[{k}], {self._dtype(k)})" for k in range(count)
            )
            w.line(f"return [{tensors}]")
        if self.buffers:
            w.blank()
            with w.block("def _statistics(self):"):
                w.line("return [buffer.clone() for buffer in self.model.buffers()]")
            w.blank()
            with w.block("def _restore(self, statistics):"):
                w.docstring(
                    "Put the running statistics back: nnc's batchnorm statistics change only\n"
                    "in train_step, not in a training-mode forward pass or in gradients."
                )
                with (
                    w.block("with torch.no_grad():"),
                    w.block("for buffer, saved in zip(self.model.buffers(), statistics):"),
                ):
                    w.line("buffer.copy_(saved)")
        w.blank()
        with w.block("def forward(self, *inputs, training=False):"):
            w.docstring(
                "Outputs for a batch, as NumPy arrays"
                + (" (a tuple: one per model output)." if self.multi_output else ".")
            )
            w.line("self._mode(training)")
            if self.buffers:
                w.line("statistics = self._statistics() if training else None")
            with w.block("with torch.no_grad():"):
                if self.multi_output:
                    w.line("outputs = self.model(*self._inputs(inputs))")
                else:
                    w.line("output = self.model(*self._inputs(inputs))")
            if self.buffers:
                with w.block("if statistics is not None:"):
                    w.line("self._restore(statistics)")
            if self.multi_output:
                w.line("return tuple(output.cpu().numpy() for output in outputs)")
            else:
                w.line("return output.cpu().numpy()")
        w.blank()
        with w.block("def get_weights(self):"):
            w.docstring("Canonical weights, buffers included, as NumPy copies.")
            w.line(
                "return {name: t.detach().cpu().numpy().copy() for name, t in self.tensors.items()}"
            )
        w.blank()
        with w.block("def set_weights(self, weights):"):
            w.docstring("Load canonical weights: every tensor of PARAMETERS, by name.")
            w.line("missing = [name for name in self.tensors if name not in weights]")
            w.line("unexpected = [name for name in weights if name not in self.tensors]")
            with w.block("if missing or unexpected:"):
                w.line(
                    f"raise KeyError(f'weights do not fit {self.name}: missing {{missing}}, "
                    f"unexpected {{unexpected}}')"
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

    def _dtype(self, k: int) -> str:
        return "np.int64" if self.model.inputs[k].type.dtype == "int64" else "np.float32"

    def _no_training(self) -> None:
        w = self.w
        if self.gan is not None:
            reason = (
                f"model {self.model.name} is trained by the GAN recipe '{self.gan.name}', "
                "which this runtime does not run: it trains one model with a supervised loss"
            )
        else:
            reason = (
                f"model {self.model.name} has no train recipe, so it has no loss or optimizer; "
                "compile a program whose train block names it"
            )
        w.blank()
        w.line("# Training needs a loss and an optimizer, which only a train recipe gives.")
        w.line(f"NO_TRAINING = {py_literal(reason)}")
        for signature in (
            "train_step(self, x, y, lr)",
            "loss(self, x, y)",
            "gradients(self, x, y)",
            "get_optimizer_state(self)",
            "set_optimizer_state(self, state)",
        ):
            w.blank()
            with w.block(f"def {signature}:"):
                w.line("raise RuntimeError(self.NO_TRAINING)")

    def _training(self) -> None:
        w = self.w
        w.blank()
        with w.block("def train_step(self, x, y, lr, share=1.0):"):
            w.docstring(
                "One update on one batch; returns the batch loss before the update.\n\n"
                "A data-parallel worker passes its slice of the global batch and `share`,\n"
                "the weight of its slice's loss in the global batch's loss (see fit), so\n"
                "that the update follows the gradient of the whole global batch."
            )
            w.line(f"x, y = self._tensor(x, {self._dtype(0)}), self._tensor(y)")
            w.line("return self.train_step_tensors(x, y, lr, share)")
        w.blank()
        with w.block("def train_step_tensors(self, x, y, lr, share=1.0):"):
            w.docstring(
                "train_step on tensors already on the device, the target as compute_loss\ntakes it."
            )
            w.line("self._mode(True)")
            if self.trainable:
                with w.block("for group in self.optimizer.param_groups:"):
                    w.line("group['lr'] = lr")
                w.line("self.optimizer.zero_grad(set_to_none=True)")
                w.line("loss = compute_loss(self.network(x), y)")
                w.line("# The global batch's loss is the sum over the workers of share * loss, and")
                w.line("# DDP averages their gradients: hence the factor world_size. In one")
                w.line("# process it is 1 and stays out of the graph (a multiply and its")
                w.line("# backward cost microseconds a step).")
                w.line("scale = share * self.world_size")
                w.line("(loss if scale == 1.0 else loss * scale).backward()")
                w.line("self.optimizer.step()")
            else:
                with w.block("with torch.no_grad():  # every parameter is frozen"):
                    w.line("loss = compute_loss(self.network(x), y)")
            w.line("self.steps += 1")
            w.line("return loss.item()")
        w.blank()
        with w.block("def all_reduce(self, values):"):
            w.docstring(
                "The sum of a vector over the data-parallel workers, each of which must\n"
                "call it; in one process, the vector itself."
            )
            w.line("total = torch.tensor(np.asarray(values, dtype=np.float64), device=self.device)")
            with w.block("if self.world_size > 1:"):
                w.line("dist.all_reduce(total)")
            w.line("return total.cpu().numpy()")
        w.blank()
        with w.block("def close(self):"):
            w.docstring(
                "Leave the data-parallel process group, once training is done (every\n"
                "worker calls it); the weights stay readable. DistributedDataParallel is\n"
                "released first: a process that exits while DDP still holds its group\n"
                "may abort in torch's teardown. Without a group it does nothing."
            )
            w.line("self.network = self.model")
            w.line("gc.collect()")
            with w.block("if dist.is_initialized():"):
                w.line("dist.destroy_process_group()")
        w.blank()
        with w.block("def loss(self, x, y):"):
            w.docstring("The loss in evaluation mode (no dropout, running batchnorm statistics).")
            w.line(f"x, y = self._tensor(x, {self._dtype(0)}), self._tensor(y)")
            w.line("self._mode(False)")
            with w.block("with torch.no_grad():"):
                w.line("return compute_loss(self.model(x), y).item()")
        w.blank()
        with w.block("def gradients(self, x, y):"):
            doc = "d(loss)/d(parameter) for every trainable parameter, in training mode."
            if self.buffers:
                doc += "\nNothing changes: the running statistics are restored."
            w.docstring(doc)
            if not self.trainable:
                w.line("return {}  # every parameter is frozen")
                return
            w.line(f"x, y = self._tensor(x, {self._dtype(0)}), self._tensor(y)")
            w.line("self._mode(True)")
            if self.buffers:
                w.line("statistics = self._statistics()")
            w.line("loss = compute_loss(self.model(x), y)")
            w.line("grads = torch.autograd.grad(loss, list(self.trainable.values()))")
            if self.buffers:
                w.line("self._restore(statistics)")
            w.line("return {name: g.cpu().numpy() for name, g in zip(self.trainable, grads)}")

    def _data_parallel(self) -> None:
        w = self.w
        w.line("# Data-parallel training (see init_distributed): DistributedDataParallel runs")
        w.line("# the train steps and averages the workers' gradients during backward.")
        w.line("self.rank = dist.get_rank() if distributed else 0")
        w.line("self.world_size = dist.get_world_size() if distributed else 1")
        w.line("self.network = self.model")
        if self.trainable:
            with w.block("if distributed:"):
                w.line("devices = [self.device.index] if self.device.type == 'cuda' else None")
                w.line("self.network = DistributedDataParallel(self.model, device_ids=devices)")

    def _optimizer_state(self) -> None:
        assert self.recipe is not None  # only called for a supervised recipe
        slots = state_slots(self.recipe.optimizer) if self.trainable else {}
        self._get_state(slots)
        self._set_state(slots)

    def _get_state(self, slots: dict[str, str]) -> None:
        w = self.w
        w.blank()
        with w.block("def get_optimizer_state(self):"):
            if not slots:
                w.docstring('Canonical optimizer state: "step", the number of updates so far.')
                w.line("return {'step': np.array(self.steps, dtype=np.int64)}")
                return
            w.docstring(
                'Canonical optimizer state: "step", and "<parameter>.<slot>" for every\n'
                "trainable parameter and slot of STATE_SLOTS (zeros before the first step)."
            )
            w.line("state = {'step': np.array(self.steps, dtype=np.int64)}")
            with w.block("for name, tensor in self.trainable.items():"):
                w.line("held = self.optimizer.state.get(tensor, {})")
                with w.block("for slot, torch_slot in STATE_SLOTS.items():"):
                    w.line("value = held.get(torch_slot)")
                    with w.block("if value is None:"):
                        w.line(
                            "state[f'{name}.{slot}'] = np.zeros(tuple(tensor.shape), np.float32)"
                        )
                    with w.block("else:"):
                        w.line("state[f'{name}.{slot}'] = value.detach().cpu().numpy().copy()")
            w.line("return state")

    def _set_state(self, slots: dict[str, str]) -> None:
        assert self.recipe is not None  # only called for a supervised recipe
        w = self.w
        w.blank()
        with w.block("def set_optimizer_state(self, state):"):
            w.docstring("Load canonical optimizer state, as get_optimizer_state returns it.")
            w.line("expected = self.get_optimizer_state()")
            w.line("missing = [key for key in expected if key not in state]")
            w.line("unexpected = [key for key in state if key not in expected]")
            with w.block("if missing or unexpected:"):
                w.line("raise KeyError(f'optimizer state does not fit: missing {missing}, '")
                w.line("               f'unexpected {unexpected}')")
            w.line("self.steps = int(state['step'])")
            if not slots:
                return
            with w.block("for name, tensor in self.trainable.items():"):
                w.line("held = self.optimizer.state[tensor]")
                with w.block("for slot, torch_slot in STATE_SLOTS.items():"):
                    w.line("value = np.asarray(state[f'{name}.{slot}'], dtype=np.float32)")
                    with w.block("if value.shape != tuple(tensor.shape):"):
                        w.line("raise ValueError(f'optimizer state {name}.{slot} has shape '")
                        w.line(" " * 17 + "f'{list(value.shape)}; expected {list(tensor.shape)}')")
                    w.line("held[torch_slot] = torch.tensor(value, device=self.device)")
                if _torch_counts_steps(self.recipe.optimizer):
                    w.line("held['step'] = torch.tensor(float(self.steps))  # torch's own count")
