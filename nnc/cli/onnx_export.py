"""``nnc export FILE [--model NAME] [--weights FILE] [--opset N] -o model.onnx``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnc.errors import NncError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model with its weights as an ONNX file",
        description="Export a checked model to ONNX (opset 17 by default) with canonical "
        "weights: the initial weights drawn from the recipe's seed, or those of --weights "
        "(a weights .npz or a training checkpoint). Without --weights and --opset the file "
        "is byte-identical to `nnc compile FILE --backend onnx`.",
    )
    p.add_argument("file", metavar="FILE", help=".nn spec")
    p.add_argument("--model", metavar="NAME", help="model to export (default: the trained one)")
    p.add_argument("--weights", metavar="FILE", help="weights .npz or training checkpoint")
    p.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset (default 17)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the .onnx file to write")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnc.backends.onnx import DEFAULT_OPSET, emit
    from nnc.dsl import load

    program = load(args.file)
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    data = emit(program, args.model, source=args.file, weights=args.weights, opset=opset)
    try:
        Path(args.output).write_bytes(data)
    except OSError as exc:
        raise NncError(f"cannot write {args.output}: {exc.strerror}") from None
    origin = f"weights from {args.weights}" if args.weights else "initial weights from the seed"
    print(f"wrote {args.output} (opset {opset}, {origin}, {len(data):,} bytes)", file=sys.stderr)
    return 0
