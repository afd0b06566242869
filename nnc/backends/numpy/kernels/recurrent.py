"""Recurrent kernels over x [N, T, F]: the loop runs over time steps, never over samples.

Inside, every sequence is time-major ([T, N, ...]), so that one step is a contiguous
block. The input projection ``x W_ih^T + b`` of every step is one matrix product
before the loop. A step writes its gates and states straight into buffers allocated
once for the whole sequence (``out=``), and its sigmoid gates come from the same
``tanh`` call as its tanh gates: ``sigmoid(a) = (1 + tanh(a / 2)) / 2``, with the
halving folded into the projected inputs and the recurrent weights before the loop.
Backpropagation through time computes every step's local derivatives at once before
its loop, collects the pre-activation gradients of every step, and then gets the
weight and input gradients as single matrix products after it.

The gradient of the hidden states, ``d_states``, is either [N, T, H] (every state
is an output) or [N, H] (only h_T is: the other steps start from zero).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gru_backward",
    "gru_forward",
    "input_projection_gradients",
    "lstm_backward",
    "lstm_forward",
    "lstm_gate_order",
    "output_gradients",
    "previous_steps",
    "recurrent_weight_gradient",
    "rnn_backward",
    "rnn_forward",
    "sigmoid_halves",
    "time_major_projection",
]


def time_major_projection(x, weight, bias=None):
    """``x_t W^T + b`` for every step of x [N, T, F] as one matrix product, time-major
    [T, N, G]."""
    n, steps, features = x.shape
    rows = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(steps * n, features)
    projected = rows @ weight.T
    if bias is not None:
        projected += bias
    return projected.reshape(steps, n, -1)


def previous_steps(sequence):
    """h_{t-1} for every step of a time-major sequence [T, N, H]: zeros, then the
    sequence shifted by one step."""
    return np.concatenate([np.zeros_like(sequence[:1]), sequence[:-1]])


def sigmoid_halves(blocks, hidden, tanh_blocks, dtype):
    """The factor per gate column [blocks * hidden]: 1/2 for a sigmoid gate (its
    pre-activation is halved, and ``sigmoid(a) = tanh(a / 2) / 2 + 1/2``), 1 for the
    blocks in ``tanh_blocks``."""
    halves = np.full((blocks, hidden), 0.5, dtype=dtype)
    halves[list(tanh_blocks)] = 1.0
    return halves.reshape(-1)


def output_gradients(d_states):
    """(d h_T before the loop, the gradient of every step's output or None): d_states
    [N, T, H] becomes a time-major view added at every step; d h_T [N, H] starts the
    loop and no other step has an output gradient."""
    if d_states.ndim == 3:
        return np.zeros_like(d_states[:, -1]), d_states.transpose(1, 0, 2)
    return d_states.copy(), None


def input_projection_gradients(d_pre, x, weight_ih):
    """After the loop: (d_x, d_weight_ih, d_bias) from the gradients of the projected
    inputs of every step [T, N, G], one matrix product each."""
    steps, n, width = d_pre.shape
    rows = d_pre.reshape(steps * n, width)
    x_rows = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(steps * n, -1)
    d_x = (rows @ weight_ih).reshape(steps, n, -1).transpose(1, 0, 2)
    return d_x, rows.T @ x_rows, rows.sum(axis=0)


def recurrent_weight_gradient(d_pre, previous):
    """d W_hh from the gradients of the recurrent products [T, N, G] and the states
    they multiplied, h_{t-1} [T, N, H]: one matrix product."""
    steps, n, width = d_pre.shape
    return d_pre.reshape(steps * n, width).T @ previous.reshape(steps * n, -1)


# -- rnn ------------------------------------------------------------------------------


def rnn_forward(x, weight_ih, weight_hh, bias):
    """h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), h_0 = 0; returns every h_t [N, T, H]."""
    n, steps, _ = x.shape
    inputs = time_major_projection(x, weight_ih, bias)
    recurrent = weight_hh.T.copy()
    states = np.empty((steps, n, weight_hh.shape[0]), dtype=x.dtype)
    h = np.zeros((n, weight_hh.shape[0]), dtype=x.dtype)
    for t in range(steps):
        np.matmul(h, recurrent, out=states[t])
        states[t] += inputs[t]
        h = np.tanh(states[t], out=states[t])
    return states.transpose(1, 0, 2)


def rnn_backward(d_states, x, states, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias)."""
    states = states.transpose(1, 0, 2)  # time-major
    steps = states.shape[0]
    derivative = 1 - states * states  # tanh' of every step
    d_pre = np.empty_like(states)
    d_h, d_outputs = output_gradients(d_states)
    for t in reversed(range(steps)):
        if d_outputs is not None:
            d_h += d_outputs[t]
        np.multiply(d_h, derivative[t], out=d_pre[t])
        np.matmul(d_pre[t], weight_hh, out=d_h)
    d_x, d_weight_ih, d_bias = input_projection_gradients(d_pre, x, weight_ih)
    return d_x, d_weight_ih, recurrent_weight_gradient(d_pre, previous_steps(states)), d_bias


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
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t), h_0 = c_0 = 0.

    The loop works feature-major ([T, features, N]: a gate block is a run of rows), so
    every step's element-wise work runs over contiguous memory."""
    n, steps, _ = x.shape
    hidden = weight_hh.shape[1]
    halves = sigmoid_halves(4, hidden, tanh_blocks=[0], dtype=x.dtype)[:, None]
    x_steps = np.ascontiguousarray(x.transpose(1, 2, 0))  # [T, F, N]
    inputs = np.matmul(lstm_gate_order(weight_ih) * halves, x_steps)  # [T, 4H, N]
    inputs += lstm_gate_order(bias)[:, None] * halves
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
    return states.transpose(2, 0, 1), (x_steps, gates, cells, tanh_cells)


