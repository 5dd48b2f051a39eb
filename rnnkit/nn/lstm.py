"""The LSTM layer: stacked, optionally bidirectional, over padded batches."""

from __future__ import annotations

import numpy as np

from rnnkit.functional.lstm import LSTM_CELL, PROJECTED_LSTM_CELL
from rnnkit.functional.normalized_cells import LAYER_NORM_LSTM_CELL
from rnnkit.nn.recurrent import RecurrentLayer


class LSTM(RecurrentLayer):
    r"""Multi-layer long short-term memory applied to a batch of sequences.

    For each layer and direction, at every valid time step,

    .. math::
        [i, f, g, o] = [\sigma, \sigma, \tanh, \sigma](W_{xh} x_t + W_{hh} h_{t-1} + b_h), \quad
        c_t = f c_{t-1} + i g, \quad h_t = o \tanh(c_t)

    Arguments, conventions (time-major, ``lengths``, padding exactly zero, final states at each
    sequence's last valid step, the reverse direction from its own last valid step), merge modes,
    ``learn_h0`` (then ``h0`` and ``c0`` are parameters) and accumulating ``grads`` are those of
    :class:`rnnkit.nn.RNN`, without ``nonlinearity``.

    Inputs: ``forward(x, hx=None, lengths=None, resets=None)``
        x: ``(T, B, I)`` (``(B, T, I)`` if ``batch_first``).
        hx: ``(h0, c0)``, each ``(L * D, B, H)``; zeros (or the learned states) if None.

    Outputs: ``(out, (h_n, c_n))``
        out: ``(T, B, D * H)``, the last layer's ``h_t``; h_n, c_n: ``(L * D, B, H)``.

    ``backward(dout, dh_n=None, dc_n=None, input_grad=True, h0_grad=True)`` returns
    ``(dx, (dh0, dc0))``, or ``(dx, None)`` with ``h0_grad=False``.

    Parameters, gates stacked i, f, g, o as in PyTorch (``b_h`` is its ``b_ih + b_hh``):
    ``W_xh_l{k}`` ``(4H, I_k)``, ``W_hh_l{k}`` ``(4H, H)``, ``b_h_l{k}`` ``(4H,)``, with the
    suffix ``_reverse`` for the reverse direction.

    ``layer_norm=True`` normalises ``W_xh x_t`` and ``W_hh h_{t-1}`` apart, each over its four
    gates, and ``c_t`` where it enters ``h_t`` (Ba et al. 2016; see
    :mod:`rnnkit.functional.normalized_cells`), adding ``ln_x_gain``, ``ln_x_shift``,
    ``ln_h_gain``, ``ln_h_shift`` ``(4H,)`` and ``ln_c_gain``, ``ln_c_shift`` ``(H,)`` per layer
    and direction. ``recurrent_dropout`` and ``zoneout`` as for :class:`rnnkit.nn.RNN`.

    ``proj_size=P`` (``0 < P < H``) projects the state, as PyTorch's ``proj_size`` (LSTMP, Sak et
    al. 2014): ``h_t = W_hr (o * tanh(c_t))`` is ``P`` wide, ``c_t`` stays ``H``; ``W_hh_l{k}`` is
    ``(4H, P)``, layers after the first read ``D * P`` features, ``out`` is ``(T, B, D * P)``,
    ``h0``/``h_n`` ``(L * D, B, P)``, and each layer and direction has ``W_hr_l{k}`` ``(P, H)``
    (torch's ``weight_hr_l{k}``). Its loops are NumPy's.

    Example::

        >>> lstm = LSTM(10, 20, num_layers=2, seed=0)
        >>> x = np.random.default_rng(0).normal(size=(5, 3, 10))
        >>> out, (h_n, c_n) = lstm(x, lengths=np.array([5, 2, 4]))
        >>> out.shape, h_n.shape, c_n.shape
        ((5, 3, 20), (2, 3, 20), (2, 3, 20))
        >>> dx, (dh0, dc0) = lstm.backward(np.ones_like(out))
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
        proj_size: int = 0,
    ) -> None:
        self.layer_norm = bool(layer_norm)
        if layer_norm and proj_size:
            raise ValueError("layer_norm with proj_size: the layer-normalised LSTM has no projection (not built)")
        cell = PROJECTED_LSTM_CELL if proj_size else LAYER_NORM_LSTM_CELL if layer_norm else LSTM_CELL
        super().__init__(cell, input_size, hidden_size, num_layers, bidirectional, dropout, batch_first, dtype, seed,
                         merge_mode, learn_h0, recurrent_dropout, zoneout, proj_size)

    def forward(
        self,
        x: np.ndarray,
        hx: tuple[np.ndarray | None, np.ndarray | None] | None = None,
        lengths: np.ndarray | None = None,
        resets: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"hx: expected a pair (h0, c0) or None, got {type(hx).__name__}")
        out, (h_n, c_n) = self.forward_states(x, None if hx is None else tuple(hx), lengths, resets)
        return out, (h_n, c_n)

    def backward(
        self,
        dout: np.ndarray,
        dh_n: np.ndarray | None = None,
        dc_n: np.ndarray | None = None,
        input_grad: bool = True,
        h0_grad: bool = True,
    ) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
        dx, dinitial = self.backward_states(dout, (dh_n, dc_n), input_grad, h0_grad)
        if dinitial is None:
            return dx, None
        dh0, dc0 = dinitial
        return dx, (dh0, dc0)
