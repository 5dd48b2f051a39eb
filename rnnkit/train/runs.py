"""A run directory: what is in it, how it is found, loaded, scored and replaced.

``DIR/checkpoint.safetensors`` (the latest state, for ``--resume``), ``DIR/best/`` (the best
epoch end's), ``config.json``, ``metrics.jsonl``, ``loss.png``, and for a run on the user's data
its own copy of the test split (the task's ``split_file``). The trainer writes it
(``rnnkit.train.trainer``), and ``train`` at its end the model card ``README.md``
(``rnnkit.train.card``); the command line and the exporter read it through here.

One writer: ``train`` holds :func:`writer_lock` on the directory for its whole life (a second
``train`` into it is refused at once); readers take no lock, and a rename beside them never mixes
two checkpoints (``rnnkit.io.checkpoint.load_checkpoint`` checks that its two reads saw one file).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.io import faults
from rnnkit.io.checkpoint import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CheckpointError,
    clean_leftovers,
    error_about,
    load_checkpoint,
    read_meta,
)
from rnnkit.train.schema import validate_run_meta

BEST_DIR = "best"
METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "loss.png"
LOCK_FILE = ".rnnkit-train.lock"
#: the largest magnitude a checkpoint's weight may have: a trained network's weights are O(1)
#: to O(100); at 1e6 every tanh and sigmoid it feeds is saturated, and products of two such
#: weights overflow float32's exp. Larger values are damage (or a diverged run the guard missed).
MAX_WEIGHT = 1e6

__all__ = ["BEST_DIR", "CHECKPOINT_FILE", "CONFIG_FILE", "CURVE_FILE", "LOCK_FILE", "MAX_WEIGHT", "METRICS_FILE",
           "RunLocked", "check_arrays", "check_data_unchanged", "checkpoint_to_score", "file_sha256", "has_checkpoint",
           "append_record", "load_trained", "log_data_notes", "replace_earlier_run", "upgrade", "writer_lock"]


class RunLocked(RuntimeError):
    """Another process is training into the run directory."""


@contextlib.contextmanager
def writer_lock(out_dir: str | Path) -> Iterator[None]:
    """Hold the run directory ``out_dir`` (created if need be) for one writer while the block
    runs: an exclusive, non-blocking ``flock`` on ``DIR/.rnnkit-train.lock``, which names the
    holder (PID, host, start time). The kernel drops the lock when the process ends, however it
    ends, so it is never stale. Raises :class:`RunLocked` naming the holder when another process
    has it; where the filesystem cannot lock, says so once on standard error and goes on."""
    import fcntl

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_FILE, "a+", encoding="utf-8") as handle:  # closing it releases the lock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                handle.seek(0)
                raise RunLocked(f"{out_dir} is being written by another train ({_holder(handle.read())}); wait "
                                f"for it to end or choose another --out") from None
            print(f"rnnkit: warning: {out_dir} cannot be locked ({error.strerror}); nothing stops a second train "
                  f"from writing into it at the same time", file=sys.stderr)
            locked = False
        if locked:  # the file stays after the run, naming its last holder
            handle.seek(0)
            handle.truncate()
            started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}) + "\n")
            handle.flush()
        yield


def _holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"process {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, TypeError, KeyError):  # the holder has the lock but has not written its name yet
        return "a process that is starting"


def check_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any], where: str | Path) -> None:
    """A run's arrays against its description: the model's, the carried state's and the
    optimizer's arrays of the description's dtype, and no weight beyond ``MAX_WEIGHT`` (their
    names and shapes are checked against the model when it loads them). Raises
    ``CheckpointError`` naming the array."""
    dtype = np.dtype(meta["dtype"])
    for name, array in arrays.items():
        of_model = name.startswith(("model.", "carry."))
        if (of_model or name.startswith("optimizer.") and array.dtype.kind == "f") and array.dtype != dtype:
            raise CheckpointError(f"checkpoint {where}: array {name!r}: expected {dtype} (the description's dtype), "
                                  f"got {array.dtype}")
        if name.startswith("model.") and array.size and float(np.max(np.abs(array))) > MAX_WEIGHT:
            raise CheckpointError(f"checkpoint {where}: array {name!r} holds {float(np.max(np.abs(array))):.3g}, "
                                  f"beyond any trained weight (at most {MAX_WEIGHT:g}): the file is damaged")


def upgrade(meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """A checkpoint's description (and ``arrays``, when given) as this version writes them, from
    ones an older version wrote (in place; ``meta`` returned). Every default for a key that did not
    exist yet and every renamed key is here: the rest of rnnkit reads checkpoints only as this
    version writes them. ``meta`` has passed ``validate_run_meta``."""
    options, task_meta = meta["model_options"], meta["task_meta"]
    options.setdefault("cell", "rnn")  # before --cell: an Elman RNN
    meta.setdefault("processes", 1)  # before mpiexec
    meta["position"].pop("saved_scores", None)  # before mid-epoch states stopped entering best/
    if arrays is not None and "carry" in arrays:  # before tuple states: one array, the hidden state
        arrays["carry.0"] = arrays.pop("carry")
        meta["carry"] = 1
    task = meta["task"]
    if task in ("charlm", "classify", "tag") and "tokenizer" not in task_meta and "vocab" in task_meta:
        task_meta["tokenizer"] = task_meta.pop("vocab")  # before tokenizers: a bare vocabulary, read as one
    if task == "charlm":
        options.setdefault("bptt_stride", None)  # before TBPTT(k1, k2): the stride was bptt
        options.setdefault("documents", "one")  # before resets: the text was one document
    if task == "classify":
        task_meta.setdefault("majority", None)  # before the majority-class baseline
        options.setdefault("ensemble", 1)  # before ensembles: one model
    if task == "tag":
        task_meta.setdefault("word_tag", {})  # before the most-frequent-tag baseline
    if task == "translate":
        options.setdefault("attention", "none")  # before attention
        task_meta.setdefault("max_len", 40)  # before the length limit was saved
    return meta


def has_checkpoint(out_dir: str | Path) -> bool:
    return (Path(out_dir) / CHECKPOINT_FILE).is_file()


def checkpoint_to_score(out_dir: str | Path) -> Path:
    """The directory whose checkpoint ``eval``, ``predict`` and ``sample`` use: ``best/`` (the
    best epoch end), unless the main checkpoint holds a state validated mid-epoch that scored
    better (a time budget or a signal ended the run there); the main one while there is no
    ``best/``. Only the headers are read; a damaged one is left for loading to report."""
    out_dir = Path(out_dir)
    best = out_dir / BEST_DIR
    if not has_checkpoint(best):  # none yet, or a best/ whose first write a kill interrupted
        return out_dir
    try:
        partial = read_meta(out_dir)["position"].get("partial_scores")
        best_scores = read_meta(best)["position"].get("best_scores")
        return out_dir if beats(partial, best_scores) else best
    except (CheckpointError, KeyError, TypeError, AttributeError):
        return best


def beats(partial: list | None, best: list | None) -> bool:
    """Whether mid-epoch scores ``partial`` beat epoch-end scores ``best`` (lists ranked as
    ``Trainer._ranking`` makes them)."""
    return partial is not None and (best is None or partial > best)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_trained(directory: str, score_file: str | None = None, need_data: bool = True):
    """The task and model saved in ``directory`` (its best checkpoint when there is one);
    ``score_file`` replaces the test split (``eval --data``). ``need_data=False`` (predict,
    sample) reads no data file: the checkpoint holds what they need. Scoring the training
    file's test split checks that the file is the one trained on (its SHA-256)."""
    from rnnkit.tasks import get_task  # the tasks sit above the trainer: imported when a run is loaded

    where = checkpoint_to_score(directory)
    arrays, meta = load_checkpoint(where)
    upgrade(validate_run_meta(meta, where), arrays)
    check_arrays(arrays, meta, where)
    task_class = get_task(meta["task"])
    data, valid, test = meta.get("data"), meta.get("valid_data"), meta.get("test_data")
    held_out = None if task_class.split_file is None else Path(directory) / task_class.split_file
    own_files = data is not None or test is not None
    if need_data and score_file is None and own_files and held_out is not None and held_out.is_file():
        if task_class.split_file_is_data:  # the run's own copy of its training file
            data = str(held_out)
        else:
            score_file = str(held_out)  # the run's own copy of its test split
    elif need_data and score_file is None:
        check_data_unchanged(meta)
    try:
        task = task_class(data=data, seed=meta["train_config"]["seed"], meta=meta["task_meta"], score_file=score_file,
                          options=meta["model_options"], load_data=need_data,
                          **({"valid_file": valid, "test_file": test} if score_file is None else {}))
        model = task.build_model(meta["model_options"], dtype=np.dtype(meta["dtype"]))
    except (KeyError, TypeError, AttributeError) as error:  # task metadata missing or of the wrong type
        raise CheckpointError(f"checkpoint {where}: its {meta['task']} metadata is incomplete or damaged "
                              f"({type(error).__name__}: {error})") from None
    try:
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
    except (ValueError, TypeError) as error:  # names or shapes that are not the described model's
        raise CheckpointError(f"checkpoint {where}: its arrays do not fit the model its description builds "
                              f"({error})") from None
    model.eval()
    return task, model, meta


