"""Train a model on the arrays you hold (the Keras habit), on the command's own trainer.

``fit(model, x, y)`` gives a run what ``rnnkit train`` gives: a run directory with safetensors
checkpoints, exact resume after a kill (``resume=True``), early stopping on the validation metric,
the divergence guard, the progress bar, ``metrics.jsonl`` and ``loss.png``, callbacks
(:mod:`rnnkit.train.callbacks`), one writer per directory. ``evaluate`` and ``predict`` score and
run a model on arrays.

Arrays are batch first, as users hold them: ``x`` is ``(B, T, F)`` real values, or ``(B, T)``
token ids for a model with an embedding, or a list of ``B`` sequences of any lengths (padded
here; ``lengths`` come from them). Padded arrays take ``lengths`` ``(B,)``; without them every
sequence is ``T`` long. ``y`` says what is learned, by the model's loss and shape:

| model | loss | ``y`` | metric |
|---|---|---|---|
| ``ManyToOne`` | cross-entropy | ``(B,)`` class ids | accuracy |
| ``ManyToOne`` | mse | ``(B,)`` or ``(B, K)`` values | mse |
| ``ManyToMany`` | cross-entropy | ``(B, T)`` class ids, or a list of per-step sequences | accuracy over valid steps |
| ``ManyToMany`` | mse | ``(B, T)`` or ``(B, T, K)`` values | mse over valid steps |
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import bucket_batches, pad_batch
from rnnkit.io.checkpoint import load_checkpoint
from rnnkit.models.base import Model
from rnnkit.models.ensemble import Ensemble
from rnnkit.models.sequence import ManyToMany, ManyToOne
from rnnkit.optim import Optimizer, Schedule
from rnnkit.tasks.base import Task
from rnnkit.train.callbacks import Callback
from rnnkit.train.card import RunFacts, write_card
from rnnkit.train.runs import checkpoint_to_score, has_checkpoint, replace_earlier_run, writer_lock
from rnnkit.train.tensorboard import for_command
from rnnkit.train.trainer import TrainConfig, Trainer

__all__ = ["FitResult", "evaluate", "fit", "predict"]

#: the arrays scored at once by ``evaluate`` and ``predict``: bounds their memory
EVAL_BATCH = 512


@dataclass
class FitResult:
    """What ``fit`` did: why it stopped, where the run is, its validation records and the best
    one (whose weights the model holds on return, unless ``restore_best=False``)."""

    reason: str
    out: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


@dataclass
class _Arrays:
    """One split, time major: inputs ``(T, B, ...)``, lengths ``(B,)`` (None: all ``T``),
    targets (per sequence ``(B, ...)``, per step ``(T, B, ...)``)."""

    x: np.ndarray
    lengths: np.ndarray | None
    y: np.ndarray | None


def fit(model: Model, x: Any, y: Any, *, lengths: Any = None, valid: tuple | None = None, valid_split: float = 0.1,
        out: str | Path = "runs/fit", epochs: int = 10, max_seconds: float | None = None, batch_size: int = 32,
        optimizer: str = "adam", lr: float = 1e-3, weight_decay: float | None = None, clip: float | None = 5.0,
        patience: int | None = 5, seed: int = 0, resume: bool = False, overwrite: bool = False, restore_best: bool = True,
        progress: bool | None = None, callbacks: Sequence[Callback] = (), save_every: float | None = 600.0,
        tensorboard: bool | None = None, schedule: Callable[[Optimizer], Schedule] | None = None,
        monitor: str | None = None) -> FitResult:
    """Train ``model`` (a ``ManyToOne`` or ``ManyToMany``, or an ``Ensemble`` of ``ManyToOne``) on
    ``x``, ``y`` (see the module's table) with the trainer of ``rnnkit train``; returns a :class:`FitResult`.

    Validation: ``valid=(x, y)`` or ``(x, y, lengths)``; else the seeded ``valid_split`` share
    of the examples is held out. Early stopping waits ``patience`` epochs without a better
    validation metric (None: never). ``out`` is the run directory: a fresh run refuses one that
    holds a run unless ``overwrite`` (which deletes it) or ``resume`` (which goes on from its
    checkpoint, exactly as if never stopped: call again with the same arrays and arguments).
    ``weight_decay`` is the optimizer's (None: its own default).
    ``restore_best`` leaves the best validated weights in ``model``. ``tensorboard``: event files
    in ``out/tensorboard`` (None: where tensorboardX is installed, as ``rnnkit train`` does).
    ``monitor`` is the validation figure early stopping and the best checkpoint follow: "loss", or
    the metric ("accuracy" or "mse", the default). ``schedule`` builds a learning-rate schedule on
    the optimizer (``lambda optimizer:
    rnnkit.optim.CosineAnnealingLR(optimizer, T_max=...)``), stepped after every update and
    saved with the checkpoint.
    """
    kind = _kind(model)
    train = _arrays(model, kind, x, y, lengths, "x")
    if valid is not None:
        if not isinstance(valid, (tuple, list)) or len(valid) not in (2, 3):
            raise ValueError("valid: expected (x, y) or (x, y, lengths)")
        held_out = _arrays(model, kind, valid[0], valid[1], valid[2] if len(valid) == 3 else None, "valid x")
    else:
        if not 0.0 < valid_split < 1.0:
            raise ValueError(f"valid_split: expected a share between 0 and 1, got {valid_split}")
        train, held_out = _split(train, kind, valid_split, seed)
    config = TrainConfig(epochs=epochs, max_seconds=max_seconds, lr=lr, optimizer=optimizer,
                         weight_decay=weight_decay, clip_norm=clip or None,
                         patience=patience, seed=seed, progress=progress, save_every_seconds=save_every,
                         until_stopped=False)
    _check_config(config, batch_size)
    out = Path(out)
    task = ArrayTask(kind, train, held_out, batch_size, seed)
    if monitor is not None:
        if monitor not in ("loss", *task.metric_keys):
            raise ValueError(f"monitor: expected loss or {task.metric_keys[0]}, got {monitor!r}")
        task.primary_metric = monitor
    board = for_command(tensorboard, out)
    with writer_lock(out):
        if resume and not has_checkpoint(out):
            raise ValueError(f"resume: no checkpoint in {out}; fit without resume=True first")
        if not resume:
            if has_checkpoint(out) and not overwrite:
                raise ValueError(f"out: {out} already holds a run; resume=True continues it, overwrite=True "
                                 f"deletes it")
            replace_earlier_run(out, task.name, None)
        options = {"model": type(model).__name__, "batch_size": batch_size, "kind": kind}
        trainer = Trainer(task, model, options, config, out, callbacks=[*callbacks, *([board] if board else [])],
                          schedule=schedule)
        if resume:
            trainer.resume()
        started = time.perf_counter()
        reason = trainer.fit()
        _card(out, task, trainer, model, reason, time.perf_counter() - started)
    if restore_best and has_checkpoint(out):
        arrays, _ = load_checkpoint(checkpoint_to_score(out))
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
    model.eval()
    return FitResult(reason, out, list(trainer.position.history), trainer.best_record())


def evaluate(model: Model, x: Any, y: Any, *, lengths: Any = None) -> dict[str, float]:
    """The model's mean loss and metric on arrays (``loss`` and ``accuracy`` or ``mse``), in eval
    mode (no dropout)."""
    kind = _kind(model)
    model.eval()
    return _scores(model, kind, _arrays(model, kind, x, y, lengths, "x"))


def predict(model: Model, x: Any, *, lengths: Any = None) -> np.ndarray:
    """The model's outputs on ``x``, batch first: ``(B, C)`` class scores or ``(B, K)`` values for
    a ``ManyToOne``, ``(B, T, ...)`` for a ``ManyToMany`` (steps past a sequence's length are 0)."""
    kind = _kind(model)
    per_sequence = kind.endswith("per_sequence")
    model.eval()
    data = _arrays(model, kind, x, None, lengths, "x")
    steps, count = data.x.shape[:2]
    out: np.ndarray | None = None
    for index, part in _chunks(data, kind):
        outputs = _outputs(model, kind, part)
        if out is None:
            shape = (count, *outputs.shape[1:]) if per_sequence else (steps, count, *outputs.shape[2:])
            out = np.zeros(shape, outputs.dtype)
        if per_sequence:
            out[index] = outputs
            continue
        if part.lengths is not None:  # steps past a sequence's end are 0
            outputs[np.arange(len(outputs))[:, None] >= part.lengths[None, :]] = 0
        out[: len(outputs), index] = outputs
    assert out is not None
    return out if per_sequence else np.ascontiguousarray(out.swapaxes(0, 1))


class ArrayTask(Task):
    """The trainer's view of arrays: batches in a seeded order per epoch (as the command's
    digits task makes them), validation on the held-out arrays, the trivial predictor
    (majority class, or the training mean) as the baseline."""

    name = "fit"
    batch_axes = (1, 0, 0)  # inputs (T, B, ...), lengths (B,), targets: sharded on B

    def __init__(self, kind: str, train: _Arrays, valid: _Arrays, batch_size: int, seed: int) -> None:
        super().__init__(None, seed, options={"batch_size": batch_size})
        self.kind, self.splits = kind, {"train": train, "valid": valid}
        per_step = kind.endswith("per_step")
        self.batch_axes = (1, 0, 1 if per_step else 0)
        self.metric_keys = ("accuracy",) if kind.startswith("classify") else ("mse",)
        self.primary_metric = self.metric_keys[0]

    def meta(self) -> dict:
        return {"kind": self.kind}

    def num_train_examples(self) -> int:
        return int(self.splits["train"].x.shape[1])

    def train_batches(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        data = self.splits["train"]
        count, size = data.x.shape[1], self.options["batch_size"]
        if data.lengths is None:  # one length: a seeded order (the digits task's, so its figures match)
            order = np.random.default_rng([self.seed, epoch]).permutation(count)
            parts = [_take(data, order[i : i + size], self.kind) for i in range(0, count, size)]
        else:  # batches of like lengths, each cut to its longest, as the command's text tasks make them
            parts = [_take(data, index, self.kind, steps=int(data.lengths[index].max()))
                     for index in bucket_batches(data.lengths, size, seed=self.seed, epoch=epoch)]
        return [(part.x, part.lengths, part.y) for part in parts]

    def train_step(self, model, batch, carry):
        x, lengths, y = batch
        if self.kind.endswith("per_sequence"):
            loss, doutputs = model.loss(model.forward(x, lengths), y)
            model.backward(doutputs, input_grad=False)
        else:
            outputs, _ = model.forward(x, lengths=lengths)
            loss, doutputs = model.loss(outputs, y, lengths)
            model.backward(doutputs, input_grad=False)
        return loss, _count(self.kind, y, lengths), None

    def evaluate(self, model, split: str = "valid") -> dict[str, float]:
        return _scores(model, self.kind, self.splits[split])

    def baseline(self, split: str = "valid") -> dict[str, float]:
        train, data = self.splits["train"], self.splits[split]
        assert train.y is not None and data.y is not None
        mask = _mask(self.kind, data)
        if self.kind.startswith("classify"):
            majority = np.bincount(train.y[_mask(self.kind, train)].ravel()).argmax()
            return {"accuracy": float(np.mean(data.y[mask] == majority))}
        mean = train.y[_mask(self.kind, train)].mean(axis=0)
        return {"mse": float(np.mean((data.y[mask] - mean) ** 2))}


def _card(out: Path, task: ArrayTask, trainer: Trainer, model: Model, reason: str, seconds: float) -> None:
    """The run's model card (``rnnkit.train.card``), of its best validation: fit holds no test split."""
    best = trainer.best_record()
    if best is None:  # stopped before any validation
        return
    keys = task.metric_keys
    result = {"task": task.name, **{key: best[f"valid_{key}"] for key in keys},
              **{f"baseline_{key}": value for key, value in task.baseline("valid").items()},
              "epochs": round(trainer.epochs_done(), 3), "steps": trainer.position.step,
              "seconds": round(seconds, 1), "stopped_by": reason}
    reader = _reader(model)
    rnn = reader.rnn  # type: ignore[attr-defined]
    options = {"cell": reader.cell, "hidden": rnn.hidden_size, "layers": rnn.num_layers,  # type: ignore[attr-defined]
               "bidirectional": rnn.bidirectional, **trainer.model_options}
    train, valid = task.splits["train"], task.splits["valid"]
    write_card(out, RunFacts(
        result=result, metric_keys=keys, data=None, model_class=type(model).__name__,
        data_description=f"arrays given to fit: {train.x.shape[1]:,} training and {valid.x.shape[1]:,} validation "
                         f"examples, up to {train.x.shape[0]} steps ({task.kind.replace('_', ' ')})",
        parameters=model.num_parameters(), dtype=str(next(model.named_parameters())[1].dtype), options=options,
        train_config=asdict(trainer.config), train_seconds=trainer.position.seconds, split="valid",
        trained_by="`rnnkit.train.fit` on arrays"))


def _reader(model: Model) -> Model:
    """The model whose architecture sets the shapes: an ensemble's first member, else the model."""
    return model.members[0] if isinstance(model, Ensemble) else model


def _kind(model: Model) -> str:
    reader = _reader(model)
    if isinstance(reader, ManyToOne):
        shape = "per_sequence"
    elif isinstance(reader, ManyToMany):
        shape = "per_step"
    else:
        raise TypeError(f"model: expected a ManyToOne or ManyToMany (or an Ensemble of ManyToOne), got "
                        f"{type(reader).__name__} (train other "
                        f"architectures through a Task and rnnkit.train.Trainer)")
    return ("classify_" if model.loss_kind == "cross_entropy" else "regress_") + shape


def _arrays(model: Model, kind: str, x: Any, y: Any, lengths: Any, name: str) -> _Arrays:
    """Checked, padded, time-major arrays of one split (``y`` None: inputs only)."""
    embedding: Any = getattr(_reader(model), "embedding", None)
    tokens = embedding is not None
    dtype = next(model.named_parameters())[1].dtype
    inputs, found = _padded(x, name, np.int64 if tokens else dtype, 2 if tokens else 3)
    if lengths is not None and found is not None:
        raise ValueError(f"lengths: {name} is a list of sequences, whose lengths are their own; drop lengths")
    count, steps = inputs.shape[:2]
    lengths = found if found is not None else _lengths(lengths, count, steps)
    if tokens:
        vocab = embedding.num_embeddings
        bad = np.flatnonzero((inputs < 0) | (inputs >= vocab))
        if bad.size:
            raise ValueError(f"{name}: expected token ids 0..{vocab - 1} (the embedding's vocabulary), got "
                             f"{inputs.flat[bad[0]]}")
    targets = None if y is None else _targets(model, kind, y, count, steps, lengths, dtype)
    per_step = kind.endswith("per_step")
    return _Arrays(np.ascontiguousarray(inputs.swapaxes(0, 1)), lengths,
                   None if targets is None else (np.ascontiguousarray(targets.swapaxes(0, 1)) if per_step else targets))


def _padded(x: Any, name: str, dtype: Any, rank: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` as one array ``(B, T, ...)`` of ``dtype``, and the sequences' lengths when ``x`` is a
    list of sequences (None for an array)."""
    if isinstance(x, np.ndarray) and x.dtype != object:
        array = _checked(x, name, dtype, rank)
        return array, None
    if not isinstance(x, (list, tuple)) or not x:
        raise ValueError(f"{name}: expected an array of rank {rank} (batch first) or a non-empty list of sequences, "
                         f"got {type(x).__name__}")
    sequences = [_checked(np.asarray(s), f"{name}[{i}]", dtype, rank - 1) for i, s in enumerate(x)]
    tails = {s.shape[1:] for s in sequences}
    if len(tails) > 1:
        raise ValueError(f"{name}: the sequences' steps differ in shape ({', '.join(map(str, sorted(tails)))})")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if lengths.min() < 1:
        raise ValueError(f"{name}[{int(np.argmin(lengths))}]: an empty sequence; every sequence needs a step")
    padded, _ = pad_batch(sequences, dtype=dtype)  # time major; the split is made time major again later
    return padded.swapaxes(0, 1), lengths


def _checked(x: np.ndarray, name: str, dtype: Any, rank: int) -> np.ndarray:
    if x.ndim != rank:
        raise ValueError(f"{name}: expected rank {rank} ({_layout(rank)}), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: empty (shape {x.shape})")
    if np.dtype(dtype).kind == "i":
        if x.dtype.kind not in "iu":
            raise ValueError(f"{name}: expected integer token ids, got dtype {x.dtype}")
        return x.astype(dtype, copy=False)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: expected finite values, got {int(np.sum(~np.isfinite(x)))} NaN/inf")
    return x.astype(dtype, copy=False)


def _layout(rank: int) -> str:
    return {1: "steps", 2: "batch, steps", 3: "batch, steps, features"}.get(rank, "batch, ...")


def _lengths(lengths: Any, count: int, steps: int) -> np.ndarray | None:
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.shape != (count,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"lengths: expected {count} integers (one per sequence), got shape {lengths.shape} of "
                         f"{lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > steps:
        raise ValueError(f"lengths: expected values from 1 to {steps} (the padded steps), got "
                         f"{lengths.min()}..{lengths.max()}")
    return lengths.astype(np.int64)


def _targets(model: Model, kind: str, y: Any, count: int, steps: int, lengths: np.ndarray | None,
             dtype: Any) -> np.ndarray:
    classify, per_step = kind.startswith("classify"), kind.endswith("per_step")
    if per_step and isinstance(y, (list, tuple)):
        y, _ = _padded(list(y), "y", np.int64 if classify else dtype, 2 if classify else 3)
    y = np.asarray(y)
    if len(y) != count:
        raise ValueError(f"y: expected {count} targets (one per sequence of x), got {len(y)}")
    if classify:
        expected = (count, steps) if per_step else (count,)
        if y.shape[: len(expected)] != expected or y.ndim != len(expected) or y.dtype.kind not in "iu":
            raise ValueError(f"y: expected integer class ids of shape {expected}, got shape {y.shape} of {y.dtype}")
        classes = _reader(model).head.out_features  # type: ignore[attr-defined]
        valid = y if lengths is None or not per_step else y[np.arange(steps)[None, :] < lengths[:, None]]
        if valid.min() < 0 or valid.max() >= classes:
            raise ValueError(f"y: expected class ids 0..{classes - 1} (the model's outputs), got "
                             f"{valid.min()}..{valid.max()}")
        return y.astype(np.int64)
    y = _checked(y.astype(np.float64) if y.dtype.kind in "iub" else y, "y", dtype, y.ndim)
    if per_step and y.shape[:2] != (count, steps):
        raise ValueError(f"y: expected values of shape ({count}, {steps}, ...), got {y.shape}")
    return y


def _split(data: _Arrays, kind: str, share: float, seed: int) -> tuple[_Arrays, _Arrays]:
    count = data.x.shape[1]
    held = int(round(count * share))
    if held < 1 or held >= count:
        raise ValueError(f"valid_split: {share} of {count} examples leaves no {'validation' if held < 1 else 'training'} "
                         f"example; pass valid=(x, y) or more data")
    order = np.random.default_rng([seed, 2**31 - 1]).permutation(count)
    return _take(data, np.sort(order[held:]), kind), _take(data, np.sort(order[:held]), kind)


def _take(data: _Arrays, index: np.ndarray, kind: str, steps: int | None = None) -> _Arrays:
    """The examples ``index`` of a split, their first ``steps`` steps (None: all)."""
    lengths = None if data.lengths is None else data.lengths[index]
    y = None if data.y is None else data.y[:steps, index] if kind.endswith("per_step") else data.y[index]
    return _Arrays(data.x[:steps, index], lengths, y)


def _chunks(data: _Arrays, kind: str) -> list[tuple[np.ndarray, _Arrays]]:
    """The examples in parts of at most ``EVAL_BATCH``: ``(index, part)``; sequences of several
    lengths are taken shortest first, each part cut to its longest (less padding to compute)."""
    count = data.x.shape[1]
    order = np.arange(count) if data.lengths is None else np.argsort(data.lengths, kind="stable")
    parts = []
    for start in range(0, count, EVAL_BATCH):
        index = order[start : start + EVAL_BATCH]
        steps = None if data.lengths is None else int(data.lengths[index].max())
        parts.append((index, _take(data, index, kind, steps)))
    return parts


def _outputs(model: Model, kind: str, part: _Arrays) -> np.ndarray:
    if kind.endswith("per_sequence"):
        return model.forward(part.x, part.lengths)
    return model.forward(part.x, lengths=part.lengths)[0]


def _mask(kind: str, data: _Arrays) -> Any:
    """Which targets count: all of them, or the valid steps ``(T, B)`` of per-step targets."""
    if not kind.endswith("per_step") or data.lengths is None:
        return slice(None)
    return np.arange(data.x.shape[0])[:, None] < data.lengths[None, :]


def _count(kind: str, y: np.ndarray, lengths: np.ndarray | None) -> int:
    """What the summed loss is divided by: examples, or valid steps (times values for mse)."""
    per_item = 1 if kind.startswith("classify") else int(np.prod(y.shape[(2 if kind.endswith("per_step") else 1):]))
    if kind.endswith("per_step"):
        steps = y.shape[0] * y.shape[1] if lengths is None else int(lengths.sum())
        return steps * per_item
    return len(y) * per_item


def _scores(model: Model, kind: str, data: _Arrays) -> dict[str, float]:
    assert data.y is not None
    loss_sum, right, squared = 0.0, 0, 0.0
    for _, part in _chunks(data, kind):
        outputs = _outputs(model, kind, part)
        y, lengths = part.y, part.lengths
        assert y is not None
        loss, _ = model.loss(outputs, y, lengths) if kind.endswith("per_step") else model.loss(outputs, y)
        loss_sum += loss
        mask = _mask(kind, part)
        if kind.startswith("classify"):
            right += int(np.sum(outputs.argmax(axis=-1)[mask] == y[mask]))
        else:
            values = outputs if y.ndim == outputs.ndim else outputs[..., 0]
            squared += float(np.sum((values[mask] - y[mask]) ** 2))
    count = _count(kind, data.y, data.lengths)  # examples, valid steps, or their values (mse)
    scores = {"loss": loss_sum / max(count, 1)}
    if kind.startswith("classify"):
        scores["accuracy"] = right / max(count, 1)
    else:
        scores["mse"] = squared / max(count, 1)
    if not math.isfinite(scores["loss"]):
        scores["loss"] = math.inf
    return scores


def _check_config(config: TrainConfig, batch_size: int) -> None:
    for name, value in (("epochs", config.epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if config.patience is not None and (not isinstance(config.patience, int) or config.patience < 1):
        raise ValueError(f"patience: expected a positive integer or None, got {config.patience!r}")
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        raise ValueError(f"lr: expected a positive number, got {config.lr!r}")
    decay = config.weight_decay
    if decay is not None and not (isinstance(decay, (int, float)) and math.isfinite(decay) and decay >= 0):
        raise ValueError(f"weight_decay: expected a number >= 0 or None, got {decay!r}")
