"""TensorBoard event files: every record, histogram, sample, figure and option written reads back
as it was; a run killed or signalled and resumed with the callback on is still bit for bit the
uninterrupted one, and its event files hold each step once."""

import json
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("safetensors")
pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

from rnnkit.io import faults  # noqa: E402
from rnnkit.train import TrainConfig, Trainer  # noqa: E402
from rnnkit.train.runs import CURVE_FILE, METRICS_FILE, replace_earlier_run  # noqa: E402
from rnnkit.train.tensorboard import TENSORBOARD_DIR, TensorBoardCallback, forget_events_after  # noqa: E402
from rnnkit.train.trainer import module_rngs  # noqa: E402
from tests.datasets import number_words_tsv  # noqa: E402
from tests.train.test_crash_safety import EPOCHS, SignalledTask, _assert_same_run  # noqa: E402
from tests.train.test_trainer import CountingTask  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


class ShowingTask(CountingTask):
    """Shows what the model predicts for a fixed batch, and draws its recurrent weights: both
    change as it learns, so each epoch's text and figure are its own."""

    def show(self, model):
        assert not model.training  # shown in eval mode, as the command's report shows
        logits, _ = model.forward(self.bits[-1][:, :2])
        return "predicted:\n" + "\n".join(" ".join(map(str, row)) for row in logits.argmax(-1).T)

    def pictures(self, model, directory):
        import matplotlib.pyplot as plt

        path = directory / "weights.png"
        plt.imsave(path, dict((name, value) for name, value, _ in model.named_parameters())["rnn.W_hh_l0"])
        return [path]


class DrawingTask(ShowingTask):
    """A show that draws from the model's dropout generator (which eval mode never does)."""

    def show(self, model):
        for rng in module_rngs(model).values():
            rng.random()
        return super().show(model)


class FailingTask(ShowingTask):
    def show(self, model):
        raise RuntimeError("no test split here\nsecond line")


def _trainer(directory, task=None, epochs=EPOCHS, board=None, patience=2):
    task = task or CountingTask()
    config = TrainConfig(epochs=epochs, lr=0.01, patience=patience, log_every=3, progress=False)
    return Trainer(task, task.build_model({}), {"hidden": 8, "cell": "rnn"}, config, directory,
                   callbacks=[board] if board else [])


def _board(**options):
    return TensorBoardCallback(drawing_share=1.0, **options)  # samples and figures at every epoch end


def _events(directory):
    accumulator = EventAccumulator(str(directory / TENSORBOARD_DIR), size_guidance={
        "scalars": 0, "histograms": 0, "images": 0, "tensors": 0, "compressedHistograms": 0})
    return accumulator.Reload()


def _records(directory):
    return [json.loads(line) for line in (directory / METRICS_FILE).read_text().splitlines()]


def _assert_events_are_the_records(events, records):
    """Every scalar of every record of ``metrics.jsonl``, at its step, each once (stored as float32)."""
    train = [r for r in records if "train_loss" in r]
    valid = [r for r in records if "valid_loss" in r]
    for tag, key, chosen in [("train/loss", "train_loss", train), ("train/grad_norm", "grad_norm", train),
                             ("train/lr", "lr", train), ("train/items_per_second", "items_per_second", train),
                             ("train/epoch", "epoch", train), ("valid/loss", "valid_loss", valid),
                             ("valid/accuracy", "valid_accuracy", valid)]:
        assert [(e.step, e.value) for e in events.Scalars(tag)] == [
            (r["step"], np.float32(r[key])) for r in chosen], tag


def _params(model):
    return {name: value.copy() for name, value, _ in model.named_parameters()}


def _text(event):
    return event.tensor_proto.string_val[0].decode()


