"""One method per op of the registry on :class:`~nnc.builder.Builder`: each is
``layer(<op>, ...)``, so that ``b.conv2d(x, 16, kernel=3)`` reads like ``.nn`` text."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from nnc.errors import ArgumentError

if TYPE_CHECKING:
    from nnc.builder.model import Tensor


class LayerMethods:
    """The op methods; :meth:`layer` does the work."""

    @abstractmethod
    def layer(self, op: str, *args: Any, **attrs: Any) -> Tensor:
        """Apply any op of the registry by name."""

    def dense(self, *args: Any, **attrs: Any) -> Tensor:
        """``dense(units, bias, init, bias_init, trainable)``: y = x Wᵀ + b."""
        return self.layer("dense", *args, **attrs)

    def rbm(self, *args: Any, **attrs: Any) -> Tensor:
        """``rbm(hidden, visible, init, trainable)``: as a layer, sigmoid(v W + c)."""
        return self.layer("rbm", *args, **attrs)

    def embedding(self, *args: Any, **attrs: Any) -> Tensor:
        """``embedding(vocab, dim)``: rows of a learned table for int64 ids."""
        return self.layer("embedding", *args, **attrs)

    def learned_positions(self, *args: Any, **attrs: Any) -> Tensor:
        """``learned_positions(max_len)``: add a learned vector per position of [t, d]."""
        return self.layer("learned_positions", *args, **attrs)

    def sinusoidal_positions(self, *args: Any, **attrs: Any) -> Tensor:
        """``sinusoidal_positions(base = 10000)``: add the sine/cosine encoding to [t, d]."""
        return self.layer("sinusoidal_positions", *args, **attrs)

    def conv1d(self, *args: Any, **attrs: Any) -> Tensor:
        """``conv1d(filters, kernel, stride, padding, dilation, groups)`` over [C, L]."""
        return self.layer("conv1d", *args, **attrs)

    def conv2d(self, *args: Any, **attrs: Any) -> Tensor:
        """``conv2d(filters, kernel, stride, padding, dilation, groups)`` over [C, H, W]."""
        return self.layer("conv2d", *args, **attrs)

    def conv3d(self, *args: Any, **attrs: Any) -> Tensor:
        """``conv3d(filters, kernel, stride, padding, dilation, groups)`` over [C, D, H, W]."""
        return self.layer("conv3d", *args, **attrs)

    def conv2d_transpose(self, *args: Any, **attrs: Any) -> Tensor:
        """``conv2d_transpose(filters, kernel, stride, padding, output_padding)``."""
        return self.layer("conv2d_transpose", *args, **attrs)

    def maxpool(self, *args: Any, **attrs: Any) -> Tensor:
        """``maxpool(size, stride = size, padding = valid, dilation = 1, ceil_mode = false)``."""
        return self.layer("maxpool", *args, **attrs)

    def avgpool(self, *args: Any, **attrs: Any) -> Tensor:
        """``avgpool(size, stride = size, padding = valid)``: mean of the real elements."""
        return self.layer("avgpool", *args, **attrs)

    def sumpool(self, *args: Any, **attrs: Any) -> Tensor:
        """``sumpool(size, stride = size, padding = valid)``."""
        return self.layer("sumpool", *args, **attrs)

    def maxpool3d(self, *args: Any, **attrs: Any) -> Tensor:
        """``maxpool3d(size, stride, padding, dilation, ceil_mode)`` over [C, D, H, W]."""
        return self.layer("maxpool3d", *args, **attrs)

    def avgpool3d(self, *args: Any, **attrs: Any) -> Tensor:
        """``avgpool3d(size, stride, padding, dilation, ceil_mode)``: mean of the real elements."""
        return self.layer("avgpool3d", *args, **attrs)

    def global_avg_pool(self, *args: Any, **attrs: Any) -> Tensor:
        """Mean over all spatial positions: [C, ...] -> [C]."""
        return self.layer("global_avg_pool", *args, **attrs)

    def resize(self, *args: Any, **attrs: Any) -> Tensor:
        """``resize(scale = 2, mode = nearest | bilinear, align_corners = false)``."""
        return self.layer("resize", *args, **attrs)

    def depth_to_space(self, *args: Any, **attrs: Any) -> Tensor:
        """``depth_to_space(block)``: [C·b², H, W] -> [C, H·b, W·b], DCR order."""
        return self.layer("depth_to_space", *args, **attrs)

    def space_to_depth(self, *args: Any, **attrs: Any) -> Tensor:
        """``space_to_depth(block)``: [C, H·b, W·b] -> [C·b², H, W], DCR order."""
        return self.layer("space_to_depth", *args, **attrs)

    def transpose(self, *args: Any, **attrs: Any) -> Tensor:
        """``transpose(perm)``: permute the per-sample axes (default: reverse them)."""
        return self.layer("transpose", *args, **attrs)

    def squeeze(self, *args: Any, **attrs: Any) -> Tensor:
        """``squeeze(axes)``: remove size-1 per-sample axes (default: all of them)."""
        return self.layer("squeeze", *args, **attrs)

    def unsqueeze(self, *args: Any, **attrs: Any) -> Tensor:
        """``unsqueeze(axes)``: insert size-1 axes at these output positions."""
        return self.layer("unsqueeze", *args, **attrs)

    def slice(self, *args: Any, **attrs: Any) -> Tensor:
        """``slice(axes=, starts=, stops=, steps=)``: ``x[start:stop:step]`` per axis."""
        return self.layer("slice", *args, **attrs)

    def pad(self, *args: Any, **attrs: Any) -> Tensor:
        """``pad(pads, mode = constant | reflect | edge, value = 0.0)``, ONNX order."""
        return self.layer("pad", *args, **attrs)

    def tile(self, *args: Any, **attrs: Any) -> Tensor:
        """``tile(repeats)``: repeat the sample along each per-sample axis."""
        return self.layer("tile", *args, **attrs)

    def broadcast_to(self, *args: Any, **attrs: Any) -> Tensor:
        """``broadcast_to(shape)``: broadcast the sample by NumPy's rule."""
        return self.layer("broadcast_to", *args, **attrs)

    def attention(self, *args: Any, **attrs: Any) -> Tensor:
        """``attention(q, [kv | k, v], [mask], heads, key_dim, value_dim, bias, dropout,
        causal)``: multi-head scaled dot-product attention; a rank-1 last input is the
        key mask (1 = attend)."""
        return self.layer("attention", *args, **attrs)

    def flatten(self, *args: Any, **attrs: Any) -> Tensor:
        """Collapse the per-sample dims, channels-first order."""
        return self.layer("flatten", *args, **attrs)

    def reshape(self, *args: Any, **attrs: Any) -> Tensor:
        """``reshape(shape)``; one dim may be -1."""
        return self.layer("reshape", *args, **attrs)

    def dropout(self, *args: Any, **attrs: Any) -> Tensor:
        """``dropout(rate)``: inverted dropout, identity at inference."""
        return self.layer("dropout", *args, **attrs)

    def instancenorm(self, *args: Any, **attrs: Any) -> Tensor:
        """``instancenorm(eps = 1e-5)``: per sample and channel, per-channel affine."""
        return self.layer("instancenorm", *args, **attrs)

    def groupnorm(self, *args: Any, **attrs: Any) -> Tensor:
        """``groupnorm(groups, eps = 1e-5)``: per sample and group of channels (torch's)."""
        return self.layer("groupnorm", *args, **attrs)

    def batchnorm(self, *args: Any, **attrs: Any) -> Tensor:
        """``batchnorm(momentum = 0.1, eps = 1e-5)`` over axis 0 (channels)."""
        return self.layer("batchnorm", *args, **attrs)

    def layernorm(self, *args: Any, **attrs: Any) -> Tensor:
        """``layernorm(eps = 1e-5)`` over the last axis."""
        return self.layer("layernorm", *args, **attrs)

    def lrn(self, *args: Any, **attrs: Any) -> Tensor:
        """``lrn(size = 5, alpha, beta, bias)``: local response normalisation."""
        return self.layer("lrn", *args, **attrs)

    def rnn(self, *args: Any, **attrs: Any) -> Tensor:
        """``rnn(units, return_sequences = false)``: h = tanh(W x + U h + b)."""
        return self.layer("rnn", *args, **attrs)

    def lstm(self, *args: Any, **attrs: Any) -> Tensor:
        """``lstm(units, return_sequences = false)``, gates i, f, g, o."""
        return self.layer("lstm", *args, **attrs)

    def gru(self, *args: Any, **attrs: Any) -> Tensor:
        """``gru(units, return_sequences = false)``, gates r, z, n."""
        return self.layer("gru", *args, **attrs)

    def add(self, *args: Any, **attrs: Any) -> Tensor:
        """Element-wise sum of two or more tensors, broadcasting (``x + y`` in .nn
        text); ``add(x, 1.0)`` or ``add(1.0, x)`` adds a number."""
        return self.arith("add", *args, **attrs)

    def sub(self, a: Any, b: Any, **attrs: Any) -> Tensor:
        """``a - b``, broadcasting; either side may be a number (``sub(1.0, g)``)."""
        return self.arith("sub", a, b, **attrs)

    def mul(self, a: Any, b: Any, **attrs: Any) -> Tensor:
        """``a * b``, broadcasting; either side may be a number."""
        return self.arith("mul", a, b, **attrs)

    def div(self, a: Any, b: Any, **attrs: Any) -> Tensor:
        """``a / b``, broadcasting (IEEE for division by 0); either side may be a number."""
        return self.arith("div", a, b, **attrs)

    def pow(self, a: Any, b: Any, **attrs: Any) -> Tensor:
        """``pow(a, b)`` = a ** b, broadcasting; either side may be a number."""
        return self.arith("pow", a, b, **attrs)

    def maximum(self, a: Any, b: Any, **attrs: Any) -> Tensor:
        """The larger of a and b, broadcasting; a tie sends the gradient to a."""
        return self.arith("maximum", a, b, **attrs)

    def minimum(self, a: Any, b: Any, **attrs: Any) -> Tensor:
        """The smaller of a and b, broadcasting; a tie sends the gradient to a."""
        return self.arith("minimum", a, b, **attrs)

    def neg(self, *args: Any, **attrs: Any) -> Tensor:
        """``-x``."""
        return self.layer("neg", *args, **attrs)

    def arith(self, op: str, *args: Any, **attrs: Any) -> Tensor:
        """A broadcasting binary op of tensors, or of one tensor and one number (the
        op's ``scalar``, on the side it is written)."""
        numbers = [i for i, a in enumerate(args) if _is_number(a)]
        if not numbers:
            return self.layer(op, *args, **attrs)
        if len(args) != 2 or len(numbers) != 1:
            raise ArgumentError(
                f"{op} takes two tensors, or one tensor and one number. Received: "
                + ", ".join(repr(a) for a in args)
            )
        side = "left" if numbers == [0] else "right"
        tensor = args[1] if side == "left" else args[0]
        return self.layer(op, tensor, scalar=float(args[numbers[0]]), scalar_side=side, **attrs)

    def concat(self, *args: Any, **attrs: Any) -> Tensor:
        """``concat(x, y, ..., axis = 0)``."""
        return self.layer("concat", *args, **attrs)

    def linear(self, *args: Any, **attrs: Any) -> Tensor:
        """The identity activation."""
        return self.layer("linear", *args, **attrs)

    def step(self, *args: Any, **attrs: Any) -> Tensor:
        """Heaviside step with a straight-through gradient."""
        return self.layer("step", *args, **attrs)

    def sigmoid(self, *args: Any, **attrs: Any) -> Tensor:
        """1 / (1 + e^-x)."""
        return self.layer("sigmoid", *args, **attrs)

    def tanh(self, *args: Any, **attrs: Any) -> Tensor:
        """Hyperbolic tangent."""
        return self.layer("tanh", *args, **attrs)

    def relu(self, *args: Any, **attrs: Any) -> Tensor:
        """max(x, 0)."""
        return self.layer("relu", *args, **attrs)

    def leaky_relu(self, *args: Any, **attrs: Any) -> Tensor:
        """``leaky_relu(alpha = 0.01)``."""
        return self.layer("leaky_relu", *args, **attrs)

    def elu(self, *args: Any, **attrs: Any) -> Tensor:
        """``elu(alpha = 1.0)``."""
        return self.layer("elu", *args, **attrs)

    def prelu(self, *args: Any, **attrs: Any) -> Tensor:
        """Leaky relu with a learned slope per channel."""
        return self.layer("prelu", *args, **attrs)

    def selu(self, *args: Any, **attrs: Any) -> Tensor:
        """Scaled elu with the self-normalising constants."""
        return self.layer("selu", *args, **attrs)

    def gelu(self, *args: Any, **attrs: Any) -> Tensor:
        """x·Φ(x), exact erf form."""
        return self.layer("gelu", *args, **attrs)

    def softplus(self, *args: Any, **attrs: Any) -> Tensor:
        """log(1 + e^x)."""
        return self.layer("softplus", *args, **attrs)

    def silu(self, *args: Any, **attrs: Any) -> Tensor:
        """x·σ(x)."""
        return self.layer("silu", *args, **attrs)

    def softmax(self, *args: Any, **attrs: Any) -> Tensor:
        """``softmax(axis = -1)``."""
        return self.layer("softmax", *args, **attrs)

    def log_softmax(self, *args: Any, **attrs: Any) -> Tensor:
        """``log_softmax(axis = -1)``."""
        return self.layer("log_softmax", *args, **attrs)

    def exp(self, *args: Any, **attrs: Any) -> Tensor:
        """e^x, element-wise."""
        return self.layer("exp", *args, **attrs)

    def log(self, *args: Any, **attrs: Any) -> Tensor:
        """Natural logarithm, element-wise."""
        return self.layer("log", *args, **attrs)

    def sqrt(self, *args: Any, **attrs: Any) -> Tensor:
        """Square root, element-wise."""
        return self.layer("sqrt", *args, **attrs)

    def rsqrt(self, *args: Any, **attrs: Any) -> Tensor:
        """1 / sqrt(x), element-wise."""
        return self.layer("rsqrt", *args, **attrs)

    def abs(self, *args: Any, **attrs: Any) -> Tensor:
        """|x|, element-wise (gradient 0 at 0)."""
        return self.layer("abs", *args, **attrs)

    def square(self, *args: Any, **attrs: Any) -> Tensor:
        """x * x, element-wise."""
        return self.layer("square", *args, **attrs)

    def clip(self, *args: Any, **attrs: Any) -> Tensor:
        """``clip(min, max)``: min(max(x, min), max); gradient 1 on [min, max]."""
        return self.layer("clip", *args, **attrs)

    def erf(self, *args: Any, **attrs: Any) -> Tensor:
        """The error function, element-wise."""
        return self.layer("erf", *args, **attrs)

    def relu6(self, *args: Any, **attrs: Any) -> Tensor:
        """min(max(x, 0), 6)."""
        return self.layer("relu6", *args, **attrs)

    def hard_sigmoid(self, *args: Any, **attrs: Any) -> Tensor:
        """relu6(x + 3) / 6."""
        return self.layer("hard_sigmoid", *args, **attrs)

    def hard_swish(self, *args: Any, **attrs: Any) -> Tensor:
        """x * relu6(x + 3) / 6."""
        return self.layer("hard_swish", *args, **attrs)

    def softsign(self, *args: Any, **attrs: Any) -> Tensor:
        """x / (1 + |x|)."""
        return self.layer("softsign", *args, **attrs)

    def mish(self, *args: Any, **attrs: Any) -> Tensor:
        """x * tanh(softplus(x))."""
        return self.layer("mish", *args, **attrs)

    def mean(self, *args: Any, **attrs: Any) -> Tensor:
        """``mean(axis = None, keepdims = false)`` over per-sample axes."""
        return self.layer("mean", *args, **attrs)

    def sum(self, *args: Any, **attrs: Any) -> Tensor:
        """``sum(axis = None, keepdims = false)`` over per-sample axes."""
        return self.layer("sum", *args, **attrs)

    def max(self, *args: Any, **attrs: Any) -> Tensor:
        """``max(axis = None, keepdims = false)``; gradient to the first maximum."""
        return self.layer("max", *args, **attrs)

    def min(self, *args: Any, **attrs: Any) -> Tensor:
        """``min(axis = None, keepdims = false)``; gradient to the first minimum."""
        return self.layer("min", *args, **attrs)

    def global_max_pool(self, *args: Any, **attrs: Any) -> Tensor:
        """Maximum over all spatial positions: [C, ...] -> [C]."""
        return self.layer("global_max_pool", *args, **attrs)

    def matmul(self, *args: Any, **attrs: Any) -> Tensor:
        """``matmul(a, b)``: ``a @ b`` per sample, as np.matmul (vectors, broadcasting)."""
        return self.layer("matmul", *args, **attrs)

    def param(self, *args: Any, **attrs: Any) -> Tensor:
        """``param(shape, init = glorot_uniform)``: a learned tensor (no input)."""
        return self.layer("param", *args, **attrs)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
