"""Tokenizers: a text <-> a sequence of ids, at the level of characters, words or subwords.

Every text task reads its data through one of these, saves it in its checkpoints (a JSON dict,
``to_dict`` / ``tokenizer_from_dict``) and uses the saved one in ``eval``, ``predict`` and
``sample``, so a model always sees the ids it was trained on. The ids ``0 .. 3`` are the
special tokens of every kind, pad (0, what ``pad_batch`` fills with), bos, eos and unk, as in
``Vocab``.

- ``char``: each character is a symbol. Nothing is unknown that the training text had; the
  right choice for single words, names, codes and compound-rich text, whose words are rarely
  seen twice but whose letters always are.
- ``word``: words and single punctuation marks, lowercased (``"Don't!" -> don ' t !``); symbols
  seen fewer than ``min_freq`` times in training become unk. Short sequences, but every word
  not in training is unk.
- ``bpe``: byte-level byte-pair encoding trained on the training split (Hugging Face
  ``tokenizers``, an optional dependency): frequent words whole, rare ones in pieces, any byte
  at worst, so nothing is ever unknown; case is kept.

``choose_tokens`` is the ``auto`` rule: it measures the training and validation texts
(``measure_texts``) and picks a kind, with the numbers behind the choice.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rnnkit.data.vocab import BOS, DEFAULT_SPECIALS, EOS, PAD, UNK, Vocab

TOKEN_KINDS: tuple[str, ...] = ("char", "word", "bpe")
TOKEN_CHOICES: tuple[str, ...] = ("auto", *TOKEN_KINDS)
#: ``min_freq`` of the word level unless the user sets ``--min-freq``
DEFAULT_MIN_FREQ = 2

_WORD = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Words and single punctuation marks: ``"Don't!" -> ["don", "'", "t", "!"]``."""
    return _WORD.findall(text.lower() if lower else text)


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens with spaces, re-attaching hyphens, apostrophes and closing punctuation."""
    text = " ".join(tokens)
    text = re.sub(r" ?([-']) ?", r"\1", text)
    return re.sub(r" ([,.;:!?)])", r"\1", text)


def unknown_share(encoded: Sequence[np.ndarray], unk_id: int) -> float:
    """Share of the ids in ``encoded`` (one array per text) that are ``unk_id`` (0 if none)."""
    total = sum(len(ids) for ids in encoded)
    return sum(int(np.sum(ids == unk_id)) for ids in encoded) / total if total else 0.0


class Tokenizer:
    """Text <-> ids. Subclasses: ``CharTokenizer``, ``WordTokenizer``, ``BPETokenizer``."""

    kind: str = ""

    # -- what every kind provides ----------------------------------------------------------
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """Ids of ``text``: int64 array of shape ``(T,)``; unknown symbols become ``unk_id``."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int] | np.ndarray, stop_at_eos: bool = False) -> str:
        """The text of a 1-D id sequence; pad, bos and eos are dropped, unk shows as ``<unk>``
        (``bpe`` has none). ``stop_at_eos`` ends the text at the first eos (decoder outputs)."""
        raise NotImplementedError

    def normalize(self, text: str) -> str:
        """``text`` as this tokenizer writes it back when every symbol is known (the word
        level lowercases and re-spaces): what a decoded output is compared with."""
        return text

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """``[encode(t) for t in texts]`` (one call into the library for ``bpe``)."""
        return [self.encode(text) for text in texts]

    def units(self, text: str) -> list[str]:
        """The symbols of ``text`` as strings, before the lookup."""
        raise NotImplementedError

    def symbols(self, ids: Iterable[int]) -> list[str]:
        """Each id as the symbol it stands for (for pictures: one label per token)."""
        raise NotImplementedError

    def unknown_rate(self, texts: Sequence[str]) -> float:
        """Share of the symbols of ``texts`` that encode to unk (0 when there are none)."""
        return unknown_share(self.encode_batch(texts), self.unk_id)

    def __len__(self) -> int:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """A few words for logs: ``"word tokens, vocabulary 9,874 (min_freq 2)"``."""
        return f"{self.kind} tokens, vocabulary {len(self):,}"

    # -- special ids: the same for every kind --------------------------------------------------
    pad_id, bos_id, eos_id, unk_id = (DEFAULT_SPECIALS.index(s) for s in (PAD, BOS, EOS, UNK))
    num_specials = len(DEFAULT_SPECIALS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tokenizer):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={len(self)})"


