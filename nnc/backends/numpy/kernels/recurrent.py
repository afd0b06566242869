"""Recurrent kernels over x [N, T, F]: the loop runs over time steps, never over samples.

Inside, a sequence is feature-major, [T, features, N]: one step is a contiguous
block, and a gate block of it is a run of whole rows, so every step's element-wise
work runs over contiguous memory. The input projection ``W_ih x_t + b`` of every
step is one (batched) matrix product before the loop. A step writes its gates and
states straight into buffers allocated once for the whole sequence (``out=``), and
its sigmoid gates come from the same ``tanh`` call as its tanh gates:
``sigmoid(a) = (1 + tanh(a / 2)) / 2``, with the halving folded into the weights
before the loop. Backpropagation through time computes every step's local
derivatives at once before its loop, collects the pre-activation gradients of every
step, and gets the weight and input gradients as matrix products after it.

The gradient of the hidden states, ``d_states``, is either [N, T, H] (every state
is an output) or [N, H] (only h_T is: the other steps start from zero).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_gate_order",
    "previous_steps",
    "projection",
    "projection_gradients",
    "recurrent_weight_gradient",
    "rnn_backward",
    "rnn_forward",
    "sigmoid_halves",
    "state_gradients",
    "step_gradients",
]


def projection(x, weight, bias=None):
    """``W x_t + b`` for every step of x [N, T, F], feature-major [T, G, N]: one
    batched matrix product."""
    projected = np.matmul(weight, np.ascontiguousarray(x.transpose(1, 2, 0)))
    if bias is not None:
        projected += bias[:, None]
    return projected


def step_gradients(steps, rows, n, dtype):
    """A buffer for the gradients of every step, [rows, T*N], and its per-step view
    [T, rows, N]: after the loop, each weight gradient is one matrix product of it."""
    flat = np.empty((rows, steps * n), dtype=dtype)
    return flat, flat.reshape(rows, steps, n).transpose(1, 0, 2)


def projection_gradients(d_flat, x, weight):
    """The adjoint of ``projection``: (d_x [N, T, F], d_weight, d_bias) from the
    gradients of every step's projection, [G, T*N] (``step_gradients``)."""
    n, steps, features = x.shape
    x_flat = np.ascontiguousarray(x.transpose(2, 1, 0)).reshape(features, steps * n)
    d_x = (weight.T @ d_flat).reshape(features, steps, n).transpose(2, 1, 0)
    return d_x, d_flat @ x_flat.T, d_flat.sum(axis=1)


def recurrent_weight_gradient(d_flat, states):
    """d W_hh = sum_t d_t h_{t-1}^T: one matrix product of the gradients of every
    step's recurrent product [G, T*N] and the previous states (states [T, H, N])."""
    steps, hidden, n = states.shape
    previous = np.zeros((hidden, steps, n), dtype=states.dtype)  # h_0 = 0
    previous[:, 1:] = states[:-1].transpose(1, 0, 2)
    return d_flat @ previous.reshape(hidden, steps * n).T


def previous_steps(states):
    """h_{t-1} for every step of states [T, H, N]: zeros, then the states shifted by
    one step."""
    return np.concatenate([np.zeros_like(states[:1]), states[:-1]])


def state_gradients(d_states):
    """(d h_T before the loop [H, N], every step's output gradient [T, H, N] or None):
    d_states [N, T, H] is added at every step; d h_T [N, H] only starts the loop."""
    if d_states.ndim == 3:
        n, _, hidden = d_states.shape
        return np.zeros((hidden, n), dtype=d_states.dtype), d_states.transpose(1, 2, 0)
    return d_states.T.copy(), None


def sigmoid_halves(blocks, hidden, tanh_blocks, dtype):
    """The factor per gate row [blocks * hidden, 1]: 1/2 for a sigmoid gate (its
    pre-activation is halved, and ``sigmoid(a) = tanh(a / 2) / 2 + 1/2``), 1 for the
    blocks in ``tanh_blocks``."""
    halves = np.full((blocks, hidden), 0.5, dtype=dtype)
    halves[list(tanh_blocks)] = 1.0
    return halves.reshape(-1, 1)


# -- rnn ------------------------------------------------------------------------------


def rnn_forward(x, weight_ih, weight_hh, bias):
    """h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), h_0 = 0; returns every h_t [N, T, H]."""
    n, steps, _ = x.shape
    inputs = projection(x, weight_ih, bias)
    states = np.empty((steps, weight_hh.shape[0], n), dtype=x.dtype)
    h = np.zeros(states.shape[1:], dtype=x.dtype)
    for t in range(steps):
        np.matmul(weight_hh, h, out=states[t])
        states[t] += inputs[t]
        h = np.tanh(states[t], out=states[t])
    return states.transpose(2, 0, 1)


