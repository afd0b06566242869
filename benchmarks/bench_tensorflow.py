"""Training speed of nnc's generated TensorFlow module against hand-written Keras.

For examples/digits_mlp.nn and examples/digits_cnn.nn, batch 64, the same random
digit-shaped data (pixels in [0, 1], one-hot labels) for everyone, side by side in
one process (same TensorFlow threads):

- ``nnc``: the generated ``Runtime.train_step`` fed NumPy batches, as the training
  driver feeds it (the NumPy -> tensor conversion and the loss read-back included),
  with the module's default XLA choice, and with XLA forced on and off;
- ``nnc step``: the same compiled step called on tensors (no NumPy boundary);
- ``keras fit``: the equivalent ``keras.Sequential`` (NHWC convolutions, Adam,
  categorical cross-entropy from logits) trained with ``model.fit`` over the same
  data, with Keras' default compilation (``jit_compile="auto"``, which picks XLA
  here) and with XLA off.

Each variant runs a warm-up epoch, then the variants take turns, one timed epoch
each, ``--repeats`` rounds, so that a burst of load from elsewhere hits them alike.
Reported: training steps per second of each variant's best epoch (the one least
disturbed on a shared machine) and its median, and the ratio of the best to Keras'.
Run from the repository root:

    python benchmarks/bench_tensorflow.py [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import nnc
from nnc.backends import tensorflow as backend

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def data(shape: tuple[int, ...], steps: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, size=(steps * BATCH, *shape)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=steps * BATCH)]
    return x, y


def timed(
    epochs: dict[str, Callable[[], None]], steps: int, repeats: int
) -> dict[str, list[float]]:
    """Steps per second of every timed epoch of each variant, variants interleaved."""
    for epoch in epochs.values():
        epoch()  # warm-up: tracing, XLA compilation, Keras' own set-up
    rates: dict[str, list[float]] = {label: [] for label in epochs}
    for _ in range(repeats):
        for label, epoch in epochs.items():
            start = time.perf_counter()
            epoch()
            rates[label].append(steps / (time.perf_counter() - start))
    return rates


def keras_model(name: str, jit_compile: bool | str):  # type: ignore[no-untyped-def]
    import keras

    layers = keras.layers
    if name == "digits_mlp":
        body = [
            keras.Input((64,)),
            layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
            layers.Dropout(0.1),
            layers.Dense(10),
        ]
    else:
        body = [
            keras.Input((8, 8, 1)),  # channels-last, Keras' native layout
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="valid", activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
            layers.Dropout(0.25),
            layers.Dense(10),
        ]
    model = keras.Sequential(body)
    model.compile(
        optimizer=keras.optimizers.Adam(0.002),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def bench(name: str, steps: int, repeats: int) -> dict[str, list[float]]:
    import tensorflow as tf

    program = nnc.load(ROOT / "examples" / f"{name}.nn")
    shape = tuple(int(d) for d in program.model().inputs[0].type.shape)
    x, y = data(shape, steps)
    batches = [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)]
    epochs: dict[str, Callable[[], None]] = {}

    for label, jit in (("nnc", None), ("nnc, XLA on", True), ("nnc, XLA off", False)):
        runtime = backend.build(program, jit_compile=jit)

        def epoch(runtime=runtime) -> None:  # type: ignore[no-untyped-def]
            for xb, yb in batches:
                runtime.train_step(xb, yb, 0.002)

        epochs[label] = epoch

    runtime = backend.build(program)
    tensors = [(tf.constant(xb), tf.constant(yb)) for xb, yb in batches]
    lr, one = tf.constant(0.002), tf.constant(1.0)

    def tensor_epoch() -> None:
        for xb, yb in tensors:
            loss = runtime._step(xb, yb, lr, one)
        loss.numpy()  # wait for the last step

    epochs["nnc step (tensors)"] = tensor_epoch

    xk = x if name == "digits_mlp" else np.transpose(x, (0, 2, 3, 1))
    for label, jit in (("keras fit", "auto"), ("keras fit, XLA off", False)):
        model = keras_model(name, jit)

        def keras_epoch(model=model) -> None:  # type: ignore[no-untyped-def]
            model.fit(xk, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

        epochs[label] = keras_epoch
    return timed(epochs, steps, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per variant")
    parser.add_argument("--models", nargs="*", default=["digits_mlp", "digits_cnn"])
    args = parser.parse_args()
    import tensorflow as tf

    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, intra-op threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"batch {BATCH}, {args.steps} steps per epoch, {args.repeats} timed epochs per variant"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for name in args.models:
        rates = bench(name, args.steps, args.repeats)
        keras_best = max(rates["keras fit"])
        print(f"\n{name}")
        print(f"  {'variant':<22}{'best steps/s':>14}{'median':>10}{'best vs keras':>15}")
        for label, values in rates.items():
            best, median = max(values), statistics.median(values)
            print(f"  {label:<22}{best:>14.1f}{median:>10.1f}{best / keras_best:>14.2f}x")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
