"""CTC loss (``rnnkit/functional/ctc.py``) against ``torch.nn.functional.ctc_loss`` in float64 and
central differences: repeats, blanks anywhere in the class list, empty targets, the fewest steps
an alignment needs, padded batches, every reduction, ``zero_infinity``; and its errors."""

import numpy as np
import pytest

from rnnkit.functional.ctc import ctc_backward, ctc_forward, ctc_loss, minimum_steps
from rnnkit.functional.losses import ctc_loss as contract_ctc_loss
from tests.gradcheck import assert_gradient

torch = pytest.importorskip("torch")


def _torch(logits, targets, input_lengths, target_lengths, blank, reduction, zero_infinity):
    x = torch.tensor(logits, requires_grad=True)
    loss = torch.nn.functional.ctc_loss(torch.log_softmax(x, -1), torch.tensor(targets), torch.tensor(input_lengths),
                                        torch.tensor(target_lengths), blank=blank, reduction=reduction,
                                        zero_infinity=zero_infinity)
    loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy()


def _case(seed):
    """A random padded batch that can be aligned, with repeats now and then."""
    rng = np.random.default_rng(seed)
    batch, classes, labels = int(rng.integers(1, 6)), int(rng.integers(2, 7)), int(rng.integers(1, 7))
    blank = int(rng.integers(0, classes))
    choices = [c for c in range(classes) if c != blank]
    targets = rng.choice(choices, size=(batch, labels)).astype(np.int64)
    if labels > 1 and rng.random() < 0.5:
        targets[:, 1] = targets[:, 0]  # a repeated label needs a blank between
    target_lengths = rng.integers(0, labels + 1, size=batch)
    needed = minimum_steps(targets, target_lengths)
    input_lengths = needed + rng.integers(0, 4, size=batch)
    input_lengths = np.maximum(input_lengths, 1)
    if rng.random() < 0.3:
        input_lengths = np.maximum(needed, 1)  # the fewest steps that can emit each target
    steps = int(input_lengths.max()) + int(rng.integers(0, 3))  # padding past the longest
    logits = rng.normal(size=(steps, batch, classes)) * 2
    return logits, targets, input_lengths, target_lengths, blank


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_loss_and_gradient_equal_torch(seed, reduction):
    logits, targets, input_lengths, target_lengths, blank = _case(seed)
    loss, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths, blank, reduction)
    want_loss, want_grad = _torch(logits, targets, input_lengths, target_lengths, blank, reduction, False)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dlogits, want_grad, rtol=1e-10, atol=1e-10)
    assert not dlogits[input_lengths.max():].any()  # nothing past the longest input


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_gradient_matches_central_differences(reduction):
    logits, targets, input_lengths, target_lengths, blank = _case(7)
    _, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths, blank, reduction)

    def total() -> float:
        return float(np.sum(ctc_loss(logits, targets, input_lengths, target_lengths, blank, reduction)[0]))

    assert_gradient(total, logits, dlogits, "logits")


def test_a_few_cases_by_hand():
    """One step, one label: the loss is -log softmax of that label; an empty target over two
    steps is -log of blank twice; a repeated label over its minimum three steps is the one path
    'a blank a'."""
    logits = np.log(np.array([[[0.2, 0.5, 0.3]]]))
    loss, _ = ctc_loss(logits, np.array([[1]]), np.array([1]), np.array([1]), reduction="sum")
    assert loss == pytest.approx(-np.log(0.5), abs=1e-12)
    probs = np.array([[0.6, 0.4], [0.7, 0.3]])[:, None, :]
    loss, _ = ctc_loss(np.log(probs), np.zeros((1, 1), np.int64) + 1, np.array([2]), np.array([0]), reduction="sum")
    assert loss == pytest.approx(-np.log(0.6 * 0.7), abs=1e-12)
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])[:, None, :]
    loss, _ = ctc_loss(np.log(probs), np.array([[1, 1]]), np.array([3]), np.array([2]), reduction="sum")
    assert loss == pytest.approx(-np.log(0.9 * 0.8 * 0.7), abs=1e-12)


