"""``nnc predict FILE --weights W --input X -o OUT``: run trained weights on new data;
``nnc predict FILE --weights W --generate N``: sample text from a language model."""

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
        "or .csv file. With --generate N, sample N characters from a causal language model "
        "trained on data text(...) instead (no --input): printed after the prompt, or "
        "written to a .txt file with -o.",
    )
    p.add_argument("file", metavar="FILE", help="the .nn file")
    p.add_argument(
        "--weights",
        "-w",
        required=True,
        metavar="W",
        help="weights file (.safetensors, or an older .npz), checkpoint or run folder",
    )
    p.add_argument("--input", "-i", metavar="DATA", help="a .csv or .npz file of samples")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="a .npz or .csv file to write (with --generate: a .txt file; default: print)",
    )
    p.add_argument(
        "--labels", action="store_true", help="also write the predicted class of each sample"
    )
    p.add_argument("--recipe", metavar="NAME", help="the train recipe whose preprocessing to use")
    p.add_argument("--model", metavar="NAME", help="the model, for a file without a recipe")
    g = p.add_argument_group("text generation (a language model trained on data text(...))")
    g.add_argument(
        "--generate", type=_count, metavar="N", help="sample N characters after the prompt"
    )
    g.add_argument(
        "--prompt",
        metavar="TEXT",
        help="the text to continue (default: a newline, where the vocabulary has one)",
    )
    g.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        metavar="T",
        help="divide the logits by T before sampling; 0 takes the most likely (default: 1)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="the seed of NumPy's uniforms; the same on every backend (default: 0)",
    )
    add_backend_argument(p)
    add_device_argument(p)
    p.set_defaults(run=run, parser=p)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more characters, received {value}")
    return value


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

    if args.generate is not None:
        return _generate(args)
    if args.input is None or args.output is None:
        args.parser.error("--input and -o/--output are required (or --generate N)")
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


def _generate(args: argparse.Namespace) -> int:
    from nnc.dsl import load
    from nnc.train.generate import generate_trained
    from nnc.train.inference import load_trained
    from nnc.train.rundir import atomic_write_text

    if args.input is not None:
        args.parser.error("--generate samples from the model alone; it takes no --input")
    if args.temperature < 0:
        args.parser.error(f"--temperature must be 0 or more, received {args.temperature:g}")
    output = Path(args.output) if args.output is not None else None
    if output is not None and output.suffix.lower() != ".txt":
        raise DataError(f"{output}: --generate writes a .txt file")

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    with spec_source(args.file):
        program = load(args.file)
        recipe = _recipe(program, args)
        if recipe is None:
            raise RecipeError(f"{args.file} has no train recipe; --generate needs its text data")
        trained = load_trained(args.weights, warn)
        prompt, text = generate_trained(
            program,
            recipe,
            trained.weights,
            args.generate,
            prompt=args.prompt,
            temperature=args.temperature,
            seed=args.seed,
            backend=args.backend,
            device=args.device,
            base=Path(args.file).resolve().parent,
        )
        if output is None:
            shown = visible(prompt + text, keep="\n\t")  # a hostile text's escapes stay inert
            sys.stdout.write(shown + ("" if shown.endswith("\n") else "\n"))
        else:
            atomic_write_text(output, prompt + text)
            print(f"wrote {len(text):,} characters to {visible(str(output))}", file=sys.stderr)
        return 0
