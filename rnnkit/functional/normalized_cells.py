"""The layer-normalised LSTM and GRU (Ba, Kiros & Hinton 2016) as entries of the generic layer.

The input projection and the recurrent product are normalised apart, each over all its gates,
with a learned gain and shift each (:mod:`rnnkit.functional.layer_norm`); the LSTM normalises its
cell state too where it leaves through ``h``, while ``c`` itself is carried as it is:

    LSTM:  [i, f, g, o] = act(LN_x(W_xh x_t) + LN_h(W_hh h_{t-1}) + b_h)
           c_t = f * c_{t-1} + i * g,          h_t = o * tanh(LN_c(c_t))
    GRU:   [r, z] = sigmoid(LN_x(W_xh x_t)[r, z] + b_x[r, z] + LN_h(W_hh h_{t-1})[r, z] + b_h[r, z])
           n = tanh(LN_x(W_xh x_t)[n] + b_x[n] + r * (LN_h(W_hh h_{t-1})[n] + b_h[n]))
           h_t = (1 - z) * n + z * h_{t-1}

The layer hands the cell ``W_xh x_t`` of every step, so the input side is normalised for all steps
at once before the loop, and its backward after the loop's; per step only the recurrent side's
normalisation (and the LSTM's ``c``) runs. BPTT writes the gradient of the *raw* products into
``grad`` (input side) and ``grad_hidden`` (recurrent side), so the layer's ``dW_xh`` and ``dW_hh``
block products are those of the plain cells. The loops are NumPy's (there are no compiled ones).

Parameters per direction, beyond ``W_xh`` and ``W_hh``: the cell's biases, then ``ln_x_gain``,
``ln_x_shift``, ``ln_h_gain``, ``ln_h_shift`` (``(G*H,)`` each) and, for the LSTM, ``ln_c_gain``,
``ln_c_shift`` (``(H,)``); gains start at 1 and shifts at 0.

Letters: T time steps, B batch, H hidden units, G gate blocks (4 LSTM, 3 GRU). Scan order.
"""

from __future__ import annotations

from functools import cached_property
from typing import cast

import numpy as np

from rnnkit.functional.activations import sigmoid_forward
from rnnkit.functional.cells import BackwardBlock, Cell, GateScratch, entering_product, leaving_product
from rnnkit.functional.layer_norm import layer_norm_backward, layer_norm_forward
from rnnkit.functional.recurrent import transposed_copy

NORMS = ("ln_x_gain", "ln_x_shift", "ln_h_gain", "ln_h_shift")
#: columns of the kept inverse deviations: the input side's, the recurrent side's, the LSTM's c
_X, _H, _C = 0, 1, 2


class _Scratch(GateScratch):
    """:class:`GateScratch` and the per-step rows of the normalised loops."""

    @cached_property
    def recurrent(self) -> np.ndarray:
        return np.empty((self.batch, self.gates * self.hidden), self.dtype)

    @cached_property
    def state_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        shape = (self.batch, self.hidden)
        return np.empty(shape, self.dtype), np.empty(shape, self.dtype), np.empty(shape, self.dtype)


def _normalize_inputs(gates: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray, gain: np.ndarray,
                      shift: np.ndarray, bias: np.ndarray) -> None:
    """The input side of every step at once, in place: ``gates = LN_x(gates) + bias``."""
    layer_norm_forward(gates, gain, shift, x_hat, inv_std[..., _X : _X + 1], gates)
    gates += bias


