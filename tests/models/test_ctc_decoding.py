"""CTC decoding (``rnnkit/models/ctc_decoding.py``): the best path, and prefix beam search
against an exhaustive search over every path of small problems."""

import itertools

import numpy as np
import pytest

from rnnkit.models.ctc_decoding import beam_decode, collapse, greedy_decode


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse(np.array([1, 1, 0, 1, 2, 2, 0, 0, 3])) == [1, 1, 2, 3]
    assert collapse(np.array([0, 0])) == [] and collapse(np.array([], int)) == []
    assert collapse(np.array([2, 2, 1]), blank=2) == [1]


def test_greedy_reads_the_best_path_within_each_length():
    best = np.array([[1, 0], [1, 2], [0, 2], [2, 1]])  # (T=4, B=2): the classes to win
    scores = np.full((4, 2, 3), -5.0)
    scores[np.arange(4)[:, None], np.arange(2)[None, :], best] = 5.0
    assert greedy_decode(scores) == [[1, 2], [2, 1]]
    assert greedy_decode(scores, lengths=np.array([2, 3])) == [[1], [2]]


def _exhaustive(log_probs: np.ndarray, blank: int) -> tuple[tuple[int, ...], float]:
    """The labeling with the largest total probability over all of its paths."""
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        labeling = tuple(collapse(np.array(path), blank))
        totals[labeling] = totals.get(labeling, 0.0) + float(np.exp(log_probs[np.arange(len(path)), path].sum()))
    return max(totals.items(), key=lambda item: item[1])


@pytest.mark.parametrize("seed", range(25))
def test_a_wide_beam_finds_the_most_likely_labeling(seed):
    rng = np.random.default_rng(seed)
    steps, classes = int(rng.integers(1, 6)), int(rng.integers(2, 4))
    blank = int(rng.integers(0, classes))
    scores = rng.normal(size=(steps, 1, classes)) * 1.5
    log_probs = scores[:, 0] - np.log(np.exp(scores[:, 0]).sum(axis=-1, keepdims=True))
    best, _ = _exhaustive(log_probs, blank)
    assert tuple(beam_decode(scores, blank=blank, beam_width=64)[0]) == best


def test_the_beam_beats_the_best_path_where_a_labeling_has_many_paths():
    """Best path: blank at both steps (0.6^2 = 0.36, the empty labeling); but 'a' has the paths
    a-a, a-blank and blank-a: 0.16 + 0.24 + 0.24 = 0.64."""
    probs = np.array([[0.6, 0.4], [0.6, 0.4]])[:, None, :]
    assert greedy_decode(np.log(probs)) == [[]]
    assert beam_decode(np.log(probs), beam_width=4) == [[1]]


def test_a_batch_with_lengths_decodes_each_sequence_alone():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 3, 4)) * 3
    lengths = np.array([5, 2, 4])
    together = beam_decode(scores, lengths, beam_width=16)
    alone = [beam_decode(scores[:n, b : b + 1], beam_width=16)[0] for b, n in enumerate(lengths)]
    assert together == alone


@pytest.mark.parametrize("call, error, message", [
    (lambda: greedy_decode(np.zeros((3, 4))), ValueError, r"scores: expected \(T, B, C\)"),
    (lambda: beam_decode(np.full((2, 1, 3), np.nan)), ValueError, r"scores: expected finite"),
    (lambda: beam_decode(np.zeros((2, 1, 3)), blank=3), ValueError, r"blank: expected a class in 0..2"),
    (lambda: beam_decode(np.zeros((2, 1, 3)), beam_width=0), ValueError, r"beam_width: expected a positive integer"),
    (lambda: greedy_decode(np.zeros((2, 1, 3)), lengths=[3]), ValueError, r"lengths"),
])
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
