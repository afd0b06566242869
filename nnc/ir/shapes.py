"""Shape arithmetic for windowed ops: pure tuple maths, no framework.

These functions define nnc's padding and output-size semantics (see
``docs/semantics.md``). Every backend computes explicit pads from them, so no backend
relies on its framework's own notion of ``same``.

>>> same_pads(8, kernel=3, stride=2)        # TF-style: the extra pad goes at the end
(0, 1)
>>> window_output(8, kernel=3, stride=2, pads=(0, 1))
4
>>> transpose_output(4, kernel=3, stride=2, pads=(0, 0), output_padding=0)
9
"""

from __future__ import annotations

from nnc.errors import ShapeError
from nnc.ir.types import Dim, add_const, div_ceil, div_floor, mul_const


def same_pads(size: Dim, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TF/ONNX ``SAME_UPPER`` padding: ``out = ceil(in / stride)``.

    The total pad is ``max(0, (out-1)*stride + (kernel-1)*dilation + 1 - in)``; the
    begin side gets ``total // 2`` and the end side the rest.
    """
    effective = (kernel - 1) * dilation + 1
    if isinstance(size, str):
        if stride != 1:
            raise ShapeError(
                f"'same' padding with stride {stride} needs a static size. "
                f"Received: symbolic dim {size}"
            )
        total = effective - 1
    else:
        out = -(-size // stride)
        total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


def window_output(
    size: Dim, kernel: int, stride: int = 1, pads: tuple[int, int] = (0, 0), dilation: int = 1
) -> Dim:
    """Output length of a convolution or pooling window (floor mode).

    ``out = floor((in + pad_begin + pad_end - (kernel-1)*dilation - 1) / stride) + 1``
    """
    effective = (kernel - 1) * dilation + 1
    padded = add_const(size, pads[0] + pads[1] - effective)
    if isinstance(padded, int):
        if padded < 0:
            raise ShapeError(
                f"window of size {effective} does not fit input of size {size} with padding {pads}"
            )
        return padded // stride + 1
    return add_const(div_floor(padded, stride), 1)


def ceil_mode_extra(
    size: Dim, kernel: int, stride: int = 1, pads: tuple[int, int] = (0, 0), dilation: int = 1
) -> int:
    """The end padding that ``ceil_mode`` adds to a pooling window's ``pads``.

    The output size rounds up, ``ceil((in + pads - (kernel-1)*dilation - 1) / stride) + 1``,
    except that a window must start inside the input or the begin padding (torch's rule,
    and ONNX's: "sliding windows that would start in the right padded region are
    ignored"). The extra pad is what the last window then reaches past the end.

    >>> ceil_mode_extra(5, kernel=2, stride=2), ceil_mode_extra(6, kernel=2, stride=2)
    (1, 0)
    >>> ceil_mode_extra(5, kernel=3, stride=3, pads=(1, 1))  # would start in the end pad
    0
    """
    if isinstance(size, str):
        raise ShapeError(f"'ceil_mode' needs a static size. Received: symbolic dim {size}")
    effective = (kernel - 1) * dilation + 1
    padded = size + pads[0] + pads[1]
    if padded < effective:
        return 0  # window_output reports the window that does not fit
    out = -(-(padded - effective) // stride) + 1
    if (out - 1) * stride >= size + pads[0]:
        out -= 1
    return max(0, (out - 1) * stride + effective - padded)


def transpose_output(
    size: Dim,
    kernel: int,
    stride: int = 1,
    pads: tuple[int, int] = (0, 0),
    output_padding: int = 0,
    dilation: int = 1,
) -> Dim:
    """Output length of a transposed convolution.

    ``out = (in-1)*stride + (kernel-1)*dilation + 1 + output_padding - pad_begin - pad_end``
    """
    full = add_const(mul_const(add_const(size, -1), stride), (kernel - 1) * dilation + 1)
    out = add_const(full, output_padding - pads[0] - pads[1])
    if isinstance(out, int) and out <= 0:
        raise ShapeError(f"transposed convolution output would be empty (size {out})")
    return out


def transpose_same_pads(kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Crop for a ``same`` transposed convolution, whose output is ``in * stride``."""
    total = (kernel - 1) * dilation + 1 - stride
    if total < 0:
        raise ShapeError(
            f"'same' transposed convolution needs kernel >= stride. "
            f"Received: kernel={kernel}, stride={stride}"
        )
    return total // 2, total - total // 2


def ceil_div(size: Dim, k: int) -> Dim:
    return div_ceil(size, k)
