"""The minLSTM cell (Feng et al. 2024, "Were RNNs All We Needed?"), forward and backward, as an
entry of the generic recurrent layer.

    f_t = sigmoid(W_f x_t + b_f),   i_t = sigmoid(W_i x_t + b_i),   c_t = g(W_c x_t + b_c)
    h_t = f'_t h_{t-1} + i'_t c_t,   f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t)

with ``g`` the positive candidate function of :mod:`rnnkit.functional.linear_scan`; the two
gates are normalised so that they sum to one (the paper's time-independent scale). The gates
read the input alone: no ``W_hh``, no cell state. ``W_xh`` ``(3H, I)`` and ``b_h`` ``(3H,)``
stack f, i, c. The recurrence is ``h_t = a_t h_{t-1} + b_t`` with ``a = f'`` and ``b = i' c``;
``f' = sigmoid(u)``, ``u = log f - log i``, is computed that way, from the pre-activations, so it
is finite when both gates round to 0. Where the compiled loops are loaded
(``rnnkit/_native/minimal.c``) the sequential scan is one fused pass per step.

Letters: T time steps, B batch, I input features, H hidden units. Time-major.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from rnnkit import _native
from rnnkit import _workspace as workspace
from rnnkit.functional.cells import BackwardBlock, Cell
from rnnkit.functional.linear_scan import (
    SCANS,
    ScanScratch,
    linear_scan,
    log_linear_scan,
    log_positive,
    positive_derivative,
    positive_forward,
    previous_difference,
    reverse_linear_scan,
    sigmoid_into,
    softplus,
)

GATES = 3


def _scan_forward(scan: str, gates: np.ndarray, states: np.ndarray, kept: tuple[np.ndarray],
                  initial: tuple[np.ndarray], W_hh: None, biases: tuple[np.ndarray], mask: np.ndarray | None,
                  first_padded: int) -> None:
    """``gates`` ``(T, B, 3H)`` holds ``W_xh x_t`` on entry and ``f', f, i`` on exit; ``kept[0]``
    receives the candidates ``c_t`` and ``states`` ``h_t``."""
    hidden = states.shape[2]
    (candidate,) = kept
    if scan == "sequential" and _native.minimal_scan_forward("minlstm", gates, states, candidate,
                                                             np.ascontiguousarray(initial[0]), biases[0], mask,
                                                             first_padded):
        return
    gates += biases[0]
    k_f, k_i, k_c = (gates[..., j * hidden : (j + 1) * hidden] for j in range(GATES))
    u, work = workspace.empty(states.shape, states.dtype), workspace.empty(states.shape, states.dtype)
    np.negative(k_i, out=u)
    np.logaddexp(0.0, u, out=u)  # softplus(-k_i) = -log i
    np.negative(k_f, out=work)
    np.logaddexp(0.0, work, out=work)
    u -= work  # log f - log i
    if scan == "parallel":
        log_linear_scan(-softplus(-u), log_positive(k_c) - softplus(u), initial[0], states)
    positive_forward(k_c, out=candidate, scratch=work)
    sigmoid_into(k_i, k_c)  # the slots become f', f, i: each read before it is written
    sigmoid_into(k_f, k_i)
    sigmoid_into(u, k_f)
    if scan != "parallel":
        np.negative(u, out=work)
        sigmoid_into(work, work)  # i' = sigmoid(-u)
        work *= candidate
        linear_scan(k_f, work, initial[0], states)
    if first_padded < len(states):
        assert mask is not None  # padding exists past first_padded
        states[first_padded:] *= mask[first_padded:]


def _scan_backward(block: BackwardBlock[ScanScratch], upstream: np.ndarray, extra_upstream: tuple,
                   carried: tuple[np.ndarray], W_hh: None, bias_grads: tuple[np.ndarray], first_product: bool) -> None:
    """BPTT over scan steps ``[block.start, block.stop)``: the states' gradients by a reverse linear
    scan, then every gate gradient of the block at once (``f' = sigmoid(u)``: ``du/dk_f = 1 - f``,
    ``du/dk_i = -(1 - i)``)."""
    start, stop, scratch = block.start, block.stop, block.scratch
    n, hidden = stop - start, upstream.shape[2]
    a, f, i = (block.gates[start:stop, :, j * hidden : (j + 1) * hidden] for j in range(GATES))
    c = block.kept[0][start:stop]
    before = block.initial[0] if start == 0 else block.states[start - 1]
    (db_h,) = bias_grads
    if _native.minimal_scan_backward("minlstm", block.grad, upstream, block.gates[start:stop], c,
                                     block.states[start:stop], before, carried[0], db_h):
        return
    dh, rest = scratch.state_grads[:n], np.subtract(1.0, a, out=scratch.work[:n])  # rest: 1 - f' = i'
    reverse_linear_scan(a, upstream, carried[0], dh)
    grad_f, grad_i, grad_c = (block.grad[..., j * hidden : (j + 1) * hidden] for j in range(GATES))
    np.negative(previous_difference(c, block.states, start, before, grad_f), out=grad_f)  # dh/df' = h_{t-1} - c
    grad_f *= dh
    grad_f *= a
    grad_f *= rest  # du
    np.subtract(i, 1.0, out=grad_i)
    grad_i *= grad_f
    positive_derivative(c, out=grad_c, scratch=scratch.spare[:n])
    grad_c *= rest
    grad_c *= dh
    np.multiply(a[0], dh[0], out=carried[0])
    np.subtract(1.0, f, out=rest)
    grad_f *= rest
    db_h += block.grad.sum(axis=(0, 1))


def minlstm_cell(scan: str = "sequential") -> Cell:
    """The minLSTM as a :class:`Cell`; ``scan`` ``"sequential"`` or ``"parallel"`` (log space)."""
    if scan not in SCANS:
        raise ValueError(f"scan: expected one of {', '.join(SCANS)}, got {scan!r}")
    return Cell("minlstm", GATES, ("h",), ("b_h",), ("candidate",), False, partial(_scan_forward, scan),
                _scan_backward, ScanScratch, recurrent_weight=False)
