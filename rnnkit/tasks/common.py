"""Pieces the sequence tasks share: tokenising text, and running a model over padded batches."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from rnnkit.data import BatchIterator

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Words and single punctuation marks: ``"Don't!" -> ["don", "'", "t", "!"]``."""
    return _TOKEN.findall(text.lower() if lower else text)


def detokenize(tokens: list[str]) -> str:
    """Join tokens with spaces, re-attaching hyphens, apostrophes and closing punctuation."""
    text = " ".join(tokens)
    text = re.sub(r" ?([-']) ?", r"\1", text)
    return re.sub(r" ([,.;:!?)])", r"\1", text)


def batches(seqs: list[np.ndarray], batch_size: int, seed: int | None, epoch: int = 0, shuffle: bool = True):
    """Length-bucketed padded batches (``Batch(index, ids (T, B), lengths)``) of one epoch."""
    iterator = BatchIterator(seqs, batch_size, seed=seed if shuffle else None, shuffle=shuffle)
    return list(iterator.epoch(epoch))


def model_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The recurrent options every task's model takes, from the CLI's option names. A checkpoint
    saved before ``--cell`` existed has no ``cell`` entry: its model was an Elman RNN."""
    return {"cell": options.get("cell", "rnn"), "num_layers": options["layers"],
            "nonlinearity": options["nonlinearity"], "dropout": options["dropout"]}
