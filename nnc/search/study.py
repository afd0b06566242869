"""The Optuna study behind ``nnc search``: one trial is one ``nnc train`` run of a
sampled recipe; the study's database holds every trial, so processes can share it and
an interrupted search resumes where it stopped."""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnc.dsl.printer import format_file
from nnc.dsl.space import SpaceFile, load_space, rewrite_data_paths
from nnc.errors import NncError, TrainingError
from nnc.ir.space import Choice, ChoiceValue, Integer, LogUniform, Parameter
from nnc.ir.training import Recipe
from nnc.train.metrics import higher_is_better
from nnc.train.rundir import TRIAL_NN
from nnc.train.tracking.callbacks import Callback

if TYPE_CHECKING:
    import optuna

BEST_FILE = "best.nn"
RESULTS_FILE = "results.csv"
HISTORY_PLOT = "objective.png"
IMPORTANCE_PLOT = "importance.png"
HEARTBEAT_S = 10  # at most; a trial whose process has not beaten for stale_after s is failed
SURPLUS = "surplus"  # a trial asked for after the study had all its trials; never trained


@dataclass(frozen=True)
class SearchOptions:
    """How ``nnc search`` runs: ``trials`` in all (over every process of the study),
    ``jobs`` threads here, ``timeout`` seconds for this process; ``storage`` an
    Optuna database URL (default: SQLite in ``out``); ``objective`` the figure to
    optimise (default: the recipe's early-stopping monitor); ``pruner`` median or none;
    ``seed`` the sampler's seed (default: a fresh one per process, so processes that
    share a study draw different points); ``stale_after`` the seconds after which a
    running trial whose process stopped beating (was killed) is failed by the next
    process that starts a trial."""

    trials: int = 20
    out: Path = Path("search")
    backend: str = "numpy"
    storage: str | None = None
    study: str | None = None
    jobs: int = 1
    timeout: float | None = None
    objective: str | None = None
    recipe: str | None = None
    epochs: int | None = None
    pruner: str = "median"
    startup_trials: int = 5
    warmup_epochs: int = 3
    seed: int | None = None
    tensorboard: bool = True
    stale_after: int = 30


@dataclass(frozen=True)
class TrialRow:
    """One line of the results table."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL or RUNNING
    values: dict[str, ChoiceValue]
    objective: float | None
    epochs: int | None
    seconds: float | None
    message: str = ""


@dataclass
class SearchResult:
    study: str
    storage: str
    objective: str
    maximize: bool
    rows: list[TrialRow]
    best: TrialRow | None
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise NncError(
            "nnc search runs its study on Optuna, which is not installed",
            hint="pip install 'nnc[search]'",
        ) from None
    return optuna


def suggest(trial: optuna.Trial, parameter: Parameter) -> ChoiceValue:
    """Optuna's value for one parameter of the space."""
    d = parameter.distribution
    name = parameter.name
    if isinstance(d, Choice):
        chosen: ChoiceValue = trial.suggest_categorical(name, list(d.options))  # type: ignore[assignment]
        return chosen
    if isinstance(d, Integer):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_float(name, d.low, d.high, log=isinstance(d, LogUniform))


def objective_of(recipe: Recipe, asked: str | None) -> str:
    """The figure a trial is judged by: the one asked for, the recipe's early-stopping
    monitor, or ``val_loss`` (``loss`` without a validation set)."""
    if asked:
        return asked
    if recipe.early_stopping is not None:
        return recipe.early_stopping.monitor
    return "val_loss" if recipe.validation is not None else "loss"


def best_figure(history: list[dict[str, float]], name: str) -> float:
    """The best value of ``name`` over a run's epochs (what a trial reports)."""
    values = [row[name] for row in history if name in row]
    if not values:
        columns = ", ".join(history[0]) if history else "none"
        raise TrainingError(
            f"the objective '{name}' is not a figure of the run. Received columns: {columns}"
        )
    return max(values) if higher_is_better(name) else min(values)


