"""One-to-many (a vector sets the state of a decoder that emits a sequence) and the
encoder-decoder (a sequence sets it). Both train with teacher forcing: the decoder reads the
true previous token, ``[bos, y_1, ..., y_{T-1}]``, and predicts ``[y_1, ..., y_T]``."""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_float_dtype
from rnnkit.functional.activations import tanh_derivative
from rnnkit.models.base import Model
from rnnkit.models.decoding import generate
from rnnkit.nn.embedding import Embedding
from rnnkit.nn.linear import Linear
from rnnkit.nn.module import Module, resolve_rng
from rnnkit.nn.rnn import RNN


class Decoder(Module):
    """Embedding -> unidirectional RNN -> Linear over the vocabulary."""

    def __init__(self, vocab_size, embed_dim, hidden_size, num_layers, nonlinearity, dropout, dtype, rng) -> None:
        super().__init__()
        self.embedding = Embedding(vocab_size, embed_dim, padding_idx=0, dtype=dtype, seed=rng)
        self.rnn = RNN(embed_dim, hidden_size, num_layers, nonlinearity, dropout=dropout, dtype=dtype, seed=rng)
        self.head = Linear(hidden_size, vocab_size, dtype=dtype, seed=rng)

    def forward(self, inputs: np.ndarray, h0: np.ndarray, lengths: np.ndarray | None = None):
        states, h_n = self.rnn.forward(self.embedding.forward(inputs), h0, lengths)
        return self.head.forward(states), h_n

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        """Returns ``dh0``."""
        dx, dh0 = self.rnn.backward(self.head.backward(dlogits))
        self.embedding.backward(dx)
        return dh0

    def step(self, ids: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step for generation: ``ids (B,)``, ``h (L, B, H)`` -> ``logits (B, V)``, new ``h``."""
        logits, h_n = self.forward(ids[None], h)
        return logits[0], h_n


class _Bridge(Module):
    """``h0 = tanh(W v + b)`` reshaped to ``(L, B, H)``: how a vector becomes a decoder state."""

    def __init__(self, in_features, num_layers, hidden_size, dtype, rng) -> None:
        super().__init__()
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.proj = Linear(in_features, num_layers * hidden_size, dtype=dtype, seed=rng)
        self._h0 = None

    def forward(self, v: np.ndarray) -> np.ndarray:
        h0 = np.tanh(self.proj.forward(v))  # (B, L * H)
        self._h0 = h0
        return h0.reshape(-1, self.num_layers, self.hidden_size).transpose(1, 0, 2)

    def backward(self, dh0: np.ndarray) -> np.ndarray:
        h0 = self._require_cache(self._h0)
        dflat = dh0.transpose(1, 0, 2).reshape(h0.shape) * tanh_derivative(h0)
        self._h0 = None
        return self.proj.backward(dflat)


class OneToMany(Model):
    """A feature vector (an image, say) to a token sequence (its caption).

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
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        dropout: float = 0.0,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        self.bridge = _Bridge(feature_size, num_layers, hidden_size, dtype, rng)
        self.decoder = Decoder(vocab_size, embed_dim, hidden_size, num_layers, nonlinearity, dropout, dtype, rng)

    def forward(self, features: np.ndarray, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        logits, _ = self.decoder.forward(inputs, self.bridge.forward(features), lengths)
        return logits

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        """Returns the gradient with respect to ``features``."""
        return self.bridge.backward(self.decoder.backward(dlogits))

    def generate(self, features: np.ndarray, bos: int, eos: int, max_len: int = 20, **options) -> list[list[int]]:
        """Token ids for each feature vector; ``options``: method, temperature, beam_size, rng."""
        return generate(self.decoder.step, self.bridge.forward(features), bos, eos, max_len, **options)


class Seq2Seq(Model):
    """Encoder-decoder for translation.

    The encoder (embedding + RNN, optionally bidirectional and deep) reads the source; its final
    states start the decoder. With a bidirectional encoder each layer's forward and reverse final
    states are joined by ``tanh(W [h_fwd; h_rev] + b)``; otherwise they pass straight through.

    ``forward(source (S, B), source_lengths, inputs (T, B), lengths=None) -> logits (T, B, V)``.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        hidden_size: int = 128,
        *,
        embed_dim: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
        dropout: float = 0.0,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        self.source_embedding = Embedding(source_vocab_size, embed_dim, padding_idx=0, dtype=dtype, seed=rng)
        self.encoder = RNN(embed_dim, hidden_size, num_layers, nonlinearity, bidirectional, dropout, dtype=dtype, seed=rng)
        if bidirectional:
            self.bridge = Linear(2 * hidden_size, hidden_size, dtype=dtype, seed=rng)
        self.decoder = Decoder(target_vocab_size, embed_dim, hidden_size, num_layers, nonlinearity, dropout, dtype, rng)
        self._cache = None

    def encode(self, source: np.ndarray, source_lengths: np.ndarray | None = None) -> np.ndarray:
        """The decoder's initial state ``(L, B, H)`` for a source batch ``(S, B)``."""
        _, h_n = self.encoder.forward(self.source_embedding.forward(source), None, source_lengths)
        steps, batch = np.shape(source)[:2]
        self._cache = (steps, batch, h_n.shape, None)
        if not self.encoder.bidirectional:
            return h_n
        layers, hidden = self.encoder.num_layers, self.encoder.hidden_size
        joined = h_n.reshape(layers, 2, batch, hidden).transpose(0, 2, 1, 3).reshape(layers, batch, 2 * hidden)
        h0 = np.tanh(self.bridge.forward(joined))
        self._cache = (steps, batch, h_n.shape, h0)
        return h0

    def forward(
        self,
        source: np.ndarray,
        source_lengths: np.ndarray | None,
        inputs: np.ndarray,
        lengths: np.ndarray | None = None,
    ) -> np.ndarray:
        logits, _ = self.decoder.forward(inputs, self.encode(source, source_lengths), lengths)
        return logits

    def backward(self, dlogits: np.ndarray) -> None:
        steps, batch, h_n_shape, h0 = self._require_cache(self._cache)
        dh0 = self.decoder.backward(dlogits)
        if self.encoder.bidirectional:
            layers, hidden = self.encoder.num_layers, self.encoder.hidden_size
            djoined = self.bridge.backward(dh0 * tanh_derivative(h0))
            dh_n = djoined.reshape(layers, batch, 2, hidden).transpose(0, 2, 1, 3).reshape(h_n_shape)
        else:
            dh_n = dh0
        encoder_out = np.zeros((steps, batch, self.encoder.output_size), dtype=dh_n.dtype)
        dx, _ = self.encoder.backward(encoder_out, dh_n, h0_grad=False)
        self.source_embedding.backward(dx)
        self._cache = None

    def generate(
        self, source: np.ndarray, source_lengths: np.ndarray | None, bos: int, eos: int, max_len: int = 30, **options
    ) -> list[list[int]]:
        """Target ids for each source sequence; ``options``: method, temperature, beam_size, rng."""
        return generate(self.decoder.step, self.encode(source, source_lengths), bos, eos, max_len, **options)
