"""The minGRU cell (Feng et al. 2024, "Were RNNs All We Needed?"), forward and backward, as an
entry of the generic recurrent layer.

    z_t = sigmoid(W_z x_t + b_z),   c_t = g(W_c x_t + b_c),   h_t = (1 - z_t) h_{t-1} + z_t c_t

with ``g`` the positive candidate function of :mod:`rnnkit.functional.linear_scan`. The gates
read the input alone: no ``W_hh``. ``W_xh`` ``(2H, I)`` and ``b_h`` ``(2H,)`` stack z, c.
What is left of the recurrence is elementwise, ``h_t = a_t h_{t-1} + b_t`` with
``a = 1 - z``, ``b = z c``: the layer's one input projection is every matrix product of the
sequence, and the scan runs sequentially or in log space (``scan``).

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

GATES = 2


def _scan_forward(scan: str, gates: np.ndarray, states: np.ndarray, kept: tuple, initial: tuple[np.ndarray],
                  W_hh: None, biases: tuple[np.ndarray], mask: np.ndarray | None, first_padded: int) -> None:
    """``gates`` ``(T, B, 2H)`` holds ``W_xh x_t`` on entry and ``z, c`` on exit; ``states``
    receives ``h_t``."""
    hidden = states.shape[2]
    gates += biases[0]
    k_z, k_c = gates[..., :hidden], gates[..., hidden:]
    if scan == "parallel":
        log_a = -softplus(k_z)  # log(1 - z), finite where z rounds to 1
        log_b = log_positive(k_c) - softplus(-k_z)
        log_linear_scan(log_a, log_b, initial[0], states)
        k_z[...] = sigmoid_forward(k_z)
        k_c[...] = positive_forward(k_c)
    else:
        a = sigmoid_forward(-k_z)  # 1 - z without the cancellation
        k_z[...] = sigmoid_forward(k_z)
        k_c[...] = positive_forward(k_c)
        linear_scan(a, k_z * k_c, initial[0], states)
    if first_padded < len(states):
        assert mask is not None  # padding exists past first_padded
        states[first_padded:] *= mask[first_padded:]


def _scan_backward(block: BackwardBlock[None], upstream: np.ndarray, extra_upstream: tuple,
                   carried: tuple[np.ndarray], W_hh: None, bias_grads: tuple[np.ndarray], first_product: bool) -> None:
    """BPTT over scan steps ``[block.start, block.stop)``: the states' gradients by a reverse linear
    scan, then every gate gradient of the block at once. ``carried[0]`` in: ``dL/dh`` arriving from
    after the block; out: what flows on to the state before it."""
    start, stop = block.start, block.stop
    hidden = upstream.shape[2]
    gates, states = block.gates[start:stop], block.states
    z, c = gates[..., :hidden], gates[..., hidden:]
    before = block.initial[0] if start == 0 else states[start - 1]
    previous = np.concatenate([before[None], states[start : stop - 1]])
    a = 1.0 - z
    dh = np.empty_like(previous)
    reverse_linear_scan(a, upstream, carried[0], dh)
    grad = block.grad
    np.multiply(dh * (c - previous), z * a, out=grad[..., :hidden])
    np.multiply(dh * z, positive_derivative(c), out=grad[..., hidden:])
    np.multiply(a[0], dh[0], out=carried[0])
    (db_h,) = bias_grads
    db_h += grad.sum(axis=(0, 1))


def _make_scratch(steps: int, batch: int, hidden: int, dtype: np.dtype) -> None:
    return None


def mingru_cell(scan: str = "sequential") -> Cell:
    """The minGRU as a :class:`Cell`; ``scan`` ``"sequential"`` or ``"parallel"`` (log space)."""
    if scan not in SCANS:
        raise ValueError(f"scan: expected one of {', '.join(SCANS)}, got {scan!r}")
    return Cell("mingru", GATES, ("h",), ("b_h",), (), False, partial(_scan_forward, scan), _scan_backward,
                _make_scratch, recurrent_weight=False)
