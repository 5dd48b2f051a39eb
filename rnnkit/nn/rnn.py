"""The Elman recurrent layer: stacked, optionally bidirectional, over padded batches."""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.functional.activations import ACTIVATIONS
from rnnkit.functional.elman import elman_cell
from rnnkit.nn.recurrent import MERGE_MODES, SingleStateLayer

__all__ = ["MERGE_MODES", "RNN"]


class RNN(SingleStateLayer):
    r"""Multi-layer Elman RNN applied to a batch of sequences.

    For each layer and direction, at every valid time step,

    .. math:: h_t = \mathrm{act}(W_{hh} h_{t-1} + W_{xh} x_t + b_h)

    where ``act`` is tanh, sigmoid or ReLU, ``x_t`` is the input at step ``t`` (for layers after
    the first, the previous layer's output, after dropout in training mode) and ``h_{t-1}`` the
    state of the same layer and direction one step earlier (``h0`` at the first step).

    Args:
        input_size: features of ``x``, ``I``.
        hidden_size: units per direction, ``H``.
        num_layers: stacked layers, ``L``.
        nonlinearity: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.
        bidirectional: add a reverse direction that reads each sequence from its own last valid
            step back to step 0; ``D = 2`` then, else ``D = 1``.
        dropout: probability of zeroing each input of layers 2..L in training mode.
        batch_first: inputs and outputs are ``(B, T, F)`` instead of ``(T, B, F)``.
        dtype: ``np.float32`` or ``np.float64``; inputs of another dtype are cast.
        seed: int or ``np.random.Generator`` for the initial weights and dropout masks.
        merge_mode: how the two directions of the *last* layer are combined: ``"concat"``
            (default), ``"sum"``, ``"mul"`` or ``"ave"``. Between layers they are always
            concatenated.
        learn_h0: make the initial state a parameter ``h0`` of shape ``(L * D, H)``, used for
            every sequence when ``forward`` gets no ``h0``.
        recurrent_dropout: probability of zeroing each unit of ``h_{t-1}`` where it enters the
            product with ``W_hh``, one mask per sequence for all its steps (Gal & Ghahramani
            2016; Keras's ``recurrent_dropout``), in training mode. The NumPy loops run then.
        zoneout: probability that each unit of each state keeps its previous value at a step
            instead of the new one (Krueger et al. 2017), in training mode; at evaluation every
            state is the expectation ``zoneout * s_{t-1} + (1 - zoneout) * s_new``. The scan runs
            a step at a time.

    Inputs: ``forward(x, h0=None, lengths=None)``
        x: ``(T, B, I)`` (``(B, T, I)`` if ``batch_first``).
        h0: ``(L * D, B, H)``; zeros (or the learned ``h0``) if None.
        lengths: ``(B,)`` ints in ``1..T``; steps ``t >= lengths[b]`` are padding.

    Outputs: ``(out, h_n)``
        out: ``(T, B, D * H)`` (``(T, B, H)`` for merge modes other than concat), the last
            layer's states; exactly zero at padding.
        h_n: ``(L * D, B, H)``, ordered layer by layer, forward before reverse: the state at
            each sequence's last valid step (forward) or after reading step 0 (reverse).

    ``backward(dout, dh_n=None, input_grad=True, h0_grad=True)`` takes gradients shaped like
    ``out`` and ``h_n``, adds the weight gradients into ``grads`` and returns ``(dx, dh0)`` shaped
    like ``x`` and ``h0``. With ``input_grad=False`` (``x`` is data that needs no gradient, as
    PyTorch decides from ``requires_grad``) ``dx`` is None and its matrix product is skipped; with
    ``h0_grad=False`` (nothing upstream of ``h0``) ``dh0`` is None and each layer's last product
    through ``W_hh`` is skipped (a learned ``h0`` still gets its gradient).

    where: T = time steps, B = batch, I = ``input_size``, H = ``hidden_size``,
    L = ``num_layers``, D = 2 if ``bidirectional`` else 1.

    Attributes (``params``; ``grads`` has the same keys), for layer ``k`` and with the suffix
    ``_reverse`` for the reverse direction:
        ``W_xh_l{k}``: ``(H, I_k)`` with ``I_0 = I`` and ``I_k = D * H`` for ``k > 0``;
        ``W_hh_l{k}``: ``(H, H)``; ``b_h_l{k}``: ``(H,)``.
        All drawn from ``U(-1/sqrt(H), 1/sqrt(H))``, as in PyTorch.

    Example::

        >>> rnn = RNN(10, 20, num_layers=2, seed=0)
        >>> x = np.random.default_rng(0).normal(size=(5, 3, 10))
        >>> out, h_n = rnn(x, lengths=np.array([5, 2, 4]))
        >>> out.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))
        >>> dx, dh0 = rnn.backward(np.ones_like(out))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = False,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
        merge_mode: str = "concat",
        learn_h0: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, tuple(ACTIVATIONS))
        super().__init__(elman_cell(nonlinearity), input_size, hidden_size, num_layers, bidirectional, dropout,
                         batch_first, dtype, seed, merge_mode, learn_h0, recurrent_dropout, zoneout)
