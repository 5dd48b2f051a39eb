"""rnnkit.testing: the gradient check catches wrong backwards and names them, passes on every pair
in rnnkit.functional and on the recurrent modules; the PyTorch helpers; the README's example."""

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit.functional as F
import tests.gradcheck
from rnnkit import testing
from rnnkit.functional import attention, ctc, layer_norm, losses, merge, pooling, recurrent, stacking
from rnnkit.functional.elman import rnn_layer_backward, rnn_layer_forward
from rnnkit.nn import GRU, LSTM, RNN, Linear
from rnnkit.testing import GradcheckReport, gradcheck

T, B, I, H = 3, 2, 2, 3  # small: every entry costs two forward passes


def _tanh_forward(x, W):
    y = np.tanh(x @ W.T)
    return y, (x, W, y)


def _tanh_backward(dy, cache):
    x, W, y = cache
    da = dy * (1 - y**2)
    return da @ W, da.T @ x


def _tanh_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(4, 3)), rng.normal(size=(5, 3))


# -- the check catches what is wrong, and says where ------------------------------------------------
def test_a_tanh_backward_missing_a_factor_fails_and_is_reported():
    def missing_factor(dy, cache):  # (1 - y) instead of (1 - y) * (1 + y)
        x, W, y = cache
        da = dy * (1 - y)
        return da @ W, da.T @ x

    x, W = _tanh_inputs()
    right = gradcheck(_tanh_forward, x, W, backward=_tanh_backward)
    wrong = gradcheck(_tanh_forward, x, W, backward=missing_factor)
    assert right.ok and right.max_relative_error < 1e-8
    assert not wrong.ok and wrong.max_relative_error > 0.1
    assert {e.name for e in wrong.failures} == {"x", "W"}
    # the reported worst entry is the analytic value the wrong backward gave, against the truth
    worst = wrong.failures[0]
    dx, dW = missing_factor(*_upstream_and_cache(x, W, seed=0))
    analytic = {"x": dx, "W": dW}[worst.name]
    assert worst.analytic == pytest.approx(analytic[worst.index])
    truth = {"x": _tanh_backward(*_upstream_and_cache(x, W, seed=0))[0],
             "W": _tanh_backward(*_upstream_and_cache(x, W, seed=0))[1]}[worst.name]
    assert worst.numerical == pytest.approx(truth[worst.index], rel=1e-6)
    text = str(wrong)
    assert text.startswith("gradcheck FAILED: 2 of 2 gradients")
    row = next(line for line in text.splitlines()[2:] if line.split()[0] == worst.name)
    assert str(worst.index) in row and f"{worst.analytic:+.6e}" in row and f"{worst.numerical:+.6e}" in row
    assert str(right).startswith("gradcheck passed: 2 gradients")


def _upstream_and_cache(x, W, seed):
    """The upstream gradient gradcheck draws (N(0, 1) with ``seed``, one per output) and the cache."""
    y, cache = _tanh_forward(x, W)
    return np.random.default_rng(seed).normal(size=y.shape), cache


def test_only_the_wrong_gradient_fails():
    def wrong_dW(dy, cache):
        dx, dW = _tanh_backward(dy, cache)
        dW = dW.copy()
        dW[2, 1] += 1e-3  # one entry, slightly
        return dx, dW

    report = gradcheck(_tanh_forward, *_tanh_inputs(), backward=wrong_dW)
    assert [e.name for e in report.failures] == ["W"]
    assert report.errors["x"] < 1e-8
    assert report.failures[0].index == (2, 1)