def rnn_backward(d_states, x, states, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias)."""
    states = states.transpose(1, 2, 0)  # [T, H, N]
    derivative = 1 - states * states  # tanh' of every step
    steps, hidden, n = states.shape
    d_flat, d_pre = step_gradients(steps, hidden, n, states.dtype)
    d_h, d_outputs = state_gradients(d_states)
    recurrent_t = weight_hh.T.copy()
    for t in reversed(range(steps)):
        if d_outputs is not None:
            d_h += d_outputs[t]
        np.multiply(d_h, derivative[t], out=d_pre[t])
        np.matmul(recurrent_t, d_pre[t], out=d_h)
    d_x, d_weight_ih, d_bias = projection_gradients(d_flat, x, weight_ih)
    return d_x, d_weight_ih, recurrent_weight_gradient(d_flat, states), d_bias


# -- lstm -----------------------------------------------------------------------------


def lstm_gate_order(weight, inverse=False):
    """Rows (or entries) of an LSTM weight [4H, ...] or bias [4H] in the kernels' order
    g, i, f, o (nnc's is i, f, g, o): the sigmoid gates are then one block, and the
    gates that the cell gradient multiplies are another. ``inverse`` orders back."""
    hidden = weight.shape[0] // 4
    order = [1, 2, 0, 3] if inverse else [2, 0, 1, 3]
    return weight.reshape(4, hidden, -1)[order].reshape(weight.shape)


def lstm_forward(x, weight_ih, weight_hh, bias):
    """Every hidden state [N, T, H], and what the backward pass needs. Gates i, f, g, o:
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t), h_0 = c_0 = 0."""
    n, steps, _ = x.shape
    hidden = weight_hh.shape[1]
    halves = sigmoid_halves(4, hidden, tanh_blocks=[0], dtype=x.dtype)
    inputs = projection(
        x, lstm_gate_order(weight_ih) * halves, lstm_gate_order(bias) * halves[:, 0]
    )
    recurrent = lstm_gate_order(weight_hh) * halves
    gates = np.empty((steps, 4 * hidden, n), dtype=x.dtype)  # g, i, f, o after activation
    cells = np.empty((steps, hidden, n), dtype=x.dtype)
    tanh_cells = np.empty_like(cells)
    states = np.empty_like(cells)
    h, c = np.zeros((hidden, n), dtype=x.dtype), np.zeros((hidden, n), dtype=x.dtype)
    update = np.empty_like(h)
    for t in range(steps):
        gate = gates[t]
        np.matmul(recurrent, h, out=gate)
        gate += inputs[t]
        np.tanh(gate, out=gate)
        sigmoids = gate[hidden:]  # i, f, o: tanh(a / 2) / 2 + 1/2
        sigmoids *= 0.5
        sigmoids += 0.5
        g, i = gate[:hidden], gate[hidden : 2 * hidden]
        f, o = gate[2 * hidden : 3 * hidden], gate[3 * hidden :]
        c = np.multiply(f, c, out=cells[t])
        c += np.multiply(i, g, out=update)
        h = np.multiply(o, np.tanh(c, out=tanh_cells[t]), out=states[t])
    return states.transpose(2, 0, 1), (gates, cells, tanh_cells)


def lstm_backward(d_states, x, states, saved, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias)."""
    gates, cells, tanh_cells = saved
    steps, hidden, n = cells.shape
    g, i, f, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
    # Every step's local derivatives first, in d_pre: the loop multiplies them by d_c
    # (blocks g, i, f) and by d_h (block o) in place.
    d_flat, d_pre = step_gradients(steps, 4 * hidden, n, dtype=gates.dtype)
    np.subtract(1, gates, out=d_pre)
    d_pre *= gates  # sigmoid' of i, f, o
    d_g, d_i, d_f, d_o = (d_pre[:, k * hidden : (k + 1) * hidden] for k in range(4))
    np.multiply(g, g, out=d_g)
    np.subtract(1, d_g, out=d_g)  # tanh' of g
    d_g *= i
    d_i *= g
    d_f[1:] *= cells[:-1]
    d_f[0] = 0  # c_0 = 0
    d_o *= tanh_cells
    to_cell = tanh_cells * tanh_cells
    np.subtract(1, to_cell, out=to_cell)
    to_cell *= o  # d c_t / d h_t
    d_h, d_outputs = state_gradients(d_states)
    d_c = np.zeros_like(d_h)
    scratch = np.empty_like(d_c)
    cell_blocks = d_flat[: 3 * hidden].reshape(3, hidden, steps, n).transpose(2, 0, 1, 3)
    recurrent_t = lstm_gate_order(weight_hh).T.copy()
    for t in reversed(range(steps)):
        if d_outputs is not None:
            d_h += d_outputs[t]
        d_c += np.multiply(d_h, to_cell[t], out=scratch)
        cell_blocks[t] *= d_c
        d_o[t] *= d_h
        d_c *= f[t]
        np.matmul(recurrent_t, d_pre[t], out=d_h)
    d_x, d_weight_ih, d_bias = projection_gradients(d_flat, x, lstm_gate_order(weight_ih))
    d_weight_hh = recurrent_weight_gradient(d_flat, states.transpose(1, 2, 0))
    return (
        d_x,
        lstm_gate_order(d_weight_ih, inverse=True),
        lstm_gate_order(d_weight_hh, inverse=True),
        lstm_gate_order(d_bias, inverse=True),
    )


