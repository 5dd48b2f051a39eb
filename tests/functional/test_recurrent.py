import numpy as np
import pytest

from rnnkit.functional.elman import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from rnnkit.functional.recurrent import flip_sequences
from tests.gradcheck import assert_gradient

T, B, I, H = 5, 3, 4, 6


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.normal(size=(T, B, I)),
        h0=rng.normal(size=(B, H)) * 0.5,
        W_xh=rng.normal(size=(H, I)) * 0.5,
        W_hh=rng.normal(size=(H, H)) * 0.4,
        b_h=rng.normal(size=H) * 0.1,
    ), rng


def test_flip_sequences_reverses_only_the_valid_prefix():
    x = np.arange(8).reshape(4, 2)  # (T=4, B=2)
    flipped = flip_sequences(x, np.array([2, 4]))
    np.testing.assert_array_equal(flipped[:, 0], [2, 0, 6, 4])  # valid [0, 2] reversed, padding kept behind
    np.testing.assert_array_equal(flipped[:, 1], [7, 5, 3, 1])
    np.testing.assert_array_equal(flip_sequences(flipped, np.array([2, 4])), x)  # an involution
    np.testing.assert_array_equal(flip_sequences(x, None), x[::-1])


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, (5, 2, 4)])
def test_rnn_gradients_match_central_differences(nonlinearity, reverse, lengths):
    arrays, rng = _problem()
    lengths = None if lengths is None else np.array(lengths)
    dstates = rng.normal(size=(T, B, H))
    dh_n = rng.normal(size=(B, H))

    def loss():
        states, h_n, _ = rnn_forward(**arrays, nonlinearity=nonlinearity, lengths=lengths, reverse=reverse)
        return float(np.sum(states * dstates) + np.sum(h_n * dh_n))

    _, _, cache = rnn_forward(**arrays, nonlinearity=nonlinearity, lengths=lengths, reverse=reverse)
    dx, dh0, dW_xh, dW_hh, db_h = rnn_backward(dstates, dh_n, cache)
    for name, analytic in (("x", dx), ("h0", dh0), ("W_xh", dW_xh), ("W_hh", dW_hh), ("b_h", db_h)):
        assert_gradient(loss, arrays[name], analytic, name)


def _loop_reference(x, h0, W_xh, W_hh, b_h, lengths, reverse):
    """The textbook loop, one sequence at a time: what the batched scan must reproduce."""
    states = np.zeros((T, B, H))
    h_n = np.zeros((B, H))
    for b in range(B):
        h = h0[b]
        order = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
        for t in order:
            h = np.tanh(W_hh @ h + W_xh @ x[t, b] + b_h)
            states[t, b] = h
        h_n[b] = h
    return states, h_n


@pytest.mark.parametrize("reverse", [False, True])
def test_padding_is_exactly_zero_and_matches_per_sequence_loop(reverse):
    arrays, rng = _problem(1)
    lengths = np.array([5, 1, 3])
    arrays["x"][3:, 2] = 1e6  # garbage in the padding must not leak anywhere
    arrays["x"][1:, 1] = -1e6
    states, h_n, cache = rnn_forward(**arrays, lengths=lengths, reverse=reverse)
    expected_states, expected_last = _loop_reference(**arrays, lengths=lengths, reverse=reverse)
    np.testing.assert_allclose(states, expected_states, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n, expected_last, rtol=1e-12, atol=1e-14)
    assert np.all(states[3:, 2] == 0) and np.all(states[1:, 1] == 0)
    dx, *_ = rnn_backward(rng.normal(size=(T, B, H)) * 1e3, None, cache)
    assert np.all(dx[3:, 2] == 0) and np.all(dx[1:, 1] == 0)


def test_step_by_step_matches_the_layer_at_every_step():
    arrays, rng = _problem(2)
    states, _, _ = rnn_forward(**arrays, nonlinearity="relu")
    h = arrays["h0"]
    for t in range(T):
        h, _ = rnn_step_forward(arrays["x"][t], h, arrays["W_xh"], arrays["W_hh"], arrays["b_h"], "relu")
        np.testing.assert_allclose(states[t], h, rtol=1e-13, atol=1e-15)


def test_step_gradients_match_central_differences():
    arrays, rng = _problem(3)
    x_t, h_prev = arrays["x"][0], arrays["h0"]
    upstream = rng.normal(size=(B, H))
    args = (arrays["W_xh"], arrays["W_hh"], arrays["b_h"], "sigmoid")
    _, cache = rnn_step_forward(x_t, h_prev, *args)
    grads = rnn_step_backward(upstream, cache)
    loss = lambda: float(np.sum(rnn_step_forward(x_t, h_prev, *args)[0] * upstream))
    for name, array, analytic in zip(("x_t", "h_prev", "W_xh", "W_hh", "b_h"), (x_t, h_prev, *args[:3]), grads):
        assert_gradient(loss, array, analytic, name)


def test_float32_stays_float32():
    arrays, rng = _problem(4)
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    states, h_n, cache = rnn_forward(**arrays, lengths=np.array([5, 2, 4]), reverse=True)
    grads = rnn_backward(np.ones((T, B, H), np.float32), None, cache)
    assert states.dtype == h_n.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
