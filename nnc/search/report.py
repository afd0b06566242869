"""What a search leaves besides its trials' run folders: the results table (printed
and as ``results.csv``) and two figures, the objective over trials and the
parameters' importance, drawn by Optuna's own matplotlib plots."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnc.train.plot import matplotlib_available
from nnc.train.rundir import atomic_write_text

if TYPE_CHECKING:
    import optuna

    from nnc.search.study import TrialRow

COLUMNS = ("trial", "state", "objective", "epochs", "seconds")


def table_rows(rows: Sequence[TrialRow], names: Sequence[str]) -> list[list[str]]:
    """The table as text cells: trial, state, the sampled values, objective, epochs,
    time, and a failed trial's message."""
    out = [["trial", "state", *names, "objective", "epochs", "seconds", "message"]]
    for r in rows:
        values = [_cell(r.values.get(n, "")) for n in names]
        objective = "" if r.objective is None else f"{r.objective:.6g}"
        epochs = "" if r.epochs is None else str(r.epochs)
        seconds = "" if r.seconds is None else f"{r.seconds:.1f}"
        out.append([str(r.number), r.state, *values, objective, epochs, seconds, r.message])
    return out


def _cell(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_table(rows: Sequence[TrialRow], names: Sequence[str]) -> str:
    """The results table aligned in columns, as ``nnc search`` prints it."""
    cells = table_rows(rows, names)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def write_results(path: Path, rows: Sequence[TrialRow], names: Sequence[str]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(table_rows(rows, names))
    atomic_write_text(path, buffer.getvalue())
    return path


def plot_study(
    study: optuna.Study, history_path: Path, importance_path: Path
) -> tuple[list[Path], list[str]]:
    """Draw the objective over trials and the parameters' importance (PED-ANOVA, which
    needs no scikit-learn); the files drawn, and why any was not."""
    if not matplotlib_available():
        return [], ["matplotlib is not installed; the search figures were not drawn"]
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as plots

    drawn: list[Path] = []
    problems: list[str] = []
    jobs: list[tuple[Path, Any]] = [
        (history_path, lambda: plots.plot_optimization_history(study)),
        (
            importance_path,
            lambda: plots.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator()),
        ),
    ]
    for path, draw in jobs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its plots experimental
                axes = draw()
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            problems.append(f"{path.name} was not drawn: {exc}")
            continue
        figure = axes.figure
        figure.set_size_inches(8, 4.5)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        import matplotlib.pyplot as plt

        plt.close(figure)
        drawn.append(path)
    return drawn, problems
