"""Pieces the sequence tasks share: tokenizers fitted to the data (with the warnings that say
when they fit badly), label checks, and running a model over padded batches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from rnnkit.data import BatchIterator
from rnnkit.data.tokenizers import (
    DEFAULT_MIN_FREQ,
    MAX_WORD_OOV,
    TextStats,
    Tokenizer,
    default_bpe_vocab_size,
    detokenize,
    fit_tokenizer,
    resolve_tokens,
    tokenize,
    tokenizer_from_dict,
)

__all__ = ["batches", "check_labels", "detokenize", "expect", "fit_text_tokenizer", "label_warnings", "model_kwargs",
           "saved_entry", "saved_tokenizer", "tokenize", "vocabulary_warnings"]

T = TypeVar("T")

#: the most frequent class holding this share of the training examples or more is "heavy imbalance"
IMBALANCED_SHARE = 0.8
#: ... or the rarest class this many times fewer examples than the most frequent one
IMBALANCED_RATIO = 20
#: a text symbol seen this few times on average in training cannot be learned
MIN_MEAN_COUNT = 3.0


def batches(seqs: list[np.ndarray], batch_size: int, seed: int | None, epoch: int = 0, shuffle: bool = True):
    """Length-bucketed padded batches (``Batch(index, ids (T, B), lengths)``) of one epoch."""
    iterator = BatchIterator(seqs, batch_size, seed=seed if shuffle else None, shuffle=shuffle)
    return list(iterator.epoch(epoch))


def model_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The recurrent options every task's model takes, from the CLI's option names. A checkpoint
    saved before ``--cell`` existed has no ``cell`` entry: its model was an Elman RNN. Recurrent
    dropout, zoneout and layer normalisation are off unless the options ask for them."""
    return {"cell": options.get("cell", "rnn"), "num_layers": options["layers"],
            "nonlinearity": options["nonlinearity"], "dropout": options["dropout"],
            "recurrent_dropout": options.get("recurrent_dropout", 0.0), "zoneout": options.get("zoneout", 0.0),
            "layer_norm": options.get("layer_norm", False)}


def fit_text_tokenizer(task: str, side: str, requested: str, train: Sequence[str], valid: Sequence[str],
                       options: dict[str, Any]) -> tuple[Tokenizer, str, list[str]]:
    """The tokenizer of one side of a text task (``side``: "text", "source", "target"), a line
    that says what was chosen and why, and the warnings about how it fits (``vocabulary_warnings``).
    ``requested`` is "auto" or a kind; ``options`` gives ``min_freq`` and ``vocab_size``."""
    min_freq = int(options.get("min_freq") or DEFAULT_MIN_FREQ)
    choice = resolve_tokens(requested, train, valid, min_freq)
    s = choice.stats
    vocab_size = options.get("vocab_size")
    if vocab_size is None and choice.kind == "bpe":  # from the word vocabulary just measured
        vocab_size = default_bpe_vocab_size(s.word_vocab)
    tokenizer = fit_tokenizer(choice.kind, train, min_freq=min_freq, vocab_size=vocab_size)
    measured = (f"{s.examples:,} texts, {s.words_per_text:.1f} words and {s.chars_per_text:.0f} characters per text, "
                f"{s.word_types:,} word types ({s.once_share:.0%} seen once), validation word OOV {s.word_oov:.1%}")
    how = f"auto chose {choice.kind}: {choice.reason}" if requested == "auto" else f"{choice.kind} ({choice.reason})"
    note = f"[{task}] {side} tokens: {how}; {tokenizer.describe()} [{measured}]"
    return tokenizer, note, vocabulary_warnings(side, tokenizer, train, valid, s)


def saved_tokenizer(meta: dict[str, Any], key: str) -> Tokenizer:
    """The tokenizer a checkpoint saved under ``key``."""
    return saved_entry(meta, key, tokenizer_from_dict)


def saved_entry(meta: dict[str, Any], key: str, read: Callable[[Any], T]) -> T:
    """``read(meta[key])``, an entry of a checkpoint's task metadata (as ``train.runs.upgrade``
    leaves it: an older run's entries are filled in there). Missing or damaged, it is a
    ``TaskError`` naming the entry; ``read`` raises ValueError or TypeError saying what it expected."""
    from rnnkit.tasks.base import TaskError

    if key not in meta:
        raise TaskError(f"checkpoint task_meta.{key}: missing (the checkpoint is damaged or not a run of this rnnkit)")
    try:
        return read(meta[key])
    except (ValueError, TypeError) as error:
        raise TaskError(f"checkpoint task_meta.{key}: {error}") from None


