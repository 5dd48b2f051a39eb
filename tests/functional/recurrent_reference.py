"""The straightforward recurrence, kept as the reference the optimized path is tested against.

This is rnnkit's original one-direction implementation (before the performance work of issue 3):
every direction scanned separately, the reverse direction by flipping copies of its inputs and
outputs, the activation derivative for all steps in one array. The library's fast path must
reproduce it to 1e-10 in float64 for every nonlinearity, length pattern and direction.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.functional.activations import Activation, get_activation


def flip_sequences(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse the first ``lengths[b]`` steps of every sequence; padding stays at the end.

    x: ``(T, B, ...)``; lengths: ``(B,)`` ints in ``1..T`` or ``None`` (all full). Returns a new
    array. The map is its own inverse, so the same call flips back.

    Example, T = 4, lengths = [2, 4], features omitted::

        x[:, 0] = [a, b, _, _]   ->   [b, a, _, _]
        x[:, 1] = [p, q, r, s]   ->   [s, r, q, p]

    Index ``(T - 1 - t + lengths[b]) % T`` sends valid step ``t`` to ``lengths[b] - 1 - t`` and
    keeps padding among padding positions.
    """
    steps = x.shape[0]
    if lengths is None:
        return x[::-1].copy()
    time_index = (np.arange(steps - 1, -1, -1)[:, None] + lengths[None, :]) % steps
    return x[time_index, np.arange(x.shape[1])[None, :]]


