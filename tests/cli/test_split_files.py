"""--valid and --test: a user's own validation and test files, kept by resume and eval; and the
checks for validation data that repeats the training data."""

import json
import random
import subprocess
import sys

import pytest

from tests.cli.test_cli import assert_one_line_error

pytest.importorskip("safetensors")

WORDS = ["red", "green", "blue", "cat", "dog", "runs", "sleeps", "the", "a", "big", "small", "old"]
TAGS = {"red": "ADJ", "green": "ADJ", "blue": "ADJ", "big": "ADJ", "small": "ADJ", "old": "ADJ", "cat": "NOUN",
        "dog": "NOUN", "runs": "VERB", "sleeps": "VERB", "the": "DET", "a": "DET"}


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


def _examples(task, count, seed):
    rng = random.Random(seed)
    sentences = [rng.choices(WORDS, k=rng.randint(2, 7)) for _ in range(count)]
    if task == "tag":
        return "\n".join("".join(f"{w}\t{TAGS[w]}\n" for w in s) for s in sentences)
    if task == "translate":
        return "".join(f"{' '.join(s)}\t{' '.join(reversed(s))}\n" for s in sentences)
    if task == "classify":
        return "".join(f"{'animal' if {'cat', 'dog'} & set(s) else 'other'}\t{' '.join(s)}\n" for s in sentences)
    return "\n".join(" ".join(s) for s in sentences) + "\n"  # charlm


def _result(completed):
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.mark.parametrize("task", ["charlm", "classify", "translate", "tag"])
def test_valid_and_test_files_are_the_splits_and_are_kept(task, tmp_path):
    files = {name: tmp_path / f"{name}.txt" for name in ("data", "valid", "test", "other")}
    for seed, (name, path) in enumerate(files.items()):
        path.write_text(_examples(task, 300 if name == "data" else 80, seed), encoding="utf-8")
    out = tmp_path / "run"
    common = ["--data", str(files["data"]), "--out", str(out), "--hidden", "8", "--no-progress"]
    trained = rnnkit("train", task, *common, "--epochs", "1", "--valid", str(files["valid"]), "--test",
                     str(files["test"]))
    result = _result(trained)
    assert f"validation: {files['valid']} (--valid)" in trained.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["valid_data"], config["test_data"]) == (str(files["valid"]), str(files["test"]))
    primary = next(key for key in result if key != "task" and isinstance(result[key], float))
    resumed = rnnkit("train", task, *common[2:], "--epochs", "2", "--resume")  # --valid from the checkpoint
    assert f"validation: {files['valid']} (--valid)" in resumed.stderr
    result = _result(resumed)
    assert_one_line_error(rnnkit("train", task, *common[2:], "--epochs", "3", "--resume", "--valid",
                                 str(files["other"])),
                          rf"--resume: {out} was trained with --valid {files['valid']}, not {files['other']}")
    files["test"].unlink()  # eval scores the run's own copy of the test file
    assert _result(rnnkit("eval", str(out)))[primary] == result[primary]


def test_a_validation_text_copied_from_training_is_a_warning_with_its_share(tmp_path):
    text = "".join(f"line {i:04d} of a document that goes on for a while, about {WORDS[i % 12]}\n"
                   for i in range(3000))
    data, valid = tmp_path / "data.txt", tmp_path / "valid.txt"
    data.write_text(text, encoding="utf-8")
    valid.write_text("".join(text.splitlines(keepends=True)[100:400]), encoding="utf-8")  # all of it in training
    trained = rnnkit("train", "charlm", "--data", str(data), "--valid", str(valid), "--out", str(tmp_path / "run"),
                     "--hidden", "8", "--max-seconds", "1", "--epochs", "1", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert ("warning: 100% of the validation text's 300 lines of 30+ characters appear verbatim in the training "
            "text") in trained.stderr
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0 and first["repeats"] == {"valid_lines_in_train": 1.0}
    assert any("appear verbatim" in warning for warning in first["data_warnings"])


def test_labelled_examples_repeated_across_splits_are_dropped_and_counted(tmp_path):
    rows = [f"{'animal' if i % 2 else 'other'}\tsentence number {i} about a {WORDS[i % 12]}\n" for i in range(400)]
    data, valid = tmp_path / "data.tsv", tmp_path / "valid.tsv"
    data.write_text("".join(rows), encoding="utf-8")
    valid.write_text("".join(rows[:30] + [f"other\tsomething new {i}\n" for i in range(20)]), encoding="utf-8")
    trained = rnnkit("train", "classify", "--data", str(data), "--valid", str(valid), "--out",
                     str(tmp_path / "run"), "--hidden", "8", "--epochs", "1", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    dropped = first["repeats"]["valid_in_train"]  # the 30 copied rows less those the data's test split drew
    assert 20 <= dropped <= 30
    assert f"dropped {dropped} of 50 valid examples whose input repeats a training example" in trained.stderr
    assert f"valid {50 - dropped}," in trained.stderr  # the split as trained on


def test_tasks_with_fixed_splits_refuse_the_files(tmp_path):
    valid = tmp_path / "valid.txt"
    valid.write_text("1\n2\n3\n")
    for task in ("digits", "forecast"):
        assert_one_line_error(rnnkit("train", task, "--valid", str(valid), "--out", str(tmp_path / task)),
                              rf"{task}: --valid and --test do not apply")


def test_a_split_that_only_repeats_training_is_kept_with_a_warning(tmp_path):
    rows = [f"{'animal' if i % 2 else 'other'}\tsentence number {i} about a {WORDS[i % 12]}\n" for i in range(300)]
    data, valid = tmp_path / "data.tsv", tmp_path / "valid.tsv"
    data.write_text("".join(rows), encoding="utf-8")
    from rnnkit.data import load_classify

    training = load_classify(str(data), seed=0)["train"] + load_classify(str(data), seed=0)["valid"]
    # nothing new (the data's carved validation trains once --valid is given): dropping would leave nothing
    valid.write_text("".join(f"{label}\t{text}\n" for text, label in training[:40]), encoding="utf-8")
    trained = rnnkit("train", "classify", "--data", str(data), "--valid", str(valid), "--out",
                     str(tmp_path / "run"), "--hidden", "8", "--epochs", "1", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert "warning: every one of the 40 valid examples repeats a training input" in trained.stderr
