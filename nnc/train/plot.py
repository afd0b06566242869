"""``loss.png``: training and validation loss per epoch (matplotlib, Agg, optional)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot_loss(
    rows: Sequence[Mapping[str, float]],
    path: Path,
    title: str,
    loss_name: str,
    best_epoch: int | None = None,
) -> Path | None:
    """Draw the loss curves to ``path``; None (and no file) without matplotlib.

    The y axis is logarithmic when the loss spans more than two decades, as it does
    for most runs that converge. A dotted line marks the best epoch.
    """
    if not matplotlib_available() or not rows:
        return None
    # The object-oriented API with the Agg canvas: no pyplot, no global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [int(r["epoch"]) for r in rows]
    train = [float(r["loss"]) for r in rows]
    figure = Figure(figsize=(7.0, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    marker = "o" if len(epochs) <= 30 else None
    ax.plot(epochs, train, label="training loss", color="tab:blue", marker=marker, markersize=3)
    series = list(train)
    if any("val_loss" in r for r in rows):
        val_epochs = [int(r["epoch"]) for r in rows if "val_loss" in r]
        val = [float(r["val_loss"]) for r in rows if "val_loss" in r]
        ax.plot(
            val_epochs,
            val,
            label="validation loss",
            color="tab:orange",
            marker=marker,
            markersize=3,
        )
        series += val
    positive = [v for v in series if v > 0]
    if positive and len(positive) == len(series) and max(positive) / min(positive) > 100:
        ax.set_yscale("log")
    if best_epoch and len(epochs) > 1:
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({loss_name})")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
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
