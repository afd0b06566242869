"""The training half of a generated Runtime: the loss, L2 regularisation, the
optimizer update written out as docs/semantics.md states it, and the canonical
optimizer state (see ``nnc/backends/runtime.py``)."""

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


# -- methods -------------------------------------------------------------------------------


def emit_training(
    w: CodeWriter, setup: TrainingSetup, decayed: list[str], statistics: bool
) -> None:
    """``objective``, ``loss``, ``gradients`` and ``train_step`` (or, without a loss,
    the same methods raising an error that says why)."""
    if setup.loss is None:
        for header, doc in (
            ("def loss(self, x, y):", "Not available: see NOT_TRAINABLE."),
            ("def gradients(self, x, y):", "Not available: see NOT_TRAINABLE."),
            ("def train_step(self, x, y, lr):", "Not available: see NOT_TRAINABLE."),
        ):
            with w.block(header):
                w.docstring(doc)
                w.line("raise RuntimeError(NOT_TRAINABLE)")
            w.blank()
        return
    kernel = loss_kernel(setup.loss)
    with w.block("def objective(self, x, y, training):"):
        w.docstring(
            f"The forward pass and the loss ({loss_summary(setup.loss)}): the loss, its\n"
            "gradient with respect to the output, and the cache of the forward pass."
        )
        w.line("output, cache = self.propagate(x, training=training)")
        labels = isinstance(setup.loss, CrossEntropy)
        ignore = getattr(setup.loss, "ignore", None)
        if ignore is None:
            w.line(f"target = as_target(y, output, class_labels={labels})")
        else:  # label `ignore` becomes an all-zero row
            w.line(f"target = as_padded_target(y, output, ignore={ignore})")
        options = "".join(f", {k}={v!r}" for k, v in loss_options(setup.loss).items())
        w.line(f"loss, d_output = {kernel}(output, target{options})")
        w.line("return loss, d_output, cache")
    w.blank()
    with w.block("def loss(self, x, y):"):
        w.docstring("The loss in evaluation mode (no dropout, running batchnorm statistics).")
        w.line("return float(self.objective(x, y, training=False)[0])")
    w.blank()
    with w.block("def gradients(self, x, y):"):
        w.docstring(
            "d loss / d parameter for every trainable parameter, in training mode;\n"
            "nothing is updated."
        )
        w.line("_, d_output, cache = self.objective(x, y, training=True)")
        w.line("return self.backpropagate(cache, d_output)[0]")
    w.blank()
    with w.block("def train_step(self, x, y, lr):"):
        w.docstring("One update on one batch; returns the loss before the update.")
        w.line("loss, d_output, cache = self.objective(x, y, training=True)")
        w.line("grads, _ = self.backpropagate(cache, d_output)")
        if decayed:
            w.line(f"# L2 regularisation (not decoupled decay): g += {setup.l2!r} * p for the")
            w.line("# weights of dense, conv, recurrent and embedding layers, not the biases.")
            with w.block("for name in DECAYED:"):
                w.line(f"grads[name] = grads[name] + {setup.l2!r} * self.weights[name]")
        w.line("self.apply_gradients(grads, lr)")
        if statistics:
            w.line("self.update_running_statistics(cache)")
        w.line("return float(loss)")
    w.blank()


def emit_optimizer_init(
    w: CodeWriter, optimizer: Optimizer | None, trainable: str = "TRAINABLE"
) -> None:
    """The lines of ``__init__`` that create the optimizer state (for the parameters
    named in the module-level tuple ``trainable``)."""
    w.line("self.step = 0  # updates made so far")
    slots = _slots(optimizer)
    if not slots:
        w.line("self.state = {}")
        return
    w.line(f"# {_state_comment(optimizer)}")
    start = "np.zeros_like(self.weights[name])"
    if isinstance(optimizer, Adagrad) and optimizer.initial_accumulator:
        start = f"np.full_like(self.weights[name], {optimizer.initial_accumulator!r})"
    w.line("self.state = {}")
    with w.block(f"for name in {trainable}:"):
        for slot in slots:
            w.line(f"self.state[name + {'.' + slot!r}] = {start}")


def _slots(optimizer: Optimizer | None) -> tuple[str, ...]:
    if isinstance(optimizer, Sgd):
        return ("velocity",) if optimizer.momentum > 0 else ()
    if isinstance(optimizer, Adagrad):
        return ("accumulator",)
    if isinstance(optimizer, Rmsprop):
        return ("square_avg",)
    if isinstance(optimizer, Adam):
        return ("m", "v")
    return ()


def _state_comment(optimizer: Optimizer | None) -> str:
    if isinstance(optimizer, Sgd):
        return "the momentum velocity of every trainable parameter"
    if isinstance(optimizer, Adagrad):
        return "AdaGrad's running sum of squared gradients, per trainable parameter"
    if isinstance(optimizer, Rmsprop):
        return "RMSprop's moving average of squared gradients, per trainable parameter"
    return "Adam's first (m) and second (v) moment estimates, per trainable parameter"


