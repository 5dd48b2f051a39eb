"""Checkpoints: one safetensors file holding every array, with the JSON description (config,
vocabulary, optimizer scalars, RNG state, metrics) in its metadata; plus a readable copy of
that JSON beside it.

Writes are atomic: a temporary file in the same directory is written, flushed to disk and renamed
over the old one, so a crash mid-write, or a refused write, leaves the previous checkpoint
intact. Arrays that hold NaN or infinity are refused, so a diverged run never replaces a good
checkpoint. The arrays and the description each carry a SHA-256 checksum in the header
(safetensors has none), and a file without them is refused as damaged.

What the checksums guard: accidental change (a bit flipped on disk or in transit, a truncated or
half-copied file, an edit by a tool that does not know them). What they cannot guard: someone who
changes the file and computes them again; a checkpoint is as trustworthy as its source. Loading
one never runs code: safetensors holds arrays only, the description is JSON, and both are checked
before use. A reader checks that the file it read its header from is the one it read its arrays
from: a writer's rename beside it never gives it the header of one checkpoint and the arrays of
another.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rnnkit.io import faults

CHECKPOINT_FILE = "checkpoint.safetensors"
CONFIG_FILE = "config.json"
_METADATA_KEY = "rnnkit"
_CHECKSUM_KEY = "rnnkit-sha256"
_META_CHECKSUM_KEY = "rnnkit-meta-sha256"
_MAX_HEADER = 100_000_000  # safetensors' own bound on a header's length
_READ_ATTEMPTS = 5


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt or not rnnkit's."""


class WriteError(OSError):
    """A file rnnkit writes could not be written (a full disk, a quota, a read-only file system,
    no permission): ``filename`` names it; nothing of it was left behind."""


