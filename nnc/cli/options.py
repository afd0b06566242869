"""Command-line options that several commands share, parsed in one place."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from nnc.backends.registry import BACKENDS, backends, parse_backend
from nnc.errors import BackendError


def whole_number(minimum: int, too_small: str = "") -> Callable[[str], int]:
    """An argparse ``type`` that reads a whole number of at least ``minimum``;
    ``too_small`` says what is expected when it is less (default: at least N)."""
    expected = too_small or f"expected a number of at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number. Received: {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{expected}. Received: {value}")
        return value

    return parse


def backend_type(trains: bool = False) -> Callable[[str], str]:
    """An argparse ``type`` that reads a backend name or alias (``pytorch``, ``tf``)
    into its canonical name, refusing unknown names (with a did-you-mean) and, for
    ``trains``, backends that cannot train."""

    def parse(text: str) -> str:
        try:
            spec = parse_backend(text)
            if trains:
                spec.require_training()
        except BackendError as err:
            message = err.message + (f"; {err.hint}" if err.hint else "")
            raise argparse.ArgumentTypeError(message) from None
        return spec.name

    return parse


def add_backend_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    trains: bool = False,
    what: str = "runs the model",
) -> None:
    """``--backend/-b B``, default numpy, for every backend (or every training one)."""
    names = [b.name for b in backends(trains=True)] if trains else list(BACKENDS)
    aliases = ", ".join(
        f"{alias} = {spec.name}" for spec in BACKENDS.values() for alias in spec.aliases
    )
    parser.add_argument(
        "--backend",
        "-b",
        default="numpy",
        type=backend_type(trains),
        metavar="B",
        help=f"the backend that {what}: {', '.join(names)} ({aliases}; default: numpy)",
    )


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device``, the devices some backend can use."""
    devices = sorted({d for b in BACKENDS.values() for d in b.devices})
    placed = [b.name for b in BACKENDS.values() if len(b.devices) > 1]
    parser.add_argument(
        "--device",
        choices=devices,
        help=f"where the model runs ({', '.join(placed)}; the others run on the cpu only)",
    )


def add_precision_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--precision``, how the forward passes compute (docs/training.md#precision)."""
    precisions = sorted({p for b in BACKENDS.values() for p in b.precisions})
    mixed = [b.name for b in BACKENDS.values() if len(b.precisions) > 1]
    parser.add_argument(
        "--precision",
        choices=precisions,
        default="float32",
        help=f"float32 (default), or mixed: autocast, float16 with loss scaling on cuda, "
        f"bfloat16 on the cpu ({', '.join(mixed)})",
    )
