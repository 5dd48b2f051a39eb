"""The compiled per-step loops (``rnnkit/_native/scan.c``) against the NumPy loops they replace.

Whole layers are compared in ``tests/functional/test_recurrent_fast_path.py`` (both ways, against
the reference path); here the kernels are driven directly, in each layout a layer hands them (a
direction's column half, a reversed view), at a realistic size, in float32, and with arrays they
must refuse.
"""

import contextlib
import sys

import numpy as np
import pytest

from rnnkit import _native
from rnnkit.functional import recurrent
from rnnkit.functional.activations import get_activation

pytestmark = pytest.mark.skipif(not _native.available(), reason=f"compiled loops: {_native.why_not()}")
TOL64 = dict(rtol=1e-10, atol=1e-12)
ACTIVATIONS = ["tanh", "sigmoid", "relu"]


@pytest.mark.skipif(sys.platform != "linux", reason="built and checked on Linux")
def test_loaded_where_numpy_bundles_openblas():
    """Guards CI: on Linux with NumPy's wheel the kernels must load, or every test here skips."""
    assert _native.available(), _native.why_not()


def _states(rng, steps, batch, hidden, dtype, layout):
    """``(T, B, H)`` pre-activations as a plain array, a column half of a 2-direction buffer, or
    a reversed view: the three layouts the layer hands to the scans."""
    if layout == "plain":
        return rng.normal(size=(steps, batch, hidden)).astype(dtype)
    if layout == "half":
        return rng.normal(size=(steps, batch, 2 * hidden)).astype(dtype)[:, :, hidden:]
    return rng.normal(size=(steps, batch, hidden)).astype(dtype)[::-1]


def _forward_both(states, h0, W_hh, activation, mask=None, first_padded=None, bias=None):
    """Both loops from the same pre-activations; the bias (random unless given) is added by each
    loop, the compiled one in its activation pass."""
    first_padded = len(states) if first_padded is None else first_padded
    if bias is None:
        bias = np.random.default_rng(states.shape[-1]).normal(size=states.shape[-1]).astype(states.dtype)
    expected, got = states.copy(), states.copy()
    with _native.disabled():
        recurrent._scan_forward(expected, h0, W_hh, bias, get_activation(activation), mask, first_padded)
    assert _native.scan_forward(got, h0, recurrent.transposed_copy(W_hh), bias, activation, mask, first_padded)
    return expected, got


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["plain", "half", "reversed"])
@pytest.mark.parametrize("hidden", [1, 5, 16])
def test_forward_equals_numpy_loop(activation, layout, hidden):
    rng = np.random.default_rng(hidden)
    states = _states(rng, 7, 3, hidden, np.float64, layout)
    h0, W_hh = rng.normal(size=(3, hidden)), rng.normal(size=(hidden, hidden)) * 0.5
    expected, got = _forward_both(states, h0, W_hh, activation)
    np.testing.assert_allclose(got, expected, **TOL64)


def test_forward_masks_padding_to_exact_zeros():
    rng = np.random.default_rng(3)
    lengths = np.array([6, 2, 4])
    mask = recurrent.valid_mask(lengths, 6, np.float64)
    states = rng.normal(size=(6, 3, 4))
    h0, W_hh = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    expected, got = _forward_both(states, h0, W_hh, "tanh", mask, first_padded=2)
    np.testing.assert_allclose(got, expected, **TOL64)
    assert np.all(got[2:, 1] == 0) and np.all(got[4:, 2] == 0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["plain", "half", "reversed"])
@pytest.mark.parametrize("hidden", [1, 5, 16])
def test_backward_equals_numpy_loop(activation, layout, hidden):
    rng = np.random.default_rng(hidden + 1)
    states = np.tanh(_states(rng, 7, 3, hidden, np.float64, layout))
    grad = _states(rng, 7, 3, hidden, np.float64, layout)
    W_hh, carried = rng.normal(size=(hidden, hidden)) * 0.5, rng.normal(size=(3, hidden))
    expected_grad, expected_carried = grad.copy(), carried.copy()
    with _native.disabled():
        recurrent._scan_backward(expected_grad, states, W_hh, get_activation(activation), expected_carried,
                                 np.empty((2, 3, hidden)))
    got_grad, got_carried = grad.copy(), carried.copy()
    assert _native.scan_backward(got_grad, states, W_hh, activation, got_carried)
    np.testing.assert_allclose(got_grad, expected_grad, **TOL64)
    np.testing.assert_allclose(got_carried, expected_carried, **TOL64)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["plain", "half", "reversed"])
