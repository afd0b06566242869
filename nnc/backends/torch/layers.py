"""Lowerings of IR layers to PyTorch: one entry per op, keyed by the op's name.

A lowering takes a node and its :class:`Site` (input types, the variables holding its
inputs, the attribute it is stored under) and returns a :class:`Layer`: the module
built in ``__init__``, the expression computed in ``forward``, and anything torch
needs beyond its native layer to compute nnc's semantics (a helper from
:mod:`nnc.backends.torch.helpers`, a parameter stored under another name, a frozen
tensor). Activations live in :mod:`nnc.backends.torch.activations`.

Where torch's layer computes nnc's formula, the lowering uses it with converted
arguments; where it does not (TF-style ``same`` padding with an odd total, sum
pooling, LRN with an even window), the difference is written out and commented.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nnc.backends.codegen import py_literal
from nnc.ir.ops.attention import Attention
from nnc.ir.ops.conv import Conv2dTranspose, _Conv
from nnc.ir.ops.dense import Dense, Embedding
from nnc.ir.ops.energy import Rbm
from nnc.ir.ops.graph import Concat
from nnc.ir.ops.normalization import (
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    LocalResponseNorm,
)
from nnc.ir.ops.pooling import AvgPool, MaxPool, SumPool, _Pool
from nnc.ir.ops.recurrent import GRU, _Recurrent
from nnc.ir.ops.reshape import Dropout, Flatten, Reshape
from nnc.ir.types import TensorType


@dataclass(frozen=True)
class Site:
    """Where a node is lowered: its input types, the expressions holding its inputs,
    and the attribute (``self.<name>``) its module is stored under."""

    ins: tuple[TensorType, ...]
    xs: tuple[str, ...]
    attr: str
    out: TensorType

    @property
    def x(self) -> str:
        return self.xs[0]


@dataclass(frozen=True)
class Layer:
    """How one node appears in the generated ``nn.Module``.

    - ``forward``: the expression computing the node's value (None: the node is the
      identity and its input passes through);
    - ``module``: the constructor assigned to the node's attribute in ``__init__``;
    - ``setup``: statements run after the constructor (``{attr}`` is the attribute);
    - ``comment``: said on the forward line, where the code differs from torch's default;
    - ``helpers``: helper functions or classes the code uses;
    - ``renames``: canonical parameter name -> torch's name for the same tensor
      (the layouts are equal; only the name differs).
    """

    forward: str | None
    module: str | None = None
    setup: tuple[str, ...] = ()
    comment: str = ""
    helpers: tuple[str, ...] = ()
    renames: dict[str, str] = field(default_factory=dict)
    imports: tuple[str, ...] = ()


Lowering = Callable[[Any, Site], Layer]


def call(*args: Any, **kwargs: Any) -> str:
    """Arguments as source: positional values, then ``key=value`` pairs."""
    parts = [py_literal(a) for a in args]
    parts += [f"{k}={py_literal(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def size(values: Sequence[int]) -> int | tuple[int, ...]:
    """A per-dim size as torch accepts it: one int when every dim agrees."""
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def torch_pads(pads: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """(begin, end) per spatial dim, in F.pad's order: last dim first."""
    out: list[int] = []
    for begin, end in reversed(pads):
        out += [begin, end]
    return tuple(out)


def _symmetric(pads: Sequence[tuple[int, int]]) -> bool:
    return all(b == e for b, e in pads)


# -- attention ---------------------------------------------------------------------------


def attention(node: Attention, site: Site) -> Layer:
    """The MultiHeadAttention helper; its query/key/value/output Linear layers hold
    nnc's canonical parameters under the same names."""
    d_q, d_k, d_v, key_dim, value_dim = node.dims(site.ins)
    (iq, ik, iv), im = node.split_inputs(site.ins)
    options: dict[str, Any] = {}
    if not node.bias:
        options["bias"] = False
    if node.dropout:
        options["dropout"] = node.dropout
    if node.causal:
        options["causal"] = True
    args = call(node.heads, (d_q, d_k, d_v), key_dim, value_dim, **options)
    xs = [site.xs[i] for i in (iq, ik, iv)] + ([site.xs[im]] if im is not None else [])
    return Layer(
        module=f"MultiHeadAttention({args})",
        forward=f"{site.attr}({', '.join(xs)})",
        helpers=("MultiHeadAttention",),
    )


# -- dense and embedding ---------------------------------------------------------------


def dense(node: Dense, site: Site) -> Layer:
    features = site.ins[0].shape[-1]
    extra = {} if node.bias else {"bias": False}
    return Layer(
        module=f"nn.Linear({call(features, node.units, **extra)})",
        forward=f"{site.attr}({site.x})",
    )


