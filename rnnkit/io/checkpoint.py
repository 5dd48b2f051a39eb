"""Checkpoints: one safetensors file holding every array, with the JSON description (config,
vocabulary, optimizer scalars, RNG state, metrics) in its metadata; plus a readable copy of
that JSON beside it.

Writes are atomic: a temporary file in the same directory is written, flushed to disk and renamed
over the old one, so a crash mid-write, or a refused write, leaves the previous checkpoint
intact. Arrays that hold NaN or infinity are refused, so a diverged run never replaces a good
checkpoint. The arrays and the description each carry a SHA-256 checksum in the header
(safetensors has none), so bytes changed after writing are caught on reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CHECKPOINT_FILE = "checkpoint.safetensors"
CONFIG_FILE = "config.json"
_METADATA_KEY = "rnnkit"
_CHECKSUM_KEY = "rnnkit-sha256"
_META_CHECKSUM_KEY = "rnnkit-meta-sha256"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt or not rnnkit's."""


def _safetensors():
    try:
        from safetensors import numpy as safetensors_numpy
        from safetensors import safe_open
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('checkpoints need safetensors: pip install "rnnkit[train]"') from error
    return safetensors_numpy, safe_open


def atomic_write(path: str | os.PathLike, write) -> None:
    """Write the file ``path`` all or nothing: ``write(temporary)`` fills a file beside it, which
    is flushed to disk and renamed over ``path``; a kill at any moment leaves the old file (and
    at most a hidden ``.NAME.*.tmp`` leftover, see :func:`clean_leftovers`)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb+") as written:  # on disk before the rename makes it the checkpoint
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems cannot open a directory; the rename still happened
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def clean_leftovers(directory: str | os.PathLike, names: tuple[str, ...] = (CHECKPOINT_FILE, CONFIG_FILE)) -> list[Path]:
    """Remove the temporary files of writes of ``names`` that a kill interrupted; returns what
    was removed."""
    directory = Path(directory)
    removed = []
    for name in names:
        for leftover in directory.glob(f".{name}.*.tmp"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def header(arrays: dict[str, np.ndarray], text: str) -> dict[str, str]:
    """The safetensors metadata of a checkpoint: the description ``text`` (JSON) and the
    checksums of the arrays and of that text."""
    return {_METADATA_KEY: text, _CHECKSUM_KEY: checksum(arrays),
            _META_CHECKSUM_KEY: hashlib.sha256(text.encode()).hexdigest()}


def _description(metadata: dict[str, str], path: Path) -> dict[str, Any]:
    """The JSON description in a file's safetensors metadata, its checksum checked (a file
    written before that checksum has none to check)."""
    if _METADATA_KEY not in metadata:
        raise CheckpointError(f"checkpoint {path}: expected rnnkit metadata in the safetensors header, found none")
    text = metadata[_METADATA_KEY]
    if _META_CHECKSUM_KEY in metadata and hashlib.sha256(text.encode()).hexdigest() != metadata[_META_CHECKSUM_KEY]:
        raise CheckpointError(f"checkpoint {path}: its description does not match its checksum (the file was changed "
                              f"or damaged after it was written)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"checkpoint {path}: metadata is not valid JSON ({error})") from None


def save_checkpoint(directory: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` (JSON-serialisable) to ``directory`` atomically."""
    safetensors_numpy, _ = _safetensors()
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise ValueError(f"save_checkpoint: array {name!r} holds NaN/inf; refusing to overwrite the checkpoint")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta, indent=2, sort_keys=True)
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    atomic_write(
        directory / CHECKPOINT_FILE,
        lambda tmp: safetensors_numpy.save_file(contiguous, tmp, metadata=header(contiguous, text)),
    )
    atomic_write(directory / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return directory / CHECKPOINT_FILE


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The JSON description of the checkpoint in ``directory``, from the file's header alone
    (the arrays are neither read nor checked: :func:`load_checkpoint` does that)."""
    _, safe_open = _safetensors()
    path = Path(directory) / CHECKPOINT_FILE
    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # missing, damaged, or not rnnkit's: several types
        raise CheckpointError(f"checkpoint {path}: no readable rnnkit description ({type(error).__name__})") from None
    return _description(metadata, path)


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(arrays, meta)``.

    Raises :class:`CheckpointError` naming the file and what is wrong with it.
    """
    safetensors_numpy, safe_open = _safetensors()
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"checkpoint: expected a file {path}, found none (train first, or check the path)")
    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
        arrays = safetensors_numpy.load_file(str(path))
    except Exception as error:  # safetensors raises several types for a damaged file
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file: {error}") from error
    meta = _description(metadata, path)
    if _CHECKSUM_KEY in metadata and checksum(arrays) != metadata[_CHECKSUM_KEY]:
        raise CheckpointError(f"checkpoint {path}: its arrays do not match their checksum (the file was changed or "
                              f"damaged after it was written)")
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise CheckpointError(f"checkpoint {path}: array {name!r} holds NaN/inf")
    return arrays, meta
