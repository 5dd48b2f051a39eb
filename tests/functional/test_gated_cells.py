"""The LSTM and GRU functional pairs against central differences in float64: the sequence pairs
in both directions with and without padding, and the single-step pairs, which must also equal a
one-step sequence."""

import numpy as np
import pytest

from rnnkit.functional import (
    gru_backward,
    gru_forward,
    gru_step_backward,
    gru_step_forward,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
)
from tests.gradcheck import assert_gradient

T, B, I, H = 5, 3, 2, 3


def _arrays(gates, seed):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.normal(size=(T, B, I)), h0=rng.normal(size=(B, H)) * 0.5, c0=rng.normal(size=(B, H)) * 0.5,
        W_xh=rng.normal(size=(gates * H, I)) * 0.6, W_hh=rng.normal(size=(gates * H, H)) * 0.6,
        b1=rng.normal(size=gates * H) * 0.3, b2=rng.normal(size=gates * H) * 0.3,
        dout=rng.normal(size=(T, B, H)), dh=rng.normal(size=(B, H)), dc=rng.normal(size=(B, H)),
    )


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, np.array([5, 2, 3])])
def test_lstm_pair_matches_central_differences(reverse, lengths):
    a = _arrays(4, seed=1)

    def loss():
        out, (h_n, c_n), _ = lstm_forward(a["x"], a["h0"], a["c0"], a["W_xh"], a["W_hh"], a["b1"], lengths, reverse)
        return float(np.sum(out * a["dout"]) + np.sum(h_n * a["dh"]) + np.sum(c_n * a["dc"]))

    _, _, cache = lstm_forward(a["x"], a["h0"], a["c0"], a["W_xh"], a["W_hh"], a["b1"], lengths, reverse)
    dx, dh0, dc0, dW_xh, dW_hh, db_h = lstm_backward(a["dout"], a["dh"], a["dc"], cache)
    for name, grad in [("x", dx), ("h0", dh0), ("c0", dc0), ("W_xh", dW_xh), ("W_hh", dW_hh), ("b1", db_h)]:
        assert_gradient(loss, a[name], grad, name)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, np.array([5, 2, 3])])
def test_gru_pair_matches_central_differences(reverse, lengths):
    a = _arrays(3, seed=2)

    def loss():
        out, h_n, _ = gru_forward(a["x"], a["h0"], a["W_xh"], a["W_hh"], a["b1"], a["b2"], lengths, reverse)
        return float(np.sum(out * a["dout"]) + np.sum(h_n * a["dh"]))

    _, _, cache = gru_forward(a["x"], a["h0"], a["W_xh"], a["W_hh"], a["b1"], a["b2"], lengths, reverse)
    dx, dh0, dW_xh, dW_hh, db_xh, db_hh = gru_backward(a["dout"], a["dh"], cache)
    for name, grad in [("x", dx), ("h0", dh0), ("W_xh", dW_xh), ("W_hh", dW_hh), ("b1", db_xh), ("b2", db_hh)]:
        assert_gradient(loss, a[name], grad, name)


def test_lstm_step_pair_matches_central_differences_and_the_sequence():
    a = _arrays(4, seed=3)
    x_t = a["x"][0]

    def loss():
        h, c, _ = lstm_step_forward(x_t, a["h0"], a["c0"], a["W_xh"], a["W_hh"], a["b1"])
        return float(np.sum(h * a["dh"]) + np.sum(c * a["dc"]))

    h, c, cache = lstm_step_forward(x_t, a["h0"], a["c0"], a["W_xh"], a["W_hh"], a["b1"])
    out, (h_n, c_n), _ = lstm_forward(x_t[None], a["h0"], a["c0"], a["W_xh"], a["W_hh"], a["b1"])
    np.testing.assert_allclose(h, out[0], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c, c_n, rtol=1e-13, atol=1e-15)
    grads = lstm_step_backward(a["dh"], a["dc"], cache)
    for name, grad in zip(["x", "h0", "c0", "W_xh", "W_hh", "b1"], grads):
        target = x_t if name == "x" else a[name]
        assert_gradient(loss, target, grad, name)


def test_gru_step_pair_matches_central_differences_and_the_sequence():
    a = _arrays(3, seed=4)
    x_t = a["x"][0]

    def loss():
        h, _ = gru_step_forward(x_t, a["h0"], a["W_xh"], a["W_hh"], a["b1"], a["b2"])
        return float(np.sum(h * a["dh"]))

    h, cache = gru_step_forward(x_t, a["h0"], a["W_xh"], a["W_hh"], a["b1"], a["b2"])
    out, _, _ = gru_forward(x_t[None], a["h0"], a["W_xh"], a["W_hh"], a["b1"], a["b2"])
    np.testing.assert_allclose(h, out[0], rtol=1e-13, atol=1e-15)
    grads = gru_step_backward(a["dh"], cache)
    for name, grad in zip(["x", "h0", "W_xh", "W_hh", "b1", "b2"], grads):
        target = x_t if name == "x" else a[name]
        assert_gradient(loss, target, grad, name)


@pytest.mark.parametrize("steps", [1, 3, 40])
def test_backward_blocks_do_not_change_the_result(steps, monkeypatch):
    """BPTT cuts the sequence into blocks of steps; one step per block must give the same."""
    from rnnkit.functional import recurrent

    rng = np.random.default_rng(5)
    x, h0, c0 = rng.normal(size=(steps, 2, I)), rng.normal(size=(2, H)), rng.normal(size=(2, H))
    W_xh, W_hh, b = rng.normal(size=(4 * H, I)), rng.normal(size=(4 * H, H)) * 0.5, rng.normal(size=4 * H)
    dout = rng.normal(size=(steps, 2, H))
    lengths = np.array([steps, max(1, steps - 1)])
    results = []
    for block_rows in (recurrent._BLOCK_ROWS, 2):
        monkeypatch.setattr(recurrent, "_BLOCK_ROWS", block_rows)
        for reverse in (False, True):
            _, _, cache = lstm_forward(x, h0, c0, W_xh, W_hh, b, lengths, reverse)
            results.append(lstm_backward(dout, h0, c0, cache))
    for one, other in zip(results[:2], results[2:]):
        for a, b_ in zip(one, other):
            np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-13)