# -- gru ------------------------------------------------------------------------------


def gru_forward(x, weight_ih, weight_hh, bias_ih, bias_hh):
    """Every hidden state [N, T, H], and what the backward pass needs. Gates r, z, n
    with the reset applied after the recurrent product:
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h_t = (1 - z) n + z h_{t-1}."""
    n, steps, _ = x.shape
    hidden = weight_hh.shape[1]
    halves = sigmoid_halves(3, hidden, tanh_blocks=[2], dtype=x.dtype)
    inputs = projection(x, weight_ih * halves, bias_ih * halves[:, 0])
    recurrent_weight, recurrent_bias = weight_hh * halves, bias_hh[:, None] * halves
    gates = np.empty((steps, 3 * hidden, n), dtype=x.dtype)  # r, z, n after activation
    recurrent = np.empty_like(gates)  # W_hh h_{t-1} + b_hh (r and z halved)
    states = np.empty((steps, hidden, n), dtype=x.dtype)
    h = np.zeros((hidden, n), dtype=x.dtype)
    for t in range(steps):
        np.matmul(recurrent_weight, h, out=recurrent[t])
        recurrent[t] += recurrent_bias
        reset_update = np.add(
            inputs[t, : 2 * hidden], recurrent[t, : 2 * hidden], out=gates[t, : 2 * hidden]
        )
        np.tanh(reset_update, out=reset_update)
        reset_update *= 0.5  # r, z: tanh(a / 2) / 2 + 1/2
        reset_update += 0.5
        r, z = reset_update[:hidden], reset_update[hidden:]
        new = np.multiply(r, recurrent[t, 2 * hidden :], out=gates[t, 2 * hidden :])
        new += inputs[t, 2 * hidden :]
        np.tanh(new, out=new)
        h = np.subtract(h, new, out=states[t])
        h *= z
        h += new
    return states.transpose(2, 0, 1), (gates, recurrent[:, 2 * hidden :])


def gru_backward(d_states, x, states, saved, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh)."""
    gates, candidates = saved
    hidden = candidates.shape[1]
    previous = previous_steps(states.transpose(1, 2, 0))
    r, z = gates[:, :hidden], gates[:, hidden : 2 * hidden]
    new = gates[:, 2 * hidden :]
    # every step's local derivatives: d_n = d_h * to_new, d_z = d_h * to_update,
    # d_r = d_n * to_reset
    to_new = (1 - z) * (1 - new * new)
    to_update = (previous - new) * z * (1 - z)
    to_reset = candidates * r * (1 - r)
    steps, _, n = gates.shape
    d_input_flat, d_input_pre = step_gradients(
        steps, 3 * hidden, n, gates.dtype
    )  # d(W_ih x_t + b_ih)
    d_recurrent_flat, d_recurrent_pre = step_gradients(
        steps, 3 * hidden, n, gates.dtype
    )  # d(W_hh h_{t-1} + b_hh)
    d_h, d_outputs = state_gradients(d_states)
    scratch = np.empty_like(d_h)
    recurrent_t = weight_hh.T.copy()
    for t in reversed(range(len(gates))):
        if d_outputs is not None:
            d_h += d_outputs[t]
        d_new = np.multiply(d_h, to_new[t], out=d_input_pre[t, 2 * hidden :])
        np.multiply(d_h, to_update[t], out=d_recurrent_pre[t, hidden : 2 * hidden])
        np.multiply(d_new, to_reset[t], out=d_recurrent_pre[t, :hidden])
        np.multiply(d_new, r[t], out=d_recurrent_pre[t, 2 * hidden :])
        d_h *= z[t]
        d_h += np.matmul(recurrent_t, d_recurrent_pre[t], out=scratch)
    d_input_flat[: 2 * hidden] = d_recurrent_flat[: 2 * hidden]
    d_x, d_weight_ih, d_bias_ih = projection_gradients(d_input_flat, x, weight_ih)
    d_weight_hh = recurrent_weight_gradient(d_recurrent_flat, states.transpose(1, 2, 0))
    return d_x, d_weight_ih, d_weight_hh, d_bias_ih, d_recurrent_flat.sum(axis=1)
