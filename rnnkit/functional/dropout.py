"""Inverted dropout: zero each element with probability ``p`` and scale the survivors by
``1 / (1 - p)`` at training time, so that evaluation needs no rescaling."""

from __future__ import annotations

import numpy as np


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator, training: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Returns ``y`` (shape of ``x``) and the cache: the scaled keep-mask, or None when inactive.

    Randomness comes only from ``rng``, so a seeded generator reproduces the same masks.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p: expected a dropout probability in [0, 1), got {p}")
    if not training or p == 0.0:
        return x, None
    scaled_mask = (rng.random(x.shape) >= p).astype(x.dtype)
    scaled_mask *= 1.0 / (1.0 - p)
    return x * scaled_mask, scaled_mask


def dropout_backward(dy: np.ndarray, cache: np.ndarray | None) -> np.ndarray:
    """Returns ``dx = dy * scaled_mask`` (``dy`` itself when dropout was inactive)."""
    return dy if cache is None else dy * cache
