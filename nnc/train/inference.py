"""Using trained weights: ``nnc eval`` (loss and metrics) and ``nnc predict``.

``--weights`` may name a weights file, a checkpoint, or a run folder (its
``weights.safetensors`` or an earlier nnc's ``weights.npz``, else its newest readable
checkpoint); files are safetensors, or the ``.npz`` of an earlier nnc. The run's standardisation
statistics and seed come along: from the checkpoint itself, or from
``standardize.npz`` and ``recipe.json`` beside the weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnc.data import CATALOG, Split, Standardizer, Task, prepare
from nnc.data.preparation import prepare_inputs, read_source, task_for
from nnc.data.standardize import FILENAME as STANDARDIZE
from nnc.errors import DataError, NncError, WeightsError
from nnc.ir.program import Model, Program
from nnc.ir.serialize import loads_json
from nnc.ir.training import Accuracy, DataFile, Dataset, Recipe, TextData
from nnc.ir.weights import (
    CHECKPOINT_WEIGHTS_PREFIX,
    check_weights,
    read_tensor_file,
    save_npz,
)
from nnc.train.checkpoint import latest_checkpoint
from nnc.train.diagnose import first_non_finite
from nnc.train.evaluate import evaluate, predict
from nnc.train.metrics import Metrics, confusion_matrix, predicted_labels
from nnc.train.run import BuildFn, build_runtime
from nnc.train.rundir import CHECKPOINTS, OLD_WEIGHTS, RECIPE_JSON, WEIGHTS, atomic_write_text


@dataclass
class Trained:
    """Weights found from ``--weights``, with what the run knew about its data."""

    weights: dict[str, np.ndarray]
    source: Path
    standardizer: Standardizer | None = None
    seed: int | None = None


def load_trained(path: str | Path, warn: Callable[[str], None]) -> Trained:
    """Weights (and statistics and seed) from a weights file, checkpoint or run folder."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"no such weights file or run folder: {path}")
    if path.is_dir():
        for name in (WEIGHTS, OLD_WEIGHTS):
            if (path / name).is_file():
                return _from_file(path / name, path)
        checkpoint = latest_checkpoint(path / CHECKPOINTS, warn)
        if checkpoint is None or checkpoint.path is None:
            raise WeightsError(f"{path} holds neither {WEIGHTS} nor a readable checkpoint")
        return _from_file(checkpoint.path, path)
    return _from_file(path, None)


def starting_weights(
    program: Program, model: str, path: str | Path, warn: Callable[[str], None]
) -> dict[str, np.ndarray]:
    """The weights a run starts from (``RunOptions.weights``: a weights file,
    checkpoint or run folder), checked against the model."""
    return check_weights(program, model, load_trained(path, warn).weights, source=str(path))


def _from_file(file: Path, run_dir: Path | None) -> Trained:
    found = read_tensor_file(file)
    arrays = found.arrays
    folders = [run_dir] if run_dir else [file.parent, file.parent.parent]
    if any(k.startswith(CHECKPOINT_WEIGHTS_PREFIX) for k in arrays):
        n = len(CHECKPOINT_WEIGHTS_PREFIX)
        weights = {k[n:]: v for k, v in arrays.items() if k.startswith(CHECKPOINT_WEIGHTS_PREFIX)}
        stats = Standardizer.from_arrays(arrays, "standardize/", source=str(file))
        recipe = found.metadata.get("recipe") if found.format == "safetensors" else None
        seed = _seed_from_document(recipe if recipe is not None else arrays.get("meta/recipe"))
    else:
        weights, stats, seed = arrays, None, None
    for folder in folders:
        if stats is None and (folder / STANDARDIZE).is_file():
            stats = Standardizer.load(folder / STANDARDIZE)
        if seed is None and (folder / RECIPE_JSON).is_file():
            seed = _seed_from_program(folder / RECIPE_JSON)
    return Trained(weights=weights, source=file, standardizer=stats, seed=seed)


def _seed_from_document(value: np.ndarray | str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(json.loads(str(value))["recipe"]["seed"])
    except (ValueError, KeyError, TypeError):
        return None


def _seed_from_program(path: Path) -> int | None:
    try:
        program = loads_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, NncError):
        return None
    recipes = [r for r in program.recipes.values() if isinstance(r, Recipe)]
    return recipes[0].seed if recipes else None


# -- eval ----------------------------------------------------------------------------


@dataclass
class EvalReport:
    figures: dict[str, float]
    samples: int
    data: str
    task: Task
    confusion: np.ndarray | None


def eval_split(
    program: Program,
    recipe: Recipe,
    which: str | None,
    standardizer: Standardizer | None,
    base: Path | None = None,
) -> tuple[Split, Task, str]:
    """The split to evaluate: ``validation`` (the default when the recipe has one),
    ``train``, ``all``, a built-in data set's name, or a CSV/NPZ path."""
    if recipe.standardize and standardizer is None:
        raise DataError(
            f"recipe '{recipe.name}' standardises its inputs, but no statistics were found "
            "beside the weights",
            hint=f"pass the run folder or a checkpoint as --weights (they keep {STANDARDIZE})",
        )
    has_validation = recipe.validation is not None and recipe.validation != 0
    if which is None:
        which = "validation" if has_validation else "train"
    if which in ("train", "validation"):
        data = prepare(program, recipe, base, standardizer)
        if which == "validation":
            if data.validation is None:
                raise DataError(f"recipe '{recipe.name}' has no validation set; use --data train")
            return data.validation, data.task, "validation set"
        return data.train, data.task, "training set"
    if which == "all":
        source: Dataset | DataFile | TextData = recipe.data
        label = "all data"
    elif which in CATALOG:
        source = Dataset(name=which)
        label = f"dataset '{which}'"
    else:
        source = DataFile(path=str(Path(which).resolve()))
        if isinstance(recipe.data, DataFile):
            source = source.model_copy(update={"label": recipe.data.label})
        label = which
    whole = recipe.model_copy(update={"data": source, "validation": None})
    data = prepare(program, whole, base, standardizer)
    return data.train, data.task, label


