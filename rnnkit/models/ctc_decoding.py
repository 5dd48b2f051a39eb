"""Reading label sequences out of a CTC model's per-step scores.

``greedy_decode``: the best path (the most likely class at every step), repeats collapsed and
blanks dropped. ``beam_decode``: prefix beam search (Graves 2012, Hannun et al. 2014), which
keeps the ``beam_width`` most likely *labelings* so far, each with the probability of its paths
ending in a blank and in a label apart (a repeated label needs a blank between to count twice),
and so finds labelings whose probability is spread over many paths, which the best path misses.

Both take ``scores`` ``(T, B, C)``: logits or log-probabilities (a log-softmax is taken, which
changes neither), and ``lengths`` ``(B,)`` valid steps (None: all ``T``); they return one list of
label ids per sequence.
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_lengths, check_positive_int
from rnnkit.functional.activations import log_softmax


def _checked(scores: np.ndarray, blank: int) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 3:
        raise ValueError(f"scores: expected (T, B, C), got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores: expected finite values, got NaN or inf")
    if not 0 <= blank < scores.shape[2]:
        raise ValueError(f"blank: expected a class in 0..{scores.shape[2] - 1}, got {blank}")
    return scores


def _log_probs(scores: np.ndarray, blank: int) -> np.ndarray:
    return log_softmax(_checked(scores, blank))


def _lengths(lengths: np.ndarray | None, batch: int, steps: int) -> np.ndarray:
    checked = check_lengths(lengths, batch, steps)
    return np.full(batch, steps) if checked is None else checked


def collapse(path: np.ndarray, blank: int = 0) -> list[int]:
    """A path of classes to its labeling: repeats merged, then blanks dropped (``a a _ a b`` ->
    ``a a b``)."""
    path = np.asarray(path)
    if path.size == 0:
        return []
    keep = np.ones(path.shape, bool)
    keep[1:] = path[1:] != path[:-1]
    return [int(c) for c in path[keep] if c != blank]


def greedy_decode(scores: np.ndarray, lengths: np.ndarray | None = None, blank: int = 0) -> list[list[int]]:
    """The best path's labeling of each sequence."""
    scores = _checked(scores, blank)
    steps, batch, _ = scores.shape
    best = scores.argmax(axis=-1)  # (T, B)
    return [collapse(best[: length, b], blank) for b, length in enumerate(_lengths(lengths, batch, steps))]


def beam_decode(scores: np.ndarray, lengths: np.ndarray | None = None, blank: int = 0,
                beam_width: int = 8) -> list[list[int]]:
    """The most likely labeling of each sequence found by prefix beam search over ``beam_width``
    prefixes (``beam_width=1`` is close to, but not always, the best path: it merges paths)."""
    beam_width = check_positive_int("beam_width", beam_width)
    log_probs = _log_probs(scores, blank)
    steps, batch, classes = log_probs.shape
    return [_beam_one(log_probs[:length, b], blank, beam_width) for b, length in
            enumerate(_lengths(lengths, batch, steps))]


def _beam_one(log_probs: np.ndarray, blank: int, width: int) -> list[int]:
    """Prefix beam search over one sequence's ``(T, C)`` log-probabilities."""
    # prefix -> (log P(paths so far spelling it and ending in blank), ... ending in its last label)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}
    # Classes a prefix can grow by at a step: the likeliest few (and blank); the others cannot
    # beat them into the beam.
    candidates = min(log_probs.shape[1], width + 1)
    for step in log_probs:
        likely = np.argpartition(step, -candidates)[-candidates:]
        grown: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], blank_end: float, label_end: float) -> None:
            entry = grown.setdefault(prefix, [-np.inf, -np.inf])
            entry[0] = np.logaddexp(entry[0], blank_end)
            entry[1] = np.logaddexp(entry[1], label_end)

        for prefix, (blank_end, label_end) in beams.items():
            total = np.logaddexp(blank_end, label_end)
            add(prefix, total + step[blank], -np.inf)  # a blank: the same labeling, ending in blank
            last = prefix[-1] if prefix else None
            for c in likely:
                c = int(c)
                if c == blank:
                    continue
                if c == last:
                    add(prefix, -np.inf, label_end + step[c])  # the label again, merged
                    add(prefix + (c,), -np.inf, blank_end + step[c])  # after a blank: a new label
                else:
                    add(prefix + (c,), -np.inf, total + step[c])
        ranked = sorted(grown.items(), key=lambda item: -np.logaddexp(item[1][0], item[1][1]))
        beams = {prefix: (entry[0], entry[1]) for prefix, entry in ranked[:width]}
    best = max(beams.items(), key=lambda item: np.logaddexp(*item[1]))[0]
    return list(best)
