"""Whole classic vision architectures, written in torch (tests/architectures/nets.py),
exported by ``torch.onnx.export`` and imported: the imported spec's parameter count is
torch's, and numpy, torch, tensorflow and onnx all give onnxruntime's outputs on the
original file within 1e-4 relative.

Every architecture runs at opset 17, written with its repeated units as blocks (the
spec's line counts are checked), and the five added last (ShuffleNet v2,
SqueezeNet 1.1, MobileNet v3-small, EfficientNet-B0, GoogLeNet) with MobileNet v2 and
the U-Net at opset 13 too, each on all four backends; four nets (ResNet-18,
MobileNet v3-small, ShuffleNet v2, U-Net) at opsets 11 and 20 on numpy. To keep the
suite's time the inputs are 2x3x32x32 (every net here reaches 1x1 or its head from
that) and the widths are reduced (fewer channels, 10 classes; the same code and depth). The
full-size nets' parameter counts are checked against torchvision's published
figures on torch's meta device (no weights allocated, nothing run), and one
full-size ResNet-18 is imported with its batchnorm kept. benchmarks/
import_architectures.py runs the full-size nets at 224x224.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require

TOLERANCE = 1e-4
SHAPE = (2, 3, 32, 32)

# name -> reduced-width build options for the suite
SUITE: dict[str, dict[str, object]] = {
    "resnet18": {"base": 16, "classes": 10},
    "resnet50": {"base": 8, "classes": 10},
    "vgg11": {"divisor": 16, "pool": 1, "classes": 10},  # the 7x7 pool needs 224x224
    "mobilenet_v2": {"width": 0.25, "classes": 10},
    "densenet121": {"growth": 8, "init": 16, "classes": 10},
    "unet": {"base": 8},
    "shufflenet_v2": {"channels": (8, 16, 32, 64, 64), "classes": 10},
    "squeezenet1_1": {"divisor": 8, "classes": 10},
    "mobilenet_v3_small": {"width": 0.25, "classes": 10},
    "efficientnet_b0": {"width": 0.25, "classes": 10},
    "googlenet": {"divisor": 8, "classes": 10},
}

# torchvision's published parameter counts of the full-size nets (1,000 classes;
# ShuffleNet v2 1.0x, GoogLeNet without its auxiliary heads)
TORCHVISION = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "vgg11": 132_863_336,
    "mobilenet_v2": 3_504_872,
    "densenet121": 7_978_856,
    "shufflenet_v2": 2_278_604,
    "squeezenet1_1": 1_235_496,
    "mobilenet_v3_small": 2_542_856,
    "efficientnet_b0": 5_288_548,
    "googlenet": 6_624_904,
}

# opset 17, eval mode: the spec's lines flat -> with each repeated unit a block, and
# each block's calls (nnc/backends/onnx/import_blocks.py); VGG-11's stages would save
# no line, so it stays flat
BLOCKS: dict[str, tuple[tuple[int, int], dict[str, int]]] = {
    "resnet18": ((52, 38), {"block_a": 5, "block_b": 3}),
    "resnet50": ((125, 57), {"block_a": 12, "block_b": 3}),
    "vgg11": ((20, 20), {}),
    "mobilenet_v2": ((104, 55), {"block_a": 4, "block_b": 8}),
    "densenet121": ((371, 92), {"block_a": 58}),
    "unet": ((42, 27), {"block_a": 7}),
    "shufflenet_v2": ((190, 60), {"block_a": 3, "block_b": 13}),
    "squeezenet1_1": ((68, 32), {"block_a": 8}),
    "mobilenet_v3_small": ((135, 73), {"block_a": 3, "block_b": 6}),
    "efficientnet_b0": ((210, 79), {"block_a": 4, "block_b": 11}),
    "googlenet": ((142, 44), {"block_a": 9}),
}

ADDED = ("shufflenet_v2", "squeezenet1_1", "mobilenet_v3_small", "efficientnet_b0", "googlenet")
MATRIX = [(name, 17) for name in SUITE] + [(name, 13) for name in (*ADDED, "mobilenet_v2", "unet")]


@pytest.fixture(autouse=True)
def _frameworks(one_torch_thread: None) -> None:
    for module in ("torch", "onnx", "onnxruntime", "tensorflow"):
        require(module)


@pytest.mark.parametrize(("name", "opset"), MATRIX)
def test_architecture_imports_and_matches(name: str, opset: int) -> None:
    from tests.architectures.check import BACKENDS, export, import_and_compare
    from tests.architectures.nets import build, folded_parameter_count

    module = build(name, **SUITE[name])
    data = export(module, SHAPE, opset)
    x = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    # at opset 17 the backends run the spec written with blocks (its numpy outputs
    # bit-identical to the flat spec's), at 13 the flat one
    result = import_and_compare(data, x, BACKENDS, warm_up=False, blocks=opset == 17)
    assert result.params == folded_parameter_count(module)
    if opset == 17:
        assert (result.lines, result.blocks) == BLOCKS[name]
    assert sorted(result.deviation) == sorted(BACKENDS)
    for backend, deviation in result.deviation.items():
        assert deviation <= TOLERANCE, f"{name} opset {opset} {backend}: {deviation:.2e}"


# The opsets' ends, whole nets: the plain convolutional ops (ResNet-18), HardSwish
# and HardSigmoid with squeeze-and-excitation (MobileNet v3-small), ReduceMean (its
# axes an input at 18+) and the channel shuffle's reshapes and slices (ShuffleNet
# v2), ConvTranspose and skip concats (U-Net); on the numpy backend (the others run
# the same IR, compared at 13 and 17 above). test_import_opsets covers each op whose
# form changes (Clip, Split, Pad, Resize, ...) at every opset from 11 to 20.
ENDS = [
    (name, opset)
    for name in ("resnet18", "mobilenet_v3_small", "shufflenet_v2", "unet")
    for opset in (11, 20)
]


@pytest.mark.parametrize(("name", "opset"), ENDS)
def test_architecture_imports_at_opsets_11_and_20(name: str, opset: int) -> None:
    from tests.architectures.check import export, import_and_compare
    from tests.architectures.nets import build, folded_parameter_count

    module = build(name, **SUITE[name])
    data = export(module, SHAPE, opset)
    x = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    result = import_and_compare(data, x, ("numpy",), warm_up=False)
    assert result.params == folded_parameter_count(module)
    assert result.deviation["numpy"] <= TOLERANCE, f"{name} opset {opset}"


def test_full_size_parameter_counts_are_torchvisions() -> None:
    """The nets of nets.py at full size, built on torch's meta device, have exactly
    torchvision's parameter counts: the suite's reduced widths are the same code."""
    import torch

    from tests.architectures.nets import ARCHITECTURES, parameter_count

    with torch.device("meta"):
        counts = {name: parameter_count(ARCHITECTURES[name]()) for name in TORCHVISION}
    assert counts == TORCHVISION


def test_resnet18_with_batchnorm_kept_has_torchs_parameter_count() -> None:
    """Full size, exported with training=PRESERVE from eval mode: batchnorm is not
    folded, and the import has exactly torch's 11,689,512 parameters and matches
    onnxruntime."""
    import torch

    from tests.architectures.check import export, import_and_compare
    from tests.architectures.nets import build, parameter_count

    module = build("resnet18")
    data = export(module, SHAPE, 17, training=torch.onnx.TrainingMode.PRESERVE)
    x = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    result = import_and_compare(data, x, backends=("numpy",), warm_up=False)
    assert parameter_count(module) == 11_689_512
    assert result.params == 11_689_512
    for backend, deviation in result.deviation.items():
        assert deviation <= TOLERANCE, f"{backend}: {deviation:.2e}"
