"""nnc's runtime adapter for NumPy: the Runtime interface around a plain generated
module.

The generated module holds what varies per model: its model class (forward
propagation and the written-out backpropagation), ``PARAMETERS``, ``compute_loss``,
``make_optimizer``, the schedule and ``fit``. This module holds what is the same for
every model, as ordinary code:

- :class:`Player`: one generated model object with its optimizer, under nnc's
  canonical names (weights and optimizer state checked by name and shape);
- :class:`NumpyRuntime`: :class:`nnc.backends.runtime.Runtime` for a supervised model,
  one player;
- :class:`NumpyGanRuntime`: :class:`nnc.backends.runtime.GanRuntime`, two players of
  the same machinery.

The training step and the GAN's rounds are those of :mod:`nnc.backends.numpy.learning`,
the code a generated module's ``fit`` runs too.

A training step allocates its temporaries afresh (patches, activations, gradients:
megabytes for a small CNN) and frees them all at its end. With glibc's default
thresholds the freed top of the heap goes back to the system, so the next step
page-faults all of it in again (zeroed pages: about 40% of a LeNet-5 step).
:func:`keep_freed_memory`, called when a runtime is built, tells glibc to keep it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from nnc.backends.numpy.learning import discriminator_round, generator_round, train_step

Arrays = dict[str, np.ndarray]

# One row of a generated PARAMETERS table: name, shape, initializer, fans, arguments.
ParameterRow = tuple[Any, ...]


# glibc's mallopt parameters (malloc.h) and the values keep_freed_memory sets.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD = 256 * 2**20  # free memory at the top of the heap that glibc keeps
MMAP_THRESHOLD = 32 * 2**20  # larger blocks are mapped (and unmapped) on their own
_kept = False


def keep_freed_memory() -> bool:
    """On glibc (Linux), make freed memory stay with the process for reuse: blocks of
    up to 32 MiB come from the heap, and up to 256 MiB of free heap top is kept
    rather than returned to the system, so that a training step's temporaries reuse
    the previous step's pages instead of faulting fresh zeroed ones in. Once per
    process; True when glibc took the settings. Elsewhere it does nothing."""
    global _kept
    if _kept or not sys.platform.startswith("linux"):
        return _kept
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _kept


def check_names(expected: Sequence[str], given: Mapping[str, Any], what: str) -> None:
    """A ValueError unless ``given`` holds exactly the names ``expected``."""
    missing = [name for name in expected if name not in given]
    unknown = sorted(set(given) - set(expected))
    if missing or unknown:
        raise ValueError(f"{what} do not fit: missing {missing}, unknown {unknown}")


def checked_array(value: Any, shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    """``value`` as a new array of ``dtype``; a ValueError unless it is ``shape``d."""
    array = np.array(value, dtype=dtype)
    if array.shape != shape:
        raise ValueError(f"{what} must have shape {list(shape)}. Received: {list(array.shape)}")
    return array


class Player:
    """One generated model object (``model.weights``, ``propagate``, ``backpropagate``)
    and its optimizer (a :class:`nnc.backends.numpy.learning.Optimizer`, or None for a
    model that cannot train), under the canonical names of ``parameters``."""

    def __init__(
        self, model: Any, parameters: Sequence[ParameterRow], optimizer: Any, what: str = ""
    ) -> None:
        self.model = model
        self.shapes: dict[str, tuple[int, ...]] = {row[0]: tuple(row[1]) for row in parameters}
        self.optimizer = optimizer
        self.what = what  # how error messages name the model ("generator ")

    @classmethod
    def build(
        cls,
        module: ModuleType,
        names: tuple[str, str, str],
        weights: Mapping[str, Any],
        dtype: Any = np.float32,
        what: str = "",
    ) -> Player:
        """A player of a generated module's model: ``names`` are its class, its
        parameter table and its optimizer's factory (absent for a model that cannot
        train), ``weights`` its canonical weights."""
        class_name, table, factory = names
        player = cls(
            getattr(module, class_name)({}, dtype=dtype), getattr(module, table), None, what
        )
        player.set_weights(weights)
        make = getattr(module, factory, None)
        player.optimizer = make(player.model.weights) if make is not None else None
        return player

    def get_weights(self) -> Arrays:
        """The canonical weights (copies)."""
        return {name: value.copy() for name, value in self.model.weights.items()}

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        """Load canonical weights: every tensor of the parameter table, in its shape."""
        check_names(list(self.shapes), weights, f"{self.what}weights")
        dtype = self.model.dtype
        self.model.weights = {
            name: checked_array(weights[name], shape, dtype, f"weight {name}")
            for name, shape in self.shapes.items()
        }

    def get_optimizer_state(self) -> Arrays:
        """The canonical optimizer state: 'step' and '<param>.<slot>' (copies)."""
        if self.optimizer is None:
            return {"step": np.array(0, dtype=np.int64)}
        state = {name: value.copy() for name, value in self.optimizer.state.items()}
        state["step"] = np.array(self.optimizer.steps, dtype=np.int64)
        return state

    def set_optimizer_state(self, state: Mapping[str, Any]) -> None:
        """Load optimizer state in the canonical names (from any backend)."""
        current: Mapping[str, np.ndarray] = {} if self.optimizer is None else self.optimizer.state
        expected = {"step", *current}
        if set(state) != expected:
            raise ValueError(
                f"optimizer state must hold {sorted(expected)}. Received: {sorted(state)}"
            )
        if self.optimizer is None:
            return
        dtype = self.model.dtype
        self.optimizer.state = {
            name: checked_array(state[name], value.shape, dtype, f"optimizer state {name}")
            for name, value in current.items()
        }
        self.optimizer.steps = int(state["step"])


class NumpyRuntime:
    """A generated model with its loss and optimizer: nnc's Runtime interface.

    Arrays are batch first and channels first; weights and optimizer state are
    canonical. ``model`` is the generated model object (the NumPy backend's native
    object); ``dtype`` is float32 or float64 (the reference).
    """

    backend = "numpy"

    def __init__(self, module: ModuleType, player: Player, seed: int = 0) -> None:
        self.module = module
        self.player = player
        self.model = player.model
        self.dtype = self.model.dtype
        self.trainable = hasattr(module, "compute_loss")
        self.seed(seed)
        keep_freed_memory()

    def seed(self, seed: int) -> None:
        """Reseed the generator of dropout masks."""
        self.model.rng = np.random.default_rng(seed)

    def forward(self, *inputs: np.ndarray, training: bool = False) -> Any:
        """The model's output (a tuple for several) for a batch."""
        return self.model.forward(*inputs, training=training)

    @property
    def weights(self) -> Arrays:
        """The model's weights themselves (not copies), by canonical name."""
        weights: Arrays = self.model.weights
        return weights

    def propagate(self, *inputs: np.ndarray, training: bool = False) -> tuple[Any, Any]:
        """The model's forward propagation: its output(s) and the cache."""
        return self.model.propagate(*inputs, training=training)

    def backpropagate(
        self, cache: Any, *d_outputs: np.ndarray, input_gradients: bool = False
    ) -> tuple[Arrays, Any]:
        """The model's backpropagation: the parameter gradients and the input ones."""
        return self.model.backpropagate(cache, *d_outputs, input_gradients=input_gradients)

    def _objective(self, x: Any, y: Any, training: bool) -> tuple[Any, Any, Any]:
        if not self.trainable:
            raise RuntimeError(self.module.NOT_TRAINABLE)
        inputs = x if isinstance(x, tuple) else (x,)
        output, cache = self.model.propagate(*inputs, training=training)
        loss, d_output = self.module.compute_loss(output, y)
        return loss, d_output, cache

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The loss in evaluation mode (no dropout, running batchnorm statistics)."""
        return float(self._objective(x, y, training=False)[0])

    def gradients(self, x: np.ndarray, y: np.ndarray) -> Arrays:
        """d loss / d parameter for every trainable parameter, in training mode; nothing
        is updated."""
        _, d_output, cache = self._objective(x, y, training=True)
        grads: Arrays = self.model.backpropagate(cache, d_output)[0]
        return grads

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One update on one batch; returns the loss before the update."""
        if not self.trainable:
            raise RuntimeError(self.module.NOT_TRAINABLE)
        module = self.module
        decayed = getattr(module, "DECAYED", ())
        l2 = getattr(module, "L2", 0.0)
        return train_step(
            self.model, self.player.optimizer, module.compute_loss, x, y, lr, l2, decayed
        )

    def apply_gradients(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        """The optimizer's update with given gradients, in place."""
        if self.player.optimizer is None:
            raise RuntimeError(self.module.NOT_TRAINABLE)
        self.player.optimizer.update(self.model.weights, grads, lr)

    def get_weights(self) -> Arrays:
        return self.player.get_weights()

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self.player.set_weights(weights)

    def get_optimizer_state(self) -> Arrays:
        return self.player.get_optimizer_state()

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.player.set_optimizer_state(state)


ROLES = ("generator", "discriminator")


def by_role(arrays: Mapping[str, Any], what: str) -> dict[str, dict[str, Any]]:
    """Split {'generator/<name>': ..., 'discriminator/<name>': ...} into one dict per
    model, keyed by the names without the role (a ValueError for a name without one)."""
    parts: dict[str, dict[str, Any]] = {role: {} for role in ROLES}
    for key, value in arrays.items():
        role, slash, name = key.partition("/")
        if not slash or role not in parts:
            raise ValueError(
                f"{what} '{key}' belongs to neither model: names start with "
                "'generator/' or 'discriminator/'"
            )
        parts[role][name] = value
    return parts


class NumpyGanRuntime:
    """A GAN recipe's generated module: the generator against the discriminator, each a
    :class:`Player` with its own optimizer; nnc's GanRuntime interface.

    Weights and optimizer state are canonical, each name after its model's role:
    'generator/<param>', 'discriminator/<param>', 'generator/step'. Both models draw
    their dropout masks from one generator, which ``seed`` reseeds.
    """

    backend = "numpy"

    def __init__(self, module: ModuleType, players: Mapping[str, Player], seed: int = 0) -> None:
        self.module = module
        self.players = {role: players[role] for role in ROLES}
        self.generator = self.players["generator"].model
        self.discriminator = self.players["discriminator"].model
        self.seed(seed)
        keep_freed_memory()

    def seed(self, seed: int) -> None:
        """Reseed the generator of dropout masks, which both models share."""
        rng = np.random.default_rng(seed)
        self.generator.rng = self.discriminator.rng = rng

    def generate(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        """G(z): samples for a batch of noise."""
        result: np.ndarray = self.generator.forward(z, training=training)
        return result

    def discriminate(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """D(x): the discriminator's logit or probability that each sample is real."""
        result: np.ndarray = self.discriminator.forward(x, training=training)
        return result

    def _mean(self, scores: np.ndarray) -> float:
        """The mean of D's outputs as probabilities."""
        return float(np.mean(self.module.probabilities(scores)))

    def discriminator_step(self, x: np.ndarray, z: np.ndarray, lr: float) -> dict[str, float]:
        """One update of D on real samples x and generated ones G(z); returns the loss,
        mean D(x) and mean D(G(z)) before the update."""
        loss, real_scores, fake_scores = discriminator_round(
            self.generator,
            self.discriminator,
            self.players["discriminator"].optimizer,
            self.module.discriminator_loss,
            x,
            z,
            lr,
        )
        return {
            "d_loss": loss,
            "d_real": self._mean(real_scores),
            "d_fake": self._mean(fake_scores),
        }

    def generator_step(self, z: np.ndarray, lr: float) -> dict[str, float]:
        """One update of G through D (D unchanged); returns the loss and mean D(G(z))
        before the update."""
        loss, scores = generator_round(
            self.generator,
            self.discriminator,
            self.players["generator"].optimizer,
            self.module.generator_loss,
            z,
            lr,
        )
        return {"g_loss": loss, "g_fake": self._mean(scores)}

    def _with_roles(self, arrays: Callable[[Player], Arrays]) -> Arrays:
        """``arrays(player)`` of both players, each name after its player's role."""
        return {
            f"{role}/{name}": value
            for role, player in self.players.items()
            for name, value in arrays(player).items()
        }

    def get_weights(self) -> Arrays:
        """The canonical weights of both models (copies), under their roles."""
        return self._with_roles(Player.get_weights)

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load the canonical weights of both models ('generator/<param>', ...)."""
        parts = by_role(weights, "weight")
        for role, player in self.players.items():
            player.set_weights(parts[role])

    def get_optimizer_state(self) -> Arrays:
        """Both optimizers' canonical state under their roles: 'generator/step',
        'discriminator/<param>.<slot>', ..."""
        return self._with_roles(Player.get_optimizer_state)

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load both optimizers' state, as get_optimizer_state returns it."""
        parts = by_role(state, "optimizer state")
        for role, player in self.players.items():
            player.set_optimizer_state(parts[role])


def build_runtime(
    module: ModuleType,
    class_name: str,
    weights: Mapping[str, np.ndarray] | None = None,
    dtype: Any = np.float32,
    seed: int = 0,
) -> NumpyRuntime:
    """The Runtime of a generated supervised module (weights default to its
    ``initial_weights(seed)``)."""
    weights = module.initial_weights(seed) if weights is None else weights
    names = (class_name, "PARAMETERS", "make_optimizer")
    return NumpyRuntime(module, Player.build(module, names, weights, dtype), seed)


def build_gan_runtime(
    module: ModuleType,
    class_names: Mapping[str, str],
    weights: Mapping[str, np.ndarray] | None = None,
    dtype: Any = np.float32,
    seed: int = 0,
) -> NumpyGanRuntime:
    """The GanRuntime of a generated GAN module: a player per role, by the class names
    of ``class_names``."""
    parts = by_role(module.initial_weights(seed) if weights is None else weights, "weight")
    players = {
        role: Player.build(
            module,
            (class_names[role], f"{role.upper()}_PARAMETERS", f"make_{role}_optimizer"),
            parts[role],
            dtype,
            f"{role} ",
        )
        for role in ROLES
    }
    return NumpyGanRuntime(module, players, seed)


__all__ = [
    "NumpyGanRuntime",
    "NumpyRuntime",
    "Player",
    "build_gan_runtime",
    "build_runtime",
    "by_role",
    "keep_freed_memory",
]
