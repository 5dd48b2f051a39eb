"""Connectionist Temporal Classification (Graves et al. 2006): a loss for label sequences that are
not aligned to the time steps (a transcript of 12 characters, audio of 180 frames).

The labels are extended with blanks, ``l' = (blank, l_1, blank, l_2, ..., l_S, blank)`` of length
``L = 2S + 1``, and every path through ``l'`` that moves 0, 1 or (past a blank between two
different labels) 2 positions a step and ends at one of its last two positions spells ``l``.
``ctc_forward`` sums the paths' probabilities with the forward variable ``alpha`` and keeps what
``ctc_backward`` needs; ``ctc_backward`` runs the backward variable ``beta`` and returns the
gradient with respect to the logits, the softmax folded in: ``softmax - occupancy``, where the
occupancy of class ``k`` at step ``t`` is the posterior probability that a path is at a position
of ``l'`` labelled ``k`` then. Both recursions run in log space over the whole batch at once (a
loop over time, ``(B, L)`` arrays per step), in float64 whatever the logits' dtype.

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

CTC_REDUCTIONS = ("none", "sum", "mean")


class CTCCache(NamedTuple):
    """What :func:`ctc_backward` needs from :func:`ctc_forward`."""

    log_probs: np.ndarray  # (T, B, C) float64 log-softmax of the logits
    alpha: np.ndarray  # (T, B, L) log forward variables (-inf past each input length)
    extended: np.ndarray  # (B, L) the blank-extended targets, blank in the padding
    skip: np.ndarray  # (B, L) bool: position s may be reached from s - 2
    input_lengths: np.ndarray  # (B,)
    target_lengths: np.ndarray  # (B,)
    log_likelihood: np.ndarray  # (B,) log p(targets | inputs), -inf where impossible
    dtype: np.dtype  # the logits' dtype, which the gradient takes


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _logsumexp3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.logaddexp(a, b), c)


def _shift(x: np.ndarray, by: int) -> np.ndarray:
    """``x[..., s - by]`` at ``s``, ``-inf`` where ``s < by``: the positions a path comes from."""
    out = np.full_like(x, -np.inf)
    out[..., by:] = x[..., :-by]
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
    shortfall = minimum_steps(targets, target_lengths) > input_lengths
    if shortfall.any() and not zero_infinity:
        b = int(np.argmax(shortfall))
        raise ValueError(f"ctc: sample {b} cannot be aligned: its {target_lengths[b]} labels need at least "
                         f"{minimum_steps(targets, target_lengths)[b]} steps (a blank between repeated labels), "
                         f"its input has {input_lengths[b]}; pass zero_infinity=True to score it 0")
    steps, batch, _ = logits.shape
    log_probs = _log_softmax(logits.astype(np.float64))
    extended, skip = _extend(targets, target_lengths, blank)
    positions = extended.shape[1]
    rows = np.arange(batch)[:, None]
    alpha = np.full((steps, batch, positions), -np.inf)
    alpha[0, :, 0] = log_probs[0, np.arange(batch), blank]
    first = log_probs[0, np.arange(batch), extended[:, 1]]
    alpha[0, :, 1] = np.where(target_lengths > 0, first, -np.inf)
    with np.errstate(invalid="ignore"):  # logaddexp(-inf, -inf) is -inf, as it should be
        for t in range(1, steps):
            previous = alpha[t - 1]
            came = _logsumexp3(previous, _shift(previous, 1), np.where(skip, _shift(previous, 2), -np.inf))
            alpha[t] = came + log_probs[t, rows, extended]
            # Past a sample's input the alphas stay at its last step's.
            done = t >= input_lengths
            alpha[t, done] = alpha[t - 1, done]
    last = alpha[input_lengths - 1, np.arange(batch)]  # (B, L) at each sample's last step
    end = 2 * target_lengths  # the final blank; the last label sits one before
    with np.errstate(invalid="ignore"):
        log_likelihood = np.logaddexp(last[np.arange(batch), end],
                                      np.where(target_lengths > 0, last[np.arange(batch), end - 1], -np.inf))
    cache = CTCCache(log_probs, alpha, extended, skip, input_lengths, target_lengths, log_likelihood, logits.dtype)
    return -log_likelihood, cache


def ctc_backward(dlosses: np.ndarray, cache: CTCCache) -> np.ndarray:
    """The gradient with respect to the logits ``(T, B, C)`` of ``sum_b dlosses[b] * loss_b``:
    ``dlosses[b] * (softmax - occupancy)`` at each sample's valid steps, 0 past them and for a
    sample whose loss is infinite."""
    log_probs, alpha, extended, skip, input_lengths, target_lengths, log_likelihood, dtype = cache
    steps, batch, classes = log_probs.shape
    positions = extended.shape[1]
    rows = np.arange(batch)[:, None]
    end = 2 * target_lengths
    # beta_t(s): the log probability of the rest of the labels from position s at step t, the
    # step's own emission included (as alpha includes it), started at each sample's last step.
    beta = np.full((batch, positions), -np.inf)
    next_skip = np.zeros_like(skip)  # position s may reach s + 2
    next_skip[:, :-2] = skip[:, 2:]
    log_occupancy = np.full((steps, batch, positions), -np.inf)
    with np.errstate(invalid="ignore"):
        for t in range(steps - 1, -1, -1):
            emit = log_probs[t, rows, extended]
            came = _logsumexp3(beta, np.roll(beta, -1, axis=1), np.where(next_skip, np.roll(beta, -2, axis=1), -np.inf))
            came[:, -1] = beta[:, -1]  # the rolls wrap: the last position has no successor
            came[:, -2] = np.logaddexp(beta[:, -2], beta[:, -1])
            beta = came + emit
            starts = np.equal(input_lengths - 1, t)  # (B,): the samples whose last step this is
            if starts.any():
                fresh = np.full((batch, positions), -np.inf)
                b = np.flatnonzero(starts)
                fresh[b, end[b]] = emit[b, end[b]]
                labelled = b[target_lengths[b] > 0]
                fresh[labelled, end[labelled] - 1] = emit[labelled, end[labelled] - 1]
                beta = np.where(starts[:, None], fresh, beta)
            beta = np.where((t < input_lengths)[:, None], beta, -np.inf)
            log_occupancy[t] = alpha[t] + beta - emit
    finite = np.isfinite(log_likelihood)
    with np.errstate(invalid="ignore", over="ignore"):
        # Posterior of being at position s at step t; each sums to 1 over s, so exp is safe.
        posterior = np.exp(log_occupancy - np.where(finite, log_likelihood, 0.0)[None, :, None])
    posterior = np.where(np.isfinite(log_occupancy), posterior, 0.0)
    one_hot = np.zeros((batch, positions, classes))
    one_hot[np.arange(batch)[:, None], np.arange(positions)[None, :], extended] = 1.0
    occupancy = np.matmul(posterior.transpose(1, 0, 2), one_hot).transpose(1, 0, 2)  # (T, B, C)
    valid = (np.arange(steps)[:, None] < input_lengths[None, :])[:, :, None]
    scale = np.where(finite, np.asarray(dlosses, np.float64), 0.0)[None, :, None]
    return ((np.exp(log_probs) - occupancy) * valid * scale).astype(dtype)


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
