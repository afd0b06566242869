"""Training progress in a notebook: one display that updates in place.

:class:`NotebookReporter` is a reporter for :func:`nnc.train.train` (``reporter=``).
It shows a progress bar for the epochs, the figures of the latest epoch, a table of
sampled epochs as ``nnc train`` prints them, and at the end the run's summary. It
updates one output (a display id) instead of printing a line per epoch, and
redraws at most every :data:`MIN_REDRAW_S` seconds during an epoch.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Any

from nnc.train.progress import (
    QuietReporter,
    RunInfo,
    Summary,
    format_duration,
    format_value,
    should_print,
    start_text,
)

MIN_REDRAW_S = 0.25


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (IPython with a ZMQ shell)."""
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class NotebookReporter(QuietReporter):
    """Progress as one HTML output that updates in place.

    >>> r = NotebookReporter(display=False)
    >>> r.start(RunInfo(model="Xor", backend="numpy", epochs=2, first_epoch=0, batches=1,
    ...                 samples=4, validation=0, batch="all", parameters=21, run_dir=None))
    >>> r.epoch({"epoch": 1, "loss": 0.25, "time": 0.01}, improved=True)
    >>> "epoch 1/2" in r.html()
    True
    """

    def __init__(self, display: bool = True) -> None:
        super().__init__()
        self.show = display
        self.info: RunInfo | None = None
        self.handle: Any = None
        self.rows: list[dict[str, float]] = []
        self.latest: dict[str, float] = {}
        self.batch_text = ""
        self.notes: list[str] = []
        self.summary: Summary | None = None
        self.started = time.perf_counter()
        self.drawn = 0.0

    # -- the reporter interface ------------------------------------------------

    def start(self, info: RunInfo) -> None:
        self.info = info
        self.started = time.perf_counter()
        if self.show:
            from IPython.display import HTML, display

            self.handle = display(HTML(self.html()), display_id=True)

    def batch(self, epoch: int, batch: int, batches: int, loss: float, name: str = "loss") -> None:
        self.batch_text = f"batch {batch}/{batches}  {name} {loss:.4g}"
        if time.perf_counter() - self.drawn >= MIN_REDRAW_S:
            self.redraw()

    def epoch(self, row: Mapping[str, float], improved: bool) -> None:
        self.latest = dict(row)
        self.batch_text = ""
        info = self.info
        if info is not None and should_print(int(row["epoch"]), info.first_epoch, info.epochs):
            self.rows.append(dict(row))
        self.redraw()

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.redraw()

    def finish(self, summary: Summary) -> None:
        self.summary = summary
        self.redraw()

    # -- drawing ----------------------------------------------------------------

    def redraw(self) -> None:
        self.drawn = time.perf_counter()
        if self.handle is not None:
            from IPython.display import HTML

            self.handle.update(HTML(self.html()))

    def html(self) -> str:
        """The display as it stands."""
        info = self.info
        if info is None:
            return "<div class='nnc-progress'>waiting for the run to start</div>"
        esc = html.escape
        done = int(self.latest.get("epoch", info.first_epoch))
        figures = "  ".join(
            f"{k} {format_value(k, v)}"
            for k, v in self.latest.items()
            if k not in ("epoch", "time")
        )
        elapsed = time.perf_counter() - self.started
        left = info.epochs - done
        ran = done - info.first_epoch
        eta = f"  ETA {format_duration(elapsed / ran * left)}" if ran > 0 and left > 0 else ""
        parts = [
            "<div class='nnc-progress' style='font-family: monospace;'>",
            f"<div>{esc(start_text(info))}</div>",
            f"<progress value='{done}' max='{info.epochs}' style='width: 20em;'></progress> ",
            f"<span>epoch {done}/{info.epochs}  {esc(figures)}{esc(eta)}</span>",
        ]
        if self.batch_text:
            parts.append(f"<div>{esc(self.batch_text)}</div>")
        if self.rows:
            parts.append(self._table())
        parts += [f"<div>{esc(n)}</div>" for n in self.notes]
        if self.summary is not None:
            parts.append(self._summary(self.summary))
        parts.append("</div>")
        return "".join(parts)

    def _table(self) -> str:
        names = list(dict.fromkeys(k for r in self.rows for k in r if k != "time"))
        head = "".join(f"<th style='padding: 0 8px;'>{html.escape(n)}</th>" for n in names)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='padding: 0 8px; text-align: right;'>"
                f"{html.escape(format_value(n, r[n])) if n in r else ''}</td>"
                for n in names
            )
            + "</tr>"
            for r in self.rows
        )
        # The sampled epochs (about 50 at most) scroll within a few lines of the page.
        return (
            "<div style='max-height: 14em; overflow-y: auto;'>"
            f"<table class='nnc-epochs'><tr>{head}</tr>{body}</table></div>"
        )

    def _summary(self, s: Summary) -> str:
        lines = [f"{s.model}: {s.stopped} after {s.epochs_run} epochs"]
        if s.best_epoch:
            best = "" if s.best is None else f" ({s.monitor} {format_value(s.monitor, s.best)})"
            lines.append(f"best epoch {s.best_epoch}{best}")
        for name, value in s.final.items():
            lines.append(f"final {name} {format_value(name, value)}")
        lines.append(f"time {s.seconds:.1f} s")
        if s.run_dir:
            lines.append(f"run folder {s.run_dir}")
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        return f"<ul class='nnc-summary'>{items}</ul>"