def test_backward_reads_upstream_in_place_and_sums_the_bias_gradient(activation, layout):
    """``upstream`` is read instead of ``grad`` (which is only written) and ``bias_grad`` gets
    ``dL/da`` summed over steps and batch, as the NumPy loop and a sum give them."""
    rng = np.random.default_rng(11)
    states = np.tanh(_states(rng, 6, 4, 5, np.float64, layout))
    upstream = _states(rng, 6, 4, 5, np.float64, layout)
    W_hh, carried, bias_grad = rng.normal(size=(5, 5)) * 0.5, rng.normal(size=(4, 5)), rng.normal(size=5)
    expected_grad, expected_carried = upstream.copy(), carried.copy()
    with _native.disabled():
        recurrent._scan_backward(expected_grad, states, W_hh, get_activation(activation), expected_carried,
                                 np.empty((2, 4, 5)))
    got_grad, got_carried, got_bias = np.full(upstream.shape, np.nan), carried.copy(), bias_grad.copy()
    before = upstream.copy()
    assert _native.scan_backward(got_grad, states, W_hh, activation, got_carried, upstream, got_bias)
    np.testing.assert_allclose(got_grad, expected_grad, **TOL64)
    np.testing.assert_allclose(got_carried, expected_carried, **TOL64)
    np.testing.assert_allclose(got_bias, bias_grad + expected_grad.sum(axis=(0, 1)), **TOL64)
    np.testing.assert_array_equal(upstream, before)


@pytest.mark.parametrize("loops", ["native", "numpy"])
def test_backward_without_the_first_product_leaves_grad_unchanged(loops):
    """``first_product=False`` skips only what flows on to h0: every ``dL/da_t`` is the same."""
    rng = np.random.default_rng(13)
    states, grad = np.tanh(rng.normal(size=(5, 3, 4))), rng.normal(size=(5, 3, 4))
    W_hh, carried = rng.normal(size=(4, 4)) * 0.5, rng.normal(size=(3, 4))
    full, skipped = grad.copy(), grad.copy()
    context = _native.disabled() if loops == "numpy" else contextlib.nullcontext()
    with context:
        recurrent._scan_backward(full, states, W_hh, get_activation("tanh"), carried.copy(), np.empty((2, 3, 4)))
        recurrent._scan_backward(skipped, states, W_hh, get_activation("tanh"), carried.copy(), np.empty((2, 3, 4)),
                                 first_product=False)
    np.testing.assert_array_equal(skipped, full)


def test_backward_wrapper_falls_back_piece_by_piece():
    """What the kernel refuses (a float32 upstream for float64 grads, a strided bias gradient)
    is done by NumPy around it, with the same result."""
    rng = np.random.default_rng(12)
    states = np.tanh(rng.normal(size=(6, 4, 5)))
    upstream = rng.normal(size=(6, 4, 5)).astype(np.float32)
    W_hh, carried = rng.normal(size=(5, 5)) * 0.5, rng.normal(size=(4, 5))
    expected_grad, expected_carried = upstream.astype(np.float64), carried.copy()
    with _native.disabled():
        recurrent._scan_backward(expected_grad, states, W_hh, get_activation("tanh"), expected_carried,
                                 np.empty((2, 4, 5)))
    bias_storage = np.zeros(10)
    grad, got_carried = np.empty((6, 4, 5)), carried.copy()
    assert not _native.scan_backward(grad, states, W_hh, "tanh", got_carried, upstream)
    recurrent._scan_backward(grad, states, W_hh, get_activation("tanh"), got_carried, np.empty((2, 4, 5)),
                             upstream, bias_storage[::2])
    np.testing.assert_allclose(grad, expected_grad, **TOL64)
    np.testing.assert_allclose(got_carried, expected_carried, **TOL64)
    np.testing.assert_allclose(bias_storage[::2], expected_grad.sum(axis=(0, 1)), **TOL64)
    np.testing.assert_array_equal(bias_storage[1::2], 0)


