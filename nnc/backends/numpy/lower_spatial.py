"""Lowerings of convolutions and pooling.

1-D and 2-D ops run on [N, C, H, W] arrays through the kernels of ``kernels/conv.py``
and ``kernels/pool.py``; a 1-D op views its [N, C, L] input as [N, C, 1, L] (a unit
height, kernel 1 and stride 1 along it) and drops the unit axis again afterwards.
The 3-D ops and dilated pooling run on the N-d kernels of ``kernels/windows.py``.
Padding is resolved here, at compile time, by the IR's own shape rules
(``same`` = TF/ONNX SAME_UPPER), and passed to the kernels as explicit numbers.
"""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import Lowering, NodeContext, wrap_call
from nnc.ir.ops.conv import Conv2dTranspose, _Conv
from nnc.ir.ops.pooling import SumPool, _Pool

Pads = tuple[tuple[int, int], ...]
NO_PADDING = "((0, 0), (0, 0))"


def _is_1d(c: NodeContext) -> bool:
    return c.in_types[0].rank == 2


def _as_2d(c: NodeContext) -> str:
    """The input as [N, C, H, W]: a unit-height view for 1-D ops (kept in the cache)."""
    if not _is_1d(c):
        return c.x()
    view = c.temp("input")
    if c.phase == "forward":
        c.line(f"{view} = {c.x()}[:, :, None]  # [N, C, L] as [N, C, 1, L]")
    return view


def _geometry(
    c: NodeContext, kernel: tuple[int, ...], stride: tuple[int, ...], pads: Pads
) -> dict[str, str]:
    """Stride and padding (and kernel size) as [H, W] literals, 1-D ops getting a unit height."""
    if _is_1d(c):
        kernel, stride, pads = (1, *kernel), (1, *stride), ((0, 0), *pads)
    return {"size": py_literal(kernel), "stride": py_literal(stride), "padding": py_literal(pads)}


def _input_need(c: NodeContext) -> str:
    """Whether a kernel must compute the input gradient: ``True``, ``False`` or the
    ``input_gradients`` flag."""
    need = c.walk.values[c.node.inputs[0]].need
    if need == "yes" or (need == "inputs" and c.guarded):
        return "True"
    return "input_gradients" if need == "inputs" else "False"


def _squeeze(c: NodeContext, name: str) -> str:
    return f"{name}[:, :, 0]" if _is_1d(c) else name


# -- convolutions ------------------------------------------------------------------------


def _conv_node(c: NodeContext) -> _Conv:
    assert isinstance(c.node, _Conv)
    return c.node


def _conv_args(c: NodeContext) -> list[str]:
    """The keyword arguments that differ from the kernels' defaults (stride 1, no
    padding, no dilation, one group)."""
    node = _conv_node(c)
    geometry = _geometry(c, node.kernel, node.stride, node.pads(c.in_types[0].shape[1:]))
    dilation = (1, *node.dilation) if _is_1d(c) else node.dilation
    args = {
        "stride": (geometry["stride"], "(1, 1)"),
        "padding": (geometry["padding"], NO_PADDING),
        "dilation": (py_literal(dilation), "(1, 1)"),
        "groups": (str(node.groups), "1"),
    }
    return [f"{key}={value}" for key, (value, default) in args.items() if value != default]


def _conv_weight(c: NodeContext) -> str:
    return c.param("weight") + ("[:, :, None]" if _is_1d(c) else "")


def _conv_forward(c: NodeContext) -> None:
    if _is_1d(c):
        c.line("# a conv2d over a unit height")
    bias = c.param("bias") if c.has_param("bias") else "None"
    args = [_as_2d(c), _conv_weight(c), bias, *_conv_args(c)]
    c.call(f"{c.y}, {c.temp('cols')}", c.kernel("conv2d_forward"), args)
    if _is_1d(c):
        c.line(f"{c.y} = {c.y}[:, :, 0]")


