import numpy as np
import pytest

from rnnkit.functional.activations import ACTIVATIONS, activation_backward, activation_forward, get_activation
from tests.gradcheck import assert_gradient


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradient_matches_central_differences(name):
    rng = np.random.default_rng(0)
    # Keep away from 0 so ReLU's kink is never straddled by the finite difference.
    a = rng.uniform(0.1, 2.0, size=(4, 5)) * rng.choice([-1.0, 1.0], size=(4, 5))
    weights = rng.normal(size=a.shape)
    y, cache = activation_forward(a, name)
    da = activation_backward(weights, cache, name)
    assert_gradient(lambda: float(np.sum(activation_forward(a, name)[0] * weights)), a, da, name)


def test_activation_values_match_definitions():
    a = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(activation_forward(a, "tanh")[0], np.tanh(a), rtol=1e-15)
    np.testing.assert_allclose(activation_forward(a, "sigmoid")[0], 1 / (1 + np.exp(-a)), rtol=1e-15)
    np.testing.assert_array_equal(activation_forward(a, "relu")[0], [0, 0, 0, 0.5, 3.0])


def test_sigmoid_does_not_overflow_for_large_inputs():
    with np.errstate(all="raise"):
        y, _ = activation_forward(np.array([-1000.0, 1000.0]), "sigmoid")
    np.testing.assert_array_equal(y, [0.0, 1.0])


def test_in_place_forward_writes_into_out():
    a = np.array([[-1.0, 2.0]])
    activation = get_activation("relu")
    assert activation.forward(a, out=a) is a
    np.testing.assert_array_equal(a, [[0.0, 2.0]])


def test_unknown_activation_names_choices():
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of 'tanh', 'sigmoid', 'relu', got 'gelu'"):
        get_activation("gelu")
