"""Pooling over time: a sequence of states to one vector per sequence, over its valid steps only.

``pool_forward`` / ``pool_backward``: mean or max of ``(T, B, F)`` states over each sequence's
``lengths[b]`` valid steps -> ``(B, F)`` (what a many-to-one model reads besides the last state).
``attention_pool_forward`` / ``attention_pool_backward``: their weighted sum, each step weighted by
the softmax over valid steps of its score against a learned query (Yang et al. 2016's attention
pooling, with the query scoring the states directly).
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


def _valid(steps: int, batch: int, lengths: np.ndarray | None) -> np.ndarray:
    """``(T, B)`` bool: the valid steps of each sequence."""
    return np.ones((steps, batch), bool) if lengths is None else np.arange(steps)[:, None] < lengths


def attention_pool_forward(
    states: np.ndarray, lengths: np.ndarray | None, query: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """``sum_t a_t s_t`` over each sequence's valid steps, ``a = softmax_t(s_t . query)``.

    states ``(T, B, F)``, lengths ``(B,)`` or None, query ``(F,)`` -> ``(B, F)``. A zero query
    weighs the valid steps alike: the mean.
    """
    steps, batch, _ = states.shape
    scores = np.where(_valid(steps, batch, lengths), states @ query, -np.inf)  # (T, B)
    weights = np.exp(scores - scores.max(axis=0))  # padding: exp(-inf) = 0
    weights /= weights.sum(axis=0)
    return np.einsum("tb,tbf->bf", weights, states), (states, weights)


def attention_pool_backward(
    dpooled: np.ndarray, cache: tuple, query: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`attention_pool_forward`: ``(dstates (T, B, F), dquery (F,))``."""
    states, weights = cache
    dweights = np.einsum("tbf,bf->tb", states, dpooled)
    dscores = weights * (dweights - (weights * dweights).sum(axis=0))  # the softmax's Jacobian
    dstates = weights[..., None] * dpooled + dscores[..., None] * query
    return dstates, np.einsum("tb,tbf->f", dscores, states)
