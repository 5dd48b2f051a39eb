"""What every task tells the trainer and the command line: its data, its model, one training
step, its metrics and their baselines, and how to show what the model learned."""

from __future__ import annotations

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

    def __init__(
        self, data: str | None = None, seed: int = 0, meta: dict | None = None, score_file: str | None = None,
        options: dict[str, Any] | None = None, load_data: bool = True,
    ) -> None:
        """``data``: the dataset (the user's file, or None for the default data), split into
        train/valid/test as in training. ``meta``: from a checkpoint (tokenizers, scalers).
        ``score_file``: a file in the task's format to score as a whole: it becomes the only
        split, "test" (``rnnkit eval DIR --data FILE``). ``options``: the run's options over
        ``defaults``; those that shape the data (``tokens``, ``min_freq``, ``vocab_size``) are
        used here, before the data is prepared. ``load_data=False`` (with ``meta``): no data is
        read at all, for ``predict`` and ``sample``, which need only what the checkpoint saved."""
        self.data_path = data
        self.seed = seed
        self.score_file = score_file
        self.load_data = load_data
        self.options: dict[str, Any] = {**self.defaults, **(options or {})}
        #: lines about how the data was prepared (the tokens chosen, and why)
        self.notes: list[str] = []
        #: problems with the data that make a poor model likely, each naming its remedy (the
        #: command prints them as "[task] warning: ...")
        self.warnings: list[str] = []

    def _splits(self, load: Callable[[str | None], dict], read: Callable[[str], Any]) -> dict:
        """The splits to work on: ``{"test": read(score_file)}``, or ``load(data)``."""
        if not self.load_data:
            return {}
        if self.score_file is not None:
            return {"test": read(self.score_file)}
        return load(self.data_path)

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

    # -- model ----------------------------------------------------------------------------
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