def _conv_backward(c: NodeContext) -> None:
    dy = f"{c.dy}[:, :, None]" if _is_1d(c) else c.dy
    need_input = _input_need(c)
    d_weight = c.local("d_weight") if _is_1d(c) and c.trains("weight") else c.grad_target("weight")
    if need_input == "False":
        d_input = "_"
    else:
        d_input = c.local("d_input") if _is_1d(c) else c.input_gradient_name(0)
    if c.trains("weight") or need_input != "False":
        args = [dy, c.temp("cols"), f"{_as_2d(c)}.shape", _conv_weight(c), *_conv_args(c)]
        args.append(f"need_input={need_input}")
        c.call(f"{d_weight}, {d_input}", c.kernel("conv2d_backward"), args)
    if _is_1d(c):
        c.grad_param("weight", f"{d_weight}[:, :, 0]")
    spatial = "(0, 2)" if _is_1d(c) else "(0, 2, 3)"
    c.grad_param("bias", f"{c.dy}.sum(axis={spatial})")
    if need_input != "False":
        c.grad_input(0, _squeeze(c, d_input))


def _transpose_node(c: NodeContext) -> Conv2dTranspose:
    assert isinstance(c.node, Conv2dTranspose)
    return c.node


def _transpose_args(c: NodeContext) -> list[str]:
    node = _transpose_node(c)
    args = {
        "stride": (py_literal(node.stride), "(1, 1)"),
        "crop": (py_literal(node.pads()), NO_PADDING),
        "output_padding": (py_literal(node.output_padding), "(0, 0)"),
    }
    return [f"{key}={value}" for key, (value, default) in args.items() if value != default]


def _transpose_forward(c: NodeContext) -> None:
    bias = c.param("bias") if c.has_param("bias") else "None"
    args = [c.x(), c.param("weight"), bias, *_transpose_args(c)]
    c.call(f"{c.y}, {c.temp('rows')}", c.kernel("conv2d_transpose_forward"), args)


def _transpose_backward(c: NodeContext) -> None:
    d_input = c.input_gradient_name(0) if c.needs(0) else "_"
    args = [c.dy, c.temp("rows"), f"{c.x()}.shape", c.param("weight"), *_transpose_args(c)]
    c.call(f"{c.grad_target('weight')}, {d_input}", c.kernel("conv2d_transpose_backward"), args)
    c.grad_param("bias", f"{c.dy}.sum(axis=(0, 2, 3))")
    if c.needs(0):
        c.grad_input(0, d_input)


def _conv_nd_args(c: NodeContext) -> list[str]:
    node = _conv_node(c)
    pads = node.pads(c.in_types[0].shape[1:])
    args = {
        "stride": (node.stride, (1,) * node.rank),
        "padding": (pads, ((0, 0),) * node.rank),
        "dilation": (node.dilation, (1,) * node.rank),
        "groups": (node.groups, 1),
    }
    return [
        f"{key}={py_literal(value)}" for key, (value, default) in args.items() if value != default
    ]


def _conv_nd_forward(c: NodeContext) -> None:
    bias = c.param("bias") if c.has_param("bias") else "None"
    args = [c.x(), c.param("weight"), bias, *_conv_nd_args(c)]
    c.call(f"{c.y}, {c.temp('cols')}", c.kernel("conv_nd_forward"), args)


def _conv_nd_backward(c: NodeContext) -> None:
    need_input = _input_need(c)
    d_input = "_" if need_input == "False" else c.input_gradient_name(0)
    if c.trains("weight") or need_input != "False":
        args = [c.dy, c.temp("cols"), f"{c.x()}.shape", c.param("weight"), *_conv_nd_args(c)]
        args.append(f"need_input={need_input}")
        c.call(f"{c.grad_target('weight')}, {d_input}", c.kernel("conv_nd_backward"), args)
    spatial = tuple(range(2, c.in_types[0].rank + 1))
    c.grad_param("bias", f"{c.dy}.sum(axis={py_literal((0, *spatial))})")
    if need_input != "False":
        c.grad_input(0, d_input)


