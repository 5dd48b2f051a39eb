"""What a user meets when two things happen at once or the machine runs short: a second train
into a busy run directory, checkpoints changed behind their checksums, a full disk, a kill at a
rename, empty inputs to predict, a diverged run."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.cli.test_cli import assert_one_line_error

pytest.importorskip("safetensors")

#: a short digits run: about a second of training, checkpoints every epoch
RUN = ["--hidden", "8", "--epochs", "3", "--no-progress"]


def rnnkit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def _result(completed):
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    return {k: v for k, v in result.items() if k not in ("seconds", "checkpoint")}


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """A digits run with nothing else happening: the figures the others must reproduce."""
    return _result(rnnkit("train", "digits", "--out", str(tmp_path_factory.mktemp("alone") / "run"), *RUN))


def _temporaries(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob(".*")
                  if p.is_file() and p.name != ".rnnkit-train.lock")


def test_a_second_train_into_a_busy_directory_is_refused_at_once(tmp_path):
    out = tmp_path / "same"
    long_run = ["train", "digits", "--out", str(out), "--hidden", "8", "--epochs", "400", "--patience", "1000",
                "--no-progress"]
    first = subprocess.Popen([sys.executable, "-m", "rnnkit", *long_run], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / ".rnnkit-train.lock").is_file() or not (out / ".rnnkit-train.lock").read_text():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.stderr else ""
            time.sleep(0.05)
        for flags in ([], ["--overwrite"], ["--resume"]):
            second = rnnkit("train", "digits", "--out", str(out), "--epochs", "1", *flags)
            assert first.poll() is None  # refused while the first still trains, not after it
            assert_one_line_error(second, rf"{out} is being written by another train \(process {first.pid} on .+, "
                                          rf"started .+\); wait for it to end or choose another --out")
    finally:
        first.kill()
        first.communicate()


def test_the_first_of_two_runs_finishes_as_if_alone(alone, tmp_path):
    out = tmp_path / "same"
    first = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "digits", "--out", str(out), *RUN],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = rnnkit("train", "digits", "--out", str(out), "--overwrite", *RUN)
    stdout, stderr = first.communicate(timeout=300)
    if second.returncode == 0:  # the first ended before the second began: one after the other is fine too
        assert _result(second) == alone
    else:
        assert "is being written by another train" in second.stderr
    assert _result(subprocess.CompletedProcess([], first.returncode, stdout, stderr)) == alone


def _rewrite_raw(directory, arrays=None, metadata=None):
    """Write the checkpoint file in ``directory`` again with its arrays or its header's metadata
    changed, as a tool that knows safetensors but not rnnkit's checks would."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    path = str(directory / "checkpoint.safetensors")
    with safe_open(path, framework="np") as handle:
        header = handle.metadata()
    tensors = load_file(path)
    save_file(arrays(tensors) if arrays else tensors, path, metadata=metadata(header) if metadata else header)


def _rewrite_consistent(directory, arrays=None, meta=None):
    """Write it again through rnnkit's own writer: the checksums agree with the change."""
    from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint

    tensors, description = load_checkpoint(directory)
    save_checkpoint(directory, arrays(tensors) if arrays else tensors, meta(description) if meta else description)


def _scaled(tensors):
    name = next(k for k in tensors if k.startswith("model."))
    return {**tensors, name: tensors[name] * np.float32(1.5)}


def _as_float16(tensors):
    return {k: v.astype(np.float16) if k.startswith("model.") else v for k, v in tensors.items()}


def _huge(tensors):
    name = next(k for k in tensors if k.startswith("model."))
    huge = tensors[name].copy()
    huge.flat[0] = 1e38
    return {**tensors, name: huge}


