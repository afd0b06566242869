"""Time nnc's ONNX export against torch.onnx.export of the same networks.

Two networks, side by side in one run:

- ``examples/digits_cnn.nn`` and the equivalent ``torch.nn.Module``;
- a 200-layer MLP (199 x dense(64) relu, then dense(10)), whose .nn text is generated
  here, and the equivalent ``nn.Sequential``.

nnc's time is ``nnc.backends.onnx.emit``: initial weights from the seed, inlining,
building the graph, ``onnx.checker.check_model(full_check=True)`` (which includes
shape inference) and serialization. PyTorch's is ``torch.onnx.export`` with the
TorchScript exporter (``dynamo=False``; the dynamo exporter needs onnxscript) into
memory, batch dim dynamic, opset 17. Both produce the bytes of a .onnx file. Parsing
the .nn text is timed separately. Each figure is the median of ``--repeat`` runs.

    python benchmarks/bench_onnx_export.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEPTH = 200
WIDTH = 64


def deep_mlp_source(depth: int = DEPTH, width: int = WIDTH) -> str:
    """A .nn model of ``depth`` dense layers: ``depth - 1`` relu layers of ``width``."""
    lines = ["model Deep {", f"    input x: [{width}]"]
    lines += [f"    dense({width}) relu"] * (depth - 1)
    lines += ["    dense(10)", "}", ""]
    return "\n".join(lines)


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    run()  # warm-up: imports, first-call caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_modules():  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        """examples/digits_cnn.nn in PyTorch (dropout is the identity when exported)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(16, 32, 3)
            self.fc1 = nn.Linear(32 * 2 * 2, 64)
            self.drop = nn.Dropout(0.25)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = self.pool(torch.relu(self.conv1(x)))
            y = torch.relu(self.conv2(y))
            return self.fc2(self.drop(torch.relu(self.fc1(torch.flatten(y, 1)))))

    layers: list[nn.Module] = []
    for _ in range(DEPTH - 1):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    layers.append(nn.Linear(WIDTH, 10))
    return DigitsCNN().eval(), nn.Sequential(*layers).eval()


def torch_export(module: object, shape: tuple[int, ...]) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (torch.zeros(*shape),),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
            opset_version=17,
        )
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure")
    args = parser.parse_args()

    import nnc
    from nnc.backends import onnx as backend

    cnn_source = (ROOT / "examples" / "digits_cnn.nn").read_text()
    deep_source = deep_mlp_source()
    cnn_program = nnc.parse(cnn_source)
    deep_program = nnc.parse(deep_source)
    torch_cnn, torch_deep = torch_modules()

    rows = []
    for label, source, program, module, shape in (
        ("digits_cnn", cnn_source, cnn_program, torch_cnn, (1, 1, 8, 8)),
        (f"mlp_{DEPTH}_layers", deep_source, deep_program, torch_deep, (1, WIDTH)),
    ):
        parse_s = median_seconds(lambda s=source: nnc.parse(s), args.repeat)
        nnc_s = median_seconds(lambda p=program: backend.emit(p), args.repeat)
        torch_s = median_seconds(lambda m=module, sh=shape: torch_export(m, sh), args.repeat)
        size_nnc = len(backend.emit(program))
        size_torch = len(torch_export(module, shape))
        rows.append((label, parse_s, nnc_s, torch_s, size_nnc, size_torch))

    import onnx
    import torch

    print(
        f"nnc ONNX export vs torch.onnx.export (median of {args.repeat}; "
        f"onnx {onnx.__version__}, torch {torch.__version__})"
    )
    header = (
        f"{'model':<16}{'nnc parse':>11}{'nnc emit':>11}{'torch export':>14}"
        f"{'torch/nnc':>11}{'nnc bytes':>12}{'torch bytes':>13}"
    )
    print(header)
    for label, parse_s, nnc_s, torch_s, size_nnc, size_torch in rows:
        print(
            f"{label:<16}{parse_s * 1e3:>9.1f}ms{nnc_s * 1e3:>9.1f}ms{torch_s * 1e3:>12.1f}ms"
            f"{torch_s / nnc_s:>10.2f}x{size_nnc:>12,}{size_torch:>13,}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
