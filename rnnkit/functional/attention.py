"""Attention over an encoder's outputs, forward and backward side by side.

Shapes: the decoder's queries ``query (T, B, H)`` (its outputs at every step: Luong-style
attention reads them after the recurrence, so training scores every step in one product and no
per-step loop), the memory ``memory (S, B, M)`` (the encoder's outputs) and its ``mask (S, B)``,
True at valid source positions. Scores and weights are ``(B, T, S)``: one ``(T, S)`` matrix per
example, the picture of what each output step read.

Scores (Luong, Pham & Manning 2015; Bahdanau, Cho & Bengio 2015):

- ``dot``:      ``score(q, m) = q . m``                      (needs ``H == M``)
- ``general``:  ``score(q, m) = q . (W m)``,                 ``W (H, M)``
- ``additive``: ``score(q, m) = v . tanh(W_q q + W_m m)``,   ``W_q (A, H)``, ``W_m (A, M)``, ``v (A,)``

``masked_softmax`` turns scores into weights over the valid source positions only: padding gets
exactly zero weight, hence exactly zero gradient. ``attend`` is the context ``c_t = sum_s
w_ts m_s``.
"""

from __future__ import annotations

import numpy as np

SCORES = ("dot", "general", "additive")


def _batch_first(x: np.ndarray) -> np.ndarray:
    return x.transpose(1, 0, 2)  # (T, B, X) <-> (B, T, X)