def test_every_record_histogram_sample_figure_and_option_reads_back(tmp_path):
    board = _board()
    trainer = _trainer(tmp_path, ShowingTask(), epochs=3, board=board, patience=None)
    assert trainer.fit() == "epochs"
    board.add_result({"task": "toy", "accuracy": 0.75, "baseline_accuracy": 0.5, "test_loss": 0.25,
                      "epochs": 3.0, "steps": 30, "better_than_baseline": True, "stopped_by": "epochs"})
    events = _events(tmp_path)
    records = _records(tmp_path)
    train = [r for r in records if "train_loss" in r]
    valid = [r for r in records if "valid_loss" in r]
    assert len(train) >= 9 and len(valid) == 3
    _assert_events_are_the_records(events, records)
    assert all(np.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in train)
    # the test figures after the run was scored, at its last step; how the run went is not a figure
    tests = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
             if tag.startswith("test/")}
    assert tests == {"test/accuracy": [(30, 0.75)], "test/baseline_accuracy": [(30, 0.5)],
                     "test/loss": [(30, 0.25)]}
    # a histogram of each parameter and of its last gradient, at each epoch end; the last is the model's
    ends = [r["step"] for r in valid]
    for name, value, grad in trainer.model.named_parameters():
        for kind, array in (("weights", value), ("gradients", grad)):
            histograms = events.Histograms(f"{kind}/{name}")
            assert [h.step for h in histograms] == ends, name
            last = histograms[-1].histogram_value
            assert (last.num, last.min, last.max) == (array.size, array.min(), array.max()), (kind, name)
            assert last.sum == pytest.approx(array.sum(), rel=1e-9, abs=1e-12)
            assert sum(last.bucket) == array.size
    assert len({events.Histograms("weights/rnn.W_hh_l0")[k].histogram_value.sum for k in range(3)}) == 3
    # the samples at each epoch end, preformatted; the last is what the trained model shows
    samples = events.Tensors("samples/text_summary")
    assert [e.step for e in samples] == ends
    trainer.model.eval()
    shown = trainer.task.show(trainer.model)
    assert _text(samples[-1]) == "\n".join("    " + line for line in shown.splitlines())
    # the figures as the PNG files they were: the loss curve (the run's last is loss.png) and the task's
    for tag in ("figures/loss", "figures/weights"):
        images = events.Images(tag)
        assert [i.step for i in images] == ends, tag
        assert all(i.encoded_image_string.startswith(PNG) for i in images)
        header = images[-1].encoded_image_string[16:24]
        assert (images[-1].width, images[-1].height) == struct.unpack(">II", header)
    assert events.Images("figures/loss")[-1].encoded_image_string == (tmp_path / CURVE_FILE).read_bytes()
    assert len({i.encoded_image_string for i in events.Images("figures/weights")}) == 3
    # the options as hyperparameters, the way of watching left out; the run ended well
    content = events.PluginTagToContent("hparams")
    start = hparams_metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
    options = {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
               for key, value in start.hparams.items()}
    assert options == {"task": "toy", "hidden": 8, "cell": "rnn", "epochs": 3, "lr": 0.01,
                       "optimizer": "adam", "clip_norm": 5.0, "seed": 0, "until_stopped": False}
    end = hparams_metadata.parse_session_end_info_plugin_data(content["_hparams_/session_end_info"])
    assert end.status == 1  # STATUS_SUCCESS


def test_the_callback_changes_nothing_of_the_run(tmp_path):
    alone = _trainer(tmp_path / "alone", ShowingTask())
    alone.fit()
    watched = _trainer(tmp_path / "watched", ShowingTask(), board=_board())
    watched.fit()
    _assert_same_run(tmp_path / "watched", tmp_path / "alone")
    assert _records(tmp_path / "watched")[-1]["valid_loss"] == _records(tmp_path / "alone")[-1]["valid_loss"]
    assert _events(tmp_path / "watched").Tensors("samples/text_summary")  # it did show, every epoch


