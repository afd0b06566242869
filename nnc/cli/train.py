"""``nnc train FILE``: train a recipe on a backend, with progress, history and checkpoints."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from nnc.errors import NncError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number. Received: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1. Received: {value}")
    return value


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number. Received: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is at least 0. Received: {value}")
    return value


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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a recipe and write a run folder",
        description="Train a recipe of FILE (supervised, autoencoder or GAN) on a backend. "
        "Writes the run folder: the resolved recipe, history.csv/json, loss.png, checkpoints "
        "and the final weights.npz; for image data also a GAN's generated samples "
        "(samples/) or an autoencoder's reconstructions (reconstructions/) per epoch. Ctrl-C "
        "stops cleanly after writing a checkpoint; --resume continues from the newest good one.",
    )
    p.add_argument("file", metavar="FILE", help="the .nn file")
    p.add_argument("--recipe", metavar="NAME", help="the train recipe (default: the only one)")
    p.add_argument(
        "--backend",
        "-b",
        default="numpy",
        choices=("numpy", "torch", "tensorflow"),
        help="the backend that runs the model (default: numpy)",
    )
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
    p.add_argument("--force", action="store_true", help="resume even though the recipe has changed")
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
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="where torch runs (numpy and tensorflow run on the cpu only)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.dsl import load
    from nnc.train.progress import make_reporter
    from nnc.train.session import sigint_requests_stop, train

    program = load(args.file)
    reporter = make_reporter(args.quiet)
    with spec_source(args.file), sigint_requests_stop() as should_stop:
        result = train(
            program,
            args.recipe,
            backend=args.backend,
            epochs=args.epochs,
            batch=args.batch,
            seed=args.seed,
            out=args.out,
            resume=args.resume,
            force=args.force,
            checkpoint_every=args.checkpoint_every,
            keep=args.keep,
            device=args.device,
            base=Path(args.file).resolve().parent,
            reporter=reporter,
            should_stop=should_stop,
        )
    if result.stopped == "interrupted":
        print(
            f"interrupted; the state is saved in {result.checkpoint}\n"
            f"resume with: {resume_command(args, result.run_dir)}",
            file=sys.stderr,
        )
        return 130
    return 0


def resume_command(args: argparse.Namespace, run_dir: Path | None) -> str:
    """The command that continues this run, with the options that shape it."""
    words = ["nnc", "train", args.file, "--resume", str(run_dir)]
    for flag in ("recipe", "backend", "epochs", "batch", "seed", "device"):
        value = getattr(args, flag)
        if value is not None and not (flag == "backend" and value == "numpy"):
            words += [f"--{flag}", str(value)]
    return shlex.join(words)
