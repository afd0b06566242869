"""The training half of a generated TensorFlow module: loss, optimizer, Runtime.

Losses are written with TensorFlow ops in nnc's formulas (stable from-logits forms).
Optimizers are written out as small ``tf.Module`` classes updating ``tf.Variable``
slots, because Keras' optimizers compute other formulas (``docs/semantics.md``,
Optimizers; PITFALLS.md): Keras' Adam uses an epsilon-hat, its RMSprop puts epsilon
inside the root, its SGD folds the learning rate into the momentum, and its AdaGrad
starts the accumulator at 0.1. Only the recipe's optimizer, in the recipe's
configuration, is emitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nnc.backends.codegen import CodeWriter, py_literal
from nnc.ir.training import (
    Adagrad,
    Adam,
    BinaryCrossEntropy,
    CrossEntropy,
    Mae,
    Mse,
    Optimizer,
    Recipe,
    Rmsprop,
    Sgd,
    Sse,
)

# -- losses ------------------------------------------------------------------------------

LossSpec = Mse | Mae | Sse | CrossEntropy | BinaryCrossEntropy


def loss_name(loss: LossSpec) -> str:
    """The generated function's name: the loss's own."""
    return loss.kind


def emit_loss(w: CodeWriter, loss: LossSpec) -> None:
    """``<loss>(output, target)``: the batch loss, nnc's formula and reduction."""
    with w.block(f"def {loss_name(loss)}(output, target):"):
        if isinstance(loss, Sse):
            w.docstring("Half the sum of squared errors over the batch and all elements.")
            w.line("return 0.5 * tf.reduce_sum(tf.square(output - target))")
            return
        summed = loss.reduction == "sum"
        mean = "sum" if summed else "mean"  # the words of the docstrings
        title = "Summed" if summed else "Mean"
        reduce = f"tf.reduce_{mean}"
        if isinstance(loss, Mse):
            w.docstring(f"{title} squared error: the {mean} over all elements of (y - t)².")
            w.line(f"return {reduce}(tf.square(output - target))")
        elif isinstance(loss, Mae):
            w.docstring(
                f"{title} absolute error: the {mean} over all elements of |y - t|\n"
                "(gradient sign(y - t), 0 at 0)."
            )
            w.line(f"return {reduce}(tf.abs(output - target))")
        elif isinstance(loss, CrossEntropy):
            if loss.from_logits:
                w.docstring(
                    "Cross-entropy -Σ_c t_c log p_c over the last axis, from logits:\n"
                    "log p = log_softmax(y), through log-sum-exp, so logits of ±1000 stay\n"
                    f"finite. {title} over the other positions (batch, time)."
                )
                w.line("log_p = tf.nn.log_softmax(output, axis=-1)")
            else:
                w.docstring(
                    "Cross-entropy -Σ_c t_c log p_c over the last axis, from probabilities:\n"
                    f"log p = log(max(p, 1e-7)). {title} over the other positions (batch, time)."
                )
                w.line("log_p = tf.math.log(tf.maximum(output, 1e-7))")
            if loss.ignore is None:
                w.line(f"return {reduce}(-tf.reduce_sum(target * log_p, axis=-1))")
            else:
                w.line(f"# Label {loss.ignore} is padding: an all-zero target row, which adds 0")
                w.line("# and is not counted." if not summed else "# (summed: nothing to count).")
                w.line("total = -tf.reduce_sum(target * log_p)")
                if summed:
                    w.line("return total")
                else:
                    w.line("kept = tf.math.count_nonzero(tf.reduce_any(target != 0, axis=-1))")
                    w.line("return total / tf.cast(tf.maximum(kept, 1), total.dtype)")
        elif loss.from_logits:
            w.docstring(
                f"Binary cross-entropy from logits, {mean} over all elements:\n"
                "max(y, 0) - y·t + log(1 + e^{-|y|}), TensorFlow's own stable form."
            )
            w.line(
                f"return {reduce}("
                "tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=output))"
            )
        else:
            w.docstring(
                "Binary cross-entropy from probabilities clipped to [1e-7, 1 - 1e-7],\n"
                f"{mean} over all elements."
            )
            w.line("p = tf.clip_by_value(output, 1e-7, 1.0 - 1e-7)")
            w.line(
                f"return {reduce}(-(target * tf.math.log(p) + "
                "(1.0 - target) * tf.math.log(1.0 - p)))"
            )


