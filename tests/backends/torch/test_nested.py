"""Blocks and called models as nested modules in the generated PyTorch code: one
class per block, canonical names mapped to dotted torch names, locals named for what
they hold, and instances that a rewrite broke inlined again."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends import torch as backend
from nnc.backends.torch.emit import lower_module
from nnc.ir.passes import check, model_params
from nnc.ir.program import Program
from nnc.ir.serialize import loads_json

NESTED = """
block inner(c) {
    input x: [c]
    output x |> dense(c) |> relu
}

block outer(c) {
    input x: [c]
    y = x |> inner(c) |> inner(c)
    output x + y
}

model Nest {
    input a: [4]
    outer(4)
    outer(4)
    dense(2)
}
"""


def test_a_block_is_one_class_constructed_from_its_arguments() -> None:
    code = backend.emit(nnc.load("examples/resnet_block.nn"))
    assert code.count("class Residual(nn.Module):") == 1
    assert "    def __init__(self, c):" in code
    assert "        self.conv2d_1 = nn.Conv2d(c, c, kernel_size=3, padding=1)" in code
    assert "        self.residual_1 = Residual(16)" in code
    assert "        self.residual_2 = Residual(16)" in code
    assert code.count("nn.Conv2d(") == 3  # the stem's and the block's two
    # the block's locals are the spec's edge names; the sequential model threads x
    assert "        y = self.conv2d_1(x)\n        y = contiguous_norm(self.batchnorm_1, y)" in code
    assert "        x = x + y\n        x = F.relu(x, inplace=True)\n        return x" in code
    assert "        x = self.residual_1(x)\n        x = self.residual_2(x)" in code


def test_instances_that_differ_in_an_input_size_share_one_class() -> None:
    code = backend.emit(nnc.load("examples/unet_blobs.nn"))
    assert code.count("class Stage") == 1
    assert "        self.conv2d_1 = nn.Conv2d(k, c, kernel_size=3, padding=1)" in code
    assert "        self.e1 = Stage(8, k=1)" in code
    assert "        self.d2 = Stage(16, k=48)" in code


def test_canonical_names_map_to_dotted_torch_names() -> None:
    program = check(nnc.parse(NESTED))
    lowered = lower_module(program)
    names = [p.name for p in model_params(program, program.model())]
    assert "outer_2_inner_1_dense_1.weight" in names
    assert lowered.torch_names["outer_2_inner_1_dense_1.weight"] == "outer_2.inner_1.dense_1.weight"
    assert "dense_1.weight" not in lowered.torch_names  # the same name in torch
    code = lowered.source
    assert "        self.inner_1 = Inner(c)" in code  # a block inside a block
    assert "        self.outer_1 = Outer(4)" in code


def test_provenance_takes_no_part_in_equality_or_json() -> None:
    program = nnc.load("examples/resnet_block.nn")
    model = program.model()
    assert [b.name for b in model.blocks] == ["residual_1", "residual_2"]
    assert model.blocks[0].nodes[-1] == "residual_1_relu_1"
    bare = program.model_copy(
        update={"models": {model.name: model.model_copy(update={"blocks": ()})}}
    )
    assert bare == program and hash(bare.model()) == hash(model)
    assert "blocks" not in program.to_json()
    assert loads_json(program.to_json()) == program


def _without_blocks(program: Program, broken: bool = False) -> Program:
    models = {}
    for name, m in program.models.items():
        if broken:  # an instance that lost its last node no longer matches the graph
            blocks = tuple(b.model_copy(update={"nodes": b.nodes[:-1]}) for b in m.blocks)
        else:
            blocks = ()
        models[name] = m.model_copy(update={"blocks": blocks})
    return program.model_copy(update={"models": models})


@pytest.mark.usefixtures("needs_torch")
@pytest.mark.parametrize("broken", [False, True])
def test_nested_and_inlined_modules_compute_the_same_bits(broken: bool) -> None:
    program = check(nnc.parse(NESTED))
    flat = check(_without_blocks(program, broken))
    assert "class Outer" in lower_module(program).source
    assert "class Outer" not in lower_module(flat).source
    nested_rt = backend.build(program, seed=3)
    flat_rt = backend.build(flat, seed=3)
    weights = nested_rt.get_weights()
    assert sorted(weights) == sorted(p.name for p in model_params(program, program.model()))
    flat_rt.set_weights(weights)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    assert nested_rt.forward(x).tobytes() == flat_rt.forward(x).tobytes()
    found = dict(nested_rt.model.named_parameters())  # type: ignore[attr-defined]
    assert "outer_1.y.dense_1.weight" in found  # the second inner is named y
