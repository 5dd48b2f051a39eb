"""One-to-many (a vector sets the state of a decoder that emits a sequence) and the
encoder-decoder (a sequence sets it). Both train with teacher forcing: the decoder reads the
true previous token, ``[bos, y_1, ..., y_{T-1}]``, and predicts ``[y_1, ..., y_T]``."""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_choice, check_float_dtype
from rnnkit.functional.activations import activation_backward, activation_forward
from rnnkit.models.base import Model
from rnnkit.models.decoding import generate
from rnnkit.models.states import DecoderState, State, join_directions, split_directions
from rnnkit.nn.attention import Attention
from rnnkit.nn.embedding import Embedding
from rnnkit.nn.factory import recurrent, state_names
from rnnkit.nn.linear import Linear
from rnnkit.nn.module import Module, resolve_rng


class Decoder(Module):
    """Embedding -> unidirectional recurrent layer (``cell``) -> [attention] -> Linear over the vocabulary.

    Its state is a tuple of ``(L, B, H)`` arrays, one per name in ``rnn.cell.state_names``; with
    ``attention`` (an ``Attention`` over an encoder's outputs) it is a ``DecoderState``, which
    carries that memory and its mask beside the tuple."""

    def __init__(self, vocab_size, embed_dim, hidden_size, num_layers, nonlinearity, dropout, dtype, rng,
                 cell: str = "rnn", attention: Attention | None = None, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0, layer_norm: bool = False) -> None:
        super().__init__()
        self.embedding = Embedding(vocab_size, embed_dim, padding_idx=0, dtype=dtype, seed=rng)
        self.rnn = recurrent(cell, embed_dim, hidden_size, num_layers, nonlinearity, dropout=dropout, dtype=dtype,
                             seed=rng, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                             layer_norm=layer_norm)
        self.attention = attention
        self.head = Linear(hidden_size, vocab_size, dtype=dtype, seed=rng)

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.rnn.cell.state_names

    def forward(self, inputs: np.ndarray, state: State | DecoderState,
                lengths: np.ndarray | None = None) -> tuple[np.ndarray, State | DecoderState]:
        if self.attention is not None and not isinstance(state, DecoderState):
            raise ValueError("an attentional decoder needs a DecoderState (its memory and mask), got a bare state")
        recurrent_state = state.states if isinstance(state, DecoderState) else state
        final: State | DecoderState
        out, final = self.rnn.forward_states(self.embedding.forward(inputs), recurrent_state, lengths)
        # with attention the state is a DecoderState (checked above): the isinstance only narrows it
        if self.attention is not None and isinstance(state, DecoderState):
            out, _ = self.attention.forward(out, state.memory, state.mask)
            final = DecoderState(final, state.memory, state.mask)
        return self.head.forward(out), final

    def backward(self, dlogits: np.ndarray) -> tuple[State, np.ndarray | None]:
        """Returns the gradients of the initial state (a tuple like it) and, with attention, of
        the memory ``(S, B, M)`` (else None)."""
        dout = self.head.backward(dlogits)
        dmemory = None
        if self.attention is not None:
            dout, dmemory = self.attention.backward(dout)
        dx, dinitial = self.rnn.backward_states(dout)
        assert dx is not None and dinitial is not None  # the defaults ask for both (input_grad, h0_grad)
        self.embedding.backward(dx)
        return dinitial, dmemory

    def step(self, ids: np.ndarray, state: State | DecoderState) -> tuple[np.ndarray, State | DecoderState]:
        """One step for generation: ``ids (B,)`` and the state -> ``logits (B, V)``, new state."""
        logits, final = self.forward(ids[None], state)
        return logits[0], final


class _Bridge(Module):
    """``tanh(W v + b)`` split into the decoder's states, each ``(L, B, H)``: how a vector
    becomes a decoder state (``(h0,)``, or ``(h0, c0)`` for an LSTM: one projection for all)."""

    def __init__(self, in_features, num_layers, hidden_size, dtype, rng, num_states: int = 1) -> None:
        super().__init__()
        self.num_layers, self.hidden_size, self.num_states = num_layers, hidden_size, num_states
        self.proj = Linear(in_features, num_states * num_layers * hidden_size, dtype=dtype, seed=rng)
        self._h0: np.ndarray | None = None

    def forward(self, v: np.ndarray) -> State:
        h0, self._h0 = activation_forward(self.proj.forward(v), "tanh")  # (B, S * L * H)
        per_state = h0.reshape(-1, self.num_states, self.num_layers, self.hidden_size)
        return tuple(per_state[:, k].transpose(1, 0, 2) for k in range(self.num_states))

    def backward(self, dstate: State) -> np.ndarray:
        h0 = self._require_cache(self._h0)
        dstacked = np.stack([d.transpose(1, 0, 2) for d in dstate], axis=1)  # (B, S, L, H)
        dflat = activation_backward(dstacked.reshape(h0.shape), h0, "tanh")
        self._h0 = None
        return self.proj.backward(dflat)


