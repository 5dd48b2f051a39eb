import numpy as np
import pytest

from rnnkit.nn import RNN
from tests.gradcheck import assert_gradient
from tests.nn.rnn_reference import loop_reference_forward, torch_packed_reference

TOL = dict(rtol=1e-9, atol=1e-10)


def _batch(rnn: RNN, steps=7, batch=4, seed=0, full=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, batch, rnn.input_size))
    h0 = rng.normal(size=(rnn.num_layers * rnn.num_directions, batch, rnn.hidden_size)) * 0.5
    lengths = np.full(batch, steps) if full else rng.integers(1, steps + 1, size=batch)
    lengths[0] = steps  # at least one full-length sequence, as after padding to the longest
    dout = rng.normal(size=(steps, batch, rnn.output_size))
    dh_n = rng.normal(size=h0.shape)
    return x, h0, lengths, dout, dh_n


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_torch_packed_sequences(nonlinearity, num_layers, bidirectional):
    pytest.importorskip("torch")
    rnn = RNN(3, 5, num_layers, nonlinearity, bidirectional, dtype=np.float64, seed=1)
    x, h0, lengths, dout, dh_n = _batch(rnn, seed=num_layers)
    out, h_n = rnn.forward(x, h0, lengths)
    dx, dh0 = rnn.backward(dout, dh_n)
    t_out, t_h_n, t_dx, t_dh0, t_grads = torch_packed_reference(rnn, x, h0, lengths, dout, dh_n)
    np.testing.assert_allclose(out, t_out, **TOL)
    np.testing.assert_allclose(h_n, t_h_n, **TOL)
    np.testing.assert_allclose(dx, t_dx, **TOL)
    np.testing.assert_allclose(dh0, t_dh0, **TOL)
    assert set(t_grads) == set(rnn.grads)
    for name, expected in t_grads.items():
        np.testing.assert_allclose(rnn.grads[name], expected, err_msg=name, **TOL)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_sigmoid_matches_per_sequence_loop(bidirectional, num_layers):
    rnn = RNN(3, 4, num_layers, "sigmoid", bidirectional, dtype=np.float64, seed=2)
    x, h0, lengths, _, _ = _batch(rnn, seed=5)
    out, h_n = rnn.forward(x, h0, lengths)
    expected_out, expected_h_n = loop_reference_forward(rnn, x, h0, lengths)
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n, expected_h_n, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "config",
    [
        dict(nonlinearity="sigmoid", num_layers=2, bidirectional=True),
        dict(nonlinearity="tanh", num_layers=2, bidirectional=True, dropout=0.3),
        dict(nonlinearity="relu", num_layers=1, bidirectional=False),
        dict(nonlinearity="tanh", num_layers=1, bidirectional=True, merge_mode="mul"),
        dict(nonlinearity="tanh", num_layers=2, bidirectional=True, merge_mode="ave", learn_h0=True),
        dict(nonlinearity="tanh", num_layers=1, bidirectional=True, merge_mode="sum", batch_first=True),
    ],
)
def test_gradients_match_central_differences(config):
    rnn = RNN(3, 4, dtype=np.float64, seed=3, **config)
    if rnn.learn_h0:
        rnn.params["h0"][...] = np.random.default_rng(9).normal(size=rnn.params["h0"].shape)
    x, h0, lengths, dout, dh_n = _batch(rnn, steps=5, batch=3, seed=7)
    if rnn.batch_first:
        x, dout = x.transpose(1, 0, 2).copy(), dout.transpose(1, 0, 2).copy()
    h0_arg = None if rnn.learn_h0 else h0

    def loss():
        rnn.rng = np.random.default_rng(11)  # the same dropout masks on every call
        out, h_n = rnn.forward(x, h0_arg, lengths)
        return float(np.sum(out * dout) + np.sum(h_n * dh_n))

    loss()
    rnn.zero_grad()
    dx, dh0 = rnn.backward(dout, dh_n)
    assert_gradient(loss, x, dx, "x")
    if h0_arg is not None:
        assert_gradient(loss, h0, dh0, "h0")
    for name, param in rnn.params.items():
        assert_gradient(loss, param, rnn.grads[name].copy(), name)


def test_padding_outputs_are_zero_and_padding_gradients_do_not_flow():
    rnn = RNN(2, 3, num_layers=2, bidirectional=True, dtype=np.float64, seed=4)
    x, h0, lengths, dout, _ = _batch(rnn, steps=6, batch=3, seed=1)
    lengths = np.array([6, 2, 4])
    out, _ = rnn.forward(x, h0, lengths)
    assert np.all(out[2:, 1] == 0) and np.all(out[4:, 2] == 0)
    dx, _ = rnn.backward(dout)
    grads_before = {k: v.copy() for k, v in rnn.grads.items()}
    assert np.all(dx[2:, 1] == 0) and np.all(dx[4:, 2] == 0)

    # Changing the gradient or the input at padding positions changes nothing.
    rnn.zero_grad()
    x[2:, 1] = 1e3
    dout[2:, 1] = 1e6
    out2, _ = rnn.forward(x, h0, lengths)
    rnn.backward(dout)
    np.testing.assert_array_equal(out2, out)
    for name in rnn.grads:
        np.testing.assert_array_equal(rnn.grads[name], grads_before[name])


