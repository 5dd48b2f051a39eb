"""Pooling over time: a sequence of states to one vector per sequence, over its valid steps only.

``pool_forward`` / ``pool_backward``: mean or max of ``(T, B, F)`` states over each sequence's
``lengths[b]`` valid steps -> ``(B, F)`` (what a many-to-one model reads besides the last state).
"""

from __future__ import annotations

import numpy as np


def pool_forward(
    states: np.ndarray, lengths: np.ndarray | None, mode: str
) -> tuple[np.ndarray, tuple]:
    """Mean or max of ``states (T, B, F)`` over each sequence's valid steps -> ``(B, F)``."""
    steps, batch, _ = states.shape
    valid = np.ones((steps, batch, 1), bool) if lengths is None else (np.arange(steps)[:, None] < lengths)[..., None]
    counts = valid.sum(axis=0)  # (B, 1)
    if mode == "mean":
        return (states * valid).sum(axis=0) / counts, (valid, counts, None)
    masked = np.where(valid, states, -np.inf)
    winners = masked.argmax(axis=0)  # (B, F): the step that won, per feature
    return np.take_along_axis(masked, winners[None], axis=0)[0], (valid, counts, winners)


def pool_backward(dpooled: np.ndarray, cache: tuple, steps: int, mode: str) -> np.ndarray:
    """Gradient of :func:`pool_forward` with respect to ``states`` ``(T, B, F)``."""
    valid, counts, winners = cache
    if mode == "mean":
        return np.broadcast_to(dpooled / counts, (steps, *dpooled.shape)) * valid
    dstates = np.zeros((steps, *dpooled.shape), dtype=dpooled.dtype)
    np.put_along_axis(dstates, winners[None], dpooled[None], axis=0)
    return dstates
