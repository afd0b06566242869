"""Launching and supervising TensorFlow workers on this machine.

Each worker is a process of its own (``python -m nnc.train.distributed.worker``)
with a ``TF_CONFIG`` naming every worker's loopback address, which a
``MultiWorkerMirroredStrategy`` reads. The supervisor watches them every
:data:`POLL_SECONDS`:

- when one fails, it stops the others at once (SIGTERM, then SIGKILL after
  :data:`GRACE_SECONDS`; checkpoints are written atomically, so none is left
  half-written) and reports the failed ones;
- a worker that has not connected within the run's timeout stops the run;
- the first Ctrl-C is passed on to the workers, which stop after their current batch
  and write a checkpoint; a second one kills them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from nnc.errors import WorkerError
from nnc.train.distributed.failures import Exit
from nnc.train.distributed.job import READY
from nnc.train.distributed.settings import LOOPBACK, Interrupted, Launch, free_port
from nnc.train.distributed.torchrun import WORKER_MODULE

POLL_SECONDS = 0.05
# How long a worker may take to end after SIGTERM before it is killed. TensorFlow
# catches SIGTERM (its preemption notifier) and would go on until a collective fails.
GRACE_SECONDS = 1.0


def tf_config(ports: list[int], rank: int) -> str:
    """The ``TF_CONFIG`` of worker ``rank`` in a cluster of loopback workers.

    >>> json.loads(tf_config([2001, 2002], 1))["task"]
    {'type': 'worker', 'index': 1}
    """
    cluster = {"worker": [f"{LOOPBACK}:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})


def distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def run_tensorflow_workers(job: Path, launch: Launch, environment: dict[str, str]) -> list[Exit]:
    """Start ``launch.nproc`` workers, supervise them to the end; the failed ones."""
    folder = job.parent
    ports = distinct_ports(launch.nproc)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for rank in range(launch.nproc):
            env = {**environment, "TF_CONFIG": tf_config(ports, rank)}
            native = folder / f"rank-{rank}.native.log"
            command = [sys.executable, "-u", "-m", WORKER_MODULE, str(job)]
            command += ["--rank", str(rank), "--native-log", str(native)]
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    # Only rank 0 reports; the others would repeat its warnings.
                    stdout=None if rank == 0 else subprocess.DEVNULL,
                    stderr=None if rank == 0 else subprocess.DEVNULL,
                    # Own sessions: a Ctrl-C reaches the supervisor only, which passes it on.
                    start_new_session=True,
                )
            )
        return supervise(processes, folder, launch.timeout)
    finally:
        _stop(processes)


def supervise(processes: list[subprocess.Popen[bytes]], folder: Path, timeout: float) -> list[Exit]:
    started = time.monotonic()
    with _passing_sigint_to(processes) as interrupts:
        while True:
            codes = [p.poll() for p in processes]
            failed = [
                Exit(rank, p.pid, code)
                for rank, (p, code) in enumerate(zip(processes, codes, strict=True))
                if code not in (None, 0)
            ]
            if failed:
                _stop(processes)
                if interrupts[0] > 1:
                    raise Interrupted(signal.SIGINT)
                return failed
            if all(code == 0 for code in codes):
                return []
            waiting = [
                r for r in range(len(processes)) if not (folder / READY.format(rank=r)).exists()
            ]
            if waiting and time.monotonic() - started > timeout:
                _stop(processes)
                raise WorkerError(
                    f"worker rank {waiting[0]} did not connect to the others within "
                    f"{timeout:g} s; every worker has stopped",
                    waiting[0],
                )
            time.sleep(POLL_SECONDS)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the workers still running; kill those that do not stop in time."""
    alive = [p for p in processes if p.poll() is None]
    for p in alive:
        with suppress(ProcessLookupError):
            p.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for p in alive:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                p.kill()
            p.wait()


@contextmanager
def _passing_sigint_to(processes: list[subprocess.Popen[bytes]]) -> Iterator[list[int]]:
    """While supervising, the first Ctrl-C goes on to the workers (they stop cleanly,
    and rank 0 says so); a second one kills them. Yields the count of Ctrl-Cs so far."""
    count = [0]
    if threading.current_thread() is not threading.main_thread():
        yield count
        return

    def handler(signum: int, frame: object) -> None:
        count[0] += 1
        for p in processes:
            if p.poll() is None:
                with suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGINT if count[0] == 1 else signal.SIGKILL)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield count
    finally:
        signal.signal(signal.SIGINT, previous)
