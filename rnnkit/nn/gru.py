"""The GRU layer: stacked, optionally bidirectional, over padded batches."""

from __future__ import annotations

import numpy as np

from rnnkit.functional.gru import GRU_CELL
from rnnkit.functional.normalized_cells import LAYER_NORM_GRU_CELL
from rnnkit.nn.recurrent import SingleStateLayer


class GRU(SingleStateLayer):
    r"""Multi-layer gated recurrent unit applied to a batch of sequences.

    For each layer and direction, at every valid time step (PyTorch's formulation),

    .. math::
        r, z = \sigma(W_{xh}^{r,z} x_t + b_{xh}^{r,z} + W_{hh}^{r,z} h_{t-1} + b_{hh}^{r,z}), \quad
        n = \tanh(W_{xh}^n x_t + b_{xh}^n + r (W_{hh}^n h_{t-1} + b_{hh}^n)), \quad
        h_t = (1 - z) n + z h_{t-1}

    Arguments, inputs, outputs and conventions are those of :class:`rnnkit.nn.RNN`, without
    ``nonlinearity``: ``forward(x, h0=None, lengths=None) -> (out, h_n)`` and
    ``backward(dout, dh_n=None, input_grad=True, h0_grad=True) -> (dx, dh0)``.

    Parameters, gates stacked r, z, n as in PyTorch, with two biases because ``b_hh``'s n block
    sits inside the reset product: ``W_xh_l{k}`` ``(3H, I_k)``, ``W_hh_l{k}`` ``(3H, H)``,
    ``b_xh_l{k}`` and ``b_hh_l{k}`` ``(3H,)``, with the suffix ``_reverse`` for the reverse
    direction.

    ``layer_norm=True`` normalises ``W_xh x_t`` and ``W_hh h_{t-1}`` apart, each over its three
    gates, before the biases (Ba et al. 2016; see :mod:`rnnkit.functional.normalized_cells`),
    adding ``ln_x_gain``, ``ln_x_shift``, ``ln_h_gain``, ``ln_h_shift`` ``(3H,)`` per layer and
    direction. ``recurrent_dropout`` and ``zoneout`` as for :class:`rnnkit.nn.RNN`.

    Example::

        >>> gru = GRU(10, 20, bidirectional=True, seed=0)
        >>> out, h_n = gru(np.random.default_rng(0).normal(size=(5, 3, 10)))
        >>> out.shape, h_n.shape
        ((5, 3, 40), (2, 3, 20))
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
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        self.layer_norm = bool(layer_norm)
        super().__init__(LAYER_NORM_GRU_CELL if layer_norm else GRU_CELL, input_size, hidden_size, num_layers, bidirectional,
                         dropout, batch_first, dtype, seed, merge_mode, learn_h0, recurrent_dropout, zoneout)
