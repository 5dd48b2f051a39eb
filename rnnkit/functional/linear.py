"""Affine map applied independently at every position: ``y = x W^T + b``.

Shapes: ``x (..., I)`` (e.g. ``(T, B, I)``), ``W (O, I)``, ``b (O,)``, ``y (..., O)``. All leading
axes are flattened into one so that every time step goes through a single matrix product.
"""

from __future__ import annotations

import numpy as np


def linear_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``y (..., O)`` and the cache (the input)."""
    y = x.reshape(-1, x.shape[-1]) @ W.T
    if b is not None:
        y += b
    return y.reshape(*x.shape[:-1], W.shape[0]), x


def linear_backward(
    dy: np.ndarray, cache: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns ``dx (..., I)``, ``dW (O, I)``, ``db (O,)``."""
    x = cache
    flat_dy = dy.reshape(-1, W.shape[0])
    dx = (flat_dy @ W).reshape(x.shape)
    dW = flat_dy.T @ x.reshape(-1, W.shape[1])
    return dx, dW, flat_dy.sum(axis=0)
