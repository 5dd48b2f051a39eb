import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from rnnkit.nn import RNN  # noqa: E402
from rnnkit.viz import gradient_norms_through_time, plot_gradient_norms, plot_hidden_states, plot_loss_curves  # noqa: E402


def test_plots_write_png_files(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(r) for r in [
        {"epoch": 0.5, "train_loss": 2.0}, {"epoch": 1, "train_loss": 1.5}, {"epoch": 1, "valid_loss": 1.7}]))
    for path in (plot_loss_curves(metrics, tmp_path / "loss.png"),
                 plot_hidden_states(np.tanh(np.random.default_rng(0).normal(size=(12, 8))), tmp_path / "h.png",
                                    list("hello world!")),
                 plot_gradient_norms({"tanh": np.geomspace(1e-3, 1, 10)}, tmp_path / "g.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradient_norms_vanish_through_a_contracting_tanh_rnn():
    rnn = RNN(3, 8, dtype=np.float64, seed=0)
    rnn.params["W_hh_l0"] *= 0.5  # spectral radius well below 1: gradients must shrink going back
    before = {k: v.copy() for k, v in rnn.grads.items()}
    norms = gradient_norms_through_time(rnn, np.random.default_rng(1).normal(size=(20, 4, 3)))
    assert norms.shape == (20,)
    assert norms[0] < 1e-3 * norms[-1]
    assert all(np.array_equal(rnn.grads[k], v) for k, v in before.items())  # gradients untouched


def test_a_figure_that_cannot_be_written_is_an_error(tmp_path):
    """matplotlib's own writer lets a full disk pass silently (the command said "wrote
    /dev/full"): the bytes are written, and checked, by rnnkit."""
    import os

    states = np.zeros((5, 4))
    if os.path.exists("/dev/full"):
        with pytest.raises(OSError, match=r"No space left on device: '/dev/full'"):
            plot_hidden_states(states, "/dev/full")
        assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")  # written into, not replaced
    with pytest.raises(ValueError, match=r"Format 'xyz' is not supported"):
        plot_hidden_states(states, tmp_path / "figure.xyz")
    assert plot_hidden_states(states, tmp_path / "figure.svg").read_bytes().lstrip().startswith(b"<?xml")
