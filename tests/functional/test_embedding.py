import numpy as np

from rnnkit.functional.embedding import embedding_backward, embedding_forward
from tests.gradcheck import assert_gradient


def test_embedding_gradient_sums_repeated_ids():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(6, 3))
    ids = np.array([[1, 2, 1], [5, 1, 0]])  # id 1 three times
    upstream = rng.normal(size=(2, 3, 3))
    y, cache = embedding_forward(ids, W)
    np.testing.assert_array_equal(y[1, 0], W[5])
    dW = embedding_backward(upstream, cache, 6)
    np.testing.assert_allclose(dW[1], upstream[0, 0] + upstream[0, 2] + upstream[1, 1], rtol=1e-14)
    assert_gradient(lambda: float(np.sum(embedding_forward(ids, W)[0] * upstream)), W, dW, "dW")


def test_padding_idx_gets_no_gradient():
    ids = np.array([0, 0, 3])
    dW = embedding_backward(np.ones((3, 2)), ids, 4, padding_idx=0)
    np.testing.assert_array_equal(dW[0], 0.0)
    np.testing.assert_array_equal(dW[3], 1.0)


def test_sorted_run_sums_equal_unbuffered_add_at():
    """The sort-and-reduceat backward equals np.add.at, ids unseen in the batch get exact zeros."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 50, size=(64, 9))
    ids[ids == 7] = 8  # id 7 never occurs
    upstream = rng.normal(size=(64, 9, 5))
    expected = np.zeros((50, 5))
    np.add.at(expected, ids.reshape(-1), upstream.reshape(-1, 5))
    got = embedding_backward(upstream, ids, 50)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[7], 0.0)
