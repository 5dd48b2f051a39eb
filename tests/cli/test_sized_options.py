"""What the amount of training data decides when the user does not: a small charlm text gets
dropout between layers and on the embedding, said in the run's output and notes; an option given
on the command line is left as given; the bundled text is large enough to be left alone."""

import json
import subprocess
import sys

import pytest


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_text(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text("To be, or not to be, that is the question.\n" * 400, encoding="utf-8")
    return path


def test_a_small_text_is_regularized_and_says_why(small_text, tmp_path):
    out = tmp_path / "run"
    result = rnnkit("train", "charlm", "--data", str(small_text), "--out", str(out), "--max-seconds", "1",
                    "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "regularization: dropout 0.25 between layers and 0.1 on the embedded characters" in result.stderr
    assert "characters per parameter (below 2.0" in result.stderr
    options = json.loads((out / "config.json").read_text())["model_options"]
    assert (options["dropout"], options["embed_dropout"]) == (0.25, 0.1)
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert any("regularization:" in note for note in first["data_notes"])


def test_an_option_given_is_left_as_given(small_text, tmp_path):
    out = tmp_path / "run"
    result = rnnkit("train", "charlm", "--data", str(small_text), "--out", str(out), "--max-seconds", "1",
                    "--no-progress", "--dropout", "0")
    assert result.returncode == 0, result.stderr
    assert "regularization:" not in result.stderr
    options = json.loads((out / "config.json").read_text())["model_options"]
    assert (options["dropout"], options["embed_dropout"]) == (0.0, 0.0)


def test_the_bundled_text_is_large_enough_to_be_left_alone():
    from rnnkit.tasks import get_task

    task = get_task("charlm")(seed=0)
    options = {**task.defaults}
    assert task.sized_options(options, set()) is options
    assert not any("regularization:" in note for note in task.notes)


def test_a_small_labelled_set_gets_more_epochs_and_says_why(tmp_path):
    data = tmp_path / "small.tsv"
    words = ["good fine great", "bad awful poor", "plain usual so-so"]
    data.write_text("".join(f"{label}\t{words[k % 3]} {k}\n" for k, label in
                            ((k, ("pos", "neg", "mid")[k % 3]) for k in range(300))), encoding="utf-8")
    out = tmp_path / "run"
    result = rnnkit("train", "classify", "--data", str(data), "--out", str(out), "--max-seconds", "1",
                    "--no-progress")
    assert result.returncode == 0, result.stderr
    # 240 training texts in batches of 64: 4 per epoch, 48 updates in the default 12 epochs
    assert "epochs: up to 200 (not 12), because 4 batches per epoch make 48 updates" in result.stderr
    config = json.loads((out / "config.json").read_text())["train_config"]
    assert config["epochs"] == 200
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert any("epochs: up to 200" in note for note in first["data_notes"])
    given = rnnkit("train", "classify", "--data", str(data), "--out", str(out), "--overwrite", "--epochs", "2",
                   "--no-progress")
    assert given.returncode == 0, given.stderr
    assert "epochs: up to" not in given.stderr
    assert json.loads((out / "config.json").read_text())["train_config"]["epochs"] == 2


def test_the_bundled_sets_have_updates_enough_to_be_left_alone():
    from rnnkit.tasks import get_task

    for name in ("classify", "tag"):
        task = get_task(name)(seed=0)
        epochs = task.defaults["epochs"]
        assert task.sized_epochs(epochs) == epochs
        assert not any("epochs: up to" in note for note in task.notes)
