"""Generating sequences from a decoder one step at a time: greedy, sampling and beam search.

Every strategy drives a ``step(ids (B,), state) -> (logits (B, V), state)`` function, so the
same code serves captioning (one-to-many) and translation (encoder-decoder), whatever the cell:
the state is a tuple of ``(L, B, H)`` arrays (``(h,)``, or ``(h, c)`` for an LSTM), handled only
through :mod:`rnnkit.models.states` (beam search selects the surviving beams of every array).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.functional.activations import log_softmax
from rnnkit.models.states import batch_size, select_batch

Step = Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]
METHODS = ("greedy", "sample", "beam")


def generate(
    step: Step,
    state: Any,
    bos: int,
    eos: int,
    max_len: int,
    method: str = "greedy",
    temperature: float = 1.0,
    beam_size: int = 4,
    rng: np.random.Generator | None = None,
) -> list[list[int]]:
    """Decode ``B`` sequences from the decoder's initial ``state`` (a tuple of ``(L, B, H)``
    arrays, passed to ``step`` as given); returns ids without bos/eos."""
    check_choice("method", method, METHODS)
    if not isinstance(max_len, (int, np.integer)) or isinstance(max_len, bool) or max_len < 0:
        raise ValueError(f"max_len: expected an integer >= 0, got {max_len!r}")
    batch = batch_size(state)
    if method == "beam":
        return [beam_search(step, select_batch(state, slice(b, b + 1)), bos, eos, max_len, beam_size)
                for b in range(batch)]
    if method == "sample" and not (math.isfinite(temperature) and temperature > 0):  # NaN fails every test
        raise ValueError(f"temperature: expected a positive number, got {temperature}")
    rng = rng if rng is not None else np.random.default_rng()
    ids = np.full(batch, bos, dtype=np.int64)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    finished = np.zeros(batch, bool)
    for _ in range(max_len):
        logits, state = step(ids, state)
        if method == "greedy":
            ids = logits.argmax(axis=-1)
        else:
            # the best logit subtracted before dividing: a tiny temperature tends to greedy
            # decoding instead of overflowing (inf - inf is NaN)
            scores = logits.astype(np.float64)
            with np.errstate(over="ignore"):  # to -inf: a probability of 0
                probs = np.exp(log_softmax((scores - scores.max(axis=-1, keepdims=True)) / temperature))
            cumulative = probs.cumsum(axis=-1)
            ids = (cumulative < rng.random((batch, 1)) * cumulative[:, -1:]).sum(axis=-1)
        finished |= ids == eos
        for b in np.flatnonzero(~finished):
            outputs[b].append(int(ids[b]))
        if finished.all():
            break
    return outputs


def beam_search(step: Step, state: Any, bos: int, eos: int, max_len: int, beam_size: int = 4) -> list[int]:
    """Beam search for one sequence (``state``: arrays ``(L, 1, H)``): the hypothesis with the
    best total log probability divided by its length (so short endings are not favoured merely
    for being short). The live beams advance together as one batch; every array of the state
    follows its beam."""
    if beam_size < 1:
        raise ValueError(f"beam_size: expected a positive integer, got {beam_size}")
    beams: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_len):
        last = np.array([seq[-1] if seq else bos for seq, _ in beams], dtype=np.int64)
        logits, state_next = step(last, state)
        log_probs = log_softmax(logits.astype(np.float64))
        scores = np.array([score for _, score in beams])[:, None] + log_probs  # (beams, V)
        best = np.argsort(scores, axis=None)[::-1][: 2 * beam_size]
        candidates = []
        for flat in best:
            beam, token = divmod(int(flat), scores.shape[1])
            sequence = beams[beam][0] + [token]
            if token == eos:
                finished.append((sequence[:-1], float(scores[beam, token]) / len(sequence)))
            else:
                candidates.append((sequence, float(scores[beam, token]), beam))
            if len(candidates) == beam_size:
                break
        beams = [(seq, score) for seq, score, _ in candidates]
        state = select_batch(state_next, [beam for _, _, beam in candidates]) if candidates else state_next
        if not beams or len(finished) >= beam_size:
            break
    if not finished:  # nothing ended within max_len: fall back to the truncated hypotheses
        finished = [(seq, score / (len(seq) + 1)) for seq, score in beams]
    return max(finished, key=lambda item: item[1])[0]
