"""fit, evaluate and predict on arrays: the command's trainer, its figures, its resume."""

import json

import numpy as np
import pytest

pytest.importorskip("safetensors")
from rnnkit.data import load_digits_rows  # noqa: E402
from rnnkit.io import faults  # noqa: E402
from rnnkit.models import Ensemble, ManyToMany, ManyToOne  # noqa: E402
from rnnkit.train import Callback, evaluate, fit, predict  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_digits_rows(seed=0)


def test_fit_on_arrays_equals_the_command_task(digits, tmp_path, capsys):
    """The digits task's options on the digits task's arrays: the same test figures, bit for bit.
    The command runs in this process: a process of its own may choose another OpenBLAS kernel
    (rnnkit sets OPENBLAS_CORETYPE before NumPy loads), whose sums round otherwise."""
    from rnnkit.cli.main import main

    (x, y), (xv, yv), (xt, yt) = digits["train"], digits["valid"], digits["test"]
    model = ManyToOne(10, 64, input_size=8, seed=0)
    result = fit(model, x, y, valid=(xv, yv), out=tmp_path / "fit", epochs=3, lr=3e-3, patience=10, progress=False)
    capsys.readouterr()
    assert main(["train", "digits", "--out", str(tmp_path / "cmd"), "--epochs", "3", "--no-progress"]) == 0
    expected = json.loads(capsys.readouterr().out.splitlines()[-1])
    scores = evaluate(model, xt, yt)
    assert result.reason == "epochs" and len(result.history) == 3
    assert (scores["accuracy"], scores["loss"]) == (expected["accuracy"], expected["test_loss"])
    assert (tmp_path / "fit" / "checkpoint.safetensors").is_file() and (tmp_path / "fit" / "loss.png").is_file()


def _params(model):
    return {name: value.copy() for name, value, _ in model.named_parameters()}


def test_a_killed_fit_resumes_exactly(digits, tmp_path):
    (x, y), (xv, yv) = digits["train"], digits["valid"]
    x, y = x[:300], y[:300]
    options = dict(valid=(xv, yv), epochs=3, batch_size=16, lr=3e-3, progress=False, save_every=0.001)

    def model():
        return ManyToOne(10, 16, input_size=8, num_layers=2, dropout=0.3, seed=1)

    alone = model()
    fit(alone, x, y, out=tmp_path / "alone", restore_best=False, **options)
    for at in (2, 9):
        killed = model()
        with faults.inject(f"kill@{at}"), pytest.raises(faults.Killed):
            fit(killed, x, y, out=tmp_path / f"killed{at}", **options)
        resumed = model()
        fit(resumed, x, y, out=tmp_path / f"killed{at}", resume=True, restore_best=False, **options)
        for name, value in _params(alone).items():
            np.testing.assert_array_equal(_params(resumed)[name], value, err_msg=f"kill@{at}: {name}")


def test_sequences_of_any_length_per_sequence_and_per_step(tmp_path):
    """Lists of token sequences: a ManyToOne learns which token a sequence starts with, a
    ManyToMany tags each token with its parity; both beat their baselines."""
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 6, size=rng.integers(2, 9)) for _ in range(400)]
    first = np.array([s[0] % 2 for s in sequences])
    classifier = ManyToOne(2, 16, vocab_size=6, embed_dim=8, seed=0, bidirectional=True)
    fit(classifier, sequences, first, out=tmp_path / "one", epochs=15, lr=1e-2, progress=False)
    assert evaluate(classifier, sequences, first)["accuracy"] > 0.9
    parities = [s % 2 for s in sequences]
    tagger = ManyToMany(2, 16, vocab_size=6, embed_dim=8, seed=0)
    result = fit(tagger, sequences, parities, out=tmp_path / "many", epochs=8, lr=1e-2, progress=False)
    assert result.best is not None and result.best["valid_accuracy"] > 0.95
    outputs = predict(tagger, sequences[:3])
    assert outputs.shape == (3, max(len(s) for s in sequences[:3]), 2)
    assert np.all(outputs[0, len(sequences[0]):] == 0)  # steps past a sequence's end
    np.testing.assert_array_equal(outputs[1, : len(sequences[1])].argmax(-1), sequences[1] % 2)


def test_an_ensemble_fits_and_predicts_the_mean_of_its_members_probabilities(tmp_path):
    rng = np.random.default_rng(1)
    sequences = [rng.integers(0, 6, size=rng.integers(2, 9)) for _ in range(300)]
    first = np.array([s[0] % 2 for s in sequences])
    members = [ManyToOne(2, 8, vocab_size=6, embed_dim=4, seed=k, bidirectional=True) for k in range(2)]
    ensemble = Ensemble(members)
    result = fit(ensemble, sequences, first, out=tmp_path / "ensemble", epochs=10, lr=1e-2, progress=False)
    assert result.best is not None and evaluate(ensemble, sequences, first)["accuracy"] > 0.9
    each = [np.exp(predict(member, sequences[:5])) for member in members]
    probabilities = [p / p.sum(-1, keepdims=True) for p in each]
    np.testing.assert_allclose(np.exp(predict(ensemble, sequences[:5])), np.mean(probabilities, axis=0), rtol=1e-5)


