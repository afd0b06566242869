"""What a generated NumPy module says of training: its loss (``compute_loss``) and its
optimizer with the recipe's hyperparameters (``make_optimizer``). The optimizers
themselves, L2 and the training step are real code in
:mod:`nnc.backends.numpy.learning`."""

from __future__ import annotations

from dataclasses import dataclass

from nnc.backends.codegen import CodeWriter
from nnc.ir.program import Model
from nnc.ir.training import (
    Adagrad,
    Adam,
    BinaryCrossEntropy,
    CrossEntropy,
    GanRecipe,
    Loss,
    Optimizer,
    Recipe,
    Rmsprop,
    Sgd,
)


@dataclass(frozen=True)
class TrainingSetup:
    """How the model trains: its loss and optimizer (None when it cannot train by
    itself, and ``reason`` says why)."""

    loss: Loss | None
    optimizer: Optimizer | None
    l2: float = 0.0
    reason: str = ""


def training_setup(model: Model, recipe: Recipe | GanRecipe | None) -> TrainingSetup:
    """The loss and optimizer that train ``model`` under ``recipe``."""
    if isinstance(recipe, Recipe):
        return TrainingSetup(recipe.loss, recipe.optimizer, recipe.l2)
    if isinstance(recipe, GanRecipe):
        if model.name == recipe.discriminator:
            # Real samples have target 1, generated ones 0: the minimax and the
            # non-saturating losses train the discriminator alike.
            loss = BinaryCrossEntropy(from_logits=recipe.from_logits)
            return TrainingSetup(loss, recipe.discriminator_optimizer or recipe.optimizer)
        return TrainingSetup(
            None,
            recipe.generator_optimizer or recipe.optimizer,
            reason=f"model {model.name} is the generator of GAN recipe {recipe.name}: it "
            "trains through the discriminator's gradient (propagate, backpropagate, "
            "apply_gradients), not on targets of its own",
        )
    return TrainingSetup(
        None, None, reason=f"model {model.name} has no train recipe: it can only run forward"
    )


def loss_kernel(loss: Loss) -> str:
    """The kernel that computes ``loss`` and its gradient."""
    if isinstance(loss, CrossEntropy | BinaryCrossEntropy):
        padded = "_padded" if isinstance(loss, CrossEntropy) and loss.ignore is not None else ""
        return f"{loss.kind}_from_{'logits' if loss.from_logits else 'probabilities'}{padded}"
    return loss.kind


def loss_options(loss: Loss) -> dict[str, str]:
    """The keyword arguments the kernel of ``loss`` takes beyond its defaults."""
    reduction = getattr(loss, "reduction", "mean")
    return {} if reduction == "mean" else {"reduction": reduction}


def loss_summary(loss: Loss) -> str:
    summed = ", summed" if loss_options(loss) else ""
    if isinstance(loss, CrossEntropy) and loss.ignore is not None:
        summed += f", label {loss.ignore} ignored"
    if isinstance(loss, CrossEntropy | BinaryCrossEntropy):
        return f"{loss.kind} from {'logits' if loss.from_logits else 'probabilities'}{summed}"
    return loss.kind + summed


# -- the generated functions ------------------------------------------------------------


def emit_compute_loss(w: CodeWriter, loss: Loss, name: str = "compute_loss") -> None:
    """``compute_loss(output, y)``: the loss and its gradient with respect to the output."""
    with w.block(f"def {name}(output, y):"):
        w.docstring(
            f"The loss of the output against the targets y: {loss_summary(loss)}.\n"
            "Returns it and its gradient with respect to the output."
        )
        ignore = getattr(loss, "ignore", None)
        if ignore is None:
            labels = isinstance(loss, CrossEntropy)
            w.line(f"target = as_target(y, output, class_labels={labels})")
        else:  # label `ignore` becomes an all-zero row
            w.line(f"target = as_padded_target(y, output, ignore={ignore})")
        options = "".join(f", {k}={v!r}" for k, v in loss_options(loss).items())
        w.line(f"return {loss_kernel(loss)}(output, target{options})")


def optimizer_class(optimizer: Optimizer) -> str:
    """The class of :mod:`nnc.backends.numpy.learning` that implements ``optimizer``."""
    return {Sgd: "Sgd", Adagrad: "Adagrad", Rmsprop: "Rmsprop", Adam: "Adam"}[type(optimizer)]


def _hyperparameters(o: Optimizer) -> dict[str, object]:
    if isinstance(o, Sgd):
        return {"momentum": o.momentum, "nesterov": o.nesterov} if o.momentum > 0 else {}
    if isinstance(o, Adagrad):
        return {"eps": o.eps, "initial": o.initial_accumulator}
    if isinstance(o, Rmsprop):
        return {"rho": o.rho, "eps": o.eps}
    assert isinstance(o, Adam)
    return {"beta1": o.beta1, "beta2": o.beta2, "eps": o.eps}


def emit_make_optimizer(
    w: CodeWriter, optimizer: Optimizer, trainable: str = "TRAINABLE", name: str = "make_optimizer"
) -> None:
    """``make_optimizer(weights)``: the recipe's optimizer (its learning rate comes from
    ``learning_rate``) over the parameters named in the module-level tuple ``trainable``."""
    with w.block(f"def {name}(weights):"):
        w.docstring(f"{_update_doc(optimizer)}\nIt updates the parameters of {trainable}.")
        options = "".join(f", {k}={v!r}" for k, v in _hyperparameters(optimizer).items())
        w.line(f"return {optimizer_class(optimizer)}(weights, {trainable}{options})")


def _update_doc(o: Optimizer) -> str:
    if isinstance(o, Sgd):
        if o.momentum == 0:
            return "Stochastic gradient descent: p -= lr * g."
        step = "p -= lr * (g + momentum * v)" if o.nesterov else "p -= lr * v"
        kind = "Nesterov momentum" if o.nesterov else "momentum"
        return f"SGD with {kind} {o.momentum!r}: v = momentum * v + g; {step}."
    if isinstance(o, Adagrad):
        return f"AdaGrad: G += g^2; p -= lr * g / (sqrt(G) + {o.eps!r})."
    if isinstance(o, Rmsprop):
        return (
            f"RMSprop: v = {o.rho!r} v + (1 - {o.rho!r}) g^2; p -= lr * g / (sqrt(v) + {o.eps!r})\n"
            "(epsilon outside the root)."
        )
    assert isinstance(o, Adam)
    return (
        f"Adam: m = {o.beta1!r} m + (1 - {o.beta1!r}) g; "
        f"v = {o.beta2!r} v + (1 - {o.beta2!r}) g^2;\n"
        f"p -= lr * m_hat / (sqrt(v_hat) + {o.eps!r}), with m_hat = m / (1 - {o.beta1!r}^t)\n"
        f"and v_hat = v / (1 - {o.beta2!r}^t) at update t."
    )