def lstm_backward(d_states, x, states, saved, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias)."""
    x_steps, gates, cells, tanh_cells = saved
    steps, hidden, _ = cells.shape
    g, i, f, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
    # Every step's local derivatives first, in d_pre: the loop multiplies them by d_c
    # (blocks g, i, f) and by d_h (block o) in place.
    d_pre = 1 - gates
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
    if d_states.ndim == 3:  # every h_t is an output
        d_outputs, d_h = d_states.transpose(1, 2, 0), np.zeros_like(cells[0])
    else:  # only h_T is
        d_outputs, d_h = None, d_states.T.copy()
    d_c = np.zeros_like(d_h)
    scratch = np.empty_like(d_c)
    cell_blocks = d_pre[:, : 3 * hidden].reshape(steps, 3, hidden, -1)
    recurrent_t = lstm_gate_order(weight_hh).T.copy()
    for t in reversed(range(steps)):
        if d_outputs is not None:
            d_h += d_outputs[t]
        d_c += np.multiply(d_h, to_cell[t], out=scratch)
        cell_blocks[t] *= d_c
        d_o[t] *= d_h
        d_c *= f[t]
        np.matmul(recurrent_t, d_pre[t], out=d_h)
    weight_ih = lstm_gate_order(weight_ih)
    previous = previous_steps(states.transpose(1, 2, 0))  # h_{t-1}, [T, H, N]
    d_weight_ih = np.matmul(d_pre, x_steps.transpose(0, 2, 1)).sum(axis=0)
    d_weight_hh = np.matmul(d_pre, previous.transpose(0, 2, 1)).sum(axis=0)
    d_x = np.matmul(weight_ih.T, d_pre).transpose(2, 0, 1)  # [N, T, F]
    return (
        d_x,
        lstm_gate_order(d_weight_ih, inverse=True),
        lstm_gate_order(d_weight_hh, inverse=True),
        lstm_gate_order(d_pre.sum(axis=(0, 2)), inverse=True),
    )


# -- gru ------------------------------------------------------------------------------


def gru_forward(x, weight_ih, weight_hh, bias_ih, bias_hh):
    """Every hidden state [N, T, H], and what the backward pass needs. Gates r, z, n
    with the reset applied after the recurrent product:
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h_t = (1 - z) n + z h_{t-1}."""
    n, steps, _ = x.shape
    hidden = weight_hh.shape[1]
    halves = sigmoid_halves(3, hidden, tanh_blocks=[2], dtype=x.dtype)
    inputs = time_major_projection(x, weight_ih * halves[:, None], bias_ih * halves)
    recurrent_weight = (weight_hh * halves[:, None]).T.copy()
    recurrent_bias = bias_hh * halves
    gates = np.empty((steps, n, 3 * hidden), dtype=x.dtype)  # r, z, n after activation
    recurrent = np.empty_like(gates)  # W_hh h_{t-1} + b_hh (r and z halved)
    states = np.empty((steps, n, hidden), dtype=x.dtype)
    h = np.zeros((n, hidden), dtype=x.dtype)
    for t in range(steps):
        np.matmul(h, recurrent_weight, out=recurrent[t])
        recurrent[t] += recurrent_bias
        reset_update = gates[t, :, : 2 * hidden]
        np.add(inputs[t, :, : 2 * hidden], recurrent[t, :, : 2 * hidden], out=reset_update)
        np.tanh(reset_update, out=reset_update)
        reset_update *= 0.5  # sigmoid from the tanh of the halved pre-activation
        reset_update += 0.5
        r, z = reset_update[:, :hidden], reset_update[:, hidden:]
        new = np.multiply(r, recurrent[t, :, 2 * hidden :], out=gates[t, :, 2 * hidden :])
        new += inputs[t, :, 2 * hidden :]
        np.tanh(new, out=new)
        h = np.subtract(h, new, out=states[t])
        h *= z
        h += new
    return states.transpose(1, 0, 2), (gates, recurrent[:, :, 2 * hidden :])


def gru_backward(d_states, x, states, saved, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh)."""
    gates, candidates = saved
    steps, n, hidden = candidates.shape
    previous = previous_steps(states.transpose(1, 0, 2))
    r, z = gates[:, :, :hidden], gates[:, :, hidden : 2 * hidden]
    new = gates[:, :, 2 * hidden :]
    # every step's local derivatives: d_n = d_h * to_new, d_z = d_h * to_update,
    # d_r = d_n * to_reset
    to_new = (1 - z) * (1 - new * new)
    to_update = (previous - new) * z * (1 - z)
    to_reset = candidates * r * (1 - r)
    d_input_pre = np.empty_like(gates)  # d(W_ih x_t + b_ih), gates r, z, n
    d_recurrent_pre = np.empty_like(gates)  # d(W_hh h_{t-1} + b_hh)
    d_h, d_outputs = output_gradients(d_states)
    scratch = np.empty_like(d_h)
    for t in reversed(range(steps)):
        if d_outputs is not None:
            d_h += d_outputs[t]
        d_new = np.multiply(d_h, to_new[t], out=d_input_pre[t, :, 2 * hidden :])
        np.multiply(d_h, to_update[t], out=d_recurrent_pre[t, :, hidden : 2 * hidden])
        np.multiply(d_new, to_reset[t], out=d_recurrent_pre[t, :, :hidden])
        np.multiply(d_new, r[t], out=d_recurrent_pre[t, :, 2 * hidden :])
        d_h *= z[t]
        d_h += np.matmul(d_recurrent_pre[t], weight_hh, out=scratch)
    d_input_pre[:, :, : 2 * hidden] = d_recurrent_pre[:, :, : 2 * hidden]
    d_x, d_weight_ih, d_bias_ih = input_projection_gradients(d_input_pre, x, weight_ih)
    d_weight_hh = recurrent_weight_gradient(d_recurrent_pre, previous)
    d_bias_hh = d_recurrent_pre.reshape(steps * n, -1).sum(axis=0)
    return d_x, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh
