"""The optimized recurrence equals the straightforward reference path (float64, 1e-10).

``tests/functional/recurrent_reference.py`` keeps the original implementation: separate scans per
direction, flipped copies for the reverse direction, one derivative array for all steps. Every
fast path of ``rnnkit.functional.recurrent`` (reverse without flips, both directions of a layer in
one buffer, blocked derivatives, in-place work buffers) is checked against it here, each test
twice: with the compiled per-step loops (``rnnkit._native``) and with the NumPy loops.
"""

import numpy as np
import pytest

from rnnkit import _native
from rnnkit.functional import elman, recurrent
from rnnkit.functional.elman import rnn_backward, rnn_forward, rnn_layer_backward, rnn_layer_forward
from tests.functional import recurrent_reference as reference

TOL = dict(rtol=1e-10, atol=1e-12)
LENGTHS = {"none": None, "full": (6, 6, 6, 6), "mixed": (6, 2, 5, 1), "ones": (1, 1, 1, 1)}


@pytest.fixture(autouse=True, params=["native", "numpy"])
def loops(request):
    """Every test here runs with the compiled loops and with the NumPy ones."""
    if request.param == "numpy":
        with _native.disabled():
            yield request.param
    elif not _native.available():
        pytest.skip(f"compiled loops not available: {_native.why_not()}")
    else:
        yield request.param


def _problem(seed, steps=6, batch=4, inputs=3, hidden=5, directions=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, batch, inputs))
    h0 = rng.normal(size=(directions, batch, hidden)) * 0.5
    weights = [
        (rng.normal(size=(hidden, inputs)) * 0.5, rng.normal(size=(hidden, hidden)) * 0.4, rng.normal(size=hidden) * 0.1)
        for _ in range(directions)
    ]
    dout = rng.normal(size=(steps, batch, directions * hidden))
    dh_n = rng.normal(size=(directions, batch, hidden))
    return x, h0, weights, dout, dh_n


def _reference_layer(x, h0, weights, nonlinearity, lengths, reverse, dout, dh_n):
    """Each direction through the reference pair, outputs concatenated as the layer does."""
    hidden = weights[0][1].shape[0]
    outs, lasts, grads, dx = [], [], [], 0.0
    for d, (W_xh, W_hh, b_h) in enumerate(weights):
        states, h_n, cache = reference.rnn_forward(x, h0[d], W_xh, W_hh, b_h, nonlinearity, lengths, reverse[d])
        g = reference.rnn_backward(
            dout[..., d * hidden : (d + 1) * hidden], None if dh_n is None else dh_n[d], cache
        )
        outs.append(states)
        lasts.append(h_n)
        grads.append(g)
        dx = dx + g[0]
    return np.concatenate(outs, axis=-1), np.stack(lasts), dx, grads


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("lengths", sorted(LENGTHS))
@pytest.mark.parametrize("reverse", [(False,), (True,), (False, True), (True, False)])
@pytest.mark.parametrize("with_dh_n", [False, True])
def test_layer_equals_reference_path(nonlinearity, lengths, reverse, with_dh_n):
    lengths = None if LENGTHS[lengths] is None else np.array(LENGTHS[lengths])
    x, h0, weights, dout, dh_n = _problem(len(reverse) + 7, directions=len(reverse))
    dh_n = dh_n if with_dh_n else None
    W_xh, W_hh, b_h = (tuple(w[i] for w in weights) for i in range(3))
    out, h_n, cache = rnn_layer_forward(x, h0, W_xh, W_hh, b_h, nonlinearity, lengths, reverse)
    dout_before = dout.copy()
    dx, dh0, dW_xh, dW_hh, db_h = rnn_layer_backward(dout, dh_n, cache)
    np.testing.assert_array_equal(dout, dout_before)  # the caller's gradient is never a work buffer

    e_out, e_last, e_dx, e_grads = _reference_layer(x, h0, weights, nonlinearity, lengths, reverse, dout, dh_n)
    np.testing.assert_allclose(out, e_out, **TOL)
    np.testing.assert_allclose(h_n, e_last, **TOL)
    np.testing.assert_allclose(dx, e_dx, **TOL)
    for d, (_, e_dh0, e_dW_xh, e_dW_hh, e_db_h) in enumerate(e_grads):
        np.testing.assert_allclose(dh0[d], e_dh0, **TOL)
        np.testing.assert_allclose(dW_xh[d], e_dW_xh, **TOL)
        np.testing.assert_allclose(dW_hh[d], e_dW_hh, **TOL)
        np.testing.assert_allclose(db_h[d], e_db_h, **TOL)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, (6, 2, 5, 1)])
