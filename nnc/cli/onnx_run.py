"""``nnc run model.onnx --input data.npz [-o out.npz]``: run an ONNX model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nnc.errors import DataError, NncError, visible


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run an ONNX model in onnxruntime on arrays from an .npz file",
        description="Run an .onnx file (exported by nnc or not) in onnxruntime. Arrays in "
        "--input are matched to graph inputs by name; a one-input graph also takes the "
        "array named x, or the only array. Outputs are printed, or saved with -o.",
    )
    p.add_argument("model", metavar="MODEL", help=".onnx file")
    p.add_argument(
        "--input", "-i", required=True, metavar="FILE", help="input arrays (.npz, or one .npy)"
    )
    p.add_argument("-o", "--output", metavar="OUT", help="save the outputs to this .npz")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nnc.backends.onnx import _require
    from nnc.ir.weights import save_npz

    _require("onnx")
    _require("onnxruntime")
    from nnc.backends.onnx.reader import check_model, check_structure, read_model
    from nnc.backends.onnx.runtime import match_inputs, open_session, run_session

    # onnxruntime is handed only a model that parses and passes the same structural
    # checks as nnc import (no external data files, no cycles, no absurd dims...).
    model, source = read_model(args.model)
    check_structure(model, source)
    check_model(model, source)
    session = open_session(model.SerializeToString())
    arrays = _read_arrays(Path(args.input))
    feeds = match_inputs(session.get_inputs(), arrays, args.input)
    outputs = run_session(session, feeds)
    names = [o.name for o in session.get_outputs()]
    if args.output:
        save_npz(args.output, dict(zip(names, outputs, strict=True)))
        print(visible(f"wrote {args.output} ({', '.join(names)})"), file=sys.stderr)
        return 0
    with np.printoptions(precision=6, suppress=True, threshold=200):
        for name, value in zip(names, outputs, strict=True):
            print(f"{name}: {value.dtype}{list(value.shape)}")
            print(value)
    return 0


def _read_arrays(path: Path) -> dict[str, Any]:
    import numpy as np

    from nnc.ir.weights import load_npz
    from nnc.userfiles import open_regular

    if path.suffix == ".npy":
        try:
            with open_regular(path, DataError, "no such input file") as f:
                return {"x": np.load(f, allow_pickle=False)}
        except FileNotFoundError:
            raise DataError(f"no such input file: {path}") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is not a readable .npy array ({exc})") from None
    try:
        return load_npz(path)
    except NncError as err:
        raise DataError(err.message.replace("weights file", "input file")) from None
