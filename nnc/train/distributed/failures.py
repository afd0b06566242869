"""From what the workers left behind to one clear error naming the rank that failed.

When a run fails, the launcher knows how its worker processes ended (:class:`Exit`)
and reads the reports the workers wrote (:class:`~nnc.train.distributed.job.WorkerReport`).
The root cause is, in this order: an nnc error a worker raised (raised again here,
as it is: every worker meets the same divergence or data error), an internal error,
a worker killed by a signal other than SIGTERM (which launchers send to stop the
rest), a worker that exited without a report, a terminated worker, and last a
worker that only lost contact with the others (the failure was elsewhere: on another
machine, say).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from nnc.errors import NncError, WorkerError
from nnc.train.checkpoint import list_checkpoints
from nnc.train.distributed.job import WorkerReport
from nnc.train.rundir import CHECKPOINTS


@dataclass(frozen=True)
class Exit:
    """How a worker process ended: its exit status, or minus the signal that killed it."""

    rank: int
    pid: int | None
    code: int

    def describe(self) -> str:
        who = f"worker rank {self.rank}" + (f" (pid {self.pid})" if self.pid else "")
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = f"signal {-self.code}"
            return f"{who} was killed by {name}"
        return f"{who} exited with status {self.code} without saying why"


def failure(exits: list[Exit], folder: Path, ranks: range, run_dir: Path | None) -> NncError:
    """The error that reports a failed run (``ranks``: the workers launched here)."""
    reports = [r for r in (WorkerReport.read(folder, rank) for rank in ranks) if r is not None]
    for report in reports:
        if report.kind == "nnc":
            return report.nnc_error()
    after = _aftermath(run_dir)
    for report in reports:
        if report.kind == "internal":
            return WorkerError(
                f"worker rank {report.rank} stopped on an internal error "
                f"({report.error}: {report.message}); {after}\n{report.traceback.rstrip()}",
                report.rank,
                hint="this is a bug in nnc: please report it with the traceback above",
            )
    reported = {report.rank for report in reports}
    for code in sorted(exits, key=_suspicion):
        if code.code != 0 and code.rank not in reported:
            return WorkerError(f"{code.describe()}; {after}", code.rank, hint=_resume_hint(run_dir))
    for report in reports:
        return WorkerError(
            f"worker rank {report.rank} lost contact with the other workers "
            f"({report.message.splitlines()[0] if report.message else 'no detail'}); {after}",
            report.rank,
            hint="a worker failed elsewhere (on another machine?): see its output",
        )
    return WorkerError(f"the workers stopped without saying why; {after}")


def _suspicion(end: Exit) -> tuple[int, int]:
    """Order exits from the likeliest root cause: killed by a signal, then exited with
    an error, then terminated (SIGTERM is how launchers stop the other workers)."""
    if end.code == -signal.SIGTERM:
        return 2, end.rank
    return (0 if end.code < 0 else 1), end.rank


def _aftermath(run_dir: Path | None) -> str:
    stopped = "every worker has stopped"
    if run_dir is None:
        return stopped
    found = list_checkpoints(run_dir / CHECKPOINTS)
    if not found:
        return f"{stopped}; no checkpoint was written"
    return f"{stopped}; the last checkpoint is {found[-1]}"


def _resume_hint(run_dir: Path | None) -> str | None:
    if run_dir is None or not list_checkpoints(run_dir / CHECKPOINTS):
        return None
    return f"continue from the last checkpoint with --resume {run_dir}"
