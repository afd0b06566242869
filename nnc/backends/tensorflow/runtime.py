"""nnc's runtime adapter for TensorFlow: the Runtime interface around a plain generated
module.

The generated module holds what varies per model (its ``keras.Model`` classes,
the loss, ``make_optimizer``, the schedule); this module holds what is the same for
every model, as ordinary code:

- :class:`Player`: one generated model under nnc's canonical names, with its
  optimizer: canonical weights and optimizer state converted through the layers'
  ``to_native``/``to_canonical``, batchnorm statistics kept or restored;
- :class:`TensorflowRuntime`: :class:`nnc.backends.runtime.Runtime` for one model:
  NumPy in and out, compiled graphs (``tf.function``, the train step optionally
  XLA-compiled) and data parallelism under a ``tf.distribute`` strategy;
- :class:`TensorflowGanRuntime`: :class:`nnc.backends.runtime.GanRuntime`, two
  players of the same machinery.

Importing it imports TensorFlow; ``nnc.backends.tensorflow.build`` does so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import tensorflow as tf

from nnc.backends.tensorflow.errors import TensorflowInputError, TensorflowTrainingError
from nnc.backends.tensorflow.lowered import ModelInfo, Shape, Training

Arrays = dict[str, np.ndarray]
ZERO = tf.UnconnectedGradients.ZERO


def named_parameters(model: Any, prefix: str = "") -> Iterator[tuple[str, tuple[Any, str, Any]]]:
    """(canonical name, (layer, parameter, variable)) for every parameter and buffer, in
    nnc's order; a model used as a layer (it has ``parameter_layers()``) prefixes its
    names with the call's."""
    for node, layer in model.parameter_layers().items():
        if hasattr(layer, "parameter_layers"):
            yield from named_parameters(layer, f"{prefix}{node}.")
        else:
            for param, var in layer.parameters().items():
                # the tf.Variable a Keras variable wraps: the optimizer and the
                # gradient tape work on it directly
                yield f"{prefix}{node}.{param}", (layer, param, var.value)


