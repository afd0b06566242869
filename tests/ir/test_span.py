"""Span is a slotted dataclass (every syntax-tree and IR node holds one), and IR models
that carry it still validate and serialise through pydantic."""

from __future__ import annotations

import nnc
from nnc.errors import Span
from nnc.ir.program import Program
from tests.conftest import EXAMPLES


def test_span_holds_no_per_instance_dict() -> None:
    span = Span(file="a.nn", line=3, col=5, end_line=3, end_col=9)
    assert not hasattr(span, "__dict__")
    assert str(span) == "a.nn:3:5"


def test_ir_with_spans_round_trips_through_json() -> None:
    program = nnc.load(EXAMPLES / "resnet_block.nn")
    again = Program.model_validate_json(program.model_dump_json())
    spans = [n.span for n in again.model().nodes]
    assert all(isinstance(s, Span) for s in spans) and spans
    assert spans == [n.span for n in program.model().nodes]