class Pruning(Callback):
    """Reports each epoch's objective to the trial and stops the run when Optuna's
    pruner says the trial is clearly worse than the others at that epoch."""

    def __init__(self, trial: optuna.Trial, objective: str):
        self.trial = trial
        self.objective = objective
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], runtime: Any) -> None:
        value = row.get(self.objective)
        if value is None or not math.isfinite(value):
            return  # best_figure names a missing objective; divergence fails the trial
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            self.stop = True


def rebased(tree: Any, source: Path, target: Path) -> Any:
    """The tree with relative data paths (relative to ``source``, the space file's
    folder) rewritten relative to ``target``, where the sampled file is written."""

    def rewrite(path: str) -> str:
        if os.path.isabs(path):
            return path
        return os.path.relpath(source / path, target)

    return rewrite_data_paths(tree, rewrite)


def open_study(space: SpaceFile, options: SearchOptions, maximize: bool) -> optuna.Study:
    """Create or join the study in its database."""
    optuna = require_optuna()
    url = options.storage or f"sqlite:///{(options.out / 'study.db').resolve()}"
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}  # other processes hold the file briefly
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # nnc prints its own table
    storage = _storage(url, engine, options.stale_after)
    if options.pruner == "median":
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=options.startup_trials, n_warmup_steps=options.warmup_epochs
        )
    else:
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(
        storage=storage,
        study_name=options.study or Path(space.filename).stem,
        direction="maximize" if maximize else "minimize",
        sampler=optuna.samplers.TPESampler(seed=options.seed),
        pruner=pruner,
        load_if_exists=True,
    )


