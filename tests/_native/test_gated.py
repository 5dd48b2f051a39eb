"""The gated cells' compiled loops (``rnnkit/_native/gated.c``) against the NumPy loops they
replace, through whole layers (both directions, padding, final-state gradients, several BPTT
blocks, the skipped first product), in float64 tightly and in float32 within what rounding
allows; and the arrays the kernels must refuse."""

import numpy as np
import pytest

from rnnkit import _native
from rnnkit.functional import elman, recurrent
from rnnkit.functional.gru import GRU_CELL
from rnnkit.functional.lstm import LSTM_CELL
from rnnkit.functional.recurrent import recurrent_layer_backward, recurrent_layer_forward

pytestmark = pytest.mark.skipif(not _native.available(), reason=f"compiled loops: {_native.why_not()}")
CELLS = {"lstm": LSTM_CELL, "gru": GRU_CELL}


def _layer(cell, dtype, directions, lengths, seed, steps=9, batch=4, inputs=3, hidden=5):
    rng = np.random.default_rng(seed)
    width = cell.gates * hidden
    x = rng.normal(size=(steps, batch, inputs)).astype(dtype)
    initial = tuple(rng.normal(size=(directions, batch, hidden)).astype(dtype) for _ in cell.state_names)
    weights = [(rng.normal(size=(width, inputs)).astype(dtype) * 0.5, rng.normal(size=(width, hidden)).astype(dtype) * 0.5,
                tuple(rng.normal(size=width).astype(dtype) * 0.3 for _ in cell.bias_names)) for _ in range(directions)]
    dout = rng.normal(size=(steps, batch, directions * hidden)).astype(dtype)
    dfinal = tuple(rng.normal(size=(directions, batch, hidden)).astype(dtype) for _ in cell.state_names)
    return x, initial, weights, dout, dfinal


