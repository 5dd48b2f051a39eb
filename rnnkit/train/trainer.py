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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from rnnkit.io.checkpoint import (
    CheckpointError,
    atomic_write,
    clean_leftovers,
    load_checkpoint,
    save_checkpoint,
)
from rnnkit.models.base import Model
from rnnkit.models.states import as_state
from rnnkit.optim import Optimizer, Schedule, clip_grad_norm, make_optimizer
from rnnkit.tasks.base import Task, TaskError
from rnnkit.tasks.metrics import LOWER_IS_BETTER
from rnnkit.train.callbacks import Callback
from rnnkit.train.distributed import GradientBuffer, current_world, is_empty, shard, share
from rnnkit.train.runs import (
    BEST_DIR,
    CURVE_FILE,
    METRICS_FILE,
    append_record,
    beats,
    check_arrays,
    file_sha256,
    has_checkpoint,
    upgrade,
)
from rnnkit.viz.plots import plot_loss_curves

#: early stopping waits for at least this many training examples without improvement: small data
#: gets more epochs of patience, since its validation metric is noisier and its epochs are short
PATIENCE_EXAMPLES = 20_000
PATIENCE_EPOCHS = (3, 10)  # fewest and most



class DivergenceError(RuntimeError):
    """The loss or a gradient became NaN/inf; no checkpoint was written from that state."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM where no resumable stop is possible (a second signal during training,
    or one outside the training loop); ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


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
    #: the optimizer's ``weight_decay`` (decoupled for adamw, an L2 term for the others); None:
    #: the optimizer's own default (0, and adamw's 1e-2)
    weight_decay: float | None = None
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
    #: ties of the primary metric; ``best/`` holds that state (an epoch end's)
    best_scores: list | None = None
    #: the same, of the state in the main checkpoint when it was validated mid-epoch (a time
    #: budget or a signal stopped the run there); None once training goes on. It is scored
    #: instead of ``best/`` when better, and never enters ``best/``: an uninterrupted run never
    #: validates that state, so a resumed run must not keep it either.
    partial_scores: list | None = None
    bad_epochs: int = 0
    history: list = field(default_factory=list)


def patience_for(num_examples: int) -> int:
    """Epochs without improvement before early stopping, for ``num_examples`` training examples:
    ``PATIENCE_EXAMPLES / num_examples`` rounded up, within ``PATIENCE_EPOCHS``."""
    fewest, most = PATIENCE_EPOCHS
    return int(min(most, max(fewest, math.ceil(PATIENCE_EXAMPLES / max(num_examples, 1)))))


def module_rngs(model: Model) -> dict[str, np.random.Generator]:
    generators = {name or "<root>": getattr(m, "rng", None) for name, m in model.named_modules()}
    return {name: rng for name, rng in generators.items() if isinstance(rng, np.random.Generator)}


def jump_for_rank(rngs: Iterable[np.random.Generator], rank: int) -> None:
    """Move each generator ``rank`` jumps ahead: each process its own dropout masks, not copies of the root's."""
    for rng in rngs:
        bits = cast(np.random.PCG64, rng.bit_generator)  # the default generator's; it can jump
        bits.state = bits.jumped(rank).state


