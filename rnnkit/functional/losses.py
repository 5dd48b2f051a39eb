"""Losses summed over time steps, ``L = sum_t L_t``, masked by ``lengths``; and, from ``ctc.py``,
``ctc_loss`` for label sequences that are not aligned to the steps (speech).

``softmax_cross_entropy`` and ``mse`` take time-major ``(T, B, ...)`` predictions, or ``(B, ...)``
for a single step, and return ``(loss, dpredictions)`` in one call: the gradient is as cheap as the loss once the
softmax is formed, and every caller needs both.

``reduction="sum"`` is the textbook total over valid steps and the batch; ``"mean"`` divides it
by the number of valid ``(t, b)`` steps.
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_choice, check_lengths, check_shape
from rnnkit.functional.ctc import ctc_loss
from rnnkit.functional.recurrent import valid_mask

__all__ = ["REDUCTIONS", "ctc_loss", "mse", "softmax_cross_entropy"]

REDUCTIONS = ("sum", "mean")


def _step_mask(
    shape: tuple[int, ...], lengths: object, dtype: np.dtype, name: str
) -> tuple[np.ndarray | None, int]:
    """The ``(T, B)`` 0/1 mask of valid steps (None when all valid) and their count."""
    if len(shape) == 1:  # single step (B,)
        if lengths is not None:
            raise ValueError(f"lengths: only meaningful for time-major 3-D {name}, got 2-D {name}")
        return None, shape[0]
    steps, batch = shape
    checked = check_lengths(lengths, batch, steps)
    mask = valid_mask(checked, steps, dtype)
    if mask is None or checked is None:
        return None, steps * batch
    return mask[..., 0], int(checked.sum())


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    lengths: np.ndarray | None = None,
    reduction: str = "sum",
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy of integer class targets.

    Parameters
    ----------
    logits : (T, B, C) or (B, C) unnormalised scores.
    targets : (T, B) or (B,) integer classes in ``0..C-1``; values at padding are ignored.
    lengths : (B,) valid steps per sequence (3-D only), or None.
    reduction : "sum" or "mean".

    Returns
    -------
    loss : float.
    dlogits : like ``logits``; exactly zero at padding.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    logits = np.asarray(logits)
    if logits.ndim not in (2, 3):
        raise ValueError(f"logits: expected (T, B, C) or (B, C), got shape {logits.shape}")
    if logits.dtype.kind != "f":
        raise TypeError(f"logits: expected a float array, got dtype {logits.dtype}")
    targets = np.asarray(targets)
    check_shape("targets", targets, logits.shape[:-1], "(the leading axes of logits)")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets: expected integer class ids, got dtype {targets.dtype}")
    classes = logits.shape[-1]
    mask, count = _step_mask(targets.shape, lengths, logits.dtype, "logits")
    # Padding may hold any id (often -1 or a pad id); clamp it into range before gathering.
    safe_targets = targets if mask is None else np.where(mask > 0, targets, 0)
    if safe_targets.size and (safe_targets.min() < 0 or safe_targets.max() >= classes):
        bad = np.argwhere((safe_targets < 0) | (safe_targets >= classes))[0]
        raise ValueError(
            f"targets: expected class ids in 0..{classes - 1}, got {int(safe_targets[tuple(bad)])} "
            f"at index {tuple(int(i) for i in bad)}"
        )

    # log-sum-exp with the max subtracted: exp never overflows and the largest term is exp(0).
    shifted = logits - logits.max(axis=-1, keepdims=True)
    np.exp(shifted, out=(probs := np.empty_like(shifted)))
    normaliser = probs.sum(axis=-1, keepdims=True)
    log_probs_of_targets = (
        np.take_along_axis(shifted, safe_targets[..., None], axis=-1)[..., 0] - np.log(normaliser[..., 0])
    )
    probs /= normaliser
    step_losses = -log_probs_of_targets
    if mask is not None:
        step_losses *= mask
    loss = float(step_losses.sum())

    # d/dlogits of -log softmax[target] is softmax - onehot(target).
    dlogits = probs
    np.put_along_axis(
        dlogits,
        safe_targets[..., None],
        np.take_along_axis(dlogits, safe_targets[..., None], axis=-1) - 1.0,
        axis=-1,
    )
    if mask is not None:
        dlogits *= mask[..., None]
    if reduction == "mean":
        loss /= count
        dlogits /= count
    return loss, dlogits


def mse(
    predictions: np.ndarray,
    targets: np.ndarray,
    lengths: np.ndarray | None = None,
    reduction: str = "sum",
) -> tuple[float, np.ndarray]:
    """Squared error ``L_t = sum_f (y_tf - target_tf)**2`` summed over valid steps.

    Parameters
    ----------
    predictions : (T, B, F) or (B, F).
    targets : same shape as ``predictions``; values at padding are ignored.
    lengths : (B,) valid steps per sequence (3-D only), or None.
    reduction : "sum", or "mean" (divided by the number of valid steps, so with ``F = 1`` it is
        the familiar mean squared error).

    Returns
    -------
    loss : float.
    dpredictions : like ``predictions``; exactly zero at padding.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    predictions = np.asarray(predictions)
    if predictions.ndim not in (2, 3):
        raise ValueError(f"predictions: expected (T, B, F) or (B, F), got shape {predictions.shape}")
    if predictions.dtype.kind != "f":
        raise TypeError(f"predictions: expected a float array, got dtype {predictions.dtype}")
    targets = np.asarray(targets, dtype=predictions.dtype)
    check_shape("targets", targets, predictions.shape, "(the shape of predictions)")
    mask, count = _step_mask(predictions.shape[:-1], lengths, predictions.dtype, "predictions")
    residual = predictions - targets
    if mask is not None:
        residual *= mask[..., None]
    loss = float(np.sum(residual * residual))
    dpredictions = 2.0 * residual
    if reduction == "mean":
        loss /= count
        dpredictions /= count
    return loss, dpredictions
