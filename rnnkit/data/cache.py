"""A small on-disk cache for datasets that are slow to build (parsing, generation).

The cache lives in a user directory, never inside the installed package:
``$RNNKIT_CACHE`` if set, else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``. Entries are
JSON, or NumPy's ``.npz`` for arrays (never pickle), written atomically, and keyed by a hash of everything the content depends on
(source file, its size and mtime, the builder's format version), so a changed source rebuilds.
A cache that cannot be read or written is skipped: the data is then built every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """The cache directory (not created here)."""
    explicit = os.environ.get("RNNKIT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rnnkit"


def file_key(path: Path) -> dict[str, Any]:
    """What identifies a source file's content cheaply: its path, size and mtime."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cached_json(name: str, key: dict[str, Any], build: Callable[[], Any]) -> Any:
    """Return ``build()``, cached as ``<cache_dir>/<name>-<hash of key>.json``.

    ``build`` must return a JSON-able value (lists come back as lists, tuples as lists).
    """
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.json"
    try:
        with open(path, encoding="utf-8") as handle:
            entry = json.load(handle)
        if entry.get("key") == key:
            return entry["data"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # missing or unreadable: rebuild
    data = build()
    _write_atomic(path, {"key": key, "data": data})
    return data


def cached_arrays(name: str, key: dict[str, Any], build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return ``build()`` (a dict of NumPy arrays), cached as ``<cache_dir>/<name>-<hash>.npz``
    with its key beside the arrays; loaded without pickle."""
    import numpy as np

    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["__key__"]) == text:
                return {k: stored[k] for k in stored.files if k != "__key__"}
    except (OSError, ValueError, KeyError):
        pass  # missing, unreadable or another key: rebuild
    data = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp.npz", dir=path.parent)
        os.close(fd)
        try:
            np.savez(tmp, __key__=np.array(text), **data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # caching is an optimisation only
    return data


def _write_atomic(path: Path, entry: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # read-only home, full disk: caching is an optimisation only