def _lstm_forward(gates: np.ndarray, states: np.ndarray, kept: tuple[np.ndarray, ...], initial: tuple[np.ndarray, ...],
                  W_hh: np.ndarray, biases: tuple[np.ndarray, ...], mask: np.ndarray | None, first_padded: int,
                  product_mask: np.ndarray | None = None) -> None:
    """``gates`` ``(T, B, 4H)`` holds ``W_xh x_t`` on entry and ``i, f, g, o`` on exit; ``states``
    receives ``h_t``; ``kept``: ``c_t``, the normalised input and recurrent rows ``(T, B, 4H)``,
    the normalised cell states ``(T, B, H)`` and the three inverse deviations ``(T, B, 3)``."""
    cells, x_hat, h_hat, c_hat, inv_std = kept
    b_h, gain_x, shift_x, gain_h, shift_h, gain_c, shift_c = biases
    hidden = states.shape[2]
    _normalize_inputs(gates, x_hat, inv_std, gain_x, shift_x, b_h)
    W_hh_T = transposed_copy(W_hh)
    recurrent = np.empty((gates.shape[1], 4 * hidden), gates.dtype)
    squashed, product, dropped = (np.empty(states.shape[1:], states.dtype) for _ in range(3))
    h_prev, c_prev = (np.ascontiguousarray(state) for state in initial)
    mask = cast(np.ndarray, mask)  # read only from first_padded on, where padding exists
    for t in range(len(gates)):
        a, c, h = gates[t], cells[t], states[t]
        np.dot(entering_product(h_prev, product_mask, dropped), W_hh_T, recurrent)
        a += layer_norm_forward(recurrent, gain_h, shift_h, h_hat[t], inv_std[t, :, _H : _H + 1], recurrent)
        i, f, g, o = (a[:, k * hidden : (k + 1) * hidden] for k in range(4))
        sigmoid_forward(a[:, : 2 * hidden], out=a[:, : 2 * hidden])
        np.tanh(g, out=g)
        sigmoid_forward(o, out=o)
        np.multiply(f, c_prev, out=c)
        c += np.multiply(i, g, out=product)
        layer_norm_forward(c, gain_c, shift_c, c_hat[t], inv_std[t, :, _C : _C + 1], squashed)
        np.tanh(squashed, out=squashed)
        np.multiply(o, squashed, out=h)
        if t >= first_padded:
            c *= mask[t]
            h *= mask[t]
        h_prev, c_prev = h, c


def _lstm_backward(block: BackwardBlock[_Scratch], upstream: np.ndarray, extra_upstream: tuple[np.ndarray | None],
                   carried: tuple[np.ndarray, np.ndarray], W_hh: np.ndarray, bias_grads: tuple[np.ndarray, ...],
                   first_product: bool, product_mask: np.ndarray | None = None) -> None:
    """BPTT over scan steps ``[block.start, block.stop)``, last first (arguments as the LSTM's):
    ``block.grad`` receives ``dL/d(W_xh x_t)`` and ``block.grad_hidden`` ``dL/d(W_hh h_{t-1})``."""
    start, stop, scratch = block.start, block.stop, block.scratch
    n, hidden = stop - start, upstream.shape[2]
    gates = block.gates[start:stop]
    cells, x_hat, h_hat, c_hat, inv_std = block.kept
    _, gain_x, _, gain_h, _, gain_c, shift_c = block.biases
    db_h, dgain_x, dshift_x, dgain_h, dshift_h, dgain_c, dshift_c = bias_grads
    dc_upstream = extra_upstream[0]
    carried_h, carried_c = carried
    c_before = cells[start - 1] if start > 0 else block.initial[1]
    squashed = np.tanh(c_hat[start:stop] * gain_c + shift_c)  # tanh(LN_c(c_t)) of the block's steps
    derivative = scratch.gate_derivatives(gates)
    dh, dc, dy = scratch.state_rows
    multiply = np.multiply
    for k in range(n - 1, -1, -1):
        t = start + k
        i, f, g, o = (gates[k, :, j * hidden : (j + 1) * hidden] for j in range(4))
        da = block.grad[k]
        da_i, da_f, da_g, da_o = (da[:, j * hidden : (j + 1) * hidden] for j in range(4))
        np.add(upstream[k], carried_h, out=dh)
        multiply(dh, squashed[k], out=da_o)
        multiply(dh, o, out=dy)  # through tanh(LN_c(c_t)) to c_t
        dy *= 1.0 - squashed[k] * squashed[k]
        layer_norm_backward(dy, c_hat[t], inv_std[t, :, _C : _C + 1], gain_c, dgain_c, dshift_c, out=dc)
        dc += carried_c
        if dc_upstream is not None:
            dc += dc_upstream[k]
        multiply(dc, g, out=da_i)
        multiply(dc, cells[t - 1] if t > 0 else c_before, out=da_f)
        multiply(dc, i, out=da_g)
        multiply(dc, f, out=carried_c)
        da *= derivative[k]
        gh = block.grad_hidden[k]
        layer_norm_backward(da, h_hat[t], inv_std[t, :, _H : _H + 1], gain_h, dgain_h, dshift_h, out=gh)
        if t > 0 or first_product:
            leaving_product(gh, W_hh, product_mask, carried_h)
    db_h += block.grad.sum(axis=(0, 1))  # block.grad holds the gates' dL/da until the input side's backward
    layer_norm_backward(block.grad, x_hat[start:stop], inv_std[start:stop, :, _X : _X + 1], gain_x, dgain_x, dshift_x,
                        out=block.grad)


