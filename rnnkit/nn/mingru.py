"""The minGRU layer: stacked, optionally bidirectional, over padded batches."""

from __future__ import annotations

from rnnkit.functional.mingru import mingru_cell
from rnnkit.nn.recurrent import MinimalLayer


class MinGRU(MinimalLayer):
    r"""Multi-layer minGRU (Feng et al. 2024) applied to a batch of sequences.

    For each layer and direction, at every valid time step,

    .. math::
        z_t = \sigma(W^z x_t + b^z), \quad c_t = g(W^c x_t + b^c), \quad h_t = (1 - z_t) h_{t-1} + z_t c_t

    with :math:`g(x) = x + 1/2` for :math:`x \ge 0` and :math:`\sigma(x)` below. The gates read the
    input alone, so every matrix product of a sequence is the layer's one input projection and
    the recurrence is elementwise. ``scan``: ``"sequential"`` (default) or ``"parallel"`` (log
    space, whole-array passes; the two agree to rounding). Arguments, inputs, outputs and
    conventions (``lengths``, ``resets``, ``learn_h0``, merge modes) are those of
    :class:`rnnkit.nn.RNN`, without ``nonlinearity``.

    Parameters, blocks stacked z, c: ``W_xh_l{k}`` ``(2H, I_k)`` and ``b_h_l{k}`` ``(2H,)``, with
    the suffix ``_reverse`` for the reverse direction; no ``W_hh``.
    """

    make_cell = staticmethod(mingru_cell)
