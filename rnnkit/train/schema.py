"""What a checkpoint's description must hold before anything uses it: every key the trainer
writes, its type and its range, and the few facts that tie them together (a run cannot have more
bad epochs than epochs). A damaged or edited checkpoint is a ``CheckpointError`` naming the key,
what was expected and what came, instead of a ``TypeError`` from deep inside (the task's own
metadata, vocabularies and scalers, is checked where it is read)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.io.checkpoint import CheckpointError

Check = tuple[Callable[[Any], bool], str]  # (accepts the value?, what was expected, in words)


def integer(low: int, most: int | None = None, null: bool = False) -> Check:
    def ok(value: Any) -> bool:
        if value is None:
            return null
        return isinstance(value, int) and not isinstance(value, bool) and value >= low and (most is None or value <= most)

    words = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    return ok, words + (f" up to {most:,}" if most is not None else "") + (" or null" if null else "")


def number(low: float = -math.inf, positive: bool = False, below: float | None = None, null: bool = False) -> Check:
    def ok(value: Any) -> bool:
        if value is None:
            return null
        return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and value >= low and (value > 0 or not positive) and (below is None or value < below))

    words = "a positive number" if positive else (f"a number >= {low:g}" if low > -math.inf else "a finite number")
    return ok, words + (f" below {below:g}" if below is not None else "") + (" or null" if null else "")


def of_type(kind: type | tuple[type, ...], words: str, null: bool = False) -> Check:
    return (lambda value: (null and value is None) or (isinstance(value, kind) and not (
        kind is not bool and isinstance(value, bool)))), words + (" or null" if null else "")


def scores(null: bool = True) -> Check:
    """Ranked metrics (``Trainer._ranking``): numbers, NaN and infinity included (a metric may be)."""
    return (lambda value: (null and value is None) or (isinstance(value, list) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))), "a list of numbers or null"


SECTIONS: dict[str, Check] = {"task": of_type(str, "a task name"), "task_meta": of_type(dict, "a JSON object"),
                              "model_options": of_type(dict, "a JSON object"), "dtype": of_type(str, "a dtype name"),
                              "train_config": of_type(dict, "a JSON object"), "position": of_type(dict, "a JSON object"),
                              "optimizer": of_type(dict, "a JSON object"), "rng": of_type(dict, "a JSON object"),
                              "data": of_type(str, "a path", null=True),
                              "valid_data": of_type(str, "a path", null=True),
                              "test_data": of_type(str, "a path", null=True),
                              "carry": integer(0, null=True)}  # how many arrays carry.0, carry.1, ... hold
#: the most units, layers, batch or window a run may have (the command refuses more): far
#: beyond memory already
MAX_SIZE = 1 << 20
TRAIN_CONFIG: dict[str, Check] = {
    "epochs": integer(1), "max_seconds": number(positive=True, null=True), "until_stopped": of_type(bool, "true or false"),
    "save_every_seconds": number(positive=True, null=True), "lr": number(positive=True),
    "optimizer": of_type(str, "an optimizer name"),
    "weight_decay": number(0.0, null=True), "clip_norm": number(positive=True, null=True),
    "patience": integer(1, null=True), "seed": integer(0, 2**32 - 1), "log_every": integer(1),
    "progress": of_type(bool, "true or false", null=True),
}
POSITION: dict[str, Check] = {
    "epoch": integer(0), "batch": integer(0), "step": integer(0), "seconds": number(0.0),
    "best": of_type((int, float), "a number", null=True), "best_scores": scores(), "partial_scores": scores(),
    "bad_epochs": integer(0), "history": (lambda value: isinstance(value, list) and all(isinstance(r, dict) for r in value),
                                          "a list of JSON objects"),
    "saved_scores": scores(),  # written before mid-epoch states stopped entering best/; ignored
}
#: the model options a task's model is built from, whichever task: their types and ranges
MODEL_OPTIONS: dict[str, Check] = {
    "cell": of_type(str, "a cell name"), "hidden": integer(1, MAX_SIZE), "layers": integer(1, MAX_SIZE),
    "embed": integer(1, MAX_SIZE), "batch_size": integer(1, MAX_SIZE), "bptt": integer(1, MAX_SIZE),
    "bptt_stride": integer(1, MAX_SIZE, null=True), "documents": of_type(str, "one, lines or paragraphs"),
    "window": integer(1, MAX_SIZE), "nonlinearity": of_type(str, "an activation name"), "dropout": number(0.0, below=1.0),
    "recurrent_dropout": number(0.0, below=1.0), "zoneout": number(0.0, below=1.0),
    "layer_norm": of_type(bool, "true or false"), "embed_dropout": number(0.0, below=1.0),
    "bidirectional": of_type(bool, "true or false"), "pooling": of_type(str, "a pooling name"),
    "ensemble": integer(1, MAX_SIZE),
    "attention": of_type(str, "an attention name"), "tokens": of_type(str, "a kind of tokens"),
    "source_tokens": of_type(str, "a kind of tokens", null=True), "target_tokens": of_type(str, "a kind of tokens", null=True),
    "min_freq": integer(1, null=True), "vocab_size": integer(1, null=True), "max_len": integer(1, null=True),
    "stack": integer(1, MAX_SIZE), "augment": of_type(bool, "true or false"),
}
#: options a model is built from without a default: a checkpoint of a task that has them must hold them
#: (cell and attention have defaults for runs saved before they existed)
REQUIRED_OPTIONS = ("hidden", "layers", "nonlinearity", "dropout", "bidirectional", "batch_size", "embed", "bptt",
                    "window", "pooling", "stack")


def validate_run_meta(meta: Any, where: str | Path) -> dict[str, Any]:
    """Check a checkpoint's description before anything uses it: every key the trainer writes,
    with its type and range. Raises ``CheckpointError`` naming the key; returns ``meta``."""
    from rnnkit.tasks import TASKS, get_task

    if not isinstance(meta, dict):
        _fail(where, "metadata", "a JSON object", type(meta).__name__)
    optional = ("carry", "valid_data", "test_data")  # written by later versions, or not at all
    _check_section(meta, SECTIONS, "", where, required=[key for key in SECTIONS if key not in optional])
    if meta["task"] not in TASKS:
        _fail(where, "task", f"one of {', '.join(TASKS)}", meta["task"])
    if meta["dtype"] not in ("float32", "float64"):
        _fail(where, "dtype", "float32 or float64", meta["dtype"])
    defaults = get_task(meta["task"]).defaults
    _check_section(meta["model_options"], MODEL_OPTIONS, "model_options.", where,
                   required=[key for key in REQUIRED_OPTIONS if key in defaults])
    _check_section(meta["train_config"], TRAIN_CONFIG, "train_config.", where, required=("epochs", "lr", "optimizer", "seed"),
                   closed=True)
    _check_section(meta["position"], POSITION, "position.", where, required=("epoch", "batch", "step"), closed=True)
    position = meta["position"]
    # every epoch takes at least one step, and a bad epoch is an epoch
    if position["batch"] > position["step"]:
        _fail(where, "position.batch", f"at most position.step ({position['step']})", position["batch"])
    if position["step"] < position["epoch"] + position["batch"]:
        _fail(where, "position.step", f"at least epoch + batch ({position['epoch'] + position['batch']})", position["step"])
    if position.get("bad_epochs", 0) > position["epoch"]:
        _fail(where, "position.bad_epochs", f"at most position.epoch ({position['epoch']})", position["bad_epochs"])
    return meta


def _check_section(section: dict, checks: dict[str, Check], prefix: str, where: str | Path, required=(),
                   closed: bool = False) -> None:
    """Each key of ``checks`` present in ``section`` passes its check; ``required`` ones are
    present; with ``closed``, no other key is (it would reach a constructor as an unknown
    keyword)."""
    for key in required:
        if key not in section:
            _fail(where, prefix + key, checks[key][1], "nothing")
    for key, value in section.items():
        if key in checks and not checks[key][0](value):
            _fail(where, prefix + key, checks[key][1], value)
        elif closed and key not in checks:
            _fail(where, prefix + key, f"no such key (the keys are {', '.join(checks)})", value)


def _fail(where: str | Path, key: str, expected: str, got: Any) -> None:
    raise CheckpointError(f"checkpoint {where}: {key}: expected {expected}, got {got!r:.80} "
                          f"(the checkpoint is damaged or not a run of this rnnkit)")
