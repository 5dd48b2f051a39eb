"""What every task tells the trainer and the command line: its data, its model, one training
step, its metrics and their baselines, and how to show what the model learned."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from rnnkit.models.base import Model

#: the architecture a task builds: each task's methods take its own model (``Task[ManyToMany]``)
ModelT = TypeVar("ModelT", bound=Model)


class TaskError(ValueError):
    """A problem with the user's data or request, reported as one line by the CLI."""


class Task(Generic[ModelT]):
    """Base class. A subclass loads its data in ``__init__`` (default data, or the user's
    ``--data`` file) and implements the methods below. ``meta()`` returns what is needed to
    rebuild the task without its training data (vocabularies, scalers) for eval/predict/sample.
    """

    name: str = ""
    metric_keys: tuple[str, ...] = ()
    primary_metric: str = ""
    #: model options a user may set from the command line, with defaults
    defaults: dict[str, Any] = {}

    #: whether ``--valid FILE`` and ``--test FILE`` apply (the tasks whose files ``_splits`` reads)
    takes_split_files = False

    def __init__(
        self, data: str | None = None, seed: int = 0, meta: dict | None = None, score_file: str | None = None,
        options: dict[str, Any] | None = None, load_data: bool = True, valid_file: str | None = None,
        test_file: str | None = None,
    ) -> None:
        """``data``: the dataset (the user's file, or None for the default data), split into
        train/valid/test as in training. ``meta``: from a checkpoint (tokenizers, scalers).
        ``score_file``: a file in the task's format to score as a whole: it becomes the only
        split, "test" (``rnnkit eval DIR --data FILE``). ``options``: the run's options over
        ``defaults``; those that shape the data (``tokens``, ``min_freq``, ``vocab_size``) are
        used here, before the data is prepared. ``load_data=False`` (with ``meta``): no data is
        read at all, for ``predict`` and ``sample``, which need only what the checkpoint saved.
        ``valid_file``, ``test_file``: files in the ``--data`` format that are the validation and
        test splits instead of the shares carved from the data (which then train)."""
        if (valid_file or test_file) and not self.takes_split_files:
            raise TaskError(f"{self.name}: --valid and --test do not apply (they give the text and speech tasks "
                            f"validation and test files of their own)")
        self.data_path = data
        self.valid_path, self.test_path = valid_file, test_file
        self.seed = seed
        self.score_file = score_file
        self.load_data = load_data
        self.options: dict[str, Any] = {**self.defaults, **(options or {})}
        #: lines about how the data was prepared (the tokens chosen, and why)
        self.notes: list[str] = []
        #: problems with the data that make a poor model likely, each naming its remedy (the
        #: command prints them as "[task] warning: ...")
        self.warnings: list[str] = []
        #: how validation and test repeat training (see ``_check_repeats``), for the run's log
        self.repeats: dict[str, float] = {}

    def _splits(self, load: Callable[[str | None], dict], read: Callable[[str], Any]) -> dict:
        """The splits to work on: ``{"test": read(score_file)}``, or ``load(data)`` with the
        validation and test files read in place of the splits carved from the data (the carved
        shares join the training split). Says in ``notes`` where validation comes from."""
        if not self.load_data:
            return {}
        if self.score_file is not None:
            return {"test": read(self.score_file)}
        splits = load(self.data_path)
        for name, path in (("valid", self.valid_path), ("test", self.test_path)):
            if path is not None:
                splits["train"] = _joined(splits["train"], splits[name])
                splits[name] = read(path)
        self._check_repeats(splits)
        source = self.data_path or "the default data"
        self.notes.append(f"[{self.name}] validation: {self.valid_path} (--valid)" if self.valid_path else
                          f"[{self.name}] validation: {_size(splits['valid'])} carved from {source} (the task's "
                          f"split of it); give held-out data of your own with --valid FILE")
        return splits

    def _check_repeats(self, splits: dict) -> None:
        """Validation and test examples that repeat training ones reward memorizing them. A text
        stream: the share of validation lines (of ``REPEAT_LINE`` characters or more) found
        verbatim in training, a warning from ``REPEAT_SHARE`` on. Labelled examples: those whose
        input appears in training are dropped from the user's data (and counted); the default
        data's splits stay as published, for comparison with earlier figures, with a note."""
        train = splits.get("train")
        if isinstance(train, str):
            share, lines = repeated_lines(splits["valid"], train)
            self.repeats = {"valid_lines_in_train": share}
            if share >= REPEAT_SHARE:
                self.warnings.append(
                    f"{share:.0%} of the validation text's {lines:,} lines of {REPEAT_LINE}+ characters appear "
                    f"verbatim in the training text: validation rewards memorizing them, and early stopping "
                    f"then keeps the most memorized model. Give held-out documents with --valid FILE, or "
                    f"deduplicate the text")
            return
        if not (isinstance(train, list) and train and isinstance(train[0], tuple)):
            return  # speech's columns: transcripts of spoken digits repeat by design
        seen = {_input_key(example) for example in train}
        own = self.data_path is not None or self.valid_path is not None or self.test_path is not None
        self.repeats = {}
        for name in ("valid", "test"):
            repeated = sum(_input_key(example) in seen for example in splits.get(name, ()))
            self.repeats[f"{name}_in_train"] = repeated
            if not repeated:
                continue
            total = len(splits[name])
            if own and repeated == total:  # nothing would be left to score: kept, and said
                self.warnings.append(f"every one of the {total:,} {name} examples repeats a training input: its "
                                     f"figures measure memorizing; give other data with --{name} FILE")
            elif own:
                splits[name] = [example for example in splits[name] if _input_key(example) not in seen]
                self.notes.append(f"[{self.name}] dropped {repeated:,} of {total:,} {name} examples whose input "
                                  f"repeats a training example (deduplicated across splits)")
            else:
                self.notes.append(f"[{self.name}] {repeated:,} of {total:,} {name} examples repeat a training input "
                                  f"(the default data's splits are kept as published)")

    def describe(self) -> str:
        """One line about the data: source, sizes, baseline."""
        return self.name

    def token_kinds(self) -> dict[str, str]:
        """The tokens of each text side ("text"; "source" and "target"): char, word or bpe."""
        return {side: tokenizer.kind for side, tokenizer in (("text", getattr(self, "tokenizer", None)),
                                                             ("source", getattr(self, "source_tokenizer", None)),
                                                             ("target", getattr(self, "target_tokenizer", None)))
                if tokenizer is not None}

    def num_train_examples(self) -> int:
        """Training examples (texts, sentences, pairs, windows): what early stopping's patience
        is sized by."""
        return len(getattr(self, "splits", {}).get("train", ()))

    #: the fewest updates a run with the default epochs makes: on a small training set the default
    #: epochs are too few updates to learn from it (README, "Small data"); None: epochs as set
    min_updates: int | None = None
    #: the most epochs :meth:`sized_epochs` sets (early stopping ends most runs long before)
    MAX_SIZED_EPOCHS = 200

    def sized_epochs(self, epochs: int) -> int:
        """The epochs of a run whose ``--epochs`` is not given: ``epochs``, or as many more as make
        :attr:`min_updates` updates (at most ``MAX_SIZED_EPOCHS``), said in :attr:`notes`. Early
        stopping still ends the run once validation stops improving."""
        if self.min_updates is None:
            return epochs
        per_epoch = len(self.train_batches(0))
        if per_epoch == 0 or epochs * per_epoch >= self.min_updates:
            return epochs
        sized = min(self.MAX_SIZED_EPOCHS, math.ceil(self.min_updates / per_epoch))
        self.notes.append(f"[{self.name}] epochs: up to {sized} (not {epochs}), because {per_epoch:,} batches per epoch "
                          f"make {epochs * per_epoch:,} updates in {epochs} epochs, fewer than the "
                          f"{self.min_updates:,} a model needs to learn; early stopping ends the run when validation "
                          f"stops improving; set --epochs to choose")
        return sized

    # -- model ----------------------------------------------------------------------------
    def sized_options(self, options: dict[str, Any], given: set[str]) -> dict[str, Any]:
        """``options`` with what the amount of training data decides, for the options the user did
        not set (``given``: the keys set on the command line), each decision a line in
        :attr:`notes`. The default decides nothing."""
        return options

    def build_model(self, options: dict[str, Any], dtype: type = np.float32) -> ModelT:
        raise NotImplementedError

    # -- training -------------------------------------------------------------------------
    def train_batches(self, epoch: int) -> Sequence[Any]:
        """The training batches of ``epoch``, in order; a pure function of (seed, epoch) so that
        a resumed run sees exactly the batches the interrupted one would have."""
        raise NotImplementedError

    def train_step(self, model: ModelT, batch: Any, carry: Any) -> tuple[float, int, Any]:
        """Forward, loss and backward for one batch, or one process's share of it: gradients
        of the *summed* loss. Returns the summed loss, the number of items it sums over (tokens,
        examples) and the state carried to the next batch. The trainer divides the gradients by
        the count of the whole batch (over every process), so the learning rate depends neither
        on the batch size nor on the number of processes."""
        raise NotImplementedError

    #: for each entry of a training batch, the axis its examples lie along (``(T, B)`` ids: 1,
    #: lengths and labels ``(B,)``: 0, a list: 0): how data-parallel training cuts a batch into
    #: one share per process (:func:`rnnkit.train.distributed.shard`)
    batch_axes: tuple[int, ...] = ()

    def initial_carry(self) -> Any:
        return None

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, model: ModelT, split: str = "valid") -> dict[str, float]:
        """Metrics on a split ("valid", "test"), always including ``loss`` (mean per item)."""
        raise NotImplementedError

    def baseline(self, split: str = "test") -> dict[str, float]:
        """The trivial predictor's metrics, keyed like ``metric_keys``."""
        raise NotImplementedError

    def show(self, model: ModelT) -> str:
        """A few lines a person reads after training: samples, predictions."""
        return ""

    #: what ``predict`` reads, one per input, for messages; None: the task does not predict
    predict_inputs: str | None = None

    def predict(self, model: ModelT, inputs: Iterable[str]) -> list[str]:
        raise TaskError(f"task {self.name!r} does not support predict")

    def check_predict_inputs(self, inputs: Sequence[str]) -> None:
        """Refuse empty and blank inputs, naming the first: no task invents an answer to nothing."""
        if self.predict_inputs is None:
            raise TaskError(f"task {self.name!r} does not support predict")
        for number, text in enumerate(inputs, 1):
            if not text.strip():
                raise TaskError(f"predict: input {number} is {'blank' if text else 'empty'}; the {self.name} task "
                                f"predicts from {self.predict_inputs}")

    def sample(self, model: ModelT, prime: str, length: int, temperature: float, seed: int) -> str:
        raise TaskError(f"task {self.name!r} does not support sample; try 'rnnkit predict'")

    #: the file name under which ``write_split`` saves a held-out split in a run directory (its
    #: extension the task's format); None: the task cannot, and eval reads the training data
    split_file: str | None = None
    #: True: ``split_file`` is a copy of the whole training file, read as ``data`` (forecast: the
    #: test split is scored after the whole series before it)
    split_file_is_data = False

    def write_split(self, split: str, path: Path) -> None:
        """Write ``split`` in the task's ``--data`` format, such that scoring the file as a
        whole (``score_file``) gives that split's metrics: so ``eval`` of a run needs only the
        run, not the training file."""
        raise NotImplementedError

    def pictures(self, model: ModelT, directory: Path) -> list[Path]:
        """Figures of what the trained model does, written into ``directory`` (the run's); the
        paths written. Default: none."""
        return []

    def meta(self) -> dict[str, Any]:
        return {}


