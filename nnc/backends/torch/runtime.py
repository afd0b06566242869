"""nnc's runtime adapter for PyTorch: the Runtime interface around a plain generated
module.

The generated module holds what varies per model (its ``nn.Module`` classes, the
loss, the optimizer, the schedule); this module holds what is the same for every
model, as ordinary code:

- :class:`Player`: one ``nn.Module`` with its optimizer, under nnc's canonical
  names: canonical weights (from the IR's parameter list and the lowering's torch
  names), optimizer state mapped to canonical slots, batchnorm statistics saved and
  restored;
- :class:`TorchRuntime`: :class:`nnc.backends.runtime.Runtime` (and
  ``DataParallelRuntime``) for a supervised model: NumPy in and out, devices,
  ``DistributedDataParallel`` under torchrun;
- :class:`TorchGanRuntime`: :class:`nnc.backends.runtime.GanRuntime`, two players
  of the same machinery.

Importing it imports torch; ``nnc.backends.torch.build`` does so.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nnc.backends.torch.distributed import use_global_batchnorm
from nnc.backends.torch.emit import Lowered
from nnc.backends.torch.gan import GanPart, LoweredGan
from nnc.backends.torch.training import counts_steps, state_slots
from nnc.ir.training import Optimizer

Arrays = dict[str, np.ndarray]


def as_tensor(
    array: Any, device: torch.device, dtype: type[np.generic] = np.float32
) -> torch.Tensor:
    """A NumPy array as a tensor on ``device``; on the CPU it shares the array's memory
    when the dtype fits (torch shares writable memory only)."""
    if not (isinstance(array, np.ndarray) and array.dtype == dtype and array.flags.writeable):
        array = np.array(array, dtype=dtype)
    tensor = torch.from_numpy(array)
    return tensor if device.type == "cpu" else tensor.to(device)


def load_arrays(tensors: Mapping[str, torch.Tensor], arrays: Mapping[str, Any], what: str) -> None:
    """Copy canonical ``arrays`` into ``tensors``, every one by name, shapes checked."""
    missing = [name for name in tensors if name not in arrays]
    unexpected = [name for name in arrays if name not in tensors]
    if missing or unexpected:
        raise KeyError(f"{what}: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        for name, tensor in tensors.items():
            value = torch.tensor(np.asarray(arrays[name], dtype=np.float32))
            if value.shape != tensor.shape:
                raise ValueError(
                    f"weight {name} has shape {list(value.shape)}; expected {list(tensor.shape)}"
                )
            tensor.copy_(value)


def numpy_copies(tensors: Mapping[str, torch.Tensor]) -> Arrays:
    return {name: t.detach().cpu().numpy().copy() for name, t in tensors.items()}


class Player:
    """One ``nn.Module`` under nnc's canonical names, with its optimizer.

    ``names`` are the canonical names of its parameters and buffers (the IR's), and
    ``torch_names`` those that torch stores under another name (layouts are equal).
    """

    def __init__(
        self,
        module: nn.Module,
        names: Sequence[str],
        torch_names: Mapping[str, str],
        statistics: bool,
    ) -> None:
        self.module = module
        found = dict(module.named_parameters()) | dict(module.named_buffers())
        # canonical name -> the torch tensor holding it, in the same layout
        self.tensors = {name: found[torch_names.get(name, name)] for name in names}
        self.trainable = {n: t for n, t in self.tensors.items() if t.requires_grad}
        # running statistics (batchnorm's), which only the player's own update moves
        self.buffers = list(module.buffers()) if statistics else []
        self.optimizer: torch.optim.Optimizer | None = None
        self.slots: dict[str, str] = {}
        self.counts_steps = False
        self.steps = 0  # updates so far (torch's SGD keeps no count)

    def attach(self, make: Callable[[nn.Module], torch.optim.Optimizer], spec: Optimizer) -> None:
        """Build the player's optimizer over its trainable parameters."""
        self.optimizer = make(self.module)
        self.slots = state_slots(spec)
        self.counts_steps = counts_steps(spec)

    def learning_rate(self, lr: float) -> None:
        assert self.optimizer is not None
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def statistics(self) -> list[torch.Tensor] | None:
        """A copy of the running statistics (None without any)."""
        return [buffer.clone() for buffer in self.buffers] if self.buffers else None

    def restore(self, statistics: list[torch.Tensor] | None) -> None:
        """Put the running statistics back: nnc's batchnorm statistics move only in the
        player's own update (torch moves them in every training-mode forward pass)."""
        if statistics is None:
            return
        with torch.no_grad():
            for buffer, saved in zip(self.buffers, statistics, strict=True):
                buffer.copy_(saved)

    def optimizer_state(self, prefix: str = "") -> Arrays:
        """``<prefix>step`` and ``<prefix><parameter>.<slot>`` for every trainable
        parameter and canonical slot (zeros before the first step)."""
        state = {f"{prefix}step": np.array(self.steps, dtype=np.int64)}
        held_by: Mapping[Any, Any] = self.optimizer.state if self.optimizer is not None else {}
        for name, tensor in self.trainable.items():
            held = held_by.get(tensor, {})
            for slot, torch_slot in self.slots.items():
                value = held.get(torch_slot)
                key = f"{prefix}{name}.{slot}"
                if value is None:
                    state[key] = np.zeros(tuple(tensor.shape), np.float32)
                else:
                    state[key] = value.detach().cpu().numpy().copy()
        return state

    def load_optimizer_state(
        self, state: Mapping[str, Any], device: torch.device, prefix: str = ""
    ) -> None:
        """Load what :meth:`optimizer_state` returns (its keys checked by the caller)."""
        self.steps = int(state[f"{prefix}step"])
        if not self.slots or self.optimizer is None:
            return
        for name, tensor in self.trainable.items():
            held = self.optimizer.state[tensor]
            for slot, torch_slot in self.slots.items():
                key = f"{prefix}{name}.{slot}"
                value = np.asarray(state[key], dtype=np.float32)
                if value.shape != tuple(tensor.shape):
                    raise ValueError(
                        f"optimizer state {key} has shape {list(value.shape)}; "
                        f"expected {list(tensor.shape)}"
                    )
                held[torch_slot] = torch.tensor(value, device=device)
            if self.counts_steps:
                held["step"] = torch.tensor(float(self.steps))  # torch's own count


def check_keys(expected: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    if missing or unexpected:
        raise KeyError(f"optimizer state does not fit: missing {missing}, unexpected {unexpected}")


class Precision:
    """How the forward passes compute (docs/training.md#precision): in float32, or
    ``mixed``, under ``torch.autocast``: float16 with dynamic loss scaling
    (``torch.amp.GradScaler``) on CUDA, bfloat16 on the CPU (float32's exponent
    range, so it needs no scaling). Parameters, gradients and optimizer state stay
    float32 either way."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in ("float32", "mixed"):
            raise ValueError(f"precision is 'float32' or 'mixed'. Received: {precision!r}")
        self.mixed = precision == "mixed"
        self.device_type = device.type
        self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if self.mixed and device.type == "cuda" else None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate ``loss`` and update: through the scaler when there is one (it
        skips a step whose gradients are not finite and lowers the scale)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def float32_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a NumPy array, float32 where autocast computed it in half precision
    (NumPy has no bfloat16)."""
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    result: np.ndarray = tensor.cpu().numpy()
    return result


def resolve(device: str) -> torch.device:
    parsed = torch.device(device)
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available")
    return parsed


class TorchRuntime:
    """A generated model with its loss and optimizer, NumPy arrays in and out.

    It implements nnc's Runtime interface: arrays are batch first, float32 and
    channels first; weights and optimizer state use nnc's canonical names and
    layouts, so they move to and from every other nnc backend. ``model`` is the
    generated ``nn.Module``; in data-parallel training ``network`` is its
    ``DistributedDataParallel`` wrapper, which the train steps run through.
    """

    backend = "torch"

    def __init__(
        self,
        module: ModuleType,
        lowered: Lowered,
        weights: Mapping[str, np.ndarray],
        device: str = "cpu",
        seed: int = 0,
        distributed: bool = False,
        precision: str = "float32",
    ) -> None:
        self.device = resolve(device)
        self.precision = Precision(precision, self.device)
        self.lowered = lowered
        self.model: nn.Module = getattr(module, lowered.class_name)().to(self.device)
        if distributed and lowered.batchnorm:
            use_global_batchnorm(self.model)  # statistics of the global batch
        self.player = Player(
            self.model, lowered.parameters, lowered.torch_names, statistics=lowered.buffers
        )
        self.tensors = self.player.tensors
        self.trainable = self.player.trainable
        self.set_weights(weights)
        # Data-parallel training (init_distributed): DistributedDataParallel runs the
        # train steps and averages the workers' gradients during backward.
        self.rank = dist.get_rank() if distributed else 0
        self.world_size = dist.get_world_size() if distributed else 1
        self.network: nn.Module = self.model
        if distributed and self.trainable:
            devices = [self.device.index] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=devices)
        recipe = lowered.recipe
        self.compute_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        if recipe is not None:
            self.compute_loss = module.compute_loss
            if self.trainable:  # make_optimizer exists when some parameter trains
                self.player.attach(module.make_optimizer, recipe.optimizer)
        self.optimizer = self.player.optimizer
        self._x_dtype = lowered.input_dtypes[0]
        self.seed(seed)

    @property
    def steps(self) -> int:
        return self.player.steps

    def seed(self, seed: int) -> None:
        """Reseed torch's generator, which draws the dropout masks; each data-parallel
        worker adds its rank, so their masks differ."""
        torch.manual_seed(seed + self.rank)

    def _mode(self, training: bool) -> None:
        if self.model.training != training:
            self.model.train(training)

    def _inputs(self, arrays: Sequence[Any]) -> list[torch.Tensor]:
        dtypes = self.lowered.input_dtypes
        if len(arrays) != len(dtypes):
            names = ", ".join(i.name for i in self.lowered.model.inputs)
            raise ValueError(
                f"{self.lowered.model.name} takes {len(dtypes)} input(s) ({names}). "
                f"Received: {len(arrays)}"
            )
        return [as_tensor(a, self.device, d) for a, d in zip(arrays, dtypes, strict=True)]

    def forward(self, *inputs: np.ndarray, training: bool = False) -> Any:
        """Outputs for a batch, as NumPy arrays (a tuple for several model outputs)."""
        self._mode(training)
        statistics = self.player.statistics() if training else None
        with torch.no_grad(), self.precision.autocast():
            outputs = self.model(*self._inputs(inputs))
        self.player.restore(statistics)
        if isinstance(outputs, tuple):
            return tuple(float32_numpy(output) for output in outputs)
        return float32_numpy(outputs)

    def get_weights(self) -> Arrays:
        """Canonical weights, buffers included, as NumPy copies."""
        return numpy_copies(self.tensors)

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights: every tensor of the model, by name."""
        load_arrays(self.tensors, weights, f"weights do not fit {self.lowered.model.name}")

    # -- training ------------------------------------------------------------------------

    def _loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if self.compute_loss is None:
            raise RuntimeError(self.lowered.no_training)
        return self.compute_loss

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float, share: float = 1.0) -> float:
        """One update on one batch; returns the batch loss before the update.

        A data-parallel worker passes its slice of the global batch and ``share``, the
        weight of its slice's loss in the global batch's loss, so that the update
        follows the gradient of the whole global batch."""
        return self.train_step_tensors(
            as_tensor(x, self.device, self._x_dtype), as_tensor(y, self.device), lr, share
        )

    def train_step_tensors(
        self, x: torch.Tensor, y: torch.Tensor, lr: float, share: float = 1.0
    ) -> float:
        """train_step on tensors already on the device, the target as compute_loss
        takes it."""
        compute_loss = self.compute_loss
        if compute_loss is None:
            raise RuntimeError(self.lowered.no_training)
        if not self.model.training:
            self.model.train(True)
        optimizer = self.optimizer
        if optimizer is None:
            with torch.no_grad(), self.precision.autocast():  # every parameter is frozen
                loss = compute_loss(self.network(x), y)
        else:
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            with self.precision.autocast():
                loss = compute_loss(self.network(x), y)
            # The global batch's loss is the sum over the workers of share * loss, and
            # DDP averages their gradients: hence the factor world_size. In one process
            # it is 1 and stays out of the graph (a multiply and its backward cost
            # microseconds a step).
            scale = share * self.world_size
            self.precision.step(loss if scale == 1.0 else loss * scale, optimizer)
        self.player.steps += 1
        return loss.item()

    def all_reduce(self, values: Any) -> np.ndarray:
        """The sum of a vector over the data-parallel workers, each of which must call
        it; in one process, the vector itself."""
        total = torch.tensor(np.asarray(values, dtype=np.float64), device=self.device)
        if self.world_size > 1:
            dist.all_reduce(total)
        result: np.ndarray = total.cpu().numpy()
        return result

    def close(self) -> None:
        """Leave the data-parallel process group, once training is done (every worker
        calls it); the weights stay readable. DistributedDataParallel is released
        first: a process that exits while DDP still holds its group may abort in
        torch's teardown. Without a group it does nothing."""
        self.network = self.model
        gc.collect()
        if dist.is_initialized():
            dist.destroy_process_group()

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The loss in evaluation mode (no dropout, running batchnorm statistics)."""
        compute_loss = self._loss()
        tx, ty = as_tensor(x, self.device, self._x_dtype), as_tensor(y, self.device)
        self._mode(False)
        with torch.no_grad(), self.precision.autocast():
            return float(compute_loss(self.model(tx), ty).item())

    def gradients(self, x: np.ndarray, y: np.ndarray) -> Arrays:
        """d(loss)/d(parameter) for every trainable parameter, in training mode; the
        running statistics are restored."""
        compute_loss = self._loss()
        if not self.trainable:
            return {}  # every parameter is frozen
        tx, ty = as_tensor(x, self.device, self._x_dtype), as_tensor(y, self.device)
        self._mode(True)
        statistics = self.player.statistics()
        loss = compute_loss(self.model(tx), ty)
        grads = torch.autograd.grad(loss, list(self.trainable.values()))
        self.player.restore(statistics)
        return {name: g.cpu().numpy() for name, g in zip(self.trainable, grads, strict=True)}

    def get_optimizer_state(self) -> Arrays:
        """Canonical optimizer state: "step", and "<parameter>.<slot>" per trainable
        parameter and slot (zeros before the first step)."""
        self._loss()
        return self.player.optimizer_state()

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical optimizer state, as get_optimizer_state returns it."""
        check_keys(self.get_optimizer_state(), state)
        self.player.load_optimizer_state(state, self.device)


def as_batch(array: Any, shape: tuple[int | str, ...], what: str) -> np.ndarray:
    """A NumPy batch as float32, checked against a per-sample shape (a name: any size)."""
    array = np.asarray(array, dtype=np.float32)
    fits = array.ndim == len(shape) + 1 and all(
        isinstance(want, str) or want == got
        for want, got in zip(shape, array.shape[1:], strict=False)
    )
    if not fits:
        expected = ", ".join(["N", *map(str, shape)])
        raise ValueError(
            f"{what} must be a batch of shape [{expected}]. Received: {list(array.shape)}"
        )
    return array


class TorchGanRuntime:
    """A GAN recipe: the generator against the discriminator, each a :class:`Player`
    with its optimizer, NumPy arrays in and out.

    It implements nnc's GanRuntime interface: weights and optimizer state use nnc's
    canonical names, each after its model's role ('generator/<param>',
    'discriminator/step', ...), so they move to and from every nnc backend. The
    discriminator step computes G(z) under ``no_grad`` (a constant for D's graph); the
    generator step backpropagates through D but asks autograd for G's gradients
    only, so D's ``.grad`` and weights stay as they were. Running statistics move only
    for the model being updated: the other player's are put back.
    """

    backend = "torch"

    def __init__(
        self,
        module: ModuleType,
        lowered: LoweredGan,
        weights: Mapping[str, np.ndarray],
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        self.device = resolve(device)
        self.lowered = lowered
        self.players: dict[str, Player] = {}
        self.shapes: dict[str, tuple[int | str, ...]] = {}
        for part in lowered.parts:
            model: nn.Module = getattr(module, part.class_name)().to(self.device)
            self.players[part.role] = Player(
                model, part.parameters, part.torch_names, statistics=part.buffers
            )
            self.shapes[part.role] = part.input.shape
        g, d = self.players["generator"], self.players["discriminator"]
        self.generator, self.discriminator = g.module, d.module
        # canonical name ('<role>/<param>') -> the torch tensor holding it
        self.tensors = {
            f"{role}/{name}": tensor
            for role, player in self.players.items()
            for name, tensor in player.tensors.items()
        }
        self.trainable = {role: player.trainable for role, player in self.players.items()}
        self.set_weights(weights)
        parts: dict[str, GanPart] = {part.role: part for part in lowered.parts}
        for role, player in self.players.items():
            player.attach(getattr(module, f"make_{role}_optimizer"), parts[role].optimizer)
        self.optimizers = {role: player.optimizer for role, player in self.players.items()}
        self._discriminator_loss = module.discriminator_loss
        self._generator_loss = module.generator_loss
        self._from_logits = lowered.recipe.from_logits
        self.seed(seed)

    @property
    def steps(self) -> dict[str, int]:
        return {role: player.steps for role, player in self.players.items()}

    def seed(self, seed: int) -> None:
        """Reseed torch's generator, which draws the dropout masks."""
        torch.manual_seed(seed)

    def _train(self, training: bool) -> None:
        self.generator.train(training)
        self.discriminator.train(training)

    def _tensor(self, array: Any, role: str, what: str) -> torch.Tensor:
        """A checked batch as a tensor on the device; on the CPU it shares the array's
        memory when it can (torch shares writable memory only)."""
        checked = as_batch(array, self.shapes[role], what)
        if not checked.flags.writeable:
            checked = checked.copy()
        tensor = torch.from_numpy(checked)
        return tensor if self.device.type == "cpu" else tensor.to(self.device)

    def _mean(self, scores: torch.Tensor) -> float:
        """The mean of D's outputs as probabilities."""
        scores = scores.detach()
        return float((torch.sigmoid(scores) if self._from_logits else scores).mean().item())

    def _run(self, role: str, x: torch.Tensor, training: bool) -> np.ndarray:
        player = self.players[role]
        self._train(training)
        statistics = player.statistics()
        with torch.no_grad():
            output = player.module(x)
        player.restore(statistics)
        result: np.ndarray = output.cpu().numpy()
        return result

    def generate(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        """G(z): samples for a batch of noise."""
        return self._run("generator", self._tensor(z, "generator", "noise"), training)

    def discriminate(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """D(x): the logit or probability that each sample is real."""
        return self._run("discriminator", self._tensor(x, "discriminator", "samples"), training)

    def discriminator_step(self, x: np.ndarray, z: np.ndarray, lr: float) -> dict[str, float]:
        """One update of the discriminator on real samples x and generated ones G(z),
        both in training mode (two passes); the generator does not change. Returns the
        loss, mean D(x) and mean D(G(z)) before the update."""
        real = self._tensor(x, "discriminator", "samples")
        noise = self._tensor(z, "generator", "noise")
        g, d = self.players["generator"], self.players["discriminator"]
        assert d.optimizer is not None
        self._train(True)
        statistics = g.statistics()
        with torch.no_grad():  # a batch of samples, not part of D's graph
            fake = self.generator(noise)
        g.restore(statistics)
        d.learning_rate(lr)
        d.optimizer.zero_grad(set_to_none=True)
        real_scores = self.discriminator(real)
        fake_scores = self.discriminator(fake)
        loss = self._discriminator_loss(real_scores, fake_scores)
        loss.backward()
        d.optimizer.step()
        d.steps += 1
        return {
            "d_loss": loss.item(),
            "d_real": self._mean(real_scores),
            "d_fake": self._mean(fake_scores),
        }

    def generator_step(self, z: np.ndarray, lr: float) -> dict[str, float]:
        """One update of the generator through the discriminator: autograd computes the
        generator's gradients only, and the discriminator does not change. Returns the
        loss and mean D(G(z)) before the update."""
        noise = self._tensor(z, "generator", "noise")
        g, d = self.players["generator"], self.players["discriminator"]
        assert g.optimizer is not None
        self._train(True)
        statistics = d.statistics()
        g.learning_rate(lr)
        g.optimizer.zero_grad(set_to_none=True)
        scores = self.discriminator(self.generator(noise))
        loss = self._generator_loss(scores)
        loss.backward(inputs=list(g.trainable.values()))
        g.optimizer.step()
        d.restore(statistics)
        g.steps += 1
        return {"g_loss": loss.item(), "g_fake": self._mean(scores)}

    def get_weights(self) -> Arrays:
        """Canonical weights of both models, buffers included, as NumPy copies."""
        return numpy_copies(self.tensors)

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights: every tensor of both models, by 'role/name'."""
        load_arrays(self.tensors, weights, "weights do not fit")

    def get_optimizer_state(self) -> Arrays:
        """Canonical optimizer state of both models: '<role>/step', and
        '<role>/<parameter>.<slot>' per trainable parameter and slot."""
        state: Arrays = {}
        for role, player in self.players.items():
            state.update(player.optimizer_state(f"{role}/"))
        return state

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical optimizer state, as get_optimizer_state returns it."""
        check_keys(self.get_optimizer_state(), state)
        for role, player in self.players.items():
            player.load_optimizer_state(state, self.device, f"{role}/")


__all__ = [
    "Player",
    "TorchGanRuntime",
    "TorchRuntime",
    "as_batch",
    "as_tensor",
    "load_arrays",
    "numpy_copies",
]
