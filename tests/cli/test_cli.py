"""The command line's error paths, run as a user runs them: in a subprocess, checking the exit
status and the one-line message on standard error."""

import subprocess
import sys


def rnnkit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_one_line_error(result, pattern):
    import re

    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_help_lists_commands():
    result = rnnkit("--help")
    assert result.returncode == 0
    for command in ("train", "eval", "sample", "predict"):
        assert command in result.stdout
    train_help = rnnkit("train", "--help")
    assert "--max-seconds" in train_help.stdout and "--resume" in train_help.stdout


def test_unknown_task():
    assert_one_line_error(rnnkit("train", "poetry"), r"rnnkit: error: argument TASK: invalid choice: 'poetry'")


def test_missing_command_and_bad_number():
    assert_one_line_error(rnnkit(), r"rnnkit: error: the following arguments are required: command")
    assert_one_line_error(rnnkit("train", "charlm", "--epochs", "many"), r"argument --epochs: invalid int value: 'many'")


def test_eval_without_checkpoint(tmp_path):
    assert_one_line_error(rnnkit("eval", str(tmp_path)), r"checkpoint: expected a file .*checkpoint.safetensors, found none")


def test_corrupt_checkpoint(tmp_path):
    (tmp_path / "checkpoint.safetensors").write_bytes(b"not a checkpoint at all")
    assert_one_line_error(rnnkit("eval", str(tmp_path)), r"checkpoint .* is corrupt or not a safetensors file")


def test_resume_without_checkpoint(tmp_path):
    assert_one_line_error(rnnkit("train", "charlm", "--out", str(tmp_path / "run"), "--resume"),
                          r"--resume: no checkpoint in .*run; train without --resume first")


def test_missing_data_file(tmp_path):
    assert_one_line_error(rnnkit("train", "classify", "--data", str(tmp_path / "nope.tsv"), "--out", str(tmp_path / "r")),
                          r"nope.tsv")