def expect(ok: Callable[[Any], bool], expected: str) -> Callable[[Any], Any]:
    """A ``read`` for ``saved_entry``: the value itself, if ``ok`` accepts it."""

    def read(value: Any) -> Any:
        if not ok(value):
            raise ValueError(f"expected {expected}, got {value!r:.60}")
        return value

    return read


def vocabulary_warnings(side: str, tokenizer: Tokenizer, train: Sequence[str], valid: Sequence[str],
                        stats: TextStats) -> list[str]:
    """What is wrong with a fitted vocabulary, each with its remedy: many unknown validation
    tokens, a vocabulary that dropped almost every word type (``stats`` counts them), or one
    whose symbols are too rare to learn."""
    warnings = []
    other = "char or bpe" if tokenizer.kind == "word" else "bpe" if tokenizer.kind == "char" else "char"
    unknown = tokenizer.unknown_rate(valid)
    min_freq = int(getattr(tokenizer, "min_freq", 1))  # word and char tokenizers have one, BPE none
    if unknown > MAX_WORD_OOV:
        remedy = f"--tokens {other}" + (f", or --min-freq {min_freq - 1}" if min_freq > 1 else "")
        warnings.append(f"{unknown:.1%} of the validation {side} tokens are unknown to the {tokenizer.kind} "
                        f"vocabulary ({len(tokenizer) - tokenizer.num_specials:,} symbols); the model cannot read them. "
                        f"Try {remedy}")
    kept = len(tokenizer) - tokenizer.num_specials
    if tokenizer.kind == "word" and stats.word_types >= 100 and kept < 0.05 * stats.word_types:
        warnings.append(f"the {side} vocabulary keeps {kept:,} of {stats.word_types:,} word types "
                        f"(min_freq {min_freq} drops the rest): far smaller than the data. "
                        f"Try --tokens char or bpe, or --min-freq 1")
    symbols = sum(len(ids) for ids in tokenizer.encode_batch(train))
    if kept >= 100 and symbols / kept < MIN_MEAN_COUNT:
        warnings.append(f"the {side} vocabulary has {kept:,} symbols for {symbols:,} training tokens "
                        f"({symbols / kept:.1f} occurrences each): far larger than the data can teach. "
                        f"Try --tokens {other}" + (", or a higher --min-freq" if tokenizer.kind == "word"
                                                   else ", or a smaller --vocab-size"))
    return warnings


def label_warnings(what: str, train: Sequence[str], splits: dict[str, Sequence[str]],
                   imbalance: bool = True) -> list[str]:
    """Labels (classes, tags) seen only outside training, and (``imbalance``) heavy class
    imbalance."""
    warnings = []
    counts = Counter(train)
    for split, labels in splits.items():
        unseen = sorted(set(labels) - set(counts))
        if unseen:
            examples = sum(1 for label in labels if label not in counts)
            warnings.append(f"{what} {', '.join(map(repr, unseen[:5]))}{' ...' if len(unseen) > 5 else ''} "
                            f"appear in {split} ({examples:,} examples) but never in training: the model cannot "
                            f"predict them, and those examples are left out of {split}. Add examples of them to "
                            f"the training data")
    if imbalance and len(counts) >= 2:
        (top, top_count), (rare, rare_count) = counts.most_common()[0], counts.most_common()[-1]
        share = top_count / sum(counts.values())
        if share >= IMBALANCED_SHARE or top_count >= IMBALANCED_RATIO * rare_count:
            warnings.append(f"heavy class imbalance: {top!r} is {share:.0%} of the training examples, "
                            f"{rare!r} {rare_count / sum(counts.values()):.1%}; always answering {top!r} scores "
                            f"{share:.2f} accuracy. Watch macro_f1, and balance the data if the rare {what} matter")
    return warnings


def check_labels(task: str, what: str, known: Sequence[str] | set[str], labels: Sequence[str], split: str,
                 score_file: str | None) -> None:
    """Scoring a file (``eval --data``) whose labels the model never saw is an error, not a
    warning: every such example would be counted wrong."""
    from rnnkit.tasks.base import TaskError

    unseen = sorted(set(labels) - set(known))
    if unseen and score_file is not None:
        raise TaskError(f"{task}: {what} {unseen[:5]} in {score_file} were not in training "
                        f"(known: {', '.join(sorted(known))[:200]})")
