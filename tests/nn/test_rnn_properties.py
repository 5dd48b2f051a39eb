"""Property-based checks: for random shapes, lengths and configurations, rnnkit's RNN equals
PyTorch on packed sequences (tanh, relu) or the per-sequence loop (sigmoid)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.nn import RNN
from tests.nn.rnn_reference import loop_reference_forward, torch_packed_reference


@st.composite
def configurations(draw):
    steps = draw(st.integers(1, 8))
    batch = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    lengths[draw(st.integers(0, batch - 1))] = steps  # padded to the longest, as batching does
    return dict(
        steps=steps,
        lengths=np.array(lengths),
        input_size=draw(st.integers(1, 5)),
        hidden_size=draw(st.integers(1, 6)),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        nonlinearity=draw(st.sampled_from(["tanh", "relu", "sigmoid"])),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_rnn_equals_references(config):
    rnn = RNN(
        config["input_size"], config["hidden_size"], config["num_layers"], config["nonlinearity"],
        config["bidirectional"], dtype=np.float64, seed=config["seed"],
    )
    rng = np.random.default_rng(config["seed"])
    lengths = config["lengths"]
    x = rng.normal(size=(config["steps"], lengths.size, rnn.input_size))
    h0 = rng.normal(size=(rnn.num_layers * rnn.num_directions, lengths.size, rnn.hidden_size))
    dout = rng.normal(size=(config["steps"], lengths.size, rnn.output_size))
    dh_n = rng.normal(size=h0.shape)
    out, h_n = rnn.forward(x, h0, lengths)
    dx, dh0 = rnn.backward(dout, dh_n)

    mask = np.arange(config["steps"])[:, None] >= lengths[None, :]
    assert np.all(out[mask] == 0) and np.all(dx[mask] == 0)
    if rnn.nonlinearity == "sigmoid":
        expected_out, expected_h_n = loop_reference_forward(rnn, x, h0, lengths)
        np.testing.assert_allclose(out, expected_out, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(h_n, expected_h_n, rtol=1e-11, atol=1e-13)
        return
    pytest.importorskip("torch")
    t_out, t_h_n, t_dx, t_dh0, t_grads = torch_packed_reference(rnn, x, h0, lengths, dout, dh_n)
    for got, expected in ((out, t_out), (h_n, t_h_n), (dx, t_dx), (dh0, t_dh0)):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)
    for name, expected in t_grads.items():
        np.testing.assert_allclose(rnn.grads[name], expected, rtol=1e-9, atol=1e-10, err_msg=name)