def test_one_direction_api_equals_reference(reverse, lengths):
    lengths = None if lengths is None else np.array(lengths)
    x, h0, [(W_xh, W_hh, b_h)], dout, dh_n = _problem(3)
    args = (x, h0[0], W_xh, W_hh, b_h, "tanh", lengths, reverse)
    states, h_n, cache = rnn_forward(*args)
    e_states, e_last, e_cache = reference.rnn_forward(*args)
    np.testing.assert_allclose(states, e_states, **TOL)
    np.testing.assert_allclose(h_n, e_last, **TOL)
    for got, expected in zip(rnn_backward(dout, dh_n[0], cache), reference.rnn_backward(dout, dh_n[0], e_cache)):
        np.testing.assert_allclose(got, expected, **TOL)


@pytest.mark.parametrize("rows, derivative_steps, dx_rows", [(4, 1, 1), (8, 1, 3), (8, 2, 8), (12, 2, 5), (4 * 7, 3, 7),
                                                             (512, 1 << 16, 128)])
@pytest.mark.parametrize("reverse", [(False,), (True,), (False, True), (True, False)])
@pytest.mark.parametrize("lengths", [None, (7, 2, 5, 1)])
def test_blocked_backward_equals_reference_for_any_block_size(monkeypatch, rows, derivative_steps, dx_rows, reverse, lengths):
    """The backward pass works a block of steps at a time (``_BLOCK_ROWS`` rows for the products,
    ``_BLOCK_ELEMENTS`` for the derivative, ``_DX_CHUNK_ROWS`` for a second direction's dx);
    block sizes must not change the result, including blocks that do not divide T and a block
    boundary right after step 0."""
    monkeypatch.setattr(recurrent, "_BLOCK_ROWS", rows)  # B = 4 rows per step
    monkeypatch.setattr(recurrent, "_DX_CHUNK_ROWS", dx_rows)
    monkeypatch.setattr(elman, "_BLOCK_ELEMENTS", derivative_steps * 4 * 5)  # B * H = 20 per step
    lengths = None if lengths is None else np.array(lengths)
    x, h0, weights, dout, dh_n = _problem(5, steps=7, directions=len(reverse))
    W_xh, W_hh, b_h = (tuple(w[i] for w in weights) for i in range(3))
    _, _, cache = rnn_layer_forward(x, h0, W_xh, W_hh, b_h, "sigmoid", lengths, reverse)
    dx, dh0, dW_xh, dW_hh, db_h = rnn_layer_backward(dout, dh_n, cache)
    _, _, e_dx, e_grads = _reference_layer(x, h0, weights, "sigmoid", lengths, reverse, dout, dh_n)
    np.testing.assert_allclose(dx, e_dx, **TOL)
    for d, (_, e_dh0, e_dW_xh, e_dW_hh, e_db_h) in enumerate(e_grads):
        for got, expected in ((dh0[d], e_dh0), (dW_xh[d], e_dW_xh), (dW_hh[d], e_dW_hh), (db_h[d], e_db_h)):
            np.testing.assert_allclose(got, expected, **TOL)


def test_broadcast_initial_state_is_accepted():
    """A learned h0 arrives as a stride-0 broadcast view; the scan copies it once, not per step."""
    x, h0, [(W_xh, W_hh, b_h)], _, _ = _problem(2)
    shared = np.broadcast_to(h0[0, :1], h0[0].shape)
    states, _, _ = rnn_forward(x, shared, W_xh, W_hh, b_h)
    e_states, _, _ = reference.rnn_forward(x, np.array(shared), W_xh, W_hh, b_h)
    np.testing.assert_allclose(states, e_states, **TOL)


