"""Embedding table: integer ids to dense vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit._checks import check_float_dtype, check_positive_int
from rnnkit.functional.dropout import dropout_backward, dropout_forward
from rnnkit.functional.embedding import embedding_backward, embedding_forward
from rnnkit.nn.module import Module, resolve_rng


class Embedding(Module):
    """``ids (...) -> W[ids] (..., embedding_dim)`` with ``W (num_embeddings, embedding_dim)``
    drawn from ``N(0, 1)`` as in PyTorch. ``padding_idx`` starts at zero and gets no gradient.
    ``dropout``: in training, each element of the looked-up vectors is zeroed with this
    probability (inverted dropout: the survivors scaled by ``1 / (1 - p)``), the usual
    regularizer of a text model's first layer; masks drawn from ``seed``."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        check_positive_int("num_embeddings", num_embeddings)
        check_positive_int("embedding_dim", embedding_dim)
        if padding_idx is not None and not 0 <= padding_idx < num_embeddings:
            raise ValueError(f"padding_idx: expected an id in 0..{num_embeddings - 1}, got {padding_idx}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        self.dtype = check_float_dtype(dtype)
        self.rng = resolve_rng(seed)
        table = self.rng.standard_normal((num_embeddings, embedding_dim)).astype(self.dtype)
        if padding_idx is not None:
            table[padding_idx] = 0.0
        self.add_parameter("W", table)
        self._cache: Any = None  # what backward needs, from the last forward

    def extra_repr(self) -> str:
        dropout = f", dropout={self.dropout}" if self.dropout else ""
        return (f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}{dropout}, "
                f"dtype={self.dtype.name}")

    def forward(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids: expected integer token ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(
                f"ids: expected ids in 0..{self.num_embeddings - 1}, got min {ids.min()} and max {ids.max()}"
            )
        y, cache = embedding_forward(ids, self.params["W"])
        y, mask = dropout_forward(y, self.dropout, self.rng, self.training)
        self._cache = (cache, mask)
        return y

    def backward(self, dy: np.ndarray) -> None:
        """Adds the table's gradient into ``grads["W"]``; ids have no gradient, so returns None."""
        ids, mask = self._require_cache(self._cache)
        dy = np.asarray(dy, dtype=self.dtype)
        if dy.shape != ids.shape + (self.embedding_dim,):
            raise ValueError(f"dy: expected shape {ids.shape + (self.embedding_dim,)}, got {dy.shape}")
        dy = dropout_backward(dy, mask)
        self.accumulate("W", embedding_backward(dy, ids, self.num_embeddings, self.padding_idx))
        self._cache = None
        return None
