"""Recurrent dropout and zoneout in the recurrent modules: with the masks the module drew, every
cell, stacked and bidirectional, with padding, resets and learned initial states, equals a PyTorch
loop from torch ops with the same masks, forward and every gradient in float64; evaluation is the
expectation; the float32 compiled path agrees with float64; and bad settings are refused."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.functional import get_cell
from rnnkit.functional.recurrent import recurrent_layer_forward
from rnnkit.nn import GRU, LSTM, RNN, MinGRU, MinLSTM
from tests.nn.torch_loop import assert_matches, torch_loop

MODULES = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "mingru": MinGRU, "minlstm": MinLSTM}
SETTINGS = [dict(recurrent_dropout=0.4), dict(zoneout=0.3), dict(recurrent_dropout=0.3, zoneout=0.25)]


def _run_both(module, rng, lengths, resets, steps=7, batch=4):
    x = rng.normal(size=(steps, batch, 3))
    shape = (module.num_layers * module.num_directions, batch, module.hidden_size)
    initial = tuple(rng.normal(0, 0.5, shape) for _ in module.cell.state_names)
    out, finals = module.forward_states(x, initial, lengths, resets)
    valid = np.ones((steps, batch)) if lengths is None else (np.arange(steps)[:, None] < lengths)
    dout = rng.normal(size=out.shape) * valid[:, :, None]
    dfinal = tuple(rng.normal(size=shape) for _ in module.cell.state_names)
    module.zero_grad()
    dx, dinitial = module.backward_states(dout, dfinal)
    want = torch_loop(module, x, initial, np.full(batch, steps) if lengths is None else lengths,
                      np.zeros((steps, batch), bool) if resets is None else resets, dout, dfinal, module.last_masks)
    return (out, finals, dx, dinitial), want


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("setting", SETTINGS, ids=["recurrent_dropout", "zoneout", "both"])
@pytest.mark.parametrize("num_layers,bidirectional,padded", [(1, False, False), (2, True, True), (1, True, False),
                                                             (2, False, True)])
def test_masks_equal_a_torch_loop_with_the_same_masks(cell, setting, num_layers, bidirectional, padded):
    pytest.importorskip("torch")
    module = MODULES[cell](3, 5, num_layers=num_layers, bidirectional=bidirectional, dtype=np.float64, seed=3,
                           **setting)
    rng = np.random.default_rng(num_layers + 2 * bidirectional + 4 * padded)
    lengths = np.array([7, 4, 7, 2]) if padded else None
    got, want = _run_both(module, rng, lengths, None)
    assert any(m is not None for masks in module.last_masks for m in masks)
    assert_matches(got, want, module)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("bidirectional,padded", [(False, False), (True, True)])
def test_zoneout_on_the_minimal_cells_equals_torch(cell, bidirectional, padded):
    pytest.importorskip("torch")
    module = MODULES[cell](3, 5, num_layers=2, bidirectional=bidirectional, dtype=np.float64, seed=5, zoneout=0.3)
    rng = np.random.default_rng(11)
    got, want = _run_both(module, rng, np.array([7, 3, 6, 7]) if padded else None, None)
    assert_matches(got, want, module)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_masks_with_resets_and_a_learned_initial_state(cell):
    pytest.importorskip("torch")
    module = MODULES[cell](3, 5, num_layers=2, bidirectional=True, dtype=np.float64, seed=4, learn_h0=True,
                           recurrent_dropout=0.3, zoneout=0.2)
    for name in module.cell.state_names:
        module.params[f"{name}0"][...] = np.random.default_rng(9).normal(0, 0.5, module.params[f"{name}0"].shape)
    rng = np.random.default_rng(1)
    resets = rng.random((7, 4)) < 0.3
    resets[0, 1] = resets[3, 2] = True
    got, want = _run_both(module, rng, np.array([7, 5, 7, 3]), resets)
    assert_matches(got, want, module)


def test_recurrent_dropout_alone_with_resets_equals_torch():
    pytest.importorskip("torch")
    module = GRU(3, 5, bidirectional=True, dtype=np.float64, seed=6, recurrent_dropout=0.5)
    rng = np.random.default_rng(2)
    resets = rng.random((7, 4)) < 0.3
    got, want = _run_both(module, rng, np.array([7, 6, 2, 7]), resets)
    assert_matches(got, want, module)


def test_central_differences_through_zoneout_and_recurrent_dropout():
    module = LSTM(2, 3, dtype=np.float64, seed=0, recurrent_dropout=0.3, zoneout=0.3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2, 2))
    module.forward(x)
    masks = module.last_masks
    dout = rng.normal(size=(5, 2, 3))
    module.zero_grad()
    module.backward(dout)
    module._draw_masks = lambda steps, batch: masks[0]  # the same draws for every evaluation below
    W = module.params["W_hh_l0"]
    eps = 1e-6
    for index in [(0, 0), (5, 2), (11, 1)]:
        saved = W[index]
        W[index] = saved + eps
        up = (module.forward(x)[0] * dout).sum()
        W[index] = saved - eps
        down = (module.forward(x)[0] * dout).sum()
        W[index] = saved
        np.testing.assert_allclose(module.grads["W_hh_l0"][index], (up - down) / (2 * eps), rtol=1e-7, atol=1e-9)


def test_evaluation_uses_no_dropout_and_the_expectation_of_zoneout():
    module = GRU(3, 4, dtype=np.float64, seed=0, recurrent_dropout=0.5, zoneout=0.25)
    plain = GRU(3, 4, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(6, 2, 3))
    module.eval()
    out, _ = module(x)
    assert module.last_masks[0][0] is None  # no recurrent dropout at evaluation
    # zoneout's expectation, by hand from the plain cell one step at a time
    h = np.zeros((1, 2, 4))
    for t in range(6):
        new, _ = plain(x[t : t + 1], h)
        h = 0.25 * h + 0.75 * new
        np.testing.assert_allclose(out[t], h[0], rtol=1e-12, atol=1e-12)


def test_training_draws_new_masks_and_keeps_the_expected_share():
    module = LSTM(3, 64, dtype=np.float64, seed=0, recurrent_dropout=0.25, zoneout=0.1)
    x = np.random.default_rng(0).normal(size=(50, 16, 3))
    module(x)
    (first, zoned), = module.last_masks
    module(x)
    assert not np.array_equal(first[0], module.last_masks[0][0][0])
    kept = first[0] > 0
    assert 0.7 < kept.mean() < 0.8  # 1 - 0.25 of the units enter the product
    np.testing.assert_allclose(first[0][kept], 1 / 0.75)  # inverted dropout keeps the expectation
    assert 0.08 < zoned[0].mean() < 0.12
    assert zoned[0].shape == (1, 50, 16, 64) and zoned[1].shape == (1, 50, 16, 64)  # h and c


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_float32_compiled_steps_agree_with_float64(cell):
    """Zoneout calls the cell's loops (compiled in float32) a step at a time; the same masks in
    float64 give the same result to float32 rounding."""
    rng = np.random.default_rng(0)
    module32 = MODULES[cell](8, 16, bidirectional=True, seed=1, zoneout=0.2)
    module64 = MODULES[cell](8, 16, bidirectional=True, seed=1, zoneout=0.2, dtype=np.float64)
    x = rng.normal(size=(12, 5, 8))
    lengths = np.array([12, 9, 12, 3, 7])
    out32, _ = module32(x, lengths=lengths)
    masks = module32.last_masks
    module64._draw_masks = lambda steps, batch: tuple(
        None if m is None else tuple(a.astype(np.float64) for a in m) for m in masks[0])
    out64, _ = module64(x, lengths=lengths)
    dout = rng.normal(size=out32.shape)
    dx32, _ = module32.backward(dout)
    dx64, _ = module64.backward(dout)
    # each value is a sum of O(H) float32 products through at most T tanh steps: bounded by ~T * H * eps32
    np.testing.assert_allclose(out32, out64, rtol=0, atol=1e-4)
    np.testing.assert_allclose(dx32, dx64, rtol=0, atol=5e-4 * np.abs(dx64).max())


def test_bad_settings_say_what_was_expected():
    with pytest.raises(ValueError, match=r"recurrent_dropout: expected a probability in \[0, 1\), got 1.0"):
        LSTM(3, 4, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match=r"zoneout: expected a probability in \[0, 1\), got -0.1"):
        GRU(3, 4, zoneout=-0.1)
    with pytest.raises(ValueError, match="the mingru cell has no recurrent product"):
        MinGRU(3, 4, recurrent_dropout=0.2)
    with pytest.raises(ValueError, match="the minlstm cell has no recurrent product"):
        recurrent_layer_forward(get_cell("minlstm"), np.zeros((3, 2, 4)), (np.zeros((1, 2, 5)),),
                                (np.zeros((15, 4)),), (None,), ((np.zeros(15),),), recurrent_masks=(np.ones((2, 5)),))
    assert "zoneout=0.3" in repr(RNN(3, 4, zoneout=0.3))


def test_exports_refuse_zoneout_by_name_and_keep_recurrent_dropout():
    torch = pytest.importorskip("torch")
    from rnnkit.interop.torch import to_torch

    with pytest.raises(ValueError, match="rnn.zoneout: torch.nn.LSTM has no zoneout"):
        to_torch(LSTM(3, 4, zoneout=0.1))
    module = GRU(3, 4, dtype=np.float64, seed=0, recurrent_dropout=0.5)
    module.eval()  # recurrent dropout is off at evaluation: the exported layer computes the same
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    want, _ = to_torch(module)(torch.tensor(x))
    np.testing.assert_allclose(module(x)[0], want.detach().numpy(), rtol=1e-12, atol=1e-12)
    pytest.importorskip("onnx")
    from rnnkit.interop.onnx import to_onnx

    with pytest.raises(ValueError, match="zoneout: ONNX's GRU export has no zoneout"):
        to_onnx(GRU(3, 4, zoneout=0.2))
