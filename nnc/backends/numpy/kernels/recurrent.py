"""Recurrent kernels over x [N, T, F]: the loop runs over time steps, never over samples.

The input projection ``x W_ih^T + b`` of every step is one matrix product before the
loop; backpropagation through time collects the pre-activation gradients of every
step, so the weight and input gradients are again single matrix products after it.
"""

from __future__ import annotations

import numpy as np

from nnc.backends.numpy.kernels.core import sigmoid

__all__ = [
    "gru_backward",
    "gru_forward",
    "gru_step",
    "last_state_gradient",
    "lstm_backward",
    "lstm_forward",
    "lstm_step",
    "previous_states",
    "rnn_backward",
    "rnn_forward",
]


def last_state_gradient(d_output, states):
    """The gradient of every hidden state [N, T, H] when only h_T is an output: zero
    but at the last step."""
    d_states = np.zeros_like(states)
    d_states[:, -1] = d_output
    return d_states


def previous_states(states):
    """h_{t-1} for every step: zeros, then the states shifted by one step."""
    return np.concatenate([np.zeros_like(states[:, :1]), states[:, :-1]], axis=1)


def rnn_forward(x, weight_ih, weight_hh, bias):
    """h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), h_0 = 0; returns every h_t [N, T, H]."""
    n, steps, _ = x.shape
    inputs = x @ weight_ih.T + bias
    states = np.empty((n, steps, weight_hh.shape[0]), dtype=x.dtype)
    h = np.zeros((n, weight_hh.shape[0]), dtype=x.dtype)
    for t in range(steps):
        h = np.tanh(inputs[:, t] + h @ weight_hh.T)
        states[:, t] = h
    return states


def rnn_backward(d_states, x, states, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias)."""
    n, steps, hidden = states.shape
    d_pre = np.empty_like(states)
    d_h = np.zeros((n, hidden), dtype=states.dtype)
    for t in reversed(range(steps)):
        d_pre[:, t] = (d_states[:, t] + d_h) * (1 - states[:, t] ** 2)
        d_h = d_pre[:, t] @ weight_hh
    rows = d_pre.reshape(n * steps, hidden)
    d_weight_ih = rows.T @ x.reshape(n * steps, -1)
    d_weight_hh = rows.T @ previous_states(states).reshape(n * steps, hidden)
    return d_pre @ weight_ih, d_weight_ih, d_weight_hh, rows.sum(axis=0)


def lstm_step(inputs_t, h, c, weight_hh):
    """One LSTM step from the projected input ``W_ih x_t + b``; gates in order i, f, g, o.
    Returns the new h and c and the activated gates [N, 4H]."""
    hidden = h.shape[1]
    pre = inputs_t + h @ weight_hh.T
    gates = sigmoid(pre)  # i, f and o; the g block is replaced by its tanh
    gates[:, 2 * hidden : 3 * hidden] = np.tanh(pre[:, 2 * hidden : 3 * hidden])
    i, f = gates[:, :hidden], gates[:, hidden : 2 * hidden]
    g, o = gates[:, 2 * hidden : 3 * hidden], gates[:, 3 * hidden :]
    c = f * c + i * g
    return o * np.tanh(c), c, gates


def lstm_forward(x, weight_ih, weight_hh, bias):
    """Every hidden state [N, T, H], and (cells, gates) for the backward pass."""
    n, steps, _ = x.shape
    hidden = weight_hh.shape[1]
    inputs = x @ weight_ih.T + bias
    states = np.empty((n, steps, hidden), dtype=x.dtype)
    cells = np.empty((n, steps, hidden), dtype=x.dtype)
    gates = np.empty((n, steps, 4 * hidden), dtype=x.dtype)
    h = np.zeros((n, hidden), dtype=x.dtype)
    c = np.zeros((n, hidden), dtype=x.dtype)
    for t in range(steps):
        h, c, gates[:, t] = lstm_step(inputs[:, t], h, c, weight_hh)
        states[:, t], cells[:, t] = h, c
    return states, (cells, gates)


def lstm_backward(d_states, x, states, saved, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias)."""
    cells, gates = saved
    n, steps, hidden = states.shape
    d_pre = np.empty_like(gates)
    d_h = np.zeros((n, hidden), dtype=states.dtype)
    d_c = np.zeros((n, hidden), dtype=states.dtype)
    for t in reversed(range(steps)):
        i, f = gates[:, t, :hidden], gates[:, t, hidden : 2 * hidden]
        g, o = gates[:, t, 2 * hidden : 3 * hidden], gates[:, t, 3 * hidden :]
        c_prev = cells[:, t - 1] if t > 0 else np.zeros_like(d_c)
        tanh_c = np.tanh(cells[:, t])
        d_h = d_h + d_states[:, t]
        d_c = d_c + d_h * o * (1 - tanh_c**2)
        d_pre[:, t, :hidden] = d_c * g * i * (1 - i)
        d_pre[:, t, hidden : 2 * hidden] = d_c * c_prev * f * (1 - f)
        d_pre[:, t, 2 * hidden : 3 * hidden] = d_c * i * (1 - g**2)
        d_pre[:, t, 3 * hidden :] = d_h * tanh_c * o * (1 - o)
        d_c = d_c * f
        d_h = d_pre[:, t] @ weight_hh
    rows = d_pre.reshape(n * steps, 4 * hidden)
    d_weight_ih = rows.T @ x.reshape(n * steps, -1)
    d_weight_hh = rows.T @ previous_states(states).reshape(n * steps, hidden)
    return d_pre @ weight_ih, d_weight_ih, d_weight_hh, rows.sum(axis=0)


