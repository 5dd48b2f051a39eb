"""Gradient clipping over all parameters at once, in place: the usual cure for exploding
gradients in backpropagation through time (Pascanu et al., 2013)."""

from __future__ import annotations

import math

import numpy as np

from rnnkit.optim._checks import check_number
from rnnkit.optim.optimizer import Params, as_triples

#: added to the norm before dividing, as in ``torch.nn.utils.clip_grad_norm_``
CLIP_EPSILON = 1e-6


def _fast_norm(grads: list[np.ndarray], norm_type: float) -> float:
    if norm_type == math.inf:
        # max and -min instead of abs(): no temporary; NaN propagates through max/min
        peaks = [max(float(g.max()), -float(g.min())) for g in grads if g.size]
        return math.nan if any(math.isnan(x) for x in peaks) else max(peaks, default=0.0)
    if norm_type == 2.0:
        # a dot product per array: no temporary, and BLAS's summation is accurate enough
        return math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if norm_type == 1.0:
        return sum(float(np.abs(g).sum()) for g in grads)
    return sum(float(np.sum(np.abs(g) ** norm_type)) for g in grads) ** (1.0 / norm_type)


def _scaled_norm(grads: list[np.ndarray], norm_type: float) -> float:
    """The same norm for finite gradients whose powers overflow: divided by the largest entry
    first, in float64 (float32 squares overflow from entries of about 1.8e19)."""
    peak = max(float(np.max(np.abs(g))) for g in grads if g.size)
    if peak == 0.0:
        return 0.0
    total = sum(float(np.sum((np.abs(g, dtype=np.float64) / peak) ** norm_type)) for g in grads)
    return peak * total ** (1.0 / norm_type)


def grad_norm(params: Params, norm_type: float = 2.0) -> float:
    """The norm of all gradients taken as one vector (torch's ``get_total_norm``).

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        Whose gradients to measure.
    norm_type : float
        ``p`` of the p-norm, > 0, or ``math.inf`` for the largest absolute entry.

    Returns
    -------
    float
        The norm; NaN if any gradient holds NaN, inf if any holds inf.
    """
    return _total_norm([grad for _, _, grad in as_triples(params)], norm_type)


def _total_norm(grads: list[np.ndarray], norm_type: float) -> float:
    norm_type = check_number("norm_type", norm_type, low_open=True, allow_inf=True)
    total = _fast_norm(grads, norm_type)
    if not math.isfinite(total) and all(np.isfinite(g).all() for g in grads):
        total = _scaled_norm(grads, norm_type)  # rare: only when the fast sum overflowed
    return total


def clip_grad_norm(params: Params, max_norm: float, norm_type: float = 2.0) -> float:
    """Rescale all gradients together so that their global norm is at most ``max_norm``.

    When the norm ``N`` of all gradients (one long vector) exceeds ``max_norm``, every
    gradient is multiplied by ``max_norm / (N + 1e-6)``, as ``torch.nn.utils.clip_grad_norm_``
    does; the direction of the update is kept, only its length shrinks.

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        Whose gradients to clip, in place.
    max_norm : float
        The largest norm allowed, > 0; ``math.inf`` measures without clipping.
    norm_type : float
        ``p`` of the p-norm, > 0, or ``math.inf``.

    Returns
    -------
    float
        The norm before clipping. If it is NaN or inf the gradients are left untouched (torch
        would scale them by NaN or 0): the caller sees the value and stops the run instead of
        taking a poisoned step.
    """
    max_norm = check_number("max_norm", max_norm, low_open=True, allow_inf=True)
    grads = [grad for _, _, grad in as_triples(params)]  # once: params may be a one-shot iterator
    total = _total_norm(grads, norm_type)
    if not math.isfinite(total):
        return total
    scale = max_norm / (total + CLIP_EPSILON)
    if scale < 1.0:
        for grad in grads:
            grad *= scale
    return total


def clip_grad_value(params: Params, clip_value: float) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]``, in place
    (``torch.nn.utils.clip_grad_value_``). NaN entries stay NaN.

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        Whose gradients to clamp.
    clip_value : float
        The largest magnitude allowed, > 0.
    """
    clip_value = check_number("clip_value", clip_value, low_open=True)
    for _, _, grad in as_triples(params):
        np.clip(grad, -clip_value, clip_value, out=grad)