class Trainer:
    def __init__(self, task: Task, model: Model, model_options: dict, config: TrainConfig, out_dir: str | Path,
                 callbacks: Sequence[Callback] = (), schedule: Callable[[Optimizer], Schedule] | None = None
                 ) -> None:
        self.task, self.model, self.model_options, self.config = task, model, model_options, config
        #: told of the run's moments, on the root process (:mod:`rnnkit.train.callbacks`)
        self.callbacks = list(callbacks)
        #: the last step's gradient norm, before clipping
        self.grad_norm = math.nan
        self.out_dir = Path(out_dir)
        decay = {} if config.weight_decay is None else {"weight_decay": config.weight_decay}
        self.optimizer = make_optimizer(config.optimizer, model, lr=config.lr, **decay)
        #: sets the optimizer's rate after each step; saved and restored with the checkpoint
        self.schedule = None if schedule is None else schedule(self.optimizer)
        self.position = Position()
        self.carry = task.initial_carry()
        self.interrupted_by: int | None = None
        self._batches_in_epoch = 1  # set when an epoch's batches are made
        self._last_save = time.perf_counter()
        self._data_sha256 = file_sha256(task.data_path) if task.data_path else None
        #: the processes training this model together (one, unless started by mpiexec -n N)
        self.world = current_world()
        self._gradients = GradientBuffer(model, votes=0) if self.world.size > 1 else None
        if self.world.rank > 0:
            jump_for_rank(module_rngs(model).values(), self.world.rank)

    def epochs_done(self) -> float:
        """Epochs trained so far, the current one's share of batches included."""
        return self.position.epoch + self.position.batch / max(1, self._batches_in_epoch)

    # -- checkpoints ------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        optimizer_state = self.optimizer.state_dict()
        generators = self._generator_states()
        return {
            "format": "rnnkit-checkpoint-1",
            "task": self.task.name,
            "data": self.task.data_path,  # None: the task's default data
            "valid_data": self.task.valid_path,  # --valid FILE; None: carved from the data
            "test_data": self.task.test_path,
            "data_sha256": self._data_sha256,  # eval checks the file is still the one trained on
            "task_meta": self.task.meta(),
            "model_options": self.model_options,
            "dtype": str(next(self.model.named_parameters())[1].dtype),
            "train_config": asdict(self.config),
            "position": asdict(self.position),
            "optimizer": {k: v for k, v in optimizer_state.items() if k != "state"},
            "rng": generators[0],
            "carry": None if self.carry is None else len(as_state(self.carry)),  # arrays carry.0, carry.1, ...
            "processes": self.world.size,
            **({"rng_by_process": generators} if self.world.size > 1 else {}),
            **({"schedule": self.schedule.state_dict()} if self.schedule is not None else {}),
        }

    def _generator_states(self) -> list[dict[str, Any]]:
        """Every process's module generators, in rank order (a collective: all processes call it)."""
        return self.world.allgather({name: rng.bit_generator.state for name, rng in module_rngs(self.model).items()})

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        arrays |= {f"optimizer.{k}": v for k, v in self.optimizer.state_dict()["state"].items()}
        carry = self._whole_carry()
        if carry is not None:
            arrays |= {f"carry.{k}": np.asarray(array) for k, array in enumerate(carry)}
        return arrays

    def _whole_carry(self) -> tuple[np.ndarray, ...] | None:
        """The carried state of the whole batch: each process's share of the streams, joined in
        rank order along the batch axis of the ``(L * D, B, H)`` states (a collective)."""
        shares = [as_state(part) for part in self.world.allgather(self.carry) if part is not None]
        if not shares:
            return None
        return tuple(np.concatenate([part[k] for part in shares], axis=1) for k in range(len(shares[0])))

    def _my_carry(self, carry: tuple[np.ndarray, ...] | None) -> tuple[np.ndarray, ...] | None:
        """This process's share of a whole-batch carried state (the inverse of ``_whole_carry``)."""
        if carry is None or self.world.size == 1:
            return carry
        part = share(carry[0].shape[1], self.world.rank, self.world.size)
        return tuple(array[:, part] for array in carry) if part.stop > part.start else None

    def save(self, directory: Path | None = None) -> None:
        """Write a checkpoint (by the root process; every process takes part, as the carried
        state and the generators are gathered from all)."""
        arrays, meta = self._arrays(), self._meta()
        if self.world.is_root:
            save_checkpoint(directory or self.out_dir, arrays, meta)
        if directory is None:
            self._last_save = time.perf_counter()

    def resume(self) -> None:
        """Continue from the checkpoint in ``out_dir``: everything that decides what happens
        next comes back, each part checked against this run before anything changes."""
        # the root reads, every process gets the same (a damaged checkpoint fails on the root,
        # and the command line then ends the whole job)
        arrays, meta = self.world.broadcast(load_checkpoint(self.out_dir) if self.world.is_root else None)
        upgrade(meta, arrays)
        check_arrays(arrays, meta, self.out_dir)
        self._check_processes(meta)
        position = self._saved_position(meta)
        self._check_optimizer(meta["optimizer"], position)
        carry = self._saved_carry(meta, arrays)
        self.model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        optimizer_state = dict(meta["optimizer"])
        optimizer_state["state"] = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        self.optimizer.load_state_dict(optimizer_state)
        if self.schedule is not None:
            self._restore_schedule(meta.get("schedule"), position.step)
        by_process = meta.get("rng_by_process")
        if isinstance(by_process, list) and len(by_process) == self.world.size:
            self._restore_generators(by_process[self.world.rank])
        else:
            self._restore_generators(meta["rng"])
            if self.world.rank > 0:
                jump_for_rank(module_rngs(self.model).values(), self.world.rank)
        self.position, self.carry = position, self._my_carry(carry)
        if self.world.is_root:  # the log is the root's: two processes rewriting it raced (one's rename lost its file)
            self._forget_metrics_after(self.position.step)

    def _check_processes(self, meta: dict) -> None:
        """With dropout, each process's masks come from its own generator, saved per process:
        such a run resumes on as many processes as it ran on. Without, any number will do."""
        saved = meta["processes"]
        if saved != self.world.size and self.model_options.get("dropout", 0):
            raise CheckpointError(f"checkpoint {self.out_dir}: trained on {saved} process(es) with dropout, whose masks "
                                  f"come from one generator per process; resume it on {saved} "
                                  f"(mpiexec -n {saved} rnnkit train ... --resume), not {self.world.size}")

    def _saved_position(self, meta: dict) -> Position:
        try:
            position = Position(**meta["position"])
        except TypeError as error:
            raise CheckpointError(f"checkpoint {self.out_dir}: position: {error}") from None
        batches = len(self.task.train_batches(position.epoch))
        if position.batch > batches:
            raise CheckpointError(f"checkpoint {self.out_dir}: position.batch: expected at most {batches} (the "
                                  f"batches of epoch {position.epoch + 1}), got {position.batch}")
        return position

    def _restore_schedule(self, saved: Any, step: int) -> None:
        assert self.schedule is not None
        if saved is None:
            raise CheckpointError(f"checkpoint {self.out_dir}: schedule: this run has a learning-rate schedule, the "
                                  f"checkpoint none (a run saved without one)")
        try:
            self.schedule.load_state_dict(saved)
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"checkpoint {self.out_dir}: schedule: {error}") from None
        if self.schedule.count != step:
            raise CheckpointError(f"checkpoint {self.out_dir}: schedule.count: expected position.step ({step}), "
                                  f"one step per training step, got {self.schedule.count}")

    def _check_optimizer(self, saved: Any, position: Position) -> None:
        """The saved optimizer is this run's (its type and hyperparameters come from the run's
        settings, never changed by training, the rate aside under a schedule, which is checked
        with it) and took one step per training step."""
        built = json.loads(json.dumps({k: v for k, v in self.optimizer.state_dict().items() if k != "state"}))
        if self.schedule is not None and isinstance(saved, dict) and isinstance(saved.get("hyperparameters"), dict):
            saved = {**saved, "hyperparameters": {**saved["hyperparameters"], "lr": built["hyperparameters"]["lr"]}}
        if not isinstance(saved, dict) or any(saved.get(key) != built[key] for key in ("type", "hyperparameters")):
            raise CheckpointError(f"checkpoint {self.out_dir}: optimizer: expected {built['type']} with "
                                  f"{built['hyperparameters']} (this run's optimizer and learning rate), got "
                                  f"{saved!r:.200}")
        if saved.get("step") != position.step:
            raise CheckpointError(f"checkpoint {self.out_dir}: optimizer.step: expected position.step "
                                  f"({position.step}), one update per training step, got {saved.get('step')!r}")

    def _saved_carry(self, meta: dict, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...] | None:
        """The state carried between batches, as many arrays as the description says, of the
        model's dtype."""
        carry = _carry_from(arrays)
        expected = meta.get("carry") or 0
        count = 0 if carry is None else len(carry)
        if expected != count:
            raise CheckpointError(f"checkpoint {self.out_dir}: carry: expected {expected} arrays of the state "
                                  f"carried between batches, found {count}")
        dtype = next(self.model.named_parameters())[1].dtype
        for k, array in enumerate(carry or ()):
            if array.dtype != dtype:
                raise CheckpointError(f"checkpoint {self.out_dir}: carry.{k}: expected {dtype} (the model's), "
                                      f"got {array.dtype}")
        return carry

    def _restore_generators(self, saved: dict) -> None:
        rngs = module_rngs(self.model)
        if set(rngs) - set(saved):
            raise CheckpointError(f"checkpoint {self.out_dir}: rng: expected the generators of "
                                  f"{', '.join(sorted(rngs))}, got {', '.join(sorted(saved)) or 'none'}")
        for name, rng in rngs.items():
            kind = type(rng.bit_generator).__name__
            try:
                rng.bit_generator.state = saved[name]
            except (TypeError, ValueError, KeyError, OverflowError):
                raise CheckpointError(f"checkpoint {self.out_dir}: rng.{name}: expected a {kind} state (bit_generator, "
                                      f"state.state and state.inc below 2**128, has_uint32, uinteger), got "
                                      f"{saved[name]!r:.120}") from None

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
        text = "".join(line + "\n" for line in kept)
        atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> str:
        """Train until the epochs, the time budget, early stopping or a signal end it; returns
        which: "epochs", "time", "early_stopping" or "interrupted" (SIGINT/SIGTERM, number in
        ``interrupted_by``; a resumable checkpoint is saved first). A run that has already
        stopped early returns at once."""
        config, position = self.config, self.position
        if self.world.is_root:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            clean_leftovers(self.out_dir)
            clean_leftovers(self.out_dir / BEST_DIR)
        started = time.perf_counter() - position.seconds
        progress = _progress_enabled(config.progress) and self.world.is_root
        if config.patience is not None and position.bad_epochs >= config.patience:
            self._say(f"[{self.task.name}] this run stopped early at epoch {position.epoch}; nothing left to train")
            return "early_stopping"
        self._tell("on_train_begin")
        with _signals_caught() as caught:
            reason = self._loop(started, progress, caught)
        self.interrupted_by = caught[0] if caught else None
        self._tell("on_train_end", reason)
        return reason

    def _tell(self, moment: str, *args: Any) -> None:
        if self.world.is_root:
            for callback in self.callbacks:
                getattr(callback, moment)(self, *args)

    def _loop(self, started: float, progress: bool, caught: list[int]) -> str:
        config, position = self.config, self.position
        reason = "epochs"
        position.partial_scores = None  # training goes on from the state validated mid-epoch
        while position.epoch < config.epochs or self._extending():
            if position.epoch == config.epochs and position.batch == 0:
                self._say(f"[{self.task.name}] {config.epochs} epochs done, validation improved within the last "
                          f"{config.patience or 'any'} epochs: training on within the time budget until early "
                          f"stopping")
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
                               "train_loss": window_loss / max(window_items, 1), "items_per_second": rate,
                               "grad_norm": self.grad_norm, "lr": self.optimizer.lr})
                    if bar is not None:
                        bar.set_postfix(loss=f"{window_loss / max(window_items, 1):.3f}", per_s=f"{rate:,.0f}")
                    window_loss, window_items, window_start = 0.0, 0, time.perf_counter()
                position.seconds = time.perf_counter() - started
                # every process must take the same branch: the root's clock decides the time
                # budget and the periodic save, a signal to any process stops them all
                time_up, signalled, save_due = self._agree(
                    config.max_seconds is not None and position.seconds >= config.max_seconds, bool(caught),
                    config.save_every_seconds is not None and position.batch < len(batches)
                    and time.perf_counter() - self._last_save >= config.save_every_seconds)
                if time_up:
                    reason = "time"
                    break
                if signalled:  # SIGINT or SIGTERM: stop at this batch boundary, resumable
                    reason = "interrupted"
                    break
                if save_due:
                    self.save()
            if bar is not None:
                bar.close()
            if reason in ("time", "interrupted") and position.batch < len(batches):
                self._end_of_period(partial=True)
                break
            position.epoch, position.batch = position.epoch + 1, 0
            self.carry = self.task.initial_carry()
            stop = self._end_of_period(partial=False)
            self._tell("on_epoch_end", position.epoch)
            if stop:
                reason = "early_stopping"
                break
            if reason in ("time", "interrupted"):
                break
        return reason

    def best_record(self) -> dict | None:
        """The validation record of the checkpoint that is scored (see ``checkpoint_to_score``):
        ``best/``'s, or the main checkpoint's mid-epoch one when that is better; None if none."""
        position = self.position
        mid_epoch = beats(position.partial_scores, position.best_scores)
        target = position.partial_scores if mid_epoch else position.best_scores
        for record in reversed(position.history) if mid_epoch else position.history:
            if bool(record.get("mid_epoch")) != mid_epoch:
                continue
            scores = self._ranking({k[6:]: v for k, v in record.items() if k.startswith("valid_")})
            if target is None and scores[0] == position.best or scores == target:
                return record
        return None

    def _ranking(self, metrics: dict[str, float]) -> list[float]:
        """The task's metrics, primary first, each signed so that more is better."""
        task = self.task
        keys = [task.primary_metric] + [k for k in task.metric_keys if k != task.primary_metric and k in metrics]
        signs = [-1.0 if k in LOWER_IS_BETTER else 1.0 for k in keys]
        return [sign * metrics[k] for sign, k in zip(signs, keys)]

    def _extending(self) -> bool:
        """Past ``epochs``: only with a time budget, and only while the last epochs improved
        (early stopping has not ended the run)."""
        config = self.config
        return config.until_stopped and config.max_seconds is not None and (
            config.patience is None or self.position.bad_epochs < config.patience)

    def _step(self, batch: Any) -> tuple[float, int]:
        """One update from one global batch: this process's share forward and backward, the
        gradients, loss and count summed over the processes, the gradients divided by the
        batch's count, then the checks, clipping and the optimizer. Returns the batch's summed
        loss and count."""
        self.model.zero_grad()
        world = self.world
        if world.size > 1:
            batch = shard(batch, self.task.batch_axes, world.rank, world.size)
        # Overflow in a diverging step is reported once, below, not as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                if is_empty(batch, self.task.batch_axes):  # fewer examples than processes: none here
                    loss_sum, count, carry = 0.0, 0, self.carry
                else:
                    loss_sum, count, carry = self.task.train_step(self.model, batch, self.carry)
            except ValueError as error:  # activations overflowed into the next layer's input check
                if "expected finite values" not in str(error):
                    raise
                self._diverged(f"activations became NaN/inf ({error})")
            if self._gradients is not None:
                loss_sum, count, _ = self._gradients.reduce(world, self.model, loss_sum, count, ())
            for _, _, grad in self.model.named_parameters():  # gradients of the batch's mean loss
                grad *= 1.0 / max(count, 1)
            if not math.isfinite(loss_sum):
                self._diverged(f"the loss is {loss_sum}")
            norm = clip_grad_norm(self.model, self.config.clip_norm if self.config.clip_norm else math.inf)
            self.grad_norm = float(norm)
            if not math.isfinite(norm):
                self._diverged(f"the gradient norm is {norm}")
            self.optimizer.step()
            if self.schedule is not None:
                self.schedule.step()
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, as divergence
            bad = [name for name, param, _ in self.model.named_parameters() if not np.isfinite(param.sum())]
        if bad:
            self._diverged(f"parameters {', '.join(bad[:3])} became NaN/inf")
        self.carry = carry
        return loss_sum, count

    def _diverged(self, what: str, where: str | None = None) -> None:
        where = where or f"epoch {self.position.epoch + 1}, step {self.position.step + 1}"
        kept = (f"the last good checkpoint in {self.out_dir} is untouched" if has_checkpoint(self.out_dir)
                else "no checkpoint was written")
        raise DivergenceError(f"training diverged at {where}: {what}; {kept} (try a lower --lr or --clip)")

    def _end_of_period(self, partial: bool) -> bool:
        """Validate, log, checkpoint; returns True when early stopping says stop."""
        position, task = self.position, self.task
        metrics = None
        if self.world.is_root:  # the others wait for its metrics: every process decides alike
            self.model.eval()  # no dropout, and no draws from its generator: resume stays exact
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported below, once
                metrics = task.evaluate(self.model, "valid")
            self.model.train()
        metrics = self.world.broadcast(metrics)
        epoch = self.epochs_done() if partial else position.epoch
        if not math.isfinite(metrics["loss"]):  # parameters huge but finite: nothing worth a checkpoint
            self._diverged(f"the validation loss is {metrics['loss']}", f"epoch {epoch:.2f}, step {position.step}")
        score, scores = metrics[task.primary_metric], self._ranking(metrics)
        # A tie on the primary metric (exact match stuck at 0 while a model learns to spell) is
        # broken by the task's other metrics (character error rate), so a plateau of the primary
        # metric is not mistaken for no progress.
        if position.best_scores is None and position.best is not None:  # a checkpoint from before ties
            position.best_scores = [self._ranking({task.primary_metric: position.best})[0]]
        # Only epoch ends enter best/ and early stopping's count: a mid-epoch state (a time
        # budget, a signal) is one an uninterrupted run never validates, so a resumed run keeps
        # neither it nor its score and ends, best/ included, as the uninterrupted one would.
        save_best = False
        if partial:
            position.partial_scores = scores
        elif position.best_scores is None or scores > position.best_scores:
            position.best, position.best_scores, position.bad_epochs = score, scores, 0
            save_best = True
        else:
            position.bad_epochs += 1
        record = {"epoch": epoch, "step": position.step, "seconds": round(position.seconds, 2),
                  **({"mid_epoch": True} if partial else {}), **{f"valid_{k}": v for k, v in metrics.items()}}
        position.history.append(record)
        self._log(record)
        self._say(f"[{task.name}] epoch {record['epoch']:.2f}  step {position.step}  {position.seconds:.0f}s  "
                  + "  ".join(f"valid {k} {v:.4f}" for k, v in metrics.items()))
        # best/ first: a kill between the two writes resumes from the previous checkpoint, and the
        # replayed (deterministic) training reaches this state and writes the same best/ again
        if save_best:
            self.save(self.out_dir / BEST_DIR)
        self.save()
        if self.world.is_root:
            _plot_curves(self.out_dir)
        patience = self.config.patience
        return patience is not None and position.bad_epochs >= patience

    def _log(self, record: dict) -> None:
        if not self.world.is_root:
            return
        append_record(self.out_dir, record)  # a line cut short is dropped on resume (_forget_metrics_after)
        self._tell("on_log", record)

    def _say(self, message: str) -> None:
        """A line on standard error, from the root process only."""
        if self.world.is_root:
            print(message, file=sys.stderr, flush=True)

    def _agree(self, time_up: bool, signalled: bool, save_due: bool) -> tuple[bool, bool, bool]:
        """The decisions every process takes together (a collective when there are several):
        the time budget and the periodic save as the root's clock says, a stop as soon as any
        process got a signal."""
        if self.world.size == 1:
            return time_up, signalled, save_due
        root = self.world.is_root
        votes = np.array([time_up and root, signalled, save_due and root], dtype=np.float64)
        self.world.allreduce_sum(votes)
        return bool(votes[0]), bool(votes[1]), bool(votes[2])


@contextlib.contextmanager
def _signals_caught() -> Iterator[list[int]]:
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
            raise Interrupted(signum)
        caught.append(signum)

    for sig in previous:
        signal.signal(sig, note)
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _carry_from(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...] | None:
    """The carried state saved as ``carry.0``, ``carry.1``, ... (one array per state)."""
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
