"""The layer-normalised LSTM and GRU (Ba et al. 2016): equal to a PyTorch loop from torch ops and
``torch.nn.functional.layer_norm``, forward and every gradient (the gains and shifts included) in
float64, stacked, bidirectional, padded, batch_first, with initial states, resets, recurrent
dropout and zoneout; central differences; and the layer-norm functions on their own."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.functional.layer_norm import layer_norm_backward, layer_norm_forward
from rnnkit.nn import GRU, LSTM
from tests.nn.torch_loop import assert_matches, torch_loop

MODULES = {"lstm": LSTM, "gru": GRU}
TOL = dict(rtol=1e-10, atol=1e-10)


def _perturbed(module, seed):
    """Gains and shifts away from 1 and 0, so that their gradients and effects are visible."""
    rng = np.random.default_rng(seed)
    for name, value in module.params.items():
        if name.startswith("ln_"):
            value += rng.normal(0, 0.3, value.shape)
    return module


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional,padded,options", [
    (1, False, False, {}),
    (2, True, True, {}),
    (1, True, True, {"recurrent_dropout": 0.3}),
    (2, False, False, {"zoneout": 0.2}),
    (1, True, False, {"learn_h0": True}),
])
def test_layer_norm_cells_equal_torch(cell, num_layers, bidirectional, padded, options):
    pytest.importorskip("torch")
    module = _perturbed(MODULES[cell](3, 5, num_layers=num_layers, bidirectional=bidirectional, dtype=np.float64,
                                      seed=7, layer_norm=True, **options), 1)
    rng = np.random.default_rng(num_layers + 3 * padded)
    steps, batch = 7, 4
    x = rng.normal(size=(steps, batch, 3))
    shape = (num_layers * module.num_directions, batch, 5)
    initial = tuple(rng.normal(0, 0.5, shape) for _ in module.cell.state_names)
    lengths = np.array([7, 3, 6, 7]) if padded else np.full(batch, steps)
    resets = rng.random((steps, batch)) < (0.25 if options.get("learn_h0") else 0.0)
    out, finals = module.forward_states(x, initial, lengths if padded else None, resets if resets.any() else None)
    dout = rng.normal(size=out.shape) * (np.arange(steps)[:, None] < lengths)[:, :, None]
    dfinal = tuple(rng.normal(size=shape) for _ in module.cell.state_names)
    module.zero_grad()
    dx, dinitial = module.backward_states(dout, dfinal)
    want = torch_loop(module, x, initial, lengths, resets, dout, dfinal, module.last_masks)
    assert any(name.startswith("ln_c") for name in want[4]) == (cell == "lstm")
    assert_matches((out, finals, dx, dinitial), want, module)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_central_differences_of_the_gains(cell):
    module = _perturbed(MODULES[cell](2, 3, dtype=np.float64, seed=0, layer_norm=True, batch_first=True), 2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 2))
    dout = rng.normal(size=(2, 6, 3))
    module(x)
    module.zero_grad()
    module.backward(dout)
    eps = 1e-6
    for name in ("ln_x_gain_l0", "ln_h_shift_l0", *(("ln_c_gain_l0",) if cell == "lstm" else ())):
        value = module.params[name]
        for index in (0, len(value) - 1):
            saved = value[index]
            value[index] = saved + eps
            up = (module(x)[0] * dout).sum()
            value[index] = saved - eps
            down = (module(x)[0] * dout).sum()
            value[index] = saved
            np.testing.assert_allclose(module.grads[name][index], (up - down) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_gains_start_at_one_and_shifts_at_zero():
    module = LSTM(3, 4, layer_norm=True, seed=0, bidirectional=True)
    assert module.params["ln_x_gain_l0_reverse"].shape == (16,) and module.params["ln_c_gain_l0"].shape == (4,)
    np.testing.assert_array_equal(module.params["ln_c_gain_l0"], 1.0)
    np.testing.assert_array_equal(module.params["ln_h_shift_l0"], 0.0)
    assert "layer_norm=True" in repr(module)


def test_layer_norm_functions_equal_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, gain, shift, dy = rng.normal(size=(3, 4, 6)), rng.normal(size=6), rng.normal(size=6), rng.normal(size=(3, 4, 6))
    normalized, inv_std, out = np.empty_like(a), np.empty((3, 4, 1)), np.empty_like(a)
    layer_norm_forward(a, gain, shift, normalized, inv_std, out)
    ta, tg, ts = (torch.tensor(v, requires_grad=True) for v in (a, gain, shift))
    want = torch.nn.functional.layer_norm(ta, (6,), tg, ts, eps=1e-5)
    (want * torch.tensor(dy)).sum().backward()
    np.testing.assert_allclose(out, want.detach().numpy(), **TOL)
    dgain, dshift = np.zeros(6), np.zeros(6)
    da = layer_norm_backward(dy, normalized, inv_std, gain, dgain, dshift, np.empty_like(dy))
    np.testing.assert_allclose(da, ta.grad.numpy(), **TOL)
    np.testing.assert_allclose(dgain, tg.grad.numpy(), **TOL)
    np.testing.assert_allclose(dshift, ts.grad.numpy(), **TOL)


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3, 4))
    module32 = LSTM(4, 8, layer_norm=True, seed=1, bidirectional=True)
    module64 = LSTM(4, 8, layer_norm=True, seed=1, bidirectional=True, dtype=np.float64)
    out32, _ = module32(x, lengths=np.array([10, 4, 7]))
    out64, _ = module64(x, lengths=np.array([10, 4, 7]))
    # normalised rows are O(1): float32 rounding through T steps of O(H) sums stays far below 1e-4
    np.testing.assert_allclose(out32, out64, rtol=0, atol=1e-4)


def test_layer_norm_is_refused_where_it_cannot_go():
    from rnnkit.functional.normalized_cells import layer_norm_cell

    with pytest.raises(ValueError, match="layer_norm: expected an lstm or gru cell, got 'rnn'"):
        layer_norm_cell("rnn")
    torch = pytest.importorskip("torch")  # noqa: F841
    from rnnkit.interop.torch import to_torch

    with pytest.raises(ValueError, match="rnn.layer_norm: torch.nn.GRU has no layer normalisation"):
        to_torch(GRU(3, 4, layer_norm=True))
    pytest.importorskip("onnx")
    from rnnkit.interop.onnx import to_onnx

    with pytest.raises(ValueError, match="layer_norm: ONNX's LSTM operator has no layer normalisation"):
        to_onnx(LSTM(3, 4, layer_norm=True))
