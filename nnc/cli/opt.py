"""``nnc opt FILE --pass NAME[:OPTIONS] ... [-o OUT.nn] [--weights IN --weights-out OUT]``:
rewrite a network with the standard passes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nnc.errors import ArgumentError, visible


def _epilog() -> str:
    from nnc.passes import describe

    return (
        "passes (options as NAME:key=value,key=value; lists as [a, b]):\n"
        + describe()
        + "\n\nexample:\n  nnc opt examples/resnet_block.nn --pass fold-batchnorm "
        "--pass 'replace-activation:old=relu,new=gelu' -o resnet_gelu.nn"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``nnc opt`` to the command's subparsers."""
    p = sub.add_parser(
        "opt",
        help="rewrite a network with passes (fold batchnorm, strip dropout, ...)",
        description="Run passes over a checked program, in the order given, checking the "
        "program after each one, and write the result as .nn text. With --weights, the "
        "canonical weights are rewritten along (folded, renamed, ...) and written to "
        "--weights-out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.late_epilog = _epilog
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--pass",
        "-p",
        dest="passes",
        action="append",
        metavar="NAME[:OPTIONS]",
        required=True,
        help="a pass to run (repeat for several, run in order)",
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        help="model to rewrite, whose weights are given (default: all "
        "models; the weights are those of the trained model)",
    )
    p.add_argument(
        "-o", "--output", metavar="OUT.nn", help="write the result here (default: stdout)"
    )
    p.add_argument(
        "--weights",
        metavar="IN",
        help="canonical weights: a weights file (.safetensors, or an older .npz), a "
        "checkpoint or a run folder",
    )
    p.add_argument(
        "--weights-out", metavar="OUT", help="write the rewritten weights (.safetensors)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="do not report what each pass did")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load, run the passes, write the program (and weights), report."""
    from nnc.dsl import format_program, load
    from nnc.passes import run as run_passes

    if bool(args.weights) != bool(args.weights_out):
        raise ArgumentError(
            "--weights and --weights-out go together: the passes rewrite the weights, "
            "which must be written somewhere"
        )
    if args.weights_out:
        from nnc.ir.weights import weights_output

        weights_output(args.weights_out)  # refused before anything is done
    program = load(args.file)
    passes = [parse_pass(text) for text in args.passes]
    weights = None
    if args.weights:
        from nnc.train.inference import load_trained

        # The resolver eval, predict and export use: a weights file, a checkpoint or a
        # run folder (its weights.safetensors or .npz, else its newest readable checkpoint).
        weights = dict(load_trained(args.weights, _warn).weights)
    result = run_passes(program, passes, weights=weights, model=args.model)
    text = format_program(result.program)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.weights_out and result.weights is not None:
        from nnc._version import __version__
        from nnc.ir.weights import save_weights_file

        save_weights_file(args.weights_out, result.weights, {"nnc_version": __version__})
    if not args.quiet:
        _report(result.log, [p.name for p in passes], args)
    return 0


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _report(log: list[Any], names: list[str], args: argparse.Namespace) -> None:
    for name in dict.fromkeys(names):
        applied = sum(1 for e in log if e.applied and e.source == name)
        print(visible(f"{name}: applied at {applied} place(s)"), file=sys.stderr)
    for entry in log:
        if not entry.applied:
            print(f"  {visible(str(entry))}", file=sys.stderr)
    for path in (args.output, args.weights_out):
        if path:
            print(f"wrote {visible(str(path))}", file=sys.stderr)


def parse_pass(text: str) -> Any:
    """``NAME`` or ``NAME:key=value,...`` as a :class:`nnc.passes.Pass`.

    >>> parse_pass("set-input-shape:shape=[1, 16, 16]")
    Pass(name='set-input-shape', options={'shape': [1, 16, 16]})
    >>> parse_pass("rename:dense_1=hidden,Mlp=Iris").options
    {'names': {'dense_1': 'hidden', 'Mlp': 'Iris'}}
    """
    from nnc.passes import REGISTRY, get

    name, _, rest = text.partition(":")
    name = name.strip()
    if name not in REGISTRY:
        get(name)  # the unknown-pass error, with its hint
    kinds = REGISTRY[name].options
    mapping = next((k for k, kind in kinds.items() if kind == "mapping"), None)
    options: dict[str, Any] = {}
    for item in _split(rest) if rest.strip() else []:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise ArgumentError(f"pass '{name}': options are key=value. Received: {item!r}")
        if mapping is not None:  # every pair is one entry: rename:dense_1=hidden,Mlp=Iris
            options.setdefault(mapping, {})[key] = value
            continue
        kind = kinds.get(key, kinds.get("*", ""))
        if not kind:
            get(name, **{key: value})  # the unknown-option error, with its hint
        options[key] = _value(value, kind, f"pass '{name}': option '{key}'")
    return get(name, **options)


def _split(text: str) -> list[str]:
    """Split on the commas that are not inside brackets or parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def _value(text: str, kind: str, where: str) -> Any:
    if kind in ("names", "shape"):
        items = (
            [i.strip() for i in _split(text[1:-1])]
            if text.startswith("[") and text.endswith("]")
            else [text]
        )
        if kind == "names":
            return items
        return [int(i) if i.lstrip("-").isdigit() else i for i in items]
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ArgumentError(f"{where} expects an integer. Received: {text}") from None
    if kind == "attrs":
        return _scalar(text)
    return text


def _scalar(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


__all__ = ["parse_pass", "register", "run"]