def test_realistic_size_equals_numpy_loop():
    """B=32, H=256: products large enough for OpenBLAS to share between its threads."""
    rng = np.random.default_rng(0)
    states = rng.normal(size=(5, 32, 512))[:, :, 256:]
    W_hh = rng.normal(size=(256, 256)) / 16
    expected, got = _forward_both(states, np.zeros((32, 256)), W_hh, "tanh")
    np.testing.assert_allclose(got, expected, **TOL64)
    grad, carried = rng.normal(size=(5, 32, 256)), rng.normal(size=(32, 256))
    expected_grad, expected_carried = grad.copy(), carried.copy()
    with _native.disabled():
        recurrent._scan_backward(expected_grad, got, W_hh, get_activation("tanh"), expected_carried,
                                 np.empty((2, 32, 256)))
    assert _native.scan_backward(grad, got, W_hh, "tanh", carried)
    np.testing.assert_allclose(grad, expected_grad, **TOL64)
    np.testing.assert_allclose(carried, expected_carried, **TOL64)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_forward_and_backward_are_close_to_float64(activation):
    """float32 tanh is a rational approximation (2e-7 from float64 tanh); the rest is BLAS."""
    rng = np.random.default_rng(7)
    states = rng.normal(size=(20, 4, 64))
    W_hh = rng.normal(size=(64, 64)) / 8
    _, exact = _forward_both(states, np.zeros((4, 64)), W_hh, activation)
    _, single = _forward_both(states.astype(np.float32), np.zeros((4, 64), np.float32),
                                 W_hh.astype(np.float32), activation)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, exact, rtol=1e-4, atol=2e-5)
    grad, carried = rng.normal(size=(20, 4, 64)), rng.normal(size=(4, 64))
    g64, c64 = grad.copy(), carried.copy()
    g32, c32 = grad.astype(np.float32), carried.astype(np.float32)
    assert _native.scan_backward(g64, exact, W_hh, activation, c64)
    assert _native.scan_backward(g32, exact.astype(np.float32), W_hh.astype(np.float32), activation, c32)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(c32, c64, rtol=1e-3, atol=1e-4)


def test_float32_tanh_error_bound():
    x = np.linspace(-10, 10, 200_001)
    states = x.astype(np.float32).reshape(-1, 1, 1).copy()
    assert _native.scan_forward(states, np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32),
                                np.zeros(1, np.float32), "tanh",
                                None, len(states))
    assert np.abs(states.ravel() - np.tanh(x)).max() < 3e-7


def test_arrays_it_cannot_walk_are_left_to_numpy():
    rng = np.random.default_rng(1)
    columns_strided = rng.normal(size=(4, 3, 10))[:, :, ::2]  # H not contiguous
    before = columns_strided.copy()
    assert _native.scan_forward(columns_strided, np.zeros((3, 5)), np.eye(5), np.zeros(5), "tanh", None, 4) is False
    assert _native.scan_forward(np.zeros((4, 3, 5), np.float16), np.zeros((3, 5), np.float16),
                                np.eye(5, dtype=np.float16), np.zeros(5, np.float16), "tanh", None, 4) is False
    np.testing.assert_array_equal(columns_strided, before)


def test_disabled_turns_them_off_and_back_on():
    with _native.disabled():
        assert not _native.available() and "disabled" in _native.why_not()
        assert _native.scan_forward(np.zeros((2, 1, 1)), np.zeros((1, 1)), np.eye(1), np.zeros(1), "tanh", None,
                                    2) is False
    assert _native.available()


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_nan_propagates_as_in_numpy(activation):
    """A NaN must reach the loss so that the trainer's divergence guard sees it (ReLU too: a
    clamp written ``x > 0 ? x : 0`` would turn NaN into 0)."""
    rng = np.random.default_rng(5)
    states = rng.normal(size=(4, 2, 3))
    states[1, 0, 1] = np.nan
    expected, got = _forward_both(states, np.zeros((2, 3)), rng.normal(size=(3, 3)), activation)
    assert np.isnan(got[1:, 0]).any() and np.isnan(got[1, 0, 1])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    grad, carried = rng.normal(size=(4, 2, 3)), np.full((2, 3), np.nan)
    expected_grad, expected_carried = grad.copy(), carried.copy()
    with _native.disabled():
        recurrent._scan_backward(expected_grad, expected, np.eye(3), get_activation(activation), expected_carried,
                                 np.empty((2, 2, 3)))
    assert _native.scan_backward(grad, got, np.eye(3), activation, carried)
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(expected_grad))
    assert np.isnan(carried).all()
