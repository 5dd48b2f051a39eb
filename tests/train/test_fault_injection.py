"""Faults at every write the trainer makes (rnnkit.io.faults, in the spirit of SQLite's test
harness): a full disk (or a quota, a read-only file system) at the Nth write, and a kill just
before the Nth rename. After each, the error names the file, nothing half-written is left, every
checkpoint that stands loads, and resuming gives bit for bit the uninterrupted run."""

import pytest

pytest.importorskip("safetensors")
from rnnkit.io import faults  # noqa: E402
from rnnkit.io.checkpoint import WriteError, load_checkpoint  # noqa: E402
from rnnkit.train.runs import BEST_DIR, has_checkpoint  # noqa: E402
from tests.train.test_crash_safety import _assert_same_run, _finish, _trainer  # noqa: E402


def _count(moment):
    """How many writes or renames a whole run makes."""

    def count(directory):
        with faults.inject("kill@1000000" if moment == "rename" else "ENOSPC@1000000"):
            _trainer(directory).fit()
            return faults.count(moment)

    return count


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    directory = tmp_path_factory.mktemp("uninterrupted")
    writes = _count("write")(directory)
    renames = _count("rename")(tmp_path_factory.mktemp("counted"))
    return directory, writes, renames


def _temporaries(directory):
    return sorted(p.name for p in directory.rglob(".*") if p.is_file() and p.name != ".rnnkit-train.lock")


def _standing_checkpoints_load(directory):
    for where in (directory, directory / BEST_DIR):
        if has_checkpoint(where):
            load_checkpoint(where)  # raises if damaged


def test_the_run_writes_through_the_fault_layer(uninterrupted):
    _, writes, renames = uninterrupted
    # per epoch at least: the metrics lines, the checkpoint and its config.json; best/ at least once
    assert writes >= 4 * 2 + 2 and renames >= 4 * 2 + 2 and writes > renames


@pytest.mark.parametrize("error", ["ENOSPC", "EDQUOT", "EROFS", "EACCES"])
def test_a_failed_write_names_its_file_and_loses_nothing(uninterrupted, tmp_path, error):
    reference, writes, _ = uninterrupted
    for at in range(1, writes + 1) if error == "ENOSPC" else (1, writes // 2, writes):
        directory = tmp_path / f"{error}-{at}"
        with faults.inject(f"{error}@{at}"), pytest.raises(WriteError) as raised:
            _trainer(directory).fit()
        assert raised.value.errno is not None and str(directory) in raised.value.filename
        assert ".tmp" not in raised.value.filename  # the file the user knows, not the temporary one
        assert _temporaries(directory) == [], at
        _standing_checkpoints_load(directory)
        _finish(directory)  # space freed: resume
        _assert_same_run(directory, reference)


def test_a_kill_before_any_rename_resumes_exactly(uninterrupted, tmp_path):
    reference, _, renames = uninterrupted
    for at in range(1, renames + 1):
        directory = tmp_path / f"kill-{at}"
        with faults.inject(f"kill@{at}"), pytest.raises(faults.Killed):
            _trainer(directory).fit()
        assert _temporaries(directory), at  # the kill left the temporary file, as a real one does
        _standing_checkpoints_load(directory)
        _finish(directory)
        assert _temporaries(directory) == [], at  # the next start removed it
        _assert_same_run(directory, reference)


def test_a_plan_is_checked():
    with pytest.raises(ValueError, match=r"RNNKIT_FAULTS: expected kill@N or one of ENOSPC, .* got 'ENOSPC@0'"):
        faults.inject("ENOSPC@0").__enter__()
    with pytest.raises(ValueError, match="got 'boom@3'"):
        faults.inject("boom@3").__enter__()