def test_a_module_with_a_wrong_backward_fails_on_that_parameter_only():
    class Careless(Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["W"] *= 1.01
            return dx

    layer = Careless(3, 4, dtype=np.float64, seed=0)
    report = gradcheck(layer, np.random.default_rng(1).normal(size=(T, B, 3)))
    assert sorted(report.errors) == ["W", "b", "x"]
    assert [e.name for e in report.failures] == ["W"]
    assert report.errors["W"] == pytest.approx(0.01 / 1.01, rel=1e-3)


def test_nan_in_the_backward_fails():
    def nan_backward(dy, cache):
        dx, dW = _tanh_backward(dy, cache)
        dx[1, 1] = np.nan
        return dx, dW

    report = gradcheck(_tanh_forward, *_tanh_inputs(), backward=nan_backward)
    assert not report.ok and np.isnan(report.max_relative_error)
    assert report.failures[0].name == "x" and report.failures[0].index == (1, 1)


# -- every pair in rnnkit.functional ----------------------------------------------------------------
def _rng(seed=0):
    return np.random.default_rng(seed)


def _activation():
    rng = _rng()
    return [(f"{name}", F.activation_forward, (rng.normal(size=(T, B, H)), name),
             dict(backward=lambda dy, y, name=name: F.activation_backward(dy, y, name)))
            for name in F.ACTIVATIONS]


def _dot_scores():
    rng = _rng()
    forward = lambda q, k: (attention.dot_scores(q, k), (q, k))
    backward = lambda ds, cache: attention.dot_scores_backward(ds, *cache)
    inputs = (rng.normal(size=(T, B, H)), rng.normal(size=(4, B, H)))
    return [("dot", forward, inputs, dict(backward=backward))]


def _general_scores():
    rng = _rng()

    def forward(q, m, W):
        scores, keys = attention.general_scores(q, m, W)
        return scores, (q, m, W, keys)

    inputs = (rng.normal(size=(T, B, H)), rng.normal(size=(4, B, I)), rng.normal(size=(H, I)))
    backward = lambda ds, c: attention.general_scores_backward(ds, *c)
    return [("general", forward, inputs, dict(backward=backward))]


def _additive_scores():
    rng = _rng()

    def forward(q, m, W_q, W_m, v):
        scores, z = attention.additive_scores(q, m, W_q, W_m, v)
        return scores, (q, m, W_q, W_m, v, z)

    inputs = (rng.normal(size=(T, B, H)), rng.normal(size=(4, B, I)), rng.normal(size=(5, H)),
              rng.normal(size=(5, I)), rng.normal(size=5))
    backward = lambda ds, c: attention.additive_scores_backward(ds, *c)
    return [("additive", forward, inputs, dict(backward=backward))]


def _mask():
    return np.arange(4)[:, None] < np.array([4, 2])[None, :]  # (S, B)


def _masked_softmax():
    def forward(scores, mask):
        weights = attention.masked_softmax(scores, mask)
        return weights, weights

    inputs = (_rng().normal(size=(B, T, 4)), _mask())
    return [("masked", forward, inputs, dict(backward=attention.masked_softmax_backward))]


def _attend():
    rng = _rng()
    weights = rng.dirichlet(np.ones(4), size=(B, T))
    forward = lambda w, m: (attention.attend(w, m), (w, m))
    inputs = (weights, rng.normal(size=(4, B, I)))
    return [("attend", forward, inputs, dict(backward=lambda dc, c: attention.attend_backward(dc, *c)))]


def _attention():
    rng = _rng()
    params = {"dot": {}, "general": {"W": rng.normal(size=(H, H))},
              "additive": {"W_q": rng.normal(size=(5, H)), "W_m": rng.normal(size=(5, H)),
                           "v": rng.normal(size=5)}}
    return [(kind, attention.attention_forward,
             (kind, rng.normal(size=(T, B, H)), rng.normal(size=(4, B, H)), _mask(), params[kind]),
             dict(backward=attention.attention_backward, n_outputs=1)) for kind in attention.SCORES]


def _ctc_case():
    rng = _rng()
    logits = rng.normal(size=(5, B, 4))
    targets, input_lengths, target_lengths = np.array([[1, 2], [3, 3]]), np.array([5, 4]), np.array([2, 1])
    return logits, targets, input_lengths, target_lengths


def _ctc():
    return [("ctc", ctc.ctc_forward, _ctc_case(), dict(backward=ctc.ctc_backward))]


def _dropout():
    forward = lambda x: F.dropout_forward(x, 0.4, np.random.default_rng(5))  # the same mask every call
    return [("dropout", forward, (_rng().normal(size=(T, B, H)),), dict(backward=F.dropout_backward))]


def _layer_norm():
    def forward(a, gain, shift):
        normalized, inv_std = np.empty_like(a), np.empty(a.shape[:-1] + (1,))
        out = layer_norm.layer_norm_forward(a, gain, shift, normalized, inv_std, np.empty_like(a))
        return out, (normalized, inv_std, gain)

    def backward(dy, cache):
        normalized, inv_std, gain = cache
        dgain, dshift = np.zeros_like(gain), np.zeros_like(gain)
        da = layer_norm.layer_norm_backward(dy, normalized, inv_std, gain, dgain, dshift, np.empty_like(dy))
        return da, dgain, dshift

    rng = _rng()
    return [("rows of steps", forward, (rng.normal(size=(T, B, H)), rng.normal(size=H), rng.normal(size=H)),
             dict(backward=backward))]


def _rnn_arrays(rng, directions=None):
    shape = (B, H) if directions is None else (directions, B, H)
    return rng.normal(size=(T, B, I)), rng.normal(size=shape) * 0.5


def _rnn():
    rng = _rng()
    cases = []
    for nonlinearity, lengths, reverse in (("tanh", np.array([3, 2]), True), ("sigmoid", None, False)):
        x, h0 = _rnn_arrays(rng)
        weights = (rng.normal(size=(H, I)), rng.normal(size=(H, H)) * 0.5, rng.normal(size=H))
        cases.append((nonlinearity, F.rnn_forward, (x, h0, *weights, nonlinearity, lengths, reverse),
                      dict(backward=F.rnn_backward)))
    return cases


def _rnn_layer():
    rng = _rng()
    x, h0 = _rnn_arrays(rng, directions=2)
    W_xh = tuple(rng.normal(size=(H, I)) for _ in range(2))
    W_hh = tuple(rng.normal(size=(H, H)) * 0.5 for _ in range(2))
    b_h = tuple(rng.normal(size=H) for _ in range(2))
    inputs = (x, h0, W_xh, W_hh, b_h, "relu", np.array([3, 1]), (False, True))
    return [("bidirectional", rnn_layer_forward, inputs, dict(backward=rnn_layer_backward))]


def _rnn_step():
    rng = _rng()
    inputs = (rng.normal(size=(B, I)), rng.normal(size=(B, H)), rng.normal(size=(H, I)),
              rng.normal(size=(H, H)), rng.normal(size=H), "tanh")
    return [("step", F.rnn_step_forward, inputs, dict(backward=F.rnn_step_backward))]


def _embedding():
    ids = np.array([[0, 3], [3, 1], [2, 3]])
    return [("embedding", F.embedding_forward, (ids, _rng().normal(size=(4, H))),
             dict(backward=lambda dy, cached_ids: F.embedding_backward(dy, cached_ids, 4)))]


def _gated(gates, bias_count):
    rng = _rng()
    x, h0 = _rnn_arrays(rng)
    weights = (rng.normal(size=(gates * H, I)), rng.normal(size=(gates * H, H)) * 0.5,
               *(rng.normal(size=gates * H) for _ in range(bias_count)))
    return rng, x, h0, weights


def _gru():
    _, x, h0, weights = _gated(3, 2)
    return [("gru", F.gru_forward, (x, h0, *weights, np.array([3, 2]), True), dict(backward=F.gru_backward))]


def _gru_step():
    _, x, h0, weights = _gated(3, 2)
    return [("gru step", F.gru_step_forward, (x[0], h0, *weights), dict(backward=F.gru_step_backward))]


def _lstm():
    rng, x, h0, weights = _gated(4, 1)
    inputs = (x, h0, rng.normal(size=(B, H)), *weights, np.array([2, 3]), False)
    return [("lstm", F.lstm_forward, inputs, dict(backward=F.lstm_backward))]


def _lstm_step():
    rng, x, h0, weights = _gated(4, 1)
    inputs = (x[0], h0, rng.normal(size=(B, H)), *weights)
    return [("lstm step", F.lstm_step_forward, inputs, dict(backward=F.lstm_step_backward))]


def _linear():
    rng = _rng()
    x, W, b = rng.normal(size=(T, B, I)), rng.normal(size=(H, I)), rng.normal(size=H)
    backward = lambda dy, cached_x: F.linear_backward(dy, cached_x, W)
    return [("bias", F.linear_forward, (x, W, b), dict(backward=backward)),
            ("no bias", F.linear_forward, (x, W, None), dict(backward=backward))]


def _merge():
    rng = _rng()
    cases = []
    for mode in ("sum", "ave", "mul"):
        forward = lambda f, r, mode=mode: (merge.merge_forward(f, r, mode), (f, r))
        backward = lambda grad, c, mode=mode: merge.merge_backward(grad, *c, mode)
        cases.append((mode, forward, (rng.normal(size=(T, B, H)), rng.normal(size=(T, B, H))),
                      dict(backward=backward)))
    return cases


def _pool():
    rng = _rng()
    return [(mode, pooling.pool_forward, (rng.normal(size=(T, B, H)), np.array([3, 2]), mode),
             dict(backward=lambda d, c, mode=mode: pooling.pool_backward(d, c, T, mode)))
            for mode in ("mean", "max")]


def _attention_pool():
    rng = _rng()

    def forward(states, lengths, query):
        pooled, cache = pooling.attention_pool_forward(states, lengths, query)
        return pooled, (cache, query)  # the backward takes the query as an argument

    return [("padded", forward, (rng.normal(size=(T, B, H)), np.array([3, 2]), rng.normal(size=H)),
             dict(backward=lambda d, c: pooling.attention_pool_backward(d, *c)))]


def _recurrent_layer():
    rng = _rng()
    x, h0 = _rnn_arrays(rng, directions=2)
    c0 = rng.normal(size=h0.shape)
    lstm = (F.LSTM_CELL, x, (h0, c0), tuple(rng.normal(size=(4 * H, I)) for _ in range(2)),
            tuple(rng.normal(size=(4 * H, H)) * 0.5 for _ in range(2)),
            tuple((rng.normal(size=4 * H),) for _ in range(2)), np.array([3, 2]), (False, True))
    gru = (F.GRU_CELL, x, (h0[:1],), (rng.normal(size=(3 * H, I)),), (rng.normal(size=(3 * H, H)) * 0.5,),
           ((rng.normal(size=3 * H), rng.normal(size=3 * H)),), np.array([1, 3]), (True,))
    lstm_backward = lambda dout, dh, dc, cache: recurrent.recurrent_layer_backward(dout, (dh, dc), cache)
    gru_backward = lambda dout, dh, cache: recurrent.recurrent_layer_backward(dout, (dh,), cache)
    return [("lstm bidirectional", recurrent.recurrent_layer_forward, lstm, dict(backward=lstm_backward)),
            ("gru reverse", recurrent.recurrent_layer_forward, gru, dict(backward=gru_backward))]


def _zoneout():
    """The stepped scan of zoneout, through the layer (it needs a cell): the masks are fixed data."""
    rng = _rng()
    x, h0 = _rnn_arrays(rng, directions=2)
    c0 = rng.normal(size=h0.shape)
    keep = tuple((rng.random((2, T, B, H)) < 0.3).astype(float) for _ in range(2))
    dropped = tuple((rng.random((B, H)) < 0.7) / 0.7 for _ in range(2))

    def forward(x, initial, W_xh, W_hh, biases):
        return recurrent.recurrent_layer_forward(F.LSTM_CELL, x, initial, W_xh, W_hh, biases, np.array([3, 2]),
                                                 (False, True), recurrent_masks=dropped, zoneout=keep)

    lstm = (x, (h0, c0), tuple(rng.normal(size=(4 * H, I)) for _ in range(2)),
            tuple(rng.normal(size=(4 * H, H)) * 0.5 for _ in range(2)), tuple((rng.normal(size=4 * H),) for _ in range(2)))
    backward = lambda dout, dh, dc, cache: recurrent.recurrent_layer_backward(dout, (dh, dc), cache)
    return [("lstm bidirectional, recurrent dropout", forward, lstm, dict(backward=backward))]


def _stack_frames():
    inputs = (_rng().normal(size=(5, B, I)), np.array([5, 3]), 2)
    return [("k=2", stacking.stack_frames_forward, inputs, dict(backward=stacking.stack_frames_backward))]


def _value_and_grad(function, *rest):
    """A loss that returns ``(loss, dinput)`` as a pair: the gradient is its cache."""
    return lambda prediction: function(prediction, *rest), dict(backward=lambda dloss, grad: dloss * grad)


def _cross_entropy():
    rng = _rng()
    targets, lengths = rng.integers(0, 4, size=(T, B)), np.array([3, 2])
    cases = []
    for reduction in ("sum", "mean"):
        forward, options = _value_and_grad(losses.softmax_cross_entropy, targets, lengths, reduction)
        cases.append((reduction, forward, (rng.normal(size=(T, B, 4)),), options))
    return cases


def _mse():
    rng = _rng()
    forward, options = _value_and_grad(losses.mse, rng.normal(size=(T, B, H)), np.array([3, 1]), "mean")
    return [("mean", forward, (rng.normal(size=(T, B, H)),), options)]


def _ctc_loss():
    logits, *rest = _ctc_case()
    forward, options = _value_and_grad(ctc.ctc_loss, *rest)
    return [("mean", forward, (logits,), options)]


# Keyed by the backward function (pairs) or by the loss (functions returning the loss and its gradient).
PAIRS = {
    "activation_backward": _activation,
    "dot_scores_backward": _dot_scores,
    "general_scores_backward": _general_scores,
    "additive_scores_backward": _additive_scores,
    "masked_softmax_backward": _masked_softmax,
    "attend_backward": _attend,
    "attention_backward": _attention,
    "ctc_backward": _ctc,
    "dropout_backward": _dropout,
    "rnn_backward": _rnn,
    "rnn_layer_backward": _rnn_layer,
    "rnn_step_backward": _rnn_step,
    "embedding_backward": _embedding,
    "gru_backward": _gru,
    "gru_step_backward": _gru_step,
    "layer_norm_backward": _layer_norm,
    "linear_backward": _linear,
    "lstm_backward": _lstm,
    "lstm_step_backward": _lstm_step,
    "merge_backward": _merge,
    "pool_backward": _pool,
    "attention_pool_backward": _attention_pool,
    "recurrent_layer_backward": _recurrent_layer,
    "stack_frames_backward": _stack_frames,
    "zoneout_scan_backward": _zoneout,
}
LOSSES = {"softmax_cross_entropy": _cross_entropy, "mse": _mse, "ctc_loss": _ctc_loss}


def _functional_backwards() -> set[str]:
    """Every public ``*_backward`` defined in a module of rnnkit.functional."""
    found = set()
    for info in pkgutil.iter_modules(F.__path__):
        module = importlib.import_module(f"rnnkit.functional.{info.name}")
        for name, value in vars(module).items():
            if (name.endswith("_backward") and not name.startswith("_") and inspect.isfunction(value)
                    and value.__module__ == module.__name__):
                found.add(name)
    return found


def test_every_pair_in_functional_has_a_case():
    assert _functional_backwards() == set(PAIRS), "a new forward/backward pair needs a case in PAIRS"


@pytest.mark.parametrize("pair", sorted(PAIRS) + sorted(LOSSES))
def test_every_functional_pair_passes(pair):
    cases = {**PAIRS, **LOSSES}[pair]()
    for label, forward, inputs, options in cases:
        report = gradcheck(forward, *inputs, **options)
        assert report.ok, f"{pair} ({label}):\n{report}"
        assert report.entries and all(e.checked == int(np.prod(e.shape)) for e in report.entries)
        assert not report.skipped


def test_nested_inputs_are_named_by_their_path():
    _, forward, inputs, options = _recurrent_layer()[0]
    report = gradcheck(forward, *inputs, **options)
    assert list(report.errors) == ["x", "initial[0]", "initial[1]", "W_xh[0]", "W_xh[1]", "W_hh[0]",
                                   "W_hh[1]", "biases[0][0]", "biases[1][0]"]
    _, forward, inputs, options = _attention()[2]
    assert list(gradcheck(forward, *inputs, **options).errors) == ["query", "memory", "params['W_m']",
                                                                   "params['W_q']", "params['v']"]


# -- modules ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [RNN, LSTM, GRU])
def test_recurrent_modules_pass_with_two_bidirectional_layers_and_lengths(kind):
    module = kind(I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, B, I))
    states = tuple(rng.normal(size=(4, B, H)) * 0.5 for _ in module.cell.state_names)
    initial = states if kind is LSTM else states[0]
    report = gradcheck(module, x, initial, np.array([4, 2]))
    assert report.ok, str(report)
    inputs = ["x", "hx[0]", "hx[1]"] if kind is LSTM else ["x", "h0"]
    assert list(report.errors) == inputs + list(module.params)
    assert all(e.checked == int(np.prod(e.shape)) for e in report.entries)
    # afterwards the module's grads hold the analytic gradients of the check's loss
    assert all(np.any(module.grads[name]) for name in module.params)


