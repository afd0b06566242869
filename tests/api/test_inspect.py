"""Inspection: topological order, lookups, producers and consumers, shapes,
parameter counts per node and the summary table."""

from __future__ import annotations

import pytest

import nnc
from nnc.errors import NameResolutionError
from nnc.ir.program import Model
from tests.conftest import EXAMPLES


def test_topological_order_of_nodes_listed_out_of_order() -> None:
    m = nnc.load(EXAMPLES / "resnet_block.nn").model()
    shuffled = Model(
        name=m.name, inputs=m.inputs, nodes=tuple(reversed(m.nodes)), outputs=m.outputs
    )
    order = [n.name for n in shuffled.topological()]
    assert order.index("residual_1_add_1") > order.index("residual_1_y_2")
    assert order[0] == "conv2d_1" and order[-1] == "dense_1"
    assert sorted(order) == sorted(n.name for n in m.nodes)


def test_find_producers_consumers() -> None:
    m = nnc.load(EXAMPLES / "resnet_block.nn").model()
    assert [n.name for n in m.find("conv2d")] == [
        "conv2d_1",
        "residual_1_conv2d_1",
        "residual_1_conv2d_2",
        "residual_2_conv2d_1",
        "residual_2_conv2d_2",
    ]
    assert [n.name for n in m.find(name="residual_2_y*")] == ["residual_2_y", "residual_2_y_2"]
    assert [n.name for n in m.producers("residual_2_add_1")] == [
        "residual_1_relu_1",
        "residual_2_y_2",
    ]
    assert [n.name for n in m.consumers("residual_1_relu_1")] == [
        "residual_2_conv2d_1",
        "residual_2_add_1",
    ]
    assert [n.name for n in m.consumers("image")] == ["conv2d_1"]
    with pytest.raises(NameResolutionError, match="unknown op 'conv'"):
        m.find("conv")
    with pytest.raises(NameResolutionError, match="has no value 'relu_9'"):
        m.consumers("relu_9")


def test_consumers_of_one_output_of_a_call() -> None:
    p = nnc.parse(
        "model Split { input x: [4]  output dense(x, 2), dense(x, 3) }\n"
        "model Top { input x: [4]  a, b = Split(x)  output concat(relu(a), b) }"
    )
    top = p.models["Top"]
    assert [n.name for n in top.consumers("a:1")] == ["concat_1"]
    assert [n.name for n in top.consumers("a")] == ["relu_1", "concat_1"]


def test_shapes_and_parameter_counts() -> None:
    p = nnc.load(EXAMPLES / "lenet5.nn")
    m = p.model()
    assert m.node("avgpool_2").type.shape == (16, 5, 5)
    counts = p.param_counts()
    assert counts["conv2d_1"] == 156 and counts["conv2d_3"] == 48_120
    assert counts["tanh_1"] == 0
    assert sum(counts.values()) == 61_706 == nnc.count_params(p, "LeNet5")
    ae = nnc.load(EXAMPLES / "autoencoder.nn")
    assert ae.param_counts("Autoencoder") == {"encoder_1": 2344, "decoder_1": 2400}


def test_summary_table() -> None:
    text = nnc.load(EXAMPLES / "mlp_4_5_5_3.nn").summary()
    lines = text.splitlines()
    assert lines[0] == "model Mlp"
    assert lines[1].split() == ["layer", "op", "inputs", "output", "shape", "params"]
    assert lines[3].split() == ["dense_1", "dense", "x", "[5]", "25"]
    assert lines[-2].split() == ["total", "73"]
    assert lines[-1].startswith("params: 73 (73 trainable, 0 frozen)")
    both = nnc.load(EXAMPLES / "gan.nn").summary()
    assert both.count("\nmodel ") == 1 and "model Discriminator" in both