def embedding(node: Embedding, site: Site) -> Layer:
    return Layer(
        module=f"nn.Embedding({call(node.vocab, node.dim)})",
        forward=f"{site.attr}({site.x})",
    )


def rbm(node: Rbm, site: Site) -> Layer:
    return Layer(
        module=f"RBM({call(site.ins[0].shape[0], node.hidden)})",
        forward=f"{site.attr}({site.x})",
        comment="the RBM's up pass: hidden probabilities",
        helpers=("RBM",),
    )


# -- convolutions ------------------------------------------------------------------------


def conv(node: _Conv, site: Site) -> Layer:
    """nn.Conv1d/2d/3d. Symmetric pads go to torch's ``padding``; TF-style ``same`` with an
    odd total pad puts the extra pad at the end, which needs an explicit F.pad."""
    pads = node.pads(site.ins[0].shape[1:])
    channels = site.ins[0].shape[0]
    options: dict[str, Any] = {"kernel_size": size(node.kernel)}
    if any(s != 1 for s in node.stride):
        options["stride"] = size(node.stride)
    symmetric = _symmetric(pads)
    if symmetric and any(b for b, _ in pads):
        options["padding"] = size([b for b, _ in pads])
    if any(d != 1 for d in node.dilation):
        options["dilation"] = size(node.dilation)
    if node.groups != 1:
        options["groups"] = node.groups
    if not node.bias:
        options["bias"] = False
    module = f"nn.Conv{node.rank}d({call(channels, node.filters, **options)})"
    if symmetric:
        return Layer(module=module, forward=f"{site.attr}({site.x})")
    return Layer(
        module=module,
        forward=f"{site.attr}(F.pad({site.x}, {py_literal(torch_pads(pads))}))",
        comment=(
            "'same' padding, TF-style: the extra pad goes at the end"
            if node.padding == "same"
            else "uneven padding: torch's own pads both ends equally"
        ),
    )


def conv_transpose(node: Conv2dTranspose, site: Site) -> Layer:
    """nn.ConvTranspose2d (same weight layout). torch crops the same amount from both
    ends; an uneven crop (``same`` with an odd ``kernel - stride``) crops the rest by
    slicing the output's end."""
    channels = site.ins[0].shape[0]
    crops = node.pads()
    common = [min(b, e) for b, e in crops]
    options: dict[str, Any] = {"kernel_size": size(node.kernel)}
    if any(s != 1 for s in node.stride):
        options["stride"] = size(node.stride)
    if any(common):
        options["padding"] = size(common)
    if any(node.output_padding):
        options["output_padding"] = size(node.output_padding)
    if not node.bias:
        options["bias"] = False
    module = f"nn.ConvTranspose2d({call(channels, node.filters, **options)})"
    extra = [(b - c, e - c) for (b, e), c in zip(crops, common, strict=True)]
    if not any(b or e for b, e in extra):
        return Layer(module=module, forward=f"{site.attr}({site.x})")
    slices = ", ".join(_slice(b, e) for b, e in extra)
    return Layer(
        module=module,
        forward=f"{site.attr}({site.x})[..., {slices}]",
        comment="torch crops both ends equally; the extra crop comes off the end",
    )


def _slice(begin: int, end: int) -> str:
    return f"{begin or ''}:{-end if end else ''}"


# -- pooling ---------------------------------------------------------------------------


