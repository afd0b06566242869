"""Joining the other workers, per framework, inside a worker process.

Each function builds the backend's runtime in data-parallel mode and says how to
recognise an error that means another worker is gone (so the launcher can tell the
rank that failed from the ranks that lost it):

- torch: nnc's runtime adapter (``nnc.backends.torch.distributed.init_distributed``)
  joins the process group that torchrun set up (gloo on the CPU, nccl on CUDA), and
  the runtime trains through ``DistributedDataParallel``;
- tensorflow: a ``MultiWorkerMirroredStrategy`` reads the ``TF_CONFIG`` that nnc's
  launcher wrote (loopback ports), and the runtime trains under it.

Frameworks are imported here, in the worker, only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnc.backends.registry import parse_backend
from nnc.ir.program import Program
from nnc.train.distributed.group import DataParallel


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class Connection:
    group: DataParallel
    lost_peer: Callable[[BaseException], bool]
    # Whether a worker may train on an empty slice (a last global batch smaller than
    # the worker count). TensorFlow's convolutions fail on an empty batch.
    empty_slices: bool = True
    close: Callable[[], None] = _nothing  # leave the others, once done with them


def connect(
    backend: str,
    program: Program,
    model: str,
    weights: dict[str, np.ndarray],
    seed: int,
    device: str | None,
    timeout: float,
    precision: str = "float32",
) -> Connection:
    """This worker's data-parallel runtime, joined to the others."""
    spec = parse_backend(backend)
    spec.require()
    spec.precision_options(precision)  # a precision the backend lacks: an error
    if spec.parallel == "torchrun":
        return _torch(program, model, weights, seed, device or "cpu", timeout, precision)
    return _tensorflow(program, model, weights, seed, timeout)


def _torch(
    program: Program,
    model: str,
    weights: dict[str, np.ndarray],
    seed: int,
    device: str,
    timeout: float,
    precision: str,
) -> Connection:
    import torch.distributed as dist

    from nnc.backends.torch import build

    runtime: Any = build(
        program,
        model,
        weights=weights,
        device=device,
        seed=seed,
        distributed=True,
        timeout=timeout,
        precision=precision,
    )
    description = f"DDP over {dist.get_backend()}"

    def lost_peer(exc: BaseException) -> bool:
        if isinstance(exc, dist.DistError):
            return True
        text = str(exc)
        return isinstance(exc, RuntimeError) and any(
            phrase in text
            for phrase in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")
        )

    # Leaving the process group explicitly, DDP released first (Runtime.close): torch
    # may abort the process when either is only torn down at interpreter exit.
    return Connection(DataParallel(runtime, description), lost_peer, close=runtime.close)


def _tensorflow(
    program: Program, model: str, weights: dict[str, np.ndarray], seed: int, timeout: float
) -> Connection:
    from nnc.backends.tensorflow import build
    from nnc.backends.tensorflow.framework import import_tensorflow

    tf = import_tensorflow()

    threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
    if threads > 0:
        # Workers share the machine's cores: each gets its part of them.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=timeout,
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    runtime: Any = build(program, model, weights=weights, seed=seed, strategy=strategy)
    lost = (
        tf.errors.UnavailableError,
        tf.errors.CancelledError,
        tf.errors.DeadlineExceededError,
        tf.errors.AbortedError,
    )

    def lost_peer(exc: BaseException) -> bool:
        return isinstance(exc, lost) or (
            isinstance(exc, tf.errors.InternalError) and "Collective ops is aborted" in str(exc)
        )

    group = DataParallel(runtime, "MultiWorkerMirroredStrategy")
    return Connection(group, lost_peer, empty_slices=False)
