"""The generated ``Runtime`` class: nnc's runtime interface over the model classes.

It owns the model, the optimizer and the compiled graphs (``tf.function``; the train
step optionally XLA-compiled), converts NumPy arrays in and out, and keeps weights,
gradients and optimizer state canonical through the layers' conversions.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from nnc.backends.codegen import CodeWriter, py_identifier, py_literal
from nnc.backends.tensorflow.training import LossSpec, OptimizerCode, loss_name
from nnc.ir.program import Model


@dataclass(frozen=True)
class RuntimeSpec:
    """What the emitted Runtime needs to know about the model and its training."""

    model: Model
    class_name: str
    params: list[str]  # the model's input names as Python identifiers
    loss: LossSpec | None
    optimizer: OptimizerCode | None
    no_training_reason: str
    l2: float
    dropout: bool
    buffers: tuple[str, ...]
    embedding: bool
    vocab: dict[str, int]  # int64 input -> ids must lie in [0, vocab)
    seed: int
    trainable: bool = True  # whether any parameter trains (else no gradients to sum)


def emit_tables(
    w: CodeWriter, spec: RuntimeSpec, decayed: list[str], jit: tuple[bool, str]
) -> None:
    """Module constants the Runtime reads: inputs, output, L2, buffers, XLA choice."""
    m = spec.model
    w.line(f"# {m.name}'s inputs: name, per-sample shape (a name: any size), dtype.")
    with w.block("INPUTS = ["):
        for i in m.inputs:
            w.line(f"({i.name!r}, {py_literal(i.type.shape)}, {i.type.dtype!r}),")
    w.line("]")
    if spec.vocab:
        w.line("# Inputs of ids: each id must lie in [0, vocab).")
        w.line(f"VOCAB = {spec.vocab!r}")
    w.line("# Canonical parameter shapes, which weights and optimizer state must have.")
    w.line("SHAPES = {name: shape for name, shape, *_ in PARAMETERS}")
    if len(m.outputs) == 1 and spec.loss is not None:
        w.line(f"OUTPUT_SHAPE = {py_literal(m.output_types[0].shape)}")
    if spec.l2 > 0:
        w.line("# L2 regularisation (not decoupled weight decay): the train step adds")
        w.line("# L2 * p to the gradient of each of these parameters.")
        w.line(f"L2 = {py_literal(spec.l2)}")
        with w.block("DECAYED = frozenset({"):
            for name in decayed:
                w.line(f"{name!r},")
        w.line("})")
    if spec.buffers:
        w.line("# Buffers: canonical weights that training moves without gradients.")
        with w.block("BUFFERS = ("):
            w.lines_([f"{name!r}," for name in spec.buffers])
        w.line(")")
    if spec.loss is None:
        w.line("# Why the training methods refuse.")
        with w.block("NOT_TRAINABLE = ("):
            for chunk in textwrap.wrap(spec.no_training_reason, 80, drop_whitespace=False):
                w.line(py_literal(chunk))
        w.line(")")
    else:
        use, why = jit
        w.line(f"# XLA-compile the train step? {why}")
        w.line(f"JIT_COMPILE = {use!r}")


def emit_runtime(w: CodeWriter, spec: RuntimeSpec) -> None:
    trains = spec.loss is not None and spec.optimizer is not None
    m = spec.model
    with w.block("class Runtime:"):
        if spec.loss is not None and spec.optimizer is not None:
            w.docstring(
                f"{m.name} with its {spec.loss.kind} loss and {spec.optimizer.cls} optimizer, "
                "behind nnc's\nRuntime interface. Arrays in and out are NumPy, batch first, "
                "channels-first;\nweights, gradients and optimizer state are canonical "
                "(docs/semantics.md),\nconverted to and from the layers' own layouts."
            )
        else:
            w.docstring(
                f"{m.name} behind nnc's Runtime interface, for inference only: the training\n"
                "methods raise TrainingError(NOT_TRAINABLE). Arrays in and out are NumPy,\n"
                "batch first, channels-first; weights are canonical (docs/semantics.md)."
            )
        w.blank()
        w.line('backend = "tensorflow"')
        w.blank()
        _emit_init(w, spec, trains)
        w.blank()
        _emit_graphs(w, spec, trains)
        _emit_interface(w, spec, trains)
        _emit_conversions(w, spec, trains)


def _emit_init(w: CodeWriter, spec: RuntimeSpec, trains: bool) -> None:
    signature = f"self, weights=None, seed={spec.seed}"
    if trains:
        signature += ", jit_compile=JIT_COMPILE, strategy=None"
    with w.block(f"def __init__({signature}):"):
        if trains:
            w.line("# Data-parallel training runs under a tf.distribute strategy with one")
            w.line("# replica per worker (MultiWorkerMirroredStrategy), which mirrors the")
            w.line("# variables; alone, under the default strategy, which changes nothing.")
            w.line("self.strategy = strategy or tf.distribute.get_strategy()")
            w.line("resolver = self.strategy.cluster_resolver")
            w.line("self.rank = resolver.task_id if resolver is not None else 0")
            w.line("self.world_size = self.strategy.num_replicas_in_sync")
        if spec.dropout:
            w.line("self.generator = tf.random.Generator.from_seed(seed)  # dropout masks")
        if trains:
            with w.block("with self.strategy.scope():"):
                _emit_variables(w, spec)
        else:
            _emit_variables(w, spec)
        w.line("self.set_weights(initial_weights(seed) if weights is None else weights)")
        w.line("# Compiled graphs. The batch and named dims stay unknown (None), so one")
        w.line("# trace serves every batch. The forward pass has no Python control flow on")
        w.line("# tensors, so it is traced without AutoGraph's rewriting (4x the trace time).")
        specs = ", ".join(
            f"spec({py_literal(i.type.shape)}, tf.{i.type.dtype})" for i in spec.model.inputs
        )
        w.line(f"inputs = [{specs}]")
        for name, method in (("_predict", "_outputs"), ("_predict_training", "_training_outputs")):
            w.line(f"self.{name} = tf.function(")
            w.line(f"    self.{method}, input_signature=inputs, autograph=False")
            w.line(")")
        if trains:
            w.line("target = spec(OUTPUT_SHAPE, tf.float32)")
            w.line("scalar = tf.TensorSpec([], tf.float32)")
            w.line("self._loss = tf.function(self._evaluate, input_signature=[*inputs, target])")
            w.line("self._differentiate = tf.function(")
            w.line("    self._loss_and_gradients, input_signature=[*inputs, target]")
            w.line(")")
            w.line("self._step = tf.function(")
            w.line("    self._train,")
            w.line("    input_signature=[*inputs, target, scalar, scalar],")
            w.line("    jit_compile=jit_compile,")
            w.line(")")
            w.line("self._sum = tf.function(")
            w.line(
                "    self._sum_over_replicas, input_signature=[tf.TensorSpec([None], tf.float64)]"
            )
            w.line(")")


def _emit_variables(w: CodeWriter, spec: RuntimeSpec) -> None:
    if spec.dropout:
        w.line(f"self.model = {spec.class_name}(self.generator)")
    else:
        w.line(f"self.model = {spec.class_name}()")
    w.line("# Canonical name -> (layer, parameter, variable), in nnc's order.")
    w.line("self.parameters = dict(named_parameters(self.model))")
    if spec.optimizer is not None:
        w.line(
            "self.trained = [name for name, (*_, var) in self.parameters.items() if var.trainable]"
        )
        w.line("self.variables = [self.parameters[name][2] for name in self.trained]")
        if spec.l2 > 0:
            w.line("self.decayed = [name in DECAYED for name in self.trained]")
        w.line(f"self.optimizer = {spec.optimizer.constructor('self.variables')}")


def _emit_graphs(w: CodeWriter, spec: RuntimeSpec, trains: bool) -> None:
    w.line("# -- the graphs ---------------------------------------------------------------")
    w.blank()
    args = ", ".join(spec.params)
    with w.block(f"def _outputs(self, {args}):"):
        w.line(f"return self.model({args})")
    w.blank()
    with w.block(f"def _training_outputs(self, {args}):"):
        w.line(f"return self.model({args}, training=True)")
    w.blank()
    if not trains or spec.loss is None:
        return
    loss = loss_name(spec.loss)
    x = spec.params[0]
    with w.block(f"def _train(self, {x}, target, lr, share):"):
        w.docstring(
            "One update; returns the loss before it. Each replica (one per worker; one\n"
            "alone) runs _replica_step on its slice of the global batch."
        )
        w.line(f"return self.strategy.run(self._replica_step, args=({x}, target, lr, share))")
    w.blank()
    with w.block(f"def _replica_step(self, {x}, target, lr, share):"):
        with w.block("with tf.GradientTape() as tape:"):
            w.line(f"loss = {loss}(self.model({x}, training=True), target)")
            w.line("# The global batch's loss is the sum over the replicas of share * loss.")
            w.line("weighted = loss * share")
        w.line("gradients = tape.gradient(")
        w.line("    weighted, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO")
        w.line(")")
        if spec.embedding:
            w.line("# An embedding's gradient arrives as IndexedSlices; the update wants a tensor.")
            w.line("gradients = [tf.convert_to_tensor(g) for g in gradients]")
        if spec.trainable:
            w.line("replicas = tf.distribute.get_replica_context()")
            w.line("gradients = replicas.all_reduce(tf.distribute.ReduceOp.SUM, gradients)")
        if spec.l2 > 0:
            w.line("gradients = [")
            w.line("    g + L2 * p if decayed else g")
            w.line("    for g, p, decayed in zip(gradients, self.variables, self.decayed)")
            w.line("]")
        w.line("self.optimizer.apply(gradients, self.variables, lr)")
        w.line("return loss")
    w.blank()
    with w.block("def _sum_over_replicas(self, values):"):
        w.line("return self.strategy.run(self._replica_sum, args=(values,))")
    w.blank()
    with w.block("def _replica_sum(self, values):"):
        w.line("replicas = tf.distribute.get_replica_context()")
        w.line("# all_reduce wants a tensor made in the replica's graph, not its input")
        w.line("return replicas.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(values))")
    w.blank()
    with w.block(f"def _evaluate(self, {x}, target):"):
        w.line(f"return {loss}(self.model({x}), target)")
    w.blank()
    with w.block(f"def _loss_and_gradients(self, {x}, target):"):
        w.docstring("The loss in training mode and its gradient for every trained variable.")
        with w.block("with tf.GradientTape() as tape:"):
            w.line(f"loss = {loss}(self.model({x}, training=True), target)")
        w.line("gradients = tape.gradient(")
        w.line("    loss, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO")
        w.line(")")
        if spec.embedding:
            w.line("# An embedding's gradient arrives as IndexedSlices; the update wants a tensor.")
            w.line("gradients = [tf.convert_to_tensor(g) for g in gradients]")
        w.line("return loss, gradients")
    w.blank()


def _emit_interface(w: CodeWriter, spec: RuntimeSpec, trains: bool) -> None:
    w.line("# -- nnc's Runtime interface -------------------------------------------------")
    w.blank()
    outputs = len(spec.model.outputs)
    with w.block("def forward(self, *inputs, training=False):"):
        w.docstring(
            "Outputs for a batch"
            + ("; a tuple of arrays, one per output." if outputs > 1 else ".")
            + (
                "\n\nIn training mode batchnorm uses batch statistics but, as everywhere\n"
                "outside train_step, leaves its running statistics alone."
                if spec.buffers
                else ""
            )
        )
        w.line("tensors = self._inputs(inputs)")
        if spec.buffers:
            with w.block("if training:"):
                w.line("with self._buffers_kept():")
                w.line("    outputs = self._predict_training(*tensors)")
            with w.block("else:"):
                w.line("outputs = self._predict(*tensors)")
        else:
            w.line("outputs = (self._predict_training if training else self._predict)(*tensors)")
        if outputs > 1:
            w.line("return tuple(o.numpy() for o in outputs)")
        else:
            w.line("return outputs.numpy()")
    w.blank()
    if trains:
        with w.block("def train_step(self, x, y, lr, share=1.0):"):
            w.docstring(
                "One update on one batch; returns the batch loss before the update.\n\n"
                "A data-parallel worker passes its slice of the global batch and `share`,\n"
                "the weight of its slice's loss in the global batch's loss (see fit), so\n"
                "that the update follows the gradient of the whole global batch."
            )
            w.line("inputs, target = self._inputs([x]), self._target(y)")
            w.line("lr, share = tf.constant(lr, tf.float32), tf.constant(share, tf.float32)")
            w.line("return float(self._step(*inputs, target, lr, share))")
        w.blank()
        with w.block("def all_reduce(self, values):"):
            w.docstring(
                "The sum of a vector over the data-parallel workers, each of which must\n"
                "call it; in one process, the vector itself."
            )
            w.line("return self._sum(tf.constant(values, tf.float64)).numpy()")
        w.blank()
        with w.block("def loss(self, x, y):"):
            w.docstring("The loss in evaluation mode (no dropout, running batchnorm statistics).")
            w.line("return float(self._loss(*self._inputs([x]), self._target(y)))")
        w.blank()
        with w.block("def gradients(self, x, y):"):
            w.docstring(
                "d(loss)/d(param) for every trained parameter, in training mode, canonical\n"
                "layout (L2 not included); nothing is updated."
            )
            w.line("inputs, target = self._inputs([x]), self._target(y)")
            if spec.buffers:
                with w.block("with self._buffers_kept():"):
                    w.line("_, gradients = self._differentiate(*inputs, target)")
            else:
                w.line("_, gradients = self._differentiate(*inputs, target)")
            w.line("return {")
            w.line(
                "    name: self._canonical(name, g.numpy()) "
                "for name, g in zip(self.trained, gradients)"
            )
            w.line("}")
    else:
        for method, args in (("train_step", "x, y, lr"), ("loss", "x, y"), ("gradients", "x, y")):
            with w.block(f"def {method}(self, {args}):"):
                w.line("raise TrainingError(NOT_TRAINABLE)")
            w.blank()
    w.blank()
    with w.block("def seed(self, seed):"):
        if spec.dropout and trains:
            w.docstring(
                "Reseed the generator of dropout masks; each data-parallel worker adds its\n"
                "rank, so their masks differ."
            )
            w.line("self.generator.reset_from_seed(seed + self.rank)")
        elif spec.dropout:
            w.docstring("Reseed the generator of dropout masks.")
            w.line("self.generator.reset_from_seed(seed)")
        else:
            w.docstring("Reseed the random generator; this model draws no random numbers.")
    w.blank()
    with w.block("def get_weights(self):"):
        w.line("weights = {}")
        with w.block("for name, (layer, param, var) in self.parameters.items():"):
            w.line("weights[name] = layer.to_canonical(param, var.numpy())")
        w.line("return weights")
    w.blank()
    with w.block("def set_weights(self, weights):"):
        w.line('self._check_names(weights, self.parameters, "weights")')
        with w.block("for name, (*_, var) in self.parameters.items():"):
            w.line('var.assign(self._native(name, weights[name], SHAPES[name], "weight"))')
    w.blank()
    if trains:
        with w.block("def get_optimizer_state(self):"):
            w.line('state = {"step": np.array(self.optimizer.step.numpy(), dtype=np.int64)}')
            with (
                w.block("for slot, variables in self.optimizer.state().items():"),
                w.block("for name, var in zip(self.trained, variables):"),
            ):
                w.line('state[f"{name}.{slot}"] = self._canonical(name, var.numpy())')
            w.line("return state")
        w.blank()
        with w.block("def set_optimizer_state(self, state):"):
            w.line("slots = self.optimizer.state()")
            w.line('names = ["step", *(f"{n}.{s}" for s in slots for n in self.trained)]')
            w.line('self._check_names(state, names, "optimizer state")')
            w.line('self.optimizer.step.assign(int(np.asarray(state["step"])))')
            with (
                w.block("for slot, variables in slots.items():"),
                w.block("for name, var in zip(self.trained, variables):"),
            ):
                w.line('key = f"{name}.{slot}"')
                w.line("var.assign(self._native(name, state[key], SHAPES[name], key))")
    else:
        with w.block("def get_optimizer_state(self):"):
            w.line("raise TrainingError(NOT_TRAINABLE)")
        w.blank()
        with w.block("def set_optimizer_state(self, state):"):
            w.line("raise TrainingError(NOT_TRAINABLE)")
    w.blank()


def _emit_conversions(w: CodeWriter, spec: RuntimeSpec, trains: bool) -> None:
    w.line("# -- conversions at the boundary ---------------------------------------------")
    w.blank()
    with w.block("def _inputs(self, arrays):"):
        with w.block("if len(arrays) != len(INPUTS):"):
            w.line("raise InputError(")
            # The name goes inside an f-string: only an identifier may (no braces).
            name = py_identifier(spec.model.name, "model name")
            w.line(f'    f"{name} takes {{len(INPUTS)}} input(s). Received: {{len(arrays)}}"')
            w.line(")")
        w.line("tensors = []")
        with w.block("for array, (name, shape, dtype) in zip(arrays, INPUTS):"):
            w.line("tensor = as_batch(array, f\"input '{name}'\", shape, dtype)")
            if spec.vocab:
                with w.block("if name in VOCAB and tf.size(tensor) > 0:"):
                    w.line("low, high = int(tf.reduce_min(tensor)), int(tf.reduce_max(tensor))")
                    with w.block("if low < 0 or high >= VOCAB[name]:"):
                        w.line("raise InputError(")
                        w.line("    f\"input '{name}' holds ids in [0, {VOCAB[name]}). \"")
                        w.line('    f"Received: ids from {low} to {high}"')
                        w.line(")")
            w.line("tensors.append(tensor)")
        w.line("return tensors")
    w.blank()
    if trains:
        with w.block("def _target(self, y):"):
            w.line('return as_batch(y, "target", OUTPUT_SHAPE, "float32")')
        w.blank()
    with w.block("def _canonical(self, name, array):"):
        w.line("layer, param, _ = self.parameters[name]")
        w.line("return layer.to_canonical(param, array)")
    w.blank()
    with w.block("def _native(self, name, value, shape, what):"):
        w.line("array = np.asarray(value, dtype=np.float32)")
        with w.block("if array.shape != shape:"):
            w.line("raise InputError(")
            w.line("    f\"{what} '{name}' must have shape {list(shape)}. \"")
            w.line('    f"Received: {list(array.shape)}"')
            w.line(")")
        w.line("layer, param, _ = self.parameters[name]")
        w.line("return layer.to_native(param, array)")
    w.blank()
    w.line("@staticmethod")
    with w.block("def _check_names(given, expected, what):"):
        w.line("missing = [n for n in expected if n not in given]")
        w.line("unknown = [n for n in given if n not in expected]")
        with w.block("if missing or unknown:"):
            w.line("raise InputError(")
            w.line("    f\"{what} do not fit the model: missing {missing or 'nothing'}, \"")
            w.line("    f\"unknown {unknown or 'nothing'}\"")
            w.line(")")
    if spec.buffers:
        w.blank()
        w.line("@contextlib.contextmanager")
        with w.block("def _buffers_kept(self):"):
            w.docstring("Put the buffers back afterwards: only train_step moves them.")
            w.line("saved = {name: self.parameters[name][2].numpy() for name in BUFFERS}")
            with w.block("try:"):
                w.line("yield")
            with w.block("finally:"), w.block("for name, value in saved.items():"):
                w.line("self.parameters[name][2].assign(value)")