def _pool_geometry(node: _Pool, site: Site) -> tuple[dict[str, Any], Any, Any, bool]:
    w = node.window(site.ins[0])
    options: dict[str, Any] = {}
    if w.stride != w.kernel:
        options["stride"] = size(w.stride)
    # torch pads symmetrically, and at most half the window on each side.
    within = all(b <= k // 2 for (b, _), k in zip(w.pads, w.kernel, strict=True))
    native = _symmetric(w.pads) and within
    return options, w, torch_pads(w.pads), native


def maxpool(node: MaxPool, site: Site) -> Layer:
    """nn.MaxPool (torch's padding is -inf, so padding never wins); an asymmetric pad
    (TF-style ``same``, explicit, or the end pad of ``ceil_mode``) is an explicit F.pad
    with -inf."""
    options, w, pads, native = _pool_geometry(node, site)
    cls = f"nn.MaxPool{len(w.kernel)}d"
    if native and any(pads):
        options["padding"] = size([b for b, _ in w.pads])
    if w.dilation:
        options["dilation"] = size(w.dilation)
    module = f"{cls}({call(size(w.kernel), **options)})"
    if native:
        return Layer(module=module, forward=f"{site.attr}({site.x})")
    return Layer(
        module=module,
        forward=f"{site.attr}(F.pad({site.x}, {py_literal(pads)}, value=-math.inf))",
        comment=(
            "'same' padding, TF-style; -inf never wins the max"
            if node.padding == "same" and not node.ceil_mode
            else "uneven padding, as -inf, which never wins the max"
        ),
        imports=("math",),
    )


def _window_pool(w: Any, pads: Any, site: Site, mean: bool) -> Layer:
    """The WindowPool helper: any spatial rank, dilation and padding."""
    args = call(w.kernel, w.stride, w.dilations, pads, **({} if mean else {"mean": False}))
    return Layer(
        module=f"WindowPool({args})", forward=f"{site.attr}({site.x})", helpers=("WindowPool",)
    )


def avgpool(node: AvgPool, site: Site) -> Layer:
    """nn.AvgPool with ``count_include_pad=False`` (the mean over real elements); an
    asymmetric pad needs the AvgPoolExcludingPad helper, a dilation (which nn.AvgPool
    lacks), an uneven 3-D pad or a 3-D window wider than its input the WindowPool
    helper."""
    options, w, pads, native = _pool_geometry(node, site)
    # torch's avg_pool3d refuses an input narrower than the window before padding it
    # ("input image smaller than kernel size"); avg_pool1d/2d pad first.
    narrow = len(w.kernel) == 3 and any(
        isinstance(n, int) and n < k for n, k in zip(site.ins[0].shape[1:], w.kernel, strict=True)
    )
    if native and not w.dilation and not narrow:
        if any(pads):
            options["padding"] = size([b for b, _ in w.pads])
            options["count_include_pad"] = False
        cls = f"nn.AvgPool{len(w.kernel)}d"
        return Layer(
            module=f"{cls}({call(size(w.kernel), **options)})",
            forward=f"{site.attr}({site.x})",
        )
    if w.dilation or len(w.kernel) == 3:
        return _window_pool(w, pads, site, mean=True)
    return Layer(
        module=f"AvgPoolExcludingPad({call(w.kernel, w.stride, pads)})",
        forward=f"{site.attr}({site.x})",
        helpers=("AvgPoolExcludingPad",),
    )


def sumpool(node: SumPool, site: Site) -> Layer:
    w = node.window(site.ins[0])
    if w.dilation:
        return _window_pool(w, torch_pads(w.pads), site, mean=False)
    return Layer(
        module=f"SumPool({call(w.kernel, w.stride, torch_pads(w.pads))})",
        forward=f"{site.attr}({site.x})",
        helpers=("SumPool",),
    )


def global_avg_pool(node: Any, site: Site) -> Layer:
    spatial = tuple(range(2, site.ins[0].rank + 1))
    return Layer(forward=f"{site.x}.mean(dim={py_literal(size(spatial))})")


# -- reshaping and dropout ---------------------------------------------------------------


def flatten(node: Flatten, site: Site) -> Layer:
    if site.ins[0].rank == 0:  # a scalar per sample: torch's flatten(1) has no axis 1
        return Layer(forward=f"{site.x}.unsqueeze(1)")
    return Layer(forward=f"{site.x}.flatten(1)")


def reshape(node: Reshape, site: Site) -> Layer:
    dims = ", ".join(py_literal(d) for d in site.out.shape)
    return Layer(forward=f"{site.x}.reshape(len({site.x}), {dims})")


def dropout(node: Dropout, site: Site) -> Layer:
    return Layer(module=f"nn.Dropout({call(node.rate)})", forward=f"{site.attr}({site.x})")


# -- normalization -----------------------------------------------------------------------


def batchnorm(node: BatchNorm, site: Site) -> Layer:
    """torch's BatchNorm has nnc's conventions: momentum weighs the new batch, the
    running variance is unbiased, normalisation uses the biased one."""
    x = site.ins[0]
    options: dict[str, Any] = {}
    if node.eps != 1e-5:
        options["eps"] = node.eps
    if node.momentum != 0.1:
        options["momentum"] = node.momentum
    if x.rank < 3:
        module = f"nn.BatchNorm1d({call(x.shape[0], **options)})"
        return Layer(module=module, forward=f"{site.attr}({site.x})")
    module = f"nn.BatchNorm2d({call(x.shape[0], **options)})"
    helpers = ("contiguous_norm",)
    if x.rank == 4:
        # nn.BatchNorm2d over [N, C, D, H·W] takes the same statistics per channel as
        # BatchNorm3d, and data-parallel training swaps it for GlobalBatchNorm too.
        forward = f"contiguous_norm({site.attr}, {site.x}.flatten(3)).view_as({site.x})"
        return Layer(module=module, forward=forward, helpers=helpers)
    return Layer(module=module, forward=f"contiguous_norm({site.attr}, {site.x})", helpers=helpers)


def instancenorm(node: InstanceNorm, site: Site) -> Layer:
    """nn.InstanceNorm with a learned per-channel affine; without running statistics
    (torch's default), so training and evaluation both normalise each sample."""
    x = site.ins[0]
    options: dict[str, Any] = {"affine": True}
    if node.eps != 1e-5:
        options["eps"] = node.eps
    module = f"nn.InstanceNorm{x.rank - 1}d({call(x.shape[0], **options)})"
    if x.rank < 3:
        return Layer(module=module, forward=f"{site.attr}({site.x})")
    forward = f"contiguous_norm({site.attr}, {site.x})"
    return Layer(module=module, forward=forward, helpers=("contiguous_norm",))


def groupnorm(node: GroupNorm, site: Site) -> Layer:
    options = {"eps": node.eps} if node.eps != 1e-5 else {}
    module = f"nn.GroupNorm({call(node.groups, site.ins[0].shape[0], **options)})"
    return Layer(module=module, forward=f"{site.attr}({site.x})")


def layernorm(node: LayerNorm, site: Site) -> Layer:
    options: dict[str, Any] = {"eps": node.eps} if node.eps != 1e-5 else {}
    if not node.bias:
        options["bias"] = False
    features = site.ins[0].shape[-1]
    return Layer(
        module=f"nn.LayerNorm({call(features, **options)})", forward=f"{site.attr}({site.x})"
    )


def lrn(node: LocalResponseNorm, site: Site) -> Layer:
    """nn.LocalResponseNorm matches nnc for odd sizes; for even sizes torch's window
    starts one channel earlier than nnc's (and ONNX's), so a helper computes it."""
    args = call(node.size, alpha=node.alpha, beta=node.beta, k=node.bias)
    if node.size % 2:
        return Layer(module=f"nn.LocalResponseNorm({args})", forward=f"{site.attr}({site.x})")
    return Layer(
        module=f"LocalResponseNormEven({args})",
        forward=f"{site.attr}({site.x})",
        helpers=("LocalResponseNormEven",),
    )


# -- recurrent layers --------------------------------------------------------------------

_RECURRENT = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}


