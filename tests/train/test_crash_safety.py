"""A run killed at any checkpoint write, or stopped by SIGINT/SIGTERM at any step, resumes to
exactly the parameters and best checkpoint of an uninterrupted run; a finished run trains no
more."""

import os
import signal

import numpy as np
import pytest

pytest.importorskip("safetensors")
import rnnkit.train.trainer as trainer_module  # noqa: E402
from rnnkit.io.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train import TrainConfig, Trainer  # noqa: E402
from rnnkit.train.trainer import BEST_DIR, has_checkpoint  # noqa: E402
from tests.train.test_trainer import CountingTask  # noqa: E402

EPOCHS = 4


class Killed(BaseException):
    """What a SIGKILL does to the process, as far as the files are concerned."""


def _trainer(directory, task=None, patience=2):
    task = task or CountingTask()
    config = TrainConfig(epochs=EPOCHS, lr=0.01, patience=patience, log_every=3, progress=False)
    return Trainer(task, task.build_model({}), {}, config, directory)


def _finish(directory, task=None):
    """What `rnnkit train --resume` does: resume if there is a checkpoint, else start over."""
    trainer = _trainer(directory, task)
    if has_checkpoint(directory):
        trainer.resume()
    trainer.fit()
    return trainer


def _assert_same_run(directory, reference):
    for name in ("", BEST_DIR):
        arrays, meta = load_checkpoint(directory / name)
        expected, expected_meta = load_checkpoint(reference / name)
        assert arrays.keys() == expected.keys()
        for key in arrays:
            np.testing.assert_array_equal(arrays[key], expected[key], err_msg=f"{name or 'main'}: {key}")
        assert meta["position"]["step"] == expected_meta["position"]["step"]


def _killed_at_write(monkeypatch, directory, kill_at, after=False, save_every=None):
    """Train in ``directory`` until checkpoint write number ``kill_at`` (0-based), and die there:
    before the write, or just after it (``after``), as a kill -9 would."""
    real = trainer_module.save_checkpoint
    calls = []

    def dying_save(target, arrays, meta):
        calls.append(target)
        if len(calls) - 1 == kill_at:
            if after:
                real(target, arrays, meta)
            raise Killed
        return real(target, arrays, meta)

    monkeypatch.setattr(trainer_module, "save_checkpoint", dying_save)
    trainer = _trainer(directory)
    trainer.config.save_every_seconds = save_every
    with pytest.raises(Killed):
        trainer.fit()
    monkeypatch.setattr(trainer_module, "save_checkpoint", real)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("uninterrupted")
    writes = []
    real = trainer_module.save_checkpoint
    trainer_module.save_checkpoint = lambda *args: writes.append(args[0]) or real(*args)
    try:
        _trainer(directory).fit()
    finally:
        trainer_module.save_checkpoint = real
    return directory, len(writes)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_at_every_checkpoint_write_resumes_exactly(reference, tmp_path, monkeypatch, when):
    reference_dir, writes = reference
    assert writes >= EPOCHS + 1  # a main checkpoint per epoch and best/ at least once
    for kill_at in range(writes):
        directory = tmp_path / f"kill-{when}-{kill_at}"
        _killed_at_write(monkeypatch, directory, kill_at, after=when == "after")
        _finish(directory)
        _assert_same_run(directory, reference_dir)


class SignalledTask(CountingTask):
    """Sends the process a signal from inside training step ``at`` (as `kill PID` would)."""

    def __init__(self, signum, at):
        super().__init__()
        self.signum, self.at = signum, at

    def train_step(self, model, batch, carry):
        out = super().train_step(model, batch, carry)
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("at", [1, 7, 10, 23])
def test_a_signal_saves_a_checkpoint_that_resumes_exactly(reference, tmp_path, signum, at):
    reference_dir, _ = reference
    trainer = _trainer(tmp_path, SignalledTask(signum, at))
    assert trainer.fit() == "interrupted" and trainer.interrupted_by == signum
    assert trainer.position.step == at  # stopped at the next batch boundary
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    _finish(tmp_path)
    arrays, _ = load_checkpoint(tmp_path)
    expected, _ = load_checkpoint(reference_dir)
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], expected[key], err_msg=key)


def test_a_finished_run_trains_no_more(tmp_path):
    stopped = _trainer(tmp_path, patience=1)
    stopped.task.evaluate = lambda model, split="valid": {"loss": 1.0, "accuracy": 0.5}  # never improves
    assert stopped.fit() == "early_stopping" and stopped.position.epoch == 2
    again = _trainer(tmp_path, patience=1)
    again.resume()
    steps = again.position.step
    assert again.fit() == "early_stopping" and again.position.step == steps and again.task.calls == 0


def test_periodic_checkpoints_mid_epoch_resume_exactly(reference, tmp_path, monkeypatch):
    """Checkpoints written within an epoch (--save-every) are as resumable as epoch-end ones."""
    reference_dir, _ = reference
    resumed_mid_epoch = []
    for kill_at in (2, 9, 17):
        directory = tmp_path / f"kill-{kill_at}"
        _killed_at_write(monkeypatch, directory, kill_at, after=True, save_every=1e-9)  # after every batch
        resumed_mid_epoch.append(load_checkpoint(directory)[1]["position"]["batch"] > 0)
        _finish(directory)
        _assert_same_run(directory, reference_dir)
    assert all(resumed_mid_epoch)


def test_metrics_are_logged_once_per_step_after_a_resume(reference, tmp_path, monkeypatch):
    import json

    reference_dir, _ = reference
    _killed_at_write(monkeypatch, tmp_path, 3)
    _finish(tmp_path)

    def records(directory):
        return [json.loads(line) for line in (directory / trainer_module.METRICS_FILE).read_text().splitlines()]

    keys = [(r["step"], "train_loss" in r) for r in records(tmp_path)]
    assert len(keys) == len(set(keys))
    assert keys == [(r["step"], "train_loss" in r) for r in records(reference_dir)]
