import warnings

import numpy as np

from rnnkit.tasks.charlm import CharLM

OPTIONS = {"cell": "gru", "hidden": 8, "layers": 1, "embed": 4, "nonlinearity": "tanh", "dropout": 0.0,
           "bidirectional": False, "batch_size": 3, "bptt": 5}


def test_sampling_at_a_tiny_temperature_is_the_most_likely_text(tmp_path):
    """last / 1e-310 overflows to inf, and inf - inf is NaN (it sampled pad, or raised
    "probabilities contain NaN"): the best score is subtracted first."""
    text = tmp_path / "text.txt"
    text.write_text("abcabd cabbage, a cab. " * 60, encoding="utf-8")
    task = CharLM(data=str(text), seed=0)
    model = task.build_model(OPTIONS, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        cold = task.sample(model, "ab", 30, 1e-310, seed=0)
    assert len(cold) == 32 and cold == task.sample(model, "ab", 30, 1e-310, seed=1)  # no randomness left
    assert all(c in task.tokenizer.vocab.stoi for c in cold)
