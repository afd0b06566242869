"""Progress and reports: rich bars on a terminal, plain lines in logs, or nothing.

:func:`make_reporter` picks one: :class:`RichReporter` when stdout is a terminal,
:class:`PlainReporter` when it is a pipe or a CI log, :class:`QuietReporter` with
``--quiet``. Warnings always go to stderr.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from nnc.errors import visible

MAX_EPOCH_LINES = 50


@dataclass
class RunInfo:
    """What a run is about to do, for its first lines."""

    model: str
    backend: str
    epochs: int
    first_epoch: int
    batches: int
    samples: int
    validation: int
    batch: int | str
    parameters: int
    run_dir: str | None
    resumed_from: str | None = None
    monitor: str = "loss"
    parallel: str = ""  # "2 data-parallel workers (DDP over gloo)"


@dataclass
class Summary:
    """How a run ended, for the closing tables."""

    model: str
    epochs_run: int
    stopped: str
    monitor: str
    best_epoch: int | None
    best: float | None
    final: dict[str, float]
    seconds: float
    run_dir: str | None
    restored_best: bool = False
    confusion: np.ndarray | None = None
    confusion_on: str = ""
    files: list[str] = field(default_factory=list)
    # the set the final (non-validation) figures are measured on; "" names none
    # (a GAN's figures are its last epoch's)
    final_on: str = "training set"


def format_value(name: str, value: float) -> str:
    """A figure as shown in progress lines and tables."""
    if name.endswith("accuracy"):
        return f"{value:.4f}"
    if name in ("epoch",):
        return str(int(value))
    return f"{value:.4g}"


def format_duration(seconds: float) -> str:
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


BEST_MARK = "*"


def epoch_line(
    row: Mapping[str, float],
    epochs: int,
    eta: float | None,
    samples: int,
    improved: bool = False,
    width: int | None = None,
) -> str:
    """``epoch  12/30  loss 0.2345  accuracy 0.9312  ...  lr 0.002  5,210 samples/s  ETA ...``,
    ending with :data:`BEST_MARK` when the epoch is a new best of the monitored figure.

    Within ``width`` columns (a terminal's), the parts that are elsewhere too go
    first: the ETA, the throughput, then the learning rate (all in the progress bar
    or history.csv); the figures always stay."""
    digits = len(str(epochs))
    parts = [f"epoch {int(row['epoch']):>{digits}}/{epochs}"]
    parts += [
        f"{name} {format_value(name, value)}"
        for name, value in row.items()
        if name not in ("epoch", "time", "lr")
    ]
    optional = []
    if "lr" in row:
        optional.append(f"lr {format_value('lr', row['lr'])}")
    seconds = row.get("time", 0.0)
    if seconds > 0:
        optional.append(f"{samples / seconds:,.0f} samples/s")
    if eta is not None:
        optional.append(f"ETA {format_duration(eta)}")
    mark = [BEST_MARK] if improved else []
    while optional and width is not None and len("  ".join(parts + optional + mark)) > width:
        optional.pop()
    return "  ".join(parts + optional + mark)


def should_print(epoch: int, first: int, epochs: int) -> bool:
    """At most about :data:`MAX_EPOCH_LINES` epoch lines: the first, the last, and
    evenly spaced ones between."""
    every = max(1, math.ceil(epochs / MAX_EPOCH_LINES))
    return epoch == first + 1 or epoch == epochs or epoch % every == 0


class QuietReporter:
    """Prints nothing but warnings (to stderr)."""

    def __init__(self, err: IO[str] | None = None):
        self.err = err

    def start(self, info: RunInfo) -> None:
        pass

    def batch(self, epoch: int, batch: int, batches: int, loss: float, name: str = "loss") -> None:
        pass

    def epoch(self, row: Mapping[str, float], improved: bool) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=self.err or sys.stderr)

    def finish(self, summary: Summary) -> None:
        pass

    def close(self) -> None:
        pass


class SilentReporter(QuietReporter):
    """Prints nothing at all: the reporter of data-parallel workers other than rank 0,
    which reports for all of them (they meet the same warnings)."""

    def warn(self, message: str) -> None:
        pass


def stated_width() -> int | None:
    """The width ``COLUMNS`` states, for output that is not a terminal (a log, a pipe):
    lines there are not cut unless the user says how wide they may be."""
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
    return width if width > 0 else None


class PlainReporter(QuietReporter):
    """One line per (sampled) epoch, then the summary as plain text tables."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None):
        super().__init__(err)
        self.out = out or sys.stdout
        self.info: RunInfo | None = None
        self.started = time.perf_counter()

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        # The reader of stdout went away (`nnc train ... | head -2`). The run matters more
        # than its log: stop printing, keep training, write the whole run folder.
        self.out = silence(self.out)
        print(
            "note: standard output was closed; training goes on without printing",
            file=self.err or sys.stderr,
            flush=True,
        )

    def start(self, info: RunInfo) -> None:
        self.info = info
        self.started = time.perf_counter()
        self._print(start_text(info))

    def eta(self, epoch: int) -> float | None:
        if self.info is None:
            return None
        done = epoch - self.info.first_epoch
        left = self.info.epochs - epoch
        if done <= 0 or left <= 0:
            return None
        return (time.perf_counter() - self.started) / done * left

    def epoch(self, row: Mapping[str, float], improved: bool) -> None:
        info = self.info
        if info is None or not should_print(int(row["epoch"]), info.first_epoch, info.epochs):
            return
        eta = self.eta(int(row["epoch"]))
        self._print(epoch_line(row, info.epochs, eta, info.samples, improved, stated_width()))

    def note(self, message: str) -> None:
        self._print(message)

    def finish(self, summary: Summary) -> None:
        from rich.console import Console

        console = Console(file=self.out, width=100, no_color=True, highlight=False)
        try:
            print_summary(console, summary)
        except BrokenPipeError:
            self._reader_gone()


class RichReporter(PlainReporter):
    """Live bars for epochs and batches with loss, metrics, throughput and ETA."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None):
        super().__init__(out, err)
        from rich.console import Console

        self.console = Console(file=self.out, highlight=False)
        self.progress: Any = None
        self.monitor = "loss"
        self.epoch_task: Any = None
        self.batch_task: Any = None

    def start(self, info: RunInfo) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.info = info
        self.monitor = info.monitor
        self.started = time.perf_counter()
        self.console.print(start_text(info), markup=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[figures]}"),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.epoch_task = self.progress.add_task(
            "epoch ", total=info.epochs, completed=info.first_epoch, figures=""
        )
        self.batch_task = self.progress.add_task("batch ", total=info.batches, figures="")

    def batch(self, epoch: int, batch: int, batches: int, loss: float, name: str = "loss") -> None:
        if self.progress is not None:
            self.progress.update(
                self.batch_task, completed=batch, total=batches, figures=f"{name} {loss:.4g}"
            )

    def epoch(self, row: Mapping[str, float], improved: bool) -> None:
        info = self.info
        if info is None or self.progress is None:
            return
        # The bar shows the loss (a GAN's two) and the best-epoch figure; the lines above
        # show all.
        candidates = ("loss", "val_loss", "d_loss", "g_loss", self.monitor)
        keys = dict.fromkeys(k for k in candidates if k in row)
        shown = "  ".join(f"{k} {format_value(k, row[k])}" for k in keys)
        self.progress.update(self.epoch_task, completed=int(row["epoch"]), figures=shown)
        if int(row["epoch"]) < info.epochs:
            self.progress.reset(self.batch_task, total=info.batches, figures="")
        else:  # the last epoch: no batch bar left to fill while the run is evaluated
            self.progress.update(self.batch_task, visible=False)
        if should_print(int(row["epoch"]), info.first_epoch, info.epochs):
            eta = self.eta(int(row["epoch"]))
            line = epoch_line(row, info.epochs, eta, info.samples, improved, self.console.width)
            self.console.print(line, markup=False)

    def note(self, message: str) -> None:
        self.console.print(message)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def finish(self, summary: Summary) -> None:
        self.close()
        print_summary(self.console, summary)


def silence(stream: IO[str]) -> IO[str]:
    """A sink for the rest of the output once ``stream``'s reader has gone. Its file
    descriptor is pointed at the null device too, so that the interpreter's last flush
    at exit does not fail on the broken pipe again."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # a stream without a descriptor of its own (a test's StringIO)
    finally:
        os.close(null)
    return open(os.devnull, "w", encoding="utf-8")  # lives as long as the run


def make_reporter(
    quiet: bool = False, out: IO[str] | None = None, err: IO[str] | None = None
) -> QuietReporter:
    """The reporter for this terminal: quiet, rich (a TTY) or plain lines."""
    if quiet:
        return QuietReporter(err)
    stream = out or sys.stdout
    if stream.isatty():
        return RichReporter(stream, err)
    return PlainReporter(stream, err)


def start_text(info: RunInfo) -> str:
    verb = (
        f"resuming {info.model} at epoch {info.first_epoch + 1}"
        if info.resumed_from
        else (f"training {info.model}")
    )
    val = f", {info.validation:,} for validation" if info.validation else ""
    where = f" -> {visible(info.run_dir)}" if info.run_dir else ""
    on = f"{info.backend} with {info.parallel}" if info.parallel else info.backend
    head = (
        f"{verb} on {on}{where}\n"
        f"{info.parameters:,} parameters; {info.samples:,} samples{val}\n"
        f"{info.epochs} epoch{'s' * (info.epochs != 1)} of {info.batches} "
        f"batch{'es' * (info.batches != 1)} (batch {info.batch})"
        + (f"; {BEST_MARK} marks a new best {info.monitor}" if info.monitor else "")
    )
    if info.resumed_from:
        head += f"\nfrom checkpoint {visible(info.resumed_from)}"
    return head


def print_summary(console: Any, summary: Summary) -> None:
    """The closing tables: how the run ended, its best epoch, and for classifiers the
    confusion matrix."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{summary.model}: {summary.stopped}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("epochs", str(summary.epochs_run))
    if summary.best_epoch:
        best = (
            ""
            if summary.best is None
            else f" ({summary.monitor} {format_value(summary.monitor, summary.best)})"
        )
        restored = ", weights restored" if summary.restored_best else ""
        table.add_row("best epoch", f"{summary.best_epoch}{best}{restored}")
    for name, value in summary.final.items():
        where = "" if name.startswith("val_") or not summary.final_on else f" ({summary.final_on})"
        table.add_row(f"final {name}{where}", format_value(name, value))
    seconds = summary.seconds
    table.add_row("time", f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds))
    if summary.run_dir:
        table.add_row("run folder", Text(visible(summary.run_dir)))
    console.print(table)
    if summary.confusion is not None:
        print_confusion(console, summary.confusion, summary.confusion_on)


# A wider confusion matrix does not fit a terminal; the run folder's CSV holds it.
MAX_PRINTED_CLASSES = 20


def print_confusion(console: Any, matrix: np.ndarray, on: str = "") -> None:
    """The confusion matrix: rows are true classes, columns predicted ones; the
    diagonal (the correct predictions) is bold."""
    from rich.table import Table

    where = f" on the {on}" if on else ""
    classes = len(matrix)
    if classes > MAX_PRINTED_CLASSES:  # a character model's 62 classes: the file only
        console.print(f"confusion matrix{where}: {classes} classes, in confusion.csv")
        return
    console.print(f"confusion matrix{where} (rows: true class, columns: predicted)")
    table = Table()
    table.add_column("", justify="right", style="bold")
    for c in range(classes):
        table.add_column(str(c), justify="right")
    for r in range(classes):
        cells = [
            f"[bold]{matrix[r, c]}[/bold]" if r == c else str(matrix[r, c]) for c in range(classes)
        ]
        table.add_row(str(r), *cells)
    console.print(table)
