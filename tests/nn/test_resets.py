"""Resets in the recurrent modules: every cell, stacked and bidirectional, with padding and
``batch_first``, equals a PyTorch loop over torch's own cells that resets the state by hand
(``h = where(reset, h_start, h)``), forward and every gradient in float64; and the checks."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.nn import GRU, LSTM, RNN
from tests.nn.torch_loop import assert_matches, torch_loop

MODULES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional,learn_h0", [(1, False, False), (2, True, False),
                                                               (2, False, True), (1, True, True)])
def test_resets_equal_a_torch_loop_that_resets_by_hand(cell, num_layers, bidirectional, learn_h0):
    pytest.importorskip("torch")
    module = MODULES[cell](3, 5, num_layers=num_layers, bidirectional=bidirectional, dtype=np.float64, seed=2,
                           learn_h0=learn_h0)
    if learn_h0:  # a learned state that is not zero, so that starting again from it is visible
        for name in module.cell.state_names:
            module.params[f"{name}0"][...] = np.random.default_rng(9).normal(0, 0.5, module.params[f"{name}0"].shape)
    rng = np.random.default_rng(num_layers + 2 * bidirectional)
    steps, batch = 8, 4
    x = rng.normal(size=(steps, batch, 3))
    shape = (num_layers * module.num_directions, batch, 5)
    initial = tuple(rng.normal(0, 0.5, shape) for _ in module.cell.state_names)
    lengths = np.array([8, 5, 8, 2])
    resets = rng.random((steps, batch)) < 0.3
    resets[0, 1] = resets[4, 2] = True
    out, finals = module.forward_states(x, initial, lengths, resets)
    dout = rng.normal(size=out.shape) * (np.arange(steps)[:, None] < lengths)[:, :, None]
    dfinal = tuple(rng.normal(size=shape) for _ in module.cell.state_names)
    module.zero_grad()
    dx, dinitial = module.backward_states(dout, dfinal)
    want = torch_loop(module, x, initial, lengths, resets, dout, dfinal)
    assert_matches((out, finals, dx, dinitial), want, module)


def test_batch_first_resets_and_no_resets_keep_the_plain_path():
    module = GRU(3, 4, batch_first=True, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 3))
    resets = np.zeros((2, 6), bool)
    resets[1, 3] = True
    out, _ = module(x, resets=resets)
    fresh, _ = module(x[1:, 3:])  # sequence 1 from step 3 on is a new sequence
    np.testing.assert_allclose(out[1, 3:], fresh[0], rtol=1e-12, atol=1e-12)
    plain, _ = module(x)
    np.testing.assert_array_equal(module(x, resets=np.zeros((2, 6), bool))[0], plain)
    np.testing.assert_array_equal(out[0], plain[0])


def test_bad_resets_say_what_was_expected():
    module = LSTM(3, 4, seed=0)
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"resets: expected shape \(5, 2\) \(T, B\)"):
        module(x, resets=np.zeros((2, 5), bool))
    with pytest.raises(TypeError, match="resets: expected bools"):
        module(x, resets=np.full((5, 2), 0.5))
