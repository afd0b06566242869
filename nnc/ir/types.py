"""Tensor types: a dtype and a per-sample shape whose dims may be symbolic.

The batch dimension is implicit and never appears in a shape. A dim is either an
``int`` or a ``str``: a symbol declared by the user (``t``) or a symbolic expression
derived from one by a shape rule (``t-2``, ``ceil(t/2)``). Two symbolic dims are
equal when their text is equal.

>>> TensorType(shape=(3, "h", "w"))
TensorType(dtype='float32', shape=(3, 'h', 'w'))
>>> str(TensorType(dtype="int64", shape=("t",)))
'int64[t]'
"""

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

# The largest finite float32, np.finfo(np.float32).max (written out: no numpy import).
# Every model runs in float32, so numbers, constants and weights beyond it are refused.
FLOAT32_MAX = 3.4028234663852886e38

Dim = int | str
DType = Literal["float32", "int64"]


class TensorType(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    dtype: DType = "float32"
    shape: tuple[Dim, ...]

    def __repr__(self) -> str:
        return f"TensorType(dtype={self.dtype!r}, shape={self.shape!r})"

    def __str__(self) -> str:
        dims = format_shape(self.shape)
        return dims if self.dtype == "float32" else f"{self.dtype}{dims}"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def with_shape(self, shape: tuple[Dim, ...]) -> "TensorType":
        return TensorType(dtype=self.dtype, shape=shape)


def format_shape(shape: tuple[Dim, ...]) -> str:
    """``(3, 'h', 'w')`` as ``[3, h, w]``."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def numel(shape: tuple[Dim, ...]) -> Dim:
    """The number of elements; symbolic when any dim is.

    >>> numel((16, 4, 4)), numel((16, "h", "w"))
    (256, '16*h*w')
    """
    if all(isinstance(d, int) for d in shape):
        return math.prod(int(d) for d in shape)
    static = math.prod(d for d in shape if isinstance(d, int))
    symbolic = [_wrap(d) for d in shape if isinstance(d, str)]
    parts = ([str(static)] if static != 1 else []) + symbolic
    return "*".join(parts)


def _wrap(dim: str) -> str:
    return dim if dim.isidentifier() else f"({dim})"


_OFFSET = re.compile(r"\A([A-Za-z_][A-Za-z0-9_]*)([+-]\d+)\Z")


def add_const(dim: Dim, k: int) -> Dim:
    """``dim + k``, staying symbolic where it is (``t-3`` plus 1 is ``t-2``).

    >>> add_const(10, -2), add_const("t", -2), add_const("t-3", 1), add_const("t-1", 1)
    (8, 't-2', 't-2', 't')
    """
    if isinstance(dim, int):
        return dim + k
    match = _OFFSET.match(dim)
    if match:
        dim, k = match.group(1), k + int(match.group(2))
    if k == 0:
        return dim
    return f"{dim}{k:+d}"


def mul_const(dim: Dim, k: int) -> Dim:
    if isinstance(dim, int):
        return dim * k
    return dim if k == 1 else f"{k}*{_wrap(dim)}"


def div_ceil(dim: Dim, k: int) -> Dim:
    if isinstance(dim, int):
        return -(-dim // k)
    return dim if k == 1 else f"ceil({_wrap(dim)}/{k})"


def div_floor(dim: Dim, k: int) -> Dim:
    if isinstance(dim, int):
        return dim // k
    return dim if k == 1 else f"floor({_wrap(dim)}/{k})"


def unify(
    pattern: tuple[Dim, ...], actual: tuple[Dim, ...], bindings: dict[str, Dim]
) -> str | None:
    """Match a declared shape against an actual one, binding symbols in ``bindings``.

    Returns None on success, or the reason it does not match.

    >>> b: dict[str, Dim] = {}
    >>> unify(("c", "t"), (16, 20), b), b
    (None, {'c': 16, 't': 20})
    >>> unify(("c",), (8,), b)
    'dim 0 is c=16 elsewhere but 8 here'
    """
    if len(pattern) != len(actual):
        return f"expected rank {len(pattern)}, got rank {len(actual)}"
    for i, (want, got) in enumerate(zip(pattern, actual, strict=True)):
        if isinstance(want, str) and want.isidentifier():
            bound = bindings.setdefault(want, got)
            if bound != got:
                return f"dim {i} is {want}={bound} elsewhere but {got} here"
        elif want != got:
            return f"dim {i} should be {want}, got {got}"
    return None
