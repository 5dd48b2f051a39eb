"""benchmarks/probes.py: how it classifies a command's end, and its fastest category (misuse of
the library) run whole: every case a clean error or a call that works."""

from pathlib import Path

import pytest

from tests.benchmarks.scripts import load_script

probes = load_script("probes")


@pytest.mark.parametrize("code, stdout, stderr, outcome", [
    (2, "", "rnnkit: error: --lr: expected a positive number, got nan\n", "clean"),
    (2, "", "[digits] model: 1 parameters\nrnnkit: error: training diverged at epoch 1, step 1\n", "clean"),
    (2, "", "rnnkit: error: 'int' object is not subscriptable\n", "cryptic"),
    (1, "", "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n", "traceback"),
    (None, "", "", "hang"),
    (0, '{"accuracy": 0.5}\n', "", "silent"),
    (2, "", "a warning\nrnnkit: error: x\n", "other"),
    (-9, "", "", "other"),
])
def test_classify_a_command(code, stdout, stderr, outcome):
    assert probes.classify(probes.Ran(code, stdout, stderr))[0] == outcome


def test_exit_0_is_ok_when_the_result_is_right():
    ran = probes.Ran(0, '{"accuracy": 0.5}\n', "")
    assert probes.classify(ran, lambda ran: probes.result_of(ran) == {"accuracy": 0.5})[0] == "ok"


def test_a_command_runs_forked_and_a_hang_is_killed(tmp_path):
    ran = probes.run(["eval", str(tmp_path)], timeout=60)
    assert ran.code == 2 and "checkpoint: expected a file" in ran.stderr
    slow = probes.run(["eval", str(tmp_path)], timeout=0.5, hook=lambda: __import__("time").sleep(5))
    assert slow.code is None


def test_library_misuse_is_all_clean_errors():
    results = probes.api_cases(probes.Workspace(Path("."), Path("."), {}, timeout=20))
    assert len(results) > 100
    assert [r for r in results if r.outcome not in ("clean", "ok")] == []
