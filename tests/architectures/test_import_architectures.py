"""Whole classic vision architectures, written in torch (tests/architectures/nets.py),
exported by ``torch.onnx.export`` at opsets 13 and 17 and imported: the imported
spec's parameter count is torch's, and numpy, torch, tensorflow and onnx all give
onnxruntime's outputs on the original file within 1e-4 relative.

Inputs are small. ResNet and DenseNet run at 66x66: their stem conv then gives an
odd 33x33, where torch's max pool (3, stride 2, pad 1) is exactly ONNX SAME_UPPER,
which nnc's pooling reads (explicit pool pads are the pooling-attributes work).
VGG-11's adaptive 7x7 pool exports only at 224x224, so its widths are divided by 8.
To keep the suite's time, every architecture runs on numpy and onnx at opset 17,
the three quicker ones on torch and tensorflow too, and MobileNet v2 and the U-Net
at opset 13 on numpy and onnx; benchmarks/import_architectures.py runs all of them on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require

TOLERANCE = 1e-4

# name -> (input shape with batch, build options)
CASES: dict[str, tuple[tuple[int, ...], dict[str, object]]] = {
    "resnet18": ((2, 3, 66, 66), {}),
    "resnet50": ((2, 3, 66, 66), {}),
    "vgg11": ((2, 3, 224, 224), {"divisor": 8}),
    "mobilenet_v2": ((2, 3, 64, 64), {}),
    "densenet121": ((2, 3, 66, 66), {}),
    "unet": ((2, 3, 32, 32), {}),
}


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    for module in ("torch", "onnx", "onnxruntime"):
        require(module)


MATRIX = [(name, 17) for name in sorted(CASES)] + [(name, 13) for name in ("mobilenet_v2", "unet")]


@pytest.mark.parametrize(("name", "opset"), MATRIX)
def test_architecture_imports_and_matches(name: str, opset: int) -> None:
    from tests.architectures.check import BACKENDS, export, import_and_compare
    from tests.architectures.nets import build, folded_parameter_count

    shape, options = CASES[name]
    module = build(name, **options)
    data = export(module, shape, opset)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    every = opset == 17 and name in ("resnet18", "unet", "vgg11")
    backends = BACKENDS if every else ("numpy", "onnx")
    result = import_and_compare(data, x, backends)
    assert result.params == folded_parameter_count(module)
    for backend, deviation in result.deviation.items():
        assert deviation <= TOLERANCE, f"{name} opset {opset} {backend}: {deviation:.2e}"


def test_resnet18_with_batchnorm_kept_has_torchs_parameter_count() -> None:
    """Exported with training=PRESERVE from eval mode, batchnorm is not folded: the
    import has exactly torch's 11,689,512 parameters and matches onnxruntime."""
    import torch

    from tests.architectures.check import export, import_and_compare
    from tests.architectures.nets import build, parameter_count

    module = build("resnet18")
    shape = (2, 3, 66, 66)
    data = export(module, shape, 17, training=torch.onnx.TrainingMode.PRESERVE)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    result = import_and_compare(data, x, backends=("numpy",))
    assert parameter_count(module) == 11_689_512
    assert result.params == 11_689_512
    for backend, deviation in result.deviation.items():
        assert deviation <= TOLERANCE, f"{backend}: {deviation:.2e}"