def _gru_forward(gates: np.ndarray, states: np.ndarray, kept: tuple[np.ndarray, ...], initial: tuple[np.ndarray, ...],
                 W_hh: np.ndarray, biases: tuple[np.ndarray, ...], mask: np.ndarray | None, first_padded: int,
                 product_mask: np.ndarray | None = None) -> None:
    """``gates`` ``(T, B, 3H)`` holds ``W_xh x_t`` on entry and ``r, z, n`` on exit; ``states``
    receives ``h_t``; ``kept``: ``LN_h(W_hh h_{t-1})[n] + b_h[n]``, the normalised input and
    recurrent rows ``(T, B, 3H)`` and the two inverse deviations ``(T, B, 2)``."""
    hidden_n, x_hat, h_hat, inv_std = kept
    b_xh, b_hh, gain_x, shift_x, gain_h, shift_h = biases
    hidden = states.shape[2]
    _normalize_inputs(gates, x_hat, inv_std, gain_x, shift_x, b_xh)
    W_hh_T = transposed_copy(W_hh)
    recurrent = np.empty((gates.shape[1], 3 * hidden), gates.dtype)
    dropped = np.empty(states.shape[1:], states.dtype)
    h_prev = np.ascontiguousarray(initial[0])
    mask = cast(np.ndarray, mask)  # read only from first_padded on, where padding exists
    for t in range(len(gates)):
        a, h = gates[t], states[t]
        np.dot(entering_product(h_prev, product_mask, dropped), W_hh_T, recurrent)
        layer_norm_forward(recurrent, gain_h, shift_h, h_hat[t], inv_std[t, :, _H : _H + 1], recurrent)
        recurrent += b_hh
        rz = a[:, : 2 * hidden]
        rz += recurrent[:, : 2 * hidden]
        sigmoid_forward(rz, out=rz)
        r, z, n = a[:, :hidden], a[:, hidden : 2 * hidden], a[:, 2 * hidden :]
        hidden_n[t] = recurrent[:, 2 * hidden :]
        n += np.multiply(r, hidden_n[t], out=recurrent[:, 2 * hidden :])
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=h)  # h = n + z * (h_prev - n)
        h *= z
        h += n
        if t >= first_padded:
            h *= mask[t]
        h_prev = h