class OneToMany(Model):
    """A feature vector (an image, say) to a token sequence (its caption).

    The vector sets every state of the decoder (``cell``: ``"rnn"``, ``"lstm"`` or ``"gru"``).
    ``forward(features (B, F), inputs (T, B), lengths=None) -> logits (T, B, V)`` with teacher
    forcing; ``generate(features, ...)`` decodes greedily, by temperature sampling or by beam
    search.
    """

    def __init__(
        self,
        feature_size: int,
        vocab_size: int,
        hidden_size: int = 128,
        *,
        embed_dim: int = 32,
        cell: str = "rnn",
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        self.cell = cell
        self.bridge = _Bridge(feature_size, num_layers, hidden_size, dtype, rng,
                              num_states=len(state_names(cell)))
        self.decoder = Decoder(vocab_size, embed_dim, hidden_size, num_layers, nonlinearity, dropout, dtype, rng,
                               cell=cell, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                               layer_norm=layer_norm)

    def forward(self, features: np.ndarray, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        logits, _ = self.decoder.forward(inputs, self.bridge.forward(features), lengths)
        return logits

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        """Returns the gradient with respect to ``features``."""
        return self.bridge.backward(self.decoder.backward(dlogits)[0])

    def generate(self, features: np.ndarray, bos: int, eos: int, max_len: int = 20, **options) -> list[list[int]]:
        """Token ids for each feature vector; ``options``: method, temperature, beam_size, rng."""
        return generate(self.decoder.step, self.bridge.forward(features), bos, eos, max_len, **options)


ATTENTIONS = ("none", "dot", "general", "additive")


class Seq2Seq(Model):
    """Encoder-decoder for translation.

    The encoder (embedding + recurrent layer of ``cell``, optionally bidirectional and deep) reads
    the source; its final states (``h``, and ``c`` for an LSTM) start the decoder, of the same
    cell. With a bidirectional encoder each layer's forward and reverse final states are joined,
    state by state, by ``tanh(W [s_fwd; s_rev] + b)`` (one bridge per state: ``bridge`` for
    ``h``, ``bridge_c`` for an LSTM's ``c``); otherwise they pass straight through.

    ``attention`` (``"dot"``, ``"general"``, ``"additive"``; ``"none"`` by default): the
    decoder's outputs attend over the encoder's outputs at every step (Luong-style, see
    ``rnnkit.nn.attention``), so the source is no longer squeezed into one state; the decoder
    state is then a ``DecoderState`` carrying the encoder's outputs and mask, and the encoder's
    outputs take gradients. ``dot`` needs the encoder's output size (``2 * hidden_size`` when
    bidirectional) to equal ``hidden_size``.

    ``forward(source (S, B), source_lengths, inputs (T, B), lengths=None) -> logits (T, B, V)``;
    ``attention_weights()`` -> ``(B, T, S)`` of the last forward.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        hidden_size: int = 128,
        *,
        embed_dim: int = 64,
        cell: str = "rnn",
        num_layers: int = 1,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
        attention: str = "none",
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        check_choice("attention", attention, ATTENTIONS)
        dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        self.cell = cell
        self.attention_kind = attention
        self.source_embedding = Embedding(source_vocab_size, embed_dim, padding_idx=0, dtype=dtype, seed=rng)
        self.encoder = recurrent(cell, embed_dim, hidden_size, num_layers, nonlinearity, bidirectional, dropout,
                                 dtype=dtype, seed=rng, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                                 layer_norm=layer_norm)
        self.bridge_names = tuple("bridge" if name == "h" else f"bridge_{name}"
                                  for name in self.encoder.cell.state_names) if bidirectional else ()
        for name in self.bridge_names:
            setattr(self, name, Linear(2 * hidden_size, hidden_size, dtype=dtype, seed=rng))
        if attention == "dot" and self.encoder.output_size != hidden_size:
            raise ValueError(f"dot attention needs the encoder's outputs ({self.encoder.output_size}: bidirectional) "
                             f"the size of the decoder's ({hidden_size}); use 'general' or 'additive', or a "
                             f"unidirectional encoder")
        attend = None if attention == "none" else Attention(hidden_size, self.encoder.output_size, attention,
                                                             dtype=dtype, seed=rng)
        self.decoder = Decoder(target_vocab_size, embed_dim, hidden_size, num_layers, nonlinearity, dropout, dtype, rng,
                               cell=cell, attention=attend, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                               layer_norm=layer_norm)
        self._cache: tuple[int, int, State | None] | None = None

    def encode(self, source: np.ndarray, source_lengths: np.ndarray | None = None) -> State | DecoderState:
        """The decoder's initial state for a source ``(S, B)``: a tuple of ``(L, B, H)`` arrays,
        or with attention a ``DecoderState`` that also holds the encoder's outputs and mask."""
        outputs, final = self.encoder.forward_states(self.source_embedding.forward(source), None, source_lengths)
        steps, batch = np.shape(source)[:2]
        initial = None
        if self.encoder.bidirectional:
            layers = self.encoder.num_layers
            initial = tuple(activation_forward(getattr(self, name).forward(join_directions(state, layers)), "tanh")[0]
                            for name, state in zip(self.bridge_names, final))
        self._cache = (steps, batch, initial)
        start = initial if initial is not None else final
        if self.decoder.attention is None:
            return start
        lengths = np.full(batch, steps) if source_lengths is None else np.asarray(source_lengths)
        return DecoderState(start, outputs, np.arange(steps)[:, None] < lengths[None, :])

    def encode_stream(self, chunk: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """The encoder over one chunk ``(S_i, B)`` of the source, from ``state`` (None: the start):
        its outputs ``(S_i, B, H)`` and the state to pass with the next chunk. Chunks of any sizes
        give what :meth:`encode` gives over the whole source; :meth:`decoder_start` turns the
        streamed encoding into the decoder's initial state. For inference (dropout off; the mode
        is put back after), with a unidirectional encoder: a reverse one needs the source's end."""
        if self.encoder.bidirectional:
            raise ValueError("encode_stream: a bidirectional encoder reads the source from its end too, which a "
                             "stream has not reached; call encode on the whole source")
        training = self.training
        self.eval()
        try:
            return self.encoder.forward_states(self.source_embedding.forward(chunk), state)
        finally:
            self.train(training)

    def decoder_start(self, outputs: np.ndarray, state: State) -> State | DecoderState:
        """The decoder's initial state from a streamed encoding: the encoder's last ``state`` and,
        with attention, its ``outputs`` ``(S, B, H)`` of every chunk joined along time (no padding)."""
        if self.decoder.attention is None:
            return state
        return DecoderState(state, outputs, np.ones(outputs.shape[:2], dtype=bool))

    def generate_from(self, start: State | DecoderState, bos: int, eos: int, max_len: int = 30,
                      **options) -> list[list[int]]:
        """:meth:`generate` from a decoder state already made (:meth:`decoder_start`, :meth:`encode`)."""
        return generate(self.decoder.step, start, bos, eos, max_len, **options)

    def forward(
        self,
        source: np.ndarray,
        source_lengths: np.ndarray | None,
        inputs: np.ndarray,
        lengths: np.ndarray | None = None,
    ) -> np.ndarray:
        logits, _ = self.decoder.forward(inputs, self.encode(source, source_lengths), lengths)
        return logits

    def attention_weights(self) -> np.ndarray | None:
        """The attention weights ``(B, T, S)`` of the last forward (None without attention)."""
        return None if self.decoder.attention is None else self.decoder.attention.last_weights

    def backward(self, dlogits: np.ndarray) -> None:
        steps, batch, initial = self._require_cache(self._cache)
        dinitial, dmemory = self.decoder.backward(dlogits)
        if self.encoder.bidirectional:
            dfinal = tuple(split_directions(getattr(self, name).backward(activation_backward(d, state, "tanh")))
                           for name, state, d in zip(self.bridge_names, initial, dinitial))
        else:
            dfinal = dinitial
        if dmemory is None:  # without attention the outputs feed nothing: their gradient is zero
            dmemory = np.zeros((steps, batch, self.encoder.output_size), dtype=dfinal[0].dtype)
        dx, _ = self.encoder.backward_states(dmemory, dfinal, h0_grad=False)
        assert dx is not None  # input_grad is on: the embedding takes the gradient
        self.source_embedding.backward(dx)
        self._cache = None

    def generate(
        self, source: np.ndarray, source_lengths: np.ndarray | None, bos: int, eos: int, max_len: int = 30, **options
    ) -> list[list[int]]:
        """Target ids for each source sequence; ``options``: method, temperature, beam_size, rng."""
        return self.generate_from(self.encode(source, source_lengths), bos, eos, max_len, **options)
