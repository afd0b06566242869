"""How many workers, on how many machines: the launch settings and their checks."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

from nnc.backends.registry import backends, parse_backend
from nnc.errors import BackendError, TrainingError

LOOPBACK = "127.0.0.1"


class Interrupted(Exception):
    """The launching process received a signal (Ctrl-C) and passed it to the workers."""

    def __init__(self, signal_number: int):
        super().__init__(f"signal {signal_number}")
        self.signal_number = signal_number


@dataclass(frozen=True)
class Launch:
    """Data-parallel workers: ``nproc`` on each of ``nnodes`` machines.

    ``node_rank``, ``master_addr`` and ``master_port`` place this machine among the
    others (torchrun's meanings); on one machine every address is the loopback and a
    free port is picked. ``timeout`` bounds every wait for other workers: the
    rendezvous, the connection and each collective.
    """

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = LOOPBACK
    master_port: int | None = None
    timeout: float = 300.0

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes

    @property
    def single_machine(self) -> bool:
        return self.nnodes == 1

    @property
    def first_rank(self) -> int:
        """The global rank of this machine's first worker."""
        return self.node_rank * self.nproc

    def check(self, backend: str) -> None:
        """Refuse settings that cannot run, before any worker starts."""
        spec = parse_backend(backend)
        if spec.parallel is None:
            parallel = [b.name for b in backends(parallel=True)]
            raise BackendError(
                f"data-parallel training runs on {' or '.join(parallel)}; the {spec.name} "
                f"backend trains in one process. "
                f"Received: --backend {spec.name} with {self.world_size} workers",
                hint=f"use {' or '.join(f'--backend {b}' for b in parallel)}, or drop --nproc",
            )
        for name, value in (("--nproc", self.nproc), ("--nnodes", self.nnodes)):
            if value < 1:
                raise TrainingError(f"{name} must be at least 1. Received: {value}")
        if not 0 <= self.node_rank < self.nnodes:
            raise TrainingError(
                f"--node-rank must lie in [0, {self.nnodes}) for --nnodes {self.nnodes}. "
                f"Received: {self.node_rank}"
            )
        if self.master_port is not None and not 1 <= self.master_port <= 65535:
            raise TrainingError(f"--master-port must be a TCP port. Received: {self.master_port}")
        if self.timeout <= 0:
            raise TrainingError(f"the timeout must be positive. Received: {self.timeout}")
        if self.nnodes > 1:
            if not spec.multi_node:
                raise BackendError(
                    "nnc launches TensorFlow workers on this machine only (it writes their "
                    f"TF_CONFIG with loopback ports). Received: --nnodes {self.nnodes}",
                    hint="train on several machines with --backend torch (torchrun)",
                )
            if self.master_port is None:
                raise TrainingError(
                    f"--nnodes {self.nnodes} needs --master-port (and --master-addr, the "
                    "address of the machine with --node-rank 0), the same on every machine"
                )
        elif not _is_loopback(self.master_addr):
            raise TrainingError(
                "on one machine the workers talk over the loopback interface only. "
                f"Received: --master-addr {self.master_addr}",
                hint="drop --master-addr, or give --nnodes for several machines",
            )


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def threads_per_worker(nproc: int) -> int:
    """The machine's cores shared out among this machine's workers (at least one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // nproc)