def test_a_module_with_dropout_in_training_mode_is_refused():
    module = RNN(I, H, num_layers=2, dropout=0.5, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).normal(size=(T, B, I))
    with pytest.raises(ValueError, match=r"deterministic forward \(dropout in training mode\? call module"):
        gradcheck(module, x)
    assert gradcheck(module.eval(), x).ok


def test_a_backward_that_returns_none_leaves_that_input_unchecked():
    module = GRU(I, H, dtype=np.float64, seed=0)
    rng = np.random.default_rng(2)
    x, h0 = rng.normal(size=(T, B, I)), rng.normal(size=(1, B, H))
    report = gradcheck(module, x, h0, backward=lambda dout, dh_n: module.backward(dout, dh_n, h0_grad=False))
    assert report.ok and report.skipped == ["h0"] and "h0" not in report.errors
    assert "not checked (backward returned None): h0" in str(report)


# -- options, errors, no side effects ---------------------------------------------------------------
def test_a_random_subset_of_entries_is_seeded():
    x, W = np.random.default_rng(0).normal(size=(30, 3)), np.random.default_rng(1).normal(size=(5, 3))
    first = gradcheck(_tanh_forward, x, W, backward=_tanh_backward, max_entries=7, seed=3)
    again = gradcheck(_tanh_forward, x, W, backward=_tanh_backward, max_entries=7, seed=3)
    other = gradcheck(_tanh_forward, x, W, backward=_tanh_backward, max_entries=7, seed=4)
    assert first.ok and [e.checked for e in first.entries] == [7, 7]
    assert first.entries == again.entries and first.entries != other.entries
    assert "7/90" in str(first)
    everything = gradcheck(_tanh_forward, x, W, backward=_tanh_backward, max_entries=90)
    assert [e.checked for e in everything.entries] == [90, 15]

    def all_wrong(dy, cache):
        dx, dW = _tanh_backward(dy, cache)
        return 2 * dx, dW

    assert not gradcheck(_tanh_forward, x, W, backward=all_wrong, max_entries=3).ok


