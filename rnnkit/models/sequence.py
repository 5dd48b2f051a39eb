"""Many-to-many and many-to-one: a recurrent layer (Elman RNN, LSTM or GRU: ``cell``) reading a
sequence, with outputs at every step or one output for the whole sequence."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._checks import check_choice, check_float_dtype
from rnnkit.functional.pooling import attention_pool_backward, attention_pool_forward, pool_backward, pool_forward
from rnnkit.models.base import (
    POOLINGS,
    Model,
    embed_backward,
    embed_forward,
    make_input_layer,
)
from rnnkit.models.states import State, as_state
from rnnkit.nn.factory import recurrent
from rnnkit.nn.linear import Linear
from rnnkit.nn.module import resolve_rng


class _Reader(Model):
    """Input layer -> recurrent layer -> linear head: what ManyToMany and ManyToOne share.

    Inputs are token ids ``(T, B)`` when ``vocab_size`` is given (through an embedding of
    ``embed_dim``), else real values ``(T, B, input_size)``. ``cell`` is ``"rnn"``, ``"lstm"``
    or ``"gru"`` (``nonlinearity`` belongs to ``"rnn"``). ``loss`` is ``"cross_entropy"``
    (class scores) or ``"mse"`` (values). ``dropout`` acts between stacked layers,
    ``recurrent_dropout`` and ``zoneout`` inside each (see :class:`rnnkit.nn.RNN`),
    ``embed_dropout`` on the embedded tokens.
    """

    def __init__(
        self,
        output_size: int,
        hidden_size: int = 128,
        *,
        vocab_size: int | None = None,
        input_size: int | None = None,
        embed_dim: int = 64,
        cell: str = "rnn",
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bidirectional: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
        embed_dropout: float = 0.0,
        loss: str = "cross_entropy",
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        self.loss_kind = check_choice("loss", loss, ("cross_entropy", "mse"))
        self.embedding, features = make_input_layer(vocab_size, input_size, embed_dim, dtype, rng, embed_dropout)
        self.cell = cell
        self.rnn = recurrent(cell, features, hidden_size, num_layers, nonlinearity, bidirectional, dropout,
                             dtype=dtype, seed=rng, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                             layer_norm=layer_norm)
        self.head = Linear(self.rnn.output_size, output_size, dtype=dtype, seed=rng)

    def _input_grad(self, asked: bool) -> bool:
        """Whether the RNN must compute ``dx``: always under an embedding, which learns from it."""
        return asked or self.embedding is not None


class ManyToMany(_Reader):
    """An output at every step: ``y_t = W_hy h_t + b_y`` (tagging, language modelling).

    ``bidirectional`` gives each step past and future context (for tagging; a language model
    must stay unidirectional, or it would see the answer). Options as for ``_Reader``.

    ``forward(inputs, state=None, lengths=None, resets=None) -> (outputs (T, B, output_size),
    final state)``, the states as tuples of ``(L * D, B, H)`` arrays (``(h,)``, or ``(h, c)`` for
    an LSTM; see :mod:`rnnkit.models.states`; a bare array is read as ``(h,)``): what truncated
    BPTT carries. ``resets`` ``(T, B)`` bool: where true, that stream starts again before that
    step from zeros (a new document; see :meth:`rnnkit.nn.RNN.forward`).
    ``backward(doutputs, dfinal=None, input_grad=True)`` returns the input gradient (None for
    tokens, and with ``input_grad=False``, which skips it when the inputs are data); the initial
    state takes no gradient (a carried state is detached).
    """

    def forward(
        self, inputs: np.ndarray, state: State | np.ndarray | None = None, lengths: np.ndarray | None = None,
        resets: np.ndarray | None = None,
    ) -> tuple[np.ndarray, State]:
        out, final = self.rnn.forward_states(embed_forward(self.embedding, inputs), as_state(state), lengths, resets)
        return self.head.forward(out), final

    def states_at(self, step: int) -> State:
        """The recurrent states after step ``step`` of the last :meth:`forward` (before
        :meth:`backward`): the state truncated BPTT with a stride carries to its next window."""
        return self.rnn.states_at(step)

    def backward(
        self, doutputs: np.ndarray, dfinal: State | np.ndarray | None = None, input_grad: bool = True
    ) -> np.ndarray | None:
        dx, _ = self.rnn.backward_states(self.head.backward(doutputs), as_state(dfinal),
                                         input_grad=self._input_grad(input_grad), h0_grad=False)
        return embed_backward(self.embedding, dx)

    def stream(self, chunk: np.ndarray, state: State | np.ndarray | None = None,
               resets: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """One chunk ``(T_i, B, ...)`` of ``B`` streams, from ``state`` (None: the start): the
        outputs and the state to pass with the next chunk. Chunks of any sizes give what one
        ``forward`` over the whole streams gives, for inference (dropout off; the mode is put
        back after), resets included: ``resets`` ``(T_i, B)`` starts a stream again before a step
        (a new document or speaker in that stream while the others go on). One direction only:
        a backward direction needs each stream's end."""
        if self.rnn.bidirectional:
            raise ValueError("stream: a bidirectional model reads each sequence from its end too, which a stream "
                             "has not reached; call forward on whole sequences")
        training = self.training
        self.eval()
        try:
            return self.forward(chunk, state, resets=resets)
        finally:
            self.train(training)


