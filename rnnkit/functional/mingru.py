"""The minGRU cell (Feng et al. 2024, "Were RNNs All We Needed?"), forward and backward, as an
entry of the generic recurrent layer.

    z_t = sigmoid(W_z x_t + b_z),   c_t = g(W_c x_t + b_c),   h_t = (1 - z_t) h_{t-1} + z_t c_t

with ``g`` the positive candidate function of :mod:`rnnkit.functional.linear_scan`. The gates
read the input alone: no ``W_hh``. ``W_xh`` ``(2H, I)`` and ``b_h`` ``(2H,)`` stack z, c.
What is left of the recurrence is elementwise, ``h_t = a_t h_{t-1} + b_t`` with
``a = 1 - z``, ``b = z c``: the layer's one input projection is every matrix product of the
sequence, and the scan runs sequentially or in log space (``scan``). The sequential scan runs
in one fused pass per step where the compiled loops are loaded (``rnnkit/_native/minimal.c``);
the NumPy passes below compute the same, each writing into the gate buffer or a reused buffer:
at ``(T, B, H)`` a fresh temporary costs more than the arithmetic.

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

GATES = 2


def _scan_forward(scan: str, gates: np.ndarray, states: np.ndarray, kept: tuple, initial: tuple[np.ndarray],
                  W_hh: None, biases: tuple[np.ndarray], mask: np.ndarray | None, first_padded: int) -> None:
    """``gates`` ``(T, B, 2H)`` holds ``W_xh x_t`` on entry and ``z, c`` on exit; ``states``
    receives ``h_t``."""
    hidden = states.shape[2]
    if scan == "sequential" and _native.minimal_scan_forward("mingru", gates, states, None,
                                                             np.ascontiguousarray(initial[0]), biases[0], mask,
                                                             first_padded):
        return
    gates += biases[0]
    k_z, k_c = gates[..., :hidden], gates[..., hidden:]
    a, b = workspace.empty(states.shape, states.dtype), workspace.empty(states.shape, states.dtype)
    if scan == "parallel":
        log_a = -softplus(k_z)  # log(1 - z), finite where z rounds to 1
        log_b = log_positive(k_c) - softplus(-k_z)
        log_linear_scan(log_a, log_b, initial[0], states)
    np.negative(k_z, out=a)
    sigmoid_into(a, a)  # 1 - z, without the cancellation
    sigmoid_into(k_z, k_z)
    positive_forward(k_c, out=k_c, scratch=b)
    if scan != "parallel":
        linear_scan(a, np.multiply(k_z, k_c, out=b), initial[0], states)
    if first_padded < len(states):
        assert mask is not None  # padding exists past first_padded
        states[first_padded:] *= mask[first_padded:]


def _scan_backward(block: BackwardBlock[ScanScratch], upstream: np.ndarray, extra_upstream: tuple,
                   carried: tuple[np.ndarray], W_hh: None, bias_grads: tuple[np.ndarray], first_product: bool) -> None:
    """BPTT over scan steps ``[block.start, block.stop)``: the states' gradients by a reverse linear
    scan, then every gate gradient of the block at once. ``carried[0]`` in: ``dL/dh`` arriving from
    after the block; out: what flows on to the state before it."""
    start, stop, scratch = block.start, block.stop, block.scratch
    n, hidden = stop - start, upstream.shape[2]
    z, c = block.gates[start:stop, :, :hidden], block.gates[start:stop, :, hidden:]
    before = block.initial[0] if start == 0 else block.states[start - 1]
    (db_h,) = bias_grads
    if _native.minimal_scan_backward("mingru", block.grad, upstream, block.gates[start:stop], None,
                                     block.states[start:stop], before, carried[0], db_h):
        return
    a, dh = np.subtract(1.0, z, out=scratch.work[:n]), scratch.state_grads[:n]
    reverse_linear_scan(a, upstream, carried[0], dh)
    grad_z, grad_c = block.grad[..., :hidden], block.grad[..., hidden:]
    previous_difference(c, block.states, start, before, grad_z)  # dh/dz = c - h_{t-1}
    grad_z *= dh
    grad_z *= z
    grad_z *= a
    positive_derivative(c, out=grad_c, scratch=scratch.spare[:n])
    grad_c *= z
    grad_c *= dh
    np.multiply(a[0], dh[0], out=carried[0])
    db_h += block.grad.sum(axis=(0, 1))


def mingru_cell(scan: str = "sequential") -> Cell:
    """The minGRU as a :class:`Cell`; ``scan`` ``"sequential"`` or ``"parallel"`` (log space)."""
    if scan not in SCANS:
        raise ValueError(f"scan: expected one of {', '.join(SCANS)}, got {scan!r}")
    return Cell("mingru", GATES, ("h",), ("b_h",), (), False, partial(_scan_forward, scan), _scan_backward,
                ScanScratch, recurrent_weight=False)
