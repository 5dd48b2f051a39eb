"""The minLSTM layer: stacked, optionally bidirectional, over padded batches."""

from __future__ import annotations

from rnnkit.functional.minlstm import minlstm_cell
from rnnkit.nn.recurrent import MinimalLayer


class MinLSTM(MinimalLayer):
    r"""Multi-layer minLSTM (Feng et al. 2024) applied to a batch of sequences.

    For each layer and direction, at every valid time step,

    .. math::
        f_t, i_t = \sigma(W^{f,i} x_t + b^{f,i}), \quad c_t = g(W^c x_t + b^c), \quad
        h_t = \frac{f_t}{f_t + i_t} h_{t-1} + \frac{i_t}{f_t + i_t} c_t

    with :math:`g(x) = x + 1/2` for :math:`x \ge 0` and :math:`\sigma(x)` below; one state, no
    cell state. The gates read the input alone, so every matrix product of a sequence is the
    layer's one input projection and the recurrence is elementwise. ``scan``: ``"sequential"``
    (default) or ``"parallel"`` (log space; the two agree to rounding). Arguments, inputs,
    outputs and conventions are those of :class:`rnnkit.nn.RNN`, without ``nonlinearity``.

    Parameters, blocks stacked f, i, c: ``W_xh_l{k}`` ``(3H, I_k)`` and ``b_h_l{k}`` ``(3H,)``,
    with the suffix ``_reverse`` for the reverse direction; no ``W_hh``.
    """

    make_cell = staticmethod(minlstm_cell)