def as_batch(value: Any, what: str, shape: Shape, dtype: str) -> tf.Tensor:
    """A NumPy batch as a tensor, checked against a per-sample shape (a name: any size)
    and converted to ``dtype``."""
    array = np.asarray(value)
    if dtype == "int64" and not np.issubdtype(array.dtype, np.integer):
        raise TensorflowInputError(f"{what} must hold integer ids. Received: dtype {array.dtype}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TensorflowInputError(f"{what} must hold real numbers. Received: dtype {array.dtype}")
    fits = array.ndim == len(shape) + 1 and all(
        isinstance(want, str) or want == got
        for want, got in zip(shape, array.shape[1:], strict=True)
    )
    if not fits:
        expected = ", ".join(["N", *map(str, shape)])
        raise TensorflowInputError(
            f"{what} must be a batch of shape [{expected}]. Received: shape {list(array.shape)}"
        )
    return tf.convert_to_tensor(array.astype(dtype, copy=False))


def spec(shape: Shape, dtype: tf.DType) -> tf.TensorSpec:
    """A TensorSpec for a batch; the batch and named dims stay unknown (None)."""
    return tf.TensorSpec([None, *(None if isinstance(d, str) else d for d in shape)], dtype)


def compiled(function: Callable[..., Any], **options: Any) -> Any:
    """``tf.function(function, **options)``, without the frequent-retracing warning:
    every runtime traces its own graphs once, but TensorFlow counts the traces of the
    adapter's shared code across all runtimes of a process (as Keras does not warn
    for its own train functions either)."""
    graph = tf.function(function, **options)
    graph._omit_frequent_tracing_warning = True
    return graph


def check_names(given: Mapping[str, Any], expected: Sequence[str], what: str, whole: str) -> None:
    missing = [n for n in expected if n not in given]
    unknown = [n for n in given if n not in expected]
    if missing or unknown:
        raise TensorflowInputError(
            f"{what} do not fit the {whole}: missing {missing or 'nothing'}, "
            f"unknown {unknown or 'nothing'}"
        )


class Player:
    """One generated model under nnc's canonical names (after ``prefix``), with its
    optimizer (``attach``). Weights, gradients and optimizer state go in and out
    canonical, converted by the layers' own ``to_native``/``to_canonical``."""

    def __init__(self, model: Any, info: ModelInfo, prefix: str = "") -> None:
        self.model = model
        self.info = info
        self.prefix = prefix
        # canonical name -> (layer, parameter, variable), in nnc's order
        self.parameters = {f"{prefix}{n}": entry for n, entry in named_parameters(model)}
        self.trained = [n for n, (*_, var) in self.parameters.items() if var.trainable]
        self.variables = [self.parameters[name][2] for name in self.trained]
        self.buffers = [self.parameters[f"{prefix}{name}"][2] for name in info.buffers]
        self.optimizer: Any = None

    def attach(self, make_optimizer: Callable[[list[Any]], Any]) -> None:
        self.optimizer = make_optimizer(self.variables)

    def gradients(self, tape: tf.GradientTape, loss: tf.Tensor) -> list[tf.Tensor]:
        gradients = tape.gradient(loss, self.variables, unconnected_gradients=ZERO)
        if self.info.embedding:
            # An embedding's gradient arrives as IndexedSlices; the update wants a tensor.
            gradients = [tf.convert_to_tensor(g) for g in gradients]
        return list(gradients)

    def saved_buffers(self) -> list[tf.Tensor]:
        """The running statistics, read inside a graph (assign them back with restore)."""
        return [tf.identity(var) for var in self.buffers]

    def restore(self, saved: list[tf.Tensor]) -> None:
        for var, value in zip(self.buffers, saved, strict=True):
            var.assign(value)

    @contextlib.contextmanager
    def buffers_kept(self) -> Iterator[None]:
        """Put the buffers back afterwards, eagerly: only the player's update moves them."""
        saved = [var.numpy() for var in self.buffers]
        try:
            yield
        finally:
            for var, value in zip(self.buffers, saved, strict=True):
                var.assign(value)

    def canonical(self, name: str, array: np.ndarray) -> np.ndarray:
        layer, param, _ = self.parameters[name]
        return np.asarray(layer.to_canonical(param, array))

    def native(self, name: str, value: Any, what: str) -> np.ndarray:
        array = np.asarray(value, dtype=np.float32)
        shape = self.info.shapes[name[len(self.prefix) :]]
        if array.shape != shape:
            raise TensorflowInputError(
                f"{what} '{name}' must have shape {list(shape)}. Received: {list(array.shape)}"
            )
        layer, param, _ = self.parameters[name]
        return np.asarray(layer.to_native(param, array))

    def get_weights(self) -> Arrays:
        return {
            name: self.canonical(name, var.numpy()) for name, (*_, var) in self.parameters.items()
        }

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        for name, (*_, var) in self.parameters.items():
            var.assign(self.native(name, weights[name], "weight"))

    def state_names(self) -> list[str]:
        slots = self.optimizer.state()
        return [f"{self.prefix}step", *(f"{n}.{s}" for s in slots for n in self.trained)]

    def get_optimizer_state(self) -> Arrays:
        state = {f"{self.prefix}step": np.array(self.optimizer.step.numpy(), dtype=np.int64)}
        for slot, variables in self.optimizer.state().items():
            for name, var in zip(self.trained, variables, strict=True):
                state[f"{name}.{slot}"] = self.canonical(name, var.numpy())
        return state

    def set_optimizer_state(self, state: Mapping[str, Any]) -> None:
        self.optimizer.step.assign(int(np.asarray(state[f"{self.prefix}step"])))
        for slot, variables in self.optimizer.state().items():
            for name, var in zip(self.trained, variables, strict=True):
                key = f"{name}.{slot}"
                var.assign(self.native(name, state[key], key))


def make_model(module: ModuleType, info: ModelInfo, random: tf.random.Generator | None) -> Any:
    cls = getattr(module, info.class_name)
    return cls(random) if info.dropout else cls()


class TensorflowRuntime:
    """A generated model with its loss and optimizer, behind nnc's Runtime interface.

    Arrays in and out are NumPy, batch first, channels-first; weights, gradients and
    optimizer state are canonical (docs/semantics.md). Under a ``tf.distribute``
    strategy with one replica per worker (``MultiWorkerMirroredStrategy``), which
    mirrors the variables, each train step sums the replicas' gradients; alone, under
    the default strategy, that changes nothing.
    """

    backend = "tensorflow"

    def __init__(
        self,
        module: ModuleType,
        info: ModelInfo,
        training: Training,
        weights: Mapping[str, np.ndarray],
        seed: int = 0,
        jit_compile: bool = False,
        strategy: Any = None,
    ) -> None:
        self.module = module
        self.info = info
        self.training = training
        self.strategy = strategy or tf.distribute.get_strategy()
        resolver = self.strategy.cluster_resolver
        self.rank = resolver.task_id if resolver is not None else 0
        self.world_size = self.strategy.num_replicas_in_sync
        self.generator = tf.random.Generator.from_seed(seed) if info.dropout else None
        trains = training.loss is not None
        with self.strategy.scope():
            self.model = make_model(module, info, self.generator)
            self.player = Player(self.model, info)
            if trains:
                self.player.attach(module.make_optimizer)
        l2 = float(getattr(module, "L2", 0.0))
        decayed: frozenset[str] = getattr(module, "L2_PARAMETERS", frozenset())
        self.l2 = [name in decayed for name in self.player.trained] if l2 > 0 else None
        self.l2_factor = l2
        self.set_weights(weights)
        # Compiled graphs. The batch and named dims stay unknown (None), so one trace
        # serves every batch. The forward pass has no Python control flow on tensors,
        # so it is traced without AutoGraph's rewriting (4x the trace time).
        inputs = [spec(shape, tf.as_dtype(dtype)) for _, shape, dtype in info.inputs]
        self._predict = compiled(self._outputs, input_signature=inputs, autograph=False)
        self._predict_training = compiled(
            self._training_outputs, input_signature=inputs, autograph=False
        )
        if not trains:
            return
        self.loss_function = getattr(module, str(training.loss))
        target = spec(training.output_shape, tf.float32)
        scalar = tf.TensorSpec([], tf.float32)
        self._loss = compiled(self._evaluate, input_signature=[inputs[0], target])
        self._differentiate = compiled(
            self._loss_and_gradients, input_signature=[inputs[0], target]
        )
        self._step = compiled(
            self._train,
            input_signature=[inputs[0], target, scalar, scalar],
            jit_compile=jit_compile,
        )
        self._sum = compiled(
            self._sum_over_replicas, input_signature=[tf.TensorSpec([None], tf.float64)]
        )

    # -- the graphs ---------------------------------------------------------------

    def _outputs(self, *inputs: tf.Tensor) -> Any:
        return self.model(*inputs)

    def _training_outputs(self, *inputs: tf.Tensor) -> Any:
        return self.model(*inputs, training=True)

    def _train(self, x: tf.Tensor, target: tf.Tensor, lr: tf.Tensor, share: tf.Tensor) -> Any:
        """One update; returns the loss before it. Each replica (one per worker; one
        alone) runs _replica_step on its slice of the global batch."""
        return self.strategy.run(self._replica_step, args=(x, target, lr, share))

    def _replica_step(
        self, x: tf.Tensor, target: tf.Tensor, lr: tf.Tensor, share: tf.Tensor
    ) -> tf.Tensor:
        player = self.player
        with tf.GradientTape() as tape:
            loss = self.loss_function(self.model(x, training=True), target)
            # The global batch's loss is the sum over the replicas of share * loss.
            weighted = loss * share
        gradients = player.gradients(tape, weighted)
        if player.variables:
            replicas = tf.distribute.get_replica_context()
            gradients = replicas.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        if self.l2 is not None:
            # L2 regularisation (not decoupled weight decay): L2 * p added to the gradient
            gradients = [
                g + self.l2_factor * p if decayed else g
                for g, p, decayed in zip(gradients, player.variables, self.l2, strict=True)
            ]
        player.optimizer.apply(gradients, player.variables, lr)
        return loss

    def _sum_over_replicas(self, values: tf.Tensor) -> Any:
        return self.strategy.run(self._replica_sum, args=(values,))

    def _replica_sum(self, values: tf.Tensor) -> Any:
        replicas = tf.distribute.get_replica_context()
        # all_reduce wants a tensor made in the replica's graph, not its input
        return replicas.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(values))

    def _evaluate(self, x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        return self.loss_function(self.model(x), target)

    def _loss_and_gradients(self, x: tf.Tensor, target: tf.Tensor) -> Any:
        """The loss in training mode and its gradient for every trained variable."""
        with tf.GradientTape() as tape:
            loss = self.loss_function(self.model(x, training=True), target)
        return loss, self.player.gradients(tape, loss)

    # -- nnc's Runtime interface -------------------------------------------------

    def forward(self, *inputs: Any, training: bool = False) -> Any:
        """Outputs for a batch (a tuple of arrays for several outputs). In training
        mode batchnorm uses batch statistics but, as everywhere outside train_step,
        leaves its running statistics alone."""
        tensors = self._inputs(inputs)
        if training:
            with self.player.buffers_kept():
                outputs = self._predict_training(*tensors)
        else:
            outputs = self._predict(*tensors)
        if self.info.outputs > 1:
            return tuple(o.numpy() for o in outputs)
        return outputs.numpy()

    def _trains(self) -> None:
        if self.training.loss is None:
            raise TensorflowTrainingError(self.training.reason)

    def train_step(self, x: Any, y: Any, lr: float, share: float = 1.0) -> float:
        """One update on one batch; returns the batch loss before the update.

        A data-parallel worker passes its slice of the global batch and ``share``, the
        weight of its slice's loss in the global batch's loss, so that the update
        follows the gradient of the whole global batch."""
        self._trains()
        inputs, target = self._inputs([x]), self._target(y)
        rate, weight = tf.constant(lr, tf.float32), tf.constant(share, tf.float32)
        return float(self._step(*inputs, target, rate, weight))

    def all_reduce(self, values: Any) -> np.ndarray:
        """The sum of a vector over the data-parallel workers, each of which must call
        it; in one process, the vector itself."""
        self._trains()
        return np.asarray(self._sum(tf.constant(values, tf.float64)).numpy())

    def loss(self, x: Any, y: Any) -> float:
        """The loss in evaluation mode (no dropout, running batchnorm statistics)."""
        self._trains()
        return float(self._loss(*self._inputs([x]), self._target(y)))

    def gradients(self, x: Any, y: Any) -> Arrays:
        """d(loss)/d(param) for every trained parameter, in training mode, canonical
        layout (L2 not included); nothing is updated."""
        self._trains()
        inputs, target = self._inputs([x]), self._target(y)
        with self.player.buffers_kept():
            _, gradients = self._differentiate(*inputs, target)
        trained = self.player.trained
        return {
            name: self.player.canonical(name, g.numpy())
            for name, g in zip(trained, gradients, strict=True)
        }

    def seed(self, seed: int) -> None:
        """Reseed the generator of dropout masks; each data-parallel worker adds its
        rank, so their masks differ."""
        if self.generator is not None:
            self.generator.reset_from_seed(seed + self.rank)

    def get_weights(self) -> Arrays:
        return self.player.get_weights()

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        check_names(weights, list(self.player.parameters), "weights", "model")
        self.player.set_weights(weights)

    def get_optimizer_state(self) -> Arrays:
        self._trains()
        return self.player.get_optimizer_state()

    def set_optimizer_state(self, state: Mapping[str, Any]) -> None:
        self._trains()
        check_names(state, self.player.state_names(), "optimizer state", "model")
        self.player.set_optimizer_state(state)

    # -- conversions at the boundary ---------------------------------------------

    def _inputs(self, arrays: Sequence[Any]) -> list[tf.Tensor]:
        expected = self.info.inputs
        if len(arrays) != len(expected):
            raise TensorflowInputError(
                f"{self.info.class_name} takes {len(expected)} input(s). Received: {len(arrays)}"
            )
        tensors = []
        for array, (name, shape, dtype) in zip(arrays, expected, strict=True):
            tensor = as_batch(array, f"input '{name}'", shape, dtype)
            limit = self.info.vocab.get(name)
            if limit is not None and tf.size(tensor) > 0:
                low, high = int(tf.reduce_min(tensor)), int(tf.reduce_max(tensor))
                if low < 0 or high >= limit:
                    raise TensorflowInputError(
                        f"input '{name}' holds ids in [0, {limit}). "
                        f"Received: ids from {low} to {high}"
                    )
            tensors.append(tensor)
        return tensors

    def _target(self, y: Any) -> tf.Tensor:
        return as_batch(y, "target", self.training.output_shape, "float32")


ROLES = ("generator", "discriminator")


class TensorflowGanRuntime:
    """A GAN recipe's two generated models, each a :class:`Player` with its own
    optimizer, behind nnc's GanRuntime interface (docs/semantics.md, "GAN").

    Weights and optimizer state are canonical, each name after its model's role
    (``generator/<param>``, ``discriminator/step``...). The discriminator step runs the
    generator before opening its gradient tape, so only the discriminator's variables
    are differentiated; the generator step tapes both models and differentiates with
    respect to the generator's variables alone. Batchnorm running statistics move only
    for the model being updated: each step reads the other model's and assigns them
    back inside the same graph.
    """

    backend = "tensorflow"

    def __init__(
        self,
        module: ModuleType,
        infos: Mapping[str, ModelInfo],
        weights: Mapping[str, np.ndarray],
        from_logits: bool,
        seed: int = 0,
    ) -> None:
        self.module = module
        dropout = any(info.dropout for info in infos.values())
        self.random = tf.random.Generator.from_seed(seed) if dropout else None
        self.players: dict[str, Player] = {}
        for role in ROLES:
            model = make_model(module, infos[role], self.random)
            self.players[role] = Player(model, infos[role], f"{role}/")
            setattr(self, role, model)
        for role, player in self.players.items():
            player.attach(getattr(module, f"make_{role}_optimizer"))
        self.from_logits = from_logits
        self.noise_shape = infos["generator"].inputs[0][1]
        self.sample_shape = infos["discriminator"].inputs[0][1]
        self.set_weights(weights)
        # Compiled graphs; the batch dim stays unknown (None), so one trace serves all.
        noise, samples = spec(self.noise_shape, tf.float32), spec(self.sample_shape, tf.float32)
        lr = tf.TensorSpec([], tf.float32)
        self._generate = compiled(self._generated, input_signature=[noise])
        self._generate_training = compiled(self._generated_training, input_signature=[noise])
        self._discriminate = compiled(self._discriminated, input_signature=[samples])
        self._discriminate_training = compiled(
            self._discriminated_training, input_signature=[samples]
        )
        self._discriminator_step = compiled(
            self._train_discriminator, input_signature=[samples, noise, lr]
        )
        self._generator_step = compiled(self._train_generator, input_signature=[noise, lr])

    # -- the graphs ---------------------------------------------------------------

    def _mean(self, scores: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.sigmoid(scores) if self.from_logits else scores)

    def _run(self, role: str, x: tf.Tensor) -> tf.Tensor:
        """A training-mode pass of one model that leaves its running statistics alone."""
        player = self.players[role]
        saved = player.saved_buffers()
        output = player.model(x, training=True)
        player.restore(saved)
        return output

    def _generated(self, z: tf.Tensor) -> tf.Tensor:
        return self.players["generator"].model(z)

    def _generated_training(self, z: tf.Tensor) -> tf.Tensor:
        return self._run("generator", z)

    def _discriminated(self, x: tf.Tensor) -> tf.Tensor:
        return self.players["discriminator"].model(x)

    def _discriminated_training(self, x: tf.Tensor) -> tf.Tensor:
        return self._run("discriminator", x)

    def _train_discriminator(self, x: tf.Tensor, z: tf.Tensor, lr: tf.Tensor) -> Any:
        """One update of the discriminator; returns the loss, mean D(x) and mean D(G(z))
        before it. The generated batch is made before the tape opens."""
        d = self.players["discriminator"]
        fake = self._run("generator", z)
        with tf.GradientTape() as tape:
            real_scores = d.model(x, training=True)
            fake_scores = d.model(fake, training=True)
            loss = self.module.discriminator_loss(real_scores, fake_scores)
        d.optimizer.apply(d.gradients(tape, loss), d.variables, lr)
        return loss, self._mean(real_scores), self._mean(fake_scores)

    def _train_generator(self, z: tf.Tensor, lr: tf.Tensor) -> Any:
        """One update of the generator through the discriminator, whose variables are
        not differentiated; returns the loss and mean D(G(z)) before it."""
        g, d = self.players["generator"], self.players["discriminator"]
        saved = d.saved_buffers()
        with tf.GradientTape() as tape:
            scores = d.model(g.model(z, training=True), training=True)
            loss = self.module.generator_loss(scores)
        d.restore(saved)
        g.optimizer.apply(g.gradients(tape, loss), g.variables, lr)
        return loss, self._mean(scores)

    # -- nnc's GanRuntime interface ----------------------------------------------

    def generate(self, z: Any, training: bool = False) -> np.ndarray:
        """G(z): samples for a batch of noise."""
        tensor = as_batch(z, "noise", self.noise_shape, "float32")
        return np.asarray((self._generate_training if training else self._generate)(tensor))

    def discriminate(self, x: Any, training: bool = False) -> np.ndarray:
        """D(x): the logit (or probability) that each sample is real."""
        tensor = as_batch(x, "samples", self.sample_shape, "float32")
        graph = self._discriminate_training if training else self._discriminate
        return np.asarray(graph(tensor))

    def discriminator_step(self, x: Any, z: Any, lr: float) -> dict[str, float]:
        """One update of the discriminator on real samples x and generated ones G(z),
        both in training mode; the generator does not change. Returns the loss, mean
        D(x) and mean D(G(z)) before the update."""
        real = as_batch(x, "samples", self.sample_shape, "float32")
        noise = as_batch(z, "noise", self.noise_shape, "float32")
        loss, d_real, d_fake = self._discriminator_step(real, noise, tf.constant(lr, tf.float32))
        return {"d_loss": float(loss), "d_real": float(d_real), "d_fake": float(d_fake)}

    def generator_step(self, z: Any, lr: float) -> dict[str, float]:
        """One update of the generator through the discriminator, which does not change.
        Returns the loss and mean D(G(z)) before the update."""
        noise = as_batch(z, "noise", self.noise_shape, "float32")
        loss, fake = self._generator_step(noise, tf.constant(lr, tf.float32))
        return {"g_loss": float(loss), "g_fake": float(fake)}

    def seed(self, seed: int) -> None:
        """Reseed the generator of dropout masks, which both models share."""
        if self.random is not None:
            self.random.reset_from_seed(seed)

    def get_weights(self) -> Arrays:
        """Canonical weights of both models, buffers included, under their roles."""
        return {k: v for player in self.players.values() for k, v in player.get_weights().items()}

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        """Load canonical weights of both models ('generator/<param>', ...)."""
        names = [n for player in self.players.values() for n in player.parameters]
        check_names(weights, names, "weights", "GAN")
        for player in self.players.values():
            player.set_weights(weights)

    def get_optimizer_state(self) -> Arrays:
        """Both optimizers' canonical state: '<role>/step' and '<role>/<param>.<slot>'."""
        state: Arrays = {}
        for player in self.players.values():
            state |= player.get_optimizer_state()
        return state

    def set_optimizer_state(self, state: Mapping[str, Any]) -> None:
        """Load both optimizers' state, as get_optimizer_state returns it."""
        names = [n for player in self.players.values() for n in player.state_names()]
        check_names(state, names, "optimizer state", "GAN")
        for player in self.players.values():
            player.set_optimizer_state(state)
