"""The run directory through the command: SIGTERM/SIGINT leave a resumable checkpoint and say so,
a fresh run does not silently replace (or get mistaken for) another, and --resume refuses
options that would change the run it continues."""

import json
import signal
import subprocess
import sys
import time

import pytest


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    import pydoc_data.topics

    path = tmp_path_factory.mktemp("data") / "prose.txt"
    path.write_text("\n".join(pydoc_data.topics.topics.values())[:200_000], encoding="utf-8")
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_a_resumable_checkpoint_and_says_so(text, tmp_path, signum):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "rnnkit", "train", "charlm", "--data", str(text), "--out", str(out),
               "--hidden", "32", "--layers", "1", "--epochs", "50", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # training starts right after the model line
        if "model:" in line:
            break
    time.sleep(1.0)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "saved a resumable checkpoint" in stderr
    assert "Traceback" not in stderr
    resumed = rnnkit("train", "charlm", "--data", str(text), "--out", str(out), "--epochs", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr


def test_a_fresh_run_does_not_replace_another_unless_told(text, tmp_path):
    out = tmp_path / "run"
    first = rnnkit("train", "charlm", "--data", str(text), "--out", str(out), "--hidden", "16", "--epochs", "1")
    assert first.returncode == 0, first.stderr
    again = rnnkit("train", "charlm", "--data", str(text), "--out", str(out), "--hidden", "16", "--epochs", "1")
    assert again.returncode == 2
    assert "already holds a run (charlm, epoch 1); continue it with --resume, or start over with --overwrite" in again.stderr
    replaced = rnnkit("train", "charlm", "--data", str(text), "--out", str(out), "--hidden", "16", "--epochs", "1",
                      "--overwrite")
    assert replaced.returncode == 0 and "replacing the earlier run" in replaced.stderr
    refused = rnnkit("train", "charlm", "--data", str(text), "--out", str(out), "--epochs", "2", "--resume",
                     "--lr", "0.5", "--hidden", "64")
    assert refused.returncode == 2
    assert "these options differ: --hidden 64 (was 16); --lr 0.5 (was 0.002)" in refused.stderr
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is a file, not a directory" in rnnkit("train", "charlm", "--out", str(a_file)).stderr
    # what was saved is used: scoring needs no training
    assert json.loads(rnnkit("eval", str(out)).stdout.splitlines()[-1])["task"] == "charlm"


def test_a_run_needs_its_training_file_no_more(text, tmp_path):
    """eval scores the run's own copy of its test split; predict and sample read no data; a run
    without that copy (written before it existed) checks the training file's SHA-256."""
    data = tmp_path / "mine.txt"
    data.write_text(text.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    out = tmp_path / "run"
    trained = rnnkit("train", "charlm", "--data", str(data), "--out", str(out), "--hidden", "16", "--epochs", "1")
    assert trained.returncode == 0, trained.stderr
    bpc = json.loads(trained.stdout.splitlines()[-1])["bpc"]
    with open(data, "a", encoding="utf-8") as handle:
        handle.write("a line added after training\n")
    data.rename(tmp_path / "moved.txt")
    assert json.loads(rnnkit("eval", str(out)).stdout.splitlines()[-1])["bpc"] == bpc
    sampled = rnnkit("sample", str(out), "--length", "20")
    predicted = rnnkit("predict", str(out), "The ")
    assert sampled.returncode == 0 and predicted.returncode == 0, sampled.stderr + predicted.stderr
    (out / "held_out.txt").unlink()  # as a run from before the copy
    assert "was moved or deleted" in rnnkit("eval", str(out)).stderr
    (tmp_path / "moved.txt").rename(data)
    changed = rnnkit("eval", str(out))
    assert changed.returncode == 2 and "changed since training (its SHA-256 differs)" in changed.stderr
    assert rnnkit("eval", str(out), "--data", str(data)).returncode == 0  # a file scored as a whole: fine


@pytest.mark.parametrize("task", ["classify", "translate", "tag"])
def test_each_text_task_scores_its_own_held_out_copy(task, tmp_path):
    import random

    rng = random.Random(5)
    words = ["red", "green", "blue", "cat", "dog", "runs", "sleeps", "the", "a"]
    if task == "tag":
        tags = {"red": "ADJ", "green": "ADJ", "blue": "ADJ", "cat": "NOUN", "dog": "NOUN", "runs": "VERB",
                "sleeps": "VERB", "the": "DET", "a": "DET"}
        content = "\n".join("".join(f"{w}\t{tags[w]}\n" for w in rng.choices(words, k=rng.randint(2, 6)))
                            for _ in range(200))
    elif task == "translate":
        content = "".join(f"{' '.join(s)}\t{' '.join(reversed(s))}\n"
                          for s in (rng.choices(words, k=rng.randint(1, 4)) for _ in range(200)))
    else:
        content = "".join(f"{'animal' if s[0] in ('cat', 'dog') else 'other'}\t{' '.join(s)}\n"
                          for s in (rng.choices(words, k=rng.randint(1, 4)) for _ in range(200)))
    data = tmp_path / "data.tsv"
    data.write_text(content, encoding="utf-8")
    out = tmp_path / "run"
    trained = rnnkit("train", task, "--data", str(data), "--out", str(out), "--hidden", "8", "--epochs", "1")
    assert trained.returncode == 0, trained.stderr
    expected = json.loads(trained.stdout.splitlines()[-1])
    data.unlink()
    scored = rnnkit("eval", str(out))
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout.splitlines()[-1])
    for key, value in expected.items():
        if key in result and isinstance(value, float):
            assert result[key] == value, key  # metrics and baselines, exactly
