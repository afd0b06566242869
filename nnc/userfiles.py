"""Opening files a user names (specs, weights, checkpoints, ONNX models, data).

Each reader goes through :func:`open_regular`, which refuses anything but a regular
file before reading it: a named pipe would block forever waiting for a writer, and a
device such as ``/dev/zero`` never ends. The file is opened without blocking and
checked with ``fstat`` on the open descriptor, so a path swapped after a check is
still caught, and :func:`read_regular` reads at most a given number of bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from nnc.errors import NncError


def open_regular(
    path: str | Path, error: type[NncError] = NncError, missing: str = "no such file"
) -> BinaryIO:
    """``path`` opened for reading in binary, or ``error`` when it is missing, cannot
    be read, or is not a regular file (a folder, a named pipe, a device, a socket)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{missing}: {p}") from None
    except OSError as exc:
        raise error(f"cannot read {p}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"cannot read {p}: it is {_kind(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def read_regular(path: str | Path, limit: int, error: type[NncError] = NncError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, else ``error``."""
    with open_regular(path, error) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path} is larger than the {limit}-byte limit for this kind of file")
    return data


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
