"""The LSTM with a projection (``proj_size``, LSTMP): equal to ``torch.nn.LSTM(proj_size=P)``
itself, forward and every gradient in float64, over layers, directions, lengths (packed
sequences), batch_first and initial states; from_torch/to_torch both ways; and with the options
torch lacks (resets, recurrent dropout, zoneout) equal to a torch-ops loop with the same masks."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.nn import LSTM

torch = pytest.importorskip("torch")
from rnnkit.interop.torch import from_torch, to_torch  # noqa: E402
from tests.nn.torch_loop import assert_matches, torch_loop  # noqa: E402

TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("num_layers,bidirectional,padded,batch_first", [
    (1, False, False, False), (2, True, True, False), (3, False, True, True), (2, True, False, True),
])
def test_equals_torch_lstm_with_proj_size(num_layers, bidirectional, padded, batch_first):
    rng = np.random.default_rng(num_layers + 2 * bidirectional)
    torch_lstm = torch.nn.LSTM(3, 7, num_layers=num_layers, bidirectional=bidirectional, proj_size=4,
                               batch_first=batch_first, dtype=torch.float64)
    module = from_torch(torch_lstm)
    assert module.proj_size == 4 and module.params["W_hh_l0"].shape == (28, 4)
    steps, batch, D = 6, 3, 2 if bidirectional else 1
    lengths = np.array([6, 2, 4]) if padded else np.full(batch, steps)
    x = rng.normal(size=(batch, steps, 3) if batch_first else (steps, batch, 3))
    h0, c0 = rng.normal(size=(num_layers * D, batch, 4)), rng.normal(size=(num_layers * D, batch, 7))
    out, (h_n, c_n) = module(x, (h0, c0), lengths=lengths if padded else None)
    assert out.shape[-1] == D * 4 and h_n.shape == h0.shape and c_n.shape == c0.shape
    valid = np.arange(steps)[:, None] < lengths
    dout = rng.normal(size=out.shape) * (valid.T if batch_first else valid)[:, :, None]
    dh_n, dc_n = rng.normal(size=h_n.shape), rng.normal(size=c_n.shape)
    module.zero_grad()
    dx, (dh0, dc0) = module.backward(dout, dh_n, dc_n)

    tx, th0, tc0 = (torch.tensor(v, requires_grad=True) for v in (x, h0, c0))
    packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), batch_first=batch_first,
                                                     enforce_sorted=False)
    tout, (th_n, tc_n) = torch_lstm(packed, (th0, tc0))
    tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=batch_first, total_length=steps)
    loss = (tout * torch.tensor(dout)).sum() + (th_n * torch.tensor(dh_n)).sum() + (tc_n * torch.tensor(dc_n)).sum()
    loss.backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    np.testing.assert_allclose(h_n, th_n.detach().numpy(), **TOL)
    np.testing.assert_allclose(c_n, tc_n.detach().numpy(), **TOL)
    for got, want in ((dx, tx), (dh0, th0), (dc0, tc0)):
        np.testing.assert_allclose(got, want.grad.numpy(), **TOL)
    names = {"W_xh": "weight_ih", "W_hh": "weight_hh", "W_hr": "weight_hr"}
    for name, grad in module.grads.items():
        kind, suffix = name.split("_l", 1)
        if kind == "b_h":
            want = getattr(torch_lstm, f"bias_ih_l{suffix}").grad.numpy()  # b_h = b_ih + b_hh: the same gradient
        else:
            want = getattr(torch_lstm, f"{names[kind]}_l{suffix}").grad.numpy()
        np.testing.assert_allclose(grad, want, err_msg=name, **TOL)


def test_to_torch_and_back_keep_the_projection():
    module = LSTM(3, 6, proj_size=2, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    torch_lstm = to_torch(module)
    assert torch_lstm.proj_size == 2 and tuple(torch_lstm.weight_hr_l1_reverse.shape) == (2, 6)
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    want, _ = torch_lstm(torch.tensor(x))
    np.testing.assert_allclose(module(x)[0], want.detach().numpy(), **TOL)
    back = from_torch(torch_lstm)
    for name, value in module.params.items():
        np.testing.assert_array_equal(back.params[name], value)


@pytest.mark.parametrize("options", [{"recurrent_dropout": 0.3}, {"zoneout": 0.2}, {"learn_h0": True}])
def test_what_torch_lacks_equals_a_torch_ops_loop(options):
    module = LSTM(3, 6, proj_size=4, num_layers=2, bidirectional=True, dtype=np.float64, seed=1, **options)
    rng = np.random.default_rng(3)
    steps, batch = 6, 4
    x = rng.normal(size=(steps, batch, 3))
    initial = (rng.normal(size=(4, batch, 4)), rng.normal(size=(4, batch, 6)))
    lengths = np.array([6, 3, 5, 6])
    resets = rng.random((steps, batch)) < 0.3
    out, finals = module.forward_states(x, initial, lengths, resets)
    dout = rng.normal(size=out.shape) * (np.arange(steps)[:, None] < lengths)[:, :, None]
    dfinal = (rng.normal(size=(4, batch, 4)), rng.normal(size=(4, batch, 6)))
    module.zero_grad()
    dx, dinitial = module.backward_states(dout, dfinal)
    want = torch_loop(module, x, initial, lengths, resets, dout, dfinal, module.last_masks)
    assert_matches((out, finals, dx, dinitial), want, module)


def test_bad_projections_say_what_was_expected():
    with pytest.raises(ValueError, match=r"proj_size: expected 0 \(none\) or a size in 1\.\.5 \(below hidden_size\), got 6"):
        LSTM(3, 6, proj_size=6)
    with pytest.raises(ValueError, match="layer_norm with proj_size"):
        LSTM(3, 6, proj_size=2, layer_norm=True)
    module = LSTM(3, 6, proj_size=2)
    with pytest.raises(ValueError, match=r"h0: expected shape \(1, 2, 2\) \(num_layers \* num_directions, B, proj_size\)"):
        module(np.zeros((4, 2, 3)), (np.zeros((1, 2, 6)), np.zeros((1, 2, 6))))


def test_float32_agrees_with_float64_and_onnx_refuses_the_projection():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5, 8))
    module32 = LSTM(8, 16, proj_size=6, bidirectional=True, seed=2)
    module64 = LSTM(8, 16, proj_size=6, bidirectional=True, seed=2, dtype=np.float64)
    out32, _ = module32(x, lengths=np.array([12, 5, 9, 12, 1]))
    out64, _ = module64(x, lengths=np.array([12, 5, 9, 12, 1]))
    # |h| <= sum_j |W_hr| over H = 16 products of float32 values below 1: far inside 1e-5
    np.testing.assert_allclose(out32, out64, rtol=0, atol=1e-5)
    pytest.importorskip("onnx")
    from rnnkit.interop.onnx import to_onnx

    with pytest.raises(ValueError, match="proj_size: ONNX's LSTM operator has no projection"):
        to_onnx(module32)
