"""Training steps per second: nnc's generated PyTorch runtime against hand-written
PyTorch, side by side in one process.

For ``examples/digits_mlp.nn`` and ``examples/digits_cnn.nn`` (batch 64, dropout on
in all loops), the hand-written model is the same network as a plain
``nn.Sequential`` with ``torch.optim.Adam`` and ``nn.CrossEntropyLoss``, the idiomatic
loop: ``zero_grad(set_to_none=True)``, forward, loss, backward, step, ``loss.item()``.
Five loops run:

- **tensor level** (the fair comparison of the generated code): the generated
  ``Runtime.train_step_tensors`` (its ``nn.Module``, ``compute_loss`` and
  ``torch.optim.Adam``) against the hand-written step, both fed the same tensors
  (inputs and class indices) made once before timing;
- **from NumPy** (what nnc's driver pays): ``Runtime.train_step(x, y, lr)`` fed
  NumPy batches with one-hot targets, nnc's target convention (it wraps both with
  ``torch.from_numpy``; torch reads the rows as class probabilities), against the
  hand-written step calling ``torch.from_numpy`` on the same NumPy batches, given
  the one-hot rows or, as a data loader would, class indices.

All start from the same canonical weights, with the recipe's Adam settings and the
same thread count. The loops are interleaved step by step, each step timed on its
own, so that a burst of load from other processes hits all of them alike, and the
order is drawn afresh every step (a loop that follows another kind of step runs
colder, so none may always follow the same one); steps per
second are 1 / the median step time (robust to preemption), with the mean-based
throughput beside it.

    python benchmarks/bench_torch.py [--steps 2000] [--threads 1]
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


def bench(name: str, steps: int) -> dict[str, list[float]]:
    """Per-step times of every loop, interleaved step by step."""
    program = nnc.load(ROOT / "examples" / f"{name}.nn")
    recipe = program.recipes[next(iter(program.recipes))]
    weights = init_weights(program, recipe.model, seed=0)
    shape = program.models[recipe.model].inputs[0].type.shape
    opt = recipe.optimizer

    rng = np.random.default_rng(0)
    count = 16
    xs = [rng.random((BATCH, *shape), dtype=np.float32) for _ in range(count)]
    labels = [rng.integers(0, 10, BATCH) for _ in range(count)]
    onehots = [np.eye(10, dtype=np.float32)[y] for y in labels]
    x_tensors = [torch.from_numpy(x) for x in xs]
    label_tensors = [torch.from_numpy(y) for y in labels]

    def hand_written_step() -> Callable[[torch.Tensor, torch.Tensor], float]:
        model = hand_written(name)
        load_canonical(model, weights)
        model.train()
        betas = (opt.beta1, opt.beta2)
        optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr, betas=betas, eps=opt.eps)
        criterion = nn.CrossEntropyLoss()

        def step(x: torch.Tensor, y: torch.Tensor) -> float:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        return step

    ours_tensors = backend.build(program, weights=weights)
    ours_numpy = backend.build(program, weights=weights)
    theirs_tensors, theirs_onehot, theirs_indices = (hand_written_step() for _ in range(3))
    loops: dict[str, Callable[[int], float]] = {
        "generated, tensors": lambda i: ours_tensors.train_step_tensors(
            x_tensors[i % count], label_tensors[i % count], opt.lr
        ),
        "hand-written, tensors": lambda i: theirs_tensors(
            x_tensors[i % count], label_tensors[i % count]
        ),
        "generated, NumPy one-hot": lambda i: ours_numpy.train_step(
            xs[i % count], onehots[i % count], opt.lr
        ),
        "hand-written, NumPy one-hot": lambda i: theirs_onehot(
            torch.from_numpy(xs[i % count]), torch.from_numpy(onehots[i % count])
        ),
        "hand-written, NumPy indices": lambda i: theirs_indices(
            torch.from_numpy(xs[i % count]), torch.from_numpy(labels[i % count])
        ),
    }
    for loop in loops.values():  # warm up
        for i in range(50):
            loop(i)
    times: dict[str, list[float]] = {k: [] for k in loops}
    keys = list(loops)
    order = np.random.default_rng(1)
    for i in range(steps):
        # A fresh random order every step: a step that follows another kind of step
        # (class indices after one-hot rows, the CNN's kernels after the MLP's) runs
        # colder, so no loop may always follow the same one. (A rotated order keeps
        # each loop's predecessor fixed; it cost the generated one-hot loop ~0.01.)
        for key in [keys[j] for j in order.permutation(len(keys))]:
            start = time.perf_counter()
            loops[key](i)
            times[key].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per loop")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for all loops")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {BATCH}, "
        f"{args.steps} interleaved steps per loop"
    )
    print(f"{'example':<11} {'loop':<28} {'steps/s (median)':>16} {'(mean)':>9} {'ratio':>7}")
    for name in ("digits_mlp", "digits_cnn"):
        times = bench(name, args.steps)
        median = {key: statistics.median(values) for key, values in times.items()}
        for key, values in times.items():
            mean = len(values) / sum(values)
            ratio = ""
            if key.startswith("generated"):
                against = key.replace("generated", "hand-written")
                ratio = f"{median[against] / median[key]:.3f}"
            print(f"{name:<11} {key:<28} {1 / median[key]:>14.0f}/s {mean:>7.0f}/s {ratio:>7}")
    print("ratio: generated steps/s over hand-written steps/s, fed the same data (median step)")


if __name__ == "__main__":
    main()
