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
