"""Your data through the command: the tokens ``auto`` chooses and why, the tokenizer saved in the
run directory and used by eval and predict, each warning with its remedy, and the summary line
that says when a model is no better than its baseline. Small synthetic files, tiny models."""

import json
import random
import string
import subprocess
import sys

import pytest

from rnnkit.data.splits import split_indices

TINY = ["--epochs", "1", "--hidden", "16", "--batch-size", "32", "--no-progress"]


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


def _words(rng, n, letters):
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 8))) for _ in range(n)]


@pytest.fixture(scope="module")
def single_words(tmp_path_factory):
    """Single words labelled by their 'language' (which letters they use): each word seen once,
    so a word vocabulary at min_freq 2 is empty and characters are what generalise."""
    rng = random.Random(0)
    lines = [f"{label}\t{word}" for label, letters in (("vowelish", "aeiouln"), ("consonantal", "bcdfgkrst"))
             for word in _words(rng, 300, letters)]
    rng.shuffle(lines)
    path = tmp_path_factory.mktemp("data") / "words.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _train(data, out, *extra):
    result = rnnkit("train", "classify", "--data", str(data), "--out", str(out), *TINY, *extra)
    assert result.returncode == 0, result.stderr
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def test_auto_chooses_characters_for_single_words_and_says_why(single_words, tmp_path):
    result, metrics = _train(single_words, tmp_path / "run", "--epochs", "4")
    assert "[classify] text tokens: auto chose char:" in result.stderr
    assert "100.0% of validation words unknown at min_freq 2" in result.stderr  # the numbers behind it
    assert "warning" not in result.stderr
    checkpoint = json.loads((tmp_path / "run" / "config.json").read_text())
    assert checkpoint["task_meta"]["tokenizer"]["kind"] == "char"
    assert checkpoint["model_options"]["tokens"] == "auto" and checkpoint["model_options"]["min_freq"] == 2
    assert metrics["accuracy"] > 0.75 and metrics["better_than_baseline"]  # chance is 0.5
    # eval and predict read the saved tokenizer: the same test score, and words never seen work
    scored = json.loads(rnnkit("eval", str(tmp_path / "run")).stdout.strip().splitlines()[-1])
    assert scored["accuracy"] == metrics["accuracy"]
    predicted = rnnkit("predict", str(tmp_path / "run"), "aeiolu", "bcdkrst")
    assert predicted.returncode == 0, predicted.stderr
    assert [line.split("\t")[1] for line in predicted.stdout.splitlines()] == ["vowelish", "consonantal"]


def test_forced_word_tokens_warn_with_remedies(single_words, tmp_path):
    result, trained = _train(single_words, tmp_path / "run", "--tokens", "word")
    evaluated = rnnkit("eval", str(tmp_path / "run"))
    scored = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert scored["accuracy"] == trained["accuracy"]  # the saved word tokenizer, read back
    assert scored["better_than_baseline"] is False and "NOT better than the baseline" in evaluated.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert any("100.0% of the validation text tokens are unknown to the word vocabulary" in w
               and "Try --tokens char or bpe, or --min-freq 1" in w for w in warnings), warnings
    assert any("keeps 0 of 480 word types" in w and "--min-freq 1" in w for w in warnings), warnings
    # the model is at chance, and the summary line says so in words
    assert "NOT better than the baseline on the test split" in result.stdout
    assert "see the warnings above" in result.stdout


def test_a_vocabulary_of_symbols_seen_once_is_warned_of(single_words, tmp_path):
    result, _ = _train(single_words, tmp_path / "run", "--tokens", "word", "--min-freq", "1")
    assert "far larger than the data can teach. Try --tokens char or bpe, or a higher --min-freq" in result.stderr


def test_labels_only_outside_training_and_imbalance_are_warned_of(tmp_path):
    rng = random.Random(1)
    n = 400
    test_index = split_indices(n, (0.8, 0.1, 0.1), 0)["test"][0]
    labels = ["common" if i % 20 else "rare" for i in range(n)]  # 95% / 5%
    labels[test_index] = "only-in-test"
    path = tmp_path / "skewed.tsv"
    path.write_text("".join(f"{label}\t{' '.join(_words(rng, 3, string.ascii_lowercase[:6]))}\n"
                            for label in labels), encoding="utf-8")
    result, _ = _train(path, tmp_path / "run")
    assert ("labels 'only-in-test' appear in test (1 examples) but never in training: the model cannot predict "
            "them, and those examples are left out of test") in result.stderr
    assert "heavy class imbalance: 'common' is 95% of the training examples" in result.stderr
    assert "Watch macro_f1" in result.stderr
    # scoring a file with a label the model never saw is an error, not a silent zero
    unseen = tmp_path / "unseen.tsv"
    unseen.write_text("brand-new\tabc def\n", encoding="utf-8")
    scored = rnnkit("eval", str(tmp_path / "run"), "--data", str(unseen))
    assert scored.returncode == 2 and "labels ['brand-new'] in" in scored.stderr


