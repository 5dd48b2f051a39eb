import json

import numpy as np
import pytest

from rnnkit.data import BOS, EOS, PAD, UNK, Vocab


def test_specials_come_first_with_pad_zero():
    v = Vocab.from_texts(["abc"])
    assert v.itos[:4] == [PAD, BOS, EOS, UNK]
    assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert v.num_specials == 4
    assert len(v) == 7


def test_char_round_trip_is_exact_for_known_symbols():
    texts = ["Hello, world!\n", "  tabs\tand unicode: café — ünïcödé  "]
    v = Vocab.from_texts(texts, level="char")
    for text in texts:
        ids = v.encode(text)
        assert ids.dtype == np.int64 and ids.shape == (len(text),)
        assert v.decode(ids) == text
        assert v.unk_id not in ids


def test_word_round_trip_on_whitespace_normalised_text():
    v = Vocab.from_texts(["the cat sat", "the  dog\nran"], level="word")
    assert v.decode(v.encode("the dog sat")) == "the dog sat"
    assert v.encode("the cat").tolist() == [v.stoi["the"], v.stoi["cat"]]


def test_unknown_symbols_map_to_unk():
    v = Vocab.from_texts(["abc"], level="char")
    ids = v.encode("abz")
    assert ids.tolist() == [v.stoi["a"], v.stoi["b"], v.unk_id]
    assert v.decode(ids) == "ab" + UNK
    w = Vocab.from_texts(["a b"], level="word")
    assert w.encode("a zebra b").tolist() == [w.stoi["a"], w.unk_id, w.stoi["b"]]


def test_bos_eos_and_decode_options():
    v = Vocab.from_texts(["ab"])
    ids = v.encode("ab", add_bos=True, add_eos=True)
    assert ids.tolist() == [v.bos_id, v.stoi["a"], v.stoi["b"], v.eos_id]
    assert v.decode(ids) == "ab"
    assert v.decode(ids, strip_specials=False) == BOS + "ab" + EOS
    padded = np.concatenate([ids, [v.pad_id, v.pad_id]])
    assert v.decode(padded) == "ab"
    after_eos = np.concatenate([v.encode("a", add_eos=True), v.encode("b")])
    assert v.decode(after_eos, stop_at_eos=True) == "a"
    assert v.decode(after_eos) == "ab"
    with pytest.raises(IndexError, match="out of range"):
        v.decode([len(v)])


def test_ids_ordered_by_frequency_then_symbol():
    v = Vocab.from_texts(["bbbaac", "c"])  # b:3, a:2, c:2
    assert v.itos[4:] == ["b", "a", "c"]


def test_min_freq_and_max_size():
    texts = ["aaab", "ab", "c"]  # a:4 b:2 c:1
    assert Vocab.from_texts(texts, min_freq=2).itos[4:] == ["a", "b"]
    assert Vocab.from_texts(texts, max_size=5).itos[4:] == ["a"]
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.from_texts(texts, min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocab.from_texts(texts, max_size=2)


def test_to_dict_is_json_and_round_trips():
    v = Vocab.from_texts(["the cat", "a dog"], level="word", min_freq=1)
    restored = Vocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert restored == v
    assert restored.level == "word"
    assert restored.encode("a cat").tolist() == v.encode("a cat").tolist()
    with pytest.raises(ValueError, match="vocabulary dict"):
        Vocab.from_dict({"symbols": ["a"]})



@pytest.mark.parametrize("damaged, message", [
    (5, r"not a vocabulary dict: expected keys level, specials, symbols, got int"),
    ({"level": "char", "specials": [], "symbols": 5}, r"vocabulary dict symbols: expected a list of strings, got 5"),
    ({"level": "char", "specials": 5, "symbols": []}, r"vocabulary dict specials: expected a list of strings, got 5"),
    ({"level": "char", "specials": [], "symbols": "abc"}, r"symbols: expected a list of strings, got 'abc'"),
    ({"level": "char", "specials": [], "symbols": [1]}, r"symbols: expected non-empty strings, got 1 at id 0"),
    ({"level": 5, "specials": [], "symbols": []}, r"level: expected one of"),
])
def test_a_damaged_vocabulary_dict_is_named_not_a_python_error(damaged, message):
    """What a checkpoint with a damaged vocabulary used to say: "'int' object is not subscriptable"."""
    with pytest.raises(ValueError, match=message):
        Vocab.from_dict(damaged)


def test_label_vocab_without_specials():
    tags = Vocab.from_texts([["NOUN", "VERB", "NOUN"], ["DET"]], level="word", specials=())
    assert tags.itos == ["NOUN", "DET", "VERB"]
    assert tags.encode(["VERB", "NOUN"]).tolist() == [2, 0]
    with pytest.raises(KeyError, match="ADJ"):
        tags.encode(["ADJ"])
    with pytest.raises(AttributeError, match="<pad>"):
        _ = tags.pad_id


def test_invalid_arguments():
    with pytest.raises(ValueError, match="level"):
        Vocab.from_texts(["a"], level="byte")
    with pytest.raises(ValueError, match="twice"):
        Vocab(["a", "a"])
    assert "a" in Vocab(["a"]) and "b" not in Vocab(["a"])


def test_long_char_texts_take_the_vectorised_path_with_the_same_result():
    rng = np.random.default_rng(0)
    alphabet = list("abcdef \n😀é")
    text = "".join(rng.choice(alphabet, size=5000))
    v = Vocab.from_texts([text[:2500]])
    fast = v.encode(text + "zZ", add_bos=True, add_eos=True)  # > 256 characters: vectorised
    slow = [v.bos_id] + [v.encode(ch)[0] for ch in text + "zZ"] + [v.eos_id]  # one at a time
    assert fast.dtype == np.int64 and fast.tolist() == slow
    assert fast[-3:-1].tolist() == [v.unk_id, v.unk_id]
    assert v.decode(v.encode(text)) == text
    labels = Vocab.from_texts(["ab"], specials=())
    with pytest.raises(KeyError, match="'c'"):
        labels.encode("ab" * 200 + "c")