def evaluate_trained(
    program: Program,
    recipe: Recipe,
    trained: Trained,
    *,
    data: str | None = None,
    backend: str = "numpy",
    device: str | None = None,
    base: Path | None = None,
    build: BuildFn | None = None,
) -> EvalReport:
    """Loss and metrics of trained weights on one split; classifiers add accuracy
    (when the recipe did not ask for it) and the confusion matrix."""
    model = program.models[recipe.model]
    weights = check_weights(program, model, trained.weights, source=str(trained.source))
    split, task, label = eval_split(program, recipe, data, trained.standardizer, base)
    specs = list(recipe.metrics)
    if task.is_classifier and not any(isinstance(s, Accuracy) for s in specs):
        specs.insert(0, Accuracy())
    metrics = Metrics(specs, task, recipe.span_of("metrics"))
    runtime = build_runtime(program, model.name, backend, weights, recipe.seed, device, build)
    figures, outputs = evaluate(runtime, split, metrics, recipe.loss.summed)
    matrix = None
    if task.is_classifier and outputs is not None:
        matrix = confusion_matrix(outputs, split.y, task)
    return EvalReport(figures=figures, samples=len(split), data=label, task=task, confusion=matrix)


# -- predict -------------------------------------------------------------------------


def predict_file(
    program: Program,
    model: Model,
    recipe: Recipe | None,
    trained: Trained,
    input_path: Path,
    *,
    backend: str = "numpy",
    device: str | None = None,
    base: Path | None = None,
    build: BuildFn | None = None,
) -> tuple[np.ndarray, Task | None]:
    """The model's outputs for the samples of a CSV or NPZ file (features only; a
    column or array named by the recipe's ``label`` is left out)."""
    weights = check_weights(program, model, trained.weights, source=str(trained.source))
    label = recipe.data.label if recipe is not None and isinstance(recipe.data, DataFile) else None
    samples = read_source(DataFile(path=str(input_path), label=label), 0, None, targets=False)
    x = prepare_inputs(program, model, samples, recipe, trained.standardizer)
    seed = trained.seed if trained.seed is not None else (recipe.seed if recipe else 0)
    runtime = build_runtime(program, model.name, backend, weights, seed, device, build)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        outputs = predict(runtime, x)
    check_finite_outputs(program, model, weights, x, outputs)
    return outputs, None if recipe is None else prediction_task(recipe, model, base)


def check_finite_outputs(
    program: Program,
    model: Model,
    weights: Mapping[str, np.ndarray],
    x: np.ndarray,
    outputs: np.ndarray,
) -> None:
    """Refuse outputs that overflowed (float32 weights or inputs near 3.4e38 make inf
    rows), naming the first such sample and the first layer that went non-finite."""
    rows = np.asarray(outputs).reshape(len(outputs), -1)
    bad = ~np.isfinite(rows).all(axis=1)
    if not bad.any():
        return
    first = int(np.argmax(bad))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        finding = first_non_finite(program, model, weights, [x[first : first + 1]], training=False)
    raise DataError(
        f"the outputs of {int(bad.sum()):,} of {len(rows):,} samples are not finite (first: "
        f"sample {first + 1}): {finding}; nothing was written",
        hint="the weights or the inputs overflow float32",
    )


def prediction_task(recipe: Recipe, model: Model, base: Path | None = None) -> Task:
    """How to read predictions as classes: from the loss, or for other losses from
    whether the recipe's training targets are all 0 or 1 (XOR's are)."""
    output = model.output_types[0]
    task = task_for(recipe, output)
    if task.is_classifier or recipe.target != "labels":
        return task
    samples = read_source(recipe.data, recipe.seed, base)
    return task_for(recipe, output, samples.y)


def write_predictions(path: Path, outputs: np.ndarray, labels: np.ndarray | None) -> Path:
    """``.npz`` with ``outputs`` (and ``labels``), or ``.csv`` with one row per sample:
    ``output_0, output_1, ...`` (flattened per sample) then ``label``."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = {"outputs": outputs}
        if labels is not None:
            arrays["labels"] = labels
        return save_npz(path, arrays)
    if suffix != ".csv":
        raise DataError(f"{path}: write predictions to a .npz or .csv file")
    flat = outputs.reshape(len(outputs), -1)
    names = ["output"] if flat.shape[1] == 1 else [f"output_{i}" for i in range(flat.shape[1])]
    if labels is not None:
        names.append("label")
    lines = [",".join(names)]
    for i, row in enumerate(flat):
        cells = [f"{float(v):.9g}" for v in row]
        if labels is not None:
            cells.append(str(int(labels[i])))
        lines.append(",".join(cells))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def class_labels(outputs: np.ndarray, task: Task | None) -> np.ndarray:
    """Predicted classes per sample (per position for sequence outputs)."""
    if task is None or not task.is_classifier:
        raise DataError("--labels needs a classifier (a recipe with class targets)")
    labels = predicted_labels(outputs, task)
    per_sample = labels.size // len(outputs)
    return labels.reshape(len(outputs)) if per_sample == 1 else labels.reshape(len(outputs), -1)
