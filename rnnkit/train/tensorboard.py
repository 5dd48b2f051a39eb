"""TensorBoard event files for a run, written by a trainer callback (``pip install "rnnkit[tensorboard]"``,
which installs tensorboardX; ``tensorboard --logdir runs/`` shows every run under ``runs/``).

What is written, into ``DIR/tensorboard/`` unless told otherwise:

- scalars, per logged step: ``train/loss``, ``train/grad_norm`` (before clipping), ``train/lr``,
  ``train/items_per_second``, ``train/epoch``; per validation: ``valid/loss`` and each metric;
  after the run was scored (:meth:`TensorBoardCallback.add_result`): ``test/*``;
- at each epoch end, and where the run ends between two: a histogram of every parameter
  (``weights/NAME``) and of its last gradient (``gradients/NAME``); the task's text samples
  (``samples``, from ``task.show``) and its figures (``figures/NAME``: ``loss``, translate's
  ``attention``, speech's ``alignment``), which run the model: drawn while they stay within
  ``DRAWING_SHARE`` of the training time, and always for the run's last state;
- the run's options (model options and training settings, the task and its data) as
  hyperparameters, so that runs with other options line up in TensorBoard's HPARAMS tab with
  their last validation and test figures.

The callback changes nothing that decides the run: samples and figures are drawn in eval mode,
and every module's mode and random generator is checked and put back afterwards, so a resumed
run stays bit for bit the uninterrupted one. The event files follow the run: a fresh run in a
directory starts them over; a resumed run drops what was logged after its checkpoint (steps
that it logs again), as ``metrics.jsonl`` does.
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnkit.io.checkpoint import atomic_write, clean_leftovers
from rnnkit.train.callbacks import Callback
from rnnkit.train.runs import CURVE_FILE

if TYPE_CHECKING:
    from rnnkit.train.trainer import Trainer

__all__ = ["TENSORBOARD_DIR", "TensorBoardCallback", "available", "for_command"]

#: the event files' directory inside a run directory
TENSORBOARD_DIR = "tensorboard"
#: tags that a run writes again whenever it (re)starts or ends: a resumed run drops the old ones
_HPARAMS_START, _HPARAMS_END = "_hparams_/session_start_info", "_hparams_/session_end_info"
_RESULT_PREFIX = "test/"
#: training settings that change how a run is watched, not what it learns
_NOT_HYPERPARAMETERS = ("progress", "save_every_seconds", "log_every")
_EVENT_FILES = "events.out.tfevents.*"
#: equal-width buckets per histogram, as tf.summary.histogram draws them (tensorboardX's default
#: keeps TensorFlow 1's ~570 fixed buckets: ten times the bytes for the same picture)
HISTOGRAM_BINS = 30
#: the share of training time that samples and figures may take (they run the model: speech's
#: decode the test split, 0.6 s after a 3 s epoch): an epoch end draws them while their cost so
#: far stays within it, and the run's last state always has them
DRAWING_SHARE = 0.02
_INSTALL = 'TensorBoard logs need tensorboardX: pip install "rnnkit[tensorboard]"'


def available() -> bool:
    """Whether tensorboardX can be imported (without importing it: it imports torch when present)."""
    return importlib.util.find_spec("tensorboardX") is not None


def for_command(setting: bool | None, out: Path) -> TensorBoardCallback | None:
    """The callback ``rnnkit train`` runs with: ``--tensorboard`` (True) needs tensorboardX,
    ``--no-tensorboard`` (False) writes none, and without either (None) it is on where
    tensorboardX is installed."""
    if setting is None:
        setting = available()
    elif setting and not available():
        raise ImportError(f"--tensorboard: {_INSTALL}")
    return TensorBoardCallback(Path(out) / TENSORBOARD_DIR) if setting else None


class TensorBoardCallback(Callback):
    """Writes a run's TensorBoard event files (see the module's text); give it to a
    :class:`~rnnkit.train.trainer.Trainer`, or to ``fit(..., callbacks=[...])``.

    Args:
        log_dir: where the event files go; None: ``tensorboard/`` in the run directory. A fresh
            run removes the event files it finds there (an earlier run's).
        histograms: write parameter and gradient histograms.
        samples: write the task's text samples (``task.show``).
        figures: write the task's figures and the loss curve as images.
        drawing_share: the share of training time that samples and figures may take (1: at
            every epoch end).
    """

    def __init__(self, log_dir: str | Path | None = None, *, histograms: bool = True, samples: bool = True,
                 figures: bool = True, drawing_share: float = DRAWING_SHARE) -> None:
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.histograms, self.samples, self.figures = histograms, samples, figures
        self.drawing_share = drawing_share
        self.directory: Path | None = None  # where this run writes, once it began
        self._writer: Any = None
        self._step: int | None = None  # the last step written by training
        self._histograms_at: int | None = None  # the step of the last histograms
        self._drawn_at: int | None = None  # the step of the last samples and figures
        self._began = 0.0  # perf_counter at this process's start of training
        self._drawing = (0.0, 0.0)  # seconds spent drawing samples and figures: in all, the last time

    # -- the trainer's moments ------------------------------------------------------------------
    def on_train_begin(self, trainer: Trainer) -> None:
        SummaryWriter = _tensorboardx().SummaryWriter
        self.close()
        directory = self.log_dir or trainer.out_dir / TENSORBOARD_DIR
        directory.mkdir(parents=True, exist_ok=True)
        clean_leftovers(directory)
        step = trainer.position.step
        if step == 0:  # what is there is an earlier run's (or a kill's before the first checkpoint)
            for path in directory.glob(_EVENT_FILES):
                path.unlink()
        else:
            forget_events_after(directory, step)
        self.directory, self._step, self._histograms_at, self._drawn_at = directory, step, None, None
        self._began, self._drawing = time.perf_counter(), (0.0, 0.0)
        # Unique and in order: two writers in one second would otherwise share a file name, and
        # the second would truncate the first; readers take the files in name order.
        self._writer = SummaryWriter(str(directory), flush_secs=30, filename_suffix=f".{time.time_ns()}")
        self._write_summary(_hparams(trainer, end=False), 0)
        self._writer.flush()

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self._writer is None:
            return
        step = int(record["step"])
        validation = any(key.startswith("valid_") for key in record)
        for key, value in record.items():
            if not _is_number(value) or key == "step":
                continue
            if validation:
                if key.startswith("valid_"):
                    self._writer.add_scalar(f"valid/{key[6:]}", float(value), step)
            else:
                self._writer.add_scalar(f"train/{key.removeprefix('train_')}", float(value), step)
        self._step = step
        if validation:  # at most one per epoch: on disk before the checkpoint that follows
            self._writer.flush()

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self._writer is not None:
            self._snapshot(trainer, final=False)

    def on_train_end(self, trainer: Trainer, reason: str) -> None:
        if self._writer is None:
            return
        # A run that is not interrupted ends here for good (time budget, epochs, early stopping):
        # its last state is shown even when it fell between two epoch ends. An interrupted run
        # goes on from this step when resumed.
        if reason != "interrupted":
            self._snapshot(trainer, final=True)
            self._write_summary(_hparams(trainer, end=True), trainer.position.step)
        self._step = trainer.position.step
        self.close()

    # -- after the run --------------------------------------------------------------------------
    def add_result(self, result: Mapping[str, Any]) -> None:
        """The run's scores on its test split, after it was scored: every finite number of
        ``result`` (``rnnkit train``'s result line: the metrics, ``test_loss``, ``baseline_*``)
        as ``test/NAME`` at the run's last step, where the HPARAMS tab shows it beside the options.
        Keys that say how the run went rather than how the model scores (``epochs``, ``steps``,
        ``seconds``) are left out. Nothing happens before the run trained."""
        if self.directory is None or self._step is None:
            return
        suffix = f".{time.time_ns()}"
        with _tensorboardx().SummaryWriter(str(self.directory), filename_suffix=suffix) as writer:
            for key, value in result.items():
                if key in ("epochs", "steps", "seconds") or not _is_number(value) or not math.isfinite(value):
                    continue
                writer.add_scalar(_RESULT_PREFIX + key.removeprefix("test_"), float(value), self._step)

    def close(self) -> None:
        """Flush and close the event file (the trainer's end does it; for a run that raised)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- what an epoch end shows ----------------------------------------------------------------
    def _snapshot(self, trainer: Trainer, final: bool) -> None:
        """Histograms, and samples and figures where ``final`` or within ``drawing_share``; each
        once per step."""
        step = trainer.position.step
        writer = self._writer
        if self.histograms and self._histograms_at != step:
            for name, value, grad in trainer.model.named_parameters():
                writer.add_histogram(f"weights/{name}", value, step, bins=HISTOGRAM_BINS)
                writer.add_histogram(f"gradients/{name}", grad, step, bins=HISTOGRAM_BINS)
            self._histograms_at = step
        spent, last = self._drawing
        started = time.perf_counter()
        if self._drawn_at != step and (final or spent + last <= self.drawing_share * (started - self._began)):
            if self.samples:
                shown = self._without_side_effects(trainer, lambda: trainer.task.show(trainer.model),
                                                   "samples")
                if shown:
                    writer.add_text("samples", _preformatted(shown), step)
            if self.figures:
                self._add_figures(trainer, step)
            last = time.perf_counter() - started
            self._drawing, self._drawn_at = (spent + last, last), step
        writer.flush()

    def _add_figures(self, trainer: Trainer, step: int) -> None:
        figures = []
        curve = trainer.out_dir / CURVE_FILE
        if curve.is_file():
            figures.append(("loss", curve.read_bytes()))
        # Into a directory of its own, not the run's: the run directory holds what the command
        # writes once, at the end (_report), and nothing half-done if a kill comes now.
        with tempfile.TemporaryDirectory(prefix="rnnkit-tensorboard-") as scratch:
            paths = self._without_side_effects(
                trainer, lambda: trainer.task.pictures(trainer.model, Path(scratch)), "figures") or []
            figures += [(Path(path).stem, Path(path).read_bytes()) for path in paths]
        for name, png in figures:
            self._write_summary(_image_summary(f"figures/{name}", png), step)

    def _without_side_effects(self, trainer: Trainer, draw: Any, what: str) -> Any:
        """``draw()`` in eval mode; afterwards every module's mode is as before, and a random
        generator it drew from is put back: the run must go on exactly as without this callback.
        Where it drew, or failed, ``what`` is switched off for the run, with a line on standard
        error: an observer does not end the run it watches."""
        from rnnkit.train.trainer import module_rngs

        model = trainer.model
        modes = [(module, module.training) for _, module in model.named_modules()]
        generators = module_rngs(model)
        states = {name: rng.bit_generator.state for name, rng in generators.items()}
        model.eval()
        out, problem = None, ""
        try:
            out = draw()
        except ImportError:  # matplotlib is optional: no figures, as no loss.png without it
            pass
        except Exception as error:
            problem = f"failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        finally:
            for module, mode in modes:
                module.training = mode
            drew = [name for name, rng in generators.items() if rng.bit_generator.state != states[name]]
            for name in drew:
                generators[name].bit_generator.state = states[name]
        if drew:
            problem = f"drew random numbers from the model's generators ({', '.join(drew)}); put back"
        if problem:
            setattr(self, what, False)
            print(f"[{trainer.task.name}] tensorboard: the task's {what} {problem}; not written for this run",
                  file=sys.stderr)
            return None
        return out

    def _write_summary(self, summary: Any, step: int) -> None:
        self._writer.file_writer.add_summary(summary, step)


def _tensorboardx() -> Any:
    """tensorboardX, imported without torch where torch is not loaded yet: it imports torch only
    to take torch tensors, which rnnkit never gives it, and that import cost a run 1.2 s and
    180 MB more at its start (0.25 s and 48 MB without; 2-vCPU Xeon, torch 2.13)."""
    blocked = "torch" not in sys.modules and "tensorboardX" not in sys.modules
    if blocked:  # a None entry makes "import torch" fail as if torch were not installed
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import tensorboardX
    except ImportError:
        if not blocked:
            raise ImportError(_INSTALL) from None
        blocked = False
        del sys.modules["torch"]
        try:  # a version that needs torch after all
            import tensorboardX
        except ImportError:
            raise ImportError(_INSTALL) from None
    finally:
        if blocked and sys.modules.get("torch", False) is None:
            del sys.modules["torch"]
    return tensorboardX


def forget_events_after(directory: str | Path, step: int) -> None:
    """Drop from the event files in ``directory`` every event after ``step`` (a resumed run logs
    those steps again), the hyperparameters and test scores (it writes them again), and a last
    event cut short by a kill; a file left with nothing is removed. Readers then see each step
    once, whether or not they purge data orphaned by a restart."""
    Event = _tensorboardx().proto.event_pb2.Event
    for path in sorted(Path(directory).glob(_EVENT_FILES)):
        data = path.read_bytes()
        kept, useful = [], False
        for record, payload in _records(data):
            event = Event.FromString(payload)
            tags = [value.tag for value in event.summary.value]
            if event.step <= step and not any(
                    tag in (_HPARAMS_START, _HPARAMS_END) or tag.startswith(_RESULT_PREFIX) for tag in tags):
                kept.append(record)
                useful = useful or not event.HasField("file_version")
        if not useful:
            path.unlink()
        elif sum(map(len, kept)) != len(data):  # something dropped, or a record cut short
            atomic_write(path, lambda temporary: Path(temporary).write_bytes(b"".join(kept)))


def _records(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The TFRecords of an event file: (the whole record, its payload); a record cut short
    (the last one, after a kill) ends the file. Layout: length (u64), its CRC, payload, CRC."""
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        end = offset + 12 + length + 4
        if end > len(data):
            return
        yield data[offset:end], data[offset + 12:end - 4]
        offset = end


def _hparams(trainer: Trainer, end: bool) -> Any:
    """The session start (the options) or end summary of TensorBoard's HPARAMS plugin. No
    experiment summary: TensorBoard then gathers the columns from every run's session start, so
    runs of other tasks and options line up in one table."""
    from tensorboardX.summary import hparams

    # data: the file trained on; none for a task's default data and for fit's arrays
    options: dict[str, Any] = {"task": trainer.task.name, "data": trainer.task.data_path}
    options |= {key: _hparam_value(value) for key, value in trainer.model_options.items()}
    options |= {key: _hparam_value(value) for key, value in asdict(trainer.config).items()
                if key not in _NOT_HYPERPARAMETERS and key not in options}
    _, start, finish = hparams(options, {})
    return finish if end else start


def _hparam_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int, float)):
        return value  # None is left out: TensorBoard shows the option as not set
    return json.dumps(value, default=str)


def _image_summary(tag: str, png: bytes) -> Any:
    """An image summary of PNG bytes as they are (no decoding and encoding again): its size
    and colour type come from the PNG's header."""
    from tensorboardX.proto.summary_pb2 import Summary

    width, height = struct.unpack(">II", png[16:24])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(png[25], 3)  # grey, RGB, grey+alpha, RGBA
    image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def _preformatted(text: str) -> str:
    """Text shown as written: TensorBoard renders markdown, where an indented line is code."""
    return "\n".join("    " + line for line in text.splitlines())


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)
