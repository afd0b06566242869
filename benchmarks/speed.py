"""Training speed of nnc's runtimes against hand-written PyTorch and Keras ``fit``
for the five networks of issue 23, side by side in one run.

    python benchmarks/speed.py [--seconds 1] [--rounds 3] [--only mlp,lstm] [--quick]

``--quick`` is a smoke run (0.2 s windows, 2 rounds): the table in about a minute,
its figures too noisy to quote.

Setup (as in the issue): every implementation runs in a subprocess of its own with
1 thread (BLAS variables set before NumPy is imported, ``torch.set_num_threads(1)``,
TensorFlow's intra/inter-op pools at 1); batch 64 (128 for the 784-512-512-10 MLP);
Adam (lr 0.001); random data of the right shape (1024 samples, cycled). nnc's
runtimes are driven through ``nnc.runtime(program, backend).train_step`` with NumPy
batches; "hand torch" is an idiomatic ``nn.Sequential``/``nn.LSTM`` loop with
``torch.optim.Adam`` and ``CrossEntropyLoss``; "keras fit" is ``keras.Sequential``
(channels-last convolutions) trained with ``fit``, one epoch over the data tiled 8 times
per call. The
figures are steps/s, the best of ``--rounds`` windows. For nnc numpy the peak of
``tracemalloc``'s traced bytes over 20 training steps is printed too (MiB).

Baseline, 2026-12-07 08:00 UTC, before any of issue 23's kernel work, on the shared
2-CPU machine (load average 4.10 before, 3.64 after: noisy, compare ratios only),
``--seconds 0.5 --rounds 3``:

| network | nnc np | torch | nnc torch | nnc tf | keras | np/torch | nnc t/t | tf/keras | np MiB |
|---|---|---|---|---|---|---|---|---|---|
| MLP 64-128-64-10 | 3208 | 1153 | 1741 | 1365 | 465 | 2.78 | 1.51 | 2.94 | 0.27 |
| CNN on 8x8 | 165 | 332 | 498 | 682 | 381 | 0.50 | 1.50 | 1.79 | 3.07 |
| MLP 784-512-512-10 (128) | 142 | 130 | 101 | 146 | 95 | 1.09 | 0.78 | 1.53 | 8.16 |
| LeNet-5 on 32x32 | 71 | 116 | 114 | 131 | 96 | 0.62 | 0.98 | 1.37 | 15.79 |
| LSTM(64), 20 steps of 8 | 54 | 210 | 213 | 98 | 196 | 0.26 | 1.01 | 0.50 | 3.91 |

After the NumPy work of 2026-12-08 (the runtime keeps freed memory, so a step no longer
page-faults its temporaries in: LeNet-5 had 3120 minor faults a step, the CNN 687, the
LSTM 1008; stride-1 convolutions with narrow outputs take whole-row patches; products
over many positions go in blocks of 4096 columns; separable window sums). The machine
was overloaded (load average 11-12 on 2 CPUs, the full test suite running beside it),
``--seconds 1 --rounds 3`` (``--repeat 2`` for the first two rows), so the wall-clock
figures are a fraction of a quiet run's:

| network | nnc np | torch | nnc torch | nnc tf | keras | np/torch | nnc t/t | tf/keras | np MiB |
|---|---|---|---|---|---|---|---|---|---|
| MLP 64-128-64-10 | 285 | 87 | 103 | 52 | 128 | 3.29 | 1.18 | 0.40 | 0.27 |
| CNN on 8x8 | 63 | 53 | 76 | 78 | 86 | 1.19 | 1.42 | 0.91 | 3.20 |
| MLP 784-512-512-10 (128) | 18 | 17 | 19 | 19 | 30 | 1.06 | 1.12 | 0.64 | 8.16 |
| LeNet-5 on 32x32 | 12 | 12 | 14 | 17 | 26 | 1.00 | 1.17 | 0.64 | 15.49 |
| LSTM(64), 20 steps of 8 | 31 | 37 | 61 | 20 | 90 | 0.84 | 1.64 | 0.23 | 4.31 |

On such a machine, compare in one process instead: the generated module's
``train_step`` and the hand-written torch loop taking turns (0.2 s windows, 8 rounds
each, the best of each, per-thread CPU time) gave numpy/torch 3.20 (MLP), 1.17 (CNN),
1.11 (784-512-512-10 MLP), 1.13 (LeNet-5) and 1.20 (LSTM), and nnc torch/torch 1.01
(LeNet-5), 0.96 (LSTM) and 0.97 (CNN), at load averages 8.4 to 11.7.

Quiet runs on this machine (Intel Xeon, 2 CPUs), ``--seconds 1 --rounds 3``, before
(main 5ef45fd, 2026-12-07 23:07, load 0.48 before, 1.08 after) and after the NumPy
kernel and memory work, the Keras model and the in-place ReLU (main fd0f853,
2026-12-08 00:57, load 1.13 before, 1.01 after):

| network | nnc np | torch | nnc torch | nnc tf | keras | np/torch | nnc t/t | tf/keras | np MiB |
|---|---|---|---|---|---|---|---|---|---|
| MLP 64-128-64-10, before | 4008 | 1358 | 1714 | 1199 | 673 | 2.95 | 1.26 | 1.78 | 0.27 |
| MLP 64-128-64-10, after | 4773 | 1797 | 1728 | 1397 | 862 | 2.66 | 0.96 | 1.62 | 0.27 |
| CNN on 8x8, before | 254 | 465 | 486 | 516 | 317 | 0.55 | 1.04 | 1.63 | 2.95 |
| CNN on 8x8, after | 513 | 526 | 497 | 695 | 501 | 0.97 | 0.94 | 1.39 | 3.20 |
| MLP 784-512-512-10 (128), before | 148 | 149 | 145 | 145 | 134 | 1.00 | 0.97 | 1.08 | 8.16 |
| MLP 784-512-512-10 (128), after | 146 | 145 | 141 | 126 | 134 | 1.01 | 0.97 | 0.94 | 8.16 |
| LeNet-5 on 32x32, before | 65 | 126 | 114 | 133 | 103 | 0.52 | 0.90 | 1.28 | 15.77 |
| LeNet-5 on 32x32, after | 139 | 121 | 118 | 152 | 135 | 1.15 | 0.97 | 1.12 | 15.48 |
| LSTM(64), 20 steps of 8, before | 154 | 242 | 234 | 130 | 156 | 0.63 | 0.97 | 0.83 | 4.31 |
| LSTM(64), 20 steps of 8, after | 309 | 331 | 319 | 195 | 220 | 0.93 | 0.96 | 0.89 | 4.31 |
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 1024
LR = 0.001

TRAIN = """
train {name} {{
    data       "bench.npz"
    loss       cross_entropy
    optimizer  adam(lr = 0.001)
    epochs     1
    batch      {batch}
    seed       0
}}
"""

NETWORKS: dict[str, dict[str, object]] = {
    "mlp": {
        "title": "MLP 64-128-64-10",
        "batch": 64,
        "shape": (64,),
        "body": "input x: [64]\n dense(128) relu\n dense(64) relu\n dense(10)",
    },
    "cnn": {
        "title": "CNN on 8x8 (2 conv, 2 maxpool, 2 dense)",
        "batch": 64,
        "shape": (1, 8, 8),
        "body": "input x: [1, 8, 8]\n conv2d(16, kernel = 3, padding = same) relu\n maxpool(2)\n"
        " conv2d(32, kernel = 3, padding = same) relu\n maxpool(2)\n flatten\n"
        " dense(64) relu\n dense(10)",
    },
    "mnist": {
        "title": "MLP 784-512-512-10, batch 128",
        "batch": 128,
        "shape": (784,),
        "body": "input x: [784]\n dense(512) relu\n dense(512) relu\n dense(10)",
    },
    "lenet": {
        "title": "LeNet-5 on 32x32",
        "batch": 64,
        "shape": (1, 32, 32),
        "body": "input x: [1, 32, 32]\n conv2d(6, 5) tanh\n avgpool(2)\n conv2d(16, 5) tanh\n"
        " avgpool(2)\n conv2d(120, 5) tanh\n flatten\n dense(84) tanh\n dense(10)",
    },
    "lstm": {
        "title": "LSTM(64) over 20 steps of 8, then dense(10)",
        "batch": 64,
        "shape": (20, 8),
        "body": "input x: [20, 8]\n lstm(64)\n dense(10)",
    },
}
IMPLEMENTATIONS = ("nnc numpy", "hand torch", "nnc torch", "nnc tf", "keras fit")


def _source(net: str) -> str:
    spec = NETWORKS[net]
    name = f"Bench{net.capitalize()}"
    return f"model {name} {{\n {spec['body']}\n}}\n" + TRAIN.format(name=name, batch=spec["batch"])


def _data(net: str):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(0)
    shape = NETWORKS[net]["shape"]
    x = rng.uniform(size=(SAMPLES, *shape)).astype(np.float32)  # type: ignore[misc]
    labels = rng.integers(0, 10, size=SAMPLES)
    return x, labels, np.eye(10, dtype=np.float32)[labels]


def _best(step, batch: int, seconds: float, rounds: int) -> float:  # type: ignore[no-untyped-def]
    for i in range(10):  # warm-up (and tracing for tf)
        step(i)
    best, i = 0.0, 0
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step(i)
            i += 1
            count += 1
        best = max(best, count / (time.perf_counter() - start))
    return best


def _nnc(net: str, backend: str, seconds: float, rounds: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    import nnc

    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{net}.nn"
        path.write_text(_source(net))
        x, labels, onehot = _data(net)
        import numpy as np

        np.savez(Path(tmp) / "bench.npz", x=x[:16], y=labels[:16])  # for the checker only
        program = nnc.load(path)
    runtime = nnc.runtime(program, backend)
    batch = int(NETWORKS[net]["batch"])  # type: ignore[call-overload]
    per_epoch = SAMPLES // batch

    def step(i: int) -> None:
        start = (i % per_epoch) * batch
        runtime.train_step(x[start : start + batch], onehot[start : start + batch], LR)

    out = {"steps_per_s": _best(step, batch, seconds, rounds)}
    if backend == "numpy":
        import tracemalloc

        tracemalloc.start()
        for i in range(20):
            step(i)
        out["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return out


def _torch_net(net: str):  # type: ignore[no-untyped-def]
    from torch import nn

    if net == "mlp":
        return nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
        )
    if net == "mnist":
        return nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )
    if net == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10),
        )  # fmt: skip
    if net == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
            nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
        )  # fmt: skip

    class LastLSTM(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 64, batch_first=True)
            self.dense = nn.Linear(64, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            _, (h, _) = self.lstm(x)
            return self.dense(h[-1])

    return LastLSTM()


def _hand_torch(net: str, seconds: float, rounds: int) -> dict[str, float]:
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = _torch_net(net)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    x_np, labels_np, _ = _data(net)
    x, labels = torch.from_numpy(x_np), torch.from_numpy(labels_np)
    batch = int(NETWORKS[net]["batch"])  # type: ignore[call-overload]
    per_epoch = SAMPLES // batch

    def step(i: int) -> None:
        start = (i % per_epoch) * batch
        optimizer.zero_grad()
        loss_fn(model(x[start : start + batch]), labels[start : start + batch]).backward()
        optimizer.step()

    return {"steps_per_s": _best(step, batch, seconds, rounds)}


def _keras_fit(net: str, seconds: float, rounds: int) -> dict[str, float]:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    bodies = {
        "mlp": [layers.Dense(128, "relu"), layers.Dense(64, "relu"), layers.Dense(10)],
        "mnist": [layers.Dense(512, "relu"), layers.Dense(512, "relu"), layers.Dense(10)],
        "cnn": [
            layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(64, "relu"), layers.Dense(10),
        ],
        "lenet": [
            layers.Conv2D(6, 5, activation="tanh"), layers.AveragePooling2D(2),
            layers.Conv2D(16, 5, activation="tanh"), layers.AveragePooling2D(2),
            layers.Conv2D(120, 5, activation="tanh"), layers.Flatten(),
            layers.Dense(84, "tanh"), layers.Dense(10),
        ],
        "lstm": [layers.LSTM(64), layers.Dense(10)],
    }  # fmt: skip
    x, _, onehot = _data(net)
    if x.ndim == 4:
        x = np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))  # channels-last
    model = keras.Sequential([keras.Input(x.shape[1:]), *bodies[net]])
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    batch = int(NETWORKS[net]["batch"])  # type: ignore[call-overload]
    # One fit call covers the data 8 times, so that fit's per-call set-up is amortised.
    x, onehot = np.concatenate([x] * 8), np.concatenate([onehot] * 8)
    model.fit(x, onehot, batch_size=batch, epochs=1, verbose=0)  # warm-up and tracing
    per_epoch = len(x) // batch
    best = 0.0
    for _ in range(rounds):
        epochs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.fit(x, onehot, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            epochs += 1
        best = max(best, epochs * per_epoch / (time.perf_counter() - start))
    return {"steps_per_s": best}


def _worker(net: str, implementation: str, seconds: float, rounds: int) -> dict[str, float]:
    if implementation == "hand torch":
        return _hand_torch(net, seconds, rounds)
    if implementation == "keras fit":
        return _keras_fit(net, seconds, rounds)
    backend = {"nnc numpy": "numpy", "nnc torch": "torch", "nnc tf": "tensorflow"}
    return _nnc(net, backend[implementation], seconds, rounds)


def _run(net: str, implementation: str, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    command = [sys.executable, __file__, "--worker", f"{net}:{implementation}"]
    command += ["--seconds", str(args.seconds), "--rounds", str(args.rounds)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{net}/{implementation} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of a timed window")
    parser.add_argument("--rounds", type=int, default=3, help="timed windows (the best counts)")
    parser.add_argument("--only", help="comma-separated networks: " + ",".join(NETWORKS))
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every implementation's process this many times, interleaved, and keep "
        "the best (steadier figures on a loaded machine)",
    )
    parser.add_argument("--quick", action="store_true", help="0.2 s windows, 2 rounds (smoke run)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 0.2, 2
    if args.worker:
        net, implementation = args.worker.split(":")
        print(json.dumps(_worker(net, implementation, args.seconds, args.rounds)))
        return
    nets = args.only.split(",") if args.only else list(NETWORKS)
    load = os.getloadavg()
    print(
        f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"
    )
    header = [
        *IMPLEMENTATIONS,
        "numpy/torch",
        "nnc torch/torch",
        "nnc tf/keras",
        "numpy traced MiB",
    ]
    print("| network | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for net in nets:
        results: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):
            for impl in IMPLEMENTATIONS:
                result = _run(net, impl, args)
                if result["steps_per_s"] > results.get(impl, {}).get("steps_per_s", 0.0):
                    results[impl] = result
        rate = {impl: results[impl]["steps_per_s"] for impl in IMPLEMENTATIONS}
        cells = [f"{rate[impl]:.0f}" for impl in IMPLEMENTATIONS]
        cells += [
            f"{rate['nnc numpy'] / rate['hand torch']:.2f}",
            f"{rate['nnc torch'] / rate['hand torch']:.2f}",
            f"{rate['nnc tf'] / rate['keras fit']:.2f}",
            f"{results['nnc numpy']['traced_peak_mib']:.2f}",
        ]
        print(f"| {NETWORKS[net]['title']} | " + " | ".join(cells) + " |", flush=True)
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