def _run(cell, arrays, lengths, reverse, h0_grad=True):
    x, initial, weights, dout, dfinal = arrays
    W_xh, W_hh, biases = zip(*weights)
    out, final, cache = recurrent_layer_forward(cell, x, initial, W_xh, W_hh, biases, lengths, reverse)
    dx, dinitial, grads = recurrent_layer_backward(dout, dfinal, cache, h0_grad=h0_grad)
    flat = [out, *final, dx, *(dinitial or ())] + [g for per_name in grads for g in per_name]
    return flat


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reverse", [(False,), (True,), (False, True)])
@pytest.mark.parametrize("lengths", [None, np.array([9, 3, 6, 1])])
@pytest.mark.parametrize("block_rows", [recurrent._BLOCK_ROWS, 8])
def test_compiled_layer_equals_numpy_loops(name, dtype, reverse, lengths, block_rows, monkeypatch):
    """float32: every value passes through a few dozen roundings (u = 6e-8) amplified by at most
    the step count through the recurrence, with |values| of order 1-10: 2e-5 absolute bounds it."""
    monkeypatch.setattr(recurrent, "_BLOCK_ROWS", block_rows)  # 8 rows: blocks of 2 steps
    cell = CELLS[name]
    arrays = _layer(cell, dtype, len(reverse), lengths, seed=len(reverse) + block_rows)
    compiled = _run(cell, arrays, lengths, reverse)
    with _native.disabled():
        expected = _run(cell, arrays, lengths, reverse)
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    assert len(compiled) == len(expected)
    for index, (got, want) in enumerate(zip(compiled, expected)):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, err_msg=f"output {index}", **tolerance)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_compiled_without_h0_grad_equals_numpy(name):
    cell = CELLS[name]
    arrays = _layer(cell, np.float64, 2, None, seed=3)
    compiled = _run(cell, arrays, None, (False, True), h0_grad=False)
    with _native.disabled():
        expected = _run(cell, arrays, None, (False, True), h0_grad=False)
    for got, want in zip(compiled, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_padding_stays_exactly_zero_in_the_compiled_loops(name):
    cell = CELLS[name]
    lengths = np.array([9, 2, 5, 1])
    x, initial, weights, dout, dfinal = _layer(cell, np.float32, 1, lengths, seed=4)
    W_xh, W_hh, biases = zip(*weights)
    out, _, cache = recurrent_layer_forward(cell, x, initial, W_xh, W_hh, biases, lengths, (False,))
    dout[5:, 2] = 1e6  # ignored at padding, whatever the caller passes
    dx, _, _ = recurrent_layer_backward(dout, dfinal, cache)
    for b, length in enumerate(lengths):
        assert np.all(out[length:, b] == 0) and np.all(dx[length:, b] == 0)
    assert np.isfinite(dx).all()


def test_kernels_refuse_what_they_cannot_walk():
    steps, batch, hidden = 3, 2, 4
    f32 = np.float32
    gates, states, cells = (np.zeros((steps, batch, w * hidden), f32) for w in (4, 1, 1))
    h0, c0 = np.zeros((batch, hidden), f32), np.zeros((batch, hidden), f32)
    W_hh_T, bias = np.zeros((hidden, 4 * hidden), f32), np.zeros(4 * hidden, f32)
    assert _native.lstm_scan_forward(gates, states, cells, h0, c0, W_hh_T, bias, None, steps)
    assert not _native.lstm_scan_forward(gates.astype(np.float64), states, cells, h0, c0, W_hh_T, bias, None, steps)
    assert not _native.lstm_scan_forward(gates[:, :, :-1], states, cells, h0, c0, W_hh_T, bias, None, steps)
    assert not _native.lstm_scan_forward(gates, states, cells, np.zeros((batch, 2 * hidden), f32)[:, ::2], c0,
                                         W_hh_T, bias, None, steps)
    assert not _native.lstm_scan_forward(gates, states, cells, h0, c0, W_hh_T, bias, np.ones((2, 2, 1), f32), steps)
    with _native.disabled():
        assert not _native.lstm_scan_forward(gates, states, cells, h0, c0, W_hh_T, bias, None, steps)
    gru_gates, hidden_n = np.zeros((steps, batch, 3 * hidden), f32), np.zeros((steps, batch, hidden), f32)
    W_gru_T, b = np.zeros((hidden, 3 * hidden), f32), np.zeros(3 * hidden, f32)
    assert _native.gru_scan_forward(gru_gates, states, hidden_n, h0, W_gru_T, b, b, None, steps)
    assert not _native.gru_scan_forward(gru_gates, states, hidden_n, h0, W_gru_T, b[:-1], b, None, steps)
    assert not _native.gru_scan_forward(gru_gates[:, :, ::2], states, hidden_n, h0, W_gru_T, b, b, None, steps)


def test_subnormals_are_flushed_inside_the_loops_and_nowhere_else():
    """The loops run with FTZ/DAZ (kernels.h: subnormals cost a microcode assist per operation,
    and vanishing gradients are full of them); the caller's floating-point mode comes back."""
    tiny = np.float32(2.0 ** -130)  # subnormal in float32
    states = np.full((2, 1, 4), tiny, np.float32)
    assert _native.elman_scan_forward(states, np.zeros((1, 4), np.float32), np.zeros((4, 4), np.float32),
                                np.zeros(4, np.float32), "relu", None, 2)
    assert np.all(states == 0)  # relu(tiny) read as 0
    with _native.disabled():
        kept = np.full((2, 1, 4), tiny, np.float32)
        elman._scan_forward(kept, np.zeros((1, 4), np.float32), np.zeros((4, 4), np.float32),
                                np.zeros(4, np.float32), elman.get_activation("relu"), None, 2)
    assert np.all(kept == tiny)
    assert np.float32(2.0 ** -126) * np.float32(0.5) == np.float32(2.0 ** -127)  # NumPy's own mode untouched
