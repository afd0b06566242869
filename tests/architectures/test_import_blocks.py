"""Block recognition in imported specs: torch's ResNet-18 and ResNet-50 (reduced
widths, tests/architectures/nets.py), exported and imported, are written with each
repeated residual unit defined once as a block and called; the written spec parses
to the flat import's IR, node for node, and gives bit-identical outputs with the
renamed weights; its parameter count is torch's."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require

SHAPE = (2, 3, 32, 32)
# name -> (build options, flat spec lines, with blocks, calls per block)
CASES = {
    "resnet18": ({"base": 16, "classes": 10}, 52, 38, {"block_a": 5, "block_b": 3}),
    "resnet50": ({"base": 8, "classes": 10}, 125, 57, {"block_a": 12, "block_b": 3}),
}


@pytest.fixture(autouse=True)
def _frameworks(one_torch_thread: None) -> None:
    for module in ("torch", "onnx"):
        require(module)


@pytest.mark.parametrize("name", sorted(CASES))
def test_resnet_units_are_written_as_blocks(name: str) -> None:
    import nnc
    from nnc.backends import get_backend
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.import_blocks import with_blocks
    from nnc.ir.passes import count_params
    from tests.architectures.check import export
    from tests.architectures.nets import build, folded_parameter_count

    options, flat_lines, block_lines, calls = CASES[name]
    module = build(name, **options)
    imported = backend.import_model(export(module, SHAPE, 17))
    flat = nnc.format(imported.program)
    text, weights = with_blocks(imported.program, imported.model, imported.weights)
    assert (len(flat.splitlines()), len(text.splitlines())) == (flat_lines, block_lines)
    for block, count in calls.items():
        assert text.count(f"block {block}(") == 1
        assert text.count(f"= {block}(") == count
    program = nnc.parse(text)  # parsing checks the program
    assert count_params(program, imported.model) == folded_parameter_count(module)
    x = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    numpy = get_backend("numpy")
    want = numpy.build(imported.program, imported.model, imported.weights).forward(x)
    got = numpy.build(program, imported.model, weights).forward(x)
    assert np.array_equal(np.asarray(got), np.asarray(want))


def test_nothing_repeated_is_written_flat() -> None:
    import nnc
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.import_blocks import with_blocks
    from tests.architectures.check import export
    from tests.architectures.nets import build

    imported = backend.import_model(
        export(build("vgg11", divisor=16, pool=1, classes=10), SHAPE, 17)
    )
    text, weights = with_blocks(imported.program, imported.model, imported.weights)
    assert text == nnc.format(imported.program)
    assert weights is imported.weights