def _gru_backward(block: BackwardBlock[_Scratch], upstream: np.ndarray, extra_upstream: tuple,
                  carried: tuple[np.ndarray], W_hh: np.ndarray, bias_grads: tuple[np.ndarray, ...],
                  first_product: bool, product_mask: np.ndarray | None = None) -> None:
    """BPTT over scan steps ``[block.start, block.stop)``, last first (arguments as the GRU's):
    ``block.grad`` receives ``dL/d(W_xh x_t)`` and ``block.grad_hidden`` ``dL/d(W_hh h_{t-1})``."""
    start, stop, scratch = block.start, block.stop, block.scratch
    n_steps, hidden = stop - start, upstream.shape[2]
    gates, states = block.gates[start:stop], block.states
    hidden_n, x_hat, h_hat, inv_std = block.kept
    _, _, gain_x, _, gain_h, _ = block.biases
    db_xh, db_hh, dgain_x, dshift_x, dgain_h, dshift_h = bias_grads
    h_before = states[start - 1] if start > 0 else block.initial[0]
    (carried_h,) = carried
    derivative = scratch.gate_derivatives(gates)
    dh, direct, _ = scratch.state_rows
    recurrent_side = scratch.recurrent
    multiply = np.multiply
    for k in range(n_steps - 1, -1, -1):
        t = start + k
        r, z, n = gates[k, :, :hidden], gates[k, :, hidden : 2 * hidden], gates[k, :, 2 * hidden :]
        gx = block.grad[k]
        gx_r, gx_z, gx_n = gx[:, :hidden], gx[:, hidden : 2 * hidden], gx[:, 2 * hidden :]
        np.add(upstream[k], carried_h, out=dh)
        multiply(dh, z, out=direct)  # what flows straight to h_{t-1} through z * h_{t-1}
        np.subtract(dh, direct, out=gx_n)  # dL/dn = dh (1 - z)
        gx_n *= derivative[k, :, 2 * hidden :]
        np.subtract(states[t - 1] if t > 0 else h_before, n, out=gx_z)  # dL/dz = dh (h_{t-1} - n)
        gx_z *= dh
        multiply(gx_n, hidden_n[t], out=gx_r)  # dL/dr = dL/da_n * (LN_h(...)[n] + b_h[n])
        gx[:, : 2 * hidden] *= derivative[k, :, : 2 * hidden]
        recurrent_side[:, : 2 * hidden] = gx[:, : 2 * hidden]
        multiply(gx_n, r, out=recurrent_side[:, 2 * hidden :])
        db_hh += recurrent_side.sum(axis=0)
        gh = block.grad_hidden[k]
        layer_norm_backward(recurrent_side, h_hat[t], inv_std[t, :, _H : _H + 1], gain_h, dgain_h, dshift_h, out=gh)
        if t > 0 or first_product:
            leaving_product(gh, W_hh, product_mask, carried_h)
            carried_h += direct
    db_xh += block.grad.sum(axis=(0, 1))
    layer_norm_backward(block.grad, x_hat[start:stop], inv_std[start:stop, :, _X : _X + 1], gain_x, dgain_x, dshift_x,
                        out=block.grad)


def _lstm_scratch(steps: int, batch: int, hidden: int, dtype: np.dtype) -> _Scratch:
    return _Scratch(steps, batch, hidden, 4, dtype)


def _gru_scratch(steps: int, batch: int, hidden: int, dtype: np.dtype) -> _Scratch:
    return _Scratch(steps, batch, hidden, 3, dtype)


#: gains start at 1, shifts at 0; the cells' own biases as PyTorch draws them
LAYER_NORM_LSTM_CELL = Cell("lstm_ln", 4, ("h", "c"), ("b_h", *NORMS, "ln_c_gain", "ln_c_shift"),
                            ("c", "x_hat", "h_hat", "c_hat", "inv_std"), True, _lstm_forward, _lstm_backward,
                            _lstm_scratch, bias_blocks=(4, 4, 4, 4, 4, 1, 1),
                            bias_fill=(None, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0), kept_widths=(1, 4, 4, 1, -3))
LAYER_NORM_GRU_CELL = Cell("gru_ln", 3, ("h",), ("b_xh", "b_hh", *NORMS), ("hn", "x_hat", "h_hat", "inv_std"), True,
                           _gru_forward, _gru_backward, _gru_scratch, bias_fill=(None, None, 1.0, 0.0, 1.0, 0.0),
                           kept_widths=(1, 3, 3, -2))


def layer_norm_cell(name: str) -> Cell:
    """The layer-normalised cell of ``name`` (``"lstm"`` or ``"gru"``)."""
    cells = {"lstm": LAYER_NORM_LSTM_CELL, "gru": LAYER_NORM_GRU_CELL}
    if name not in cells:
        raise ValueError(f"layer_norm: expected an lstm or gru cell, got {name!r} (layer normalisation is "
                         "built for the gated cells)")
    return cells[name]
