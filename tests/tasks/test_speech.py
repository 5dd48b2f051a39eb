"""The ``speech`` task: the synthesised spoken digits (split by voice), its metrics and baseline,
and a short training run that beats the baseline on voices it never heard."""

import numpy as np
import pytest

from rnnkit.tasks.speech import Speech, word_error_rate

pytest.importorskip("espeakng_loader")


def test_word_error_rate_counts_edits_per_reference_word():
    assert word_error_rate([["one", "two"]], [["one", "two"]]) == 0.0
    assert word_error_rate([["one"]], [["one", "two"]]) == 0.5  # a deletion
    assert word_error_rate([["one", "three", "two"]], [["one", "two"]]) == 0.5  # an insertion
    assert word_error_rate([[]], [["one", "two", "three", "four"]]) == 1.0


@pytest.fixture(scope="module")
def task():
    return Speech(seed=0)


def test_the_voices_of_each_split_are_never_heard_in_another(task):
    voices = {split: set(task.splits[split][2]) for split in ("train", "valid", "test")}
    assert not voices["train"] & voices["test"] and not voices["train"] & voices["valid"]
    assert not voices["valid"] & voices["test"]
    frames, digits, _ = task.splits["test"]
    assert len(frames) == len(digits) == 300 and frames[0].shape[1] == 40
    assert all(1 <= len(d) <= 7 for d in digits)
    assert "voices" in task.describe()


def test_the_baseline_is_the_empty_or_the_most_common_transcript(task):
    baseline = task.baseline("test")
    assert 0.8 < baseline["wer"] <= 1.0 and 0.0 < baseline["cer"] <= 1.0


@pytest.mark.slow
def test_a_short_run_beats_the_baseline_on_unheard_voices(task):
    from rnnkit.optim import Adam, clip_grad_norm

    options = {**task.defaults, "hidden": 48, "layers": 1}
    model = task.build_model(options)
    optimizer = Adam(model, lr=1e-2)
    for batch in (task.train_batches(0) + task.train_batches(1))[:150]:  # past the all-blank plateau
        model.zero_grad()
        loss, count, _ = task.train_step(model, batch, None)
        for _, _, grad in model.named_parameters():
            grad /= count
        clip_grad_norm(model, 5.0)
        optimizer.step()
    model.eval()
    metrics = task.evaluate(model, "test")
    assert metrics["wer"] < 0.5 * task.baseline("test")["wer"], metrics
    assert np.isfinite(metrics["loss"])


def test_predict_reads_wav_files(task, tmp_path):
    """A model trained a little, asked for the transcript of a WAV file it has never heard: one
    line per file, words from the digits' vocabulary (what it says is the training's business)."""
    import wave

    from rnnkit.data.espeak import synthesize

    samples, rate = synthesize("four two", "en-us+Alex")
    with wave.open(str(tmp_path / "a.wav"), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    model = task.build_model({**task.defaults, "hidden": 16, "layers": 1})
    model.eval()
    (transcript,) = task.predict(model, [str(tmp_path / "a.wav")])
    assert all(word in task.words for word in transcript.split())
