"""Tokenizers: round trips, unknown symbols, saving, and the auto rule on small synthetic data of
each shape users bring (single words, names, codes, phoneme strings, compounds, documents)."""

import json
import random
import string

import numpy as np
import pytest

from rnnkit.data import Vocab
from rnnkit.data.tokenizers import (
    MAX_WORD_OOV,
    BPETokenizer,
    CharTokenizer,
    WordTokenizer,
    choose_tokens,
    fit_tokenizer,
    measure_texts,
    resolve_tokens,
    tokenizer_from_dict,
)

SENTENCES = ["The cat sat on the mat.", "The dog sat on the log!", "A cat and a dog.", "Don't panic, the cat said."] * 5


# -- round trips ------------------------------------------------------------------------------------
def test_char_round_trip_is_exact_and_unknown_characters_are_unk():
    tokenizer = fit_tokenizer("char", SENTENCES)
    for text in SENTENCES:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    ids = tokenizer.encode("cat!?")  # "?" never seen
    assert ids[-1] == tokenizer.unk_id and tokenizer.unk_id not in ids[:-1]
    assert tokenizer.decode(ids) == "cat!<unk>"
    assert tokenizer.unknown_rate(["cat!?"]) == pytest.approx(1 / 5)


def test_word_round_trip_normalises_and_min_freq_makes_rare_words_unknown():
    tokenizer = fit_tokenizer("word", SENTENCES + ["a rare word"], min_freq=2)
    for text in SENTENCES:
        assert tokenizer.decode(tokenizer.encode(text)) == tokenizer.normalize(text)
    assert tokenizer.normalize("Don't panic, the cat said.") == "don't panic, the cat said."
    assert "rare" not in tokenizer.vocab and "cat" in tokenizer.vocab
    ids = tokenizer.encode("the rare cat")
    assert list(ids == tokenizer.unk_id) == [False, True, False]
    assert fit_tokenizer("word", SENTENCES + ["a rare word"], min_freq=1).unknown_rate(["the rare cat"]) == 0.0


def test_word_tokenizer_takes_pre_split_words():
    tokenizer = WordTokenizer.fit([["The", "Cat"], ["the", "dog"]], min_freq=1)
    assert tokenizer.decode(tokenizer.encode_words(["THE", "cat"])) == "the cat"


@pytest.mark.parametrize("text", ["dreihundertvierundzwanzig", "Größe ÷ 日本 🙂", "  two  spaces ", "<unk> is text", ""])
def test_bpe_round_trip_is_exact_with_no_unknowns(text):
    tokenizer = fit_tokenizer("bpe", ["dreihundertvierundzwanzig zweihundert"] * 20 + SENTENCES, vocab_size=300)
    ids = tokenizer.encode(text)
    assert tokenizer.unk_id not in ids  # byte level: no text is unknown, "<unk>" included
    decoded = tokenizer.decode(ids)
    assert decoded == tokenizer.normalize(text)
    assert decoded == (text[1:] if text.startswith(" ") else text)  # all but the leading space ByteLevel adds


def test_bpe_learns_frequent_pieces():
    tokenizer = fit_tokenizer("bpe", ["dreihundert vierhundert fünfhundert sechshundert"] * 30, vocab_size=300)
    assert "hundert" in tokenizer.units("siebenhundert")  # one piece, learned from the other numbers
    assert len(tokenizer.encode("siebenhundert")) == 1 + len("sieben") + 1  # the word-start marker, letters, hundert
    assert tokenizer.decode(tokenizer.encode("siebenhundert")) == "siebenhundert"


def test_special_ids_and_stop_at_eos_are_the_same_for_every_kind():
    for kind in ("char", "word", "bpe"):
        tokenizer = fit_tokenizer(kind, SENTENCES, vocab_size=300 if kind == "bpe" else None)
        assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
        ids = tokenizer.encode("the cat", add_bos=True, add_eos=True)
        assert ids[0] == 1 and ids[-1] == 2
        tail = tokenizer.encode("dog")
        assert tokenizer.decode(np.concatenate([ids, tail]), stop_at_eos=True) == tokenizer.normalize("the cat")


# -- saving -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_to_dict_round_trips_through_json(kind):
    tokenizer = fit_tokenizer(kind, SENTENCES, vocab_size=300 if kind == "bpe" else None)
    restored = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert type(restored) is type(tokenizer) and restored == tokenizer and len(restored) == len(tokenizer)
    for text in SENTENCES[:4] + ["an unseen text?"]:
        assert np.array_equal(restored.encode(text), tokenizer.encode(text))