class _VocabTokenizer(Tokenizer):
    """A ``Vocab`` of symbols and a rule that splits a text into them."""

    level = "char"

    def __init__(self, vocab: Vocab) -> None:
        if vocab.specials != DEFAULT_SPECIALS:
            raise ValueError(f"a tokenizer's vocabulary needs the specials {DEFAULT_SPECIALS}, got {vocab.specials}")
        self.vocab = vocab

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        return self.vocab.encode(text if self.level == "char" else self.units(text), add_bos=add_bos, add_eos=add_eos)

    def __len__(self) -> int:
        return len(self.vocab)

    def symbols(self, ids: Iterable[int]) -> list[str]:
        return [self.vocab.itos[int(i)] for i in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab": self.vocab.to_dict()}


class CharTokenizer(_VocabTokenizer):
    """Every character a symbol; text kept as it is (case, spaces)."""

    kind = "char"

    @classmethod
    def fit(cls, texts: Iterable[str], max_size: int | None = None) -> CharTokenizer:
        return cls(Vocab.from_texts(texts, level="char", max_size=max_size))

    def units(self, text: str) -> list[str]:
        return list(text)

    def decode(self, ids, stop_at_eos: bool = False) -> str:
        return self.vocab.decode(ids, stop_at_eos=stop_at_eos)


class WordTokenizer(_VocabTokenizer):
    """Lowercased words and single punctuation marks (``tokenize``), joined back by ``detokenize``."""

    kind = "word"
    level = "word"

    def __init__(self, vocab: Vocab, min_freq: int = DEFAULT_MIN_FREQ) -> None:
        super().__init__(vocab)
        self.min_freq = min_freq

    @classmethod
    def fit(cls, texts: Iterable[str | Sequence[str]], min_freq: int = DEFAULT_MIN_FREQ,
            max_size: int | None = None) -> WordTokenizer:
        """``texts``: strings, or texts already split into words (lowercased here)."""
        words = (tokenize(t) if isinstance(t, str) else [w.lower() for w in t] for t in texts)
        return cls(Vocab.from_texts(words, level="word", min_freq=min_freq, max_size=max_size), min_freq=min_freq)

    def units(self, text: str) -> list[str]:
        return tokenize(text)

    def encode_words(self, words: Sequence[str]) -> np.ndarray:
        """Ids of words already split (a tagged file's tokens), lowercased as ``tokenize`` does."""
        return self.vocab.encode([w.lower() for w in words])

    def decode(self, ids, stop_at_eos: bool = False) -> str:
        return detokenize(self.vocab.decode(ids, stop_at_eos=stop_at_eos).split())

    def normalize(self, text: str) -> str:
        return detokenize(tokenize(text))

    def describe(self) -> str:
        return f"word tokens, vocabulary {len(self):,} (min_freq {self.min_freq})"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "min_freq": self.min_freq}


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding (Hugging Face ``tokenizers``): never an unknown symbol."""

    kind = "bpe"

    def __init__(self, serialized: str) -> None:
        tokenizers = _import_tokenizers()
        self._tokenizer = tokenizers.Tokenizer.from_str(serialized)
        self._tokenizer.encode_special_tokens = True  # "<unk>" in a text is text, not the unk id
        for token, expected in zip(DEFAULT_SPECIALS, range(len(DEFAULT_SPECIALS))):
            if self._tokenizer.token_to_id(token) != expected:
                raise ValueError(f"a BPE tokenizer needs {token} at id {expected}, "
                                 f"got {self._tokenizer.token_to_id(token)}")
        self._serialized = serialized

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> BPETokenizer:
        tokenizers = _import_tokenizers()
        from tokenizers import decoders, models, pre_tokenizers, trainers

        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + len(DEFAULT_SPECIALS):
            raise ValueError(f"vocab_size: a byte-level BPE vocabulary needs at least "
                             f"{len(alphabet) + len(DEFAULT_SPECIALS)} entries (256 bytes and 4 specials), got {vocab_size}")
        tokenizer = tokenizers.Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tokenizer.decoder = decoders.ByteLevel()
        # Every byte in the alphabet, seen in training or not: no text is ever unknown.
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(DEFAULT_SPECIALS), initial_alphabet=alphabet,
                                      show_progress=False)
        tokenizer.train_from_iterator(list(texts), trainer)
        return cls(tokenizer.to_str())

    def units(self, text: str) -> list[str]:
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return np.asarray(([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else []), dtype=np.int64)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids, stop_at_eos: bool = False) -> str:
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).reshape(-1)
        if stop_at_eos:
            stops = np.flatnonzero(ids == self.eos_id)
            ids = ids[: stops[0]] if stops.size else ids
        bad = (ids < 0) | (ids >= len(self))
        if bad.any():
            raise IndexError(f"id {ids[bad][0]} is out of range for a vocabulary of size {len(self)}")
        text = self._tokenizer.decode(ids[ids >= self.num_specials].tolist(), skip_special_tokens=True)
        return text[1:] if text.startswith(" ") else text  # the space ByteLevel put before the first word

    def normalize(self, text: str) -> str:
        return self.decode(self.encode(text))

    def symbols(self, ids: Iterable[int]) -> list[str]:
        # ByteLevel writes a word-initial space as "Ġ"; "▁" reads better on a figure
        return [self._tokenizer.id_to_token(int(i)).replace("Ġ", "▁") for i in ids]

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "bpe", "tokenizer": json.loads(self._serialized)}


def _import_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError("--tokens bpe needs the package 'tokenizers' (Hugging Face), which is not installed; "
                          'install it with: pip install "rnnkit[train]" (or: pip install tokenizers)') from None
    return tokenizers


def bpe_available() -> bool:
    """Whether subword tokens can be trained here (the optional ``tokenizers`` package)."""
    import importlib.util

    return importlib.util.find_spec("tokenizers") is not None


def default_bpe_vocab_size(word_vocab: int) -> int:
    """A BPE vocabulary as large as the word vocabulary the data supports (types seen at least
    ``min_freq`` times) on top of the 256 bytes, within [512, 8000]: small data gets few
    merges, large data whole words."""
    return int(min(8000, max(512, word_vocab + 260)))


def fit_tokenizer(kind: str, texts: Sequence[str], min_freq: int = DEFAULT_MIN_FREQ,
                  vocab_size: int | None = None) -> Tokenizer:
    """A tokenizer of ``kind`` ("char", "word", "bpe") fitted on the training ``texts``.

    ``min_freq``: a word seen fewer times is unk (``word``); a pair merged fewer times is not
    merged (``bpe``, at least 2); characters are all kept. ``vocab_size``: the most symbols,
    specials included (``word``, ``char``: the most frequent; ``bpe``: the target size, default
    ``default_bpe_vocab_size``).
    """
    if kind not in TOKEN_KINDS:
        raise ValueError(f"tokens: expected one of {', '.join(TOKEN_KINDS)}, got {kind!r}")
    if min_freq < 1:
        raise ValueError(f"min_freq: expected an integer >= 1, got {min_freq}")
    if kind == "char":
        return CharTokenizer.fit(texts, max_size=vocab_size)
    if kind == "word":
        return WordTokenizer.fit(texts, min_freq=min_freq, max_size=vocab_size)
    if vocab_size is None:
        counts = Counter(w for t in texts for w in tokenize(t))
        vocab_size = default_bpe_vocab_size(sum(1 for c in counts.values() if c >= min_freq))
    return BPETokenizer.fit(texts, vocab_size=vocab_size, min_frequency=max(2, min_freq))


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """The tokenizer ``to_dict`` saved. A bare ``Vocab`` dict (checkpoints from before
    tokenizers) is a char or word tokenizer by its level."""
    if not isinstance(data, dict):
        raise ValueError(f"not a tokenizer dict: {type(data).__name__}")
    if "kind" not in data and "level" in data:  # a Vocab saved by rnnkit before tokenizers
        data = {"kind": data["level"], "vocab": data}
    kind = data.get("kind")
    if kind in ("char", "word") and "vocab" not in data or kind == "bpe" and "tokenizer" not in data:
        raise ValueError(f"not a tokenizer dict: a {kind} tokenizer without its {'tokenizer' if kind == 'bpe' else 'vocab'}")
    if kind == "char":
        return CharTokenizer(Vocab.from_dict(data["vocab"]))
    if kind == "word":
        min_freq = data.get("min_freq", DEFAULT_MIN_FREQ)
        if not isinstance(min_freq, int) or isinstance(min_freq, bool) or min_freq < 1:
            raise ValueError(f"word tokenizer min_freq: expected a positive integer, got {min_freq!r:.40}")
        return WordTokenizer(Vocab.from_dict(data["vocab"]), min_freq=min_freq)
    if kind == "bpe":
        try:
            return BPETokenizer(json.dumps(data["tokenizer"]))
        except ImportError:
            raise
        except Exception as error:  # the tokenizers package raises its own exception types
            raise ValueError(f"not a BPE tokenizer ({str(error)[:80]})") from None
    raise ValueError(f"not a tokenizer dict: kind {kind!r}, expected one of {', '.join(TOKEN_KINDS)}")


# -- the auto rule -------------------------------------------------------------------------------

#: validation words unknown to the word vocabulary, above which words are not used (and warned of).
#: Measured: on the bundled tweets (5.2% unknown) words beat subwords, test accuracy 0.747 to 0.731
#: in the same 75 s (benchmarks/quality.py classify, GRU)
MAX_WORD_OOV = 0.06
#: texts this short are single words, names, codes: characters generalise, words cannot. Longer
#: texts whose words are unseen (compounds, documents) are made of recurring pieces that subwords
#: find, and as characters they are long sequences to produce or read.
MAX_WORDS_FOR_CHAR = 4.0
MAX_CHARS_FOR_CHAR = 24.0


@dataclass
class TextStats:
    """What ``choose_tokens`` decides from, measured on one side of a data set."""

    examples: int  # training texts
    words_per_text: float  # mean, training
    chars_per_text: float  # mean, training
    word_types: int  # distinct words in training
    once_share: float  # share of those types seen exactly once
    word_vocab: int  # types seen at least min_freq times: the word vocabulary
    word_oov: float  # share of validation words outside that vocabulary
    char_oov: float  # share of validation characters not seen in training
    min_freq: int

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure_texts(train: Sequence[str], valid: Sequence[str], min_freq: int = DEFAULT_MIN_FREQ) -> TextStats:
    """The statistics of the auto rule for training texts and validation texts of one side."""
    word_counts: Counter[str] = Counter()
    chars: set[str] = set()
    num_chars = 0
    for text in train:
        word_counts.update(tokenize(text))
        chars.update(text)
        num_chars += len(text)
    n = max(len(train), 1)
    vocab = {w for w, c in word_counts.items() if c >= min_freq}
    valid_words = [w for text in valid for w in tokenize(text)]
    valid_chars = sum(len(text) for text in valid)
    return TextStats(
        examples=len(train),
        words_per_text=sum(word_counts.values()) / n,
        chars_per_text=num_chars / n,
        word_types=len(word_counts),
        once_share=sum(1 for c in word_counts.values() if c == 1) / max(len(word_counts), 1),
        word_vocab=len(vocab),
        word_oov=sum(1 for w in valid_words if w not in vocab) / max(len(valid_words), 1),
        char_oov=sum(1 for text in valid for ch in text if ch not in chars) / max(valid_chars, 1),
        min_freq=min_freq,
    )


@dataclass
class TokenChoice:
    kind: str
    reason: str
    stats: TextStats


def choose_tokens(stats: TextStats, subwords: bool | None = None) -> TokenChoice:
    """The ``auto`` rule, in order:

    1. ``word`` when the word vocabulary covers the validation text: at most ``MAX_WORD_OOV``
       (6%) of its words are unknown. Words give the shortest sequences, and every one is
       learnable.
    2. ``char`` when the texts are single words, names or codes: at most ``MAX_WORDS_FOR_CHAR``
       (4) words and ``MAX_CHARS_FOR_CHAR`` (24) characters per text on average. Their words are
       mostly unseen, their characters are not.
    3. ``bpe`` otherwise: longer texts whose words are often unseen, compounds or documents, are
       made of recurring pieces; subwords find them, keep sequences short and leave nothing
       unknown. (German number words, 41 characters each: exact match 1.000 with subwords in
       45 s, 0.000 with characters in 150 s.) Without the ``tokenizers`` package, ``char`` up to 4x
       the character limit, else ``word`` (the out-of-vocabulary warning follows).
    """
    subwords = bpe_available() if subwords is None else subwords
    s = stats
    oov = f"{s.word_oov:.1%} of validation words unknown at min_freq {s.min_freq}"
    if s.word_oov <= MAX_WORD_OOV:
        return TokenChoice("word", f"{oov} (<= {MAX_WORD_OOV:.0%})", s)
    short = s.words_per_text <= MAX_WORDS_FOR_CHAR and s.chars_per_text <= MAX_CHARS_FOR_CHAR
    size = f"{s.words_per_text:.1f} words, {s.chars_per_text:.0f} characters per text"
    if short:
        return TokenChoice("char", f"{oov} (> {MAX_WORD_OOV:.0%}); short texts ({size}): "
                                   f"{s.once_share:.0%} of word types seen once", s)
    if subwords:
        return TokenChoice("bpe", f"{oov} (> {MAX_WORD_OOV:.0%}); long texts ({size})", s)
    fallback = "char" if s.chars_per_text <= 4 * MAX_CHARS_FOR_CHAR else "word"
    return TokenChoice(fallback, f"{oov} (> {MAX_WORD_OOV:.0%}); long texts ({size}); subwords would fit "
                                 f"but the package 'tokenizers' is not installed (pip install tokenizers)", s)


def resolve_tokens(requested: str, train: Sequence[str], valid: Sequence[str],
                   min_freq: int = DEFAULT_MIN_FREQ) -> TokenChoice:
    """``requested`` ("auto" or a kind) as a ``TokenChoice``, with the measurements either way."""
    if requested not in TOKEN_CHOICES:
        raise ValueError(f"tokens: expected one of {', '.join(TOKEN_CHOICES)}, got {requested!r}")
    stats = measure_texts(train, valid, min_freq)
    if requested == "auto":
        return choose_tokens(stats)
    return TokenChoice(requested, "set by --tokens", stats)