def test_float32_is_refused_with_a_clear_error():
    x, W = _tanh_inputs()
    with pytest.raises(TypeError, match=r"input 'W' is float32; gradient checks need float64"):
        gradcheck(_tanh_forward, x, W.astype(np.float32), backward=_tanh_backward)
    with pytest.raises(TypeError, match=r"parameter 'W_xh_l0' is float32; .* dtype=np.float64"):
        gradcheck(RNN(I, H), np.zeros((T, B, I)))
    _, forward, inputs, options = _recurrent_layer()[0]
    nested = list(inputs)
    nested[2] = (inputs[2][0], inputs[2][1].astype(np.float32))
    with pytest.raises(TypeError, match=r"input 'initial\[1\]' is float32"):
        gradcheck(forward, *nested, **options)
    with pytest.raises(TypeError, match=r"an output is float32"):
        gradcheck(lambda x: (x.astype(np.float32), None), x, backward=lambda dy, cache: dy)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x, W: gradcheck(_tanh_forward, x, W), TypeError,
         r"backward: a forward function needs its backward"),
        (lambda x, W: gradcheck(np.tanh(x), x), TypeError,
         r"fn: expected an rnnkit.nn.Module or a forward function"),
        (lambda x, W: gradcheck(lambda x: np.tanh(x), x, backward=lambda dy, c: dy), TypeError,
         r"forward: expected a tuple \(\*outputs, cache\), got ndarray"),
        (lambda x, W: gradcheck(_tanh_forward, x, W, backward=lambda dy, c: _tanh_backward(dy, c)[:1]),
         ValueError, r"backward: returned 1 gradients for 2 floating-point inputs \(x, W\)"),
        (lambda x, W: gradcheck(_tanh_forward, x, W, backward=lambda dy, c: (_tanh_backward(dy, c)[0], W.T)),
         ValueError, r"backward: the gradient of 'W' has shape \(3, 5\), expected \(5, 3\)"),
        (lambda x, W: gradcheck(_tanh_forward, x, W, backward=_tanh_backward, max_entries=0), ValueError,
         r"max_entries: expected an integer >= 1 or None, got 0"),
        (lambda x, W: gradcheck(_tanh_forward, x, W, backward=_tanh_backward, n_outputs=2), ValueError,
         r"n_outputs: the forward has 1 floating-point outputs, got 2"),
        (lambda x, W: gradcheck(lambda ids: ((ids * 1.0), None), np.arange(3), backward=lambda dy, c: dy),
         ValueError, r"nothing to check"),
    ],
)
def test_misuse_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(*_tanh_inputs())