def test_reverse_direction_of_padded_sequence_equals_unpadded_run():
    rnn = RNN(2, 3, bidirectional=True, dtype=np.float64, seed=5)
    rng = np.random.default_rng(0)
    short = rng.normal(size=(3, 1, 2))
    padded = np.concatenate([short, rng.normal(size=(4, 1, 2))])  # T = 7, length 3
    out_short, h_short = rnn.forward(short)
    out_padded, h_padded = rnn.forward(padded, lengths=np.array([3]))
    np.testing.assert_allclose(out_padded[:3], out_short, rtol=1e-13)
    np.testing.assert_allclose(h_padded, h_short, rtol=1e-13)


def test_batch_first_is_a_transpose_at_the_boundary():
    rnn = RNN(3, 4, num_layers=2, dtype=np.float64, seed=6)
    x, h0, lengths, dout, dh_n = _batch(rnn, seed=3)
    out, h_n = rnn.forward(x, h0, lengths)
    dx, dh0 = rnn.backward(dout, dh_n)
    rnn.batch_first = True
    out_bf, h_n_bf = rnn.forward(x.transpose(1, 0, 2), h0, lengths)
    dx_bf, dh0_bf = rnn.backward(dout.transpose(1, 0, 2), dh_n)
    np.testing.assert_array_equal(out_bf, out.transpose(1, 0, 2))
    np.testing.assert_array_equal(h_n_bf, h_n)
    np.testing.assert_array_equal(dx_bf, dx.transpose(1, 0, 2))
    np.testing.assert_array_equal(dh0_bf, dh0)


@pytest.mark.parametrize("num_layers, bidirectional, batch_first", [(1, False, False), (2, True, False), (3, False, True)])
def test_without_input_grad_every_other_gradient_is_unchanged(num_layers, bidirectional, batch_first):
    """``backward(..., input_grad=False)`` skips only dx: the weight gradients and dh0 are the
    same arrays as with it, for every layer (the layers above still need their inputs' grads)."""
    rnn = RNN(3, 4, num_layers, bidirectional=bidirectional, dropout=0.3, batch_first=batch_first,
              dtype=np.float64, seed=9)
    x, h0, lengths, dout, dh_n = _batch(rnn, seed=5)
    if batch_first:
        x, dout = x.transpose(1, 0, 2), dout.transpose(1, 0, 2)
    results = []
    for input_grad in (True, False):
        rnn.zero_grad()
        rnn.rng = np.random.default_rng(0)  # the same dropout masks for both runs
        rnn.forward(x, h0, lengths)
        dx, dh0 = rnn.backward(dout, dh_n, input_grad=input_grad)
        results.append((dx, dh0, {k: v.copy() for k, v in rnn.grads.items()}))
    (dx, dh0, grads), (no_dx, dh0_skipped, grads_skipped) = results
    assert dx.shape == x.shape and no_dx is None
    np.testing.assert_array_equal(dh0_skipped, dh0)
    for name, grad in grads.items():
        np.testing.assert_array_equal(grads_skipped[name], grad, err_msg=name)


@pytest.mark.parametrize("num_layers, bidirectional, learn_h0", [(1, False, False), (2, True, False), (2, False, True)])
def test_without_h0_grad_every_other_gradient_is_unchanged(num_layers, bidirectional, learn_h0):
    """``backward(..., h0_grad=False)`` returns dh0 as None and every weight gradient (a learned
    h0's included) and dx unchanged."""
    rnn = RNN(3, 4, num_layers, bidirectional=bidirectional, learn_h0=learn_h0, dtype=np.float64, seed=9)
    x, h0, lengths, dout, dh_n = _batch(rnn, seed=6)
    results = []
    for h0_grad in (True, False):
        rnn.zero_grad()
        rnn.forward(x, None if learn_h0 else h0, lengths)
        dx, dh0 = rnn.backward(dout, dh_n, h0_grad=h0_grad)
        results.append((dx, dh0, {k: v.copy() for k, v in rnn.grads.items()}))
    (dx, dh0, grads), (dx_skipped, no_dh0, grads_skipped) = results
    assert dh0 is not None and no_dh0 is None
    np.testing.assert_array_equal(dx_skipped, dx)
    assert ("h0" in grads) == learn_h0
    for name, grad in grads.items():
        np.testing.assert_array_equal(grads_skipped[name], grad, err_msg=name)


