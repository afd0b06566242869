"""Training speed and memory: nnc's generated NumPy runtime against hand-written,
idiomatic PyTorch (CPU) for the same networks.

    python benchmarks/bench_numpy.py [--threads 1] [--seconds 2] [--repeats 3]

For examples/digits_mlp.nn and examples/digits_cnn.nn, both sides train the same
network from the same canonical initial weights, with dropout, batch 64 and the
recipe's Adam, on random data of the right shape (512 samples, cycled). Each
(framework, model) pair runs in a subprocess of its own, so that its peak memory is
its own. Reported:

- steps/s: training steps per second (the best of ``--repeats`` timed windows of
  ``--seconds`` each, after warm-up steps);
- ratio: NumPy steps/s divided by PyTorch steps/s (targets: MLP >= 0.7, CNN >= 0.3);
- peak memory, two ways: the peak resident set size of the whole worker process
  (``ru_maxrss``: interpreter, framework and training together) for both; and, for
  NumPy, the peak of the bytes traced by ``tracemalloc`` over 50 training steps
  (NumPy reports its array buffers to tracemalloc; PyTorch does not, so it has no
  such figure). The growth of ``ru_maxrss`` during training is printed too: for these
  small networks it is ~0 on both sides, since importing the framework already set
  a higher mark.

Threads: NumPy's BLAS and PyTorch get the same thread count (``--threads``, default
1): the BLAS variables (OMP/OpenBLAS/MKL) are set before NumPy is imported, and
``torch.set_num_threads`` gets the same number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"mlp": "digits_mlp.nn", "cnn": "digits_cnn.nn"}
TARGETS = {"mlp": 0.7, "cnn": 0.3}
BATCH = 64
SAMPLES = 512


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def _data(model: str):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (SAMPLES, 64) if model == "mlp" else (SAMPLES, 1, 8, 8)
    x = rng.uniform(size=shape).astype(np.float32)
    labels = rng.integers(0, 10, size=SAMPLES)
    return x, labels, np.eye(10, dtype=np.float32)[labels]


def _timed(step, seconds: float, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """The best steps/s over ``repeats`` windows of about ``seconds`` each."""
    for i in range(20):  # warm-up
        step(i)
    best = 0.0
    i = 0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step(i)
            i += 1
            count += 1
        best = max(best, count / (time.perf_counter() - start))
    return best


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _numpy_worker(model: str, seconds: float, repeats: int) -> dict[str, float]:
    import tracemalloc

    sys.path.insert(0, str(ROOT))
    import nnc
    from nnc.backends.numpy import build

    program = nnc.load(ROOT / "examples" / MODELS[model])
    runtime = build(program)
    lr = program.recipes[next(iter(program.recipes))].optimizer.lr
    x, _, onehot = _data(model)

    def step(i: int) -> None:
        start = (i * BATCH) % SAMPLES
        runtime.train_step(x[start : start + BATCH], onehot[start : start + BATCH], lr)

    step(0)
    before = _maxrss_mib()
    speed = _timed(step, seconds, repeats)
    after = _maxrss_mib()
    tracemalloc.start()
    for i in range(50):
        step(i)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "steps_per_s": speed,
        "rss_growth_mib": after - before,
        "rss_peak_mib": after,
        "traced_peak_mib": traced / 2**20,
        "blas_threads": float(os.environ.get("OPENBLAS_NUM_THREADS", "0")),
    }


def _torch_worker(model: str, seconds: float, repeats: int, threads: int) -> dict[str, float]:
    import torch
    from torch import nn

    sys.path.insert(0, str(ROOT))
    import nnc
    from nnc.ir.weights import init_weights

    torch.set_num_threads(threads)
    program = nnc.load(ROOT / "examples" / MODELS[model])
    recipe = program.recipes[next(iter(program.recipes))]
    if model == "mlp":
        net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
        names = {"0": "dense_1", "3": "dense_2"}
    else:
        net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(64, 10),
        )
        names = {"0": "conv2d_1", "3": "conv2d_2", "6": "dense_1", "9": "dense_2"}
    # The same canonical initial weights (canonical layouts are PyTorch's).
    weights = init_weights(program, program.models[recipe.model], recipe.seed)
    state = {
        f"{index}.{kind}": torch.from_numpy(weights[f"{node}.{kind}"])
        for index, node in names.items()
        for kind in ("weight", "bias")
    }
    net.load_state_dict(state)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.optimizer.lr)
    loss_fn = nn.CrossEntropyLoss()
    x_np, labels_np, _ = _data(model)
    x, labels = torch.from_numpy(x_np), torch.from_numpy(labels_np)

    def step(i: int) -> None:
        start = (i * BATCH) % SAMPLES
        optimizer.zero_grad()
        loss = loss_fn(net(x[start : start + BATCH]), labels[start : start + BATCH])
        loss.backward()
        optimizer.step()

    step(0)
    before = _maxrss_mib()
    speed = _timed(step, seconds, repeats)
    after = _maxrss_mib()
    return {
        "steps_per_s": speed,
        "rss_growth_mib": after - before,
        "rss_peak_mib": after,
        "torch_threads": float(torch.get_num_threads()),
    }


def _run_worker(args: argparse.Namespace, model: str, framework: str) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        f"{model}:{framework}",
        "--threads",
        str(args.threads),
        "--seconds",
        str(args.seconds),
        "--repeats",
        str(args.repeats),
    ]
    env = {**os.environ}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{model}/{framework} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of a timed window")
    parser.add_argument("--repeats", type=int, default=3, help="timed windows (the best counts)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _limit_threads(args.threads)
        model, framework = args.worker.split(":")
        if framework == "numpy":
            out = _numpy_worker(model, args.seconds, args.repeats)
        else:
            out = _torch_worker(model, args.seconds, args.repeats, args.threads)
        print(json.dumps(out))
        return

    load = os.getloadavg()
    print(
        f"nnc NumPy runtime vs hand-written PyTorch (CPU): batch {BATCH}, Adam, dropout on, "
        f"{args.threads} thread(s) each"
    )
    print(
        f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"
    )
    rows = [
        [
            "model",
            "numpy steps/s",
            "torch steps/s",
            "ratio",
            "target",
            "numpy peak RSS MiB (+train)",
            "numpy traced MiB",
            "torch peak RSS MiB (+train)",
        ]
    ]
    for model in MODELS:
        numpy_result = _run_worker(args, model, "numpy")
        torch_result = _run_worker(args, model, "torch")
        ratio = numpy_result["steps_per_s"] / torch_result["steps_per_s"]
        rows.append(
            [
                model,
                f"{numpy_result['steps_per_s']:.0f}",
                f"{torch_result['steps_per_s']:.0f}",
                f"{ratio:.2f}",
                f">={TARGETS[model]} {'met' if ratio >= TARGETS[model] else 'MISSED'}",
                f"{numpy_result['rss_peak_mib']:.0f} (+{numpy_result['rss_growth_mib']:.1f})",
                f"{numpy_result['traced_peak_mib']:.2f}",
                f"{torch_result['rss_peak_mib']:.0f} (+{torch_result['rss_growth_mib']:.1f})",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * width for width in widths))
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
