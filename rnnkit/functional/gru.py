"""The GRU cell (Cho et al. 2014), forward and backward, as an entry of the generic recurrent layer.

    r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

PyTorch's formulation and layout: gates stacked r, z, n along the first axis of ``W_xh``
``(3H, I)`` and ``W_hh`` ``(3H, H)``, and two biases, ``b_xh`` and ``b_hh`` ``(3H,)``, since
``b_hn`` sits inside the reset product and cannot be merged into ``b_in``.

Letters: T time steps, B batch, I input features, H hidden units. Time-major.

The layer projects the inputs of all steps and gates in one product; per step the loop adds one
``(B, H) x (H, 3H)`` product. The gate buffer then holds ``r, z, n`` and a ``(T, B, H)`` array
``W_hn h_{t-1} + b_hn``, which BPTT needs for the reset gate's gradient. Because of that
product inside ``n``, the gradient of the recurrent pre-activations differs from the input
side's in the ``n`` block (``r`` times it), so BPTT fills two gate-gradient buffers.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from rnnkit import _native
from rnnkit.functional.activations import sigmoid_forward
from rnnkit.functional.activations import tanh_derivative as tanh_derivative_of
from rnnkit.functional.cells import BackwardBlock, Cell, GateScratch, entering_product, leaving_product
from rnnkit.functional.recurrent import (
    RecurrentCache,
    recurrent_layer_backward,
    recurrent_layer_forward,
    transposed_copy,
)

GATES = 3


def _scan_forward(gates: np.ndarray, states: np.ndarray, kept: tuple[np.ndarray], initial: tuple[np.ndarray],
                  W_hh: np.ndarray, biases: tuple[np.ndarray, np.ndarray], mask: np.ndarray | None,
                  first_padded: int, product_mask: np.ndarray | None = None) -> None:
    """The GRU's forward loop (see :class:`rnnkit.functional.cells.Cell`): ``gates`` ``(T, B, 3H)``
    holds ``W_xh x_t`` on entry and ``r, z, n`` on exit; ``states`` receives ``h_t`` and
    ``kept[0]`` ``W_hn h_{t-1} + b_hn``, both ``(T, B, H)``. ``product_mask`` ``(B, H)``:
    recurrent dropout on ``h_{t-1}`` in the product only; ``z * h_{t-1}`` reads it whole, as in
    Keras (NumPy loop)."""
    (hidden_n,) = kept
    hidden = states.shape[2]
    b_xh, b_hh = (np.ascontiguousarray(bias) for bias in biases)
    # A broadcast initial state (learned) has stride 0; BLAS would copy it on every step.
    h_prev = np.ascontiguousarray(initial[0])
    if product_mask is None and _native.gru_scan_forward(gates, states, hidden_n, h_prev, W_hh.T, b_xh, b_hh, mask,
                                                         first_padded):
        return
    W_hh_T = transposed_copy(W_hh)  # (H, 3H): OpenBLAS multiplies a contiguous copy faster than the view
    gates += b_xh
    recurrent = np.empty((gates.shape[1], GATES * hidden), dtype=gates.dtype)
    reset_update = slice(0, 2 * hidden)
    dropped = np.empty(states.shape[1:], dtype=states.dtype)
    # mask is None only without padding, when first_padded is T and no step reads it
    mask = cast(np.ndarray, mask)
    dot, tanh, multiply = np.dot, np.tanh, np.multiply
    for t in range(len(gates)):
        a, h = gates[t], states[t]
        dot(entering_product(h_prev, product_mask, dropped), W_hh_T, recurrent)
        recurrent += b_hh
        rz = a[:, reset_update]
        rz += recurrent[:, reset_update]
        sigmoid_forward(rz, out=rz)
        r, z, n = a[:, :hidden], a[:, hidden : 2 * hidden], a[:, 2 * hidden :]
        hn = hidden_n[t]
        hn[...] = recurrent[:, 2 * hidden :]
        multiply(r, hn, recurrent[:, 2 * hidden :])
        n += recurrent[:, 2 * hidden :]
        tanh(n, n)
        np.subtract(h_prev, n, h)  # h = n + z * (h_prev - n)
        h *= z
        h += n
        if t >= first_padded:
            h *= mask[t]
        h_prev = h


def _scan_backward(block: BackwardBlock[GateScratch], upstream: np.ndarray, extra_upstream: tuple,
                   carried: tuple[np.ndarray], W_hh: np.ndarray, bias_grads: tuple[np.ndarray, np.ndarray],
                   first_product: bool, product_mask: np.ndarray | None = None) -> None:
    """The GRU's BPTT loop over scan steps ``[block.start, block.stop)``, last step first.

    ``upstream`` ``(n, B, H)``: gradient reaching ``h_t`` from above; ``carried[0]`` the gradient
    flowing back from the step after the block, updated in place. ``block.grad`` receives the
    input side's ``dL/da`` (r, z, n) and ``block.grad_hidden`` the recurrent side's (the same
    but ``r * dL/da_n`` in the n block). ``product_mask``: the forward's recurrent dropout mask.
    """
    start, stop, scratch = block.start, block.stop, block.scratch
    n_steps, hidden = stop - start, upstream.shape[2]
    gates, states, hidden_n = block.gates[start:stop], block.states, block.kept[0]
    h_before = states[start - 1] if start > 0 else block.initial[0]
    (carried_h,) = carried
    db_xh, db_hh = bias_grads
    if product_mask is None and _native.gru_scan_backward(block.grad, block.grad_hidden, upstream, gates,
                                                          hidden_n[start:stop], states[start:stop], h_before, W_hh,
                                                          carried_h, db_xh, db_hh, first_product):
        return
    derivative = scratch.gate_derivatives(gates)
    dh, direct = scratch.rows
    multiply = np.multiply
    for k in range(n_steps - 1, -1, -1):
        t = start + k
        r, z, n = gates[k, :, :hidden], gates[k, :, hidden : 2 * hidden], gates[k, :, 2 * hidden :]
        gx, gh = block.grad[k], block.grad_hidden[k]
        gx_r, gx_z, gx_n = gx[:, :hidden], gx[:, hidden : 2 * hidden], gx[:, 2 * hidden :]
        np.add(upstream[k], carried_h, out=dh)
        multiply(dh, z, direct)  # what flows straight to h_{t-1} through z * h_{t-1}
        np.subtract(dh, direct, gx_n)  # dL/dn = dh (1 - z)
        gx_n *= derivative[k, :, 2 * hidden :]
        np.subtract(states[t - 1] if t > 0 else h_before, n, gx_z)  # dL/dz = dh (h_{t-1} - n)
        gx_z *= dh
        multiply(gx_n, hidden_n[t], gx_r)  # dL/dr = dL/da_n * (W_hn h_{t-1} + b_hn)
        gx[:, : 2 * hidden] *= derivative[k, :, : 2 * hidden]
        gh[:, : 2 * hidden] = gx[:, : 2 * hidden]
        multiply(gx_n, r, gh[:, 2 * hidden :])
        if t > 0 or first_product:
            leaving_product(gh, W_hh, product_mask, carried_h)
            carried_h += direct
    db_xh += block.grad.sum(axis=(0, 1))
    db_hh += block.grad_hidden.sum(axis=(0, 1))


def _make_scratch(steps: int, batch: int, hidden: int, dtype: np.dtype) -> GateScratch:
    return GateScratch(steps, batch, hidden, GATES, dtype)


GRU_CELL = Cell("gru", GATES, ("h",), ("b_xh", "b_hh"), ("hn",), True, _scan_forward, _scan_backward, _make_scratch)


def gru_forward(
    x: np.ndarray,
    h0: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b_xh: np.ndarray,
    b_hh: np.ndarray,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, RecurrentCache]:
    """Run the GRU, one direction, over a whole batch of sequences.

    Parameters
    ----------
    x : (T, B, I) inputs.
    h0 : (B, H) initial state.
    W_xh : (3H, I), W_hh : (3H, H), b_xh, b_hh : (3H,), gates stacked r, z, n.
    lengths : (B,) ints in 1..T, or None when every sequence has T steps.
    reverse : read each sequence from its last valid step back to step 0.

    Returns
    -------
    states : (T, B, H) ``h_t`` in input time order; exactly 0 at padding.
    h_n : (B, H) at step ``lengths[b] - 1`` going forward, at step 0 in reverse.
    cache : for :func:`gru_backward`.
    """
    states, (h_n,), cache = recurrent_layer_forward(
        GRU_CELL, x, (h0[None],), (W_xh,), (W_hh,), ((b_xh, b_hh),), lengths, (reverse,)
    )
    return states, h_n[0], cache


def gru_backward(
    dstates: np.ndarray, dh_n: np.ndarray | None, cache: RecurrentCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time for :func:`gru_forward`.

    dstates : (T, B, H) gradient arriving from above at every output state (padding ignored);
    dh_n : (B, H) or None for zeros.

    Returns ``dx`` (T, B, I), ``dh0`` (B, H), ``dW_xh`` (3H, I), ``dW_hh`` (3H, H), ``db_xh``,
    ``db_hh`` (3H,).
    """
    dx, dinitial, (dW_xh, dW_hh, db_xh, db_hh) = recurrent_layer_backward(
        dstates, (None if dh_n is None else dh_n[None],), cache
    )
    assert dx is not None and dinitial is not None  # input_grad and h0_grad are left True
    (dh0,) = dinitial
    return dx, dh0[0], dW_xh[0], dW_hh[0], db_xh[0], db_hh[0]


