"""Multiply-accumulates: hand-computed counts for LeNet-5 and the digits CNN, every op
of the registry has a rule, symbolic dims give None, and ``nnc summary --flops``."""

from __future__ import annotations

import json

import pytest

import nnc
from nnc.ir.base import Op
from nnc.ir.flops import count_macs
from nnc.ir.ops import OPS
from tests.conftest import EXAMPLES, run_nnc

# LeNet-5 by hand: a conv's MACs are out_channels * out_h * out_w * in_channels * kh * kw,
# a dense layer's in * out; tanh and average pooling multiply by no weight.
LENET5 = {
    "conv2d_1": 6 * 28 * 28 * 1 * 5 * 5,  # 117,600
    "conv2d_2": 16 * 10 * 10 * 6 * 5 * 5,  # 240,000
    "conv2d_3": 120 * 1 * 1 * 16 * 5 * 5,  # 48,000
    "dense_1": 120 * 84,  # 10,080
    "dense_2": 84 * 10,  # 840
}
LENET5_TOTAL = 416_520

# The digits CNN: 3x3 same conv to 16@8x8, maxpool to 16@4x4, 3x3 valid conv to 32@2x2,
# flatten 128, dense 64, dense 10.
DIGITS_CNN = {
    "conv2d_1": 16 * 8 * 8 * 1 * 3 * 3,  # 9,216
    "conv2d_2": 32 * 2 * 2 * 16 * 3 * 3,  # 18,432
    "dense_1": 128 * 64,  # 8,192
    "dense_2": 64 * 10,  # 640
}
DIGITS_CNN_TOTAL = 36_480


@pytest.mark.parametrize(
    ("example", "model", "expected", "total"),
    [
        ("lenet5.nn", "LeNet5", LENET5, LENET5_TOTAL),
        ("digits_cnn.nn", "DigitsCNN", DIGITS_CNN, DIGITS_CNN_TOTAL),
    ],
)
def test_hand_computed_counts(
    example: str, model: str, expected: dict[str, int], total: int
) -> None:
    counts = count_macs(nnc.load(EXAMPLES / example), model)
    weighted = {name: n for name, n in counts.per_node.items() if n}
    assert weighted == expected
    assert sum(expected.values()) == total
    assert counts.total == total


def test_the_ops_that_multiply_by_learned_weights_state_their_cost() -> None:
    costed = {op for op, cls in OPS.items() if cls.macs is not Op.macs}
    assert costed == {
        *("dense", "attention", "rbm", "matmul"),
        *("conv1d", "conv2d", "conv3d", "conv2d_transpose", "rnn", "lstm", "gru"),
    }


def test_grouped_conv_transpose_and_recurrent() -> None:
    program = nnc.parse(
        "model G { input x: [8, 6, 6]  conv2d(4, 3, groups = 2) }\n"
        "model T { input x: [3, 4, 4]  conv2d_transpose(2, 3, stride = 2) }\n"
        "model R { input x: [5, 3]  lstm(7) }\n"
        "model S { input x: [t, 3]  gru(7) }\n"
        "model C { input x: [5, 3]  R  dense(2) }\n"
    )
    assert count_macs(program, "G").total == 4 * 4 * 4 * (8 // 2) * 9
    assert count_macs(program, "T").total == 3 * 4 * 4 * 2 * 9
    assert count_macs(program, "R").total == 5 * 4 * 7 * (3 + 7)
    assert count_macs(program, "S").total is None  # t is symbolic
    assert count_macs(program, "C").per_node == {"r_1": 5 * 4 * 7 * 10, "dense_1": 14}


def test_summary_flops_table_and_json() -> None:
    table = run_nnc("summary", str(EXAMPLES / "lenet5.nn"), "--flops")
    assert table.returncode == 0, table.stderr
    assert "MACs" in table.stdout
    assert "240,000" in table.stdout
    assert "multiply-accumulates per sample: 416,520 (833,040 FLOPs)" in table.stdout
    data = json.loads(
        run_nnc("summary", str(EXAMPLES / "digits_cnn.nn"), "--flops", "--json").stdout
    )
    assert data["total_macs"] == DIGITS_CNN_TOTAL
    assert {r["name"]: r["macs"] for r in data["rows"]}["conv2d_2"] == 18_432
    plain = json.loads(run_nnc("summary", str(EXAMPLES / "digits_cnn.nn"), "--json").stdout)
    assert "total_macs" not in plain


@pytest.mark.parametrize(
    "example", ["lenet5", "digits_cnn", "resnet_block", "autoencoder", "conv_autoencoder"]
)
def test_counts_equal_pytorchs_flop_counter(example: str) -> None:
    # An independent count: PyTorch's FlopCounterMode counts 2 FLOPs per MAC of the
    # matrix products and convolutions it runs, and no bias additions, as nnc does.
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    program = nnc.load(EXAMPLES / f"{example}.nn")
    model = program.model()
    module = nnc.build(program, "torch")
    module.eval()
    batch = [torch.zeros(1, *i.type.shape) for i in model.inputs]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*batch)
    assert count_macs(program, model.name).total == counter.get_total_flops() // 2
