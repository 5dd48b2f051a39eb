"""Gradient clipping over all parameters at once, in place."""

from __future__ import annotations

import math

import numpy as np

from rnnkit.optim.optimizer import Params, as_triples


def clip_grad_norm(params: Params, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale every gradient by ``max_norm / (total_norm + 1e-6)`` when the global norm exceeds
    ``max_norm`` (``torch.nn.utils.clip_grad_norm_``). Returns the norm before clipping; a
    NaN/inf norm is returned without touching the gradients, for the caller to stop on."""
    grads = [grad for _, _, grad in as_triples(params)]
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) for g in grads)
    else:
        total = sum(float(np.sum(np.abs(g) ** norm_type)) for g in grads) ** (1.0 / norm_type)
    if not math.isfinite(total):
        return total
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for grad in grads:
            grad *= scale
    return total


def clip_grad_value(params: Params, clip_value: float) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]``."""
    if not clip_value > 0:
        raise ValueError(f"clip_value: expected a positive number, got {clip_value!r}")
    for _, _, grad in as_triples(params):
        np.clip(grad, -clip_value, clip_value, out=grad)
