import numpy as np
import pytest

from rnnkit.functional.dropout import dropout_backward, dropout_forward


def test_inverted_dropout_scales_survivors_and_is_seeded():
    x = np.ones((200, 50))
    y1, mask1 = dropout_forward(x, 0.3, np.random.default_rng(7))
    y2, _ = dropout_forward(x, 0.3, np.random.default_rng(7))
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_allclose(np.unique(y1), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((y1 == 0).mean() - 0.3) < 0.02
    assert abs(y1.mean() - 1.0) < 0.03  # expectation preserved
    np.testing.assert_array_equal(dropout_backward(np.full_like(x, 2.0), mask1), 2.0 * mask1)


def test_dropout_is_identity_in_eval_and_for_zero_p():
    x = np.arange(6.0)
    for training, p in ((False, 0.5), (True, 0.0)):
        y, cache = dropout_forward(x, p, np.random.default_rng(0), training=training)
        assert y is x and cache is None
        assert dropout_backward(x, cache) is x


def test_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match=r"p: expected a dropout probability in \[0, 1\), got 1.0"):
        dropout_forward(np.ones(3), 1.0, np.random.default_rng(0))
