"""rnnkit.nn.RNN's optimized path equals the straightforward one (float64, 1e-10), and its buffers
are safe to reuse: outputs handed to the caller are never overwritten by a later call.

The reference below is the layer as originally written: each direction through the reference
one-direction pair (``tests/functional/recurrent_reference.py``), outputs concatenated, dropout
between layers, gradients of the two directions summed into ``dx``.
"""

import numpy as np
import pytest

from rnnkit.functional.dropout import dropout_backward, dropout_forward
from rnnkit.nn import RNN
from tests.functional import recurrent_reference as reference

TOL = dict(rtol=1e-10, atol=1e-12)


def reference_rnn(rnn: RNN, x, h0, lengths, dout, dh_n, rng):
    """``out, h_n, dx, dh0, grads`` of ``rnn`` by the reference path; time-major, concat merge."""
    L, D, H = rnn.num_layers, rnn.num_directions, rnn.hidden_size
    layer_input, caches, h_n = x, [], []
    for layer in range(L):
        drop = None
        if layer > 0:
            layer_input, drop = dropout_forward(layer_input, rnn.dropout, rng, rnn.training)
        outputs, layer_caches = [], []
        for d, suffix in enumerate(rnn.parameter_suffixes(layer)):
            p = [rnn.params[f"{n}{suffix}"] for n in ("W_xh", "W_hh", "b_h")]
            states, direction_h_n, cache = reference.rnn_forward(layer_input, h0[layer * D + d], *p, rnn.nonlinearity,
                                                                 lengths, d == 1)
            outputs.append(states)
            layer_caches.append(cache)
            h_n.append(direction_h_n)
        caches.append((drop, layer_caches))
        layer_input = np.concatenate(outputs, axis=-1)
    grads, dh0, grad = {}, np.zeros_like(h0), dout
    for layer in range(L - 1, -1, -1):
        drop, layer_caches = caches[layer]
        dx = 0.0
        for d, suffix in enumerate(rnn.parameter_suffixes(layer)):
            g = reference.rnn_backward(grad[..., d * H : (d + 1) * H], dh_n[layer * D + d], layer_caches[d])
            dx = dx + g[0]
            dh0[layer * D + d] = g[1]
            grads |= {f"W_xh{suffix}": g[2], f"W_hh{suffix}": g[3], f"b_h{suffix}": g[4]}
        grad = dropout_backward(dx, drop)
    return layer_input, np.stack(h_n), grad, dh0, grads


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("lengths", ["none", "mixed"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_module_equals_reference_path(nonlinearity, num_layers, bidirectional, lengths, batch_first):
    rnn = RNN(3, 5, num_layers, nonlinearity, bidirectional, dropout=0.25 if num_layers > 1 else 0.0,
              batch_first=batch_first, dtype=np.float64, seed=num_layers)
    D, T, B = rnn.num_directions, 6, 4
    rng = np.random.default_rng(10 * num_layers + bidirectional)
    x = rng.normal(size=(T, B, 3))
    h0 = rng.normal(size=(num_layers * D, B, 5)) * 0.5
    lengths = None if lengths == "none" else np.array([6, 2, 5, 1])
    dout = rng.normal(size=(T, B, D * 5))
    dh_n = rng.normal(size=h0.shape)

    rnn.rng = np.random.default_rng(99)
    to_module = (lambda a: a.transpose(1, 0, 2).copy()) if batch_first else (lambda a: a)
    out, h_n = rnn.forward(to_module(x), h0, lengths)
    dx, dh0 = rnn.backward(to_module(dout), dh_n)
    e_out, e_h_n, e_dx, e_dh0, e_grads = reference_rnn(rnn, x, h0, lengths, dout, dh_n, np.random.default_rng(99))
    np.testing.assert_allclose(out, to_module(e_out), **TOL)
    np.testing.assert_allclose(h_n, e_h_n, **TOL)
    np.testing.assert_allclose(dx, to_module(e_dx), **TOL)
    np.testing.assert_allclose(dh0, e_dh0, **TOL)
    for name, expected in e_grads.items():
        np.testing.assert_allclose(rnn.grads[name], expected, err_msg=name, **TOL)


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave"])
def test_merge_modes_equal_reference_path(merge_mode):
    rnn = RNN(3, 4, 2, bidirectional=True, merge_mode=merge_mode, dtype=np.float64, seed=3)
    rng = np.random.default_rng(4)
    x, h0 = rng.normal(size=(5, 3, 3)), rng.normal(size=(4, 3, 4))
    lengths, dmerged, dh_n = np.array([5, 3, 1]), rng.normal(size=(5, 3, 4)), rng.normal(size=(4, 3, 4))
    out, _ = rnn.forward(x, h0, lengths)
    dx, dh0 = rnn.backward(dmerged, dh_n)

    concat, _, _, _, _ = reference_rnn(rnn, x, h0, lengths, np.zeros((5, 3, 8)), dh_n, None)
    f, r = concat[..., :4], concat[..., 4:]
    merged = {"sum": f + r, "mul": f * r, "ave": 0.5 * (f + r)}[merge_mode]
    dconcat = {"sum": np.concatenate([dmerged, dmerged], -1), "ave": np.concatenate([dmerged, dmerged], -1) / 2,
               "mul": np.concatenate([dmerged * r, dmerged * f], -1)}[merge_mode]
    _, _, e_dx, e_dh0, e_grads = reference_rnn(rnn, x, h0, lengths, dconcat, dh_n, None)
    np.testing.assert_allclose(out, merged, **TOL)
    np.testing.assert_allclose(dx, e_dx, **TOL)
    np.testing.assert_allclose(dh0, e_dh0, **TOL)
    for name, expected in e_grads.items():
        np.testing.assert_allclose(rnn.grads[name], expected, err_msg=name, **TOL)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_a_second_forward_leaves_the_first_outputs_alone(bidirectional, num_layers):
    rnn = RNN(3, 4, num_layers, bidirectional=bidirectional, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 3))
    out1, h_n1 = rnn.forward(x1)
    kept = out1.copy(), h_n1.copy()
    rnn.forward(x2)
    np.testing.assert_array_equal(out1, kept[0])
    np.testing.assert_array_equal(h_n1, kept[1])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_backward_after_a_second_forward_uses_the_second(bidirectional):
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 3))
    dout = rng.normal(size=(5, 2, 8 if bidirectional else 4))
    first, fresh = (RNN(3, 4, 2, bidirectional=bidirectional, dtype=np.float64, seed=0) for _ in range(2))
    first.forward(x1)
    first.forward(x2)
    dx, dh0 = first.backward(dout)
    fresh.forward(x2)
    e_dx, e_dh0 = fresh.backward(dout)
    np.testing.assert_array_equal(dx, e_dx)
    np.testing.assert_array_equal(dh0, e_dh0)
    for name in fresh.grads:
        np.testing.assert_array_equal(first.grads[name], fresh.grads[name])


def test_backward_leaves_the_callers_arrays_alone():
    rnn = RNN(3, 4, 2, bidirectional=True, dtype=np.float64, seed=0)
    rng = np.random.default_rng(3)
    x, h0 = rng.normal(size=(5, 2, 3)), rng.normal(size=(4, 2, 4))
    dout, dh_n = rng.normal(size=(5, 2, 8)), rng.normal(size=(4, 2, 4))
    copies = [a.copy() for a in (x, h0, dout, dh_n)]
    out, _ = rnn.forward(x, h0, np.array([5, 3]))
    out_copy = out.copy()
    dx, _ = rnn.backward(dout, dh_n)
    for original, copy in zip((x, h0, dout, dh_n), copies):
        np.testing.assert_array_equal(original, copy)
    np.testing.assert_array_equal(out, out_copy)  # the output is not reused as a work buffer
