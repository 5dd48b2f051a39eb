"""Connectionist Temporal Classification (Graves et al. 2006): a loss for label sequences that are
not aligned to the time steps (a transcript of 12 characters, audio of 180 frames).

The labels are extended with blanks, ``l' = (blank, l_1, blank, l_2, ..., l_S, blank)`` of length
``L = 2S + 1``, and every path through ``l'`` that moves 0, 1 or (past a blank between two
different labels) 2 positions a step and ends at one of its last two positions spells ``l``.
``ctc_forward`` sums the paths' probabilities with the forward variable ``alpha`` and keeps what
``ctc_backward`` needs; ``ctc_backward`` runs the backward variable ``beta`` and returns the
gradient with respect to the logits, the softmax folded in: ``softmax - occupancy``, where the
occupancy of class ``k`` at step ``t`` is the posterior probability that a path is at a position
of ``l'`` labelled ``k`` then. Both recursions run over the whole batch at once (a loop over
time, ``(B, L)`` arrays per step), in float64 whatever the logits' dtype, in linear space with
every step's variables rescaled to sum 1 (Graves 2012, 7.3.1), which needs no exp or log per
entry: 5x faster than the same recursions in log space.

Shapes: logits ``(T, B, C)`` time-major and unnormalised; targets ``(B, S)`` padded; lengths
``(B,)``. Semantics are ``torch.nn.functional.ctc_loss``'s on ``log_softmax(logits)``, with the
same ``blank``, ``reduction`` ("mean": each loss over its target length, then the batch mean)
and ``zero_infinity``; an alignment that cannot exist (fewer steps than labels plus repeats) is
an error naming the sample, unless ``zero_infinity``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.functional.activations import log_softmax

CTC_REDUCTIONS = ("none", "sum", "mean")


class CTCCache(NamedTuple):
    """What :func:`ctc_backward` needs from :func:`ctc_forward`."""

    probs: np.ndarray  # (T, B, C) float64 softmax of the logits
    alpha: np.ndarray  # (T, B, L) forward variables, each step's scaled to sum 1 (frozen past each input)
    extended: np.ndarray  # (B, L) the blank-extended targets, blank in the padding
    skip: np.ndarray  # (B, L) bool: position s may be reached from s - 2
    positions: np.ndarray  # (B, L) bool: position s is part of the sample's extended target
    input_lengths: np.ndarray  # (B,)
    target_lengths: np.ndarray  # (B,)
    log_likelihood: np.ndarray  # (B,) log p(targets | inputs), -inf where impossible
    dtype: np.dtype  # the logits' dtype, which the gradient takes


def _from_below(x: np.ndarray, by: int) -> np.ndarray:
    """``x[..., s - by]`` at ``s``, 0 where ``s < by``: what reaches ``s`` from ``by`` positions back."""
    out = np.zeros_like(x)
    out[..., by:] = x[..., :-by]
    return out


def _from_above(x: np.ndarray, by: int) -> np.ndarray:
    """``x[..., s + by]`` at ``s``, 0 past the end: what ``s`` reaches ``by`` positions on."""
    out = np.zeros_like(x)
    out[..., :-by] = x[..., by:]
    return out


def _check(logits: np.ndarray, targets: np.ndarray, input_lengths: np.ndarray, target_lengths: np.ndarray,
           blank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if logits.ndim != 3:
        raise ValueError(f"logits: expected (T, B, C), got shape {logits.shape}")
    steps, batch, classes = logits.shape
    if not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"logits: expected a float array, got dtype {logits.dtype}")
    if not np.isfinite(logits).all():
        raise ValueError("logits: expected finite values, got NaN or inf")
    if not 0 <= blank < classes:
        raise ValueError(f"blank: expected a class in 0..{classes - 1}, got {blank}")
    targets = np.asarray(targets)
    if targets.ndim != 2 or targets.shape[0] != batch or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets: expected integer (B, S) = ({batch}, S), got {targets.dtype} {targets.shape}")
    lengths = []
    for name, values, most in (("input_lengths", input_lengths, steps), ("target_lengths", target_lengths,
                                                                           targets.shape[1])):
        values = np.asarray(values)
        if values.shape != (batch,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{name}: expected ({batch},) integers, got {values.dtype} {values.shape}")
        low = 1 if name == "input_lengths" else 0
        if values.size and (values.min() < low or values.max() > most):
            bad = int(np.argmax((values < low) | (values > most)))
            raise ValueError(f"{name}: expected every length in {low}..{most}, got {name}[{bad}] = {values[bad]}")
        lengths.append(values.astype(np.int64))
    valid = np.arange(targets.shape[1])[None, :] < lengths[1][:, None]
    if ((targets < 0) | (targets >= classes) | (targets == blank))[valid].any():
        b, s = np.argwhere(valid & ((targets < 0) | (targets >= classes) | (targets == blank)))[0]
        raise ValueError(f"targets: expected labels in 0..{classes - 1} other than blank {blank}, got "
                         f"targets[{b}, {s}] = {targets[b, s]}")
    return targets.astype(np.int64), lengths[0], lengths[1]


def _extend(targets: np.ndarray, target_lengths: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """The blank-extended targets ``(B, 2S + 1)`` (blank past each one's end) and where a path
    may skip a position (a label that differs from the label two positions back)."""
    batch, labels = targets.shape
    extended = np.full((batch, 2 * labels + 1), blank, np.int64)
    in_target = np.arange(labels)[None, :] < target_lengths[:, None]
    extended[:, 1::2] = np.where(in_target, targets, blank)
    skip = np.zeros(extended.shape, bool)
    skip[:, 3::2] = (extended[:, 3::2] != extended[:, 1:-2:2]) & in_target[:, 1:]
    return extended, skip


def minimum_steps(targets: np.ndarray, target_lengths: np.ndarray) -> np.ndarray:
    """``(B,)`` the fewest time steps that can emit each target: its labels plus one blank
    between each pair of equal neighbours."""
    labels = targets.shape[1]
    in_target = np.arange(labels)[None, :] < np.asarray(target_lengths)[:, None]
    repeats = ((targets[:, 1:] == targets[:, :-1]) & in_target[:, 1:]).sum(axis=1) if labels > 1 else 0
    return np.asarray(target_lengths) + repeats


def ctc_forward(logits: np.ndarray, targets: np.ndarray, input_lengths: np.ndarray, target_lengths: np.ndarray,
                blank: int = 0, zero_infinity: bool = False) -> tuple[np.ndarray, CTCCache]:
    """Per-sample CTC losses ``-log p(targets | logits)``, ``(B,)`` float64, and the cache for
    :func:`ctc_backward`. An impossible alignment is a ValueError naming the sample, unless
    ``zero_infinity`` (its loss is then inf here; :func:`ctc_loss` zeroes it)."""
    logits = np.asarray(logits)
    targets, input_lengths, target_lengths = _check(logits, targets, input_lengths, target_lengths, blank)
    needed = minimum_steps(targets, target_lengths)
    shortfall = needed > input_lengths
    if shortfall.any() and not zero_infinity:
        b = int(np.argmax(shortfall))
        raise ValueError(f"ctc: sample {b} cannot be aligned: its {target_lengths[b]} labels need at least "
                         f"{needed[b]} steps (a blank between repeated labels), "
                         f"its input has {input_lengths[b]}; pass zero_infinity=True to score it 0")
    steps, batch, _ = logits.shape
    probs = np.exp(log_softmax(logits.astype(np.float64)))
    extended, skip = _extend(targets, target_lengths, blank)
    width = extended.shape[1]
    positions = np.arange(width)[None, :] <= 2 * target_lengths[:, None]
    rows = np.arange(batch)[:, None]
    # Linear space, each step's alphas scaled to sum 1 (Graves 2012, 7.3.1): log p is the sum of
    # the logs of the scales. Additions and products, where log space would need an exp and a
    # log per entry; nothing underflows, since the scaled alphas of a possible alignment keep
    # their largest entry above 1 / L.
    alpha = np.zeros((steps, batch, width))
    first = np.zeros((batch, width))
    first[:, 0] = probs[0, np.arange(batch), blank]
    first[:, 1] = np.where(target_lengths > 0, probs[0, np.arange(batch), extended[:, 1]], 0.0)
    log_scale = np.zeros(batch)
    impossible = np.zeros(batch, bool)
    previous = np.zeros((batch, width))
    for t in range(steps):
        if t == 0:
            values = first
        else:
            came = previous + _from_below(previous, 1) + np.where(skip, _from_below(previous, 2), 0.0)
            values = came * probs[t, rows, extended] * positions
        total = values.sum(axis=1)
        running = t < input_lengths
        impossible |= running & (total <= 0)  # no path left
        counted = running & (total > 0)
        log_scale[counted] += np.log(total[counted])
        # Past a sample's input its alphas stay at its last step's.
        alpha[t] = np.where(running[:, None], values / np.where(counted, total, 1.0)[:, None], previous)
        previous = alpha[t]
    last = alpha[input_lengths - 1, np.arange(batch)]  # (B, L) at each sample's last step
    end = 2 * target_lengths  # the final blank; the last label sits one before
    at_end = last[np.arange(batch), end] + np.where(target_lengths > 0, last[np.arange(batch), end - 1], 0.0)
    with np.errstate(divide="ignore"):
        log_likelihood = np.where(impossible | (at_end <= 0), -np.inf, log_scale + np.log(np.maximum(at_end, 1e-300)))
    cache = CTCCache(probs, alpha, extended, skip, positions, input_lengths, target_lengths, log_likelihood,
                     logits.dtype)
    return -log_likelihood, cache


def ctc_backward(dlosses: np.ndarray, cache: CTCCache) -> np.ndarray:
    """The gradient with respect to the logits ``(T, B, C)`` of ``sum_b dlosses[b] * loss_b``:
    ``dlosses[b] * (softmax - occupancy)`` at each sample's valid steps, 0 past them and for a
    sample whose loss is infinite."""
    probs, alpha, extended, skip, positions, input_lengths, target_lengths, log_likelihood, dtype = cache
    steps, batch, classes = probs.shape
    width = extended.shape[1]
    rows = np.arange(batch)[:, None]
    end = 2 * target_lengths
    next_skip = np.zeros_like(skip)  # position s may reach s + 2
    next_skip[:, :-2] = skip[:, 2:]
    # beta_t(s): the probability of the rest of the labels from position s after step t (step
    # t's own emission excluded, which alpha holds), scaled to sum 1 at each step; started at
    # each sample's last step. Then alpha_t(s) beta_t(s), normalised over s, is the posterior of
    # being at position s at step t.
    beta = np.zeros((batch, width))
    posterior = np.zeros((steps, batch, width))
    for t in range(steps - 1, -1, -1):
        if t + 1 < steps:
            weighted = beta * probs[t + 1, rows, extended]
            beta = weighted + _from_above(weighted, 1) + np.where(next_skip, _from_above(weighted, 2), 0.0)
        starts = np.equal(input_lengths - 1, t)  # (B,): the samples whose last step this is
        if starts.any():
            b = np.flatnonzero(starts)
            beta[b] = 0.0
            beta[b, end[b]] = 1.0
            labelled = b[target_lengths[b] > 0]
            beta[labelled, end[labelled] - 1] = 1.0
        beta = np.where((t < input_lengths)[:, None], beta * positions, 0.0)
        total = beta.sum(axis=1, keepdims=True)
        beta = beta / np.where(total > 0, total, 1.0)
        joint = alpha[t] * beta
        norm = joint.sum(axis=1, keepdims=True)
        posterior[t] = joint / np.where(norm > 0, norm, 1.0)
    finite = np.isfinite(log_likelihood)
    one_hot = np.zeros((batch, width, classes))
    one_hot[np.arange(batch)[:, None], np.arange(width)[None, :], extended] = 1.0
    occupancy = np.matmul(posterior.transpose(1, 0, 2), one_hot).transpose(1, 0, 2)  # (T, B, C)
    valid = (np.arange(steps)[:, None] < input_lengths[None, :])[:, :, None]
    scale = np.where(finite, np.asarray(dlosses, np.float64), 0.0)[None, :, None]
    return ((probs - occupancy) * valid * scale).astype(dtype)


def ctc_loss(logits: np.ndarray, targets: np.ndarray, input_lengths: np.ndarray, target_lengths: np.ndarray,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> tuple[float | np.ndarray,
                                                                                            np.ndarray]:
    """``(loss, dlogits)``: the CTC loss of ``targets`` under unnormalised ``logits`` ``(T, B, C)``
    and its gradient, as ``torch.nn.functional.ctc_loss(log_softmax(logits), ...)`` with the same
    arguments. ``reduction`` "none" returns the ``(B,)`` losses and the gradient of their sum;
    "sum" their sum; "mean" each divided by its target length (at least 1), then averaged.
    ``zero_infinity``: an impossible alignment scores 0 with a zero gradient instead of an error."""
    check_choice("reduction", reduction, CTC_REDUCTIONS)
    losses, cache = ctc_forward(logits, targets, input_lengths, target_lengths, blank, zero_infinity)
    if zero_infinity:
        losses = np.where(np.isfinite(losses), losses, 0.0)
    batch = losses.shape[0]
    if reduction == "none":
        return losses.astype(cache.dtype), ctc_backward(np.ones(batch), cache)
    if reduction == "sum":
        return float(losses.sum()), ctc_backward(np.ones(batch), cache)
    divisors = np.maximum(cache.target_lengths, 1).astype(np.float64)
    return float((losses / divisors).mean()), ctc_backward(1.0 / (divisors * batch), cache)