def _safetensors():
    try:
        from safetensors import numpy as safetensors_numpy
        from safetensors import safe_open
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('checkpoints need safetensors: pip install "rnnkit[train]"') from error
    return safetensors_numpy, safe_open


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Write the file ``path`` all or nothing: ``write(temporary)`` fills a file beside it, which
    is flushed to disk and renamed over ``path``; a kill at any moment leaves the old file (and
    at most a hidden ``.NAME.*.tmp`` leftover, see :func:`clean_leftovers`). A character device or
    a pipe (``/dev/null``) is written into, not replaced. A failed write
    (a full disk, no permission) removes the temporary file and raises ``OSError`` naming
    ``path``, not the temporary file."""
    path = Path(path)
    if path.is_char_device() or path.is_fifo():  # /dev/null, a pipe: written into, never replaced
        try:
            write(str(path))
        except OSError as error:
            raise error_about(error, path) from None
        return
    if path.exists() and not (path.is_file() or path.is_dir()):  # a block device, a socket: never
        raise WriteError(errno.EINVAL, "not a regular file", str(path))
    temporary = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
    try:  # mode 0o666 less the umask, as any file the user writes (mkstemp's would be 0o600)
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as error:
        raise error_about(error, path) from None
    try:
        faults.before("write", path)
        mode = os.stat(temporary).st_mode
        write(temporary)
        if os.stat(temporary).st_mode != mode:  # a writer that replaced the file (safetensors' 0o600)
            os.chmod(temporary, mode)
        with open(temporary, "rb+") as written:  # on disk before the rename makes it the checkpoint
            os.fsync(written.fileno())
        faults.before("rename", path)
        os.replace(temporary, path)
    except faults.Killed:  # a kill cleans nothing up
        raise
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise error_about(error, path) from None
        raise
    _fsync_directory(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """:func:`atomic_write` of ``data``."""
    atomic_write(path, lambda temporary: Path(temporary).write_bytes(data))


def error_about(error: OSError, path: Path) -> OSError:
    """``error`` as a :class:`WriteError` about ``path`` (the file the user knows, not a temporary
    one), its errno kept."""
    if error.errno is None or isinstance(error, WriteError):
        return error
    return WriteError(error.errno, error.strerror or os.strerror(error.errno), str(path))


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


def clean_leftovers(directory: str | os.PathLike, names: tuple[str, ...] | None = None) -> list[Path]:
    """Remove the temporary files that killed writes left in ``directory``: those of
    :func:`atomic_write` for the files ``names`` (every file when None), and those of
    safetensors' own writer (``.tmpXXXXXX``, left by earlier versions of rnnkit, which let it
    write the file); returns what was removed. Only for a directory this process writes alone."""
    directory = Path(directory)
    patterns = [".*.tmp"] if names is None else [f".{name}.*.tmp" for name in names]
    removed = []
    for pattern in [*patterns, ".tmp" + "[0-9A-Za-z]" * 6]:
        for leftover in directory.glob(pattern):
            if leftover.is_file():
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
    """The JSON description in a file's safetensors metadata, its checksums there and the
    description's checked."""
    if _METADATA_KEY not in metadata:
        raise CheckpointError(f"checkpoint {path}: expected rnnkit metadata in the safetensors header, found none")
    for key in (_CHECKSUM_KEY, _META_CHECKSUM_KEY):
        if not isinstance(metadata.get(key), str):
            raise CheckpointError(f"checkpoint {path}: its header lacks the checksum {key!r} (the file was damaged, "
                                  f"or changed by a tool that does not write it)")
    text = metadata[_METADATA_KEY]
    if hashlib.sha256(text.encode()).hexdigest() != metadata[_META_CHECKSUM_KEY]:
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
    metadata = header(contiguous, text)

    def write(temporary: str) -> None:
        try:  # safetensors writes through a temporary file of its own: a kill may leave it (clean_leftovers)
            safetensors_numpy.save_file(contiguous, temporary, metadata=metadata)
        except Exception as error:  # a SafetensorError that carries the system's: "... (os error 28)"
            code = re.search(r"\(os error (\d+)\)", str(error))
            if code is None:
                raise
            raise OSError(int(code[1]), os.strerror(int(code[1]))) from None

    atomic_write(directory / CHECKPOINT_FILE, write)
    write_bytes(directory / CONFIG_FILE, (text + "\n").encode("utf-8"))
    return directory / CHECKPOINT_FILE


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The JSON description of the checkpoint in ``directory``, from the file's header alone
    (the arrays are neither read nor checked: :func:`load_checkpoint` does that)."""
    path = Path(directory) / CHECKPOINT_FILE
    return _description(_read_header(path), path)


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(arrays, meta)``.

    Raises :class:`CheckpointError` naming the file and what is wrong with it.
    """
    safetensors_numpy, _ = _safetensors()
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"checkpoint: expected a file {path}, found none (train first, or check the path)")
    # The header and the arrays are read in two opens (safetensors' reader, mapped, is the
    # fastest): both of one file when the path named the same file before and after.
    for _ in range(_READ_ATTEMPTS):
        before = _identity(path)
        metadata = _read_header(path)
        try:
            arrays = safetensors_numpy.load_file(str(path))
        except Exception as error:  # safetensors raises several types for a damaged file
            raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file: {error}") from error
        if _identity(path) == before:
            break
    else:
        raise CheckpointError(f"checkpoint {path} was replaced {_READ_ATTEMPTS} times while it was read; is a "
                              f"train still writing it?")
    meta = _description(metadata, path)
    if checksum(arrays) != metadata[_CHECKSUM_KEY]:
        raise CheckpointError(f"checkpoint {path}: its arrays do not match their checksum (the file was changed or "
                              f"damaged after it was written)")
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise CheckpointError(f"checkpoint {path}: array {name!r} holds NaN/inf")
    return arrays, meta


def _identity(path: Path) -> tuple[int, ...]:
    """What changes when a rename puts another file at ``path``."""
    try:
        stat = path.stat()
    except OSError as error:
        raise CheckpointError(f"checkpoint {path}: {error.strerror}") from None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _read_header(path: Path) -> dict[str, str]:
    try:
        with open(path, "rb") as handle:
            return _header(handle.read(8), handle, path)
    except OSError as error:
        raise CheckpointError(f"checkpoint {path}: no readable rnnkit description ({error.strerror})") from None


def _header(size: bytes, rest: BinaryIO, path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header: ``size`` its first 8 bytes, ``rest`` the
    file after them."""
    length = int.from_bytes(size, "little") if len(size) == 8 else -1
    if not 0 < length <= _MAX_HEADER:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file (header length "
                              f"{length if length >= 0 else 'missing'})")
    try:
        header = json.loads(rest.read(length))
        metadata = header.get("__metadata__") or {}
    except (ValueError, AttributeError):
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file (its header is not "
                              f"a JSON object)") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint {path} is corrupt: its safetensors metadata is not a JSON object")
    return metadata