def test_the_callers_arrays_and_the_modules_parameters_are_left_as_they_were():
    x, W = _tanh_inputs()
    before = x.copy(), W.copy()
    gradcheck(_tanh_forward, x, W, backward=_tanh_backward)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(W, before[1])
    module = LSTM(I, H, dtype=np.float64, seed=0)
    state = module.state_dict()
    gradcheck(module, np.random.default_rng(0).normal(size=(T, B, I)))
    for name, value in module.params.items():
        assert np.array_equal(value, state[name]), name


def test_str_lists_failures_first_and_says_how_many_more():
    entries = [testing.GradcheckEntry(f"p{k}", (2,), 2, 10.0 ** -(k + 4), (1,), 1.0, 1.0) for k in range(10)]
    entries.append(testing.GradcheckEntry("bad", (3, 2), 6, 0.5, (2, 1), 0.25, -0.75))
    text = str(GradcheckReport(entries, tol=1e-6, eps=1e-6))
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck FAILED: 4 of 11 gradients have a relative error >= 1e-06")
    assert lines[2].split() == ["bad", "(3,", "2)", "6/6", "5.0e-01", "(2,", "1)", "+2.500000e-01",
                                "-7.500000e-01"]
    assert [line.split()[0] for line in lines[3:6]] == ["p0", "p1", "p2"]
    assert lines[-1] == "  ... and 3 more, each below 1.0e-10"


