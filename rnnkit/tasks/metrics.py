"""Metrics the tasks report, in plain NumPy and Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    """What the trainer, the verdict and the export check need to know of a metric."""

    lower_is_better: bool  # perfect is 0 (else perfect is 1)
    share: bool  # a share of items in [0, 1]: the export check compares it to within a few items
    words: str  # its name in words, for people (the model card)


#: every metric a task reports, by name: the one table of their properties
METRICS: dict[str, Metric] = {
    "accuracy": Metric(lower_is_better=False, share=True, words="accuracy"),
    "macro_f1": Metric(lower_is_better=False, share=True, words="macro-averaged F1"),
    "token_accuracy": Metric(lower_is_better=False, share=True, words="token accuracy"),
    "exact_match": Metric(lower_is_better=False, share=True, words="exact match"),
    "cer": Metric(lower_is_better=True, share=True, words="character error rate"),
    "wer": Metric(lower_is_better=True, share=True, words="word error rate"),
    "bpc": Metric(lower_is_better=True, share=False, words="bits per character"),
    "mse": Metric(lower_is_better=True, share=False, words="mean squared error"),
    "loss": Metric(lower_is_better=True, share=False, words="loss"),
}


def metric_words(name: str) -> str:
    """A metric's name in words (the name itself for one outside ``METRICS``)."""
    return METRICS[name].words if name in METRICS else name
LOWER_IS_BETTER = frozenset(name for name, metric in METRICS.items() if metric.lower_is_better)
SHARES = frozenset(name for name, metric in METRICS.items() if metric.share)


def accuracy(predicted: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(expected))) if len(expected) else 0.0


def macro_f1(predicted: np.ndarray, expected: np.ndarray, num_classes: int) -> float:
    """Unweighted mean over classes of F1; a class never predicted nor present scores 0."""
    predicted, expected = np.asarray(predicted), np.asarray(expected)
    scores = []
    for c in range(num_classes):
        tp = np.sum((predicted == c) & (expected == c))
        fp = np.sum((predicted == c) & (expected != c))
        fn = np.sum((predicted != c) & (expected == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), one row at a time."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def character_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Total edit distance over total reference length: errors per reference character."""
    errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references))
    return errors / max(1, sum(len(r) for r in references))


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    return float(np.mean([h == r for h, r in zip(hypotheses, references)])) if references else 0.0
