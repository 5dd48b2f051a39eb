"""The training loop: epochs, time budget, validation, early stopping, progress, logs,
checkpoints with exact resume, and a guard that stops a diverging run before it can write.

Exact resume works because everything that decides what happens next is in the checkpoint:
the parameters, the optimizer's state, every module's random generator (dropout), the
position (epoch, batch), the state carried between batches (truncated BPTT: every array of it,
``h`` and an LSTM's ``c``) and the early stopping bookkeeping; batch order is a pure function of
(seed, epoch).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.io.checkpoint import CHECKPOINT_FILE, CheckpointError, clean_leftovers, load_checkpoint, save_checkpoint
from rnnkit.models.base import Model
from rnnkit.models.states import as_state
from rnnkit.optim import clip_grad_norm, make_optimizer
from rnnkit.tasks.base import Task, TaskError
from rnnkit.tasks.metrics import LOWER_IS_BETTER
from rnnkit.viz.plots import plot_loss_curves

#: early stopping waits for at least this many training examples without improvement: small data
#: gets more epochs of patience, since its validation metric is noisier and its epochs are short
PATIENCE_EXAMPLES = 20_000
PATIENCE_EPOCHS = (3, 10)  # fewest and most

BEST_DIR = "best"
METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "loss.png"


class DivergenceError(RuntimeError):
    """The loss or a gradient became NaN/inf; no checkpoint was written from that state."""


@dataclass
class TrainConfig:
    epochs: int = 10
    max_seconds: float | None = None
    #: with ``max_seconds``: ``epochs`` is a minimum, not a limit; training goes on while the
    #: validation metric still improves, until early stopping or the time budget ends it
    until_stopped: bool = False
    #: write a resumable checkpoint (no validation) at least this often within an epoch, so a
    #: kill -9 loses at most this much of a long epoch; None: only at epoch ends and stops
    save_every_seconds: float | None = 600.0
    lr: float = 2e-3
    optimizer: str = "adam"
    clip_norm: float | None = 5.0
    patience: int | None = 3
    seed: int = 0
    log_every: int = 20
    progress: bool | None = None  # None: a bar only when stderr is a terminal


@dataclass
class Position:
    epoch: int = 0
    batch: int = 0
    step: int = 0
    seconds: float = 0.0
    best: float | None = None
    #: every metric at ``best``, primary first, signed so that more is better: the others break
    #: ties of the primary metric
    best_scores: list | None = None
    #: the same, of the state in ``best/`` (which may be a mid-epoch one)
    saved_scores: list | None = None
    bad_epochs: int = 0
    history: list = field(default_factory=list)


def validate_run_meta(meta: Any, where: str | Path) -> dict[str, Any]:
    """Check a checkpoint's description before anything uses it: every key the trainer writes,
    with its type and range. Raises ``CheckpointError`` naming the key; returns ``meta``."""
    from rnnkit.io.checkpoint import CheckpointError
    from rnnkit.tasks import TASKS

    def fail(key: str, expected: str, got: Any) -> None:
        raise CheckpointError(f"checkpoint {where}: {key}: expected {expected}, got {got!r:.80} "
                              f"(the checkpoint is damaged or not a run of this rnnkit)")

    if not isinstance(meta, dict):
        fail("metadata", "a JSON object", type(meta).__name__)
    sections = {"task": str, "task_meta": dict, "model_options": dict, "dtype": str, "train_config": dict,
                "position": dict, "optimizer": dict, "rng": dict}
    for key, kind in sections.items():
        if not isinstance(meta.get(key), kind):
            fail(key, f"a {kind.__name__}", meta.get(key, "nothing"))
    if meta["task"] not in TASKS:
        fail("task", f"one of {', '.join(TASKS)}", meta["task"])
    if "data" in meta and meta["data"] is not None and not isinstance(meta["data"], str):
        fail("data", "a path or null", meta["data"])
    if meta["dtype"] not in ("float32", "float64"):
        fail("dtype", "float32 or float64", meta["dtype"])
    for key in ("hidden", "layers", "embed", "batch_size"):
        value = meta["model_options"].get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1 << 20):
            fail(f"model_options.{key}", "a positive integer", value)
    position = meta["position"]
    for key in ("epoch", "batch", "step"):
        value = position.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail(f"position.{key}", "a non-negative integer", value)
    if not isinstance(position.get("history", []), list):
        fail("position.history", "a list", position.get("history"))
    config = meta["train_config"]
    for key, kind in (("epochs", int), ("seed", int), ("lr", (int, float)), ("optimizer", str)):
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            fail(f"train_config.{key}", f"a {getattr(kind, '__name__', 'number')}", config.get(key))
    return meta


def patience_for(num_examples: int) -> int:
    """Epochs without improvement before early stopping, for ``num_examples`` training examples:
    ``PATIENCE_EXAMPLES / num_examples`` rounded up, within ``PATIENCE_EPOCHS``."""
    fewest, most = PATIENCE_EPOCHS
    return int(min(most, max(fewest, math.ceil(PATIENCE_EXAMPLES / max(num_examples, 1)))))


def module_rngs(model: Model) -> dict[str, np.random.Generator]:
    return {name or "<root>": m.rng for name, m in model.named_modules() if isinstance(getattr(m, "rng", None), np.random.Generator)}


class Trainer:
    def __init__(self, task: Task, model: Model, model_options: dict, config: TrainConfig, out_dir: str | Path) -> None:
        self.task, self.model, self.model_options, self.config = task, model, model_options, config
        self.out_dir = Path(out_dir)
        self.optimizer = make_optimizer(config.optimizer, model, lr=config.lr)
        self.position = Position()
        self.carry = task.initial_carry()
        self.interrupted_by: int | None = None
        self._last_save = time.perf_counter()
        self._data_sha256 = file_sha256(task.data_path) if task.data_path else None

    # -- checkpoints ------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        optimizer_state = self.optimizer.state_dict()
        return {
            "format": "rnnkit-checkpoint-1",
            "task": self.task.name,
            "data": self.task.data_path,  # None: the task's default data
            "data_sha256": self._data_sha256,  # eval checks the file is still the one trained on
            "task_meta": self.task.meta(),
            "model_options": self.model_options,
            "dtype": str(next(self.model.named_parameters())[1].dtype),
            "train_config": asdict(self.config),
            "position": asdict(self.position),
            "optimizer": {k: v for k, v in optimizer_state.items() if k != "state"},
            "rng": {name: rng.bit_generator.state for name, rng in module_rngs(self.model).items()},
            "carry": None if self.carry is None else len(as_state(self.carry)),  # arrays carry.0, carry.1, ...
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        arrays |= {f"optimizer.{k}": v for k, v in self.optimizer.state_dict()["state"].items()}
        if self.carry is not None:
            arrays |= {f"carry.{k}": np.asarray(array) for k, array in enumerate(as_state(self.carry))}
        return arrays

    def save(self, directory: Path | None = None) -> None:
        save_checkpoint(directory or self.out_dir, self._arrays(), self._meta())
        if directory is None:
            self._last_save = time.perf_counter()

    def resume(self) -> None:
        arrays, meta = load_checkpoint(self.out_dir)
        self.model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        optimizer_state = dict(meta["optimizer"])
        optimizer_state["state"] = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        self.optimizer.load_state_dict(optimizer_state)
        rngs = module_rngs(self.model)
        if set(rngs) - set(meta["rng"]):
            raise CheckpointError(f"checkpoint {self.out_dir}: rng: expected the generators of "
                                  f"{', '.join(sorted(rngs))}, got {', '.join(sorted(meta['rng'])) or 'none'}")
        for name, rng in rngs.items():
            try:
                rng.bit_generator.state = meta["rng"][name]
            except (TypeError, ValueError, KeyError) as error:
                raise CheckpointError(f"checkpoint {self.out_dir}: rng.{name}: not a generator state ({error})") from None
        try:
            self.position = Position(**meta["position"])
        except TypeError as error:
            raise CheckpointError(f"checkpoint {self.out_dir}: position: {error}") from None
        batches = len(self.task.train_batches(self.position.epoch))
        if self.position.batch > batches:
            raise CheckpointError(f"checkpoint {self.out_dir}: position.batch: expected at most {batches} (the "
                                  f"batches of epoch {self.position.epoch + 1}), got {self.position.batch}")
        self.carry = _carry_from(arrays)
        self._forget_metrics_after(self.position.step)

    def _forget_metrics_after(self, step: int) -> None:
        """Drop the log records written after the checkpoint being resumed (the resumed run
        writes them again), so ``metrics.jsonl`` holds each step once."""
        path = self.out_dir / METRICS_FILE
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> str:
        """Train until the epochs, the time budget, early stopping or a signal end it; returns
        which: "epochs", "time", "early_stopping" or "interrupted" (SIGINT/SIGTERM, number in
        ``interrupted_by``; a resumable checkpoint is saved first). A run that has already
        stopped early returns at once."""
        config, position = self.config, self.position
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.out_dir, self.out_dir / BEST_DIR):
            clean_leftovers(directory)
        started = time.perf_counter() - position.seconds
        progress = _progress_enabled(config.progress)
        if config.patience is not None and position.bad_epochs >= config.patience:
            print(f"[{self.task.name}] this run stopped early at epoch {position.epoch}; nothing left to train",
                  file=sys.stderr, flush=True)
            return "early_stopping"
        with _signals_caught() as caught:
            reason = self._loop(started, progress, caught)
        self.interrupted_by = caught[0] if caught else None
        return reason

    def _loop(self, started: float, progress: bool, caught: list[int]) -> str:
        config, position = self.config, self.position
        reason = "epochs"
        while position.epoch < config.epochs or self._extending():
            if position.epoch == config.epochs and position.batch == 0:
                print(f"[{self.task.name}] {config.epochs} epochs done, validation improved within the last "
                      f"{config.patience or 'any'} epochs: training on within the time budget until early stopping",
                      file=sys.stderr, flush=True)
            batches = self.task.train_batches(position.epoch)
            if not batches:
                raise TaskError(f"{self.task.name}: the training data makes no batch (too little data for one "
                                f"batch or window); use more data or a smaller --batch-size")
            self._batches_in_epoch = len(batches)
            of = "" if position.epoch >= config.epochs else f"/{config.epochs}"
            bar = _bar(len(batches), position.batch, f"epoch {position.epoch + 1}{of}", progress)
            window_loss, window_items, window_start = 0.0, 0, time.perf_counter()
            self.model.train()
            while position.batch < len(batches):
                loss_sum, count = self._step(batches[position.batch])
                position.batch += 1
                position.step += 1
                window_loss, window_items = window_loss + loss_sum, window_items + count
                if bar is not None:
                    bar.update(1)
                if position.step % config.log_every == 0 or position.batch == len(batches):
                    rate = window_items / max(time.perf_counter() - window_start, 1e-9)
                    self._log({"step": position.step, "epoch": position.epoch + position.batch / len(batches),
                               "train_loss": window_loss / max(window_items, 1), "items_per_second": rate})
                    if bar is not None:
                        bar.set_postfix(loss=f"{window_loss / max(window_items, 1):.3f}", per_s=f"{rate:,.0f}")
                    window_loss, window_items, window_start = 0.0, 0, time.perf_counter()
                position.seconds = time.perf_counter() - started
                if config.max_seconds is not None and position.seconds >= config.max_seconds:
                    reason = "time"
                    break
                if caught:  # SIGINT or SIGTERM: stop at this batch boundary, resumable
                    reason = "interrupted"
                    break
                if (config.save_every_seconds is not None and position.batch < len(batches)
                        and time.perf_counter() - self._last_save >= config.save_every_seconds):
                    self.save()
            if bar is not None:
                bar.close()
            if reason in ("time", "interrupted") and position.batch < len(batches):
                self._end_of_period(partial=True)
                break
            position.epoch, position.batch = position.epoch + 1, 0
            self.carry = self.task.initial_carry()
            if self._end_of_period(partial=False):
                reason = "early_stopping"
                break
            if reason in ("time", "interrupted"):
                break
        return reason

    def best_record(self) -> dict | None:
        """The validation record of the best checkpoint (the one in ``best/``), if any."""
        position = self.position
        for record in position.history:
            scores = self._ranking({k[6:]: v for k, v in record.items() if k.startswith("valid_")})
            target = position.saved_scores if position.saved_scores is not None else position.best_scores
            if target is None and scores[0] == position.best or scores == target:
                return record
        return None

    def _ranking(self, metrics: dict[str, float]) -> list[float]:
        """The task's metrics, primary first, each signed so that more is better."""
        task = self.task
        keys = [task.primary_metric] + [k for k in task.metric_keys if k != task.primary_metric and k in metrics]
        signs = [1.0 if task.higher_is_better else -1.0] + [-1.0 if k in LOWER_IS_BETTER else 1.0 for k in keys[1:]]
        return [sign * metrics[k] for sign, k in zip(signs, keys)]

    def _extending(self) -> bool:
        """Past ``epochs``: only with a time budget, and only while the last epochs improved
        (early stopping has not ended the run)."""
        config = self.config
        return config.until_stopped and config.max_seconds is not None and (
            config.patience is None or self.position.bad_epochs < config.patience)

    def _step(self, batch: Any) -> tuple[float, int]:
        self.model.zero_grad()
        # Overflow in a diverging step is reported once, below, not as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                loss_sum, count, carry = self.task.train_step(self.model, batch, self.carry)
            except ValueError as error:  # activations overflowed into the next layer's input check
                if "expected finite values" not in str(error):
                    raise
                self._diverged(f"activations became NaN/inf ({error})")
            if not math.isfinite(loss_sum):
                self._diverged(f"the loss is {loss_sum}")
            norm = clip_grad_norm(self.model, self.config.clip_norm if self.config.clip_norm else math.inf)
            if not math.isfinite(norm):
                self._diverged(f"the gradient norm is {norm}")
            self.optimizer.step()
        bad = [name for name, param, _ in self.model.named_parameters() if not np.isfinite(param.sum())]
        if bad:
            self._diverged(f"parameters {', '.join(bad[:3])} became NaN/inf")
        self.carry = carry
        return loss_sum, count

    def _diverged(self, what: str) -> None:
        where = f"epoch {self.position.epoch + 1}, step {self.position.step + 1}"
        kept = (f"the last good checkpoint in {self.out_dir} is untouched" if has_checkpoint(self.out_dir)
                else "no checkpoint was written")
        raise DivergenceError(f"training diverged at {where}: {what}; {kept} (try a lower --lr or --clip)")

    def _end_of_period(self, partial: bool) -> bool:
        """Validate, log, checkpoint; returns True when early stopping says stop."""
        position, task = self.position, self.task
        self.model.eval()  # no dropout, and no draws from its generator: resume stays exact
        metrics = task.evaluate(self.model, "valid")
        self.model.train()
        score, scores = metrics[task.primary_metric], self._ranking(metrics)
        # A tie on the primary metric (exact match stuck at 0 while a model learns to spell) is
        # broken by the task's other metrics (character error rate), so a plateau of the primary
        # metric is not mistaken for no progress.
        if position.best_scores is None and position.best is not None:  # a checkpoint from before ties
            position.best_scores = [self._ranking({task.primary_metric: position.best})[0]]
        if position.saved_scores is None and position.best_scores is not None:  # a checkpoint from before
            position.saved_scores = list(position.best_scores)
        # best/ keeps the best state validated, mid-epoch ones (a time budget, a signal) included;
        # early stopping counts epoch ends only, so a resumed run stops where an uninterrupted one does.
        save_best = position.saved_scores is None or scores > position.saved_scores
        if save_best:
            position.saved_scores = scores
        if not partial:
            if position.best_scores is None or scores > position.best_scores:
                position.best, position.best_scores, position.bad_epochs = score, scores, 0
            else:
                position.bad_epochs += 1
        epoch = position.epoch + (position.batch / self._batches_in_epoch if partial else 0)
        record = {"epoch": epoch, "step": position.step, "seconds": round(position.seconds, 2),
                  **{f"valid_{k}": v for k, v in metrics.items()}}
        position.history.append(record)
        self._log(record)
        print(f"[{task.name}] epoch {record['epoch']:.2f}  step {position.step}  {position.seconds:.0f}s  "
              + "  ".join(f"valid {k} {v:.4f}" for k, v in metrics.items()), file=sys.stderr, flush=True)
        # best/ first: a kill between the two writes resumes from the previous checkpoint, and the
        # replayed (deterministic) training reaches this state and writes the same best/ again
        if save_best:
            self.save(self.out_dir / BEST_DIR)
        self.save()
        _plot_curves(self.out_dir)
        patience = self.config.patience
        return patience is not None and position.bad_epochs >= patience

    def _log(self, record: dict) -> None:
        with open(self.out_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


@contextlib.contextmanager
def _signals_caught():
    """SIGINT and SIGTERM during training are noted (the list gets their numbers) instead of
    killing the process: the loop stops at the next batch boundary, validates, saves a resumable
    checkpoint and returns "interrupted". Outside the main thread nothing is installed."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def note(signum, frame):  # noqa: ARG001
        if caught:  # a second signal: the user insists, stop now (the last checkpoint stands)
            raise KeyboardInterrupt
        caught.append(signum)

    for sig in previous:
        signal.signal(sig, note)
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _carry_from(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...] | None:
    """The carried state saved as ``carry.0``, ``carry.1``, ... (one array per state); a
    checkpoint from before tuple states holds one array, ``carry``: the hidden state ``(h,)``."""
    if "carry" in arrays:
        return (arrays["carry"],)
    count = sum(1 for name in arrays if name.startswith("carry."))
    return tuple(arrays[f"carry.{k}"] for k in range(count)) if count else None


def _progress_enabled(setting: bool | None) -> bool:
    if setting is None:
        return sys.stderr.isatty()
    return setting


def _bar(total: int, initial: int, description: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=description, unit="batch", dynamic_ncols=True, leave=False)


def _plot_curves(out_dir: Path) -> None:
    try:
        plot_loss_curves(out_dir / METRICS_FILE, out_dir / CURVE_FILE)
    except ImportError:  # matplotlib is optional; the metrics file has the numbers
        pass


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def has_checkpoint(out_dir: str | Path) -> bool:
    return (Path(out_dir) / CHECKPOINT_FILE).is_file()
