"""One data-parallel worker: ``python -m nnc.train.distributed.worker JOB [--rank R]``.

nnc's launcher starts it, through torchrun (which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``...) or through its own supervisor for TensorFlow (``--rank`` and
``TF_CONFIG``). Every worker runs the training driver on the same data with the same
seed; rank 0 alone reads the checkpoint to resume (and sends it to the others),
writes the run folder and reports progress.

Exit status: 0 done, 1 stopped on an error that ``rank-<r>.error.json`` describes
(an nnc error or a lost peer), 3 an internal error (its traceback in that file).
A worker also exits as soon as the process that launched it is gone, so no worker
outlives its run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nnc.data import prepare
from nnc.errors import NncError
from nnc.ir.serialize import loads_json
from nnc.ir.weights import check_weights, init_weights
from nnc.train.checkpoint import Checkpoint, checkpoint_from_bytes
from nnc.train.distributed.engines import Connection, connect
from nnc.train.distributed.group import DataParallel, check_no_empty_slices
from nnc.train.distributed.job import READY, Job, Outcome, WorkerReport
from nnc.train.loop import Trainer, TrainResult
from nnc.train.metrics import Metrics
from nnc.train.progress import QuietReporter, SilentReporter, make_reporter
from nnc.train.reconstructions import reconstruction_drawer
from nnc.train.run import (
    RunSpec,
    make_plan,
    monitor_of,
    resolve_run,
    restore_optimizer,
    resume_checkpoint,
    sigint_requests_stop,
    write_run_files,
)
from nnc.train.rundir import RunDir


def run_worker(job: Job, folder: Path, on_connected: Callable[[DataParallel], None]) -> None:
    """Train this worker's part of the run described by ``job``."""
    program = loads_json(job.program)
    o = job.options
    base = o.base
    run = resolve_run(program, job.recipe, epochs=o.epochs, batch=o.batch, seed=o.seed, base=base)
    seed = run.recipe.seed
    from nnc.train.inference import starting_weights

    initial = (
        starting_weights(program, run.model.name, o.weights, print)
        if o.weights is not None and o.resume is None
        else init_weights(program, run.model, seed)
    )
    connection = connect(
        o.backend, program, run.model.name, initial, seed, o.device, o.timeout, o.precision
    )
    group = connection.group
    on_connected(group)
    try:
        _train(job, run, connection, base, folder)
    except NncError:
        raise
    except Exception as exc:
        if connection.lost_peer(exc):
            raise LostPeer(str(exc)) from exc
        raise
    connection.close()


class LostPeer(Exception):
    """A collective failed because another worker is gone."""


def _train(job: Job, run: RunSpec, connection: Connection, base: Path | None, folder: Path) -> None:
    group = connection.group
    reporter = make_reporter(job.quiet) if group.chief else SilentReporter()
    checkpoint = _shared_checkpoint(job, run, group, reporter)
    program, resolved, model = run.program, run.recipe, run.model
    data = prepare(
        program, resolved, base, standardizer=checkpoint.standardizer if checkpoint else None
    )
    metrics = Metrics(resolved.metrics, data.task, resolved.span_of("metrics"))
    monitor = monitor_of(resolved, metrics, data.validation is not None)
    if not connection.empty_slices:
        samples = len(data.train)
        size = samples if resolved.batch == "all" else int(resolved.batch)
        check_no_empty_slices(samples, size, group.size, job.options.backend)
    runtime = group.runtime
    if checkpoint is not None:
        source = str(checkpoint.path)
        runtime.set_weights(check_weights(program, model, checkpoint.weights, source=source))
        if checkpoint.optimizer:
            restore_optimizer(runtime, checkpoint, run.document, reporter, job.options.force)
    run_dir = RunDir(Path(job.options.out)) if group.chief and job.options.out else None
    drawer = None
    if run_dir is not None:
        o = job.options
        write_run_files(run_dir, run, data, o.backend, o.device, group.size, o.precision)
        # an autoencoder's reconstructions, drawn by rank 0 (evaluation mode: local)
        drawer = reconstruction_drawer(
            resolved, data, model.inputs[0].type, run_dir.path, model.name
        )
    plan, identity = make_plan(
        run,
        monitor,
        job.options.checkpoint_every,
        job.options.keep,
        job.options.backend,
        workers=group.size,
    )
    with sigint_requests_stop(announce=group.chief) as should_stop:
        result = Trainer(
            runtime,
            data,
            plan,
            metrics,
            identity,
            reporter=reporter,
            run_dir=run_dir,
            state=checkpoint.state if checkpoint else None,
            best_weights=checkpoint.best_weights if checkpoint else None,
            should_stop=should_stop,
            resumed_from=checkpoint.path if checkpoint else None,
            after_epoch=drawer,
            group=group,
        ).run()
    if group.chief:
        _outcome(result).write(folder, result.runtime.get_weights())


