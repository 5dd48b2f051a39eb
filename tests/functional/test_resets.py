"""Resets (a sequence starting again mid-batch) in the generic recurrent layer: a batch with resets
equals its segments run one by one, and a PyTorch loop that resets the state by hand, forward and
every gradient, for every cell, one or both directions, with and without padding (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.functional import get_cell
from rnnkit.functional.recurrent import recurrent_layer_backward, recurrent_layer_forward, scan_order_resets

CELLS = ["rnn", "lstm", "gru"]
TOL = dict(rtol=1e-10, atol=1e-10)


def _problem(cell_name, directions, lengths, seed=0, steps=9, batch=4, inputs=3, hidden=5, recurrent_scale=0.5):
    rng = np.random.default_rng(seed)
    cell = get_cell(cell_name)
    width = cell.gates * hidden
    params = {
        "W_xh": tuple(rng.normal(0, 0.5, (width, inputs)) for _ in range(directions)),
        "W_hh": tuple(rng.normal(0, recurrent_scale, (width, hidden)) for _ in range(directions)),
        "biases": tuple(tuple(rng.normal(0, 0.3, width) for _ in cell.bias_names) for _ in range(directions)),
    }
    x = rng.normal(size=(steps, batch, inputs))
    initial = tuple(rng.normal(0, 0.5, (directions, batch, hidden)) for _ in cell.state_names)
    reset_states = tuple(rng.normal(0, 0.5, (directions, batch, hidden)) for _ in cell.state_names)
    resets = rng.random((steps, batch)) < 0.25
    resets[0, 0] = True  # a reset at step 0 replaces the initial state
    resets[3, :] = True  # a step where every sequence starts again
    dout = rng.normal(size=(steps, batch, directions * hidden))
    dfinal = tuple(rng.normal(size=(directions, batch, hidden)) for _ in cell.state_names)
    if lengths is not None:
        lengths = np.array(lengths)
        dout *= (np.arange(steps)[:, None] < lengths[None, :])[:, :, None]
    return cell, params, x, initial, reset_states, resets, dout, dfinal, lengths


def _with_resets(cell, params, x, initial, reset_states, resets, dout, dfinal, lengths, reverse):
    out, final, cache = recurrent_layer_forward(cell, x, initial, params["W_xh"], params["W_hh"], params["biases"],
                                                lengths, reverse, resets=resets, reset_states=reset_states)
    reset_grads = tuple(np.zeros_like(state) for state in reset_states)
    dx, dinitial, grads = recurrent_layer_backward(dout, dfinal, cache, reset_grads=reset_grads)
    return out, final, dx, dinitial, grads, reset_grads


def _one_by_one(cell, params, x, initial, reset_states, resets, dout, dfinal, lengths, reverse):
    """Every segment of every sequence, each direction on its own, through the layer without resets."""
    steps, batch, _ = x.shape
    directions = len(reverse)
    hidden = params["W_hh"][0].shape[1]
    out = np.zeros((steps, batch, directions * hidden))
    final = tuple(np.zeros_like(state) for state in initial)
    dx = np.zeros_like(x)
    dinitial = tuple(np.zeros_like(state) for state in initial)
    reset_grads = tuple(np.zeros_like(state) for state in initial)
    grads = [[np.zeros_like(w) for w in params["W_xh"]], [np.zeros_like(w) for w in params["W_hh"]]]
    grads += [[np.zeros_like(b[k]) for b in params["biases"]] for k in range(len(cell.bias_names))]
    for b in range(batch):
        length = steps if lengths is None else int(lengths[b])
        starts = [0] + [t for t in range(1, length) if resets[t, b]]
        pieces = list(zip(starts, starts[1:] + [length]))
        for d in range(directions):
            columns = slice(d * hidden, (d + 1) * hidden)
            for k, (lo, hi) in enumerate(pieces):
                # forward: the first segment starts from the initial state unless reset at step 0;
                # reverse: the last segment (read first) starts from the initial state
                from_initial = (k == 0 and not resets[0, b]) if not reverse[d] else k == len(pieces) - 1
                source = initial if from_initial else reset_states
                start = tuple(state[d : d + 1, b : b + 1] for state in source)
                seg_out, seg_final, cache = recurrent_layer_forward(
                    cell, x[lo:hi, b : b + 1], start, params["W_xh"][d : d + 1], params["W_hh"][d : d + 1],
                    params["biases"][d : d + 1], None, (reverse[d],))
                out[lo:hi, b, columns] = seg_out[:, 0]
                holds_final = k == len(pieces) - 1 if not reverse[d] else k == 0
                seg_dfinal = tuple(g[d : d + 1, b : b + 1] if holds_final else None for g in dfinal)
                if holds_final:
                    for array, value in zip(final, seg_final):
                        array[d, b] = value[0, 0]
                seg_dx, seg_dinitial, seg_grads = recurrent_layer_backward(dout[lo:hi, b : b + 1, columns],
                                                                           seg_dfinal, cache)
                dx[lo:hi, b] += seg_dx[:, 0]
                for array, value in zip(dinitial if from_initial else reset_grads, seg_dinitial):
                    array[d, b] += value[0, 0]
                for into, value in zip(grads, seg_grads):
                    into[d] += value[0]
    return out, final, dx, dinitial, grads, reset_grads


def _assert_same(got, want):
    out, final, dx, dinitial, grads, reset_grads = got
    out_r, final_r, dx_r, dinitial_r, grads_r, reset_grads_r = want
    np.testing.assert_allclose(out, out_r, **TOL)
    for a, b in zip(final, final_r):
        np.testing.assert_allclose(a, b, **TOL)
    np.testing.assert_allclose(dx, dx_r, **TOL)
    for a, b in zip(dinitial, dinitial_r):
        np.testing.assert_allclose(a, b, **TOL)
    for a, b in zip(reset_grads, reset_grads_r):
        np.testing.assert_allclose(a, b, **TOL)
    for group, group_r in zip(grads, grads_r):
        for a, b in zip(group, group_r):
            np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("cell_name", CELLS)
@pytest.mark.parametrize("reverse", [(False,), (True,), (False, True)])
@pytest.mark.parametrize("lengths", [None, [9, 4, 7, 1]])
def test_batch_with_resets_equals_its_segments_one_by_one(cell_name, reverse, lengths):
    problem = _problem(cell_name, len(reverse), lengths, seed=len(reverse) + 3 * CELLS.index(cell_name))
    _assert_same(_with_resets(*problem, reverse), _one_by_one(*problem, reverse))


def test_scan_order_of_resets_in_reverse_reads_each_segment_from_its_end():
    resets = np.zeros((4, 2), bool)
    resets[2, :] = True
    forward = scan_order_resets(resets, False, np.array([4, 2]))
    assert forward[:, 0].tolist() == [False, False, True, False]
    assert not forward[:, 1].any()  # step 2 is padding for a sequence of 2 steps
    backward = scan_order_resets(resets, True, np.array([4, 2]))
    # reads steps 3, 2 | starts again | 1, 0
    assert backward[:, 0].tolist() == [False, False, True, False]
    assert not backward[:, 1].any()


@pytest.mark.parametrize("cell_name", CELLS)
@pytest.mark.parametrize("block_rows", [4, 8, 12])
def test_backward_blocks_cut_across_segments_and_numpy_loops_agree(cell_name, block_rows, monkeypatch):
    """Blocks of BPTT (here 1 to 3 steps) that start, end or cut through segments, with the compiled
    loops and with the NumPy ones."""
    from rnnkit import _native
    from rnnkit.functional import recurrent

    problem = _problem(cell_name, 2, [9, 4, 7, 1], seed=11)
    want = _one_by_one(*problem, (False, True))
    monkeypatch.setattr(recurrent, "_BLOCK_ROWS", block_rows)
    _assert_same(_with_resets(*problem, (False, True)), want)
    with _native.disabled():
        _assert_same(_with_resets(*problem, (False, True)), want)


@pytest.mark.parametrize("cell_name", CELLS)
def test_float32_with_resets_follows_float64(cell_name):
    """The compiled float32 loops over segments (threads and packed products where they apply):
    within float32 rounding of the float64 result. The recurrent weights are contracting (spectral
    radius about 0.5), so rounding errors do not grow along the 40 steps: each step adds a few
    ulps (6e-8 relative) times H = 32 terms, far below the bounds."""
    cell, params, x, initial, reset_states, resets, dout, dfinal, lengths = _problem(
        cell_name, 2, None, seed=5, steps=40, batch=16, inputs=8, hidden=32, recurrent_scale=0.5 / np.sqrt(32))
    want = _with_resets(cell, params, x, initial, reset_states, resets, dout, dfinal, lengths, (False, True))
    as32 = lambda tree: tuple(tuple(np.float32(a) for a in t) if isinstance(t, tuple) else np.float32(t) for t in tree)
    params32 = {k: as32(v) for k, v in params.items()}
    got = _with_resets(cell, params32, np.float32(x), as32(initial), as32(reset_states), resets, np.float32(dout),
                       as32(dfinal), lengths, (False, True))
    out, final, dx = got[:3]
    assert out.dtype == np.float32 and dx.dtype == np.float32
    np.testing.assert_allclose(out, want[0], rtol=0, atol=1e-4)
    np.testing.assert_allclose(dx, want[2], rtol=0, atol=1e-3 * np.abs(want[2]).max())
    for got_group, want_group in zip(got[4], want[4]):
        for a, b in zip(got_group, want_group):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * np.abs(b).max())