# -- optimizers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerCode:
    """How the runtime constructs the optimizer: class name, keyword arguments, slots."""

    cls: str
    kwargs: Mapping[str, object]
    slots: tuple[str, ...]

    def constructor(self, variables: str) -> str:
        args = "".join(f", {k}={py_literal(v)}" for k, v in self.kwargs.items())
        return f"{self.cls}({variables}{args})"


def _slots(w: CodeWriter, names: tuple[str, ...], fill: str = "0.0") -> None:
    for name in names:
        w.line(
            f"self.{name} = [tf.Variable(tf.fill(v.shape, {fill}), trainable=False) "
            "for v in variables]"
        )


def _init_header(w: CodeWriter, cls: str, params: str) -> None:
    w.line(f"super().__init__(name={cls.lower()!r})")
    w.line("self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')")
    if params:
        w.line(f"{params}")


def emit_optimizer(w: CodeWriter, opt: Optimizer, sgd_class: str = "SGD") -> OptimizerCode:
    """The optimizer class, specialised to the recipe's configuration. An SGD class is
    written for one variant (plain, momentum or Nesterov); ``sgd_class`` names it, so
    that a module can hold two variants."""
    if isinstance(opt, Sgd):
        return _emit_sgd(w, opt, sgd_class)
    if isinstance(opt, Adagrad):
        return _emit_adagrad(w, opt)
    if isinstance(opt, Rmsprop):
        return _emit_rmsprop(w, opt)
    return _emit_adam(w, opt)


def _state_method(w: CodeWriter, slots: tuple[str, ...]) -> None:
    w.blank()
    with w.block("def state(self):"):
        w.docstring("Slot name -> one variable per trained parameter.")
        items = ", ".join(f"{s!r}: self.{s}" for s in slots)
        w.line(f"return {{{items}}}")


def _emit_sgd(w: CodeWriter, opt: Sgd, cls: str = "SGD") -> OptimizerCode:
    with w.block(f"class {cls}(tf.Module):"):
        if opt.momentum == 0:
            w.docstring("Plain gradient descent: p -= lr·g.")
        elif opt.nesterov:
            w.docstring(
                "SGD with Nesterov momentum, nnc's (PyTorch's) form:\n"
                "v = μv + g; p -= lr·(g + μv). Written out because Keras folds the\n"
                "learning rate into its momentum (m = μm - lr·g), which differs as soon\n"
                "as the learning rate changes."
            )
        else:
            w.docstring(
                "SGD with momentum, nnc's (PyTorch's) form: v = μv + g; p -= lr·v.\n"
                "Written out because Keras folds the learning rate into its momentum\n"
                "(m = μm - lr·g), which differs as soon as the learning rate changes."
            )
        w.blank()
        momentum = opt.momentum > 0
        with w.block(f"def __init__(self, variables{', momentum' if momentum else ''}):"):
            _init_header(w, cls, "self.momentum = momentum" if momentum else "")
            if momentum:
                _slots(w, ("velocity",))
        w.blank()
        with w.block("def apply(self, gradients, variables, lr):"):
            w.line("self.step.assign_add(1)")
            if not momentum:
                with w.block("for g, p in zip(gradients, variables, strict=True):"):
                    w.line("p.assign_sub(lr * g)")
            else:
                with w.block(
                    "for g, p, v in zip(gradients, variables, self.velocity, strict=True):"
                ):
                    w.line("v.assign(self.momentum * v + g)")
                    w.line(
                        "p.assign_sub(lr * (g + self.momentum * v))"
                        if opt.nesterov
                        else "p.assign_sub(lr * v)"
                    )
        slots: tuple[str, ...] = ("velocity",) if momentum else ()
        _state_method(w, slots)
    return OptimizerCode(cls, {"momentum": opt.momentum} if momentum else {}, slots)


