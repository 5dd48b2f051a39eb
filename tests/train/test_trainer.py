import json

import numpy as np
import pytest

pytest.importorskip("safetensors")
from rnnkit.io.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.models import ManyToMany  # noqa: E402
from rnnkit.tasks.base import Task  # noqa: E402
from rnnkit.train import DivergenceError, TrainConfig, Trainer  # noqa: E402
from rnnkit.train.runs import BEST_DIR, METRICS_FILE  # noqa: E402


def previous_bit(bits):
    return np.concatenate([np.zeros_like(bits[:1]), bits[:-1]])


class CountingTask(Task):
    """Predict the previous bit of a bit stream: small, deterministic, needs the recurrence, and
    uses the carried state and dropout, so exact resume has everything to get right."""

    name = "toy"
    metric_keys = ("accuracy",)
    primary_metric = "accuracy"

    def __init__(self, seed=0, poison_at=None):
        super().__init__(None, seed)
        rng = np.random.default_rng(123)
        self.bits = rng.integers(0, 2, size=(40, 4, 6))  # 40 batches of (T=4, B=6)
        self.poison_at = poison_at
        self.calls = 0

    def build_model(self, options, dtype=np.float64):
        return ManyToMany(2, 8, vocab_size=2, embed_dim=3, num_layers=2, dropout=0.2, dtype=dtype, seed=self.seed)

    def train_batches(self, epoch):
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.bits))
        return [self.bits[i] for i in order[:10]]

    def initial_carry(self):
        return None

    def train_step(self, model, batch, carry):
        self.calls += 1
        targets = previous_bit(batch)
        logits, h_n = model.forward(batch, carry)
        loss, d = model.loss(logits, targets)
        if self.poison_at is not None and self.calls >= self.poison_at:
            loss = float("nan")
        model.backward(d / targets.size)
        return loss, targets.size, h_n

    def evaluate(self, model, split="valid"):
        batch = self.bits[-1]
        logits, _ = model.forward(batch)
        loss, _ = model.loss(logits, previous_bit(batch), reduction="mean")
        return {"loss": loss, "accuracy": float((logits.argmax(-1) == previous_bit(batch)).mean())}

    def baseline(self, split="test"):
        return {"accuracy": 0.5}


def _trainer(tmp_path, epochs, max_seconds=None, **task_args):
    task = CountingTask(**task_args)
    model = task.build_model({})
    config = TrainConfig(epochs=epochs, max_seconds=max_seconds, lr=0.01, patience=None, log_every=3, progress=False)
    return Trainer(task, model, {}, config, tmp_path)


def test_resume_matches_an_uninterrupted_run(tmp_path):
    straight = _trainer(tmp_path / "a", epochs=3)
    straight.fit()
    first = _trainer(tmp_path / "b", epochs=2)
    first.fit()
    resumed = _trainer(tmp_path / "b", epochs=3)
    resumed.resume()
    resumed.fit()
    for (name, a, _), (_, b, _) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_resume_mid_epoch_after_time_budget(tmp_path):
    straight = _trainer(tmp_path / "a", epochs=2)
    straight.fit()
    stopped = _trainer(tmp_path / "b", epochs=2, max_seconds=0.0)  # stops after the first step
    assert stopped.fit() == "time"
    assert stopped.position.step == 1 and stopped.position.batch == 1
    resumed = _trainer(tmp_path / "b", epochs=2)
    resumed.resume()
    assert resumed.carry is not None  # the state carried between batches came back
    resumed.fit()
    for (name, a, _), (_, b, _) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_divergence_stops_without_touching_the_checkpoint(tmp_path):
    good = _trainer(tmp_path, epochs=1)
    good.fit()
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    bad = _trainer(tmp_path, epochs=3, poison_at=4)
    bad.resume()
    with pytest.raises(DivergenceError, match=r"training diverged at epoch 2, step \d+: the loss is nan; "
                                              r"the last good checkpoint .* is untouched"):
        bad.fit()
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before
    arrays, _ = load_checkpoint(tmp_path)
    assert all(np.all(np.isfinite(v)) for v in arrays.values())


def test_logs_curves_and_best_checkpoint(tmp_path):
    trainer = _trainer(tmp_path, epochs=2)
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert any("train_loss" in r for r in records) and sum("valid_accuracy" in r for r in records) == 2
    assert (tmp_path / BEST_DIR / "checkpoint.safetensors").is_file()
    if pytest.importorskip("matplotlib"):
        assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_training_reduces_the_loss(tmp_path):
    trainer = _trainer(tmp_path, epochs=8)
    before = trainer.task.evaluate(trainer.model)["loss"]
    trainer.fit()
    assert trainer.task.evaluate(trainer.model)["loss"] < 0.8 * before


class ScriptedTask(CountingTask):
    """Validation scores read from a script, one per epoch: early stopping's decisions, alone.
    Its metrics: accuracy (primary), then an error rate (lower is better) that breaks ties."""

    metric_keys = ("accuracy", "cer")

    def __init__(self, scores, errors):
        super().__init__()
        self.scores, self.errors, self.evaluations = scores, errors, 0

    def evaluate(self, model, split="valid"):
        i = min(self.evaluations, len(self.scores) - 1)
        self.evaluations += 1
        return {"loss": 1.0, "accuracy": self.scores[i], "cer": self.errors[i]}


