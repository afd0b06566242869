"""Training steps per second of examples/char_transformer.nn on every backend, beside
a hand-written PyTorch equivalent, in one run.

The hand-written model is what a person would write: ``nn.Embedding(62, 64)``, a
learned position table ``nn.Parameter([32, 64])``, two
``nn.TransformerEncoderLayer(64, 4, 128, dropout=0, norm_first=True,
batch_first=True)`` called with the causal mask (``is_causal=True``), ``nn.LayerNorm``
and ``nn.Linear(64, 62)``, trained with ``torch.optim.Adam`` (the recipe's settings)
and ``nn.CrossEntropyLoss`` over every position, in the idiomatic loop
(``zero_grad(set_to_none=True)``, forward, loss, backward, step, ``loss.item()``). It
starts from nnc's canonical weights (q, k and v packed into ``in_proj``).

The torch loops run interleaved step by step in a fresh random order, each step timed
on its own, so that a burst of load from other processes hits them alike:

- **hand-written, tensors**: fed tensors made once (class indices);
- **generated, tensors**: nnc's torch runtime's ``train_step_tensors`` fed the same
  inputs, its targets as one-hot tensors made once (a sequence loss takes rows; when
  the runtime has it);
- **generated, NumPy**: ``Runtime.train_step(x, y, lr)`` with NumPy batches and
  one-hot targets, what nnc's driver pays;
- **hand-written, NumPy**: ``torch.from_numpy`` of the same NumPy batches each step.

The NumPy and TensorFlow backends' ``train_step`` are timed after them, on the same
batches. Steps per second are 1 / the median step time.

    python benchmarks/char_transformer_speed.py [--steps 300] [--threads 1]
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
from nnc.ir.weights import init_weights  # noqa: E402
from nnc.train.run import build_runtime  # noqa: E402

BATCH = 32
EXAMPLE = ROOT / "examples" / "char_transformer.nn"


class HandWritten(nn.Module):
    """The example's network in plain PyTorch."""

    def __init__(self, vocab: int = 62, d: int = 64, length: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.positions = nn.Parameter(torch.zeros(length, d))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, 4, 128, dropout=0.0, norm_first=True, batch_first=True)
            for _ in range(2)
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(length))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.positions
        for block in self.blocks:
            x = block(x, src_mask=self.mask, is_causal=True)
        return self.head(self.norm(x))


def load_canonical(model: HandWritten, weights: dict[str, np.ndarray]) -> None:
    """nnc's canonical weights under torch's names (q, k, v packed into in_proj)."""
    state = {
        "embed.weight": weights["embed.weight"],
        "positions": weights["positions.weight"],
        "norm.weight": weights["norm.weight"],
        "norm.bias": weights["norm.bias"],
        "head.weight": weights["head.weight"],
        "head.bias": weights["head.bias"],
        "mask": model.mask.numpy(),
    }
    for i in (1, 2):
        ours, theirs = f"block{i}_", f"blocks.{i - 1}."
        attention = f"{ours}self_attention"
        for kind in ("weight", "bias"):
            state[f"{theirs}self_attn.in_proj_{kind}"] = np.concatenate(
                [weights[f"{attention}.{p}.{kind}"] for p in ("query", "key", "value")]
            )
            state[f"{theirs}self_attn.out_proj.{kind}"] = weights[f"{attention}.output.{kind}"]
            for part in ("norm1", "norm2", "linear1", "linear2"):
                state[f"{theirs}{part}.{kind}"] = weights[f"{ours}{part}.{kind}"]
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})


def timed(loops: dict[str, Callable[[int], float]], steps: int) -> dict[str, list[float]]:
    for loop in loops.values():  # warm up
        for i in range(20):
            loop(i)
    times: dict[str, list[float]] = {k: [] for k in loops}
    keys = list(loops)
    order = np.random.default_rng(1)
    for i in range(steps):
        for key in [keys[j] for j in order.permutation(len(keys))]:
            start = time.perf_counter()
            loops[key](i)
            times[key].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per torch loop")
    parser.add_argument("--other-steps", type=int, default=50, help="numpy, tensorflow steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    program = nnc.load(EXAMPLE)
    recipe = program.recipes["CharTransformer"]
    opt = recipe.optimizer
    weights = init_weights(program, recipe.model, seed=recipe.seed)
    rng = np.random.default_rng(0)
    count = 8
    xs = [rng.integers(0, 62, (BATCH, 32)) for _ in range(count)]
    onehots = [np.eye(62, dtype=np.float32)[y] for y in xs]  # any labels do for speed
    x_tensors = [torch.from_numpy(x) for x in xs]
    label_tensors = [torch.from_numpy(x) for x in xs]
    onehot_tensors = [torch.from_numpy(y) for y in onehots]

    def hand_written_step() -> Callable[[torch.Tensor, torch.Tensor], float]:
        model = HandWritten()
        load_canonical(model, weights)
        model.train()
        optimizer = torch.optim.Adam(
            model.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.eps
        )
        criterion = nn.CrossEntropyLoss()

        def step(x: torch.Tensor, y: torch.Tensor) -> float:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x).reshape(-1, 62), y.reshape(-1))
            loss.backward()
            optimizer.step()
            return loss.item()

        return step

    ours_tensors = build_runtime(program, recipe.model, "torch", weights, recipe.seed)
    ours_numpy = build_runtime(program, recipe.model, "torch", weights, recipe.seed)
    theirs_tensors, theirs_numpy = hand_written_step(), hand_written_step()
    loops: dict[str, Callable[[int], float]] = {
        "hand-written, tensors": lambda i: theirs_tensors(
            x_tensors[i % count], label_tensors[i % count]
        ),
        "generated, NumPy": lambda i: ours_numpy.train_step(
            xs[i % count], onehots[i % count], opt.lr
        ),
        "hand-written, NumPy": lambda i: theirs_numpy(
            torch.from_numpy(xs[i % count]), torch.from_numpy(xs[i % count])
        ),
    }
    if hasattr(ours_tensors, "train_step_tensors"):
        loops["generated, tensors"] = lambda i: ours_tensors.train_step_tensors(
            x_tensors[i % count], onehot_tensors[i % count], opt.lr
        )
    times = timed(loops, args.steps)
    for backend in ("numpy", "tensorflow"):
        runtime = build_runtime(program, recipe.model, backend, weights, recipe.seed)
        times |= timed(
            {
                f"{backend} backend, NumPy": lambda i, r=runtime: r.train_step(
                    xs[i % count], onehots[i % count], opt.lr
                )
            },
            args.other_steps,
        )

    print(
        f"examples/char_transformer.nn: batch {BATCH}, 32 characters, "
        f"{nnc.count_params(program, recipe.model):,} parameters; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); {args.steps} interleaved torch steps per loop, "
        f"{args.other_steps} numpy and tensorflow steps"
    )
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"{'loop':<26} {'steps/s':>9} {'vs hand-written':>16}")
    for key in times:
        against = "hand-written, tensors" if "tensors" in key else "hand-written, NumPy"
        ratio = median[against] / median[key]
        print(f"{key:<26} {1 / median[key]:>9.1f} {ratio:>16.3f}")
    print("steps/s: 1 / median step time; ratio: hand-written median step / this loop's")


if __name__ == "__main__":
    main()
