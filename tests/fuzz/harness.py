"""The oracle for front-end fuzzing: success, or an NncError located inside the input.

:func:`outcome` runs one input in this process under a CPU-time limit (the pytest
fuzz tests). :class:`Sandbox` runs inputs in a child process under limits the kernel
enforces: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU`` (behind the CPU-time timer, should a
C extension hold the interpreter) and a wall-clock timeout (a read that blocks uses
no CPU); a child that dies is started again (the soak, ``scripts/fuzz_frontend.py``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
import signal
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import nnc
from nnc.errors import NncError
from tests.fuzz.generators import special_file

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


def outcome_special(variant: str, folder: Path) -> str:
    """A special file given as a spec must be refused, naming its path, at once."""
    path = special_file(variant, folder)
    try:
        with time_limit(TIME_LIMIT_S):
            nnc.load(path)
    except NncError as err:
        if str(path) not in str(err):
            raise SpanOutside(f"the error does not name {path}: {err}") from None
        return type(err).__name__
    raise AssertionError(f"{variant} {path} was read as a spec")


class SpanOutside(AssertionError):
    """An error whose location is not inside the input."""


def check_span(err: NncError, text: str, filename: str) -> None:
    """The error's span lies inside ``text`` (lines split at ``\n``, as nnc counts)."""
    span = err.span
    if span is None:
        raise SpanOutside(f"{type(err).__name__} without a location: {err}")
    if span.file != filename:
        raise SpanOutside(f"span names {span.file!r}, not {filename!r}: {err}")
    lines = text.split("\n")
    if not 1 <= span.line <= len(lines):
        raise SpanOutside(f"line {span.line} outside 1..{len(lines)}: {err}")
    if not 1 <= span.col <= len(lines[span.line - 1]) + 1:
        raise SpanOutside(f"column {span.col} outside line {span.line}: {err}")
    end = (span.end_line, span.end_col)
    if end < (span.line, span.col) or not 1 <= span.end_line <= len(lines):
        raise SpanOutside(f"end {end} before the start or outside the text: {err}")
    if span.end_col > len(lines[span.end_line - 1]) + 2:  # one past the line's end
        raise SpanOutside(f"end column {span.end_col} outside line {span.end_line}: {err}")


# -- running inputs in a child process under limits --------------------------------

MEMORY_LIMIT = 1024**3
"""Address space a child may add to what it had when it started (RLIMIT_AS)."""
WALL_FACTOR = 4.0
WALL_EXTRA_S = 10.0
"""A child's wall-clock time per input: ``WALL_FACTOR`` times its CPU allowance plus
``WALL_EXTRA_S`` (a loaded machine stretches wall time; a blocked read never ends)."""

FAILURES = {
    "crash": "an exception that is not an NncError",
    "span": "an error located outside the input",
    "cpu": "over the CPU-time limit",
    "memory": "over the memory limit",
    "wall": "over the wall-clock limit (blocked)",
}


class Finding(Exception):
    """A bad outcome: ``kind`` is one of :data:`FAILURES`."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{FAILURES[kind]}: {detail}")
        self.kind = kind
        self.detail = detail


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve(conn: Connection, run: Callable[[Any], str], memory: int) -> None:
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while True:
        try:
            job, seconds = conn.recv()
        except EOFError:
            return
        # the kernel's limit (whole seconds), behind the timer: SIGXCPU ends the child
        soft = math.ceil(_cpu_used() + seconds + 0.5)
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard < 0 else min(soft, hard), hard))
        try:  # ``run`` sets its own CPU-time timer (``time_allowed``)
            result: tuple[str, str] = ("ok", run(job))
        except Hang as exc:
            result = ("cpu", str(exc))
        except MemoryError as exc:
            result = ("memory", f"MemoryError: {exc}")
        except SpanOutside as exc:
            result = ("span", str(exc))
        except Exception:
            result = ("crash", traceback.format_exc())
        conn.send(result)


class Sandbox:
    """Runs ``run(job)`` in a forked child under a memory limit (``RLIMIT_AS``), a
    CPU-time limit (a timer, then ``RLIMIT_CPU``) and a wall-clock timeout.

    Calling it returns ``run``'s outcome or raises :class:`Finding`; after a child
    dies (killed by a limit or crashed) the next call starts a new one. Forking keeps
    the start cheap: the child inherits the imported front end.
    """

    def __init__(
        self,
        run: Callable[[Any], str],
        memory: int = MEMORY_LIMIT,
        wall_extra: float = WALL_EXTRA_S,
    ) -> None:
        self.run = run
        self.memory = memory
        self.wall_extra = wall_extra
        self.child: Any = None
        self.conn: Connection | None = None
        self.started = 0

    def _start(self) -> Connection:
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        self.child = context.Process(target=_serve, args=(child, self.run, self.memory))
        self.child.daemon = True
        self.child.start()
        child.close()
        self.conn = parent
        self.started += 1
        return parent

    def _stop(self) -> int | None:
        if self.child is not None:
            if self.child.is_alive():
                self.child.kill()
            self.child.join()
            code: int | None = self.child.exitcode
        else:
            code = None
        if self.conn is not None:
            self.conn.close()
        self.child = self.conn = None
        return code

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, job: Any, cpu_seconds: float) -> str:
        conn = self.conn or self._start()
        wall = WALL_FACTOR * cpu_seconds + self.wall_extra
        try:
            conn.send((job, cpu_seconds))
            ready = conn.poll(wall)
            reply = conn.recv() if ready else None
        except (EOFError, OSError):
            ready, reply = True, None
        if reply is None:
            code = self._stop()
            if not ready:
                raise Finding("wall", f"no answer within {wall:.0f} s of wall-clock time")
            if code == -signal.SIGXCPU:
                raise Finding("cpu", f"killed by RLIMIT_CPU after {cpu_seconds:.1f} s")
            if code == -signal.SIGKILL:  # the kernel's out-of-memory killer
                raise Finding("memory", "killed (SIGKILL)")
            raise Finding("crash", f"the child process died (exit code {code})")
        kind, detail = reply
        if kind == "ok":
            return detail
        if kind == "memory":  # the child may be left fragmented: start afresh
            self._stop()
        raise Finding(kind, detail)


def run_job(job: tuple[str, Any, Any]) -> str:
    """A job of the soak: ``("text", text, filename)``, ``("bytes", data, path)`` or
    ``("special", variant, folder)``."""
    kind, a, b = job
    if kind == "text":
        return outcome(a, b)
    if kind == "bytes":
        return outcome_bytes(a, Path(b))
    return outcome_special(a, Path(b))
