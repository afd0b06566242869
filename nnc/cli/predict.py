"""``nnc predict FILE --weights W --input X -o OUT``: run trained weights on new data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nnc.cli.options import add_backend_argument, add_device_argument
from nnc.cli.train import spec_source
from nnc.errors import DataError, RecipeError, visible

if TYPE_CHECKING:
    from nnc.ir.program import Program
    from nnc.ir.training import Recipe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="run trained weights on the samples of a file",
        description="Read the samples of a .csv (a header row, one row per sample) or .npz "
        "(array 'x') file, prepare them as in training (the data set's scaling, the run's "
        "standardisation), and write the model's outputs to a .npz ('outputs', 'labels') "
        "or .csv file.",
    )
    p.add_argument("file", metavar="FILE", help="the .nn file")
    p.add_argument(
        "--weights",
        "-w",
        required=True,
        metavar="W",
        help="weights file (.safetensors, or an older .npz), checkpoint or run folder",
    )
    p.add_argument(
        "--input", "-i", required=True, metavar="DATA", help="a .csv or .npz file of samples"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="a .npz or .csv file to write"
    )
    p.add_argument(
        "--labels", action="store_true", help="also write the predicted class of each sample"
    )
    p.add_argument("--recipe", metavar="NAME", help="the train recipe whose preprocessing to use")
    p.add_argument("--model", metavar="NAME", help="the model, for a file without a recipe")
    add_backend_argument(p)
    add_device_argument(p)
    p.set_defaults(run=run)


def _recipe(program: Program, args: argparse.Namespace) -> Recipe | None:
    from nnc.ir.training import Recipe

    """The recipe whose preprocessing applies: named, or the one training the model."""
    from nnc.train.recipes import select_recipe

    if args.recipe is not None:
        return select_recipe(program, args.recipe, args.file)
    candidates = [
        r
        for r in program.recipes.values()
        if isinstance(r, Recipe) and (args.model is None or r.model == args.model)
    ]
    if len(candidates) > 1:
        names = ", ".join(r.name for r in candidates)
        raise RecipeError(f"{args.file} has several recipes ({names}); choose one with --recipe")
    return candidates[0] if candidates else None


def run(args: argparse.Namespace) -> int:
    from nnc.dsl import load
    from nnc.train.inference import class_labels, load_trained, predict_file, write_predictions

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    with spec_source(args.file):
        program = load(args.file)
        recipe = _recipe(program, args)
        model = program.model(args.model or (recipe.model if recipe else None))
        output = Path(args.output)
        if output.suffix.lower() not in (".npz", ".csv"):
            raise DataError(f"{output}: write predictions to a .npz or .csv file")
        trained = load_trained(args.weights, warn)
        outputs, task = predict_file(
            program,
            model,
            recipe,
            trained,
            Path(args.input),
            backend=args.backend,
            device=args.device,
            base=Path(args.file).resolve().parent,
        )
        labels = class_labels(outputs, task) if args.labels else None
        write_predictions(output, outputs, labels)
        print(f"wrote {len(outputs):,} predictions to {visible(str(output))}", file=sys.stderr)
        return 0
