import json
from pathlib import Path

from rnnkit.data.cache import cache_dir, cached_json


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RNNKIT_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "rnnkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "rnnkit"


def test_cached_json_builds_once_and_rebuilds_on_new_key_or_corruption(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"values": [1, 2, 3]}

    assert cached_json("thing", {"v": 1}, build) == {"values": [1, 2, 3]}
    assert cached_json("thing", {"v": 1}, build) == {"values": [1, 2, 3]}
    assert len(calls) == 1
    files = list(tmp_path.glob("thing-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["data"] == {"values": [1, 2, 3]}
    cached_json("thing", {"v": 2}, build)
    assert len(calls) == 2
    files[0].write_text("{not json")
    assert cached_json("thing", {"v": 1}, build) == {"values": [1, 2, 3]}
    assert len(calls) == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_unwritable_cache_still_returns_data(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("RNNKIT_CACHE", str(blocker / "sub"))  # a directory cannot be made under a file
    assert cached_json("thing", {"v": 1}, lambda: [4]) == [4]
    assert not Path(blocker / "sub").exists()