def _scripted(tmp_path, scores, errors, epochs, patience, max_seconds=None, until_stopped=False):
    task = ScriptedTask(scores, errors)
    config = TrainConfig(epochs=epochs, max_seconds=max_seconds, until_stopped=until_stopped, patience=patience,
                         lr=0.01, log_every=100, progress=False)
    return Trainer(task, task.build_model({}), {}, config, tmp_path)


def test_a_tied_primary_metric_is_broken_by_the_other_metrics(tmp_path):
    """Exact match stuck at 0 while the error rate falls is progress, not a reason to stop."""
    trainer = _scripted(tmp_path, scores=[0.0] * 6, errors=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], epochs=6, patience=2)
    assert trainer.fit() == "epochs"
    assert trainer.position.best_scores == [0.0, -0.4] and trainer.best_record()["epoch"] == 6
    stuck = _scripted(tmp_path / "stuck", scores=[0.0] * 6, errors=[0.5, 0.6, 0.5, 0.5, 0.5, 0.5], epochs=6,
                      patience=2)
    assert stuck.fit() == "early_stopping" and stuck.position.epoch == 3
    assert stuck.best_record()["epoch"] == 1  # a full tie keeps the earlier checkpoint
    primary_first = _scripted(tmp_path / "primary", scores=[0.5, 0.6], errors=[0.1, 0.9], epochs=2, patience=2)
    primary_first.fit()
    assert primary_first.best_record()["epoch"] == 2  # a better primary metric wins whatever the others say


def test_with_a_time_budget_epochs_are_a_minimum_while_validation_improves(tmp_path):
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5]
    errors = [0.5] * 8
    fixed = _scripted(tmp_path / "fixed", scores, errors, epochs=2, patience=3, max_seconds=600)
    assert fixed.fit() == "epochs" and fixed.position.epoch == 2
    extended = _scripted(tmp_path / "extended", scores, errors, epochs=2, patience=3, max_seconds=600,
                         until_stopped=True)
    assert extended.fit() == "early_stopping"
    assert extended.position.epoch == 8 and extended.best_record()["epoch"] == 5  # 3 epochs past the best
    no_budget = _scripted(tmp_path / "no-budget", scores, errors, epochs=2, patience=3, until_stopped=True)
    assert no_budget.fit() == "epochs" and no_budget.position.epoch == 2  # no budget to use: epochs hold


def test_patience_grows_as_the_data_shrinks():
    from rnnkit.train.trainer import patience_for

    assert [patience_for(n) for n in (100, 1_500, 6_400, 20_000, 500_000)] == [10, 10, 4, 3, 3]


def test_divergence_is_reported_once_without_numpy_warnings(tmp_path):
    """A learning rate of 1e300 overflows the parameters at once: one DivergenceError, and no
    RuntimeWarning from summing them on the way."""
    import warnings

    task = CountingTask()
    config = TrainConfig(epochs=1, lr=1e300, patience=None, progress=False)
    trainer = Trainer(task, task.build_model({}, dtype=np.float32), {}, config, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError, match=r"training diverged at epoch 1, step 1: parameters .* became NaN/inf"):
            trainer.fit()
    assert not (tmp_path / "checkpoint.safetensors").exists()


def test_a_validation_loss_that_is_not_finite_is_divergence(tmp_path):
    """Parameters can be huge yet finite (float64) while validation overflows: no checkpoint
    of such a state, and one message, not NumPy's warnings."""
    trainer = _trainer(tmp_path, epochs=1)
    trainer.task.evaluate = lambda model, split="valid": {"loss": float("inf"), "accuracy": 0.5}
    with pytest.raises(DivergenceError, match=r"at epoch 1.00, step 10: the validation loss is inf; no "):
        trainer.fit()


def test_only_the_root_rewrites_the_log_on_resume(tmp_path):
    """On --resume every process reads the checkpoint, but the log is the root's: two processes
    rewriting metrics.jsonl raced (one's rename found its temporary file gone)."""
    from rnnkit.train.distributed import World

    class SecondProcess(World):  # rank 1 of 2: the root's broadcast is what it would receive
        rank, size = 1, 2

        def broadcast(self, value):
            return load_checkpoint(tmp_path) if value is None else value

    first = _trainer(tmp_path, epochs=2, max_seconds=0.0)  # stops after the first step
    first.fit()
    log = tmp_path / METRICS_FILE
    with open(log, "a", encoding="utf-8") as handle:  # a record past the checkpoint's step
        handle.write('{"step": 999, "loss": 1.0}\n')
    before = log.read_bytes()
    second = _trainer(tmp_path, epochs=2)
    second.world = SecondProcess()
    second.resume()
    assert log.read_bytes() == before  # untouched by rank 1
    root = _trainer(tmp_path, epochs=2)
    root.resume()
    assert b'"step": 999' not in log.read_bytes()  # the root drops what the resumed run writes again
