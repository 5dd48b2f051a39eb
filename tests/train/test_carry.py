"""The trainer's carried state as a tuple (an LSTM's h and c): saved, resumed exactly, and the
single array of older checkpoints read as (h,)."""

import numpy as np
import pytest

pytest.importorskip("safetensors")
from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from rnnkit.models import ManyToMany  # noqa: E402
from rnnkit.train import TrainConfig, Trainer  # noqa: E402
from tests.train.test_trainer import CountingTask  # noqa: E402


class LSTMCountingTask(CountingTask):
    def build_model(self, options, dtype=np.float64):
        return ManyToMany(2, 8, vocab_size=2, embed_dim=3, cell="lstm", num_layers=2, dropout=0.2, dtype=dtype,
                          seed=self.seed)


def _trainer(out, epochs, max_seconds=None):
    task = LSTMCountingTask()
    config = TrainConfig(epochs=epochs, max_seconds=max_seconds, lr=0.01, patience=None, log_every=3, progress=False)
    return Trainer(task, task.build_model({}), {"cell": "lstm"}, config, out)


def test_lstm_carry_saved_and_resumed_exactly(tmp_path):
    straight = _trainer(tmp_path / "a", epochs=2)
    straight.fit()
    stopped = _trainer(tmp_path / "b", epochs=2, max_seconds=0.0)  # stops after the first step
    assert stopped.fit() == "time"
    arrays, meta = load_checkpoint(tmp_path / "b")
    assert meta["carry"] == 2 and arrays["carry.0"].shape == arrays["carry.1"].shape == (2, 6, 8)
    resumed = _trainer(tmp_path / "b", epochs=2)
    resumed.resume()
    assert isinstance(resumed.carry, tuple) and len(resumed.carry) == 2
    for saved, live in zip(resumed.carry, stopped.carry):
        np.testing.assert_array_equal(saved, live)
    resumed.fit()
    for (name, a, _), (_, b, _) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_old_single_array_carry_loads_as_h(tmp_path):
    trainer = Trainer(CountingTask(), CountingTask().build_model({}), {},
                      TrainConfig(epochs=1, max_seconds=0.0, patience=None, progress=False), tmp_path)
    trainer.fit()
    arrays, meta = load_checkpoint(tmp_path)
    h = arrays.pop("carry.0")
    save_checkpoint(tmp_path, {**arrays, "carry": h}, {**meta, "carry": True})  # the old layout
    resumed = Trainer(CountingTask(), CountingTask().build_model({}), {}, trainer.config, tmp_path)
    resumed.resume()
    assert len(resumed.carry) == 1
    np.testing.assert_array_equal(resumed.carry[0], h)
