"""Training throughput of ``examples/digits_cnn.nn``: one process against two
data-parallel workers (torch: DDP over gloo; tensorflow: MultiWorkerMirroredStrategy),
through nnc's own driver, on this machine's CPU.

The recipe is trained without validation, metrics or early stopping, so that an
epoch is its training steps (1,797 samples) plus nothing else; dropout stays on.
Samples per second are the samples of an epoch over its wall time, the median over
the epochs after the first (the first traces graphs and warms caches); the start-up
(processes, imports, joining the process group) is reported apart. Each
configuration runs in a fresh process (TensorFlow fixes its threads once):

- one process with every core as threads (the frameworks' default);
- one process with one thread;
- ``--nproc`` workers, the cores shared out among them (one thread each on two
  cores: nnc sets ``OMP_NUM_THREADS`` for the workers, as torchrun does).

    python benchmarks/bench_distributed.py [--backend torch] [--epochs 5] [--batch 64 256]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nnc  # noqa: E402
from nnc.ir.program import Program  # noqa: E402
from nnc.ir.training import Recipe  # noqa: E402
from nnc.train import RunOptions, train  # noqa: E402
from nnc.train.distributed.settings import threads_per_worker  # noqa: E402

SAMPLES = 1797  # digits: every sample trains (no validation split)


def plain_recipe(epochs: int, batch: int) -> Program:
    """digits_cnn with only its training steps in an epoch."""
    program = nnc.load(ROOT / "examples" / "digits_cnn.nn")
    recipe = program.recipes["DigitsCNN"]
    assert isinstance(recipe, Recipe)
    plain = recipe.model_copy(
        update={
            "validation": None,
            "metrics": (),
            "early_stopping": None,
            "epochs": epochs,
            "batch": batch,
        }
    )
    return program.model_copy(update={"recipes": {"DigitsCNN": plain}})


def set_threads(backend: str, threads: int) -> None:
    """This process's framework threads (before it runs anything)."""
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def measure(backend: str, epochs: int, batch: int, nproc: int, threads: int | None) -> None:
    """One configuration, in this (fresh) process: print its figures as JSON."""
    if threads is not None:
        set_threads(backend, threads)
    program = plain_recipe(epochs, batch)
    started = time.perf_counter()
    result = train(program, options=RunOptions(backend=backend, save=False, nproc=nproc))
    wall = time.perf_counter() - started
    rates = [SAMPLES / row["time"] for row in result.history[1:]]
    startup = wall - sum(row["time"] for row in result.history)
    print(json.dumps({"rate": statistics.median(rates), "startup": startup}))


def run(backend: str, epochs: int, batch: int, nproc: int, threads: int | None) -> dict[str, float]:
    """Measure one configuration in a process of its own (threads are set once)."""
    command = [sys.executable, __file__, "--backend", backend, "--epochs", str(epochs)]
    command += ["--batch", str(batch), "--measure", str(nproc), str(threads or 0)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="torch", choices=("torch", "tensorflow"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--measure", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        nproc, threads = args.measure
        measure(args.backend, args.epochs, args.batch[0], nproc, threads or None)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"digits_cnn on {args.backend}, {cores} cores, load average {load:.2f} at start")
    print(f"{'batch':>6}  {'configuration':<34} {'samples/s':>10} {'start-up s':>11}")
    per_worker = threads_per_worker(args.nproc)
    configurations = [
        (f"1 process, {cores} threads", 1, cores),
        ("1 process, 1 thread", 1, 1),
        (f"{args.nproc} workers x {per_worker} thread(s)", args.nproc, None),
    ]
    for batch in args.batch:
        for label, nproc, threads in configurations:
            figures = run(args.backend, args.epochs, batch, nproc, threads)
            rate, startup = figures["rate"], figures["startup"]
            print(f"{batch:>6}  {label:<34} {rate:>10,.0f} {startup:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
