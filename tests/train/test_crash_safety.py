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
from rnnkit.train.runs import BEST_DIR, has_checkpoint  # noqa: E402
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
    # what was there before, not Python's default: a shell starts background jobs with SIGINT ignored
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    assert trainer.fit() == "interrupted" and trainer.interrupted_by == signum
    assert trainer.position.step == at  # stopped at the next batch boundary
    assert {number: signal.getsignal(number) for number in handlers} == handlers  # handlers restored
    _finish(tmp_path)
    _assert_same_run(tmp_path, reference_dir)  # best/ too: the mid-epoch validation left it alone


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


class StepScoredTask(CountingTask):
    """Validation scores looked up by the step of the state validated (a label of the state that
    an interrupted and an uninterrupted run share), and a clock that ticks once per training
    step, so a time budget stops the run at a chosen step."""

    def __init__(self, scores):
        super().__init__()
        self.scores, self.position = scores, None

    def evaluate(self, model, split="valid"):
        return {"loss": 1.0, "accuracy": self.scores[self.position.step]}


def _step_scored(directory, monkeypatch, max_seconds=None):
    import types

    task = StepScoredTask({10: 0.5, 20: 0.6, 25: 0.95, 30: 0.55, 40: 0.52})
    config = TrainConfig(epochs=6, max_seconds=max_seconds, lr=0.01, patience=2, log_every=3, progress=False)
    trainer = Trainer(task, task.build_model({}), {}, config, directory)
    task.position = trainer.position
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(perf_counter=lambda: float(task.calls)))
    return trainer


def test_a_better_mid_epoch_validation_is_scored_but_not_kept_in_best(tmp_path, monkeypatch):
    """A time budget stops the run at step 25, mid-epoch 3, and its validation (0.95) beats
    every epoch end's: while the run stands that state is the one scored; resumed to the end,
    best/, early stopping and the last state equal the uninterrupted run's, which never
    validated step 25."""
    from rnnkit.train.runs import checkpoint_to_score

    straight = _step_scored(tmp_path / "straight", monkeypatch)
    assert straight.fit() == "early_stopping" and straight.position.epoch == 4
    assert straight.best_record()["epoch"] == 2

    stopped = _step_scored(tmp_path / "stopped", monkeypatch, max_seconds=25)
    assert stopped.fit() == "time" and stopped.position.step == 25
    assert stopped.best_record()["epoch"] == 2.5 and stopped.best_record()["mid_epoch"]
    assert checkpoint_to_score(tmp_path / "stopped") == tmp_path / "stopped"  # the better, mid-epoch state
    assert load_checkpoint(tmp_path / "stopped" / BEST_DIR)[1]["position"]["step"] == 20

    resumed = _step_scored(tmp_path / "stopped", monkeypatch)
    resumed.resume()
    resumed.task.position = resumed.position
    assert resumed.fit() == "early_stopping"
    assert (resumed.position.epoch, resumed.position.bad_epochs) == (straight.position.epoch, straight.position.bad_epochs)
    assert resumed.best_record()["epoch"] == 2
    assert checkpoint_to_score(tmp_path / "stopped") == tmp_path / "stopped" / BEST_DIR
    _assert_same_run(tmp_path / "stopped", tmp_path / "straight")


def test_a_best_dir_whose_first_write_was_killed_is_not_scored(tmp_path):
    from rnnkit.train.runs import checkpoint_to_score

    trainer = _trainer(tmp_path)
    trainer.config.epochs = 1
    trainer.fit()
    (tmp_path / BEST_DIR / "checkpoint.safetensors").unlink()  # as if killed between mkdir and rename
    assert checkpoint_to_score(tmp_path) == tmp_path