def _emit_adagrad(w: CodeWriter, opt: Adagrad) -> OptimizerCode:
    with w.block("class Adagrad(tf.Module):"):
        w.docstring(
            "AdaGrad, nnc's form: G += g²; p -= lr·g / (√G + ε), G starting at\n"
            "`initial_accumulator`. Written out because Keras' starts G at 0.1 (and\n"
            "defaults ε to 1e-7)."
        )
        w.blank()
        with w.block("def __init__(self, variables, eps, initial_accumulator):"):
            _init_header(w, "Adagrad", "self.eps = eps")
            _slots(w, ("accumulator",), "initial_accumulator")
        w.blank()
        with w.block("def apply(self, gradients, variables, lr):"):
            w.line("self.step.assign_add(1)")
            with w.block(
                "for g, p, G in zip(gradients, variables, self.accumulator, strict=True):"
            ):
                w.line("G.assign_add(tf.square(g))")
                w.line("p.assign_sub(lr * g / (tf.sqrt(G) + self.eps))")
        _state_method(w, ("accumulator",))
    kwargs = {"eps": opt.eps, "initial_accumulator": opt.initial_accumulator}
    return OptimizerCode("Adagrad", kwargs, ("accumulator",))


def _emit_rmsprop(w: CodeWriter, opt: Rmsprop) -> OptimizerCode:
    with w.block("class RMSprop(tf.Module):"):
        w.docstring(
            "RMSprop, nnc's form: v = ρv + (1-ρ)g²; p -= lr·g / (√v + ε), ε outside the\n"
            "root. Written out because Keras puts ε inside it (√(v + ε))."
        )
        w.blank()
        with w.block("def __init__(self, variables, rho, eps):"):
            _init_header(w, "RMSprop", "self.rho, self.eps = rho, eps")
            _slots(w, ("square_avg",))
        w.blank()
        with w.block("def apply(self, gradients, variables, lr):"):
            w.line("self.step.assign_add(1)")
            with w.block("for g, p, v in zip(gradients, variables, self.square_avg, strict=True):"):
                w.line("v.assign(self.rho * v + (1.0 - self.rho) * tf.square(g))")
                w.line("p.assign_sub(lr * g / (tf.sqrt(v) + self.eps))")
        _state_method(w, ("square_avg",))
    return OptimizerCode("RMSprop", {"rho": opt.rho, "eps": opt.eps}, ("square_avg",))


def _emit_adam(w: CodeWriter, opt: Adam) -> OptimizerCode:
    with w.block("class Adam(tf.Module):"):
        w.docstring(
            "Adam, nnc's (PyTorch's) form: m = β₁m + (1-β₁)g; v = β₂v + (1-β₂)g²;\n"
            "p -= lr·(m / (1-β₁ᵗ)) / (√(v / (1-β₂ᵗ)) + ε). Written out because Keras\n"
            "computes lr·√(1-β₂ᵗ)/(1-β₁ᵗ)·m / (√v + ε̂): the same only if ε̂ = ε·√(1-β₂ᵗ),\n"
            "which changes every step."
        )
        w.blank()
        with w.block("def __init__(self, variables, beta1, beta2, eps):"):
            _init_header(w, "Adam", "self.beta1, self.beta2, self.eps = beta1, beta2, eps")
            _slots(w, ("m", "v"))
        w.blank()
        with w.block("def apply(self, gradients, variables, lr):"):
            w.line("self.step.assign_add(1)")
            w.line("# The bias corrections in float64: 1 - 0.999 loses digits in float32.")
            w.line("t = tf.cast(self.step, tf.float64)")
            w.line("correction1 = tf.cast(1.0 - self.beta1**t, tf.float32)")
            w.line("correction2 = tf.cast(1.0 - self.beta2**t, tf.float32)")
            with w.block(
                "for g, p, m, v in zip(gradients, variables, self.m, self.v, strict=True):"
            ):
                w.line("m.assign(self.beta1 * m + (1.0 - self.beta1) * g)")
                w.line("v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(g))")
                w.line(
                    "p.assign_sub(lr * (m / correction1) / (tf.sqrt(v / correction2) + self.eps))"
                )
        _state_method(w, ("m", "v"))
    kwargs = {"beta1": opt.beta1, "beta2": opt.beta2, "eps": opt.eps}
    return OptimizerCode("Adam", kwargs, ("m", "v"))


def emit_make_optimizer(w: CodeWriter, name: str, code: OptimizerCode) -> None:
    """``make_optimizer(variables)`` (or ``name``): the recipe's optimizer over them."""
    with w.block(f"def {name}(variables):"):
        w.docstring(f"The recipe's {code.cls} over the trained variables, in its configuration.")
        w.line(f"return {code.constructor('variables')}")


