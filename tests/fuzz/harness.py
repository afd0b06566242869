"""The oracle for front-end fuzzing: success, or an NncError located inside the input."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nnc
from nnc.errors import NncError

TIME_LIMIT_S = 5


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(text: str, filename: str = "fuzz.nn") -> str:
    """``"ok"`` or the error class name; raises AssertionError for a bad outcome."""
    try:
        with time_limit(TIME_LIMIT_S):
            program = nnc.parse(text, filename)
            # whatever parses must also format back to the same IR
            assert nnc.parse(nnc.format(program), filename) == program, "format round trip"
        return "ok"
    except NncError as err:
        check_span(err, text, filename)
        err.render()
        return type(err).__name__


def outcome_bytes(data: bytes, path: Path) -> str:
    path.write_bytes(data)
    try:
        with time_limit(TIME_LIMIT_S):
            nnc.load(path)
        return "ok"
    except NncError as err:
        text = data.decode("utf-8", errors="replace")
        check_span(err, text, str(path))
        return type(err).__name__


def check_span(err: NncError, text: str, filename: str) -> None:
    span = err.span
    assert span is not None, f"{type(err).__name__} without a location: {err}"
    assert span.file == filename, f"span names {span.file!r}"
    lines = text.split("\n")
    assert 1 <= span.line <= len(lines), f"line {span.line} outside 1..{len(lines)}: {err}"
    assert 1 <= span.col <= len(lines[span.line - 1]) + 1, f"column {span.col} outside line: {err}"