def test_an_impossible_alignment_is_an_error_naming_the_sample():
    logits = np.zeros((3, 2, 4))
    targets = np.array([[1, 2, 0], [2, 2, 2]])
    with pytest.raises(ValueError, match=r"ctc: sample 1 cannot be aligned: its 3 labels need at least 5 steps .* "
                                         r"its input has 3; pass zero_infinity=True"):
        ctc_loss(logits, targets, np.array([3, 3]), np.array([2, 3]))


def test_zero_infinity_scores_an_impossible_alignment_zero_like_torch():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 3, 5))
    targets = np.array([[1, 1, 1], [2, 3, 4], [1, 2, 0]])
    input_lengths, target_lengths = np.array([4, 2, 4]), np.array([3, 3, 2])  # sample 0 needs 5, sample 1 needs 3
    for reduction in ("none", "sum", "mean"):
        loss, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths, 0, reduction, zero_infinity=True)
        want_loss, want_grad = _torch(logits, targets, input_lengths, target_lengths, 0, reduction, True)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dlogits, want_grad, rtol=1e-10, atol=1e-10)
        assert not dlogits[:, :2].any()  # both impossible samples: no gradient at all


def test_float32_logits_give_a_float32_gradient_close_to_float64():
    logits, targets, input_lengths, target_lengths, blank = _case(11)
    loss64, grad64 = ctc_loss(logits, targets, input_lengths, target_lengths, blank, "none")
    loss32, grad32 = ctc_loss(logits.astype(np.float32), targets, input_lengths, target_lengths, blank, "none")
    assert grad32.dtype == np.float32 and loss32.dtype == np.float32
    # The recursions run in float64 either way: only the logits' rounding separates the two.
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-5, atol=1e-6)


def test_forward_and_backward_pair_and_the_contract_name():
    logits, targets, input_lengths, target_lengths, blank = _case(5)
    losses, cache = ctc_forward(logits, targets, input_lengths, target_lengths, blank)
    weights = np.arange(1, len(losses) + 1, dtype=np.float64)
    dlogits = ctc_backward(weights, cache)
    _, per_sample = ctc_loss(logits, targets, input_lengths, target_lengths, blank, "none")
    assert contract_ctc_loss is ctc_loss
    # The gradient of sum_b w_b loss_b, sample by sample.
    singles = [ctc_backward(np.eye(len(losses))[b], cache) for b in range(len(losses))]
    np.testing.assert_allclose(dlogits, sum(w * g for w, g in zip(weights, singles)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum(singles), per_sample, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: ctc_loss(np.zeros((3, 4)), np.zeros((3, 1), int), [3], [1]), r"logits: expected \(T, B, C\)"),
    (lambda: ctc_loss(np.full((3, 1, 4), np.nan), np.ones((1, 1), int), [3], [1]), r"logits: expected finite"),
    (lambda: ctc_loss(np.zeros((3, 1, 4)), np.ones((1, 1), int), [3], [1], blank=4), r"blank: expected a class in 0..3"),
    (lambda: ctc_loss(np.zeros((3, 1, 4)), np.ones((1, 1)), [3], [1]), r"targets: expected integer \(B, S\)"),
    (lambda: ctc_loss(np.zeros((3, 1, 4)), np.ones((1, 1), int), [4], [1]), r"input_lengths\[0\] = 4"),
    (lambda: ctc_loss(np.zeros((3, 1, 4)), np.ones((1, 1), int), [3], [2]), r"target_lengths: expected every length "
                                                                            r"in 0..1, got target_lengths\[0\] = 2"),
    (lambda: ctc_loss(np.zeros((3, 1, 4)), np.zeros((1, 1), int), [3], [1]), r"other than blank 0, got "
                                                                             r"targets\[0, 0\] = 0"),
    (lambda: ctc_loss(np.zeros((3, 1, 4)), np.full((1, 1), 7), [3], [1]), r"targets\[0, 0\] = 7"),
    (lambda: ctc_loss(np.zeros((3, 1, 4)), np.ones((1, 1), int), [3], [1], reduction="avg"), r"reduction: expected one"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