@pytest.mark.parametrize("shape", [(1, 1), (5, 200), (64, 64), (130, 7), (129, 257)])
def test_transposed_copy_equals_the_transpose(shape):
    """The banded transpose covers every row, including a last band shorter than the others."""
    W = np.random.default_rng(0).normal(size=shape)
    got = recurrent.transposed_copy(W)
    assert got.flags.c_contiguous and got.dtype == W.dtype
    np.testing.assert_array_equal(got, W.T)


@pytest.mark.parametrize("reverse", [(False,), (True,), (False, True), (True, False)])
@pytest.mark.parametrize("lengths", [None, (6, 2, 5, 1)])
def test_without_input_grad_only_dx_is_skipped(reverse, lengths):
    """``input_grad=False`` returns dx as None and every other gradient unchanged."""
    lengths = None if lengths is None else np.array(lengths)
    x, h0, weights, dout, dh_n = _problem(11, directions=len(reverse))
    W_xh, W_hh, b_h = (tuple(w[i] for w in weights) for i in range(3))
    _, _, cache = rnn_layer_forward(x, h0, W_xh, W_hh, b_h, "tanh", lengths, reverse)
    dx, *full = rnn_layer_backward(dout, dh_n, cache)
    skipped, *partial = rnn_layer_backward(dout, dh_n, cache, input_grad=False)
    assert dx is not None and skipped is None
    for got, expected in zip(partial, full):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.mark.parametrize("reverse", [(False,), (True,), (False, True), (True, False)])
@pytest.mark.parametrize("lengths", [None, (6, 2, 5, 1)])
@pytest.mark.parametrize("rows", [4, 512])
def test_without_h0_grad_only_dh0_is_skipped(monkeypatch, reverse, lengths, rows):
    """``h0_grad=False`` returns dh0 as None and every other gradient unchanged, with the
    scan's first step in a block of its own (4 rows = 1 step) or in a longer one."""
    monkeypatch.setattr(recurrent, "_BLOCK_ROWS", rows)
    lengths = None if lengths is None else np.array(lengths)
    x, h0, weights, dout, dh_n = _problem(12, directions=len(reverse))
    W_xh, W_hh, b_h = (tuple(w[i] for w in weights) for i in range(3))
    _, _, cache = rnn_layer_forward(x, h0, W_xh, W_hh, b_h, "tanh", lengths, reverse)
    dx, dh0, *full = rnn_layer_backward(dout, dh_n, cache)
    dx_skipped, no_dh0, *partial = rnn_layer_backward(dout, dh_n, cache, h0_grad=False)
    assert dh0 is not None and no_dh0 is None
    np.testing.assert_array_equal(dx_skipped, dx)
    for got, expected in zip(partial, full):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.mark.parametrize("batch, strided_scans", [(4, 2), (1, 0)])
def test_bidirectional_scans_take_the_strided_path(monkeypatch, batch, strided_scans, loops):
    """Both directions of a bidirectional layer write into column halves of one buffer, whose rows
    are not contiguous: the NumPy loops send them through ``_scan_forward_strided`` (tested
    against the reference above); a batch of one has contiguous rows and stays on the in-place
    loop. The compiled loops walk any row stride and take every scan themselves."""
    calls = []
    original = elman._scan_forward_strided
    monkeypatch.setattr(elman, "_scan_forward_strided", lambda *a: calls.append(1) or original(*a))
    x, h0, weights, dout, _ = _problem(4, batch=batch, directions=2)
    W_xh, W_hh, b_h = (tuple(w[i] for w in weights) for i in range(3))
    out, _, _ = rnn_layer_forward(x, h0, W_xh, W_hh, b_h, "tanh", None, (False, True))
    e_out, *_ = _reference_layer(x, h0, weights, "tanh", None, (False, True), dout, None)
    np.testing.assert_allclose(out, e_out, **TOL)
    assert len(calls) == (strided_scans if loops == "numpy" else 0)
