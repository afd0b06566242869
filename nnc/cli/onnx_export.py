"""``nnc export FILE [--model NAME] [--weights W] [--opset N] -o model.onnx``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from nnc.errors import NncError, visible


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model with its weights as an ONNX file",
        description="Export a checked model to ONNX (opset 17 by default) with canonical "
        "weights: the initial weights drawn from the recipe's seed, or those of --weights "
        "(a weights file, .safetensors or an older .npz, a training checkpoint or a run "
        "folder). The graph takes raw samples, as `nnc predict` does: it applies the "
        "recipe's scale and upscale of a built-in data set and the run's input "
        "standardisation (the export says which). "
        "With --no-preprocess, and without --weights and --opset, the file is "
        "byte-identical to `nnc compile FILE --backend onnx`, the bare model.",
    )
    p.add_argument("file", metavar="FILE", help=".nn spec")
    p.add_argument("--model", metavar="NAME", help="model to export (default: the trained one)")
    p.add_argument("--weights", "-w", metavar="W", help="weights, checkpoint or run folder")
    p.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset (default 17)")
    p.add_argument(
        "--no-preprocess",
        "--no-standardize",
        dest="no_preprocess",
        action="store_true",
        help="leave the run's preprocessing out: the graph takes the model's inputs as the "
        "model sees them (scaled, upscaled and standardised by the caller)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the .onnx file to write")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.backends.codegen import select
    from nnc.backends.onnx import DEFAULT_OPSET, emit, resolve_weights
    from nnc.backends.onnx.preprocessing import preprocessing
    from nnc.dsl import load
    from nnc.train.inference import load_trained

    program = load(args.file)
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    origin = f"weights from {args.weights}" if args.weights else "initial weights from the seed"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _ = select(program, args.model)
        weights = (
            load_trained(args.weights, lambda message: warnings.warn(message, stacklevel=2))
            if args.weights
            else None
        )
        pre = preprocessing(program, model, resolve_weights(program, model, weights).standardize)
        inputs = ""
        if not pre.empty:
            inputs = (
                f"\nthe graph takes the model's inputs; the caller owes the preprocessing: "
                f"{pre.describe()}"
                if args.no_preprocess
                else f"\nthe graph takes raw samples and applies the run's preprocessing: "
                f"{pre.describe()}"
            )
        data = emit(
            program,
            args.model,
            source=args.file,
            weights=weights,
            opset=opset,
            preprocess=not args.no_preprocess,
        )
    for warning in {str(w.message) for w in caught}:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_bytes(data)
    except OSError as exc:
        raise NncError(f"cannot write {args.output}: {exc.strerror}") from None
    print(
        f"wrote {visible(args.output)} (opset {opset}, {origin}, {len(data):,} bytes){inputs}",
        file=sys.stderr,
    )
    return 0
