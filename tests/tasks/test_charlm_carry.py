"""charlm's truncated BPTT with tuple states: the LSTM's (h, c) carried across windows."""

import numpy as np
import pytest

from rnnkit.tasks.charlm import CharLM

OPTIONS = {"cell": "lstm", "hidden": 8, "layers": 2, "embed": 4, "nonlinearity": "tanh", "dropout": 0.0,
           "bidirectional": False, "batch_size": 3, "bptt": 5}


@pytest.fixture
def task(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("abcabd cabbage, a cab. " * 60, encoding="utf-8")
    return CharLM(data=str(text), seed=0)


def test_lstm_carry_is_a_detached_tuple_that_continues_the_sequence(task):
    model = task.build_model(OPTIONS, dtype=np.float64)
    assert model.cell == "lstm"
    first, second = task.train_batches(0)[:2]
    model.zero_grad()
    _, _, carry = task.train_step(model, first, None)
    assert isinstance(carry, tuple) and len(carry) == 2  # (h, c)
    assert all(state.shape == (2, 3, 8) for state in carry)
    kept = tuple(state.copy() for state in carry)
    # Detached: a copy that the next window's forward and backward leave alone.
    _, _, next_carry = task.train_step(model, second, carry)
    for state, before in zip(carry, kept):
        np.testing.assert_array_equal(state, before)
    # The carried window continues the sequence: the same as reading both windows at once.
    model.eval()
    both, _ = model.forward(np.concatenate([first[0], second[0]]))
    continued, final = model.forward(second[0], carry)
    np.testing.assert_allclose(continued, both[len(first[0]):], rtol=1e-12, atol=1e-14)
    assert not np.allclose(continued, model.forward(second[0])[0])  # and the carry matters
    assert len(final) == 2 and len(next_carry) == 2


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_single_state_cells_carry_one_array(task, cell):
    model = task.build_model({**OPTIONS, "cell": cell}, dtype=np.float64)
    _, _, carry = task.train_step(model, task.train_batches(0)[0], None)
    assert isinstance(carry, tuple) and len(carry) == 1


def test_old_options_without_a_cell_build_an_rnn(task):
    options = {k: v for k, v in OPTIONS.items() if k != "cell"}
    model = task.build_model(options)
    assert model.cell == "rnn" and type(model.rnn).__name__ == "RNN"
