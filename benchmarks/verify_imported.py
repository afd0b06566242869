"""``nnc verify`` (5 training steps) on imported architectures: ResNet-18 and MobileNet
v2 written in torch (tests/architectures/nets.py) at reduced widths, exported by
torch.onnx.export (opset 17, eval mode), imported by nnc at 16x16, given an mse/sgd
recipe, and verified on every installed backend against the float64 NumPy reference.
Too slow for the suite (about 20 s of CPU each on the project machine).

    PYTHONPATH=. python benchmarks/verify_imported.py [name ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nnc
from nnc.backends import onnx as onnx_backend
from nnc.cli.main import main as nnc_main
from tests.architectures.check import export
from tests.architectures.nets import build

NETS: dict[str, dict[str, object]] = {
    "resnet18": {"base": 4, "classes": 4},
    "mobilenet_v2": {"width": 0.25, "classes": 4},
}
SHAPE = (2, 3, 16, 16)
RECIPE = '\ntrain Net {\n    data "unused.npz"\n    loss mse\n    optimizer sgd(lr = 0.01)\n}\n'


def main(names: list[str]) -> int:
    failed = 0
    for name in names or list(NETS):
        imported = onnx_backend.import_model(export(build(name, **NETS[name]), SHAPE, 17), "Net")
        with tempfile.TemporaryDirectory() as folder:
            spec = Path(folder) / f"{name}.nn"
            spec.write_text(nnc.format(imported.program) + RECIPE, encoding="utf-8")
            start = time.process_time()
            code = nnc_main(["verify", str(spec), "--steps", "5"])
            print(f"{name}: nnc verify exit {code} ({time.process_time() - start:.1f} s CPU)")
        failed += code != 0
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
