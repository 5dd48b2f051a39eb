"""Gradient clipping by hand: norms, the 1e-6 epsilon, non-finite gradients, overflow."""

import math

import numpy as np
import pytest

from rnnkit.optim import SGD, clip_grad_norm, clip_grad_value, grad_norm
from tests.optim.helpers import FakeModule


def _grads(*arrays, dtype=np.float64):
    return [(f"g{i}", np.zeros(np.shape(a), dtype), np.array(a, dtype=dtype)) for i, a in enumerate(arrays)]


def test_clips_the_global_norm_of_all_gradients_together():
    params = _grads([3.0], [[4.0, 0.0]])  # norm 5 only when taken over both arrays
    assert clip_grad_norm(params, 1.0) == 5.0
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_array_equal(params[0][2], [3.0 * scale])
    np.testing.assert_array_equal(params[1][2], [[4.0 * scale, 0.0]])
    assert grad_norm(params) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("norm_type, expected", [(1.0, 9.0), (2.0, math.sqrt(29.0)), (3.0, 99.0 ** (1 / 3)),
                                                 (math.inf, 4.0)])
def test_norm_types_by_hand(norm_type, expected):
    assert grad_norm(_grads([3.0, -2.0], [-4.0]), norm_type) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("max_norm", [5.0 + 1e-6 + 1e-9, math.inf])
def test_norms_at_or_below_the_limit_leave_gradients_untouched(max_norm):
    params = _grads([3.0], [4.0])
    assert clip_grad_norm(FakeModule(params), max_norm) == 5.0
    assert params[0][2][0] == 3.0 and params[1][2][0] == 4.0


@pytest.mark.parametrize("bad, check", [(math.nan, math.isnan), (math.inf, math.isinf), (-math.inf, math.isinf)])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_non_finite_gradients_return_the_norm_and_are_not_scaled(bad, check, norm_type):
    params = _grads([3.0, bad], [100.0])
    assert check(clip_grad_norm(params, 1.0, norm_type))
    assert params[0][2][0] == 3.0 and params[1][2][0] == 100.0


def test_float32_gradients_whose_squares_overflow_still_get_their_norm():
    params = _grads([3e20, 4e20], dtype=np.float32)  # squares overflow float32 (max 3.4e38)
    assert clip_grad_norm(params, 1.0) == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(params[0][2], [0.6, 0.8], rtol=1e-6)
    assert params[0][2].dtype == np.float32


def test_a_one_shot_iterator_is_read_once():
    params = _grads([30.0], [40.0])
    assert clip_grad_norm(iter(params), 5.0) == 50.0
    np.testing.assert_allclose([params[0][2][0], params[1][2][0]], [3.0, 4.0], rtol=1e-6)


def test_an_optimizer_stands_in_for_its_parameters():
    params = _grads([30.0], [40.0])
    assert clip_grad_norm(SGD(params), 5.0) == 50.0
    assert params[0][2][0] == pytest.approx(3.0, rel=1e-6)


def test_clip_grad_value_clamps_each_entry_and_keeps_nan():
    params = _grads([-3.0, -0.5, 0.25, 2.0, math.nan])
    grad = params[0][2]
    clip_grad_value(params, 1.0)
    assert params[0][2] is grad
    np.testing.assert_array_equal(grad, [-1.0, -0.5, 0.25, 1.0, math.nan])


@pytest.mark.parametrize("call, error, message", [
    (lambda p: clip_grad_norm(p, 0.0), ValueError, r"max_norm: expected a number > 0, got 0.0"),
    (lambda p: clip_grad_norm(p, -1.0), ValueError, r"max_norm: expected a number > 0, got -1.0"),
    (lambda p: clip_grad_norm(p, math.nan), ValueError, r"max_norm: expected a number > 0, got nan"),
    (lambda p: clip_grad_norm(p, 1.0, norm_type=0), ValueError, r"norm_type: expected a number > 0, got 0"),
    (lambda p: clip_grad_norm(p, 1.0, norm_type="inf"), TypeError, r"norm_type: expected a number > 0, got 'inf' \(str\)"),
    (lambda p: clip_grad_value(p, -1.0), ValueError, r"clip_value: expected a number > 0, got -1.0"),
    (lambda p: clip_grad_value(p, math.inf), ValueError, r"clip_value: expected a number > 0, got inf"),
    (lambda p: clip_grad_norm([], 1.0), ValueError, r"params: expected at least one"),
])
def test_bad_arguments(call, error, message):
    params = _grads([1.0])
    with pytest.raises(error, match=message):
        call(params)
    assert params[0][2][0] == 1.0