def replace_earlier_run(out: Path, task: str, split_file: str | None) -> None:
    """Delete the run in ``out`` (a fresh run replaces it) before anything of the new one is
    written: a kill before the new run's first checkpoint must not leave the old one for eval or
    --resume to mistake for it."""
    if has_checkpoint(out):
        print(f"[{task}] replacing the earlier run in {out}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    for name in (CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, split_file):
        if name is not None:
            (out / name).unlink(missing_ok=True)
            clean_leftovers(out, (name,))
    from rnnkit.train.card import remove_card  # here: the card imports rnnkit.tasks, which sits above runs

    remove_card(out)  # the earlier run's card, not a README.md of the user's
    if (out / BEST_DIR).is_dir():
        shutil.rmtree(out / BEST_DIR)


def log_data_notes(out: str | Path, task: Any) -> None:
    """The first record of a fresh run's ``metrics.jsonl``: how its data was split and prepared,
    what was dropped, and the warnings (``task.notes``, ``task.warnings``, ``task.repeats``)."""
    append_record(out, {"step": 0, "data_notes": task.notes, "data_warnings": task.warnings, "repeats": task.repeats})


def append_record(out: str | Path, record: dict[str, Any]) -> None:
    """One line of ``DIR/metrics.jsonl``. Appended, not written aside: a line cut short (a kill,
    a full disk) is dropped when a resumed run rereads the file."""
    path = Path(out) / METRICS_FILE
    try:
        faults.before("write", path)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as error:
        raise error_about(error, path) from None


def check_data_unchanged(meta: dict) -> None:
    """For a run on the user's data without its own copy of the test split: the training file
    must be where it was, with the same bytes, for its test split to be the one held out."""
    path, expected = meta.get("data"), meta.get("data_sha256")
    if path is None or expected is None:  # the default data, or a run from before the check
        return
    if not Path(path).is_file():
        raise ValueError(f"the training data {path} was moved or deleted; its test split cannot be scored. "
                         f"Score a file with: rnnkit eval DIR --data FILE")
    if file_sha256(path) != expected:
        raise ValueError(f"the training data {path} changed since training (its SHA-256 differs), so its test "
                         f"split is not the one held out. Score it as a whole with: rnnkit eval DIR --data {path}")