class ManyToOne(_Reader):
    """One output for the whole sequence (sentiment, sequence classification, regression).

    The sequence is summarised by ``pooling``: ``"last"`` (the final hidden state ``h`` of the
    top layer: the last valid step going forward and, if bidirectional, step 0 going back; an
    LSTM's cell state ``c`` is not read), ``"mean"`` / ``"max"`` over valid steps, or
    ``"attention"``: the states weighted by a softmax over valid steps of their scores against a
    learned ``pool_query`` (zeros at the start: the mean). Other options as for ``_Reader``.
    ``forward(inputs, lengths=None) -> outputs (B, output_size)``; ``backward(doutputs,
    input_grad=True)`` as for :class:`ManyToMany`.
    """

    def __init__(self, output_size: int, hidden_size: int = 128, *, pooling: str = "last", **options) -> None:
        super().__init__(output_size, hidden_size, **options)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        if self.pooling == "attention":
            self.add_parameter("pool_query", np.zeros(self.rnn.output_size, dtype=self.rnn.dtype))
        self._cache: Any = None

    def forward(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        states, final = self.rnn.forward_states(embed_forward(self.embedding, inputs), None, lengths)
        h_n = final[0]
        directions = self.rnn.num_directions
        if self.pooling == "last":
            summary, pool_cache = np.concatenate(list(h_n[-directions:]), axis=-1), None
        elif self.pooling == "attention":
            summary, pool_cache = attention_pool_forward(states, lengths, self.params["pool_query"])
        else:
            summary, pool_cache = pool_forward(states, lengths, self.pooling)
        self._cache = (states.shape, h_n.shape, pool_cache)
        return self.head.forward(summary)

    def backward(self, doutputs: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        states_shape, h_n_shape, pool_cache = self._require_cache(self._cache)
        dsummary = self.head.backward(doutputs)
        directions, hidden = self.rnn.num_directions, self.rnn.hidden_size
        if self.pooling == "last":
            dstates = np.zeros(states_shape, dtype=dsummary.dtype)
            dh_n = np.zeros(h_n_shape, dtype=dsummary.dtype)
            dh_n[-directions:] = dsummary.reshape(-1, directions, hidden).transpose(1, 0, 2)
            dfinal = (dh_n,)  # an LSTM's c takes none: missing entries are zeros
        elif self.pooling == "attention":
            dstates, dquery = attention_pool_backward(dsummary, pool_cache, self.params["pool_query"])
            self.accumulate("pool_query", dquery)
            dfinal = None
        else:
            dstates, dfinal = pool_backward(dsummary, pool_cache, states_shape[0], self.pooling), None
        dx, _ = self.rnn.backward_states(dstates, dfinal, input_grad=self._input_grad(input_grad), h0_grad=False)
        self._cache = None
        return embed_backward(self.embedding, dx)


class OneToOne(Model):
    """A single step, ``T = 1``: feature vector ``(B, input_size)`` to ``(B, output_size)``.

    The degenerate RNN: ``h = act(W_xh x + b_h)`` (the recurrent term meets ``h0 = 0``), then
    ``y = W_hy h + b_y``: a one-hidden-layer network, the first box of the classic diagram. With
    a gated ``cell`` the gates read ``x`` alone the same way (an LSTM: ``h = o * tanh(i * g)``).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int = 128,
        *,
        cell: str = "rnn",
        nonlinearity: str = "tanh",
        loss: str = "cross_entropy",
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        self.loss_kind = check_choice("loss", loss, ("cross_entropy", "mse"))
        self.cell = cell
        self.rnn = recurrent(cell, input_size, hidden_size, 1, nonlinearity, dtype=dtype, seed=rng)
        self.head = Linear(hidden_size, output_size, dtype=dtype, seed=rng)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        inputs = np.asarray(inputs)
        if inputs.ndim != 2:
            raise ValueError(f"inputs: expected a 2-D array (B, input_size), got shape {inputs.shape}")
        states, _ = self.rnn.forward_states(inputs[None])
        return self.head.forward(states[0])

    def backward(self, doutputs: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """The input gradient ``(B, input_size)``, or None with ``input_grad=False`` (data)."""
        dstates = self.head.backward(doutputs)
        dx, _ = self.rnn.backward_states(dstates[None], input_grad=input_grad, h0_grad=False)
        return None if dx is None else dx[0]
