import json

import numpy as np
import pytest

pytest.importorskip("safetensors")
from rnnkit.io import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from rnnkit.io.checkpoint import CHECKPOINT_FILE, CONFIG_FILE  # noqa: E402


def test_round_trip_keeps_arrays_dtypes_and_meta(tmp_path):
    arrays = {"rnn.W_hh_l0": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.array([3], np.int64)}
    meta = {"task": "charlm", "rng": {"state": 2**100}, "vocab": ["a", "b"]}
    save_checkpoint(tmp_path, arrays, meta)
    loaded, loaded_meta = load_checkpoint(tmp_path)
    assert loaded_meta == meta
    for name, value in arrays.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)
    assert json.loads((tmp_path / CONFIG_FILE).read_text()) == meta


def test_nan_is_refused_and_the_good_checkpoint_survives(tmp_path):
    save_checkpoint(tmp_path, {"w": np.ones(3)}, {"epoch": 1})
    with pytest.raises(ValueError, match=r"array 'w' holds NaN/inf; refusing to overwrite"):
        save_checkpoint(tmp_path, {"w": np.array([1.0, np.nan, 0.0])}, {"epoch": 2})
    arrays, meta = load_checkpoint(tmp_path)
    assert meta == {"epoch": 1}
    np.testing.assert_array_equal(arrays["w"], 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE, CONFIG_FILE]  # no temp files left


def test_missing_and_corrupt_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"expected a file .*checkpoint.safetensors, found none"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, {"w": np.ones(3)}, {"epoch": 1})
    data = (tmp_path / CHECKPOINT_FILE).read_bytes()
    (tmp_path / CHECKPOINT_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"is corrupt or not a safetensors file"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match=r"corrupt"):
        load_checkpoint(tmp_path)


def test_a_flipped_byte_in_the_arrays_is_caught_by_the_checksum(tmp_path):
    arrays = {"w": np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8), "b": np.arange(4, dtype=np.float64)}
    save_checkpoint(tmp_path, arrays, {"epoch": 1})
    data = bytearray((tmp_path / CHECKPOINT_FILE).read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    for offset in (header, header + 37, len(data) - 1):  # first, a middle and the last data byte
        damaged = bytearray(data)
        damaged[offset] ^= 0x01  # one bit: still finite numbers, so only the checksum can tell
        (tmp_path / CHECKPOINT_FILE).write_bytes(bytes(damaged))
        with pytest.raises(CheckpointError, match=r"do not match their checksum"):
            load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT_FILE).write_bytes(bytes(data))
    load_checkpoint(tmp_path)  # the undamaged file still loads


def test_leftovers_of_interrupted_writes_are_cleaned(tmp_path):
    from rnnkit.io.checkpoint import clean_leftovers

    save_checkpoint(tmp_path, {"w": np.ones(3)}, {"epoch": 1})
    stale = [tmp_path / f".{CHECKPOINT_FILE}.abc123.tmp", tmp_path / f".{CONFIG_FILE}.x.tmp"]
    for path in stale:
        path.write_bytes(b"half a write")
    assert sorted(clean_leftovers(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE, CONFIG_FILE]


def test_a_changed_description_is_caught_by_its_checksum(tmp_path):
    """A flip inside the JSON description that leaves valid JSON (a digit of the learning rate)
    would be read as another run's settings: its own checksum catches it."""
    from rnnkit.io.checkpoint import read_meta

    save_checkpoint(tmp_path, {"w": np.ones(3)}, {"train_config": {"lr": 0.003}})
    data = (tmp_path / CHECKPOINT_FILE).read_bytes()
    at = data.index(b"0.003")  # in the header's copy of the description
    (tmp_path / CHECKPOINT_FILE).write_bytes(data[:at] + b"0.007" + data[at + 5:])
    for read in (load_checkpoint, read_meta):
        with pytest.raises(CheckpointError, match=r"its description does not match its checksum"):
            read(tmp_path)


def test_read_meta_reads_the_header_only(tmp_path):
    from rnnkit.io.checkpoint import read_meta

    save_checkpoint(tmp_path, {"w": np.ones(3)}, {"epoch": 4})
    assert read_meta(tmp_path) == {"epoch": 4}
    with pytest.raises(CheckpointError, match=r"no readable rnnkit description"):
        read_meta(tmp_path / "elsewhere")


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path):
    from rnnkit.io.checkpoint import atomic_write, clean_leftovers

    target = tmp_path / "held_out.txt"
    target.write_text("old")

    def failing(temporary):
        open(temporary, "w").write("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, failing)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["held_out.txt"]
    (tmp_path / ".held_out.txt.k1ll3d.tmp").write_text("half")  # as a kill -9 leaves it
    assert clean_leftovers(tmp_path, ("held_out.txt",)) == [tmp_path / ".held_out.txt.k1ll3d.tmp"]


def test_a_device_is_written_into_never_replaced():
    """``--out /dev/null`` discards; a rename over it would have replaced the device with a file."""
    import os
    import stat

    from rnnkit.io.checkpoint import WriteError, write_bytes

    write_bytes("/dev/null", b"discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if os.path.exists("/dev/full"):
        with pytest.raises(WriteError, match="No space left on device: '/dev/full'"):
            write_bytes("/dev/full", b"x")
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_rename_between_the_header_and_the_arrays_is_read_again(tmp_path, monkeypatch):
    """A writer's rename between a reader's two reads (the header, then the arrays): the reader
    notices the other file and reads again, never pairing one checkpoint's header with another's
    arrays (which its checksum would call damage)."""
    import safetensors.numpy

    from rnnkit.io import checkpoint

    save_checkpoint(tmp_path, {"w": np.zeros(3)}, {"step": 1})
    real, renamed = safetensors.numpy.load_file, []

    def load_after_a_rename(path):
        if not renamed:  # another process writes step 2 just now
            renamed.append(True)
            save_checkpoint(tmp_path, {"w": np.ones(3)}, {"step": 2})
        return real(path)

    monkeypatch.setattr(safetensors.numpy, "load_file", load_after_a_rename)
    arrays, meta = checkpoint.load_checkpoint(tmp_path)
    assert renamed and meta == {"step": 2} and np.array_equal(arrays["w"], np.ones(3))

    def always_renamed(path):
        save_checkpoint(tmp_path, {"w": np.ones(3)}, {"step": 3})
        return real(path)

    monkeypatch.setattr(safetensors.numpy, "load_file", always_renamed)
    with pytest.raises(CheckpointError, match=r"was replaced 5 times while it was read; is a train still writing it"):
        checkpoint.load_checkpoint(tmp_path)


def test_checkpoints_take_the_users_umask(tmp_path):
    """As any file the user writes: mode 0o666 less the umask (not a temporary file's 0o600)."""
    import os

    previous = os.umask(0o022)
    try:
        save_checkpoint(tmp_path, {"w": np.zeros(3)}, {"step": 1})
    finally:
        os.umask(previous)
    for name in (CHECKPOINT_FILE, CONFIG_FILE):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
