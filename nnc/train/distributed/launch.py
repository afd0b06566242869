"""The launching side of data-parallel training: check the settings, write the job,
start the workers through the framework's launcher, and report how they ended.

torch workers start through torchrun (:mod:`.torchrun`), TensorFlow workers through
nnc's own supervisor (:mod:`.supervisor`). Either way the workers run
:mod:`.worker`; rank 0 writes the run folder and leaves its outcome in the job
folder, from which :func:`train_parallel` rebuilds a ``TrainResult``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from nnc.backends.registry import parse_backend
from nnc.errors import BackendError, TrainingError, WorkerError
from nnc.ir.program import Program
from nnc.ir.training import Recipe
from nnc.train.distributed.failures import Exit, failure
from nnc.train.distributed.job import Job, Outcome, make_job_folder, remove_job_folder
from nnc.train.distributed.settings import Interrupted, Launch, free_port, threads_per_worker
from nnc.train.loop import TrainResult
from nnc.train.options import RunOptions
from nnc.train.progress import QuietReporter, SilentReporter
from nnc.train.run import build_runtime, check_resume_folders, resolve_run, resume_checkpoint
from nnc.train.rundir import default_run_dir, new_run_folder

NNC_ROOT = Path(__file__).resolve().parents[3]  # the folder that holds the nnc package


def launch_run(
    program: Program,
    recipe: str | Recipe | None,
    options: RunOptions,
    launch: Launch,
    *,
    quiet: bool = False,
) -> tuple[Outcome, dict[str, np.ndarray]] | None:
    """Train data-parallel; rank 0's outcome and final weights (None on a machine
    other than rank 0's). A failed worker raises a :class:`~nnc.errors.WorkerError`
    naming its rank (or the worker's own nnc error); Ctrl-C ends the run after a
    checkpoint, with ``stopped == "interrupted"``. ``launch`` says how the workers
    start (``options.nproc`` and ``options.timeout`` are train's, which made it)."""
    o = options
    backend, out, resume, force, device = o.backend, o.out, o.resume, o.force, o.device
    launch.check(backend)
    _check_device(backend, device, launch)
    recipe_name = recipe.name if isinstance(recipe, Recipe) else recipe
    run = resolve_run(
        program, recipe, epochs=o.epochs, batch=o.batch, seed=o.seed, base=o.base, parallel=True
    )
    check_resume_folders(out, resume)
    chief_here = launch.node_rank == 0
    if resume is not None and chief_here:
        # Refuse a changed recipe before starting workers (rank 0 reads it again and
        # reports any damaged checkpoint it skips).
        resume_checkpoint(Path(resume), run.document, run.digest, force, SilentReporter())
    run_dir: Path | None = None
    if resume is not None:
        run_dir = Path(resume)
    elif o.save and chief_here:  # the run folder is rank 0's
        run_dir = new_run_folder(Path(out) if out else None, run.model.name, force)
    elif o.save:
        run_dir = Path(out) if out is not None else default_run_dir(run.model.name)
    job = Job(
        program=program.to_json(indent=None),
        recipe=recipe_name,
        options=replace(
            o,
            out=str(run_dir.resolve()) if run_dir is not None else None,
            resume=str(Path(resume).resolve()) if resume is not None else None,
            base=o.base.resolve() if o.base is not None else None,
            timeout=launch.timeout,
        ),
        quiet=quiet,
    )
    folder = make_job_folder()
    try:
        path = job.write(folder)
        try:
            exits = _start(backend, path, launch)
        except Interrupted:
            # torchrun's agent passed the Ctrl-C on; the workers saved their state.
            found = Outcome.read(folder)
            if found is None:
                raise
            return found
        if exits:
            ranks = range(launch.first_rank, launch.first_rank + launch.nproc)
            raise failure(exits, folder, ranks, run_dir if chief_here else None)
        found = Outcome.read(folder)
        if found is None and chief_here:
            raise WorkerError("the workers ended without rank 0 reporting how the run went", 0)
        return found
    finally:
        remove_job_folder(folder)


def _start(backend: str, job: Path, launch: Launch) -> list[Exit]:
    with _worker_environment(launch) as environment:
        if parse_backend(backend).parallel == "torchrun":
            from nnc.train.distributed.torchrun import run_torchrun

            port = launch.master_port or free_port(launch.master_addr)
            return run_torchrun(job, launch, port)
        from nnc.train.distributed.supervisor import run_tensorflow_workers

        return run_tensorflow_workers(job, launch, environment)


@contextmanager
def _worker_environment(launch: Launch) -> Iterator[dict[str, str]]:
    """The environment the workers start with. torchrun copies this process's own, so
    it is set here for the launch and put back afterwards."""
    path = os.environ.get("PYTHONPATH")
    settings = {
        # the workers import this very nnc
        "PYTHONPATH": os.pathsep.join(filter(None, [str(NNC_ROOT), path])),
        # TensorFlow's C++ chatter (every worker would repeat it)
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    # The cores are shared out among the workers (torch and oneDNN read this).
    settings["OMP_NUM_THREADS"] = os.environ.get(
        "OMP_NUM_THREADS", str(threads_per_worker(launch.nproc))
    )
    if launch.single_machine and sys.platform.startswith("linux"):
        # gloo would otherwise pick the interface of the machine's host name.
        settings["GLOO_SOCKET_IFNAME"] = os.environ.get("GLOO_SOCKET_IFNAME", "lo")
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield dict(os.environ)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_device(backend: str, device: str | None, launch: Launch) -> None:
    parse_backend(backend).device_options(device)  # an unknown or unusable device
    if device != "cuda":
        return
    from nnc.backends.torch import resolve_device

    resolve_device("cuda")  # a clear error when torch has no CUDA
    import torch

    count = torch.cuda.device_count()
    if count < launch.nproc:
        raise BackendError(
            f"--device cuda gives each worker a GPU of its own (nccl), so --nproc "
            f"{launch.nproc} needs {launch.nproc} GPUs; torch sees {count}",
            hint=f"use --nproc {count}" if count else "use --device cpu",
        )


def train_parallel(
    program: Program,
    recipe: str | Recipe | None,
    options: RunOptions,
    *,
    reporter: QuietReporter,
) -> TrainResult:
    """``nnc.train.train`` with ``options.nproc > 1``: the run's result, with a
    runtime rebuilt here from the final weights (on the CPU). Rank 0 reports progress
    unless ``reporter`` is quiet."""
    launch = Launch(nproc=options.nproc, timeout=options.timeout)
    try:
        found = launch_run(program, recipe, options, launch, quiet=type(reporter) is QuietReporter)
    except Interrupted:
        raise KeyboardInterrupt from None
    if found is None:  # only on a machine other than rank 0's, which train never is
        raise TrainingError("rank 0 ran on another machine; its run folder has the result")
    outcome, weights = found
    o = options
    run = resolve_run(program, recipe, epochs=o.epochs, batch=o.batch, seed=o.seed, base=o.base)
    runtime = build_runtime(program, run.model.name, o.backend, weights, run.recipe.seed)
    return TrainResult(
        runtime=runtime,
        history=outcome.history,
        stopped=outcome.stopped,
        best_epoch=outcome.best_epoch,
        best=outcome.best,
        final=outcome.final,
        confusion=np.asarray(outcome.confusion) if outcome.confusion is not None else None,
        run_dir=Path(outcome.run_dir) if outcome.run_dir else None,
        checkpoint=Path(outcome.checkpoint) if outcome.checkpoint else None,
        restored_best=outcome.restored_best,
        files=[Path(p) for p in outcome.files],
    )