# -- scores ------------------------------------------------------------------------------------
def dot_scores(query: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``query (T, B, H)``, ``keys (S, B, H)`` -> ``scores (B, T, S)``: every ``q_t . k_s``."""
    return np.matmul(_batch_first(query), keys.transpose(1, 2, 0))


def dot_scores_backward(dscores: np.ndarray, query: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`dot_scores`: ``dquery (T, B, H)``, ``dkeys (S, B, H)``."""
    dquery = np.matmul(dscores, _batch_first(keys))  # (B, T, S) @ (B, S, H)
    dkeys = np.matmul(dscores.transpose(0, 2, 1), _batch_first(query))  # (B, S, T) @ (B, T, H)
    return _batch_first(dquery), _batch_first(dkeys)


def general_scores(query: np.ndarray, memory: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``q . (W m)``: ``W (H, M)``; returns ``scores (B, T, S)`` and the keys ``W m (S, B, H)``
    (for the backward)."""
    keys = memory @ W.T
    return dot_scores(query, keys), keys


def general_scores_backward(dscores: np.ndarray, query: np.ndarray, memory: np.ndarray, W: np.ndarray,
                            keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`general_scores`: ``dquery``, ``dmemory``, ``dW (H, M)``."""
    dquery, dkeys = dot_scores_backward(dscores, query, keys)
    flat_dkeys, flat_memory = dkeys.reshape(-1, dkeys.shape[-1]), memory.reshape(-1, memory.shape[-1])
    return dquery, dkeys @ W, flat_dkeys.T @ flat_memory


def additive_scores(query: np.ndarray, memory: np.ndarray, W_q: np.ndarray, W_m: np.ndarray,
                    v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``v . tanh(W_q q_t + W_m m_s)`` for every ``(t, s)``: returns ``scores (B, T, S)`` and the
    hidden layer ``z (B, T, S, A)`` (for the backward). Projections are made once per query and
    once per memory position; only the sum and the tanh are per pair."""
    projected_query = _batch_first(query @ W_q.T)  # (B, T, A)
    projected_memory = _batch_first(memory @ W_m.T)  # (B, S, A)
    z = np.add(projected_query[:, :, None, :], projected_memory[:, None, :, :])
    np.tanh(z, out=z)
    return z @ v, z


def additive_scores_backward(dscores: np.ndarray, query: np.ndarray, memory: np.ndarray, W_q: np.ndarray,
                             W_m: np.ndarray, v: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gradients of :func:`additive_scores`: ``dquery``, ``dmemory``, ``dW_q``, ``dW_m``, ``dv``."""
    size = v.shape[0]
    dv = dscores.reshape(-1) @ z.reshape(-1, size)
    # (B, T, S, A) through the tanh, in one buffer: dscores * v * (1 - z^2)
    dpre = np.multiply(z, z)
    np.subtract(1.0, dpre, out=dpre)
    dpre *= dscores[..., None]
    dpre *= v
    dprojected_query = _batch_first(dpre.sum(axis=2))  # (T, B, A)
    dprojected_memory = _batch_first(dpre.sum(axis=1))  # (S, B, A)
    dW_q = dprojected_query.reshape(-1, W_q.shape[0]).T @ query.reshape(-1, query.shape[-1])
    dW_m = dprojected_memory.reshape(-1, W_m.shape[0]).T @ memory.reshape(-1, memory.shape[-1])
    return dprojected_query @ W_q, dprojected_memory @ W_m, dW_q, dW_m, dv


# -- weights and context ----------------------------------------------------------------------------
def masked_softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax of ``scores (B, T, S)`` over the source positions where ``mask (S, B)`` is True;
    the others get exactly 0. Every sequence needs at least one valid position."""
    valid = mask.T[:, None, :]  # (B, 1, S)
    shifted = np.where(valid, scores, -np.inf)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)  # exp(-inf) = 0 at padding
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights


def masked_softmax_backward(dweights: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Gradient of :func:`masked_softmax` with respect to the scores; zero at padding (where the
    weight is zero)."""
    return weights * (dweights - np.sum(dweights * weights, axis=-1, keepdims=True))


def attend(weights: np.ndarray, memory: np.ndarray) -> np.ndarray:
    """Context ``c_t = sum_s w_ts m_s``: ``weights (B, T, S)``, ``memory (S, B, M)`` -> ``(T, B, M)``."""
    return _batch_first(np.matmul(weights, _batch_first(memory)))


def attend_backward(dcontext: np.ndarray, weights: np.ndarray, memory: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`attend`: ``dweights (B, T, S)``, ``dmemory (S, B, M)``."""
    dcontext_b = _batch_first(dcontext)  # (B, T, M)
    dweights = np.matmul(dcontext_b, memory.transpose(1, 2, 0))  # (B, T, M) @ (B, M, S)
    dmemory = np.matmul(weights.transpose(0, 2, 1), dcontext_b)  # (B, S, T) @ (B, T, M)
    return dweights, _batch_first(dmemory)


# -- the whole attention: scores, weights, context -------------------------------------------------
def attention_forward(kind: str, query: np.ndarray, memory: np.ndarray, mask: np.ndarray,
                      params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Context ``(T, B, M)`` and weights ``(B, T, S)`` of ``query`` over ``memory``; ``params``:
    none for ``dot``, ``W`` for ``general``, ``W_q``, ``W_m``, ``v`` for ``additive``. The cache
    is for :func:`attention_backward`."""
    if kind == "dot":
        scores, extra = dot_scores(query, memory), None
    elif kind == "general":
        scores, extra = general_scores(query, memory, params["W"])
    elif kind == "additive":
        scores, extra = additive_scores(query, memory, params["W_q"], params["W_m"], params["v"])
    else:
        raise ValueError(f"attention: expected one of {', '.join(SCORES)}, got {kind!r}")
    weights = masked_softmax(scores, mask)
    return attend(weights, memory), weights, (kind, query, memory, params, weights, extra)


def attention_backward(dcontext: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Gradients of :func:`attention_forward`: ``dquery``, ``dmemory`` and the parameters'."""
    kind, query, memory, params, weights, extra = cache
    dweights, dmemory = attend_backward(dcontext, weights, memory)
    dscores = masked_softmax_backward(dweights, weights)
    if kind == "dot":
        dquery, dmemory_scores = dot_scores_backward(dscores, query, memory)
        grads = {}
    elif kind == "general":
        dquery, dmemory_scores, dW = general_scores_backward(dscores, query, memory, params["W"], extra)
        grads = {"W": dW}
    else:
        dquery, dmemory_scores, dW_q, dW_m, dv = additive_scores_backward(
            dscores, query, memory, params["W_q"], params["W_m"], params["v"], extra)
        grads = {"W_q": dW_q, "W_m": dW_m, "v": dv}
    return dquery, dmemory + dmemory_scores, grads