def emit_apply_gradients(w: CodeWriter, optimizer: Optimizer, trainable: str = "TRAINABLE") -> None:
    """``apply_gradients(grads, lr)``: the optimizer update, in place, of the parameters
    named in the module-level tuple ``trainable``."""
    with w.block("def apply_gradients(self, grads, lr):"):
        w.docstring(_update_doc(optimizer))
        w.line("lr = float(lr)  # a Python float keeps float32 arrays float32")
        w.line("self.step += 1")
        if isinstance(optimizer, Adam):
            w.line(f"correction1 = 1 - {optimizer.beta1!r} ** self.step")
            w.line(f"correction2 = 1 - {optimizer.beta2!r} ** self.step")
        with w.block(f"for name in {trainable}:"):
            w.line("g = grads[name]")
            _update_lines(w, optimizer)
    w.blank()


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
    return (
        f"Adam: m = {o.beta1!r} m + (1 - {o.beta1!r}) g;\n"
        f"v = {o.beta2!r} v + (1 - {o.beta2!r}) g^2;\n"
        f"p -= lr * m_hat / (sqrt(v_hat) + {o.eps!r}), with the bias corrections\n"
        f"m_hat = m / (1 - {o.beta1!r}^t) and v_hat = v / (1 - {o.beta2!r}^t), t = self.step."
    )


def _update_lines(w: CodeWriter, o: Optimizer) -> None:
    p = "self.weights[name]"
    if isinstance(o, Sgd):
        if o.momentum == 0:
            w.line(f"{p} -= lr * g")
            return
        w.line("v = self.state[name + '.velocity']")
        w.line(f"v *= {o.momentum!r}")
        w.line("v += g")
        w.line(f"{p} -= lr * (g + {o.momentum!r} * v)" if o.nesterov else f"{p} -= lr * v")
    elif isinstance(o, Adagrad):
        w.line("accumulator = self.state[name + '.accumulator']")
        w.line("accumulator += g * g")
        w.line(f"{p} -= lr * g / (np.sqrt(accumulator) + {o.eps!r})")
    elif isinstance(o, Rmsprop):
        w.line("square_avg = self.state[name + '.square_avg']")
        w.line(f"square_avg *= {o.rho!r}")
        w.line(f"square_avg += (1 - {o.rho!r}) * g * g")
        w.line(f"{p} -= lr * g / (np.sqrt(square_avg) + {o.eps!r})")
    else:
        w.line("m, v = self.state[name + '.m'], self.state[name + '.v']")
        w.line(f"m *= {o.beta1!r}")
        w.line(f"m += (1 - {o.beta1!r}) * g")
        w.line(f"v *= {o.beta2!r}")
        w.line(f"v += (1 - {o.beta2!r}) * g * g")
        w.line(f"{p} -= lr * (m / correction1) / (np.sqrt(v / correction2) + {o.eps!r})")


def emit_optimizer_state(w: CodeWriter) -> None:
    """``get_optimizer_state`` / ``set_optimizer_state`` in the canonical names."""
    with w.block("def get_optimizer_state(self):"):
        w.docstring("The canonical optimizer state: 'step' and '<param>.<slot>' (copies).")
        w.line("state = {name: value.copy() for name, value in self.state.items()}")
        w.line("state['step'] = np.array(self.step, dtype=np.int64)")
        w.line("return state")
    w.blank()
    with w.block("def set_optimizer_state(self, state):"):
        w.docstring("Load optimizer state in the canonical names (from any backend).")
        w.line("expected = {'step', *self.state}")
        with w.block("if set(state) != expected:"):
            w.line("raise ValueError(")
            w.line("    f'optimizer state must hold {sorted(expected)}. Received: {sorted(state)}'")
            w.line(")")
        w.line("loaded = {}")
        with w.block("for name, current in self.state.items():"):
            w.line("value = np.array(state[name], dtype=self.dtype)")
            with w.block("if value.shape != current.shape:"):
                w.line("raise ValueError(")
                w.line("    f'optimizer state {name} must have shape {list(current.shape)}. '")
                w.line("    f'Received: {list(value.shape)}'")
                w.line(")")
            w.line("loaded[name] = value")
        w.line("self.state = loaded")
        w.line("self.step = int(state['step'])")
    w.blank()


def emit_running_statistics(w: CodeWriter, statistics: list[tuple[str, str, float]]) -> None:
    """``update_running_statistics(cache)``: blend batch statistics into batchnorm's
    running mean and (unbiased) variance."""
    with w.block("def update_running_statistics(self, cache):"):
        w.docstring(
            "Batchnorm's running statistics after a training step:\n"
            "running = (1 - momentum) * running + momentum * batch, with the unbiased\n"
            "batch variance (n / (n - 1) times the biased one)."
        )
        w.line("w = self.weights")
        with w.block("batchnorms = ("):  # (node, its batch statistics in the cache, momentum)
            for node, saved, momentum in statistics:
                w.line(f"({node!r}, {saved!r}, {momentum!r}),")
        w.line(")")
        with w.block("for node, saved, momentum in batchnorms:"):
            w.line("_, _, mean, var, count = cache[saved]")
            w.line("unbiased = var * count / max(count - 1, 1)")
            w.line("mean_key, var_key = node + '.running_mean', node + '.running_var'")
            w.line("w[mean_key] = (1 - momentum) * w[mean_key] + momentum * mean")
            w.line("w[var_key] = (1 - momentum) * w[var_key] + momentum * unbiased")
    w.blank()