def valid_mask(lengths: np.ndarray | None, steps: int, dtype: np.dtype) -> np.ndarray | None:
    """``(T, B, 1)`` array of ones at valid steps and zeros at padding, or ``None`` if no padding."""
    if lengths is None:
        return None
    return (np.arange(steps)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def last_valid(states: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Gather ``states[lengths[b] - 1, b]`` for every ``b``: ``(T, B, H) -> (B, H)``."""
    if lengths is None:
        return states[-1].copy()
    return states[lengths - 1, np.arange(states.shape[1])]


class RecurrentCache(NamedTuple):
    """What BPTT needs from the forward pass. States are kept in scan order (reversed for the
    reverse direction) so the backward loop never has to flip them again."""

    x: np.ndarray  # (T, B, I), scan order
    h0: np.ndarray  # (B, H)
    W_xh: np.ndarray  # (H, I)
    W_hh: np.ndarray  # (H, H)
    states: np.ndarray  # (T, B, H), scan order, zero at padding
    activation: Activation
    lengths: np.ndarray | None
    reverse: bool


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b_h: np.ndarray,
    nonlinearity: str = "tanh",
    lengths: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, RecurrentCache]:
    """Run the recurrence over a whole batch of sequences.

    Parameters
    ----------
    x : (T, B, I) inputs.
    h0 : (B, H) initial state.
    W_xh : (H, I) input-to-hidden weights.
    W_hh : (H, H) hidden-to-hidden weights.
    b_h : (H,) bias.
    nonlinearity : "tanh", "sigmoid" or "relu".
    lengths : (B,) ints in 1..T, or None when every sequence has T steps.
    reverse : read each sequence from its last valid step back to step 0.

    Returns
    -------
    states : (T, B, H) the state after each step, in input time order; exactly 0 at padding.
    h_n : (B, H) the final state: at step ``lengths[b] - 1`` going forward, at step 0 in reverse.
    cache : for :func:`rnn_backward`.
    """
    activation = get_activation(nonlinearity)
    x_scan = flip_sequences(x, lengths) if reverse else x
    steps, batch, _ = x.shape
    hidden = W_hh.shape[0]

    states = np.empty((steps, batch, hidden), dtype=x.dtype)
    np.dot(x_scan.reshape(steps * batch, -1), W_xh.T, out=states.reshape(steps * batch, hidden))
    states += b_h
    _scan_forward(states, h0, W_hh, activation, lengths)

    h_n = last_valid(states, lengths)
    cache = RecurrentCache(x_scan, h0, W_xh, W_hh, states, activation, lengths, reverse)
    return (flip_sequences(states, lengths) if reverse else states), h_n, cache


def _scan_forward(
    states: np.ndarray,
    h0: np.ndarray,
    W_hh: np.ndarray,
    activation: Activation,
    lengths: np.ndarray | None,
) -> None:
    """Turn pre-activations ``(T, B, H)`` holding ``W_xh x_t + b_h`` into states, in place."""
    recurrent = np.empty_like(states[0])
    W_hh_T = W_hh.T  # a transposed view: BLAS reads it with a flag, no copy
    mask = valid_mask(lengths, states.shape[0], states.dtype)
    first_padded = states.shape[0] if lengths is None else int(lengths.min())
    h_prev = h0
    for t in range(states.shape[0]):
        h_t = states[t]
        np.dot(h_prev, W_hh_T, out=recurrent)
        h_t += recurrent
        activation.forward(h_t, out=h_t)
        if t >= first_padded:
            h_t *= mask[t]
        h_prev = h_t


def rnn_backward(
    dstates: np.ndarray, dh_n: np.ndarray | None, cache: RecurrentCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time for :func:`rnn_forward`.

    Parameters
    ----------
    dstates : (T, B, H) gradient of the loss with respect to every output state, in input time
        order. It holds only the gradient arriving *from above* at each step; the part arriving
        back through time from step ``t + 1`` is added here. Values at padding are ignored.
    dh_n : (B, H) gradient with respect to ``h_n``, or None for zeros.
    cache : from :func:`rnn_forward`.

    Returns
    -------
    dx : (T, B, I), zero at padding.
    dh0 : (B, H).
    dW_xh : (H, I).
    dW_hh : (H, H).
    db_h : (H,).
    """
    x, h0, W_xh, W_hh, states, activation, lengths, reverse = cache
    steps, batch, hidden = states.shape

    # A fresh buffer in scan order; it becomes dL/da_t (the pre-activation gradient) in place.
    if reverse:
        grad = flip_sequences(dstates, lengths)
    else:
        grad = np.array(dstates, dtype=states.dtype, copy=True)
    mask = valid_mask(lengths, steps, states.dtype)
    if mask is not None:
        grad *= mask  # padding contributes nothing, whatever the caller passed there
    if dh_n is not None:
        if lengths is None:
            grad[-1] += dh_n
        else:
            grad[lengths - 1, np.arange(batch)] += dh_n

    dh0 = _scan_backward(grad, states, W_hh, activation)

    flat_grad = grad.reshape(steps * batch, hidden)
    dW_xh = flat_grad.T @ x.reshape(steps * batch, -1)
    dW_hh = grad[0].T @ h0
    if steps > 1:
        dW_hh += grad[1:].reshape(-1, hidden).T @ states[:-1].reshape(-1, hidden)
    db_h = flat_grad.sum(axis=0)
    dx = (flat_grad @ W_xh).reshape(x.shape)
    if reverse:
        dx = flip_sequences(dx, lengths)
    return dx, dh0, dW_xh, dW_hh, db_h


def _scan_backward(
    grad: np.ndarray, states: np.ndarray, W_hh: np.ndarray, activation: Activation
) -> np.ndarray:
    """Carry the gradient back through time, in place; returns ``dL/dh0`` ``(B, H)``.

    On entry ``grad[t]`` holds the gradient reaching state ``t`` from above; on exit it holds
    ``dL/da_t``. At padding both the upstream gradient and everything arriving from later
    (padded) steps are zero, so the padded suffix stays zero without a mask in the loop.
    """
    derivative = activation.derivative(states)  # all steps at once
    carried = np.zeros_like(states[0])
    for t in range(states.shape[0] - 1, -1, -1):
        g_t = grad[t]
        g_t += carried
        g_t *= derivative[t]
        np.dot(g_t, W_hh, out=carried)
    return carried
