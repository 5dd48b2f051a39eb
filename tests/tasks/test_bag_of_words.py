"""classify's bag-of-words bar: TF-IDF + logistic regression, beside the majority class."""

import json
import random
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")
from rnnkit.tasks import get_task  # noqa: E402


def _data(path, count=400, seed=0):
    rng = random.Random(seed)
    words = ["red", "green", "blue", "cat", "dog", "runs", "sleeps", "the", "a", "big"]
    rows = []
    for _ in range(count):
        sentence = rng.choices(words, k=rng.randint(2, 6))
        rows.append(f"{'animal' if {'cat', 'dog'} & set(sentence) else 'other'}\t{' '.join(sentence)}\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def test_words_that_decide_the_label_give_bag_of_words_its_answer(tmp_path):
    task = get_task("classify")(data=str(_data(tmp_path / "data.tsv")))
    figures = task.bag_of_words("test")
    assert figures is not None and set(figures) == {"accuracy", "macro_f1"}
    assert figures["accuracy"] > 0.95 and task.baseline("test")["accuracy"] < 0.8  # the majority class: far less


def test_the_result_line_holds_it_beside_the_majority_class(tmp_path):
    done = subprocess.run([sys.executable, "-m", "rnnkit", "train", "classify", "--data",
                           str(_data(tmp_path / "data.tsv")), "--out", str(tmp_path / "run"), "--hidden", "8",
                           "--epochs", "1", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["baseline_tfidf_accuracy"] > 0.95 > result["baseline_accuracy"]
    assert "bag-of-words (TF-IDF of words and pairs + logistic regression): accuracy" in done.stdout