def recurrent(node: _Recurrent, site: Site) -> Layer:
    """nn.RNN/LSTM/GRU with ``batch_first``; torch's gate orders equal nnc's (i, f, g, o
    and r, z, n). nnc's rnn and lstm have one bias: it is torch's input bias, and the
    recurrent bias stays zero and frozen."""
    features = site.ins[0].shape[1]
    module = f"{_RECURRENT[node.op]}({call(features, node.units, batch_first=True)})"
    renames = {
        "weight_ih": "weight_ih_l0",
        "weight_hh": "weight_hh_l0",
    }
    setup: tuple[str, ...] = ()
    if isinstance(node, GRU):
        renames |= {"bias_ih": "bias_ih_l0", "bias_hh": "bias_hh_l0"}
    else:
        renames["bias"] = "bias_ih_l0"
        setup = (
            "# nnc's layer has one bias, torch's input bias; the recurrent one stays 0.",
            "nn.init.zeros_({attr}.bias_hh_l0)",
            "{attr}.bias_hh_l0.requires_grad_(False)",
        )
    if node.return_sequences:
        return Layer(
            module=module, forward=f"{site.attr}({site.x})[0]", setup=setup, renames=renames
        )
    return Layer(
        module=module,
        forward=f"{site.attr}({site.x})[0][:, -1]",
        comment="the last hidden state h_T",
        setup=setup,
        renames=renames,
    )


# -- graph ops ---------------------------------------------------------------------------


def concat(node: Concat, site: Site) -> Layer:
    dim = node.axis + 1 if node.axis >= 0 else node.axis
    return Layer(forward=f"torch.cat(({', '.join(site.xs)}), dim={dim})")


LAYERS: dict[str, Lowering] = {
    "dense": dense,
    "embedding": embedding,
    "rbm": rbm,
    "conv1d": conv,
    "conv2d": conv,
    "conv3d": conv,
    "conv2d_transpose": conv_transpose,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "sumpool": sumpool,
    "global_avg_pool": global_avg_pool,
    "maxpool3d": maxpool,
    "avgpool3d": avgpool,
    "flatten": flatten,
    "reshape": reshape,
    "dropout": dropout,
    "attention": attention,
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "lrn": lrn,
    "instancenorm": instancenorm,
    "groupnorm": groupnorm,
    "rnn": recurrent,
    "lstm": recurrent,
    "gru": recurrent,
    "concat": concat,
}
