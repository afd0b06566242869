"""``loss.png``: training and validation loss and metrics per epoch, or a GAN's
losses and discriminator outputs (matplotlib, Agg, optional)."""

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
    validation curve. The loss axis is logarithmic when a linear one would flatten
    the curve (:func:`log_scale_reads_better`), as it does for most runs that
    converge. A dotted line marks the best epoch.
    """
    if not matplotlib_available() or not rows:
        return None
    from matplotlib.ticker import MaxNLocator

    metrics = [k for k in rows[-1] if k not in NOT_METRICS and not k.startswith("val_")]
    panels = 1 + (1 if metrics else 0)
    figure = new_figure(7.0 if panels == 1 else 11.0, 4.2)
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


def log_scale_reads_better(values: Sequence[float]) -> bool:
    """Whether a logarithmic axis shows ``values`` better than a linear one: they are
    all positive, span more than a decade, and on a linear axis at least half of them
    would sit in its lowest tenth (a loss that falls fast in the first epochs and
    slowly after, whose later epochs a linear axis draws as a flat line).

    >>> log_scale_reads_better([0.156, 0.0083, 0.0066, 0.0061, 0.0050])  # sequence_lstm
    True
    >>> log_scale_reads_better([1.9, 1.0, 0.58, 0.43])  # a steady descent
    False
    """
    if not values or min(values) <= 0 or max(values) <= 10 * min(values):
        return False
    low, high = min(values), max(values)
    squashed = sum(v < low + 0.1 * (high - low) for v in values)
    return squashed >= len(values) / 2


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
    if log_scale and log_scale_reads_better(series):
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


def plot_gan(rows: Sequence[Mapping[str, float]], path: Path, title: str) -> Path | None:
    """Draw a GAN's curves to ``path``: the discriminator's and the generator's losses
    per epoch above, mean D(x) and mean D(G(z)) below (the equilibrium, 0.5, dashed);
    None (and no file) without matplotlib."""
    if not matplotlib_available() or not rows:
        return None
    from matplotlib.ticker import MaxNLocator

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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return save_figure(figure, path)


def plot_confusion(matrix: Any, path: Path, title: str) -> Path | None:
    """Draw a confusion matrix (rows: true class, columns: predicted) to ``path``,
    each cell shaded by its share of its row and labelled with its count; None (and
    no file) without matplotlib."""
    if not matplotlib_available():
        return None
    import numpy as np

    counts = np.asarray(matrix)
    n = counts.shape[0]
    rows = counts.sum(axis=1, keepdims=True)
    share = counts / np.maximum(rows, 1)
    size = min(2.0 + 0.45 * n, 12.0)
    figure = new_figure(size + 1.0, size)
    ax = figure.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    if n <= 30:
        for r in range(n):
            for c in range(n):
                color = "white" if share[r, c] > 0.5 else "black"
                ax.text(c, r, str(int(counts[r, c])), ha="center", va="center", color=color)
    ticks = list(range(n)) if n <= 30 else list(range(0, n, max(1, n // 15)))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_cd(rows: Sequence[Mapping[str, float]], path: Path, title: str) -> Path | None:
    """A contrastive divergence run's curves: the reconstruction error, and beside it
    the (pseudo-)log-likelihood; None (and no file) without matplotlib."""
    if not matplotlib_available() or not rows:
        return None
    from matplotlib.ticker import MaxNLocator

    likelihood = next((k for k in rows[-1] if k.endswith("log_likelihood")), None)
    names = ["recon_error", *([likelihood] if likelihood else [])]
    figure = new_figure(11.0 if likelihood else 7.0, 4.2)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        _curves(ax, rows, name, name.replace("_", " "), None, log_scale=name == "recon_error")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_title(title)
    figure.tight_layout()
    return save_figure(figure, path)