def test_a_bare_vocabulary_from_an_older_checkpoint_is_a_tokenizer():
    vocab = Vocab.from_texts(["hello"], level="char")
    tokenizer = tokenizer_from_dict(vocab.to_dict())
    assert isinstance(tokenizer, CharTokenizer) and tokenizer.decode(tokenizer.encode("hello")) == "hello"
    words = tokenizer_from_dict(Vocab.from_texts([["a", "b"]], level="word").to_dict())
    assert isinstance(words, WordTokenizer)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="tokens: expected one of char, word, bpe, got 'bytes'"):
        fit_tokenizer("bytes", SENTENCES)
    with pytest.raises(ValueError, match="min_freq: expected an integer >= 1, got 0"):
        fit_tokenizer("word", SENTENCES, min_freq=0)
    with pytest.raises(ValueError, match="needs at least 260 entries"):
        fit_tokenizer("bpe", SENTENCES, vocab_size=100)
    with pytest.raises(ValueError, match="not a tokenizer dict: kind 'sentencepiece'"):
        tokenizer_from_dict({"kind": "sentencepiece"})
    with pytest.raises(ValueError, match="not a tokenizer dict: a word tokenizer without its vocab"):
        tokenizer_from_dict({"kind": "word"})
    vocab = {"level": "word", "specials": ["<pad>", "<bos>", "<eos>", "<unk>"], "symbols": ["a"]}
    for min_freq in ("x", None, 0, [2]):
        with pytest.raises(ValueError, match="word tokenizer min_freq: expected a positive integer"):
            tokenizer_from_dict({"kind": "word", "vocab": vocab, "min_freq": min_freq})
    from rnnkit.data.tokenizers import bpe_available

    if bpe_available():
        with pytest.raises(ValueError, match="not a BPE tokenizer"):
            tokenizer_from_dict({"kind": "bpe", "tokenizer": {"model": 5}})
    with pytest.raises(ValueError, match="tokens: expected one of auto, char, word, bpe"):
        resolve_tokens("subword", SENTENCES, SENTENCES)


def test_bpe_is_an_optional_dependency_with_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tokenizers(name, *args, **kwargs):
        if name == "tokenizers" or name.startswith("tokenizers."):
            raise ImportError("no tokenizers here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tokenizers)
    with pytest.raises(ImportError, match=r"--tokens bpe needs the package 'tokenizers'.*pip install"):
        BPETokenizer.fit(SENTENCES, vocab_size=300)


# -- the auto rule on synthetic data of each shape --------------------------------------------------------
def _rng_words(rng, count, letters=string.ascii_lowercase, length=(4, 9)):
    return ["".join(rng.choice(letters) for _ in range(rng.randint(*length))) for _ in range(count)]


def _shape(name: str, n: int = 600, seed: int = 0) -> list[str]:
    """``n`` texts of one shape, deterministic in ``seed``."""
    rng = random.Random(seed)
    if name == "single words":  # each word once: the language of a word
        return _rng_words(rng, n)
    if name == "names":
        return [w.capitalize() for w in _rng_words(rng, n, length=(3, 8))]
    if name == "codes":  # U+1F60A-like: the regex splits them into 'u', '+', a unique code
        return [f"U+{rng.randrange(0x1000, 0x10FFFF):X}" for _ in range(n)]
    if name == "phonemes":  # space-separated symbols from a small inventory: every one seen often
        inventory = ["AA1", "AE0", "B", "D", "EH1", "IH0", "K", "L", "M", "N", "OW1", "P", "R", "S", "T"]
        return [" ".join(rng.choice(inventory) for _ in range(rng.randint(3, 8))) for _ in range(n)]
    if name == "compounds":  # German-style number words: one long word each, mostly unseen
        parts = ["ein", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
        return [f"{rng.choice(parts)}hundert{rng.choice(parts)}und{rng.choice(parts)}zig{rng.choice(parts)}tausend"
                for _ in range(n)]
    if name == "closed sentences":  # the bundled number words: a tiny vocabulary, seen always
        words = ["one", "two", "three", "four", "hundred", "thousand", "and", "twenty", "thirty"]
        return [" ".join(rng.choice(words) for _ in range(rng.randint(2, 8))) for _ in range(n)]
    if name == "documents":  # long texts over a Zipf vocabulary: many rare words
        vocabulary = _rng_words(rng, 5000)
        weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
        return [" ".join(rng.choices(vocabulary, weights, k=150)) for _ in range(n // 6)]
    raise KeyError(name)


@pytest.mark.parametrize("shape, expected", [
    ("single words", "char"), ("names", "char"), ("codes", "char"), ("compounds", "bpe"),
    ("phonemes", "word"), ("closed sentences", "word"), ("documents", "bpe"),
])
def test_auto_rule_per_shape(shape, expected):
    train, valid = _shape(shape, seed=0), _shape(shape, seed=1)[:100]
    choice = choose_tokens(measure_texts(train, valid), subwords=True)
    assert choice.kind == expected, (choice.reason, choice.stats)
    assert choice.reason  # says why, with the numbers
    if expected == "word":
        assert choice.stats.word_oov <= MAX_WORD_OOV
    else:
        assert choice.stats.word_oov > MAX_WORD_OOV


def test_auto_rule_without_subwords_falls_back_and_says_so():
    train, valid = _shape("documents", seed=0), _shape("documents", seed=1)[:20]
    choice = choose_tokens(measure_texts(train, valid), subwords=False)
    assert choice.kind == "word" and "tokenizers" in choice.reason  # 150 words per text: too long for char


def test_measured_statistics():
    stats = measure_texts(["a b b", "c a"], ["a z", "q"], min_freq=2)
    assert stats.examples == 2 and stats.words_per_text == 2.5 and stats.chars_per_text == 4.0
    assert stats.word_types == 3 and stats.once_share == pytest.approx(1 / 3) and stats.word_vocab == 2
    assert stats.word_oov == pytest.approx(2 / 3)  # z, q unknown; a known
    assert stats.char_oov == pytest.approx(2 / 4)  # "a z" + "q": z, q unseen; a, space seen