TAMPERED = {
    "checksum removed": (lambda d: _rewrite_raw(d, arrays=_scaled, metadata=lambda m: {
        k: v for k, v in m.items() if k != "rnnkit-sha256"}), r"its header lacks the checksum 'rnnkit-sha256'"),
    "float16 arrays": (lambda d: _rewrite_consistent(d, arrays=_as_float16),
                       r"array 'model\..+': expected float32 \(the description's dtype\), got float16"),
    "dtype that lies": (lambda d: _rewrite_consistent(d, meta=lambda m: {**m, "dtype": "float64"}),
                        r"array '(model|optimizer)\..+': expected float64 \(the description's dtype\), got float32"),
    "a weight of 1e38": (lambda d: _rewrite_consistent(d, arrays=_huge),
                         r"array 'model\..+' holds 1e\+38, beyond any trained weight"),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    _result(rnnkit("train", "digits", "--out", str(out), *RUN))
    return out


@pytest.mark.parametrize("change", list(TAMPERED))
def test_a_changed_checkpoint_is_refused_by_every_command(trained, tmp_path, change):
    tamper, message = TAMPERED[change]
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for directory in (run, run / "best"):
        tamper(directory)
    for command in (["eval", str(run)], ["predict", str(run), "0"], ["sample", str(run)],
                    ["export", str(run), "--out", str(tmp_path / "m.onnx")],
                    ["train", "digits", "--out", str(run), "--resume", "--epochs", "4"]):
        assert_one_line_error(rnnkit(*command), message)
    assert not (tmp_path / "m.onnx").exists()


def test_a_full_disk_is_one_line_and_the_checkpoint_before_it_stands(alone, tmp_path):
    out = tmp_path / "run"
    # the 9th write falls in the second epoch: the first epoch's checkpoint is on disk by then
    full = rnnkit("train", "digits", "--out", str(out), *RUN, env={"RNNKIT_FAULTS": "ENOSPC@9"})
    assert full.returncode == 3, full.stderr
    errors = [line for line in full.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in full.stderr, full.stderr
    assert errors[0].startswith(f"rnnkit: error: no space left on device writing {out}"), errors[0]
    assert errors[0].endswith(f"is intact (free space and resume with: rnnkit train digits --out {out} --resume)")
    assert _temporaries(out) == []
    resumed = rnnkit("train", "digits", "--out", str(out), *RUN, "--resume")
    assert _result(resumed) == alone


@pytest.mark.parametrize("at", [1, 4, 9])
def test_a_kill_at_a_rename_resumes_to_the_same_run(alone, tmp_path, at):
    out = tmp_path / "run"
    killed = rnnkit("train", "digits", "--out", str(out), *RUN, env={"RNNKIT_FAULTS": f"kill@{at}"})
    assert killed.returncode == -9, killed.stderr
    assert _temporaries(out)  # what a kill leaves: a temporary file, removed on the next start
    flags = ["--resume"] if (out / "checkpoint.safetensors").is_file() else []
    assert _result(rnnkit("train", "digits", "--out", str(out), *RUN, *flags)) == alone
    assert _temporaries(out) == []


def test_a_write_refused_elsewhere_names_the_file_asked_for(trained, tmp_path):
    result = rnnkit("export", str(trained), "--out", "/proc/x.onnx")
    assert result.returncode == 3, result.stderr
    assert "writing /proc/x.onnx;" in result.stderr and ".tmp" not in result.stderr, result.stderr


def test_a_diverged_run_is_not_better_than_the_baseline():
    """A test loss of 1.8e31 with a fine accuracy (seen: a digits run whose weights blew up) is
    a diverged model, whatever its accuracy says."""
    from rnnkit.cli.main import judge

    fine = judge({"accuracy": 0.9, "loss": 0.3}, {"accuracy": 0.1}, ["accuracy"])
    diverged = judge({"accuracy": 0.9, "loss": 1.8e31}, {"accuracy": 0.1}, ["accuracy"])
    assert fine.better and not diverged.better and "training diverged" in diverged.sentence
    assert not judge({"accuracy": 0.9, "loss": float("nan")}, {"accuracy": 0.1}, ["accuracy"]).better


@pytest.mark.parametrize("task", ["charlm", "classify", "translate", "tag"])
def test_predict_refuses_empty_and_blank_inputs(task, tmp_path):
    out = tmp_path / task
    trained = rnnkit("train", task, "--out", str(out), "--hidden", "8", "--max-seconds", "1", "--epochs", "1",
                     "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert_one_line_error(rnnkit("predict", str(out), "a fine input", ""),
                          rf"predict: input 2 is empty; the {task} task predicts from a ")
    assert_one_line_error(rnnkit("predict", str(out), "   "), r"predict: input 1 is blank")