# -- pooling -----------------------------------------------------------------------------


def _pool_node(c: NodeContext) -> _Pool:
    assert isinstance(c.node, _Pool)
    return c.node


def _pool_args(c: NodeContext) -> list[str]:
    window = _pool_node(c).window(c.in_types[0])
    geometry = _geometry(c, window.kernel, window.stride, window.pads)
    return [
        f"size={geometry['size']}",
        f"stride={geometry['stride']}",
        f"padding={geometry['padding']}",
    ]


def _is_nd(c: NodeContext) -> bool:
    """Whether a pooling op runs on the N-d kernels: 3-D pooling and dilated pooling."""
    return c.in_types[0].rank == 4 or bool(_pool_node(c).window(c.in_types[0]).dilation)


def _pool_nd_args(c: NodeContext) -> list[str]:
    w = _pool_node(c).window(c.in_types[0])
    geometry = {"size": w.kernel, "stride": w.stride, "padding": w.pads, "dilation": w.dilations}
    return [f"{key}={py_literal(value)}" for key, value in geometry.items()]


def _maxpool_nd_forward(c: NodeContext) -> None:
    args = [c.x(), *_pool_nd_args(c)]
    c.call(f"{c.y}, {c.temp('argmax')}", c.kernel("maxpool_nd_forward"), args)


def _maxpool_nd_backward(c: NodeContext) -> None:
    d_input = c.input_gradient_name(0)
    args = [c.dy, c.temp("argmax"), f"{c.x()}.shape", *_pool_nd_args(c)]
    setup = _call_lines(d_input, c.kernel("maxpool_nd_backward"), args)
    c.grad_input(0, d_input, setup=setup)


def _sumpool_nd_forward(c: NodeContext) -> None:
    x, args = c.x(), _pool_nd_args(c)
    if isinstance(c.node, SumPool):
        c.call(c.y, c.kernel("window_sum_nd"), [x, *args])
        return
    c.line("# the mean over the real elements: padding is not counted")
    counts = [f"{x}.shape[2:]", *args, f"dtype={x}.dtype"]
    c.call(c.temp("counts"), c.kernel("window_counts_nd"), counts)
    c.call(c.y, c.kernel("window_sum_nd"), [x, *args])
    c.line(f"{c.y} = {c.y} / {c.temp('counts')}")


def _sumpool_nd_backward(c: NodeContext) -> None:
    dy = c.dy if isinstance(c.node, SumPool) else f"{c.dy} / {c.temp('counts')}"
    d_input = c.input_gradient_name(0)
    args = [dy, f"{c.x()}.shape", *_pool_nd_args(c)]
    setup = _call_lines(d_input, c.kernel("window_sum_nd_backward"), args)
    c.grad_input(0, d_input, setup=setup)


def _maxpool_forward(c: NodeContext) -> None:
    if _is_nd(c):
        _maxpool_nd_forward(c)
        return
    c.call(f"{c.y}, {c.temp('argmax')}", c.kernel("maxpool_forward"), [_as_2d(c), *_pool_args(c)])
    if _is_1d(c):
        c.line(f"{c.y} = {c.y}[:, :, 0]")


def _maxpool_backward(c: NodeContext) -> None:
    if _is_nd(c):
        _maxpool_nd_backward(c)
        return
    dy = f"{c.dy}[:, :, None]" if _is_1d(c) else c.dy
    d_input = c.local("d_input") if _is_1d(c) else c.input_gradient_name(0)
    args = [dy, c.temp("argmax"), f"{_as_2d(c)}.shape", *_pool_args(c)]
    c.grad_input(
        0, _squeeze(c, d_input), setup=_call_lines(d_input, c.kernel("maxpool_backward"), args)
    )


