"""Layer normalisation (Ba, Kiros & Hinton 2016) over the last axis, forward and backward.

    y = gain * (a - mean(a)) / sqrt(var(a) + eps) + shift

``a`` is ``(..., W)``: one row per sequence and step; the statistics are each row's own, so the
recurrent cells can normalise a whole block of steps at once (the input side) or one step's
``(B, W)`` rows (the recurrent side). ``gain`` and ``shift`` are ``(W,)``. The forward keeps the
normalised rows and ``1 / sqrt(var + eps)``, ``(..., 1)``: all the backward needs.
"""

from __future__ import annotations

import numpy as np

#: added to the variance, as torch.nn.LayerNorm's default
EPS = 1e-5


def layer_norm_forward(a: np.ndarray, gain: np.ndarray, shift: np.ndarray, normalized: np.ndarray,
                       inv_std: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = gain * normalized + shift``, filling ``normalized`` (the shape of ``a``) and
    ``inv_std`` (``a``'s shape with a last axis of 1). ``out`` may be ``a`` itself."""
    mean = a.mean(axis=-1, keepdims=True)
    np.subtract(a, mean, out=normalized)
    np.mean(np.square(normalized), axis=-1, keepdims=True, out=inv_std)
    inv_std += EPS
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    normalized *= inv_std
    np.multiply(normalized, gain, out=out)
    out += shift
    return out


def layer_norm_backward(dy: np.ndarray, normalized: np.ndarray, inv_std: np.ndarray, gain: np.ndarray,
                        dgain: np.ndarray, dshift: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``dL/da`` into ``out`` (which may be ``dy``) from ``dy = dL/dy``, adding the gain's and the
    shift's gradients, summed over all rows, into ``dgain`` and ``dshift``:
    ``dL/da = inv_std * (g - mean(g) - normalized * mean(g * normalized))`` with ``g = gain * dy``."""
    axes = tuple(range(dy.ndim - 1))
    dgain += (dy * normalized).sum(axis=axes)
    dshift += dy.sum(axis=axes)
    g = np.multiply(dy, gain, out=out)
    projection = np.einsum("...w,...w->...", g, normalized)[..., None]
    projection /= g.shape[-1]
    g -= g.mean(axis=-1, keepdims=True)
    g -= normalized * projection
    g *= inv_std
    return g
