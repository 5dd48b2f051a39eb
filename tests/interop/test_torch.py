import subprocess
import sys

import numpy as np
import pytest

from rnnkit.nn import GRU, RNN, Linear

torch = pytest.importorskip("torch")
from rnnkit.interop.torch import from_torch, to_torch  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_keeps_dtype_and_function(dtype, bias):
    torch.manual_seed(0)
    torch_rnn = torch.nn.RNN(3, 5, num_layers=2, nonlinearity="relu", bidirectional=True, bias=bias, batch_first=True,
                             dtype=dtype)
    rnn = from_torch(torch_rnn)
    assert rnn.dtype == (np.float64 if dtype == torch.float64 else np.float32)
    assert (rnn.num_layers, rnn.bidirectional, rnn.nonlinearity, rnn.batch_first) == (2, True, "relu", True)
    x = torch.randn(4, 6, 3, dtype=dtype)
    expected_out, expected_h = torch_rnn(x)
    out, h_n = rnn.forward(x.numpy())
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(out, expected_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(h_n, expected_h.detach().numpy(), rtol=tol, atol=tol)
    reverse_bias = (torch_rnn.bias_ih_l1_reverse + torch_rnn.bias_hh_l1_reverse).detach().numpy() if bias else 0.0
    np.testing.assert_allclose(rnn.params["b_h_l1_reverse"], reverse_bias, rtol=1e-6)


def test_to_torch_round_trip_and_bias_split():
    rnn = RNN(2, 3, num_layers=3, dtype=np.float64, seed=0)
    torch_rnn = to_torch(rnn)
    assert torch_rnn.weight_hh_l2.dtype == torch.float64
    np.testing.assert_array_equal(torch_rnn.bias_ih_l1.detach().numpy(), rnn.params["b_h_l1"])
    np.testing.assert_array_equal(torch_rnn.bias_hh_l1.detach().numpy(), 0.0)
    back = from_torch(torch_rnn)
    for name, value in rnn.params.items():
        np.testing.assert_array_equal(back.params[name], value)


def test_to_torch_rejects_what_torch_lacks():
    with pytest.raises(ValueError, match=r"rnn.nonlinearity: torch.nn.RNN supports only tanh, relu, got 'sigmoid'"):
        to_torch(RNN(2, 3, nonlinearity="sigmoid"))
    with pytest.raises(ValueError, match=r"merge_mode"):
        to_torch(RNN(2, 3, bidirectional=True, merge_mode="sum"))
    with pytest.raises(TypeError, match=r"torch_rnn: expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got Linear"):
        from_torch(torch.nn.Linear(2, 3))
    with pytest.raises(ValueError, match=r"rnn.learn_h0: torch.nn.GRU has no learned initial state"):
        to_torch(GRU(2, 3, learn_h0=True))
    with pytest.raises(TypeError, match=r"rnn: expected an rnnkit.nn.RNN, LSTM or GRU, got Linear"):
        to_torch(Linear(2, 3))


def test_importing_rnnkit_does_not_import_torch():
    code = "import sys, rnnkit, rnnkit.nn, rnnkit.functional, rnnkit.interop; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_gated_round_trip_keeps_the_function(kind, dtype, bias):
    torch.manual_seed(0)
    torch_module = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True, bias=bias, batch_first=True,
                                           dtype=dtype)
    module = from_torch(torch_module)
    assert type(module).__name__ == kind
    assert module.dtype == (np.float64 if dtype == torch.float64 else np.float32)
    x = np.random.default_rng(1).normal(size=(2, 5, 3))
    tx = torch.tensor(x, dtype=dtype)
    expected = torch_module(tx)[0].detach().numpy()
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(module(x)[0], expected, atol=tolerance)
    back = to_torch(module)
    assert type(back) is type(torch_module)
    np.testing.assert_allclose(back(tx)[0].detach().numpy(), expected, atol=tolerance)