def test_regression_per_step_on_padded_arrays_with_lengths(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12, 1)).astype(np.float32)
    lengths = rng.integers(3, 13, size=200)
    y = np.cumsum(x, axis=1)[..., 0] * 0.5  # the running sum: needs the recurrence
    model = ManyToMany(1, 16, input_size=1, loss="mse", seed=0)
    before = evaluate(model, x, y, lengths=lengths)["mse"]
    fit(model, x, y, lengths=lengths, out=tmp_path / "run", epochs=20, lr=1e-2, progress=False)
    assert evaluate(model, x, y, lengths=lengths)["mse"] < before / 5


def test_callbacks_see_every_record_and_epoch(digits, tmp_path):
    (x, y) = digits["train"]

    class Seen(Callback):
        def __init__(self):
            self.records, self.epochs, self.ends = [], [], []

        def on_log(self, trainer, record):
            self.records.append(record)

        def on_epoch_end(self, trainer, epoch):
            self.epochs.append(epoch)

        def on_train_end(self, trainer, reason):
            self.ends.append(reason)

    seen = Seen()
    fit(ManyToOne(10, 8, input_size=8, seed=0), x[:200], y[:200], out=tmp_path / "run", epochs=2, progress=False,
        callbacks=[seen])
    assert seen.epochs == [1, 2] and seen.ends == ["epochs"]
    steps = [r for r in seen.records if "train_loss" in r]
    assert steps and all(np.isfinite(r["grad_norm"]) and r["lr"] == 1e-3 for r in steps)
    assert sum("valid_accuracy" in r for r in seen.records) == 2
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged == seen.records


def test_a_run_directory_is_not_replaced_unless_told(digits, tmp_path):
    (x, y) = digits["train"]
    options = dict(out=tmp_path / "run", epochs=1, progress=False)
    fit(ManyToOne(10, 8, input_size=8, seed=0), x[:100], y[:100], **options)
    with pytest.raises(ValueError, match="already holds a run; resume=True continues it, overwrite=True deletes it"):
        fit(ManyToOne(10, 8, input_size=8, seed=0), x[:100], y[:100], **options)
    fit(ManyToOne(10, 8, input_size=8, seed=0), x[:100], y[:100], overwrite=True, **options)
    with pytest.raises(ValueError, match="resume: no checkpoint in"):
        fit(ManyToOne(10, 8, input_size=8, seed=0), x[:100], y[:100], resume=True, out=tmp_path / "new")