def test_fit_on_arrays_writes_the_same(tmp_path):
    from rnnkit.models import ManyToOne
    from rnnkit.train import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 3))
    y = (x[:, :, 0].sum(axis=1) > 0).astype(int)
    result = fit(ManyToOne(2, 8, input_size=3, seed=0), x, y, out=tmp_path / "run", epochs=2, progress=False,
                 callbacks=[TensorBoardCallback()])
    events = _events(tmp_path / "run")
    assert [e.step for e in events.Scalars("valid/accuracy")] == [r["step"] for r in result.history]
    assert [e.value for e in events.Scalars("valid/accuracy")] == [
        np.float32(r["valid_accuracy"]) for r in result.history]
    start = hparams_metadata.parse_session_start_info_plugin_data(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    assert start.hparams["model"].string_value == "ManyToOne" and start.hparams["task"].string_value == "fit"
    assert "data" not in start.hparams  # arrays: no file to name


def test_a_show_that_draws_random_numbers_is_put_back_and_skipped(tmp_path, capsys):
    alone = _trainer(tmp_path / "alone", DrawingTask())
    alone.fit()
    watched = _trainer(tmp_path / "watched", DrawingTask(), board=_board())
    watched.fit()
    _assert_same_run(tmp_path / "watched", tmp_path / "alone")
    events = _events(tmp_path / "watched")
    assert "samples/text_summary" not in events.Tags()["tensors"]
    assert events.Images("figures/weights")  # the figures, which draw nothing, still are
    said = capsys.readouterr().err
    assert said.count("the task's samples drew random numbers from the model's generators") == 1


def test_showing_and_drawing_leave_every_module_in_its_mode(tmp_path):
    trainer = _trainer(tmp_path, ShowingTask(), board=_board())
    board = trainer.callbacks[0]
    board.on_train_begin(trainer)
    model = trainer.model
    model.train()
    model.head.eval()  # a mix, as a model being fine-tuned may hold: each module's own mode comes back
    modes = {name: module.training for name, module in model.named_modules()}
    board.on_epoch_end(trainer, 1)
    board.close()
    assert {name: module.training for name, module in model.named_modules()} == modes
    assert _events(tmp_path).Tensors("samples/text_summary")  # it did show, in eval mode (ShowingTask checks)


def test_a_show_that_fails_is_skipped_and_the_run_goes_on(tmp_path, capsys):
    trainer = _trainer(tmp_path, FailingTask(), board=_board())
    assert trainer.fit() in ("epochs", "early_stopping") and trainer.position.epoch >= 2  # past the failure
    events = _events(tmp_path)
    assert "samples/text_summary" not in events.Tags()["tensors"] and events.Images("figures/weights")
    said = capsys.readouterr().err
    expected = "tensorboard: the task's samples failed (RuntimeError: no test split here); not written"
    assert said.count(expected) == 1


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run with the callback: its parameters, best/ and event files."""
    directory = tmp_path_factory.mktemp("uninterrupted")
    _trainer(directory, board=_board()).fit()
    return directory


def _assert_same_events(directory, reference):
    """Each step once, as the run's own log has it (a resumed log keeps a mid-epoch validation
    and the training loss windows it saw), and histograms and options as the uninterrupted run."""
    got, expected = _events(directory), _events(reference)
    _assert_events_are_the_records(got, _records(directory))
    for tag in expected.Tags()["histograms"]:
        assert [(h.step, h.histogram_value.sum) for h in got.Histograms(tag)] == [
            (h.step, h.histogram_value.sum) for h in expected.Histograms(tag)], tag
    assert list(got.PluginTagToContent("hparams")) == list(expected.PluginTagToContent("hparams"))


@pytest.mark.parametrize("kill_at", [1, 3, 6])
def test_a_killed_run_resumes_exactly_with_its_events_once(reference, tmp_path, kill_at):
    board = _board()
    with faults.inject(f"kill@{kill_at}"), pytest.raises(faults.Killed):
        _trainer(tmp_path, board=board).fit()
    board.close()  # the worst case: every event of the killed run, past the checkpoint too, reached the disk
    resumed = _trainer(tmp_path, board=_board())
    if (tmp_path / "checkpoint.safetensors").is_file():
        resumed.resume()
    else:  # what the command and fit do: start over
        replace_earlier_run(tmp_path, "toy", None)
    resumed.fit()
    _assert_same_run(tmp_path, reference)
    _assert_same_events(tmp_path, reference)


@pytest.mark.parametrize("at", [7, 23])
def test_a_signalled_run_resumes_exactly_with_its_events_once(reference, tmp_path, at):
    stopped = _trainer(tmp_path, SignalledTask(signal.SIGINT, at), board=_board())
    assert stopped.fit() == "interrupted"
    resumed = _trainer(tmp_path, board=_board())
    resumed.resume()
    resumed.fit()
    _assert_same_run(tmp_path, reference)
    _assert_same_events(tmp_path, reference)
    assert len(list((tmp_path / TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 2  # one per process start


def test_a_fresh_run_replaces_the_events_of_the_earlier_one(tmp_path):
    _trainer(tmp_path, epochs=3, board=_board(), patience=None).fit()
    _trainer(tmp_path, epochs=1, board=_board(), patience=None).fit()
    events = _events(tmp_path)
    assert [e.step for e in events.Scalars("valid/loss")] == [10]
    assert [h.step for h in events.Histograms("weights/rnn.W_hh_l0")] == [10]


def test_forgetting_drops_later_steps_and_a_record_cut_short(tmp_path):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path), filename_suffix=".a") as writer:
        for step in range(1, 6):
            writer.add_scalar("x", float(step), step)
    with SummaryWriter(str(tmp_path), filename_suffix=".b") as writer:
        writer.add_scalar("x", 9.0, 9)
    first, second = sorted(tmp_path.glob("events.out.tfevents.*"))
    whole = first.read_bytes()
    first.write_bytes(whole + whole[-30:-3])  # a kill in the middle of a write
    forget_events_after(tmp_path, 3)
    assert not second.exists()  # nothing but its header was left
    kept = first.read_bytes()
    assert whole.startswith(kept) and len(kept) < len(whole)  # whole records, in order, the rest gone
    events = EventAccumulator(str(tmp_path)).Reload()
    assert [(e.step, e.value) for e in events.Scalars("x")] == [(1, 1.0), (2, 2.0), (3, 3.0)]


TINY = ["--epochs", "2", "--hidden", "16", "--batch-size", "32", "--no-progress"]


def test_the_command_writes_samples_figures_options_and_test_figures(tmp_path):
    """translate through the command: its samples, its attention figure, its options and the
    result line's test figures; --no-tensorboard writes none."""
    data = number_words_tsv(tmp_path / "pairs.tsv", 300, max_digits=4)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "rnnkit", "train", "translate", "--data", str(data), *TINY]
    done = subprocess.run([*command, "--out", str(run), "--tensorboard"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    events = _events(run)
    last = result["steps"]
    attention = events.Images("figures/attention")
    assert attention[-1].step == last and attention[-1].encoded_image_string.startswith(PNG)
    assert attention[-1].width > 200 and attention[-1].height > 200
    assert events.Images("figures/loss")[-1].encoded_image_string == (run / "loss.png").read_bytes()
    samples = events.Tensors("samples/text_summary")
    assert samples[-1].step == last and "(reference: " in _text(samples[-1])
    for key in ("exact_match", "cer", "baseline_cer"):
        assert [(e.step, e.value) for e in events.Scalars(f"test/{key}")] == [(last, np.float32(result[key]))]
    assert [e.value for e in events.Scalars("test/loss")] == [np.float32(result["test_loss"])]
    start = hparams_metadata.parse_session_start_info_plugin_data(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    assert start.hparams["attention"].string_value == "additive"
    assert start.hparams["hidden"].number_value == 16
    assert start.hparams["data"].string_value == str(data.resolve())
    plain = subprocess.run([*command, "--out", str(tmp_path / "plain"), "--no-tensorboard"],
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout.splitlines()[-1])["cer"] == result["cer"]  # the same run, watched or not
    assert not (tmp_path / "plain" / TENSORBOARD_DIR).exists()


def test_asking_for_tensorboard_without_tensorboardx_is_one_line(tmp_path, monkeypatch, capsys):
    from rnnkit.cli import main as cli
    from rnnkit.train import tensorboard

    monkeypatch.setattr(tensorboard, "available", lambda: False)
    code = cli.main(["train", "digits", "--out", str(tmp_path / "run"), "--epochs", "1", "--tensorboard"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        'rnnkit: error: --tensorboard: TensorBoard logs need tensorboardX: pip install "rnnkit[tensorboard]"']
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()
    # without the flag, no tensorboardX means no event files, and the run goes on
    assert tensorboard.for_command(None, tmp_path) is None


def test_rnnkit_imports_without_tensorboardx_and_the_writer_without_torch(tmp_path):
    code = f"""
import sys
import rnnkit, rnnkit.train, rnnkit.cli.main, rnnkit.train.tensorboard
assert "tensorboardX" not in sys.modules, "import rnnkit loaded tensorboardX"
from tests.train.test_trainer import CountingTask
from rnnkit.train import TrainConfig, Trainer
from rnnkit.train.tensorboard import TensorBoardCallback
task = CountingTask()
Trainer(task, task.build_model({{}}), {{}}, TrainConfig(epochs=1, progress=False), {str(tmp_path)!r},
        callbacks=[TensorBoardCallback()]).fit()
assert "tensorboardX" in sys.modules and "torch" not in sys.modules, "the writer loaded torch"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / TENSORBOARD_DIR).glob("events.out.tfevents.*"))
