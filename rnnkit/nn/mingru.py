"""The minGRU layer: stacked, optionally bidirectional, over padded batches."""

from __future__ import annotations

import numpy as np

from rnnkit.functional.mingru import mingru_cell
from rnnkit.nn.recurrent import SingleStateLayer


class MinGRU(SingleStateLayer):
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

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = False,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
        merge_mode: str = "concat",
        learn_h0: bool = False,
        scan: str = "sequential",
    ) -> None:
        self.scan = scan
        super().__init__(mingru_cell(scan), input_size, hidden_size, num_layers, bidirectional, dropout, batch_first,
                         dtype, seed, merge_mode, learn_h0)
