"""``loss.png``: training and validation loss per epoch, or a GAN's losses and
discriminator outputs (matplotlib, Agg, optional)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


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
    epochs = [int(r["epoch"]) for r in rows]
    train = [float(r["loss"]) for r in rows]
    figure = new_figure(7.0, 4.2)
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
    return save_figure(figure, path)


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas: the object-oriented API, no pyplot and no
    global backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: Path) -> Path:
    """Write a figure as PNG through a temporary file and a rename."""
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


def plot_gan(rows: Sequence[Mapping[str, float]], path: Path, title: str) -> Path | None:
    """Draw a GAN's curves to ``path``: the discriminator's and the generator's losses
    per epoch above, mean D(x) and mean D(G(z)) below (the equilibrium, 0.5, dashed);
    None (and no file) without matplotlib."""
    if not matplotlib_available() or not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    marker = "o" if len(epochs) <= 30 else None
    figure = new_figure(7.0, 6.0)
    losses, outputs = figure.subplots(2, 1, sharex=True)
    for key, label, color in (
        ("d_loss", "discriminator loss", "tab:blue"),
        ("g_loss", "generator loss", "tab:orange"),
    ):
        losses.plot(epochs, [r[key] for r in rows], label=label, color=color, marker=marker, ms=3)
    losses.set_ylabel("loss")
    losses.set_title(title)
    for key, label, color in (
        ("d_real", "mean D(x), real samples", "tab:green"),
        ("d_fake", "mean D(G(z)), generated samples", "tab:red"),
    ):
        outputs.plot(epochs, [r[key] for r in rows], label=label, color=color, marker=marker, ms=3)
    outputs.axhline(0.5, color="grey", linestyle="--", label="equilibrium (0.5)")
    outputs.set_ylim(0.0, 1.0)
    outputs.set_xlabel("epoch")
    outputs.set_ylabel("discriminator output")
    for ax in (losses, outputs):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    figure.tight_layout()
    return save_figure(figure, path)
