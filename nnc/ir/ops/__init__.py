"""The op registry: every IR node type, and the discriminated union over them.

Adding an op means: its class in one of these modules, its entry in ``Node`` below,
one lowering per backend, and one entry in ``docs/semantics.md`` (docs/architecture.md
lists every file, worked through). The registry-wide tests pick it up from ``OPS``.
"""

from typing import Annotated, get_args

from pydantic import Field

from nnc.ir.base import Op
from nnc.ir.ops.activations import (
    Elu,
    Gelu,
    LeakyRelu,
    Linear,
    LogSoftmax,
    PRelu,
    Relu,
    Selu,
    Sigmoid,
    Silu,
    Softmax,
    Softplus,
    Step,
    Tanh,
)
from nnc.ir.ops.arith import (
    Add,
    ConstantTensor,
    Div,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Sub,
)
from nnc.ir.ops.attention import Attention
from nnc.ir.ops.conv import Conv1d, Conv2d, Conv2dTranspose, Conv3d
from nnc.ir.ops.dense import Dense, Embedding
from nnc.ir.ops.energy import Rbm
from nnc.ir.ops.graph import Call, Concat
from nnc.ir.ops.layout import BroadcastTo, Pad, Slice, Squeeze, Tile, Transpose, Unsqueeze
from nnc.ir.ops.linalg import Matmul, Param
from nnc.ir.ops.math import (
    Abs,
    Clip,
    Erf,
    Exp,
    HardSigmoid,
    HardSwish,
    Log,
    Mish,
    Relu6,
    Rsqrt,
    Softsign,
    Sqrt,
    Square,
)
from nnc.ir.ops.normalization import (
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    LocalResponseNorm,
)
from nnc.ir.ops.pooling import AvgPool, AvgPool3d, GlobalAvgPool, MaxPool, MaxPool3d, SumPool
from nnc.ir.ops.positions import LearnedPositions, SinusoidalPositions
from nnc.ir.ops.recurrent import GRU, LSTM, SimpleRNN
from nnc.ir.ops.reduce import GlobalMaxPool, Max, Mean, Min, Sum
from nnc.ir.ops.resample import DepthToSpace, Resize, SpaceToDepth
from nnc.ir.ops.reshape import Dropout, Flatten, Reshape

Node = Annotated[
    Dense
    | Embedding
    | Rbm
    | Attention
    | LearnedPositions
    | SinusoidalPositions
    | Conv1d
    | Conv2d
    | Conv2dTranspose
    | MaxPool
    | AvgPool
    | SumPool
    | GlobalAvgPool
    | Resize
    | DepthToSpace
    | SpaceToDepth
    | Flatten
    | Reshape
    | Dropout
    | BatchNorm
    | LayerNorm
    | LocalResponseNorm
    | SimpleRNN
    | LSTM
    | GRU
    | Add
    | Concat
    | Call
    | Linear
    | Step
    | Sigmoid
    | Tanh
    | Relu
    | LeakyRelu
    | Elu
    | PRelu
    | Selu
    | Gelu
    | Softplus
    | Silu
    | Softmax
    | LogSoftmax
    | Exp
    | Log
    | Sqrt
    | Rsqrt
    | Abs
    | Square
    | Clip
    | Erf
    | Relu6
    | HardSigmoid
    | HardSwish
    | Softsign
    | Mish
    | Mean
    | Sum
    | Max
    | Min
    | GlobalMaxPool
    | Transpose
    | Squeeze
    | Unsqueeze
    | Slice
    | Pad
    | Tile
    | BroadcastTo
    | Sub
    | Mul
    | Div
    | Pow
    | Maximum
    | Minimum
    | Neg
    | ConstantTensor
    | Conv3d
    | MaxPool3d
    | AvgPool3d
    | InstanceNorm
    | GroupNorm
    | Matmul
    | Param,
    Field(discriminator="op"),
]

# The classes of the union, in its order: adding an op edits ``Node`` alone.
OP_CLASSES: tuple[type[Op], ...] = get_args(get_args(Node)[0])

OPS: dict[str, type[Op]] = {cls.model_fields["op"].default: cls for cls in OP_CLASSES}
ACTIVATIONS: frozenset[str] = frozenset(
    name for name, cls in OPS.items() if cls.category == "activation"
)

__all__ = ["ACTIVATIONS", "OPS", "OP_CLASSES", "Node"]
