"""ONNX lowerings of the recurrent layers: rnn, lstm and gru.

ONNX's ``RNN``/``LSTM``/``GRU`` take time-major input ``[t, N, F]`` (onnxruntime does
not implement ``layout = 1``), weights ``W [1, gates*H, F]`` and ``R [1, gates*H, H]``
and one bias ``B [1, 2*gates*H]`` holding the input bias then the recurrent bias.
The canonical weights are converted at export:

- gate order: lstm i, f, g, o -> ONNX i, o, f, c; gru r, z, n -> ONNX z, r, h;
- the single canonical bias of rnn and lstm becomes ``Wb = bias``, ``Rb = 0``;
- gru keeps both biases and sets ``linear_before_reset = 1``, which is nnc's (and
  PyTorch's) ``n = tanh(W_n x + b_in + r * (U_n h + b_hn))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.recurrent import _Recurrent

# For each op: the ONNX op type and, for each ONNX gate slot, the canonical gate index.
ONNX_GATES: dict[str, tuple[str, tuple[int, ...]]] = {
    "rnn": ("RNN", (0,)),
    "lstm": ("LSTM", (0, 3, 1, 2)),  # canonical i f g o -> ONNX i o f c
    "gru": ("GRU", (1, 0, 2)),  # canonical r z n -> ONNX z r h
}


def reorder_gates(array: np.ndarray, order: Sequence[int], units: int) -> np.ndarray:
    """Stack the ``units``-row gate blocks of ``array`` in ``order`` (axis 0)."""
    return np.concatenate([array[k * units : (k + 1) * units] for k in order], axis=0)


def onnx_recurrent_weights(
    op: str, params: dict[str, np.ndarray], units: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical parameters of one recurrent layer -> ONNX ``W``, ``R``, ``B``."""
    _, order = ONNX_GATES[op]
    w = reorder_gates(params["weight_ih"], order, units)[None]
    r = reorder_gates(params["weight_hh"], order, units)[None]
    if op == "gru":
        wb = reorder_gates(params["bias_ih"], order, units)
        rb = reorder_gates(params["bias_hh"], order, units)
    else:
        wb = reorder_gates(params["bias"], order, units)
        rb = np.zeros_like(wb)
    return w, r, np.concatenate([wb, rb])[None]


def recurrent(b: GraphBuilder, node: _Recurrent) -> None:
    op_type, _ = ONNX_GATES[node.op]
    names = ["weight_ih", "weight_hh", *(["bias_ih", "bias_hh"] if node.op == "gru" else ["bias"])]
    params = {n: b.weight(node, n) for n in names}
    w, r, bias = onnx_recurrent_weights(node.op, params, node.units)
    x = b.value(node.inputs[0])
    inputs = [
        b.op("Transpose", [x], f"{node.name}/time_major", perm=[1, 0, 2]),
        b.initializer(f"{node.name}/W", w),
        b.initializer(f"{node.name}/R", r),
        b.initializer(f"{node.name}/B", bias),
    ]
    attributes = {"hidden_size": node.units}
    if node.op == "gru":
        attributes["linear_before_reset"] = 1
    if node.return_sequences:
        # Y is [t, directions=1, N, H]: drop the direction axis, then batch first.
        y = b.unique(f"{node.name}/sequence")
        b.node(op_type, inputs, [y], node.name, **attributes)
        steps = b.squeeze(y, [1], f"{node.name}/steps")
        out = b.op("Transpose", [steps], node.name, name=f"{node.name}/batch_major", perm=[1, 0, 2])
        b.bind(node, out)
        return
    # Only the last hidden state Y_h [directions=1, N, H] is computed (Y unnamed).
    last = b.unique(f"{node.name}/last_state")
    b.node(op_type, inputs, ["", last], node.name, **attributes)
    b.bind(node, b.squeeze(last, [0], node.name, name=f"{node.name}/squeeze"))


LOWERINGS: dict[str, Lowering] = {"rnn": recurrent, "lstm": recurrent, "gru": recurrent}
