"""MLflow tracking of a run (``--track mlflow``).

One MLflow run per nnc run, named after the run folder, in the experiment named by
``experiment`` (by default the recipe's name): the recipe's settings as parameters
(``optimizer.lr``, ``batch``, ...; a search trial adds its sampled values), every
figure of the history row as a metric per epoch, and the final weights, the recipe
(``recipe.nn``) and ``loss.png`` as artifacts. The tracking server is MLflow's own
choice: ``uri``, else ``$MLFLOW_TRACKING_URI``, else MLflow's default (a
``mlflow.db`` SQLite file in the working folder).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnc.errors import NncError
from nnc.train.tracking.callbacks import Callback, RunContext

if TYPE_CHECKING:
    from nnc.train.loop import TrainResult

MAX_PARAM_TEXT = 500  # MLflow refuses longer parameter values on some servers


def mlflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested settings as ``{"optimizer.lr": "0.002", ...}``; a spec's ``kind`` names it.

    >>> flatten({"optimizer": {"kind": "adam", "lr": 0.002}, "batch": 32})
    {'optimizer': 'adam', 'optimizer.lr': '0.002', 'batch': '32'}
    """
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "kind":
                out[prefix or "kind"] = str(inner)
            else:
                out.update(flatten(inner, name))
    elif isinstance(value, list):  # metrics: their kinds
        shown = (v.get("kind", v) if isinstance(v, dict) else v for v in value)
        out[prefix] = ", ".join(str(v) for v in shown)[:MAX_PARAM_TEXT]
    else:
        out[prefix] = str(value)[:MAX_PARAM_TEXT]
    return out


class MlflowCallback(Callback):
    def __init__(
        self,
        uri: str | None = None,
        experiment: str | None = None,
        params: Mapping[str, object] | None = None,
    ):
        if not mlflow_available():
            raise NncError(
                "--track mlflow needs MLflow, which is not installed",
                hint="pip install 'nnc[track]'",
            )
        self.uri = uri
        self.experiment = experiment
        self.params = dict(params or {})
        self.run: Any = None
        self.context: RunContext | None = None

    def on_train_begin(self, context: RunContext) -> None:
        import mlflow

        self.context = context
        if self.uri:
            mlflow.set_tracking_uri(self.uri)
        mlflow.set_experiment(self.experiment or context.recipe.name)
        name = context.run_dir.name if context.run_dir is not None else None
        self.run = mlflow.start_run(run_name=name)
        params = flatten({k: v for k, v in context.document["recipe"].items() if k != "name"})
        params["backend"] = context.backend
        params.update({f"search.{k}": str(v) for k, v in self.params.items()})
        mlflow.log_params(params)

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], runtime: Any) -> None:
        if self.run is None:
            return
        import mlflow

        figures = {k: float(v) for k, v in row.items() if k != "epoch" and math.isfinite(v)}
        mlflow.log_metrics(figures, step=epoch)

    def on_train_end(self, result: TrainResult | None) -> None:
        if self.run is None:
            return
        import mlflow

        try:
            run_dir = self.context.run_dir if self.context is not None else None
            if result is not None and run_dir is not None:
                for path in (run_dir / "recipe.nn", *result.files):
                    if path.is_file():
                        mlflow.log_artifact(str(path))
        finally:
            status = (
                "FINISHED"
                if result is not None and result.stopped != "interrupted"
                else ("KILLED" if result is not None else "FAILED")
            )
            mlflow.end_run(status=status)
            self.run = None
