"""GAN and autoencoder runs of the examples through ``nnc train``'s driver: what they
learn, and how fast each backend takes the steps.

For ``examples/gan.nn`` on each backend: the per-epoch figures (D's mean output on
real and generated samples, the generated pixels' mean and standard deviation
against the data's) at a few epochs, and the training rounds per second (one round:
``d_steps`` discriminator steps and one generator step on a batch of 64), the median
over epochs of batches / the epoch's training time. For the autoencoders (with
``--autoencoders``): the held-out reconstruction error before and after training.

Every run starts from the same canonical weights and sees the same batches and
noise, so the backends' figures agree to float32 rounding; timings depend on the
machine's load. torch and TensorFlow run on ``--threads`` intra-op threads (default
1: on a busy 2-core machine, torch's two spinning threads made rounds 50 times
slower). With torch, ``--compare`` also times the generated ``GanRuntime``'s rounds
against a hand-written PyTorch GAN loop (the same two networks, ``torch.optim.Adam``,
``BCEWithLogitsLoss``), interleaved round by round; medians.

    python benchmarks/bench_gan.py [--epochs 50] [--backends numpy torch tensorflow]
                                   [--threads 1] [--out runs/bench-gan]
                                   [--autoencoders] [--compare]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import nnc  # noqa: E402
from nnc.backends import framework_available, get_backend  # noqa: E402
from nnc.data import prepare  # noqa: E402
from nnc.train import RunOptions, train  # noqa: E402
from nnc.train.gan import sample_noise  # noqa: E402


def shown_epochs(epochs: int) -> list[int]:
    picks = {1, 2, 5, 10, 20, 30, 40, epochs}
    return sorted(e for e in picks if e <= epochs)


def bench_gan(backends: list[str], epochs: int, out: Path | None) -> None:
    program = nnc.load(ROOT / "examples" / "gan.nn")
    recipe = program.recipes["DigitsGAN"]
    untrained = get_backend("numpy").build_gan(program).generate(sample_noise(9, recipe.noise))
    print(f"examples/gan.nn, {epochs} epochs of 29 batches (batch 64)")
    print(f"before training: fake_mean {untrained.mean():.4f}  fake_std {untrained.std():.4f}")
    for backend in backends:
        started = time.perf_counter()
        result = train(
            program,
            options=RunOptions(
                backend=backend,
                epochs=epochs,
                out=None if out is None else out / f"gan-{backend}",
                save=out is not None,
            ),
        )
        total = time.perf_counter() - started
        final = result.final
        print(f"\n{backend}: data_mean {final['data_mean']:.4f}  data_std {final['data_std']:.4f}")
        print("epoch   d_loss   g_loss   d_real   d_fake   fake_mean   fake_std")
        for row in result.history:
            if int(row["epoch"]) in shown_epochs(epochs):
                print(
                    f"{int(row['epoch']):>5}  {row['d_loss']:7.4f}  {row['g_loss']:7.4f}  "
                    f"{row['d_real']:7.4f}  {row['d_fake']:7.4f}  {row['fake_mean']:10.4f}  "
                    f"{row['fake_std']:9.4f}"
                )
        rates = [29 / row["time"] for row in result.history]
        print(
            f"{backend}: {statistics.median(rates):,.0f} rounds/s (median over epochs; "
            f"{min(rates):,.0f} to {max(rates):,.0f}), {total:.1f} s in all"
        )


def bench_autoencoders(backends: list[str], out: Path | None) -> None:
    for name in ("autoencoder", "conv_autoencoder"):
        program = nnc.load(ROOT / "examples" / f"{name}.nn")
        recipe = next(iter(program.recipes.values()))
        data = prepare(program, recipe)
        assert data.validation is not None
        before = get_backend("numpy").build(program).loss(data.validation.x, data.validation.y)
        for backend in backends:
            started = time.perf_counter()
            result = train(
                program,
                options=RunOptions(
                    backend=backend,
                    out=None if out is None else out / f"{name}-{backend}",
                    save=out is not None,
                ),
            )
            after = result.final["val_loss"]
            print(
                f"{name} on {backend}: held-out MSE {before:.4f} before, {after:.4f} after "
                f"{recipe.epochs} epochs ({before / after:.1f}x lower), "
                f"{time.perf_counter() - started:.1f} s"
            )


def compare_torch(rounds: int) -> None:
    """The generated torch GanRuntime against a hand-written loop, round by round."""
    import torch
    from torch import nn

    program = nnc.load(ROOT / "examples" / "gan.nn")
    runtime = get_backend("torch").build_gan(program)
    generator = nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.Tanh())
    discriminator = nn.Sequential(nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    g_opt = torch.optim.Adam(generator.parameters(), 1e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), 1e-3, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 64)).astype(np.float32)
    z = rng.standard_normal((64, 16)).astype(np.float32)
    ones, zeros = torch.ones(64, 1), torch.zeros(64, 1)

    def generated() -> None:
        runtime.discriminator_step(x, z, 1e-3)
        runtime.generator_step(z, 1e-3)

    def hand_written() -> None:
        real, noise = torch.from_numpy(x), torch.from_numpy(z)
        with torch.no_grad():
            fake = generator(noise)
        d_opt.zero_grad(set_to_none=True)
        loss = bce(discriminator(real), ones) + bce(discriminator(fake), zeros)
        loss.backward()
        d_opt.step()
        loss.item()
        g_opt.zero_grad(set_to_none=True)
        loss = bce(discriminator(generator(noise)), ones)
        loss.backward(inputs=list(generator.parameters()))
        g_opt.step()
        loss.item()

    times: dict[str, list[float]] = {"generated GanRuntime": [], "hand-written loop": []}
    loops = list(zip(times, (generated, hand_written), strict=True))
    for k in range(rounds + 10):
        for name, step in loops if k % 2 else reversed(loops):
            started = time.perf_counter()
            step()
            if k >= 10:  # warm-up rounds are not timed
                times[name].append(time.perf_counter() - started)
    print(f"\ntorch, {rounds} rounds of batch 64, {torch.get_num_threads()} thread(s):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name}: {1 / median:,.0f} rounds/s (median {1000 * median:.2f} ms)")


def set_threads(threads: int, backends: list[str]) -> None:
    if "torch" in backends:
        import torch

        torch.set_num_threads(threads)
    if "tensorflow" in backends:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--backends", nargs="+", default=["numpy", "torch", "tensorflow"])
    parser.add_argument("--out", type=Path, help="keep the run folders (pictures) here")
    parser.add_argument("--autoencoders", action="store_true", help="also the autoencoders")
    parser.add_argument("--threads", type=int, default=1, help="torch/TF intra-op threads")
    parser.add_argument("--compare", action="store_true", help="generated vs hand-written torch")
    args = parser.parse_args()
    backends = [b for b in args.backends if framework_available(b)]
    skipped = sorted(set(args.backends) - set(backends))
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)}")
    set_threads(args.threads, backends)
    bench_gan(backends, args.epochs, args.out)
    if args.compare and "torch" in backends:
        compare_torch(500)
    if args.autoencoders:
        print()
        bench_autoencoders(backends, args.out)


if __name__ == "__main__":
    main()