def _shared_checkpoint(
    job: Job, run: RunSpec, group: DataParallel, reporter: QuietReporter
) -> Checkpoint | None:
    """The checkpoint to resume from, read by rank 0 and sent to every worker: the run
    folder need only be visible to rank 0 (on another machine, it is not)."""
    if job.options.resume is None:
        return None
    message = b""
    history: list[dict[str, float]] = []  # rank 0's, read from the run folder
    if group.chief:
        try:
            folder = Path(job.options.resume)
            found = resume_checkpoint(folder, run.document, run.digest, job.options.force, reporter)
            history = found.state.history
            file = found.path or folder
            name = str(file).encode("utf-8")
            message = b"C" + len(name).to_bytes(4, "big") + name + file.read_bytes()
        except NncError as err:
            message = b"E" + json.dumps(asdict(WorkerReport.of(0, err))).encode("utf-8")
    message = group.broadcast(message)
    if message[:1] == b"E":
        raise WorkerReport(**json.loads(message[1:])).nnc_error()
    size = int.from_bytes(message[1:5], "big")
    path = Path(message[5 : 5 + size].decode("utf-8"))
    checkpoint = checkpoint_from_bytes(message[5 + size :], path)
    checkpoint.state.history = history
    return checkpoint


def _outcome(result: TrainResult) -> Outcome:
    matrix = result.confusion
    return Outcome(
        history=result.history,
        stopped=result.stopped,
        best_epoch=result.best_epoch,
        best=result.best,
        final=result.final,
        confusion=np.asarray(matrix).tolist() if matrix is not None else None,
        run_dir=str(result.run_dir) if result.run_dir else None,
        checkpoint=str(result.checkpoint) if result.checkpoint else None,
        restored_best=result.restored_best,
        files=[str(p) for p in result.files],
    )


def _exit_with_parent(interval: float = 0.5) -> None:
    """Exit as soon as the launching process is gone (a worker in its own session
    would otherwise train on, or wait on its peers, alone)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="nnc-parent-watch", daemon=True).start()


def _native_logs_to(path: Path) -> None:
    """Send what native code writes to the stderr file descriptor (TensorFlow's C++
    log lines, repeated by every worker) to ``path``; Python's ``sys.stderr`` (nnc's
    warnings, tracebacks) still reaches the terminal."""
    terminal = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding="utf-8", errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnc.train.distributed.worker")
    parser.add_argument("job", type=Path, help="the job.json written by nnc's launcher")
    parser.add_argument("--rank", type=int, help="this worker's rank (default: $RANK)")
    parser.add_argument(
        "--native-log", type=Path, help="where native code's stderr lines go (TensorFlow's)"
    )
    args = parser.parse_args(argv)
    rank = args.rank if args.rank is not None else int(os.environ.get("RANK", "0"))
    folder = args.job.parent
    if args.native_log is not None:
        _native_logs_to(args.native_log)
    _exit_with_parent()

    def connected(group: DataParallel) -> None:
        (folder / READY.format(rank=rank)).touch()

    try:
        run_worker(Job.read(args.job), folder, connected)
        return 0
    except NncError as err:
        WorkerReport.of(rank, err).write(folder)
        return 1
    except LostPeer as exc:
        WorkerReport(rank, "peer", "LostPeer", str(exc)).write(folder)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        text = traceback.format_exc()
        WorkerReport(rank, "internal", type(exc).__name__, str(exc), traceback=text).write(folder)
        return 3


if __name__ == "__main__":
    sys.exit(main())
