"""``loss.png``: training and validation loss and metrics per epoch (matplotlib, Agg,
optional)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


NOT_METRICS = frozenset({"epoch", "loss", "val_loss", "lr", "time"})


def plot_loss(
    rows: Sequence[Mapping[str, float]],
    path: Path,
    title: str,
    loss_name: str,
    best_epoch: int | None = None,
) -> Path | None:
    """Draw the loss curves, and beside them the metric curves, to ``path``; None (and
    no file) without matplotlib.

    Each panel has the training curve and, when there is a validation set, the
    validation curve. The loss axis is logarithmic when the loss spans more than two
    decades, as it does for most runs that converge. A dotted line marks the best
    epoch.
    """
    if not matplotlib_available() or not rows:
        return None
    # The object-oriented API with the Agg canvas: no pyplot, no global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    metrics = [k for k in rows[-1] if k not in NOT_METRICS and not k.startswith("val_")]
    panels = 1 + (1 if metrics else 0)
    figure = Figure(figsize=(7.0 if panels == 1 else 11.0, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    _curves(axes[0], rows, "loss", f"loss ({loss_name})", best_epoch, log_scale=True)
    if metrics:
        for name in metrics:
            _curves(axes[1], rows, name, ", ".join(metrics), best_epoch, log_scale=False)
        axes[1].set_title("metrics per epoch")
    axes[0].set_title(title)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _curves(
    ax: Any,
    rows: Sequence[Mapping[str, float]],
    name: str,
    ylabel: str,
    best_epoch: int | None,
    log_scale: bool,
) -> None:
    """The training curve of ``name`` and, where present, its ``val_`` curve."""
    epochs = [int(r["epoch"]) for r in rows if name in r]
    train = [float(r[name]) for r in rows if name in r]
    marker = "o" if len(epochs) <= 30 else None
    label = "training" if name == "loss" else f"training {name}"
    line = ax.plot(
        epochs,
        train,
        label=f"{label} loss" if name == "loss" else label,
        marker=marker,
        markersize=3,
    )[0]
    series = list(train)
    val_key = f"val_{name}"
    if any(val_key in r for r in rows):
        val_epochs = [int(r["epoch"]) for r in rows if val_key in r]
        val = [float(r[val_key]) for r in rows if val_key in r]
        ax.plot(
            val_epochs,
            val,
            label=f"validation {name}",
            marker=marker,
            markersize=3,
            linestyle="--",
            color=line.get_color() if name != "loss" else "tab:orange",
        )
        series += val
    positive = [v for v in series if v > 0]
    if (
        log_scale
        and positive
        and len(positive) == len(series)
        and max(positive) / min(positive) > 100
    ):
        ax.set_yscale("log")
    if (
        best_epoch
        and len(epochs) > 1
        and not any(line.get_label().startswith("best epoch") for line in ax.get_lines())
    ):
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
