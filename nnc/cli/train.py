"""``nnc train FILE``: train a recipe on a backend, with progress, history and checkpoints."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from nnc.cli.options import (
    add_backend_argument,
    add_device_argument,
    add_precision_argument,
    whole_number,
)
from nnc.errors import NncError, visible

if TYPE_CHECKING:
    from nnc.ir.program import Program
    from nnc.train.options import RunOptions
    from nnc.train.tracking import Tracking


positive_int = whole_number(1)
seed_int = whole_number(0, "a seed is at least 0")


def batch_arg(text: str) -> int | str:
    return "all" if text == "all" else positive_int(text)


@contextmanager
def spec_source(file: str) -> Iterator[None]:
    """Attach the spec's text to errors that point into it, so they show the line."""
    try:
        yield
    except NncError as err:
        if err.span is not None and err.source is None and err.span.file == file:
            with suppress(OSError, UnicodeDecodeError):
                err.with_source(Path(file).read_text(encoding="utf-8"))
        raise


def add_tracking_arguments(p: argparse.ArgumentParser) -> None:
    """``--track`` and its companions (``nnc train``, ``nnc search``)."""
    group = p.add_argument_group(
        "experiment tracking (docs/training.md#experiment-tracking; pip install 'nnc[track]')"
    )
    group.add_argument(
        "--track",
        choices=("tensorboard", "mlflow", "none"),
        default="tensorboard",
        help="tensorboard (default): event files in the run folder; mlflow: those and an "
        "MLflow run (the recipe as parameters, the weights as an artifact); none: neither",
    )
    group.add_argument(
        "--histogram-every",
        type=positive_int,
        metavar="N",
        help="weight and gradient histograms every N epochs (default: about ten a run)",
    )
    group.add_argument(
        "--mlflow-uri",
        metavar="URI",
        help="the MLflow tracking server (default: $MLFLOW_TRACKING_URI, else MLflow's "
        "default, ./mlflow.db)",
    )
    group.add_argument(
        "--mlflow-experiment", metavar="NAME", help="the MLflow experiment (default: the recipe)"
    )


