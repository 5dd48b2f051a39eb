"""The minimal cells (minGRU, minLSTM; Feng et al. 2024): equal to a PyTorch reference built from
torch ops with autograd over random configurations (float64, 1e-10), to central differences, and
their two scans (sequential, log space) equal to each other, to T = 4096 from any initial state."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.functional.linear_scan import linear_scan, log_linear_scan, positive_derivative, positive_forward
from rnnkit.nn import MinGRU, MinLSTM, recurrent
from tests.nn.torch_loop import torch_loop

MODULES = {"mingru": MinGRU, "minlstm": MinLSTM}
TOL = dict(rtol=1e-10, atol=1e-10)


def _configuration(seed):
    rng = np.random.default_rng(seed)
    return dict(cell=["mingru", "minlstm"][seed % 2], num_layers=int(rng.integers(1, 4)),
                bidirectional=bool(rng.integers(2)), scan=["sequential", "parallel"][(seed // 2) % 2],
                learn_h0=bool(rng.integers(2)), batch_first=bool(rng.integers(2)),
                padded=bool(rng.integers(2)), initial=bool(rng.integers(2)), resets=bool(rng.integers(2)))


@pytest.mark.parametrize("seed", range(16))
def test_equal_a_torch_reference_on_random_configurations(seed):
    pytest.importorskip("torch")
    config = _configuration(seed)
    rng = np.random.default_rng(100 + seed)
    module = MODULES[config["cell"]](3, 5, num_layers=config["num_layers"], bidirectional=config["bidirectional"],
                                     dtype=np.float64, seed=seed, learn_h0=config["learn_h0"], scan=config["scan"],
                                     batch_first=config["batch_first"])
    if config["learn_h0"]:
        module.params["h0"][...] = rng.normal(0, 0.5, module.params["h0"].shape)
    steps, batch = 9, 4
    x = rng.normal(size=(steps, batch, 3)) * 2.0  # candidates on both sides of g's kink at 0
    lengths = np.array([9, 4, 7, 1]) if config["padded"] else np.full(batch, steps)
    resets = (rng.random((steps, batch)) < 0.2) if config["resets"] else np.zeros((steps, batch), bool)
    shape = (config["num_layers"] * module.num_directions, batch, 5)
    initial = (rng.normal(0, 0.5, shape),) if config["initial"] else None
    given = (lambda a: a.transpose(1, 0, *range(2, a.ndim))) if config["batch_first"] else (lambda a: a)
    out, finals = module.forward_states(given(x), initial, lengths if config["padded"] else None, given(resets))
    out = given(out)
    dout = rng.normal(size=out.shape) * (np.arange(steps)[:, None] < lengths)[:, :, None]
    dfinal = (rng.normal(size=shape),)
    module.zero_grad()
    dx, dinitial = module.backward_states(given(dout), dfinal)
    start = initial if initial is not None else (np.zeros(shape),)
    if config["learn_h0"] and initial is None:  # the learned state starts every sequence: pass it as given
        start = (np.broadcast_to(module.params["h0"][:, None], shape).copy(),)
    want_out, want_finals, want_dx, want_dinitial, want_grads = torch_loop(module, x, start, lengths, resets, dout,
                                                                           dfinal)
    np.testing.assert_allclose(out, want_out, **TOL)
    np.testing.assert_allclose(finals[0], want_finals[0], **TOL)
    np.testing.assert_allclose(given(dx), want_dx, **TOL)
    if config["learn_h0"] and initial is None:
        want_grads["h0"] = want_grads["h0"] + want_dinitial[0].sum(axis=1)
    else:
        np.testing.assert_allclose(dinitial[0], want_dinitial[0], **TOL)
    assert set(want_grads) == set(module.grads)
    for name, want in want_grads.items():
        np.testing.assert_allclose(module.grads[name], want, err_msg=name, **TOL)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("scan", ["sequential", "parallel"])
def test_gradients_equal_central_differences(cell, scan):
    module = MODULES[cell](2, 3, num_layers=2, bidirectional=True, dtype=np.float64, seed=1, scan=scan)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 2, 2))
    lengths = np.array([6, 3])
    weights = rng.normal(size=(6, 2, 6))

    def loss():
        out, _ = module(x, lengths=lengths)
        return float((out * weights).sum())

    out, _ = module(x, lengths=lengths)
    module.zero_grad()
    dx, _ = module.backward(weights)
    for name, param in module.params.items():
        flat = param.reshape(-1)
        for k in range(0, flat.size, max(1, flat.size // 5)):
            saved = flat[k]
            flat[k] = saved + 1e-6
            up = loss()
            flat[k] = saved - 1e-6
            down = loss()
            flat[k] = saved
            assert module.grads[name].reshape(-1)[k] == pytest.approx((up - down) / 2e-6, rel=1e-6, abs=1e-8), name
    for index in [(0, 0, 0), (2, 1, 1), (5, 0, 1)]:
        saved = x[index]
        x[index] = saved + 1e-6
        up = loss()
        x[index] = saved - 1e-6
        down = loss()
        x[index] = saved
        assert dx[index] == pytest.approx((up - down) / 2e-6, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("h0_sign", [1.0, -1.0, 0.0])
def test_the_two_scans_agree_over_4096_steps_from_any_initial_state(cell, h0_sign):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4096, 3, 4)) * 3.0  # gates that round to 0 and 1 in places
    h0 = h0_sign * (np.abs(rng.normal(size=(1, 3, 8))) + 0.5)
    outs = []
    for scan in ("sequential", "parallel"):
        module = MODULES[cell](4, 8, dtype=np.float64, seed=4, scan=scan)
        with np.errstate(over="raise", invalid="raise"):
            out, h_n = module(x, h0)
        assert np.isfinite(out).all()
        outs.append((out, h_n))
    np.testing.assert_allclose(outs[0][0], outs[1][0], **TOL)
    np.testing.assert_allclose(outs[0][1], outs[1][1], **TOL)


def test_log_space_scan_equals_the_sequential_one_on_raw_sequences():
    rng = np.random.default_rng(5)
    a = rng.uniform(0.01, 0.999, size=(1000, 2, 3))
    b = rng.uniform(0.01, 3.0, size=(1000, 2, 3))
    h0 = rng.normal(size=(2, 3))
    sequential, parallel = np.empty_like(a), np.empty_like(a)
    linear_scan(a, b, h0, sequential)
    log_linear_scan(np.log(a), np.log(b), h0, parallel, chunk=97)
    np.testing.assert_allclose(parallel, sequential, **TOL)


def test_candidate_function_is_continuous_and_its_derivative_matches():
    x = np.array([-8.0, -2.0, -1e-9, 0.0, 1e-9, 2.0])
    y = positive_forward(x)
    assert (y > 0).all() and y[3] == 0.5 and abs(y[2] - 0.5) < 1e-9
    numeric = (positive_forward(x + 1e-7) - positive_forward(x - 1e-7)) / 2e-7
    np.testing.assert_allclose(positive_derivative(y)[[0, 1, 5]], numeric[[0, 1, 5]], rtol=1e-6)


def test_no_recurrent_weight_no_torch_or_onnx_twin():
    module = recurrent("mingru", 3, 4, num_layers=2)
    assert isinstance(module, MinGRU) and not any(name.startswith("W_hh") for name in module.params)
    assert recurrent("minlstm", 3, 4).params["W_xh_l0"].shape == (12, 3)
    with pytest.raises(ValueError, match="scan: expected one of sequential, parallel"):
        MinGRU(3, 4, scan="fast")
    pytest.importorskip("onnx")
    from rnnkit.interop.onnx import to_onnx

    with pytest.raises(TypeError, match="MinGRU layer has no ONNX operator"):
        to_onnx(module)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_compiled_loops_equal_the_numpy_passes(cell, dtype, bidirectional, monkeypatch):
    """minimal.c's fused passes against the NumPy passes, with padding, resets and BPTT blocks of a
    few steps; float32 within its rounding (a few ulps per step, on values of order 1)."""
    from rnnkit import _native
    from rnnkit.functional import recurrent as layer

    if not _native.available():
        pytest.skip(f"compiled loops not loaded: {_native.why_not()}")
    gate_count = 2 if cell == "mingru" else 3  # the compiled pass takes these arrays (else this test compares NumPy twice)
    assert _native.minimal_scan_forward(cell, np.zeros((3, 2, 5 * gate_count), dtype), np.zeros((3, 2, 5), dtype),
                                        None if cell == "mingru" else np.zeros((3, 2, 5), dtype),
                                        np.zeros((2, 5), dtype), np.zeros(5 * gate_count, dtype), None, 3)
    monkeypatch.setattr(layer, "_BLOCK_ROWS", 12)  # blocks of 3 steps at B = 4
    rng = np.random.default_rng(6)
    x = rng.normal(size=(11, 4, 3)).astype(dtype) * 2
    lengths, resets = np.array([11, 6, 9, 2]), rng.random((11, 4)) < 0.15
    results = []
    for compiled in (True, False):
        module = MODULES[cell](3, 5, num_layers=2, bidirectional=bidirectional, dtype=dtype, seed=7, learn_h0=True)
        module.params["h0"][...] = rng.normal(size=module.params["h0"].shape) if compiled else results[0][3]
        with (_native.disabled() if not compiled else np.errstate()):
            out, (h_n,) = module.forward_states(x, None, lengths, resets)
            dx, _ = module.backward_states(np.cos(out).astype(dtype), (np.sin(h_n).astype(dtype),))
        results.append((out, h_n, dx, module.params["h0"].copy(), {k: g.copy() for k, g in module.grads.items()}))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    (out, h_n, dx, _, grads), (out_r, h_n_r, dx_r, _, grads_r) = results
    np.testing.assert_allclose(out, out_r, **tol)
    np.testing.assert_allclose(h_n, h_n_r, **tol)
    np.testing.assert_allclose(dx, dx_r, **tol)
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_r[name], err_msg=name, **tol)
