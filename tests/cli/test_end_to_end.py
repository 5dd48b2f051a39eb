"""Every task trained for a few seconds through the command line, as a user would run it, then
eval, predict and sample on the checkpoint. Slow-ish (a few seconds each), run in CI."""

import json
import re

import pytest

from tests.cli.test_cli import assert_one_line_error, rnnkit

pytestmark = pytest.mark.slow

TASK_KEYS = {
    "charlm": ["bpc"], "classify": ["accuracy", "macro_f1"], "translate": ["exact_match", "cer"],
    "tag": ["token_accuracy"], "caption": ["exact_match"], "digits": ["accuracy"], "onetoone": ["accuracy"],
    "forecast": ["mse", "baseline_mse"], "speech": ["wer", "cer", "baseline_wer"],
}


def last_json(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("task", sorted(TASK_KEYS))
def test_train_then_eval_on_default_data(task, tmp_path):
    out = tmp_path / task
    trained = last_json(rnnkit("train", task, "--out", str(out), "--max-seconds", "3", "--hidden", "16", "--epochs", "2"))
    for key in TASK_KEYS[task]:
        assert isinstance(trained[key], float)
    assert trained["stopped_by"] in ("time", "epochs", "early_stopping")
    evaluated = last_json(rnnkit("eval", str(out)))
    for key in TASK_KEYS[task]:
        assert evaluated[key] == pytest.approx(trained[key], rel=1e-6)  # same checkpoint, same test split


def test_charlm_on_user_text_resume_sample_predict(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400, encoding="utf-8")
    out = str(tmp_path / "run")
    first = last_json(rnnkit("train", "charlm", "--data", str(text), "--out", out, "--epochs", "2", "--hidden", "32",
                             "--batch-size", "4"))
    assert first["bpc"] < first["baseline_bpc"]
    resumed = last_json(rnnkit("train", "charlm", "--data", str(text), "--out", out, "--epochs", "3", "--resume"))
    assert resumed["steps"] > first["steps"]
    sample = rnnkit("sample", out, "--prime", "the ", "--length", "40", "--temperature", "0.5")
    assert sample.returncode == 0 and sample.stdout.startswith("the ") and len(sample.stdout.strip()) >= 40
    evaluated = last_json(rnnkit("eval", out, "--data", str(text)))
    assert evaluated["bpc"] < evaluated["baseline_bpc"]
    assert_one_line_error(rnnkit("sample", out, "--temperature", "0"), r"--temperature: expected a positive number")


def test_user_files_for_classify_tag_translate_forecast(tmp_path):
    classify = tmp_path / "c.tsv"
    classify.write_text("".join(f"{'pos' if i % 2 else 'neg'}\t{'good great fine' if i % 2 else 'bad awful poor'} {i}\n"
                                for i in range(200)), encoding="utf-8")
    result = last_json(rnnkit("train", "classify", "--data", str(classify), "--out", str(tmp_path / "c"), "--epochs", "3"))
    assert result["accuracy"] > 0.9
    predicted = rnnkit("predict", str(tmp_path / "c"), "great fine", "awful bad")
    assert predicted.stdout.splitlines() == ["great fine\tpos", "awful bad\tneg"]

    tagged = tmp_path / "t.txt"
    tagged.write_text("\n".join("the\tDET\ncat\tNOUN\nsat\tVERB\n" for _ in range(60)), encoding="utf-8")
    result = last_json(rnnkit("train", "tag", "--data", str(tagged), "--out", str(tmp_path / "t"), "--epochs", "3"))
    assert result["token_accuracy"] > 0.9
    assert rnnkit("predict", str(tmp_path / "t"), "the cat sat").stdout.strip().endswith("the/DET cat/NOUN sat/VERB")

    series = tmp_path / "s.txt"
    series.write_text("\n".join(str(i % 10) for i in range(300)), encoding="utf-8")
    result = last_json(rnnkit("train", "forecast", "--data", str(series), "--out", str(tmp_path / "f"), "--epochs", "5"))
    assert set(result) >= {"mse", "baseline_mse"}


@pytest.mark.parametrize(
    "task, content, pattern",
    [
        ("classify", "pos\tfine\nno tab here\n", r"line 2"),
        ("tag", "the\tDET\ncat NOUN\n", r"line 2"),
        ("forecast", "1\n2\nnan\n", r"line 3"),
        ("translate", "one\n", r"line 1"),
    ],
)
def test_malformed_user_data_names_the_line(task, content, pattern, tmp_path):
    data = tmp_path / "bad.txt"
    data.write_text(content, encoding="utf-8")
    assert_one_line_error(rnnkit("train", task, "--data", str(data), "--out", str(tmp_path / "r")), pattern)


def test_default_data_only_tasks_reject_data(tmp_path):
    data = tmp_path / "pixels.csv"
    data.write_text("0,1,2\n")
    assert_one_line_error(rnnkit("train", "digits", "--data", str(data), "--out", str(tmp_path / "r")),
                          r"digits: uses its default data only")
    assert_one_line_error(rnnkit("train", "classify", "--data", str(tmp_path), "--out", str(tmp_path / "r")),
                          r"--data: .* is not a regular file \(a directory, device or pipe\)")


def test_divergence_is_reported_and_stops(tmp_path):
    result = rnnkit("train", "forecast", "--out", str(tmp_path / "r"), "--lr", "1e30", "--clip", "0", "--epochs", "3")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "Warning" not in result.stderr
    assert re.match(r"rnnkit: error: training diverged at epoch 1, step \d+: .* (nan|inf)", result.stderr.splitlines()[-1])
    assert not (tmp_path / "r" / "checkpoint.safetensors").exists()


def test_speech_on_your_recordings_then_eval_on_another_file(tmp_path):
    """rnnkit train speech --data FILE.tsv, then eval of the run (its held-out copy) and eval
    --data of another file, then predict on a recording: what a user with recordings runs."""
    import wave

    import numpy as np

    pytest.importorskip("espeakng_loader")
    from rnnkit.data.espeak import synthesize

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    rng = np.random.default_rng(3)
    (tmp_path / "audio").mkdir()

    def recording(name: str) -> str:
        said = " ".join(words[d] for d in rng.integers(0, 10, size=2))
        samples, rate = synthesize(said, "en-us+Alex", rate=int(rng.integers(140, 200)))
        with wave.open(str(tmp_path / "audio" / name), "wb") as file:
            file.setnchannels(1)
            file.setsampwidth(2)
            file.setframerate(rate)
            file.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        return f"audio/{name}\t{said}"

    (tmp_path / "mine.tsv").write_text("\n".join(recording(f"{i}.wav") for i in range(30)) + "\n", encoding="utf-8")
    (tmp_path / "other.tsv").write_text("\n".join(recording(f"o{i}.wav") for i in range(6)) + "\n", encoding="utf-8")
    out = str(tmp_path / "run")
    trained = last_json(rnnkit("train", "speech", "--data", str(tmp_path / "mine.tsv"), "--out", out, "--epochs", "2",
                               "--hidden", "16", "--layers", "1"))
    assert (tmp_path / "run" / "held_out.tsv").is_file() and (tmp_path / "run" / "alignment.png").is_file()
    assert last_json(rnnkit("eval", out))["wer"] == pytest.approx(trained["wer"])
    other = last_json(rnnkit("eval", out, "--data", str(tmp_path / "other.tsv")))
    assert 0.0 <= other["wer"] and other["baseline_wer"] == 1.0
    predicted = rnnkit("predict", out, str(tmp_path / "audio" / "o0.wav"))
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.startswith(str(tmp_path / "audio" / "o0.wav") + "\t")
