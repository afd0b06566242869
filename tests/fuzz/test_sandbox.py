"""The soak's sandbox: each input in a child process under a memory limit, a CPU-time
limit and a wall-clock timeout; special files in place of a spec; spans checked."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nnc.errors import ParseError, Span
from tests.fuzz.generators import SPECIAL_FILES
from tests.fuzz.harness import Finding, Sandbox, SpanOutside, check_span, run_job, time_limit


def test_special_files_are_refused_at_once(tmp_path: Path) -> None:
    with Sandbox(run_job) as box:
        start = time.monotonic()
        results = {v: box(("special", v, str(tmp_path)), 5.0) for v in SPECIAL_FILES}
        assert box.started == 1
    assert results == dict.fromkeys(SPECIAL_FILES, "NncError")
    assert time.monotonic() - start < 5  # a pipe opened for reading used to block


def test_inputs_in_the_sandbox_give_their_outcome(tmp_path: Path) -> None:
    with Sandbox(run_job) as box:
        assert box(("text", "model M {\n    input x: [3]\n    dense(2)\n}\n", "a.nn"), 5.0) == "ok"
        assert box(("text", "model M {\n    input x: [3\n}\n", "a.nn"), 5.0) == "ParseError"
        path = str(tmp_path / "b.nn")
        assert box(("bytes", b"model \xff M {}\n", path), 5.0) == "ParseError"


def _misbehave(job: str) -> str:
    if job == "spin":  # in C, where no Python timer interrupts it: RLIMIT_CPU ends it
        import re

        re.fullmatch(r"(a*)*b", "a" * 40)
    if job == "slow":
        with time_limit(0.2):
            while True:
                pass
    if job == "eat":
        return str(len(bytearray(4 * 1024**3)))
    if job == "die":
        os._exit(7)
    if job == "block":
        time.sleep(60)
    if job == "span":
        check_span(
            ParseError("x", Span(file="f.nn", line=3, col=1, end_line=3, end_col=2)), "a\n", "f.nn"
        )
    return "fine"


@pytest.mark.parametrize(
    ("job", "kind"),
    [
        ("slow", "cpu"),
        ("spin", "cpu"),
        ("eat", "memory"),
        ("die", "crash"),
        ("block", "wall"),
        ("span", "span"),
    ],
)
def test_the_sandbox_enforces_its_limits(job: str, kind: str) -> None:
    # a short wall-clock limit only where it is what is tested: on a loaded machine
    # CPU time accrues slower than wall time
    wall_extra = 1.0 if kind == "wall" else 6.0
    with Sandbox(_misbehave, memory=512 * 1024**2, wall_extra=wall_extra) as box:
        start = time.monotonic()
        with pytest.raises(Finding) as info:
            box(job, 0.25)
        assert info.value.kind == kind, info.value
        assert box(job="fine", cpu_seconds=1.0) == "fine"  # a new child if the first died
    assert time.monotonic() - start < 8


def test_spans_outside_the_text_are_findings() -> None:
    text = "model M {\n    input x: [3\n}"
    inside = ParseError("e", Span(file="f.nn", line=2, col=16, end_line=2, end_col=17))
    check_span(inside, text, "f.nn")
    for line, col, end_line, end_col in [(4, 1, 4, 2), (2, 18, 2, 19), (2, 5, 1, 1), (3, 1, 5, 1)]:
        span = Span(file="f.nn", line=line, col=col, end_line=end_line, end_col=end_col)
        with pytest.raises(SpanOutside):
            check_span(ParseError("e", span), text, "f.nn")
    with pytest.raises(SpanOutside, match="without a location"):
        check_span(ParseError("e"), text, "f.nn")
