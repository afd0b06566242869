"""The PyTorch backend: idiomatic ``nn.Module`` code with nnc's exact semantics.

``emit`` writes a standalone module (torch, numpy and the standard library only)
holding what varies per model: one ``nn.Module`` class per model, the recipe's loss
and ``torch.optim`` optimizer, and ``fit(x, y)``. ``build`` imports it and wraps it
in nnc's runtime adapter (:mod:`nnc.backends.torch.runtime`), which implements
:class:`nnc.backends.runtime.Runtime` once for every model. Neither importing this
package nor ``emit`` imports torch; ``build`` does.

How each op, loss and optimizer is realised: ``docs/backends/torch.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from nnc.backends import gancode
from nnc.backends.codegen import load_module, select
from nnc.backends.torch.emit import NAME, emit_module, lower_module
from nnc.backends.torch.gan import emit_gan_module, lower_gan
from nnc.errors import BackendError
from nnc.ir.passes import check
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe
from nnc.ir.weights import check_gan_weights, check_weights, init_gan_weights, init_weights

if TYPE_CHECKING:
    from nnc.backends.runtime import GanRuntime, Runtime

__all__ = ["NAME", "build", "build_gan", "emit", "emit_gan"]


def emit(program: Program, model: str | None = None, source: str = "<program>") -> str:
    """The generated PyTorch module for ``model`` (default: the trained model).

    When that model is trained by a GAN recipe, the GAN's module (:func:`emit_gan`).

    >>> import nnc
    >>> code = emit(nnc.load("examples/xor.nn"), source="examples/xor.nn")
    >>> "class Xor(nn.Module):" in code and "torch.optim.SGD" in code
    True
    """
    checked = check(program)
    gan = gancode.default_gan(checked, model)
    if gan is not None:
        return emit_gan_module(checked, gan, source)
    return emit_module(checked, model, source)


def emit_gan(
    program: Program, recipe: str | GanRecipe | None = None, source: str = "<program>"
) -> str:
    """The generated PyTorch module of a GAN recipe (default: the only one): both
    models, their losses and optimizers, ``draw_noise`` and ``fit``."""
    checked = check(program)
    return emit_gan_module(checked, gancode.select_gan(checked, recipe), source)


def build_gan(
    program: Program,
    recipe: str | GanRecipe | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    device: str = "cpu",
    seed: int | None = None,
) -> GanRuntime:
    """A ready :class:`~nnc.backends.runtime.GanRuntime` on torch for a GAN recipe;
    ``weights`` hold both models under their roles (default: drawn from ``seed``,
    itself the recipe's by default)."""
    from nnc.backends import require_framework

    require_framework(NAME)
    from nnc.backends.torch.runtime import TorchGanRuntime

    program = check(program)
    gan = gancode.select_gan(program, recipe)
    resolve_device(device)
    seed = gan.seed if seed is None else seed
    if weights is not None:
        weights = check_gan_weights(program, gan, weights)
    else:
        weights = init_gan_weights(program, gan, seed)
    lowered = lower_gan(program, gan)
    module = load_module(lowered.source, f"torch_gan_{gan.name}")
    return TorchGanRuntime(module, lowered, weights, device=device, seed=seed)


def build(
    program: Program,
    model: str | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    device: str = "cpu",
    seed: int | None = None,
    distributed: bool = False,
    timeout: float = 300.0,
    precision: str = "float32",
) -> Runtime:
    """A ready runtime: the generated module, imported, on ``device`` ("cpu",
    "cuda" or "cuda:<index>"). ``weights`` are canonical (default: the initial
    weights drawn from ``seed``); ``seed`` defaults to the recipe's.

    ``distributed=True``, in a process that torchrun started, joins its process group
    (``distributed.init_distributed``: gloo on the CPU, nccl on CUDA, where each
    worker takes the GPU of its local rank) and returns a data-parallel runtime: its
    train steps run through ``DistributedDataParallel`` (docs/distributed.md). A
    collective then waits at most ``timeout`` seconds for the other workers.

    ``precision="mixed"`` runs the forward passes under autocast (float16 with loss
    scaling on CUDA, bfloat16 on the CPU; docs/training.md#precision)."""
    from nnc.backends import require_framework

    require_framework(NAME)
    from nnc.backends.torch.distributed import init_distributed
    from nnc.backends.torch.runtime import TorchRuntime

    program = check(program)
    root, recipe = select(program, model)
    resolve_device(device)
    if weights is not None:
        weights = check_weights(program, root, weights)
    lowered = lower_module(program, root.name)
    if seed is None:
        seed = int(getattr(recipe, "seed", 0))
    if weights is None:
        weights = init_weights(program, root, seed)
    if distributed:
        if lowered.recipe is None:
            raise BackendError(
                f"model {root.name} has no supervised train recipe, so it cannot train "
                "data-parallel"
            )
        device = init_distributed(device, timeout=timeout)
    module = load_module(lowered.source, f"torch_{root.name}")
    return TorchRuntime(
        module,
        lowered,
        weights,
        device=device,
        seed=seed,
        distributed=distributed,
        precision=precision,
    )


def resolve_device(device: str) -> str:
    """Check that torch can run on ``device``; a clear BackendError when it cannot."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise BackendError(
            f"unknown device '{device}' for the torch backend. Expected 'cpu', 'cuda' or "
            f"'cuda:<index>'. Received: {device!r}"
        ) from None
    if parsed.type == "cpu":
        return device
    if parsed.type != "cuda":
        raise BackendError(
            f"the torch backend runs on 'cpu' or 'cuda'. Received: device {device!r}"
        )
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
        raise BackendError(
            f"device '{device}' was requested but CUDA is not available to torch "
            f"{torch.__version__} ({build})",
            hint="use device='cpu'",
        )
    count = torch.cuda.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise BackendError(f"device '{device}' does not exist: torch sees {count} CUDA device(s)")
    return device
