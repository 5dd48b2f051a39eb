import numpy as np
import pytest

from rnnkit.functional.losses import mse, softmax_cross_entropy
from tests.gradcheck import assert_gradient

torch = pytest.importorskip("torch")


def _torch_ce(logits, targets, lengths):
    steps, batch, classes = logits.shape
    per_step = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits).reshape(-1, classes), torch.from_numpy(targets).reshape(-1), reduction="none"
    ).reshape(steps, batch)
    mask = torch.from_numpy(np.arange(steps)[:, None] < lengths[None, :])
    return per_step[mask]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_cross_entropy_matches_torch_and_central_differences(reduction):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 3, 4)) * 3
    targets = rng.integers(0, 4, size=(5, 3))
    lengths = np.array([5, 2, 4])
    targets[2:, 1] = -1  # padding ids are ignored, whatever they are
    loss, dlogits = softmax_cross_entropy(logits, targets, lengths, reduction)
    expected = _torch_ce(logits, np.where(targets < 0, 0, targets), lengths)
    expected = expected.sum() if reduction == "sum" else expected.mean()
    assert loss == pytest.approx(float(expected), rel=1e-12)
    np.testing.assert_array_equal(dlogits[2:, 1], 0.0)
    assert_gradient(lambda: softmax_cross_entropy(logits, targets, lengths, reduction)[0], logits, dlogits, "dlogits")


def test_cross_entropy_2d_and_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss, dlogits = softmax_cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(loss) and loss == pytest.approx(np.log(3.0), rel=1e-12)
    np.testing.assert_allclose(dlogits[1], [1 / 3, 1 / 3, -2 / 3], rtol=1e-12)
    np.testing.assert_allclose(dlogits[0], 0.0, atol=1e-300)


def test_cross_entropy_is_summed_over_time_by_default():
    rng = np.random.default_rng(4)
    logits, targets = rng.normal(size=(6, 2, 3)), rng.integers(0, 3, size=(6, 2))
    total, _ = softmax_cross_entropy(logits, targets)
    per_step = sum(softmax_cross_entropy(logits[t], targets[t])[0] for t in range(6))
    assert total == pytest.approx(per_step, rel=1e-13)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_mse_matches_definition_and_central_differences(reduction):
    rng = np.random.default_rng(5)
    predictions, targets = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    lengths = np.array([4, 1, 3])
    loss, dpred = mse(predictions, targets, lengths, reduction)
    mask = (np.arange(4)[:, None] < lengths)[..., None]
    expected = np.sum(((predictions - targets) * mask) ** 2)
    assert loss == pytest.approx(expected / (1 if reduction == "sum" else lengths.sum()), rel=1e-13)
    np.testing.assert_array_equal(dpred[1:, 1], 0.0)
    assert_gradient(lambda: mse(predictions, targets, lengths, reduction)[0], predictions, dpred, "dpred")


def test_mse_mean_with_one_feature_is_torch_mse():
    rng = np.random.default_rng(6)
    predictions, targets = rng.normal(size=(7, 1)), rng.normal(size=(7, 1))
    loss, _ = mse(predictions, targets, reduction="mean")
    expected = torch.nn.functional.mse_loss(torch.from_numpy(predictions), torch.from_numpy(targets))
    assert loss == pytest.approx(float(expected), rel=1e-13)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError,
         r"targets: expected class ids in 0..2, got 3"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0])), ValueError, r"targets: expected shape \(2\)"),
        (lambda: softmax_cross_entropy(np.zeros(3), np.array(0)), ValueError, r"logits: expected \(T, B, C\) or \(B, C\)"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError, r"targets: expected integer"),
        (lambda: softmax_cross_entropy(np.zeros((2, 1, 3)), np.zeros((2, 1), int), np.array([3])), ValueError,
         r"lengths: expected every length in 1..2"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.zeros(2, int), reduction="avg"), ValueError,
         r"reduction: expected one of 'sum', 'mean', got 'avg'"),
        (lambda: mse(np.zeros((2, 3)), np.zeros((2, 2))), ValueError, r"targets: expected shape \(2, 3\)"),
    ],
)
def test_loss_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