def test_translate_chooses_per_side(tmp_path):
    """Single words to phoneme strings: characters for the source, words (phonemes) for the target."""
    rng = random.Random(2)
    sounds = {c: s for c, s in zip("abcdefghik", ["AA1", "B", "K", "D", "EH1", "F", "G", "HH", "IH0", "K"])}
    lines = []
    for word in _words(rng, 400, "abcdefghik"):
        lines.append(f"{word}\t{' '.join(sounds[c] for c in word)}")
    path = tmp_path / "phonemes.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = rnnkit("train", "translate", "--data", str(path), "--out", str(tmp_path / "run"), *TINY)
    assert result.returncode == 0, result.stderr
    assert "[translate] source tokens: auto chose char:" in result.stderr
    assert "[translate] target tokens: auto chose word:" in result.stderr
    meta = json.loads((tmp_path / "run" / "config.json").read_text())["task_meta"]
    assert (meta["source"]["kind"], meta["target"]["kind"]) == ("char", "word")
    assert meta["max_len"] == int(8 * 1.25) + 5  # the longest target, 8 phonemes, and a margin
    # --target-tokens overrides one side only
    result = rnnkit("train", "translate", "--data", str(path), "--out", str(tmp_path / "run2"), *TINY,
                    "--target-tokens", "bpe", "--vocab-size", "300")
    assert result.returncode == 0, result.stderr
    assert "source tokens: auto chose char" in result.stderr and "target tokens: bpe (set by --tokens)" in result.stderr
    # the saved BPE tokenizer is what eval reads back: the same scores as at the end of training
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    assert trained["tokens"] == {"source": "char", "target": "bpe"}
    scored = json.loads(rnnkit("eval", str(tmp_path / "run2")).stdout.strip().splitlines()[-1])
    assert (scored["exact_match"], scored["cer"]) == (trained["exact_match"], trained["cer"])


@pytest.mark.parametrize("args, message", [
    (["train", "digits", "--tokens", "char"], "--tokens does not apply to the digits task"),
    (["train", "classify", "--source-tokens", "char"], "--source-tokens does not apply to the classify task"),
    (["train", "classify", "--min-freq", "0"], "--min-freq: expected a positive integer, got 0"),
    (["train", "charlm", "--tokens", "word"], "charlm: --tokens word does not apply"),
    (["train", "tag", "--tokens", "bpe"], "tag: --tokens bpe does not apply: the tokens are the words of the file"),
])
def test_token_options_that_do_not_apply_are_one_line_errors(args, message, tmp_path):
    result = rnnkit(*args, "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_resume_with_other_tokens_is_refused(single_words, tmp_path):
    _train(single_words, tmp_path / "run")
    result = rnnkit("train", "classify", "--data", str(single_words), "--out", str(tmp_path / "run"), "--resume",
                    "--tokens", "word")
    assert result.returncode == 2 and "was trained with --tokens auto, not word" in result.stderr


def test_charlm_with_subwords_scores_bits_per_character_and_samples_characters(tmp_path):
    import pydoc_data.topics

    text = "\n".join(pydoc_data.topics.topics.values())[:60_000]
    path = tmp_path / "prose.txt"
    path.write_text(text, encoding="utf-8")
    runs = {}
    for tokens in ("char", "bpe"):
        result = rnnkit("train", "charlm", "--data", str(path), "--out", str(tmp_path / tokens), "--tokens", tokens,
                        "--vocab-size", "400", "--epochs", "4", "--batch-size", "8", "--hidden", "64", "--layers", "1",
                        "--no-progress")
        assert result.returncode == 0, result.stderr
        runs[tokens] = json.loads(result.stdout.strip().splitlines()[-1])
    # both in bits per character of the same text: the same unigram baseline (but for characters
    # the char vocabulary never saw, one unk to it), comparable scores
    assert runs["bpe"]["baseline_bpc"] == pytest.approx(runs["char"]["baseline_bpc"], rel=0.02)
    assert 0 < runs["bpe"]["bpc"] < runs["bpe"]["baseline_bpc"]
    sample = rnnkit("sample", str(tmp_path / "bpe"), "--prime", "The ", "--length", "60")
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("The ") and len(sample.stdout[:-1]) == len("The ") + 60  # print's newline