def test_gradients_accumulate_until_zero_grad():
    rnn = RNN(2, 3, dtype=np.float64, seed=7)
    x = np.ones((4, 2, 2))
    out, _ = rnn.forward(x)
    rnn.backward(np.ones_like(out))
    once = {k: v.copy() for k, v in rnn.grads.items()}
    out, _ = rnn.forward(x)
    rnn.backward(np.ones_like(out))
    for name in once:
        np.testing.assert_allclose(rnn.grads[name], 2 * once[name], rtol=1e-14)
    rnn.zero_grad()
    assert all(np.all(g == 0) for g in rnn.grads.values())


def test_dropout_only_in_training_mode_and_seeded():
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    first, second = (RNN(3, 8, num_layers=2, dropout=0.5, seed=0) for _ in range(2))
    out_a, _ = first.forward(x)
    out_b, _ = second.forward(x)
    np.testing.assert_array_equal(out_a, out_b)  # same seed, same masks
    out_c, _ = first.forward(x)
    assert not np.array_equal(out_a, out_c)  # fresh masks on the next call
    first.eval()
    out_d, _ = first.forward(x)
    out_e, _ = first.forward(x)
    np.testing.assert_array_equal(out_d, out_e)


def test_float32_default_and_inputs_cast():
    rnn = RNN(2, 3, seed=0)
    out, h_n = rnn.forward(np.ones((2, 1, 2), dtype=np.float64))
    assert out.dtype == h_n.dtype == np.float32
    assert all(p.dtype == np.float32 for p in rnn.params.values())
    out, _ = rnn.forward(np.ones((2, 1, 2), dtype=np.int64))
    assert out.dtype == np.float32


def test_parameter_names_and_shapes_follow_the_contract():
    rnn = RNN(3, 4, num_layers=2, bidirectional=True)
    expected = {}
    for k, inputs in ((0, 3), (1, 8)):
        for sfx in (f"_l{k}", f"_l{k}_reverse"):
            expected |= {f"W_xh{sfx}": (4, inputs), f"W_hh{sfx}": (4, 4), f"b_h{sfx}": (4,)}
    assert {k: v.shape for k, v in rnn.params.items()} == expected
    assert {k: v.shape for k, v in rnn.grads.items()} == expected


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda r: r.forward(np.ones((4, 3))), ValueError, r"x: expected a 3-D array \(T, B, input_size\), got shape \(4, 3\)"),
        (lambda r: r.forward(np.ones((4, 2, 5))), ValueError, r"x: expected 3 input features \(last axis\), got 5"),
        (lambda r: r.forward(np.ones((4, 2, 3)), lengths=[4, 5]), ValueError,
         r"lengths: expected every length in 1..4 \(T\), got lengths\[1\] = 5"),
        (lambda r: r.forward(np.ones((4, 2, 3)), lengths=[0, 4]), ValueError, r"lengths\[0\] = 0"),
        (lambda r: r.forward(np.ones((4, 2, 3)), lengths=[4]), ValueError, r"lengths: expected shape \(2,\)"),
        (lambda r: r.forward(np.ones((4, 2, 3)), lengths=[1.5, 2]), TypeError, r"lengths: expected integers"),
        (lambda r: r.forward(np.ones((4, 2, 3)), h0=np.zeros((2, 2, 4))), ValueError, r"h0: expected shape \(1, 2, 4\)"),
        (lambda r: r.forward(np.full((4, 2, 3), np.nan)), ValueError, r"x: expected finite values, got 24 NaN/inf"),
        (lambda r: r.backward(np.ones((4, 2, 4))), RuntimeError, r"RNN.backward: call forward first"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(RNN(3, 4, seed=0))


def test_bad_backward_shapes_and_constructor_arguments():
    rnn = RNN(3, 4, seed=0)
    rnn.forward(np.ones((4, 2, 3)))
    with pytest.raises(ValueError, match=r"dout: expected shape \(4, 2, 4\)"):
        rnn.backward(np.ones((4, 2, 8)))
    with pytest.raises(ValueError, match=r"dh_n: expected shape \(1, 2, 4\)"):
        rnn.backward(np.ones((4, 2, 4)), np.ones((2, 2, 4)))
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of 'tanh', 'sigmoid', 'relu', got 'softsign'"):
        RNN(3, 4, nonlinearity="softsign")
    with pytest.raises(ValueError, match=r"merge_mode: expected one of"):
        RNN(3, 4, bidirectional=True, merge_mode="multiply")
    with pytest.raises(ValueError, match=r"hidden_size: expected a positive integer, got 0"):
        RNN(3, 0)
    with pytest.raises(TypeError, match=r"dtype: expected float32 or float64, got float16"):
        RNN(3, 4, dtype=np.float16)
