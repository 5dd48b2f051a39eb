"""The minLSTM cell (Feng et al. 2024, "Were RNNs All We Needed?"), forward and backward, as an
entry of the generic recurrent layer.

    f_t = sigmoid(W_f x_t + b_f),   i_t = sigmoid(W_i x_t + b_i),   c_t = g(W_c x_t + b_c)
    h_t = f'_t h_{t-1} + i'_t c_t,   f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t)

with ``g`` the positive candidate function of :mod:`rnnkit.functional.linear_scan`; the two
gates are normalised so that they sum to one (the paper's time-independent scale). The gates
read the input alone: no ``W_hh``, no cell state. ``W_xh`` ``(3H, I)`` and ``b_h`` ``(3H,)``
stack f, i, c. The recurrence is ``h_t = a_t h_{t-1} + b_t`` with ``a = f'`` and ``b = i' c``;
``f' = sigmoid(log f - log i)`` is computed that way, from the pre-activations, so it is
finite when both gates round to 0.

Letters: T time steps, B batch, I input features, H hidden units. Time-major.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from rnnkit.functional.activations import sigmoid_forward
from rnnkit.functional.cells import BackwardBlock, Cell
from rnnkit.functional.linear_scan import (
    SCANS,
    linear_scan,
    log_linear_scan,
    log_positive,
    positive_derivative,
    positive_forward,
    reverse_linear_scan,
    softplus,
)

GATES = 3


def _scan_forward(scan: str, gates: np.ndarray, states: np.ndarray, kept: tuple[np.ndarray],
                  initial: tuple[np.ndarray], W_hh: None, biases: tuple[np.ndarray], mask: np.ndarray | None,
                  first_padded: int) -> None:
    """``gates`` ``(T, B, 3H)`` holds ``W_xh x_t`` on entry and ``f', f, i`` on exit; ``kept[0]``
    receives the candidates ``c_t`` and ``states`` ``h_t``."""
    hidden = states.shape[2]
    gates += biases[0]
    k_f, k_i, k_c = (gates[..., j * hidden : (j + 1) * hidden] for j in range(GATES))
    (candidate,) = kept
    difference = softplus(-k_i) - softplus(-k_f)  # log f - log i
    if scan == "parallel":
        log_linear_scan(-softplus(-difference), log_positive(k_c) - softplus(difference), initial[0], states)
    candidate[...] = positive_forward(k_c)
    k_c[...] = sigmoid_forward(k_i)
    k_i[...] = sigmoid_forward(k_f)
    k_f[...] = sigmoid_forward(difference)  # f'
    if scan != "parallel":
        linear_scan(k_f, sigmoid_forward(-difference) * candidate, initial[0], states)
    if first_padded < len(states):
        assert mask is not None  # padding exists past first_padded
        states[first_padded:] *= mask[first_padded:]


def _scan_backward(block: BackwardBlock[None], upstream: np.ndarray, extra_upstream: tuple,
                   carried: tuple[np.ndarray], W_hh: None, bias_grads: tuple[np.ndarray], first_product: bool) -> None:
    """BPTT over scan steps ``[block.start, block.stop)``: the states' gradients by a reverse linear
    scan, then every gate gradient of the block at once (``f' = sigmoid(u)``, ``u = log f - log i``:
    ``du/dk_f = 1 - f``, ``du/dk_i = -(1 - i)``)."""
    start, stop = block.start, block.stop
    hidden = upstream.shape[2]
    gates, states = block.gates[start:stop], block.states
    a, f, i = (gates[..., j * hidden : (j + 1) * hidden] for j in range(GATES))
    c = block.kept[0][start:stop]
    before = block.initial[0] if start == 0 else states[start - 1]
    previous = np.concatenate([before[None], states[start : stop - 1]])
    dh = np.empty_like(previous)
    reverse_linear_scan(a, upstream, carried[0], dh)
    grad = block.grad
    du = dh * (previous - c) * a * (1.0 - a)
    np.multiply(du, 1.0 - f, out=grad[..., :hidden])
    np.multiply(du, i - 1.0, out=grad[..., hidden : 2 * hidden])
    np.multiply(dh * (1.0 - a), positive_derivative(c), out=grad[..., 2 * hidden :])
    np.multiply(a[0], dh[0], out=carried[0])
    (db_h,) = bias_grads
    db_h += grad.sum(axis=(0, 1))


def _make_scratch(steps: int, batch: int, hidden: int, dtype: np.dtype) -> None:
    return None


def minlstm_cell(scan: str = "sequential") -> Cell:
    """The minLSTM as a :class:`Cell`; ``scan`` ``"sequential"`` or ``"parallel"`` (log space)."""
    if scan not in SCANS:
        raise ValueError(f"scan: expected one of {', '.join(SCANS)}, got {scan!r}")
    return Cell("minlstm", GATES, ("h",), ("b_h",), ("candidate",), False, partial(_scan_forward, scan),
                _scan_backward, _make_scratch, recurrent_weight=False)
