"""Fine-tuning an imported ResNet-18 on the bundled digits, end to end through the CLI.

1. A ResNet-18 is built in torch from tests/architectures/nets.py (1 grey input
   channel, 1,000 classes), randomly initialised as torchvision initialises it
   (Kaiming-normal convolutions, fan-out), and exported to ONNX (opset 17, eval mode:
   batchnorm folded into the convolutions). No pretrained weights: the backbone is
   random.
2. ``nnc import`` turns it into a .nn spec and weights.
3. ``nnc opt --pass replace-head:classes=10 --pass 'freeze:nodes=conv2d_*'`` gives it
   a fresh 10-class head and freezes the backbone (``--unfreeze-last`` leaves the
   last stage trainable).
4. A train block is appended (the digits upscaled to the network's input, adam) and
   ``nnc train --weights`` trains it from the imported weights on each backend.

It prints the validation accuracy and the seconds of each backend's run. Measured
(2026-12-07, defaults: 32x32, 8 epochs, adam 0.03, backbone frozen; a two-core
machine shared with other jobs, load about 14):

    params: 11,170,570 (5,130 trainable, 11,165,440 frozen)
    numpy: val_accuracy per epoch [0.749, 0.819, 0.844, 0.869, 0.903, 0.903, 0.911, 0.914]
    torch: val_accuracy per epoch [0.749, 0.819, 0.844, 0.869, 0.903, 0.903, 0.911, 0.914]
    backend    final val acc   best   seconds
    numpy             0.9140  0.914    1124.6
    torch             0.9140  0.914     666.0

    PYTHONPATH=. python benchmarks/finetune_resnet18.py [--size 32] [--epochs 10]
        [--backends numpy,torch] [--unfreeze-last] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = """
train {model} {{
    data       digits, scale = unit, upscale = {upscale}
    validation 0.2
    loss       cross_entropy
    optimizer  adam(lr = {lr})
    epochs     {epochs}
    batch      32
    metrics    accuracy
    seed       0
}}
"""

# The last stage of ResNet-18 at any width: its 5 convolutions (2 blocks, the first
# with its 1x1 projection) are the last 5 of the import's 20.
LAST_STAGE = [f"conv2d_{k}" for k in range(16, 21)]


def nnc(*args: str) -> str:
    """Run the nnc CLI of this checkout; its stderr (the report) is returned."""
    done = subprocess.run(
        [sys.executable, "-m", "nnc.cli.main", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"nnc {' '.join(args)} failed:\n{done.stderr}")
    return done.stderr


def export_resnet18(path: Path, size: int) -> int:
    import torch
    from torch import nn

    from tests.architectures.check import export
    from tests.architectures.nets import build, parameter_count

    module = build("resnet18", channels=1)
    torch.manual_seed(0)
    with torch.no_grad():  # torchvision's initialisation, batchnorm as identity
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    path.write_bytes(export(module.eval(), (1, 1, size, size), 17))
    return parameter_count(module)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=32, help="input size, a multiple of 8")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.03)
    ap.add_argument("--backends", default="numpy,torch")
    ap.add_argument("--unfreeze-last", action="store_true", help="train the last stage too")
    ap.add_argument("--out", help="keep the files here (default: a temporary folder)")
    args = ap.parse_args()
    if args.size % 8:
        raise SystemExit("--size must be a multiple of 8 (the digits are 8x8)")
    folder = Path(args.out or tempfile.mkdtemp(prefix="finetune_resnet18_"))
    folder.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    params = export_resnet18(folder / "resnet18.onnx", args.size)
    print(
        f"torch ResNet-18 (1 channel, 1,000 classes): {params:,} parameters; exported "
        f"at 1x1x{args.size}x{args.size} in {time.perf_counter() - start:.1f} s"
    )
    start = time.perf_counter()
    print(nnc("import", str(folder / "resnet18.onnx"), "-o", str(folder / "imported.nn")).strip())
    print(f"  ({time.perf_counter() - start:.1f} s)")
    freeze = (
        "conv2d_*"
        if not args.unfreeze_last
        else ("[" + ", ".join(f"conv2d_{k}" for k in range(1, 16)) + "]")
    )
    report = nnc(
        "opt", str(folder / "imported.nn"),
        "--pass", "replace-head:classes=10",
        "--pass", f"freeze:nodes={freeze}",
        "-o", str(folder / "resnet18_digits.nn"),
        "--weights", str(folder / "imported.safetensors"),
        "--weights-out", str(folder / "start.safetensors"),
    )  # fmt: skip
    print(report.strip())
    spec = folder / "resnet18_digits.nn"
    model = "MainGraph"
    spec.write_text(
        spec.read_text(encoding="utf-8")
        + RECIPE.format(model=model, upscale=args.size // 8, lr=args.lr, epochs=args.epochs),
        encoding="utf-8",
    )
    summary = subprocess.run(
        [sys.executable, "-m", "nnc.cli.main", "summary", str(spec)],
        capture_output=True,
        text=True,
    ).stdout
    print(next(line for line in summary.splitlines() if line.startswith("params:")))

    rows = []
    for backend in args.backends.split(","):
        run = folder / f"run_{backend}"
        start = time.perf_counter()
        nnc(
            "train", str(spec), "--backend", backend, "--weights",
            str(folder / "start.safetensors"), "--out", str(run), "--force", "--quiet",
            "--track", "none",
        )  # fmt: skip
        seconds = time.perf_counter() - start
        history = json.loads((run / "history.json").read_text(encoding="utf-8"))
        epochs = history["epochs"] if isinstance(history, dict) else history
        accuracy = [round(e["val_accuracy"], 3) for e in epochs]
        rows.append((backend, accuracy[-1], max(accuracy), seconds))
        print(f"{backend}: val_accuracy per epoch {accuracy}", flush=True)
    print(f"\n{'backend':<10} {'final val acc':>13} {'best':>6} {'seconds':>9}")
    for backend, final, best, seconds in rows:
        print(f"{backend:<10} {final:>13.4f} {best:>6.3f} {seconds:>9.1f}")
    print(f"files in {folder}")


if __name__ == "__main__":
    main()