def gru_step(inputs_t, h, weight_hh, bias_hh):
    """One GRU step from the projected input ``W_ih x_t + b_ih``; gates r, z, n with the
    reset applied after the recurrent product. Returns the new h, the gates r, z, n
    [N, 3H] and the recurrent candidate term ``W_hn h + b_hn`` [N, H]."""
    hidden = h.shape[1]
    recurrent = h @ weight_hh.T + bias_hh
    r = sigmoid(inputs_t[:, :hidden] + recurrent[:, :hidden])
    z = sigmoid(inputs_t[:, hidden : 2 * hidden] + recurrent[:, hidden : 2 * hidden])
    candidate = recurrent[:, 2 * hidden :]
    new = np.tanh(inputs_t[:, 2 * hidden :] + r * candidate)
    return (1 - z) * new + z * h, np.concatenate([r, z, new], axis=1), candidate


def gru_forward(x, weight_ih, weight_hh, bias_ih, bias_hh):
    """Every hidden state [N, T, H], and (gates, candidates) for the backward pass."""
    n, steps, _ = x.shape
    hidden = weight_hh.shape[1]
    inputs = x @ weight_ih.T + bias_ih
    states = np.empty((n, steps, hidden), dtype=x.dtype)
    gates = np.empty((n, steps, 3 * hidden), dtype=x.dtype)
    candidates = np.empty((n, steps, hidden), dtype=x.dtype)
    h = np.zeros((n, hidden), dtype=x.dtype)
    for t in range(steps):
        h, gates[:, t], candidates[:, t] = gru_step(inputs[:, t], h, weight_hh, bias_hh)
        states[:, t] = h
    return states, (gates, candidates)


def gru_backward(d_states, x, states, saved, weight_ih, weight_hh):
    """Backpropagation through time: (d_x, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh)."""
    gates, candidates = saved
    n, steps, hidden = states.shape
    d_input_pre = np.empty_like(gates)  # d(W_ih x_t + b_ih), gates r, z, n
    d_recurrent_pre = np.empty_like(gates)  # d(W_hh h_{t-1} + b_hh)
    previous = previous_states(states)
    d_h = np.zeros((n, hidden), dtype=states.dtype)
    for t in reversed(range(steps)):
        r, z = gates[:, t, :hidden], gates[:, t, hidden : 2 * hidden]
        cand = gates[:, t, 2 * hidden :]
        d_h = d_h + d_states[:, t]
        d_cand = d_h * (1 - z) * (1 - cand**2)
        d_r = d_cand * candidates[:, t] * r * (1 - r)
        d_z = d_h * (previous[:, t] - cand) * z * (1 - z)
        d_input_pre[:, t] = np.concatenate([d_r, d_z, d_cand], axis=1)
        d_recurrent_pre[:, t] = np.concatenate([d_r, d_z, d_cand * r], axis=1)
        d_h = d_h * z + d_recurrent_pre[:, t] @ weight_hh
    input_rows = d_input_pre.reshape(n * steps, 3 * hidden)
    recurrent_rows = d_recurrent_pre.reshape(n * steps, 3 * hidden)
    d_weight_ih = input_rows.T @ x.reshape(n * steps, -1)
    d_weight_hh = recurrent_rows.T @ previous.reshape(n * steps, hidden)
    return (
        d_input_pre @ weight_ih,
        d_weight_ih,
        d_weight_hh,
        input_rows.sum(axis=0),
        recurrent_rows.sum(axis=0),
    )