def gru_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, W_xh: np.ndarray, W_hh: np.ndarray, b_xh: np.ndarray, b_hh: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """One GRU step, for decoders that feed back their own outputs.

    x_t (B, I); h_prev (B, H). Returns ``h_t`` (B, H) and a cache for :func:`gru_step_backward`.
    """
    hidden = h_prev.shape[1]
    input_side, hidden_side = x_t @ W_xh.T + b_xh, h_prev @ W_hh.T + b_hh
    rz = sigmoid_forward(input_side[:, : 2 * hidden] + hidden_side[:, : 2 * hidden])
    r, z = rz[:, :hidden], rz[:, hidden:]
    hn = hidden_side[:, 2 * hidden :]
    n = np.tanh(input_side[:, 2 * hidden :] + r * hn)
    h_t = (1.0 - z) * n + z * h_prev
    return h_t, (x_t, h_prev, W_xh, W_hh, r, z, n, hn)


def gru_step_backward(
    dh_t: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`gru_step_forward`: returns ``dx_t, dh_prev, dW_xh, dW_hh, db_xh, db_hh``."""
    x_t, h_prev, W_xh, W_hh, r, z, n, hn = cache
    da_n = dh_t * (1.0 - z) * tanh_derivative_of(n)
    da_r = da_n * hn * r * (1.0 - r)
    da_z = dh_t * (h_prev - n) * z * (1.0 - z)
    input_side = np.concatenate([da_r, da_z, da_n], axis=1)
    hidden_side = np.concatenate([da_r, da_z, da_n * r], axis=1)
    dh_prev = dh_t * z + hidden_side @ W_hh
    return (input_side @ W_xh, dh_prev, input_side.T @ x_t, hidden_side.T @ h_prev, input_side.sum(axis=0),
            hidden_side.sum(axis=0))