@pytest.mark.parametrize("x, y, kwargs, message", [
    (np.zeros((4, 8)), np.zeros(4, int), {}, r"x: expected rank 3 \(batch, steps, features\), got shape \(4, 8\)"),
    (np.full((4, 3, 8), np.nan), np.zeros(4, int), {}, r"x: expected finite values, got 96 NaN/inf"),
    (np.zeros((4, 3, 8)), np.array([0, 1, 2, 10]), {}, r"y: expected class ids 0..9 \(the model's outputs\), got 0..10"),
    (np.zeros((4, 3, 8)), np.zeros(3, int), {}, r"y: expected 4 targets \(one per sequence of x\), got 3"),
    (np.zeros((4, 3, 8)), np.zeros(4, int), {"lengths": [1, 2, 3, 4]}, r"lengths: expected values from 1 to 3"),
    (np.array([np.zeros((2, 8)), np.zeros((3, 8))], dtype=object), np.zeros(2, int), {},
     r"x: expected an array of rank 3 \(batch first\) or a non-empty list of sequences"),
    ([np.zeros((2, 8)), np.zeros((3, 7))], np.zeros(2, int), {}, r"x: the sequences' steps differ in shape"),
    (np.zeros((4, 3, 8)), np.zeros(4, float), {}, r"y: expected integer class ids of shape \(4,\)"),
])
def test_bad_arrays_are_one_line_errors(tmp_path, x, y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(ManyToOne(10, 8, input_size=8, seed=0), x, y, out=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_token_ids_outside_the_vocabulary_are_refused(tmp_path):
    model = ManyToOne(2, 8, vocab_size=5, seed=0)
    with pytest.raises(ValueError, match=r"x: expected token ids 0..4 \(the embedding's vocabulary\), got 7"):
        evaluate(model, [np.array([1, 7]), np.array([2])], np.array([0, 1]))
    with pytest.raises(TypeError, match="model: expected a ManyToOne or ManyToMany"):
        fit(object(), np.zeros((2, 2)), np.zeros(2), out=tmp_path / "run")


def test_fit_writes_tensorboard_events_where_installed(digits, tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = digits["train"]
    fit(ManyToOne(10, 8, input_size=8, seed=0), x[:200], y[:200], out=tmp_path / "on", epochs=2, progress=False)
    events = EventAccumulator(str(tmp_path / "on" / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("valid/accuracy")] == [6, 12]  # 180 to train: 6 batches
    fit(ManyToOne(10, 8, input_size=8, seed=0), x[:200], y[:200], out=tmp_path / "off", epochs=1, progress=False,
        tensorboard=False)
    assert not (tmp_path / "off" / "tensorboard").exists()


def test_a_fit_run_has_a_model_card_of_its_validation(digits, tmp_path):
    yaml = pytest.importorskip("yaml")
    x, y = digits["train"]
    result = fit(ManyToOne(10, 8, input_size=8, seed=0), x[:200], y[:200], out=tmp_path / "run", epochs=2,
                 progress=False, tensorboard=False)
    text = (tmp_path / "run" / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    (entry,) = front["model-index"][0]["results"]
    assert front["library_name"] == "rnnkit" and entry["dataset"]["split"] == "valid"
    figures = {metric["type"]: metric["value"] for metric in entry["metrics"]}
    assert result.best is not None and figures["accuracy"] == result.best["valid_accuracy"]
    assert set(figures) == {"accuracy", "baseline_accuracy"}
    assert "trained by `rnnkit.train.fit` on arrays" in text and "resume=True" in text
    assert "rnnkit eval" not in text  # the command's tasks only


def test_a_schedule_sets_the_rate_each_step_and_resumes_exactly(digits, tmp_path):
    from rnnkit.optim import CosineAnnealingLR, LinearWarmup

    (x, y), (xv, yv) = digits["train"], digits["valid"]
    x, y = x[:256], y[:256]

    def schedule(optimizer):
        return LinearWarmup(optimizer, warmup_steps=5, after=CosineAnnealingLR(optimizer, T_max=20))

    options = dict(valid=(xv, yv), epochs=3, batch_size=32, lr=1e-2, progress=False, save_every=0.001,
                   schedule=schedule, tensorboard=False, restore_best=False)
    alone = ManyToOne(10, 8, input_size=8, seed=0)
    fit(alone, x, y, out=tmp_path / "alone", **options)
    rates = [json.loads(line).get("lr") for line in (tmp_path / "alone" / "metrics.jsonl").read_text().splitlines()]
    rates = [rate for rate in rates if rate is not None]
    assert len(set(rates)) > 2 and max(rates) <= 1e-2  # the rate moves: warm-up, then the cosine
    killed = ManyToOne(10, 8, input_size=8, seed=0)
    with faults.inject("kill@7"), pytest.raises(faults.Killed):
        fit(killed, x, y, out=tmp_path / "killed", **options)
    resumed = ManyToOne(10, 8, input_size=8, seed=0)
    fit(resumed, x, y, out=tmp_path / "killed", resume=True, **options)
    for name, value in _params(alone).items():
        np.testing.assert_array_equal(_params(resumed)[name], value, err_msg=name)
    with pytest.raises(Exception, match="this run has a learning-rate schedule, the checkpoint none"):
        fit(ManyToOne(10, 8, input_size=8, seed=0), x, y, out=tmp_path / "plain", **{**options, "schedule": None})
        fit(ManyToOne(10, 8, input_size=8, seed=0), x, y, out=tmp_path / "plain", resume=True, **options)


def test_early_stopping_follows_the_monitored_figure(digits, tmp_path):
    (x, y) = digits["train"]
    result = fit(ManyToOne(10, 8, input_size=8, seed=0), x[:300], y[:300], out=tmp_path / "run", epochs=4, lr=3e-2,
                 progress=False, tensorboard=False, monitor="loss")
    assert result.best is not None
    assert result.best["valid_loss"] == min(record["valid_loss"] for record in result.history)
    with pytest.raises(ValueError, match="monitor: expected loss or accuracy, got 'f1'"):
        fit(ManyToOne(10, 8, input_size=8, seed=0), x[:300], y[:300], out=tmp_path / "other", monitor="f1")


def test_weight_decay_reaches_the_optimizer_and_bad_values_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3, 4)), rng.integers(0, 2, 40)
    fit(ManyToOne(2, 4, input_size=4, seed=0), x, y, out=tmp_path / "run", epochs=1, optimizer="adamw",
        weight_decay=0.5, progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train_config"]["weight_decay"] == 0.5
    assert saved["optimizer"]["hyperparameters"]["weight_decay"] == 0.5
    with pytest.raises(ValueError, match=r"weight_decay: expected a number >= 0 or None, got -1"):
        fit(ManyToOne(2, 4, input_size=4, seed=0), x, y, out=tmp_path / "bad", weight_decay=-1)