def _joined(first: Any, second: Any) -> Any:
    """Two pieces of one split kind as one: texts and lists concatenated, tuples of lists
    (speech's frames, transcripts, voices) element by element."""
    if isinstance(first, tuple):
        return tuple(_joined(a, b) for a, b in zip(first, second))
    return first + second


def _size(split: Any) -> str:
    if isinstance(split, str):
        return f"{len(split):,} characters"
    return f"{len(split[0] if isinstance(split, tuple) else split):,} examples"


#: validation lines this long or longer count when checking a text for repeats (shorter ones,
#: "Exeunt." or a speaker's name, repeat in any text)
REPEAT_LINE = 30
#: the share of repeated validation lines from which the repeats are a warning
REPEAT_SHARE = 0.05


def repeated_lines(valid: str, train: str) -> tuple[float, int]:
    """The share of ``valid``'s lines of ``REPEAT_LINE``+ characters (stripped) that are lines of
    ``train`` too, and how many such lines ``valid`` has."""
    lines = [line.strip() for line in valid.splitlines() if len(line.strip()) >= REPEAT_LINE]
    if not lines:
        return 0.0, 0
    known = {line.strip() for line in train.splitlines() if len(line.strip()) >= REPEAT_LINE}
    return sum(line in known for line in lines) / len(lines), len(lines)


def _input_key(example: tuple) -> Any:
    """What an example is read from: a text, a source sentence, a sentence's words."""
    first = example[0]
    return tuple(first) if isinstance(first, list) else first
