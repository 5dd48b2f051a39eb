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


PREDICT_INPUTS = {"classify": ["the red cat"], "translate": ["the red cat"], "tag": ["the red cat"],
                  "forecast": ["1", "2.5", "3"]}


@pytest.mark.parametrize("task", ["classify", "translate", "tag", "forecast"])
def test_each_task_on_a_file_needs_the_file_no_more(task, tmp_path):
    """eval scores the run's own copy (forecast: of the whole series, which its test split is
    scored after); predict and export read no data: deleting the training file changes nothing."""
    import random

    rng = random.Random(5)
    words = ["red", "green", "blue", "cat", "dog", "runs", "sleeps", "the", "a"]
    if task == "forecast":
        content = "".join(f"{50 + 40 * rng.random():.3f}\n" for _ in range(300))
    elif task == "tag":
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
    predicted = rnnkit("predict", str(out), *PREDICT_INPUTS[task])
    assert predicted.returncode == 0, predicted.stderr
    data.unlink()
    scored = rnnkit("eval", str(out))
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout.splitlines()[-1])
    for key, value in expected.items():
        if key in result and isinstance(value, float):
            assert result[key] == value, key  # metrics and baselines, exactly
    again = rnnkit("predict", str(out), *PREDICT_INPUTS[task])
    assert (again.returncode, again.stdout) == (0, predicted.stdout), again.stderr
    exported = rnnkit("export", str(out), "--out", str(tmp_path / "model.onnx"))
    assert exported.returncode == 0 and list(tmp_path.glob("model*.onnx")), exported.stderr  # seq2seq: two graphs


#: a short real run that checkpoints every few batches: two layers with dropout between them
#: (a random generator to restore), batches of 8 (180 steps an epoch), two epochs
KILLED_RUN = ["train", "digits", "--hidden", "8", "--layers", "2", "--dropout", "0.2", "--batch-size", "8",
              "--epochs", "2", "--save-every", "0.02", "--no-progress"]


def _outcome(out, stdout):
    """What a finished run leaves: its result line (less what a clock or the path decides)
    and every array of its main checkpoint and of best/."""
    from rnnkit.io.checkpoint import load_checkpoint

    result = json.loads(stdout.splitlines()[-1])
    for key in ("seconds", "checkpoint"):
        result.pop(key)
    arrays = {f"{name or 'main'}: {key}": value for name in ("", "best") for key, value in load_checkpoint(out / name)[0].items()}
    return result, arrays


def _assert_same_outcome(got, expected):
    import numpy as np

    assert got[0] == expected[0]
    assert got[1].keys() == expected[1].keys()
    for key, value in got[1].items():
        np.testing.assert_array_equal(value, expected[1][key], err_msg=key)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference outcome, checked to be reproducible (two runs, the same bits), and how
    long training takes from the model line to the exit."""
    outcomes, seconds = [], []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp("uninterrupted") / name
        process = subprocess.Popen([sys.executable, "-m", "rnnkit", *KILLED_RUN, "--out", str(out)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_training(process)
        started = time.perf_counter()
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        seconds.append(time.perf_counter() - started)
        outcomes.append(_outcome(out, stdout))
    _assert_same_outcome(outcomes[1], outcomes[0])
    return outcomes[0], min(seconds)


def _wait_for_training(process):
    for line in process.stderr:  # training starts right after the model line
        if "model:" in line:
            return
    raise AssertionError("the run ended before training")


@pytest.mark.slow
@pytest.mark.parametrize("signum, seed", [
    pytest.param(signum, seed, id=f"{signum.name}-seed{seed}") for signum, seed in
    [(signal.SIGKILL, 0), (signal.SIGKILL, 1), (signal.SIGKILL, 2), (signal.SIGKILL, 3),
     (signal.SIGTERM, 4), (signal.SIGTERM, 5), (signal.SIGINT, 6), (signal.SIGINT, 7)]])
def test_a_real_run_signalled_at_a_random_moment_resumes_exactly(uninterrupted, tmp_path, signum, seed):
    """A real `rnnkit train`, signalled after a seeded random delay (anywhere from its first
    batch to its exit: a step, a checkpoint write, a validation, the final scoring), then
    resumed (or started again, when it died before its first checkpoint), ends with the result
    and the parameters of the uninterrupted run, bit for bit. SIGTERM and SIGINT stop it with a
    message and a checkpoint to resume from."""
    import random

    from rnnkit.train.runs import has_checkpoint

    reference, seconds = uninterrupted
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", *KILLED_RUN, "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_training(process)
    time.sleep(random.Random(seed).uniform(0, seconds))
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    finished = stdout.rstrip().endswith("}")  # the result line: the signal came as the process exited
    if signum != signal.SIGKILL and not finished:
        assert process.returncode == 128 + signum, stderr
        assert f"rnnkit: stopped by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr, stderr
        assert "resum" in stderr.strip().splitlines()[-1] and has_checkpoint(out), stderr
    again = [*KILLED_RUN, "--out", str(out)] + (["--resume"] if has_checkpoint(out) else [])
    finished = rnnkit(*again)
    assert finished.returncode == 0, finished.stderr
    _assert_same_outcome(_outcome(out, finished.stdout), reference)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_outside_the_training_loop_stops_with_a_message(tmp_path, monkeypatch, capsys, signum):
    """Before training starts or while the result is scored, SIGTERM (which used to kill the
    process silently) and SIGINT stop the command with a line that says what was saved."""
    import os

    import rnnkit.cli.main as cli
    from rnnkit.train.trainer import Trainer

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises before this ends

    out = tmp_path / "run"
    monkeypatch.setattr(Trainer, "fit", signalled)  # the model is built, nothing trained or saved yet
    assert cli.main(["train", "digits", "--out", str(out), "--hidden", "4", "--epochs", "1"]) == 128 + signum
    assert capsys.readouterr().err.splitlines()[-1] == f"rnnkit: stopped by {signal.Signals(signum).name}; nothing was saved"
    monkeypatch.undo()
    assert cli.main(["train", "digits", "--out", str(out), "--hidden", "4", "--epochs", "1", "--overwrite"]) == 0
    monkeypatch.setattr(cli, "judge", signalled)  # trained and saved: scoring it
    assert cli.main(["train", "digits", "--out", str(out), "--hidden", "4", "--epochs", "1", "--resume"]) == 128 + signum
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"rnnkit: stopped by {signal.Signals(signum).name}; the last checkpoint in {out} stands (continue with: "
        f"rnnkit train digits --out {out} --resume)")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the command's handlers are gone


def test_a_fresh_run_that_fails_on_its_input_keeps_the_earlier_run(tmp_path, monkeypatch, capsys):
    """The default runs/TASK is replaced by a fresh run, but only once the new run's data is
    read and its model built: a mistyped command used to delete the earlier run, then fail."""
    import rnnkit.cli.main as cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "onetoone", "--hidden", "4", "--epochs", "1"]) == 0
    checkpoint = (tmp_path / "runs" / "onetoone" / "checkpoint.safetensors").read_bytes()
    for mistake in (["--data", "nowhere.txt"], ["--layers", "2"]):  # data, then the model, refused
        assert cli.main(["train", "onetoone", "--hidden", "4", *mistake]) == 2
    assert (tmp_path / "runs" / "onetoone" / "checkpoint.safetensors").read_bytes() == checkpoint
    assert "replacing the earlier run" not in capsys.readouterr().err
