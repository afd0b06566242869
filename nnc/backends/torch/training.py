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

from collections.abc import Mapping

from nnc.backends.codegen import CodeWriter
from nnc.errors import BackendError
from nnc.ir.passes.params import Param
from nnc.ir.training import (
    Adagrad,
    Adam,
    BinaryCrossEntropy,
    ConstantLr,
    CrossEntropy,
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


def counts_steps(optimizer: Optimizer) -> bool:
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


def emit_l2_table(
    w: CodeWriter, torch_names: Mapping[str, str], params: list[Param], recipe: Recipe
) -> None:
    """Emit ``L2_PARAMETERS``, the torch names of the parameters L2 applies to."""
    decayed = [torch_names.get(p.name, p.name) for p in params if p.spec.decay and p.spec.trainable]
    w.line("# The parameters L2 regularisation applies to: weights, not biases or norm scales.")
    with w.block("L2_PARAMETERS = {"):
        for name in decayed:
            w.line(f"{name!r},")
    w.line("}")


def has_schedule(recipe: Recipe) -> bool:
    return not isinstance(recipe.schedule, ConstantLr)


def emit_fit(
    w: CodeWriter, recipe: Recipe, class_name: str, integer_input: bool, trainable: bool
) -> None:
    """Emit ``fit(x, y)``: the loop a torch user writes around the model, the loss and
    the optimizer, with the recipe's epochs, batch size, seed and schedule."""
    batch = "None" if recipe.batch == "all" else str(int(recipe.batch))
    signature = f"x, y, epochs={recipe.epochs}, batch={batch}, seed={recipe.seed}, verbose=True"
    with w.block(f"def fit({signature}):"):
        w.docstring(
            f"Train a new {class_name} on arrays x and y (targets as compute_loss takes them)\n"
            "and return it with the mean training loss of each epoch. Each epoch visits\n"
            "the samples in the order of a permutation drawn from np.random.default_rng(seed),\n"
            "as nnc train does; the weights start from torch's own initialisation\n"
            "(nnc's runtime adapter starts from nnc's initializers)."
            + ("\n\nbatch=None trains on the whole set at once." if batch == "None" else "")
        )
        w.line("torch.manual_seed(seed)")
        w.line(f"model = {class_name}()")
        if trainable:
            w.line("optimizer = make_optimizer(model)")
        dtype = "torch.int64" if integer_input else "torch.float32"
        w.line(f"x = torch.as_tensor(x, dtype={dtype})")
        w.line("y = torch.as_tensor(y, dtype=torch.float32)")
        size = "batch"
        if batch == "None":
            w.line("size = len(x) if batch is None else batch")
            size = "size"
        w.line("rng = np.random.default_rng(seed)")
        w.line("history = []")
        with w.block("for epoch in range(epochs):"):
            if trainable and has_schedule(recipe):
                with w.block("for group in optimizer.param_groups:"):
                    w.line('group["lr"] = learning_rate(epoch)')
            w.line("model.train()")
            w.line("total = 0.0")
            with w.block(f"for index in torch.from_numpy(rng.permutation(len(x))).split({size}):"):
                if trainable:
                    w.line("optimizer.zero_grad()")
                    w.line("loss = compute_loss(model(x[index]), y[index])")
                    w.line("loss.backward()")
                    w.line("optimizer.step()")
                else:
                    with w.block("with torch.no_grad():  # every parameter is frozen"):
                        w.line("loss = compute_loss(model(x[index]), y[index])")
                w.line("total += loss.item() * len(index)")
            w.line("history.append(total / len(x))")
            with w.block("if verbose:"):
                w.line('print(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.6f}")')
        w.line("return model, history")
