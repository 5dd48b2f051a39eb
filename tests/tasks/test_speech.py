"""The ``speech`` task: the synthesised spoken digits (split by voice), its metrics and baseline,
and a short training run that beats the baseline on voices it never heard."""

import numpy as np
import pytest

from rnnkit.data.datasets.spoken_digits import DIGIT_WORDS
from rnnkit.tasks.base import TaskError
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
    frames, transcripts, _ = task.splits["test"]
    assert len(frames) == len(transcripts) == 300 and frames[0].shape[1] == 40
    assert all(1 <= len(t.split()) <= 7 for t in transcripts)
    assert "voices" in task.describe() and task.tokenizer.kind == "word"  # auto: a closed vocabulary


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
    assert all(word in DIGIT_WORDS for word in transcript.split())


def _write_wav(path, samples, rate):
    import wave

    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def test_your_recordings_train_split_and_score_with_bad_ones_counted(tmp_path):
    """A TSV of recordings, paths relative to it: an unreadable file, a recording too short for its
    transcript and a missing one are skipped and counted, never a crash; the rest is split
    80/10/10, tokenized, and its held-out copy scores like the test split (eval --data)."""
    from rnnkit.data.espeak import synthesize

    rng = np.random.default_rng(0)
    (tmp_path / "audio").mkdir()
    lines = []
    for i in range(20):
        words = " ".join(DIGIT_WORDS[d] for d in rng.integers(0, 10, size=2))
        samples, rate = synthesize(words, "en-us+Alex")
        _write_wav(tmp_path / "audio" / f"{i}.wav", samples, rate)
        lines.append(f"audio/{i}.wav\t{words}")
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    _write_wav(tmp_path / "audio" / "short.wav", np.zeros(800), 16000)  # 50 ms
    lines += ["audio/broken.wav\tone", "audio/short.wav\tone two three four five six seven", "audio/gone.wav\tnine"]
    (tmp_path / "data.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = Speech(data=str(tmp_path / "data.tsv"), seed=0)
    assert sum(len(task.splits[s][0]) for s in ("train", "valid", "test")) == 20
    assert task.skipped == {"unreadable": 2, "too short for their transcripts": 1}
    assert any("skipped 3 recordings" in w and "broken.wav" in w for w in task.warnings)
    model = task.build_model({**task.defaults, "hidden": 16, "layers": 1})
    model.eval()
    metrics = task.evaluate(model, "test")
    task.write_split("test", tmp_path / "held_out.tsv")
    scored = Speech(data=None, seed=0, meta=task.meta(), score_file=str(tmp_path / "held_out.tsv"))
    assert scored.evaluate(model, "test") == pytest.approx(metrics)
    assert scored.baseline("test")["wer"] == 1.0  # the empty transcript: the training split is not at hand


def test_a_file_with_no_usable_recording_is_a_clear_error(tmp_path):
    (tmp_path / "data.tsv").write_text("missing.wav\tone\n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"no usable recording .*missing.wav: no such file"):
        Speech(data=str(tmp_path / "data.tsv"))


def test_alignment_figures_for_a_run_and_for_predict(task, tmp_path):
    pytest.importorskip("matplotlib")
    model = task.build_model({**task.defaults, "hidden": 16, "layers": 1})
    model.eval()
    (picture,) = task.pictures(model, tmp_path)
    assert picture.name == "alignment.png" and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from rnnkit.data.espeak import synthesize

    samples, rate = synthesize("one", "en-us+Alex")
    _write_wav(tmp_path / "one.wav", samples, rate)
    drawn = task.plot(model, [str(tmp_path / "one.wav")], tmp_path / "mine.png")
    assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_augmented_batches_are_a_function_of_seed_and_epoch(task):
    """SpecAugment masks drawn afresh each epoch, the same on a rerun of the epoch (exact resume);
    labels and lengths untouched; padding stays zero."""
    first, again = task.train_batches(3)[:4], task.train_batches(3)[:4]
    plain = Speech.__new__(Speech)
    plain.__dict__.update(task.__dict__)
    plain.options = {**task.options, "augment": False}
    unmasked = plain.train_batches(3)[:4]
    for (x, lengths, labels, _), (y, *_), (z, z_lengths, z_labels, _) in zip(first, again, unmasked):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(labels, z_labels)
        np.testing.assert_array_equal(lengths, z_lengths)
        assert (x != z).any() and ((x == z) | (x == 0)).all()  # some values masked to 0, nothing else changed
        padding = np.arange(len(x))[:, None] >= lengths[None, :]
        assert not x[padding].any()
    assert not np.array_equal(task.train_batches(4)[0][0], first[0][0])  # another epoch, other masks
