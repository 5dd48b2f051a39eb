"""The LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000),
forward and backward, as an entry of the generic recurrent layer.

    [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](W_xh x_t + W_hh h_{t-1} + b_h)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Gates are stacked i, f, g, o along the first axis of ``W_xh`` ``(4H, I)``, ``W_hh`` ``(4H, H)``
and ``b_h`` ``(4H,)``: PyTorch's layout, with its two biases summed into one.

Letters: T time steps, B batch, I input features, H hidden units. Time-major.

The layer (``recurrent.recurrent_layer_forward``) projects the inputs of all steps and all four
gates in one matrix product; per step the loop below adds one ``(B, H) x (H, 4H)`` product and
evaluates the four gate nonlinearities as one pass over the ``(B, 4H)`` row (the sigmoids as
``(1 + tanh(a / 2)) / 2``, so one tanh call serves all gates). The gate buffer then holds the
activations ``i, f, g, o``, and a ``(T, B, H)`` array the cell states ``c``: all BPTT needs.
BPTT evaluates the gate derivatives and ``tanh(c_t)`` for a whole block of steps at once and
keeps per step only what the recurrence forces: the cell-state chain and one product through
``W_hh``.
"""

from __future__ import annotations

from functools import cached_property
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

GATES = 4


def _gate_constants(hidden: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` rows ``(4H,)``: with them ``scale * tanh(scale * a) + shift`` is the
    sigmoid on the i, f, o blocks (scale 1/2, shift 1/2) and tanh on the g block (1, 0)."""
    scale = np.full(GATES * hidden, 0.5, dtype=dtype)
    scale[2 * hidden : 3 * hidden] = 1.0
    return scale, 1.0 - scale


def _scan_forward(gates: np.ndarray, states: np.ndarray, kept: tuple[np.ndarray, ...], initial: tuple[np.ndarray, ...],
                  W_hh: np.ndarray, biases: tuple[np.ndarray, ...], mask: np.ndarray | None, first_padded: int,
                  product_mask: np.ndarray | None = None) -> None:
    """The LSTM's forward loop (see :class:`rnnkit.functional.cells.Cell`): ``gates`` ``(T, B, 4H)``
    holds ``W_xh x_t`` on entry and ``i, f, g, o`` on exit; ``states`` receives ``h_t`` and
    ``kept[0]`` the cell states ``c_t``; ``initial`` is ``(h0, c0)``. ``product_mask`` ``(B, H)``:
    recurrent dropout on ``h_{t-1}`` in the product (NumPy loop).

    With a projection (``biases`` ``(b_h, W_hr)``, :data:`PROJECTED_LSTM_CELL`) ``h_t = W_hr r_t``
    is ``(T, B, P)`` and ``kept[1]`` receives ``r_t = o * tanh(c_t)``, ``(T, B, H)``."""
    cells = kept[0]
    hidden = cells.shape[2]
    projection = biases[1] if len(biases) > 1 else None
    # A broadcast initial state (learned) has stride 0; BLAS would copy it on every step.
    h_prev, c_prev = (np.ascontiguousarray(state) for state in initial)
    if product_mask is None and projection is None and _native.lstm_scan_forward(
            gates, states, cells, h_prev, c_prev, W_hh.T, np.ascontiguousarray(biases[0]), mask, first_padded):
        return
    W_hh_T = transposed_copy(W_hh)  # (H, 4H): OpenBLAS multiplies a contiguous copy faster than the view
    W_hr_T = None if projection is None else transposed_copy(projection)
    scale, shift = _gate_constants(hidden, gates.dtype)
    gates += biases[0]
    recurrent = np.empty((gates.shape[1], GATES * hidden), dtype=gates.dtype)
    product = np.empty(cells.shape[1:], dtype=cells.dtype)
    dropped, projected = np.empty(states.shape[1:], dtype=states.dtype), np.empty(states.shape[1:], dtype=states.dtype)
    # mask is None only without padding, when first_padded is T and no step reads it
    mask = cast(np.ndarray, mask)
    dot, tanh, multiply = np.dot, np.tanh, np.multiply
    for t in range(len(gates)):
        a, c, h = gates[t], cells[t], states[t]
        dot(entering_product(h_prev, product_mask, dropped), W_hh_T, recurrent)
        a += recurrent
        a *= scale
        tanh(a, a)
        a *= scale
        a += shift
        i, f, g, o = (a[:, k * hidden : (k + 1) * hidden] for k in range(GATES))
        multiply(f, c_prev, c)
        multiply(i, g, product)
        c += product
        tanh(c, product)
        if W_hr_T is None:
            multiply(o, product, h)
        else:
            r = multiply(o, product, kept[1][t])
            h[...] = dot(r, W_hr_T, projected)  # h may be a direction's columns of the layer output
        if t >= first_padded:
            c *= mask[t]
            h *= mask[t]
        h_prev, c_prev = h, c


class _Scratch(GateScratch):
    """:class:`GateScratch` and ``tanh(c_t)`` of a block with its derivative."""

    @cached_property
    def tanh_cells(self) -> np.ndarray:
        return np.empty((self.steps, self.batch, self.hidden), self.dtype)

    @cached_property
    def tanh_derivative(self) -> np.ndarray:
        return np.empty((self.steps, self.batch, self.hidden), self.dtype)

    def projected_grads(self, width: int) -> np.ndarray:
        """``dL/dh_t`` ``(steps, B, P)`` of a block, for the projection's ``dW_hr`` product."""
        grads = self.__dict__.get("_projected")
        if grads is None or grads.shape[2] != width:
            grads = self.__dict__["_projected"] = np.empty((self.steps, self.batch, width), self.dtype)
        return grads


def _scan_backward(block: BackwardBlock[_Scratch], upstream: np.ndarray,
                   extra_upstream: tuple[np.ndarray | None], carried: tuple[np.ndarray, np.ndarray],
                   W_hh: np.ndarray, bias_grads: tuple[np.ndarray, ...], first_product: bool,
                   product_mask: np.ndarray | None = None) -> None:
    """The LSTM's BPTT loop over scan steps ``[block.start, block.stop)``, last step first.

    ``upstream`` ``(n, B, H)``: gradient reaching ``h_t`` from above; ``extra_upstream[0]``, if
    not None, the gradient reaching ``c_t`` from outside (``dc_n`` at each final step).
    ``carried`` ``(dh, dc)`` flowing back from the step after the block, updated in place to
    what flows on to the step before it. ``block.grad`` receives ``dL/da`` of the four gates.
    ``product_mask``: the forward's recurrent dropout mask (NumPy loop). With a projection,
    ``upstream`` and ``carried[0]`` are ``P`` wide and ``dW_hr`` (``bias_grads[1]``) takes one
    product over the block's steps after the loop.
    """
    start, stop, scratch = block.start, block.stop, block.scratch
    n = stop - start
    gates, cells = block.gates[start:stop], block.kept[0]
    hidden = cells.shape[2]
    projection = block.biases[1] if len(bias_grads) > 1 else None
    dc_upstream = extra_upstream[0]
    carried_h, carried_c = carried
    db_h = bias_grads[0]
    c_before = cells[start - 1] if start > 0 else block.initial[1]
    if product_mask is None and projection is None and _native.lstm_scan_backward(
            block.grad, upstream, dc_upstream, gates, cells[start:stop], c_before, W_hh, carried_h, carried_c, db_h,
            first_product):
        return
    derivative = scratch.gate_derivatives(gates)
    tanh_cells = np.tanh(cells[start:stop], out=scratch.tanh_cells[:n])
    tanh_derivative = tanh_derivative_of(tanh_cells, out=scratch.tanh_derivative[:n])
    # with a projection: each step's dL/dh_t, kept for the dW_hr product
    dh_block = None if projection is None else scratch.projected_grads(upstream.shape[2])[:n]
    dh, dc = scratch.rows  # dh: the gradient reaching o * tanh(c_t) (through W_hr with a projection)
    multiply, dot = np.multiply, np.dot
    for k in range(n - 1, -1, -1):
        t = start + k
        i, f, g, o = (gates[k, :, j * hidden : (j + 1) * hidden] for j in range(GATES))
        da = block.grad[k]
        da_i, da_f, da_g, da_o = (da[:, j * hidden : (j + 1) * hidden] for j in range(GATES))
        if projection is None or dh_block is None:
            np.add(upstream[k], carried_h, out=dh)
        else:
            dot(np.add(upstream[k], carried_h, out=dh_block[k]), projection, dh)
        multiply(dh, tanh_cells[k], da_o)
        multiply(dh, o, dc)
        dc *= tanh_derivative[k]
        dc += carried_c
        if dc_upstream is not None:
            dc += dc_upstream[k]
        multiply(dc, g, da_i)
        multiply(dc, cells[t - 1] if t > 0 else c_before, da_f)
        multiply(dc, i, da_g)
        multiply(dc, f, carried_c)
        da *= derivative[k]
        if t > 0 or first_product:
            leaving_product(da, W_hh, product_mask, carried_h)
    db_h += block.grad.sum(axis=(0, 1))
    if dh_block is not None:
        dW_hr = bias_grads[1]
        dW_hr += dh_block.reshape(-1, dh_block.shape[2]).T @ block.kept[1][start:stop].reshape(-1, hidden)


def _make_scratch(steps: int, batch: int, hidden: int, dtype: np.dtype) -> _Scratch:
    return _Scratch(steps, batch, hidden, GATES, dtype)


LSTM_CELL = Cell("lstm", GATES, ("h", "c"), ("b_h",), ("c",), False, _scan_forward, _scan_backward, _make_scratch)
#: the LSTM with a projection (LSTMP, Sak et al. 2014; PyTorch's ``proj_size``): ``h_t = W_hr r_t``
#: is ``P`` wide, ``W_hh`` ``(4H, P)``, ``c`` stays ``H``. ``W_hr`` ``(P, H)`` is a parameter of the
#: cell beside ``b_h``; the forward keeps ``r_t`` so that BPTT takes ``dW_hr`` as one product per
#: block. NumPy loops: the compiled ones have no projection.
PROJECTED_LSTM_CELL = Cell("lstm_proj", GATES, ("h", "c"), ("b_h", "W_hr"), ("c", "r"), False, _scan_forward,
                           _scan_backward, _make_scratch, bias_blocks=(GATES, 0))


def lstm_forward(
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b_h: np.ndarray,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], RecurrentCache]:
    """Run the LSTM, one direction, over a whole batch of sequences.

    Parameters
    ----------
    x : (T, B, I) inputs.
    h0, c0 : (B, H) initial hidden and cell states.
    W_xh : (4H, I), W_hh : (4H, H), b_h : (4H,), gates stacked i, f, g, o.
    lengths : (B,) ints in 1..T, or None when every sequence has T steps.
    reverse : read each sequence from its last valid step back to step 0.

    Returns
    -------
    states : (T, B, H) ``h_t`` in input time order; exactly 0 at padding.
    (h_n, c_n) : (B, H) each, at step ``lengths[b] - 1`` going forward, at step 0 in reverse.
    cache : for :func:`lstm_backward`.
    """
    states, (h_n, c_n), cache = recurrent_layer_forward(
        LSTM_CELL, x, (h0[None], c0[None]), (W_xh,), (W_hh,), ((b_h,),), lengths, (reverse,)
    )
    return states, (h_n[0], c_n[0]), cache


def lstm_backward(
    dstates: np.ndarray, dh_n: np.ndarray | None, dc_n: np.ndarray | None, cache: RecurrentCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time for :func:`lstm_forward`.

    dstates : (T, B, H) gradient arriving from above at every output state (padding ignored);
    dh_n, dc_n : (B, H) or None for zeros.

    Returns ``dx`` (T, B, I), ``dh0``, ``dc0`` (B, H), ``dW_xh`` (4H, I), ``dW_hh`` (4H, H),
    ``db_h`` (4H,).
    """
    dfinal = tuple(None if g is None else g[None] for g in (dh_n, dc_n))
    dx, dinitial, (dW_xh, dW_hh, db_h) = recurrent_layer_backward(dstates, dfinal, cache)
    assert dx is not None and dinitial is not None  # input_grad and h0_grad are left True
    dh0, dc0 = dinitial
    return dx, dh0[0], dc0[0], dW_xh[0], dW_hh[0], db_h[0]


def lstm_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, W_xh: np.ndarray, W_hh: np.ndarray, b_h: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One LSTM step, for decoders that feed back their own outputs.

    x_t (B, I); h_prev, c_prev (B, H). Returns ``h_t``, ``c_t`` (B, H) and a cache for
    :func:`lstm_step_backward`.
    """
    hidden = h_prev.shape[1]
    a = x_t @ W_xh.T + h_prev @ W_hh.T + b_h
    i, f, o = sigmoid_forward(a[:, :hidden]), sigmoid_forward(a[:, hidden : 2 * hidden]), sigmoid_forward(a[:, 3 * hidden :])
    g = np.tanh(a[:, 2 * hidden : 3 * hidden])
    c_t = f * c_prev + i * g
    tanh_c = np.tanh(c_t)
    h_t = o * tanh_c
    return h_t, c_t, (x_t, h_prev, c_prev, W_xh, W_hh, i, f, g, o, tanh_c)


def lstm_step_backward(
    dh_t: np.ndarray, dc_t: np.ndarray | None, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`lstm_step_forward`: returns ``dx_t, dh_prev, dc_prev, dW_xh, dW_hh, db_h``."""
    x_t, h_prev, c_prev, W_xh, W_hh, i, f, g, o, tanh_c = cache
    dc = dh_t * o * (1.0 - tanh_c**2)
    if dc_t is not None:
        dc = dc + dc_t
    da = np.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g**2),
                         dh_t * tanh_c * o * (1.0 - o)], axis=1)
    return da @ W_xh, da @ W_hh, dc * f, da.T @ x_t, da.T @ h_prev, da.sum(axis=0)