def emit_l2(w: CodeWriter, l2: float, decayed: list[str]) -> None:
    """``L2`` and the canonical names of the parameters it applies to."""
    w.line("# L2 regularisation (not decoupled weight decay): a train step adds")
    w.line("# L2 * p to the gradient of each of these parameters.")
    w.line(f"L2 = {py_literal(l2)}")
    w.line("L2_PARAMETERS = frozenset(")
    w.line("    {")
    w.lines_([f"        {name!r}," for name in decayed])
    w.line("    }")
    w.line(")")


def emit_fit(
    w: CodeWriter,
    recipe: Recipe,
    class_name: str,
    loss: str,
    dropout: bool,
    integer: bool,
    l2: bool,
) -> None:
    """Emit ``fit(x, y)``: the loop a TensorFlow user writes around the model, the loss
    and the optimizer, with the recipe's epochs, batch size, seed and schedule."""
    batch = "None" if recipe.batch == "all" else str(int(recipe.batch))
    signature = f"x, y, epochs={recipe.epochs}, batch={batch}, seed={recipe.seed}, verbose=True"
    with w.block(f"def fit({signature}):"):
        w.docstring(
            f"Train a new {class_name} on arrays x and y (targets as {loss} takes them)\n"
            "and return it with the mean training loss of each epoch. Each epoch visits\n"
            "the samples in the order of a permutation drawn from np.random.default_rng(seed),\n"
            "as nnc train does; kernels start Glorot-uniform and the rest as the layers\n"
            "make them (nnc's runtime adapter starts from nnc's initializers)."
            + ("\n\nbatch=None trains on the whole set at once." if batch == "None" else "")
        )
        if dropout:
            w.line(f"model = {class_name}(generator=tf.random.Generator.from_seed(seed))")
        else:
            w.line(f"model = {class_name}()")
        w.line("# the tf.Variables under the Keras variables, which the optimizer updates")
        w.line("variables = [var.value for var in model.trainable_variables]")
        with (
            w.block("for index, var in enumerate(variables):"),
            w.block("if var.shape.rank > 1:"),
        ):
            w.line("var.assign(keras.initializers.GlorotUniform(seed + index)(var.shape))")
        w.line("optimizer = make_optimizer(variables)")
        if l2:
            w.line("parameters = named_parameters(model)")
            decayed = "var.value.ref() for name, (*_, var) in parameters if name in L2_PARAMETERS"
            w.line(f"decayed = [{decayed}]")
        w.blank()
        w.line("@tf.function(reduce_retracing=True)")
        with w.block("def train_step(x, y, lr):"):
            with w.block("with tf.GradientTape() as tape:"):
                w.line(f"loss = {loss}(model(x, training=True), y)")
            w.line("gradients = tape.gradient(")
            w.line("    loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO")
            w.line(")")
            w.line("gradients = [tf.convert_to_tensor(g) for g in gradients]")
            if l2:
                w.line("gradients = [")
                w.line("    g + L2 * p if p.ref() in decayed else g")
                w.line("    for g, p in zip(gradients, variables, strict=True)")
                w.line("]")
            w.line("optimizer.apply(gradients, variables, lr)")
            w.line("return loss")
        w.blank()
        w.line(f"x = np.asarray(x, dtype={'np.int64' if integer else 'np.float32'})")
        w.line("y = np.asarray(y, dtype=np.float32)")
        size = "batch"
        if batch == "None":
            w.line("size = len(x) if batch is None else batch")
            size = "size"
        w.line("rng = np.random.default_rng(seed)")
        w.line("history = []")
        with w.block("for epoch in range(epochs):"):
            w.line("lr = tf.constant(learning_rate(epoch), tf.float32)")
            w.line("order = rng.permutation(len(x))")
            w.line("total = 0.0")
            with w.block(f"for start in range(0, len(x), {size}):"):
                w.line(f"index = order[start : start + {size}]")
                w.line("total += float(train_step(x[index], y[index], lr)) * len(index)")
            w.line("history.append(total / len(x))")
            with w.block("if verbose:"):
                w.line('print(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.6f}")')
        w.line("return model, history")
