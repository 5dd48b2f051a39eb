"""Embedding lookup: integer ids ``(...)`` to vectors ``(..., E)`` through a table ``W (V, E)``."""

from __future__ import annotations

import numpy as np


def embedding_forward(ids: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``W[ids]`` of shape ``(..., E)`` and the cache (the ids)."""
    return W[ids], ids


def embedding_backward(
    dy: np.ndarray, cache: np.ndarray, num_embeddings: int, padding_idx: int | None = None
) -> np.ndarray:
    """Returns ``dW (V, E)``: the rows of ``dy`` summed per id (an id may occur many times).

    ``padding_idx``, if given, receives no gradient, as in ``torch.nn.Embedding``.
    """
    ids = cache.reshape(-1)
    flat_dy = dy.reshape(ids.size, -1)
    dW = np.zeros((num_embeddings, flat_dy.shape[1]), dtype=dy.dtype)
    # add.at (unbuffered) is required: plain fancy-index += would drop repeated ids.
    np.add.at(dW, ids, flat_dy)
    if padding_idx is not None:
        dW[padding_idx] = 0.0
    return dW
