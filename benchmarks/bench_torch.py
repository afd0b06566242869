"""Training steps per second: nnc's generated PyTorch runtime against hand-written
PyTorch, side by side in one process.

For ``examples/digits_mlp.nn`` and ``examples/digits_cnn.nn`` (batch 64, dropout on
in both), it times

- **generated**: ``Runtime.train_step(x, y, lr)`` of the generated module, fed
  NumPy batches (it wraps them with ``torch.from_numpy``, sharing memory) and
  returning ``loss.item()``;
- **hand-written**: the same network as a plain ``nn.Sequential`` with
  ``torch.optim.Adam`` and ``nn.CrossEntropyLoss``, the idiomatic loop:
  ``torch.from_numpy`` on the same NumPy batches, ``zero_grad(set_to_none=True)``,
  forward, loss, backward, step, ``loss.item()``. It is fed the same one-hot
  targets as the generated runtime (nnc's target convention; torch reads them as
  class probabilities), and, for information, class indices (torch's cheaper
  path, which nnc's soft targets cannot use).

Both start from the same canonical weights, use the recipe's Adam settings and the
same thread count, and run in alternating rounds so that drift in machine load hits
all of them. Steps per second are measured in process CPU time (``time.process_time``,
robust on a shared machine) and in wall-clock time; the ratios reported are medians
over rounds of per-round ratios.

    python benchmarks/bench_torch.py [--steps 200] [--rounds 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import nnc  # noqa: E402
from nnc.backends import torch as backend  # noqa: E402
from nnc.ir.weights import init_weights  # noqa: E402

BATCH = 64


def hand_written(name: str) -> nn.Sequential:
    """The example's network as a person would write it in PyTorch."""
    if name == "digits_mlp":
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
    return nn.Sequential(
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


def load_canonical(model: nn.Sequential, weights: dict[str, np.ndarray]) -> None:
    """Copy canonical weights (``dense_1.weight``...) into the Sequential, in order."""
    tensors = [weights[k] for k in weights]  # PARAMETERS order: layer by layer, weight first
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), tensors, strict=True):
            parameter.copy_(torch.from_numpy(value))


def timed(step: Callable[[int], float], steps: int) -> tuple[float, float]:
    """Steps per second of ``step(i)`` over ``steps`` calls: (CPU time, wall clock)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(steps):
        step(i)
    return steps / (time.process_time() - cpu), steps / (time.perf_counter() - wall)


def bench(name: str, steps: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    program = nnc.load(ROOT / "examples" / f"{name}.nn")
    recipe = program.recipes[next(iter(program.recipes))]
    model_name = recipe.model
    weights = init_weights(program, model_name, seed=0)
    shape = program.models[model_name].inputs[0].type.shape
    opt = recipe.optimizer

    rng = np.random.default_rng(0)
    count = 16
    xs = [rng.random((BATCH, *shape), dtype=np.float32) for _ in range(count)]
    labels = [rng.integers(0, 10, BATCH) for _ in range(count)]
    onehots = [np.eye(10, dtype=np.float32)[y] for y in labels]

    runtime = backend.build(program, weights=weights)

    def generated(i: int) -> float:
        return runtime.train_step(xs[i % count], onehots[i % count], opt.lr)

    def hand_written_loop(targets: list[np.ndarray]) -> Callable[[int], float]:
        model = hand_written(name)
        load_canonical(model, weights)
        model.train()
        betas = (opt.beta1, opt.beta2)
        optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr, betas=betas, eps=opt.eps)
        criterion = nn.CrossEntropyLoss()

        def step(i: int) -> float:
            x = torch.from_numpy(xs[i % count])
            y = torch.from_numpy(targets[i % count])
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        return step

    loops = {
        "generated": generated,
        "one-hot": hand_written_loop(onehots),
        "indices": hand_written_loop(labels),
    }
    for loop in loops.values():
        timed(loop, steps // 4)  # warm up
    cpu: dict[str, list[float]] = {k: [] for k in loops}
    wall: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(rounds):
        for key, loop in loops.items():
            c, w = timed(loop, steps)
            cpu[key].append(c)
            wall[key].append(w)
    return {"cpu": cpu, "wall": wall}


def ratio(runs: dict[str, list[float]], against: str) -> str:
    ratios = [a / b for a, b in zip(runs["generated"], runs[against], strict=True)]
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}..{max(ratios):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for all loops")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {BATCH}, "
        f"{args.rounds} rounds of {args.steps} steps; steps/s are medians over rounds"
    )
    header = (
        f"{'example':<11} {'clock':<5} {'generated':>10} {'hand-written':>13} "
        f"{'(indices)':>10}   {'ratio vs hand-written':<22} {'ratio vs indices':<18}"
    )
    print(header)
    for name in ("digits_mlp", "digits_cnn"):
        result = bench(name, args.steps, args.rounds)
        for clock in ("cpu", "wall"):
            runs = result[clock]
            med = {k: statistics.median(v) for k, v in runs.items()}
            print(
                f"{name:<11} {clock:<5} {med['generated']:>8.0f}/s {med['one-hot']:>11.0f}/s "
                f"{med['indices']:>8.0f}/s   {ratio(runs, 'one-hot'):<22} {ratio(runs, 'indices')}"
            )


if __name__ == "__main__":
    main()
