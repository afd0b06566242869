"""Launching torch workers through torch's own launcher, ``torch.distributed.run``
(the code behind ``torchrun``), called in this process so that a failure comes back
as data: torchrun's ``ChildFailedError`` maps each failed rank to its pid and exit
status.

torchrun's elastic agent starts ``nproc`` workers per machine, watches them every
0.1 s, and when one fails stops the others (SIGTERM, which ends a torch worker at
once); ``--max-restarts 0``: a failed run is not restarted, it is
resumed from its checkpoint. The rendezvous waits at most the run's timeout for the
other machines. On Ctrl-C the agent passes SIGINT on to the workers, which stop
after their current batch and write a checkpoint; it kills those still running
after :data:`SHUTDOWN_SECONDS`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nnc.errors import WorkerError
from nnc.train.distributed.failures import Exit
from nnc.train.distributed.settings import Interrupted, Launch

SHUTDOWN_SECONDS = 30
# The signals torchrun's agent handles (and passes on to the workers) while it runs.
_AGENT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
WORKER_MODULE = "nnc.train.distributed.worker"


def torchrun_arguments(job: Path, launch: Launch, port: int) -> list[str]:
    """The torchrun command line (after ``torchrun``) that starts this machine's workers.

    >>> torchrun_arguments(Path("job.json"), Launch(nproc=2), 29500)[:4]
    ['--nnodes', '1', '--nproc-per-node', '2']
    """
    arguments = [
        "--nnodes",
        str(launch.nnodes),
        "--nproc-per-node",
        str(launch.nproc),
        "--node-rank",
        str(launch.node_rank),
        "--master-addr",
        launch.master_addr,
        "--master-port",
        str(port),
        "--max-restarts",
        "0",
        "--monitor-interval",
        "0.1",
        "--shutdown-timeout",
        str(SHUTDOWN_SECONDS),
        "--rdzv-conf",
        f"timeout={max(1, round(launch.timeout))}",
    ]
    if launch.single_machine:
        arguments += ["--local-addr", launch.master_addr]
    return [*arguments, "--module", WORKER_MODULE, str(job)]


def run_torchrun(job: Path, launch: Launch, port: int) -> list[Exit]:
    """Run the workers to the end; the failed ones, as torchrun saw them."""
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous import RendezvousError

    with _quiet_agent():
        try:
            torchrun.run(torchrun.parse_args(torchrun_arguments(job, launch, port)))
        except ChildFailedError as err:
            return [Exit(rank, f.pid, f.exitcode) for rank, f in sorted(err.failures.items())]
        except SignalException as err:
            raise Interrupted(int(err.sigval)) from None
        except RendezvousError as err:
            raise WorkerError(
                f"the workers of {launch.nnodes} machine(s) did not meet at "
                f"{launch.master_addr}:{port} within {launch.timeout:g} s ({err})",
                hint="start nnc train with the same --nnodes, --master-addr and --master-port "
                "on every machine",
            ) from None
    return []


@contextmanager
def _quiet_agent() -> Iterator[None]:
    """Silence the elastic agent's own log lines while it runs (nnc reports how the
    workers ended itself, with the rank and the last checkpoint), and give back the
    signal handlers it installs in this process."""
    handlers = {s: signal.getsignal(s) for s in _AGENT_SIGNALS}
    loggers = [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("torch.distributed")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if threading.current_thread() is threading.main_thread():
            for number, handler in handlers.items():
                signal.signal(number, handler)