def _padded(c: NodeContext) -> bool:
    return any(p != (0, 0) for p in _pool_node(c).window(c.in_types[0]).pads)


def _divisor(c: NodeContext) -> str:
    """What avgpool divides by: the window size, or (with padding) the count of real
    elements in each window."""
    if _padded(c):
        return c.temp("counts")
    return str(_window_size(c))


def _window_size(c: NodeContext) -> int:
    size = 1
    for k in _pool_node(c).window(c.in_types[0]).kernel:
        size *= k
    return size


def _sumpool_forward(c: NodeContext) -> None:
    if _is_nd(c):
        _sumpool_nd_forward(c)
        return
    x, args = _as_2d(c), _pool_args(c)
    summed = f"{c.kernel('window_sum')}({x}, {', '.join(args)})"
    if isinstance(c.node, SumPool):
        c.call(c.y, c.kernel("window_sum"), [x, *args])
    else:
        if _padded(c):
            c.line("# the mean over the real elements: padding is not counted")
            counts_args = [f"{x}.shape[2:]", *args, f"dtype={x}.dtype"]
            c.call(_divisor(c), c.kernel("window_counts"), counts_args)
        c.line(f"{c.y} = {summed} / {_divisor(c)}")
    if _is_1d(c):
        c.line(f"{c.y} = {c.y}[:, :, 0]")


def _sumpool_backward(c: NodeContext) -> None:
    if _is_nd(c):
        _sumpool_nd_backward(c)
        return
    dy = f"{c.dy}[:, :, None]" if _is_1d(c) else c.dy
    if not isinstance(c.node, SumPool):
        dy = f"{dy} / {_divisor(c)}"
    d_input = c.local("d_input") if _is_1d(c) else c.input_gradient_name(0)
    args = [dy, f"{_as_2d(c)}.shape", *_pool_args(c)]
    setup = _call_lines(d_input, c.kernel("window_sum_backward"), args)
    c.grad_input(0, _squeeze(c, d_input), setup=setup)


def _call_lines(target: str, function: str, args: list[str]) -> list[str]:
    """``target = function(args)`` as setup lines for a gradient contribution (which
    may be indented under a guard: so, a narrower line)."""
    return wrap_call(target, function, args, 80)


def _global_pool_forward(c: NodeContext) -> None:
    axes = {2: "2", 3: "(2, 3)", 4: "(2, 3, 4)"}[c.in_types[0].rank]
    c.line(f"{c.y} = {c.x()}.mean(axis={axes})")


def _global_pool_backward(c: NodeContext) -> None:
    x = c.x()
    if _is_1d(c):
        spread, count = f"{c.dy}[:, :, None]", f"{x}.shape[2]"
    elif c.in_types[0].rank == 3:
        spread, count = f"{c.dy}[:, :, None, None]", f"({x}.shape[2] * {x}.shape[3])"
    else:
        spread, count = f"{c.dy}[:, :, None, None, None]", f"np.prod({x}.shape[2:])"
    c.grad_input(0, f"np.broadcast_to({spread}, {x}.shape) / {count}")


LOWERINGS: dict[str, Lowering] = {
    "conv1d": Lowering(_conv_forward, _conv_backward),
    "conv2d": Lowering(_conv_forward, _conv_backward),
    "conv3d": Lowering(_conv_nd_forward, _conv_nd_backward),
    "conv2d_transpose": Lowering(_transpose_forward, _transpose_backward),
    "maxpool": Lowering(_maxpool_forward, _maxpool_backward),
    "avgpool": Lowering(_sumpool_forward, _sumpool_backward),
    "sumpool": Lowering(_sumpool_forward, _sumpool_backward),
    "global_avg_pool": Lowering(_global_pool_forward, _global_pool_backward),
    "maxpool3d": Lowering(_maxpool_forward, _maxpool_backward),
    "avgpool3d": Lowering(_sumpool_forward, _sumpool_backward),
}
