"""Every op of the registry, lowered to torch, against the float64 reference.

For each op, its ``example`` model is compiled and compared with
:mod:`tests.backends.torch.reference` (see :func:`support.reference_check` for what
is compared and the tolerances). A new op without a torch lowering, without an
example or without a reference fails here.
"""

from __future__ import annotations

import pytest

import nnc
from nnc.backends.torch.module import has_lowering
from nnc.ir.ops import OPS
from tests.backends.torch import support
from tests.backends.torch.reference import REFERENCE_OPS

pytestmark = pytest.mark.usefixtures("needs_torch")

EXAMPLE_OPS = sorted(op for op in OPS if op != "call")  # a call needs two models: below


def test_every_op_has_a_lowering_and_a_reference() -> None:
    missing = [op for op in OPS if not has_lowering(op)]
    assert not missing, f"ops without a torch lowering: {missing}"
    unchecked = [op for op in EXAMPLE_OPS if op not in REFERENCE_OPS or not OPS[op].example]
    assert not unchecked, f"ops without an example or a reference: {unchecked}"


@pytest.mark.parametrize("op", EXAMPLE_OPS)
def test_op_matches_reference(op: str) -> None:
    program = support.op_program(op, OPS[op].example)
    model = program.models["T"]
    symbolic = any(isinstance(d, str) for i in model.inputs for d in i.type.shape)
    for length in (2, 5) if symbolic else (support.SEQUENCE_LENGTH,):
        support.assert_close(support.reference_check(program, "T", length=length))


CALLS = """
model Inner {
    input a: [t, 3]
    input b: [4]
    h = a |> lstm(4)
    output h + b, b |> dense(2) |> tanh
}

model Outer {
    input seq: [t, 3]
    input v: [4]
    first, second = Inner(seq, v)
    u = first |> dense(2, trainable = false)
    output concat(u, second) |> linear |> relu, first
}
"""


def test_call_with_two_inputs_and_outputs_matches_reference() -> None:
    program = nnc.parse(CALLS)
    for length in (2, 5):
        support.assert_close(support.reference_check(program, "Outer", length=length))