def _storage(url: str, engine: dict[str, Any], stale_after: int) -> Any:
    """Optuna's database storage, with a heartbeat (a few beats per ``stale_after``
    seconds, every ``HEARTBEAT_S`` at most). Two processes that open a new
    SQLite file at once both try to create its tables; the loser retries and finds
    them made."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=max(1, min(HEARTBEAT_S, stale_after // 3)),
                    grace_period=stale_after,
                )
        except (IntegrityError, OperationalError):
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def run_search(path: str | Path, options: SearchOptions) -> SearchResult:
    """Run (or join, or resume) the study of the space in ``path``; see the module."""
    study_engine = require_optuna()
    from nnc.dsl import parse
    from nnc.train import train
    from nnc.train.options import RunOptions
    from nnc.train.progress import QuietReporter
    from nnc.train.tracking import Tracking

    space = load_space(path)
    source = Path(path).resolve().parent
    recipes = space.program.recipes
    if options.recipe is None and len(recipes) != 1:
        raise NncError(
            f"{path} has {len(recipes)} recipes; name one with --recipe. "
            f"Received: {', '.join(recipes) or 'none'}"
        )
    name = options.recipe or next(iter(recipes))
    if name not in recipes:
        raise NncError(f"{path} has no recipe '{name}'. Received: {', '.join(recipes)}")
    recipe = recipes[name]
    if not isinstance(recipe, Recipe):
        raise NncError(f"nnc search trains supervised recipes; '{name}' is a GAN recipe")
    objective = objective_of(recipe, options.objective)
    maximize = higher_is_better(objective)
    options.out.mkdir(parents=True, exist_ok=True)
    study = open_study(space, options, maximize)

    def run_trial(trial: optuna.Trial) -> float:
        if surplus(study, trial.number, options.trials):
            # Another process took the last trial between this one's count and its ask.
            trial.set_user_attr(SURPLUS, True)
            study.stop()
            raise study_engine.TrialPruned("surplus: the study had its trials")
        started = time.perf_counter()
        folder = options.out / f"trial-{trial.number:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
            sample = space.draw(lambda p: suggest(trial, p))
            trial.set_user_attr("values", sample.values)
            text = format_file(rebased(sample.tree, source, folder.resolve()))
            (folder / TRIAL_NN).write_text(text, encoding="utf-8")
            pruning = Pruning(trial, objective)
            result = train(
                parse(text, str(folder / TRIAL_NN)),
                name,
                RunOptions(backend=options.backend, epochs=options.epochs, out=folder, base=folder),
                reporter=QuietReporter(),
                tracking=Tracking(tensorboard=options.tensorboard, callbacks=(pruning,)),
            )
            trial.set_user_attr("epochs", len(result.history))
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
            value = best_figure(result.history, objective)
        except NncError as err:
            trial.set_user_attr("error", err.message)
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
            raise
        if pruning.pruned_at is not None:
            raise study_engine.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
        return value

    def enough(study: optuna.Study, _: Any) -> None:
        if counted(study) >= options.trials:
            study.stop()

    left = options.trials - counted(study)
    if left > 0:
        study.optimize(
            run_trial,
            n_trials=left,
            n_jobs=options.jobs,
            timeout=options.timeout,
            catch=(NncError,),
            callbacks=[enough],
        )
    return summarise(study, space, source, options, objective, maximize)


def counted(study: optuna.Study) -> int:
    """The trials that count towards ``--trials``: every one started, in any process
    (a trial left running by a killed process is failed once its heartbeat stops),
    but for surplus ones."""
    return sum(1 for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS))


def surplus(study: optuna.Study, number: int, trials: int) -> bool:
    """Whether trial ``number`` came after the study had all its trials: processes
    count and then ask for a trial, so two may ask for the last one. The database
    numbers trials atomically, so the later one, and only it, sees it is one too many."""
    earlier = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number < number and not t.user_attrs.get(SURPLUS)
    ]
    return len(earlier) >= trials


def row_of(trial: optuna.trial.FrozenTrial) -> TrialRow:
    attrs = trial.user_attrs
    message = attrs.get("error", "")
    if trial.state.name == "PRUNED":
        message = f"pruned after epoch {attrs.get('epochs')}"
    elif trial.state.name == "FAIL" and not message:
        # failed by another process: its heartbeat stopped (the process was killed)
        message = f"its process {attrs.get('process', '')} stopped mid-trial".replace("  ", " ")
    return TrialRow(
        number=trial.number,
        state=trial.state.name,
        values=dict(attrs.get("values", trial.params)),
        objective=trial.value if trial.state.name == "COMPLETE" else None,
        epochs=attrs.get("epochs"),
        seconds=attrs.get("seconds"),
        message=message,
    )


def summarise(
    study: optuna.Study,
    space: SpaceFile,
    source: Path,
    options: SearchOptions,
    objective: str,
    maximize: bool,
) -> SearchResult:
    """The results table (``results.csv``), ``best.nn`` and the two figures."""
    from nnc.search.report import plot_study, write_results

    rows = [row_of(t) for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]
    complete = [r for r in rows if r.objective is not None]
    pick: Callable[..., TrialRow] = max if maximize else min
    best = pick(complete, key=lambda r: r.objective) if complete else None
    result = SearchResult(
        study=study.study_name,
        storage=options.storage or f"sqlite:///{options.out / 'study.db'}",
        objective=objective,
        maximize=maximize,
        rows=rows,
        best=best,
    )
    result.files.append(write_results(options.out / RESULTS_FILE, rows, space.space.names))
    if best is not None:
        sample = space.sample(best.values)
        best_path = options.out / BEST_FILE
        tree = rebased(sample.tree, source, options.out.resolve())
        best_path.write_text(format_file(tree), encoding="utf-8")
        result.files.append(best_path)
    plotted, problems = plot_study(study, options.out / HISTORY_PLOT, options.out / IMPORTANCE_PLOT)
    result.files += plotted
    result.warnings += problems
    return result


__all__ = [
    "SearchOptions",
    "SearchResult",
    "TrialRow",
    "best_figure",
    "objective_of",
    "run_search",
    "suggest",
]
