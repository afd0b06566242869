"""The oracle for front-end fuzzing: success, or an NncError located inside the input."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nnc
from nnc.errors import NncError

# A hang is more CPU time than a linear front end needs: 5 s, plus 1 s for every
# 20,000 characters (one check and one format round trip of a 90 KB spec of 18,000
# layers take about 6 s). CPU time, not wall time: on a machine shared with other
# work, wall time measures the machine (soak runs under a load of 7 on 2 cores
# flagged inputs that needed 5 s of CPU as 25 s "hangs").
TIME_LIMIT_S = 5.0
CHARACTERS_PER_EXTRA_SECOND = 20_000


def time_allowed(text: str) -> float:
    return TIME_LIMIT_S + len(text) / CHARACTERS_PER_EXTRA_SECOND


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Hang once this process has used ``seconds`` of CPU time."""

    def expired(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds:.1f} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def outcome(text: str, filename: str = "fuzz.nn") -> str:
    """``"ok"`` or the error class name; raises AssertionError for a bad outcome."""
    try:
        with time_limit(time_allowed(text)):
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
        with time_limit(time_allowed(data.decode("utf-8", errors="replace"))):
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
