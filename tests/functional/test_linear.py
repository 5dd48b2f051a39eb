import numpy as np

from rnnkit.functional.linear import linear_backward, linear_forward
from tests.gradcheck import assert_gradient


def test_linear_gradients_over_time_major_input():
    rng = np.random.default_rng(1)
    x, W, b = rng.normal(size=(3, 2, 4)), rng.normal(size=(5, 4)), rng.normal(size=5)
    upstream = rng.normal(size=(3, 2, 5))
    y, cache = linear_forward(x, W, b)
    assert y.shape == (3, 2, 5)
    np.testing.assert_allclose(y[1, 0], W @ x[1, 0] + b, rtol=1e-13)
    dx, dW, db = linear_backward(upstream, cache, W)
    loss = lambda: float(np.sum(linear_forward(x, W, b)[0] * upstream))
    assert_gradient(loss, x, dx, "dx")
    assert_gradient(loss, W, dW, "dW")
    assert_gradient(loss, b, db, "db")


def test_linear_without_bias():
    x, W = np.ones((2, 3)), np.arange(6.0).reshape(2, 3)
    y, _ = linear_forward(x, W, None)
    np.testing.assert_array_equal(y, [[3.0, 12.0], [3.0, 12.0]])
