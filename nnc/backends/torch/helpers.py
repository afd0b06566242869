"""Helpers emitted into a generated module, only when one of its layers needs them.

Each helper is fixed code (nothing from the spec reaches it) computing a piece of
nnc's semantics that torch has no layer for. They are emitted in the order of
:data:`HELPERS`, so a helper may use an earlier one.
"""

from __future__ import annotations

from nnc.backends.codegen import CodeWriter

_STEP = '''
class StraightThroughStep(torch.autograd.Function):
    """Heaviside step forward, identity backward: the straight-through gradient that
    makes step + sse + sgd with batch 1 Rosenblatt's perceptron rule."""

    @staticmethod
    def forward(ctx, x):
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


def step(x):
    """1 where x > 0, else 0; its gradient passes straight through."""
    return StraightThroughStep.apply(x)
'''

_AVG_POOL = '''
class AvgPoolExcludingPad(nn.Module):
    """The mean over the real elements of each window, with padding that may differ at
    the two ends (TF-style 'same' puts the extra pad at the end; nn.AvgPool pads both
    ends equally). Window sums of the zero-padded input are divided by the number of
    real elements in each window, counted by pooling a padded mask of ones."""

    def __init__(self, kernel_size, stride, pads):
        super().__init__()
        pool = nn.AvgPool1d if len(kernel_size) == 1 else nn.AvgPool2d
        self.pool = pool(kernel_size, stride)
        self.pads = pads

    def forward(self, x):
        ones = torch.ones_like(x[:1, :1])
        return self.pool(F.pad(x, self.pads)) / self.pool(F.pad(ones, self.pads))
'''

_SUM_POOL = '''
class SumPool(nn.Module):
    """The sum over each window (torch has no sum pooling): the mean over the
    zero-padded window times the window size."""

    def __init__(self, kernel_size, stride, pads):
        super().__init__()
        pool = nn.AvgPool1d if len(kernel_size) == 1 else nn.AvgPool2d
        self.pool = pool(kernel_size, stride)
        self.pads = pads
        self.window = math.prod(kernel_size)

    def forward(self, x):
        if any(self.pads):
            x = F.pad(x, self.pads)
        return self.pool(x) * self.window
'''

_WINDOW_POOL = '''
class WindowPool(nn.Module):
    """The sum, or the mean over the real elements, of each window, for any spatial
    rank, dilation and (F.pad-order) padding, where nn.AvgPool has no dilation and
    pads both ends equally: each channel, zero-padded, convolved with a kernel of
    ones; the mean divides by the same convolution of a padded mask of ones."""

    def __init__(self, kernel_size, stride, dilation, pads, mean=True):
        super().__init__()
        self.conv = (F.conv1d, F.conv2d, F.conv3d)[len(kernel_size) - 1]
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.pads, self.mean = pads, mean

    def window_sum(self, x):
        ones = x.new_ones(1, 1, *self.kernel_size)
        planes = F.pad(x, self.pads).flatten(0, 1).unsqueeze(1)
        sums = self.conv(planes, ones, stride=self.stride, dilation=self.dilation)
        return sums.view(*x.shape[:2], *sums.shape[2:])

    def forward(self, x):
        if not self.mean:
            return self.window_sum(x)
        return self.window_sum(x) / self.window_sum(torch.ones_like(x[:1, :1]))
'''

_LRN_EVEN = '''
class LocalResponseNormEven(nn.Module):
    """Local response normalisation whose even window spans size/2 - 1 channels before
    each channel and size/2 after it (nnc's and ONNX's convention; nn.LocalResponseNorm
    starts the window one channel earlier):
    y_c = x_c / (k + alpha / size * sum of x_c'^2 over the window) ** beta."""

    def __init__(self, size, alpha, beta, k):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        squares = x.square().flatten(2).unsqueeze(1)  # [N, 1, C, positions]
        before, after = (self.size - 1) // 2, self.size // 2
        window_mean = F.avg_pool2d(F.pad(squares, (0, 0, before, after)), (self.size, 1), 1)
        scale = (self.k + self.alpha * window_mean.squeeze(1)) ** self.beta
        return x / scale.view_as(x)
'''

_RBM = '''
class RBM(nn.Module):
    """A restricted Boltzmann machine used as a layer: its up pass, the hidden
    probabilities sigmoid(v W + c). weight is [visible, hidden] as in nnc; the visible
    bias is kept (contrastive divergence trains it) but takes no part here."""

    def __init__(self, visible, hidden):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(visible, hidden))
        self.visible_bias = nn.Parameter(torch.zeros(visible), requires_grad=False)
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))

    def forward(self, v):
        return torch.sigmoid(v @ self.weight + self.hidden_bias)
'''

_FIRST_EXTREME = '''
def first_extreme(x, dims, keepdim=False, largest=True):
    """The max (or min) of x over dims. The gradient goes to the first extreme element
    in row-major order of those dims (torch.amax splits it among ties); argmax returns
    the first maximal index."""
    kept = [d for d in range(x.dim()) if d not in dims]
    moved = x.permute(*kept, *dims)
    flat = moved.reshape(*moved.shape[: len(kept)], -1)
    index = flat.argmax(dim=-1, keepdim=True) if largest else flat.argmin(dim=-1, keepdim=True)
    value = flat.gather(-1, index).squeeze(-1)
    for d in dims if keepdim else ():
        value = value.unsqueeze(d)
    return value
'''

