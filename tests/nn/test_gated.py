"""LSTM and GRU modules: exact against PyTorch on packed batches, against central differences,
and the same conventions and errors as RNN."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.nn import GRU, LSTM, recurrent
from rnnkit.testing import assert_matches_torch
from tests.gradcheck import assert_gradient

CELLS = {"lstm": LSTM, "gru": GRU}


def _batch(module, steps=7, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, batch, module.input_size))
    shape = (module.num_layers * module.num_directions, batch, module.hidden_size)
    initial = tuple(rng.normal(size=shape) * 0.5 for _ in module.cell.state_names)
    lengths = rng.integers(1, steps + 1, size=batch)
    lengths[0] = steps  # at least one full-length sequence, as after padding to the longest
    dout = rng.normal(size=(steps, batch, module.output_size))
    dfinal = tuple(rng.normal(size=shape) for _ in module.cell.state_names)
    return x, initial, lengths, dout, dfinal


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_torch_packed_sequences(cell, num_layers, bidirectional):
    pytest.importorskip("torch")
    module = CELLS[cell](3, 5, num_layers, bidirectional, dtype=np.float64, seed=1)
    assert_matches_torch(module, *_batch(module, seed=num_layers))


def test_public_signatures_follow_the_contract():
    lstm, gru = LSTM(3, 4, 2, dtype=np.float64, seed=0), GRU(3, 4, 2, dtype=np.float64, seed=0)
    x, (h0, c0), lengths, dout, (dh_n, dc_n) = _batch(lstm, seed=3)
    out, (h_n, c_n) = lstm.forward(x, (h0, c0), lengths)
    dx, (dh0, dc0) = lstm.backward(dout, dh_n, dc_n)
    expected_out, (expected_h, expected_c) = lstm.forward_states(x, (h0, c0), lengths)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(c_n, expected_c)
    assert dx.shape == x.shape and dh0.shape == dc0.shape == h0.shape
    assert lstm.backward(*(lstm.forward(x)[:1]), input_grad=False, h0_grad=False) == (None, None)
    out, h_n = gru.forward(x, h0, lengths)
    dx, dh0 = gru.backward(dout, dh_n)
    assert out.shape == (7, 4, 4) and h_n.shape == dh0.shape == (2, 4, 4) and dx.shape == x.shape


@pytest.mark.parametrize(
    "config",
    [
        dict(cell="lstm", num_layers=2, bidirectional=True, dropout=0.3),
        dict(cell="gru", num_layers=2, bidirectional=True, dropout=0.3),
        dict(cell="lstm", num_layers=1, bidirectional=True, merge_mode="mul"),
        dict(cell="gru", num_layers=1, bidirectional=True, merge_mode="ave", batch_first=True),
        dict(cell="lstm", num_layers=2, bidirectional=True, merge_mode="sum", learn_h0=True),
        dict(cell="gru", num_layers=1, bidirectional=False, learn_h0=True),
    ],
)
def test_gradients_match_central_differences(config):
    options = dict(config)
    module = recurrent(options.pop("cell"), 3, 4, dtype=np.float64, seed=3, **options)
    rng = np.random.default_rng(9)
    for name in module.cell.state_names:
        if module.learn_h0:
            module.params[f"{name}0"][...] = rng.normal(size=module.params[f"{name}0"].shape)
    x, initial, lengths, dout, dfinal = _batch(module, steps=5, batch=3, seed=7)
    if module.batch_first:
        x, dout = x.transpose(1, 0, 2).copy(), dout.transpose(1, 0, 2).copy()
    initial_arg = None if module.learn_h0 else initial

    def loss():
        module.rng = np.random.default_rng(11)  # the same dropout masks on every call
        out, finals = module.forward_states(x, initial_arg, lengths)
        return float(np.sum(out * dout) + sum(np.sum(s * g) for s, g in zip(finals, dfinal)))

    loss()
    module.zero_grad()
    dx, dinitial = module.backward_states(dout, dfinal)
    assert_gradient(loss, x, dx, "x")
    if initial_arg is not None:
        for name, state, grad in zip(module.cell.state_names, initial, dinitial):
            assert_gradient(loss, state, grad, f"{name}0")
    for name, param in module.params.items():
        assert_gradient(loss, param, module.grads[name].copy(), name)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_is_zero_and_never_leaks(cell):
    module = CELLS[cell](2, 3, num_layers=2, bidirectional=True, dtype=np.float64, seed=4)
    x, initial, _, dout, dfinal = _batch(module, steps=6, batch=3, seed=1)
    lengths = np.array([6, 2, 4])
    out, finals = module.forward_states(x, initial, lengths)
    assert np.all(out[2:, 1] == 0) and np.all(out[4:, 2] == 0)
    dx, dinitial = module.backward_states(dout, dfinal)
    grads_before = {k: v.copy() for k, v in module.grads.items()}
    assert np.all(dx[2:, 1] == 0) and np.all(dx[4:, 2] == 0)

    module.zero_grad()
    x[2:, 1] = 1e3
    dout[2:, 1] = 1e6
    out2, finals2 = module.forward_states(x, initial, lengths)
    dx2, dinitial2 = module.backward_states(dout, dfinal)
    np.testing.assert_array_equal(out2, out)
    for a, b in zip(finals + dinitial, finals2 + dinitial2):
        np.testing.assert_array_equal(a, b)
    for name in module.grads:
        np.testing.assert_array_equal(module.grads[name], grads_before[name])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("learn_h0", [False, True])
def test_gradient_skips_leave_every_other_gradient_unchanged(cell, learn_h0):
    module = CELLS[cell](3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=5, learn_h0=learn_h0)
    x, initial, lengths, dout, dfinal = _batch(module, seed=2)
    initial_arg = None if learn_h0 else initial
    module.forward_states(x, initial_arg, lengths)
    dx, dinitial = module.backward_states(dout, dfinal)
    full = {k: v.copy() for k, v in module.grads.items()}
    module.zero_grad()
    module.forward_states(x, initial_arg, lengths)
    no_dx, no_dinitial = module.backward_states(dout, dfinal, input_grad=False, h0_grad=False)
    assert no_dx is None and no_dinitial is None
    for name in full:
        np.testing.assert_array_equal(module.grads[name], full[name], err_msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_agrees_with_float64(cell):
    """float32 differs from float64 by rounding only: a few units of float32's epsilon (1.2e-7)
    times the number of operations a value passes through, here bounded by 1e-5."""
    module64 = CELLS[cell](3, 8, num_layers=2, bidirectional=True, dtype=np.float64, seed=6)
    module32 = CELLS[cell](3, 8, num_layers=2, bidirectional=True, dtype=np.float32, seed=6)
    module32.load_state_dict(module64.state_dict())
    x, initial, lengths, dout, dfinal = _batch(module64, seed=4)
    out64, _ = module64.forward_states(x, initial, lengths)
    out32, _ = module32.forward_states(x, initial, lengths)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, atol=1e-5)
    module64.backward_states(dout, dfinal)
    module32.backward_states(dout, dfinal)
    for name in module64.grads:
        np.testing.assert_allclose(module32.grads[name], module64.grads[name], atol=1e-4, err_msg=name)


@st.composite
def configurations(draw):
    steps = draw(st.integers(1, 8))
    batch = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    lengths[draw(st.integers(0, batch - 1))] = steps
    return dict(
        cell=draw(st.sampled_from(["lstm", "gru"])),
        steps=steps,
        lengths=np.array(lengths),
        input_size=draw(st.integers(1, 5)),
        hidden_size=draw(st.integers(1, 6)),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_gated_cells_equal_torch_on_random_configurations(config):
    pytest.importorskip("torch")
    module = CELLS[config["cell"]](config["input_size"], config["hidden_size"], config["num_layers"],
                                   config["bidirectional"], dtype=np.float64, seed=config["seed"])
    rng = np.random.default_rng(config["seed"])
    lengths = config["lengths"]
    shape = (module.num_layers * module.num_directions, lengths.size, module.hidden_size)
    x = rng.normal(size=(config["steps"], lengths.size, module.input_size))
    initial = tuple(rng.normal(size=shape) for _ in module.cell.state_names)
    dout = rng.normal(size=(config["steps"], lengths.size, module.output_size))
    dfinal = tuple(rng.normal(size=shape) for _ in module.cell.state_names)
    assert_matches_torch(module, x, initial, lengths, dout, dfinal)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m.forward(np.ones((4, 3))), ValueError, r"x: expected a 3-D array \(T, B, input_size\), got shape \(4, 3\)"),
        (lambda m: m.forward(np.ones((4, 2, 5))), ValueError, r"x: expected 3 input features \(last axis\), got 5"),
        (lambda m: m.forward(np.ones((4, 2, 3)), lengths=[4, 5]), ValueError, r"lengths: expected every length in 1..4"),
        (lambda m: m.forward(np.ones((4, 2, 3)), (np.zeros((2, 2, 4)), np.zeros((1, 2, 4)))), ValueError,
         r"h0: expected shape \(1, 2, 4\)"),
        (lambda m: m.forward(np.ones((4, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((1, 3, 4)))), ValueError,
         r"c0: expected shape \(1, 2, 4\)"),
        (lambda m: m.forward(np.ones((4, 2, 3)), np.zeros((1, 2, 4))), TypeError, r"hx: expected a pair \(h0, c0\)"),
        (lambda m: m.forward(np.full((4, 2, 3), np.nan)), ValueError, r"x: expected finite values, got 24 NaN/inf"),
        (lambda m: m.backward(np.ones((4, 2, 4))), RuntimeError, r"LSTM.backward: call forward first"),
    ],
)
def test_lstm_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(LSTM(3, 4, seed=0))


def test_bad_backward_shapes_and_constructor_arguments():
    lstm = LSTM(3, 4, seed=0)
    lstm.forward(np.ones((4, 2, 3)))
    with pytest.raises(ValueError, match=r"dc_n: expected shape \(1, 2, 4\)"):
        lstm.backward(np.ones((4, 2, 4)), dc_n=np.ones((2, 2, 4)))
    gru = GRU(3, 4, seed=0)
    gru.forward(np.ones((4, 2, 3)))
    with pytest.raises(ValueError, match=r"dout: expected shape \(4, 2, 4\)"):
        gru.backward(np.ones((4, 2, 8)))
    with pytest.raises(ValueError, match=r"hidden_size: expected a positive integer, got 0"):
        GRU(3, 0)
    with pytest.raises(TypeError, match=r"dtype: expected float32 or float64, got float16"):
        LSTM(3, 4, dtype=np.float16)
    with pytest.raises(ValueError, match=r"nonlinearity: the LSTM cell has its own gate nonlinearities"):
        recurrent("lstm", 3, 4, nonlinearity="relu")
    with pytest.raises(ValueError, match=r"cell: expected one of 'rnn', 'lstm', 'gru', 'mingru', 'minlstm', got 'elman'"):
        recurrent("elman", 3, 4)


def test_parameter_names_and_shapes_follow_the_contract():
    lstm = LSTM(3, 5, num_layers=2, bidirectional=True)
    assert lstm.params["W_xh_l0"].shape == (20, 3) and lstm.params["W_hh_l1_reverse"].shape == (20, 5)
    assert lstm.params["W_xh_l1"].shape == (20, 10) and lstm.params["b_h_l0"].shape == (20,)
    assert len(lstm.params) == 12
    gru = GRU(3, 5)
    assert sorted(gru.params) == ["W_hh_l0", "W_xh_l0", "b_hh_l0", "b_xh_l0"]
    assert gru.params["W_hh_l0"].shape == (15, 5) and gru.params["b_xh_l0"].shape == (15,)
    bound = 1 / np.sqrt(5)
    assert all(np.abs(v).max() <= bound for v in lstm.params.values())


def test_missing_final_state_gradients_are_zeros():
    lstm = LSTM(3, 4, dtype=np.float64, seed=0)
    x, _, _, dout, (dh_n, _) = _batch(lstm, seed=8)
    lstm.forward_states(x)
    dx_short, _ = lstm.backward_states(dout, (dh_n,))
    lstm.forward_states(x)
    dx_full, _ = lstm.backward_states(dout, (dh_n, None))
    np.testing.assert_array_equal(dx_short, dx_full)
    lstm.forward_states(x)
    with pytest.raises(ValueError, match=r"dfinal: expected at most 2 gradients, one per state \('h', 'c'\), got 3"):
        lstm.backward_states(dout, (dh_n, dh_n, dh_n))
