"""Block recognition in imported specs (nnc/backends/onnx/import_blocks.py): each
repeated unit is defined once as a block and called. The eval-mode imports of the
eleven architectures are checked in test_import_architectures.py (opset 17, every
backend on the spec with blocks); here four of the nets exported with their
batchnorm kept, where the units are longer: the written spec's parameter count is torch's, its
numpy outputs are the flat spec's bit for bit and within 1e-4 of onnxruntime's. And,
without torch, hand-written graphs: DenseNet's growing concats, an inception-like
module, a chain, and a repeat too short to pay for its block."""

from __future__ import annotations

import numpy as np
import pytest

from nnc.ir.program import Program
from tests.conftest import require

SHAPE = (2, 3, 32, 32)
TOLERANCE = 1e-4

# opset 17, batchnorm kept (training=PRESERVE from eval mode): the spec's lines flat ->
# with blocks, and each block's calls; four nets whose units differ in kind (with a
# projection or none, a bottleneck, a plain chain, squeeze-and-excitation), to keep
# the suite's time (benchmarks/import_architectures.py --blocks prints all eleven)
KEPT: dict[str, tuple[tuple[int, int], dict[str, int]]] = {
    "resnet18": ((72, 44), {"block_a": 5, "block_b": 3}),
    "resnet50": ((178, 69), {"block_a": 12, "block_b": 3}),
    "unet": ((56, 29), {"block_a": 7}),
    "mobilenet_v3_small": ((169, 90), {"block_a": 3, "block_b": 6}),
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_batchnorm_kept_units_are_written_as_blocks(name: str, one_torch_thread: None) -> None:
    for framework in ("torch", "onnx", "onnxruntime"):
        require(framework)
    import torch

    from tests.architectures.check import export, import_and_compare
    from tests.architectures.nets import build, parameter_count
    from tests.architectures.test_import_architectures import SUITE

    module = build(name, **SUITE[name])
    data = export(module, SHAPE, 17, training=torch.onnx.TrainingMode.PRESERVE)
    x = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    result = import_and_compare(data, x, ("numpy",), warm_up=False, blocks=True)
    assert (result.lines, result.blocks) == KEPT[name]
    assert result.params == parameter_count(module)
    assert result.deviation["numpy"] <= TOLERANCE


def _written(text: str) -> tuple[str, Program, np.ndarray, np.ndarray]:
    """The spec with blocks for a flat spec, its program, and the flat and written
    numpy outputs on one input."""
    import nnc
    from nnc.backends import get_backend
    from nnc.backends.onnx.import_blocks import with_blocks
    from nnc.ir.weights import init_weights

    program = nnc.parse(text)
    (name,) = program.models
    weights = init_weights(program, name, seed=0)
    written, renamed = with_blocks(program, name, weights)
    again = nnc.parse(written)
    shape = [int(d) for d in program.models[name].inputs[0].type.shape]
    x = np.random.default_rng(1).normal(size=(2, *shape)).astype(np.float32)
    numpy = get_backend("numpy")
    want = numpy.build(program, name, weights).forward(x)
    got = numpy.build(again, name, renamed).forward(x)
    return written, again, np.asarray(want), np.asarray(got)


def _dense_net(layers: int) -> str:
    """DenseNet's dense layers as torch exports them: each concat joins every earlier
    feature map again."""
    lines = ["model Dense {", "    input x: [4, 6, 6]", "    f0 = conv2d(x, 4, 3, padding = same)"]
    for k in range(1, layers + 1):
        joined = ", ".join(f"f{j}" for j in range(k))
        source = "f0" if k == 1 else f"c{k - 1}"
        lines += [
            f"    b{k} = batchnorm({source})",
            f"    r{k} = relu(b{k})",
            f"    f{k} = conv2d(r{k}, 2, 3, padding = same)",
            f"    c{k} = concat({joined}, f{k})",
        ]
    lines += [f"    output global_avg_pool(c{layers})", "}"]
    return "\n".join(lines) + "\n"


def test_dense_layers_are_one_block_once_their_concats_nest() -> None:
    require("lark")
    text, program, want, got = _written(_dense_net(5))
    assert text.count("block block_a") == 1
    assert text.count("= block_a(") == 5
    assert "concat(x, conv2d_1)" in text  # the layer's input and its new features
    assert np.array_equal(got, want)
    assert len(program.models["Dense"].nodes) == 1 + 5 * 4 + 1


def test_inception_like_modules_take_their_differing_widths_as_parameters() -> None:
    require("lark")
    module = """
    p{k} = conv2d({x}, {p}, 1) |> relu
    q{k} = conv2d({x}, {q}, 1) |> relu |> conv2d({r}, 3, padding = same) |> relu
    m{k} = maxpool({x}, 3, 1, padding = same) |> conv2d(2, 1) |> relu
    y{k} = concat(p{k}, q{k}, m{k})"""
    body = "".join(
        module.format(k=k, x=x, p=p, q=q, r=r)
        for k, x, p, q, r in ((1, "x", 4, 3, 6), (2, "y1", 4, 5, 6), (3, "y2", 8, 3, 2))
    )
    text, _, want, got = _written(
        f"model Inception {{\n    input x: [3, 5, 5]{body}\n    output y3\n}}\n"
    )
    assert "block block_a(n1, n2, n3) {" in text
    assert "    a1 = block_a(x, 4, 3, 6)\n    a2 = block_a(a1, 4, 5, 6)\n" in text
    assert "    a3 = block_a(a2, 8, 3, 2)\n" in text
    assert np.array_equal(got, want)


def test_a_repeat_that_saves_no_line_stays_flat() -> None:
    require("lark")
    import nnc
    from nnc.backends.onnx.import_blocks import with_blocks

    # two alike conv-relu-conv-relu chains: the block would cost more lines than
    # its two calls save
    text = (
        "model Chain {\n    input x: [3, 8, 8]\n"
        + "    conv2d(4, 3, padding = same) relu\n" * 4
        + "    global_avg_pool\n}\n"
    )
    program = nnc.parse(text)
    written, weights = with_blocks(program, "Chain", {})
    assert written == nnc.format(program)
    assert weights == {}