_ATTENTION = '''
class MultiHeadAttention(nn.Module):
    """nnc's attention: softmax(Q K^T / sqrt(key_dim)) V per head, then the output
    projection. Not nn.MultiheadAttention, so that key and value dims stay separate.
    Without a key mask every query attends some key, and torch's fused
    scaled_dot_product_attention computes it; with one, a query may attend no key and
    gets all-zero weights (not NaN), so the softmax is written out."""

    def __init__(self, heads, dims, key_dim, value_dim, bias=True, dropout=0.0, causal=False):
        super().__init__()
        d_q, d_k, d_v = dims
        self.query = nn.Linear(d_q, heads * key_dim, bias=bias)
        self.key = nn.Linear(d_k, heads * key_dim, bias=bias)
        self.value = nn.Linear(d_v, heads * value_dim, bias=bias)
        self.output = nn.Linear(heads * value_dim, d_q, bias=bias)
        self.heads, self.scale = heads, 1 / math.sqrt(key_dim)
        self.dropout, self.causal = dropout, causal

    def split(self, x):
        return x.reshape(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def forward(self, q, k, v, mask=None):
        n, t, s = q.shape[0], q.shape[1], k.shape[1]
        q, k, v = self.split(self.query(q)), self.split(self.key(k)), self.split(self.value(v))
        if mask is None:
            dropout = self.dropout if self.training else 0.0
            mixed = F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout, is_causal=self.causal, scale=self.scale
            )  # is_causal: key j <= query i
            return self.output(mixed.transpose(1, 2).reshape(n, t, -1))
        scores = (q @ k.transpose(-2, -1)) * self.scale
        allowed = torch.ones(t, s, dtype=torch.bool, device=q.device)
        if self.causal:
            allowed = torch.tril(allowed)  # key j <= query i
        if mask is not None:
            allowed = allowed & (mask != 0)[:, None, None, :]  # mask: 1 = attend
        scores = scores.masked_fill(~allowed, float("-inf"))
        top = scores.amax(dim=-1, keepdim=True).detach()
        e = torch.exp(scores - torch.where(torch.isinf(top), 0.0, top))
        total = e.sum(dim=-1, keepdim=True)
        weights = F.dropout(e / torch.where(total > 0, total, 1.0), self.dropout, self.training)
        return self.output((weights @ v).transpose(1, 2).reshape(n, t, -1))
'''

_SINUSOIDAL = '''
def sinusoidal_positions(x, base):
    """x + PE[:t]: PE[p, j] = sin(p w_j) at even j, cos(p w_j) at odd j, with
    w_j = base^(-2 floor(j/2) / d); the table is built in float64, rounded once."""
    t, d = x.shape[1], x.shape[2]
    j = torch.arange(d, dtype=torch.float64, device=x.device)
    frequencies = base ** (-2 * torch.div(j, 2, rounding_mode="floor") / d)
    angles = torch.arange(t, dtype=torch.float64, device=x.device)[:, None] * frequencies
    table = torch.where(j % 2 == 0, torch.sin(angles), torch.cos(angles))
    return x + table.to(x.dtype)
'''

# name -> (source, imports it needs beyond torch, nn and F)
_POWER = '''
class Power(torch.autograd.Function):
    """a ** b with nnc's gradients, each summed back to its operand's shape:
    d/da = b * a^(b-1), and d/db = a^b * ln(a) where a > 0, 0 where a <= 0."""

    @staticmethod
    def forward(ctx, a, b):
        y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, dy):
        a, b, y = ctx.saved_tensors
        da = dy * b * a ** (b - 1)
        db = dy * y * torch.log(torch.where(a > 0, a, torch.ones_like(a)))
        return da.sum_to_size(a.shape), db.sum_to_size(b.shape)


def power(a, b):
    """a ** b; either side may be a number."""
    a = a if torch.is_tensor(a) else torch.full_like(b, a)
    b = b if torch.is_tensor(b) else torch.full_like(a, b)
    return Power.apply(a, b)
'''

_CONTIGUOUS_NORM = '''
class ContiguousGradient(torch.autograd.Function):
    """Identity forward; backward hands on the gradient in contiguous layout."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.contiguous()


def contiguous_norm(norm, x):
    """norm(x) for a batch or instance norm over 4-D or 5-D tensors, with x and its
    gradient in contiguous layout. torch's CPU kernels read a tensor whose strides also
    fit channels-last (a permuted one where a size-1 axis, or a batch of one, makes
    the layout ambiguous) as channels-last, and return wrong gradients."""
    return ContiguousGradient.apply(norm(x.contiguous()))
'''

HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "step": (_STEP, ()),
    "AvgPoolExcludingPad": (_AVG_POOL, ()),
    "SumPool": (_SUM_POOL, ("math",)),
    "WindowPool": (_WINDOW_POOL, ()),
    "LocalResponseNormEven": (_LRN_EVEN, ()),
    "RBM": (_RBM, ()),
    "first_extreme": (_FIRST_EXTREME, ()),
    "power": (_POWER, ()),
    "MultiHeadAttention": (_ATTENTION, ("math",)),
    "sinusoidal_positions": (_SINUSOIDAL, ()),
    "contiguous_norm": (_CONTIGUOUS_NORM, ()),
}


def helper_names(name: str) -> tuple[str, ...]:
    """The module-level names a helper defines (so spec names avoid them)."""
    if name == "step":
        return ("StraightThroughStep", "step")
    if name == "power":
        return ("Power", "power")
    if name == "contiguous_norm":
        return ("ContiguousGradient", "contiguous_norm")
    return (name,)


def emit_helpers(w: CodeWriter, used: set[str]) -> None:
    """Emit the helpers in ``used``, in a fixed order, two blank lines apart."""
    for name, (source, _) in HELPERS.items():
        if name not in used:
            continue
        w.blank(2)
        w.lines_(source.strip("\n").splitlines())


def helper_imports(used: set[str]) -> set[str]:
    return {imp for name in used for imp in HELPERS[name][1]}