def tracking_from(args: argparse.Namespace, **extra: object) -> Tracking:
    """The :class:`~nnc.train.tracking.Tracking` the command line asks for."""
    from nnc.train.tracking import Tracking

    return Tracking(
        tensorboard=args.track != "none",
        histogram_every=args.histogram_every,
        mlflow=args.track == "mlflow",
        mlflow_uri=args.mlflow_uri,
        mlflow_experiment=args.mlflow_experiment,
        **extra,  # type: ignore[arg-type]
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a recipe and write a run folder",
        description="Train a recipe of FILE (supervised, autoencoder or GAN) on a backend. "
        "Writes the run folder: the resolved recipe, history.csv/json, loss.png, checkpoints, "
        "TensorBoard event files and the final weights.safetensors; for image data also a GAN's "
        "generated samples "
        "(samples/) or an autoencoder's reconstructions (reconstructions/) per epoch. Ctrl-C "
        "stops cleanly after writing a checkpoint; --resume continues from the newest good one.",
    )
    p.add_argument("file", metavar="FILE", help="the .nn file")
    p.add_argument("--recipe", metavar="NAME", help="the train recipe (default: the only one)")
    add_backend_argument(p, trains=True, what="trains the model")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="override the epochs")
    p.add_argument(
        "--batch", type=batch_arg, metavar="N", help="override the batch size (or 'all')"
    )
    p.add_argument("--seed", type=seed_int, metavar="N", help="override the seed")
    p.add_argument("--out", metavar="DIR", help="the run folder (default: runs/<model>-<time>)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or summary")
    p.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint"
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="start from these weights (a weights file, checkpoint or run folder, such as "
        "`nnc import`'s or `nnc opt --weights-out`'s) instead of drawing them: fine-tuning",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the run that --out names, or resume even though the recipe has changed",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help="write a checkpoint every N epochs (default: 1; epochs/20 beyond 40 epochs)",
    )
    p.add_argument(
        "--keep",
        type=positive_int,
        default=3,
        metavar="K",
        help="keep the newest K checkpoints (default 3)",
    )
    add_device_argument(p)
    add_precision_argument(p)
    add_tracking_arguments(p)
    group = p.add_argument_group(
        "data-parallel training (docs/distributed.md)",
        "torch: DistributedDataParallel through torchrun, gloo on the cpu, nccl on cuda; "
        "tensorflow: MultiWorkerMirroredStrategy, on this machine",
    )
    group.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes on this machine (default 1: train in this process)",
    )
    group.add_argument(
        "--nnodes", type=positive_int, default=1, metavar="M", help="machines (torch; default 1)"
    )
    group.add_argument(
        "--node-rank", type=int, default=0, metavar="K", help="this machine's rank (default 0)"
    )
    group.add_argument(
        "--master-addr",
        default="127.0.0.1",
        metavar="HOST",
        help="the address of the machine with --node-rank 0 (default 127.0.0.1)",
    )
    group.add_argument(
        "--master-port", type=int, metavar="PORT", help="its rendezvous port (default: a free one)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="the longest wait for other workers, in seconds (default 300)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.dsl import load
    from nnc.train.progress import make_reporter
    from nnc.train.run import sigint_requests_stop
    from nnc.train.session import train

    program = load(args.file)
    if args.nproc > 1 or args.nnodes > 1:
        if args.track == "mlflow":
            raise NncError(
                "--track mlflow applies to training in one process; data-parallel runs "
                "(--nproc, --nnodes) log their history to the run folder only"
            )
        return run_parallel(args, program)
    reporter = make_reporter(args.quiet)
    with spec_source(args.file), sigint_requests_stop() as should_stop:
        result = train(
            program,
            args.recipe,
            run_options_from(args),
            reporter=reporter,
            should_stop=should_stop,
            tracking=tracking_from(args),
        )
    if result.stopped == "interrupted":
        print(
            visible(
                f"interrupted; the state is saved in {result.checkpoint}\n"
                f"resume with: {resume_command(args, result.run_dir)}",
                keep="\n",
            ),
            file=sys.stderr,
        )
        return 130
    return 0


def run_parallel(args: argparse.Namespace, program: Program) -> int:
    """Data-parallel training: rank 0 reports the run; this process launches and
    watches the workers, and reports a failure with the rank that failed."""
    from nnc.train.distributed.launch import launch_run
    from nnc.train.distributed.settings import Interrupted, Launch

    launch = Launch(
        nproc=args.nproc,
        nnodes=args.nnodes,
        node_rank=args.node_rank,
        master_addr=args.master_addr,
        master_port=args.master_port,
        timeout=args.timeout,
    )
    with spec_source(args.file):
        try:
            found = launch_run(
                program, args.recipe, run_options_from(args), launch, quiet=args.quiet
            )
        except Interrupted:
            print(f"interrupted; {visible(saved_state(args))}", file=sys.stderr)
            return 130
    if found is None:
        if not args.quiet:
            print(f"node {args.node_rank}: workers done; rank 0's machine holds the run folder")
        return 0
    outcome, _ = found
    if outcome.stopped == "interrupted":
        run_dir = Path(outcome.run_dir) if outcome.run_dir else None
        print(
            visible(
                f"interrupted; the state is saved in {outcome.checkpoint}\n"
                f"resume with: {resume_command(args, run_dir)}",
                keep="\n",
            ),
            file=sys.stderr,
        )
        return 130
    return 0


def run_options_from(args: argparse.Namespace) -> RunOptions:
    """The run's settings from ``nnc train``'s options."""
    from nnc.train.options import RunOptions

    return RunOptions(
        backend=args.backend,
        epochs=args.epochs,
        batch=args.batch,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        force=args.force,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        weights=args.weights,
        device=args.device,
        precision=args.precision,
        base=Path(args.file).resolve().parent,
        nproc=args.nproc,
        timeout=args.timeout,
    )


def saved_state(args: argparse.Namespace) -> str:
    """Where an interrupted data-parallel run left its state."""
    from nnc.train.checkpoint import list_checkpoints
    from nnc.train.rundir import CHECKPOINTS

    folder = args.resume or args.out
    found = list_checkpoints(Path(folder) / CHECKPOINTS) if folder else []
    if not found:
        return "no checkpoint was written"
    return f"the last checkpoint is {found[-1]}\nresume with: {resume_command(args, Path(folder))}"


def resume_command(args: argparse.Namespace, run_dir: Path | None) -> str:
    """The command that continues this run, with the options that shape it."""
    words = ["nnc", "train", args.file, "--resume", str(run_dir)]
    for flag in ("recipe", "backend", "epochs", "batch", "seed", "device", "precision", "nproc"):
        value = getattr(args, flag, None)
        default = {"backend": "numpy", "nproc": 1, "precision": "float32"}.get(flag)
        if value is not None and value != default:
            words += [f"--{flag}", str(value)]
    return shlex.join(words)