def test_the_tests_helper_is_the_packages():
    assert tests.gradcheck.assert_gradient is testing.assert_gradient
    assert tests.gradcheck.numerical_gradient is testing.numerical_gradient
    x = np.random.default_rng(0).normal(size=(3, 2))
    loss = lambda: float(np.sum(np.sin(x)))
    testing.assert_gradient(loss, x, np.cos(x), "x")
    with pytest.raises(AssertionError, match=r"x: relative error .* >= 1e-06"):
        testing.assert_gradient(loss, x, np.cos(x) * 1.001, "x")


def test_importing_rnnkit_testing_does_not_import_torch():
    code = "import sys, rnnkit.testing; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- PyTorch ----------------------------------------------------------------------------------------
def test_assert_matches_torch_passes_and_catches_a_wrong_gradient():
    pytest.importorskip("torch")
    module = GRU(I, H, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(B, 4, I))  # batch first
    testing.assert_matches_torch(module, x, lengths=np.array([4, 2]))
    lstm = LSTM(I, H, dtype=np.float64, seed=0)
    original = lstm.backward_states

    def broken(*args, **kwargs):
        result = original(*args, **kwargs)
        lstm.grads["W_hh_l0"][0, 0] += 1e-6
        return result

    lstm.backward_states = broken
    with pytest.raises(AssertionError, match="W_hh_l0"):
        testing.assert_matches_torch(lstm, x.transpose(1, 0, 2))


