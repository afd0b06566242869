"""Lowerings of the normalization and recurrent layers (kernels in ``kernels/norm.py``
and ``kernels/recurrent.py``)."""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import Lowering, NodeContext
from nnc.ir.ops.normalization import BatchNorm, LayerNorm, LocalResponseNorm, _GroupedNorm
from nnc.ir.ops.recurrent import _Recurrent


def _input_gradient(c: NodeContext) -> str:
    """A local for a kernel's input gradient, or ``_`` when no input gradient is needed."""
    return c.input_gradient_name(0) if c.needs(0) else "_"


def _finish(c: NodeContext, d_input: str) -> None:
    if d_input != "_":
        c.grad_input(0, d_input)


# -- normalization ---------------------------------------------------------------------


def _batchnorm_forward(c: NodeContext) -> None:
    assert isinstance(c.node, BatchNorm)
    saved = c.temp("saved")
    c.line("# training: batch statistics; evaluation: the running statistics")
    params = [c.param(p) for p in ("weight", "bias", "running_mean", "running_var")]
    args = [c.x(), *params, f"eps={py_literal(c.node.eps)}", "training=training"]
    c.call(f"{c.y}, {saved}", c.kernel("batchnorm_forward"), args)
    c.keep(saved)
    c.walk.statistics.append((c.node.name, saved, c.node.momentum))


def _batchnorm_backward(c: NodeContext) -> None:
    d_input = _input_gradient(c)
    targets = f"{d_input}, {c.grad_target('weight')}, {c.grad_target('bias')}"
    args = [c.dy, c.temp("saved"), c.param("weight"), c.training_flag()]
    c.call(targets, c.kernel("batchnorm_backward"), args)
    _finish(c, d_input)


def _layernorm_forward(c: NodeContext) -> None:
    assert isinstance(c.node, LayerNorm)
    shift = c.param("bias") if c.node.bias else "0.0"  # bias = false: scale only
    args = [c.x(), c.param("weight"), shift, f"eps={py_literal(c.node.eps)}"]
    c.call(f"{c.y}, {c.temp('saved')}", c.kernel("layernorm_forward"), args)


def _layernorm_backward(c: NodeContext) -> None:
    d_input = _input_gradient(c)
    targets = f"{d_input}, {c.grad_target('weight')}, {c.grad_target('bias')}"
    args = [c.dy, c.temp("saved"), c.param("weight")]
    c.call(targets, c.kernel("layernorm_backward"), args)
    _finish(c, d_input)


def _groups(c: NodeContext) -> str:
    assert isinstance(c.node, _GroupedNorm)
    return str(c.node.channel_groups(c.in_types[0].shape[0]))  # type: ignore[arg-type]


def _groupnorm_forward(c: NodeContext) -> None:
    assert isinstance(c.node, _GroupedNorm)
    settings = [f"groups={_groups(c)}", f"eps={py_literal(c.node.eps)}"]
    args = [c.x(), c.param("weight"), c.param("bias"), *settings]
    c.call(f"{c.y}, {c.temp('saved')}", c.kernel("groupnorm_forward"), args)


def _groupnorm_backward(c: NodeContext) -> None:
    d_input = _input_gradient(c)
    targets = f"{d_input}, {c.grad_target('weight')}, {c.grad_target('bias')}"
    args = [c.dy, c.temp("saved"), c.param("weight"), f"groups={_groups(c)}"]
    c.call(targets, c.kernel("groupnorm_backward"), args)
    _finish(c, d_input)


def _lrn_settings(c: NodeContext) -> list[str]:
    node = c.node
    assert isinstance(node, LocalResponseNorm)
    return [
        f"size={node.size}",
        f"alpha={py_literal(node.alpha)}",
        f"beta={py_literal(node.beta)}",
    ]


def _lrn_forward(c: NodeContext) -> None:
    node = c.node
    assert isinstance(node, LocalResponseNorm)
    args = [c.x(), *_lrn_settings(c), f"bias={py_literal(node.bias)}"]
    c.call(f"{c.y}, {c.temp('scale')}", c.kernel("lrn_forward"), args)


def _lrn_backward(c: NodeContext) -> None:
    args = [c.dy, c.x(), c.temp("scale"), *_lrn_settings(c)]
    c.grad_input(0, f"{c.kernel('lrn_backward')}({', '.join(args)})")


# -- recurrent layers ------------------------------------------------------------------

_PARAMS = {
    "rnn": ("weight_ih", "weight_hh", "bias"),
    "lstm": ("weight_ih", "weight_hh", "bias"),
    "gru": ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
}


def _recurrent_node(c: NodeContext) -> _Recurrent:
    assert isinstance(c.node, _Recurrent)
    return c.node


def _states(c: NodeContext) -> str:
    """Every hidden state [N, T, H]: the output itself with return_sequences."""
    return c.y if _recurrent_node(c).return_sequences else c.temp("states")


def _recurrent_forward(c: NodeContext) -> None:
    node = _recurrent_node(c)
    op = node.op
    args = [c.x(), *(c.param(p) for p in _PARAMS[op])]
    targets = _states(c) if op == "rnn" else f"{_states(c)}, {c.temp('saved')}"
    c.call(targets, c.kernel(f"{op}_forward"), args)
    if not node.return_sequences:
        c.line(f"{c.y} = {_states(c)}[:, -1]  # the last hidden state h_T")


def _recurrent_backward(c: NodeContext) -> None:
    node = _recurrent_node(c)
    op = node.op
    if not node.return_sequences:
        c.line("# only h_T is an output: d h_T [N, H] starts the loop, no other step adds one")
    d_states = c.dy
    d_input = _input_gradient(c)
    targets = ", ".join([d_input, *(c.grad_target(p) for p in _PARAMS[op])])
    saved = [] if op == "rnn" else [c.temp("saved")]
    args = [d_states, c.x(), _states(c), *saved, c.param("weight_ih"), c.param("weight_hh")]
    c.call(targets, c.kernel(f"{op}_backward"), args)
    _finish(c, d_input)


LOWERINGS: dict[str, Lowering] = {
    "batchnorm": Lowering(_batchnorm_forward, _batchnorm_backward),
    "layernorm": Lowering(_layernorm_forward, _layernorm_backward),
    "lrn": Lowering(_lrn_forward, _lrn_backward),
    "instancenorm": Lowering(_groupnorm_forward, _groupnorm_backward),
    "groupnorm": Lowering(_groupnorm_forward, _groupnorm_backward),
    "rnn": Lowering(_recurrent_forward, _recurrent_backward),
    "lstm": Lowering(_recurrent_forward, _recurrent_backward),
    "gru": Lowering(_recurrent_forward, _recurrent_backward),
}
