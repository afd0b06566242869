"""ONNX -> IR converters for RNN, LSTM and GRU.

The export's conversions run backwards (see ``lower_recurrent``): ONNX gate orders
become canonical ones (LSTM i, o, f, c -> i, f, g, o; GRU z, r, h -> r, z, n), and
the two biases ``B = [Wb, Rb]`` become the canonical single bias ``Wb + Rb`` of rnn
and lstm (the same sum enters every gate), or ``bias_ih``/``bias_hh`` of gru.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from nnc.backends.onnx.import_common import attributes, unsupported_value
from nnc.backends.onnx.importer import Const, Converter, Fill, Importer, Tensor
from nnc.backends.onnx.lower_recurrent import ONNX_GATES, reorder_gates

NNC_OP = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
DEFAULT_ACTIVATIONS = {
    "RNN": ["Tanh"],
    "LSTM": ["Sigmoid", "Tanh", "Tanh"],
    "GRU": ["Sigmoid", "Tanh"],
}


def canonical_weights(
    op: str, w: np.ndarray, r: np.ndarray, b: np.ndarray | None, units: int
) -> dict[str, np.ndarray]:
    """ONNX ``W [1, G*H, F]``, ``R [1, G*H, H]``, ``B [1, 2*G*H]`` -> canonical params."""
    _, order = ONNX_GATES[op]
    inverse = [order.index(k) for k in range(len(order))]
    gates = len(order) * units
    bias = np.zeros(2 * gates, dtype=np.float32) if b is None else b.reshape(-1)
    wb, rb = bias[:gates], bias[gates:]
    params = {
        "weight_ih": reorder_gates(w[0], inverse, units),
        "weight_hh": reorder_gates(r[0], inverse, units),
    }
    if op == "gru":
        params["bias_ih"] = reorder_gates(wb, inverse, units)
        params["bias_hh"] = reorder_gates(rb, inverse, units)
    else:
        params["bias"] = reorder_gates(wb + rb, inverse, units)
    return params


def recurrent(imp: Importer, node: onnx.NodeProto) -> None:
    known: dict[str, Any] = {
        "hidden_size": None,
        "direction": "forward",
        "activations": None,
        "activation_alpha": None,
        "activation_beta": None,
        "clip": None,
        "layout": 0,
    }
    if node.op_type == "LSTM":
        known["input_forget"] = 0
    if node.op_type == "GRU":
        known["linear_before_reset"] = 0
    a = attributes(imp, node, known)
    _check_attributes(imp, node, a)
    op = NNC_OP[node.op_type]
    gates = len(ONNX_GATES[op][1])
    x = imp.tensor(node, 0)
    time_major = a["layout"] == 0
    if x.rank != 3 or x.batch_axis != (1 if time_major else 0):
        want = "[t, N, F] (layout 0)" if time_major else "[N, t, F] (layout 1)"
        raise imp.error(
            node, f"reads its sequence with the batch on axis {x.batch_axis}; it needs {want}"
        )
    x_ref = imp.shaped(x, node, batch_first=False)
    w = imp.const(node, 1, "W")
    r = imp.const(node, 2, "R")
    b = imp.const(node, 3, "B")
    if w is None or r is None or w.ndim != 3 or r.ndim != 3 or w.shape[0] != 1:
        raise imp.error(node, "needs constant W [1, gates*H, F] and R [1, gates*H, H]")
    units = int(a["hidden_size"] or r.shape[2])
    if w.shape[1] != gates * units or r.shape[1:] != (gates * units, units):
        raise imp.error(
            node, f"W {list(w.shape)} and R {list(r.shape)} do not fit hidden_size {units}"
        )
    if b is not None and b.shape != (1, 2 * gates * units):
        raise imp.error(node, f"B has shape {list(b.shape)}; expected [1, {2 * gates * units}]")
    if imp.value(node, 4) is not None:
        raise imp.error(node, "sequence_lens is not supported: every sequence runs to the end")
    for k, what in ((5, "initial_h"), (6, "initial_c"), (7, "peepholes P")):
        _require_zero(imp, node, k, what)
    if imp.needed(node, 2):
        raise imp.error(node, "its cell state output Y_c is used; nnc's lstm returns h only")
    params = canonical_weights(op, w, r, b, units)
    steps = x.shape[0]
    first = True
    for k, sequences in ((0, True), (1, False)):
        if not imp.needed(node, k):
            continue
        # Both Y and Y_h used: two nnc layers share the weights (each has a copy).
        ref = imp.add(
            node if first else None,
            op,
            [x_ref],
            params={n: v.copy() for n, v in params.items()},
            units=units,
            return_sequences=sequences,
        )
        first = False
        if sequences:
            view = (
                Tensor(ref, (steps, 1, units), 2) if time_major else Tensor(ref, (steps, 1, units))
            )
        else:
            view = Tensor(ref, (1, units), 1) if time_major else Tensor(ref, (1, units))
        imp.set(node, view, k)


def _check_attributes(imp: Importer, node: onnx.NodeProto, a: dict[str, Any]) -> None:
    problems = [
        ("direction", a["direction"] != "forward", "nnc's recurrent layers run forward only"),
        (
            "activations",
            a["activations"] not in (None, DEFAULT_ACTIVATIONS[node.op_type]),
            f"nnc uses {DEFAULT_ACTIVATIONS[node.op_type]}",
        ),
        ("activation_alpha", a["activation_alpha"] is not None, "no activation takes one"),
        ("activation_beta", a["activation_beta"] is not None, "no activation takes one"),
        ("clip", a["clip"] is not None, "nnc does not clip cell inputs"),
        ("input_forget", a.get("input_forget", 0) != 0, "nnc's lstm has separate gates"),
        (
            "linear_before_reset",
            node.op_type == "GRU" and a["linear_before_reset"] != 1,
            "nnc's gru applies the reset after the recurrent matmul (linear_before_reset=1)",
        ),
        ("layout", a["layout"] not in (0, 1), "layout is 0 or 1"),
    ]
    for name, bad, why in problems:
        if bad:
            raise unsupported_value(imp, node, name, a[name], why)


def _require_zero(imp: Importer, node: onnx.NodeProto, k: int, what: str) -> None:
    value = imp.value(node, k)
    zero = (
        value is None
        or (isinstance(value, Fill) and value.value == 0.0)
        or (isinstance(value, Const) and not np.any(value.array))
    )
    if not zero:
        raise imp.error(node, f"{what} is not zero; nnc's recurrent layers start from zero state")


CONVERTERS: dict[str, Converter] = dict.fromkeys(NNC_OP, recurrent)