def test_torch_reference_equals_the_module():
    pytest.importorskip("torch")
    rnn = RNN(I, H, num_layers=2, nonlinearity="relu", dtype=np.float64, seed=1)
    rng = np.random.default_rng(3)
    x, dout, lengths = rng.normal(size=(4, B, I)), rng.normal(size=(4, B, H)), np.array([2, 4])
    out, h_n = rnn.forward(x, lengths=lengths)
    dx, dh0 = rnn.backward(dout)
    reference = testing.torch_reference(rnn, x, lengths=lengths, dout=dout)
    np.testing.assert_allclose(reference.out, out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reference.finals[0], h_n, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reference.dx, dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reference.dinitial[0], dh0, rtol=1e-10, atol=1e-12)
    for name, grad in reference.grads.items():
        np.testing.assert_allclose(grad, rnn.grads[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_torch_gradients_is_autograd_on_numpy_arrays():
    torch = pytest.importorskip("torch")
    x, W = _tanh_inputs()
    upstream, cache = _upstream_and_cache(x, W, seed=1)
    (y,), (dx, dW) = testing.torch_gradients(lambda x, W: torch.tanh(x @ W.T), x, W, upstream=upstream)
    np.testing.assert_allclose(y, np.tanh(x @ W.T), rtol=1e-12)
    for got, want in zip((dx, dW), _tanh_backward(upstream, cache)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    ids = np.array([2, 0])
    (rows,), (dW,) = testing.torch_gradients(lambda W, ids: W[ids], W, ids, upstream=np.ones((2, 3)))
    np.testing.assert_array_equal(dW, np.array([[1.0] * 3, [0] * 3, [1] * 3, [0] * 3, [0] * 3]))


# -- the README's example ---------------------------------------------------------------------------
def test_the_readme_example_runs():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Proving your own cell"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 20
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["report"].ok
