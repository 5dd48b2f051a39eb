"""charlm's streams: TBPTT(k1, k2) gradients against a hand-unrolled reference, k1 = k2 = T against
full BPTT, documents that reset the state, and a run killed mid-stream resuming exactly."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data import CONTEXT, lm_stream_batches, lm_stream_windows
from rnnkit.tasks.charlm import CharLM

OPTIONS = {"cell": "gru", "hidden": 6, "layers": 2, "embed": 4, "nonlinearity": "tanh", "dropout": 0.0,
           "bidirectional": False, "batch_size": 3}


def _text(seed=0, lines=40):
    rng = np.random.default_rng(seed)
    words = ["the", "cab", "abbey", "dog", "a", "cabbage", "bed", "cage"]
    return "".join(" ".join(rng.choice(words, size=rng.integers(2, 7))) + ".\n" for _ in range(lines))


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(_text(), encoding="utf-8")
    return path


def _task(text_file, **options):
    task = CharLM(data=str(text_file), seed=0, options={**OPTIONS, **options})
    return task, task.build_model(task.options, dtype=np.float64)


def _grads(model):
    return {name: grad.copy() for name, _, grad in model.named_parameters()}


def _streams(task, first_inputs):
    """The training streams (S, B) the windows were cut from, found from the epoch's offset."""
    ids = task.encoded["train"]
    for offset in range(len(ids)):
        data = ids[offset:]
        steps = len(data) // OPTIONS["batch_size"]
        streams = data[: steps * OPTIONS["batch_size"]].reshape(OPTIONS["batch_size"], steps).T
        if np.array_equal(streams[: len(first_inputs)], first_inputs):
            return streams
    raise AssertionError("no offset gives the first window")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("k2,k1", [(12, 4), (10, 3), (8, 8), (9, 1)])
def test_tbptt_gradients_equal_a_hand_unrolled_reference(text_file, cell, k2, k1):
    """Update u: the state after reading steps [0, begin) from the start, then the loss of the new
    steps [u k1, (u + 1) k1) backpropagated through [begin, (u + 1) k1), begin = (u + 1) k1 - k2."""
    task, model = _task(text_file, cell=cell, bptt=k2, bptt_stride=k1)
    batches = task.train_batches(0)
    streams = _streams(task, batches[0][0])
    carry = None
    for u, batch in enumerate(batches[:12]):
        model.zero_grad()
        _, count, carry = task.train_step(model, batch, carry)
        got = _grads(model)
        new, end = u * k1, min(u * k1 + k1, len(streams) - 1)
        begin = max(0, new + k1 - k2)
        assert count == (end - new) * OPTIONS["batch_size"]
        state = None if begin == 0 else model.forward(streams[:begin])[1]
        model.zero_grad()
        logits, _ = model.forward(streams[begin:end], state)
        _, dscored = model.loss(logits[new - begin :], streams[new + 1 : end + 1])
        dlogits = np.zeros_like(logits)
        dlogits[new - begin :] = dscored
        model.backward(dlogits)
        for name, grad in _grads(model).items():
            np.testing.assert_allclose(got[name], grad, rtol=1e-10, atol=1e-12, err_msg=f"update {u}: {name}")


def test_one_window_over_the_whole_stream_is_full_bptt(text_file):
    task, model = _task(text_file, cell="lstm", bptt=10_000, bptt_stride=10_000)
    (batch,) = task.train_batches(0)
    model.zero_grad()
    task.train_step(model, batch, None)
    got = _grads(model)
    inputs, targets, _ = batch
    assert (targets != CONTEXT).all()
    model.zero_grad()
    logits, _ = model.forward(inputs)
    model.backward(model.loss(logits, targets)[1])
    for name, grad in _grads(model).items():
        np.testing.assert_allclose(got[name], grad, rtol=1e-12, atol=1e-14, err_msg=name)


def test_stride_equal_to_bptt_gives_the_plain_chunks():
    ids = np.arange(50)
    for (x, y, resets), (x0, y0) in zip(lm_stream_windows(ids, 3, 7), lm_stream_batches(ids, 3, 7), strict=True):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
        assert not resets.any()


@pytest.mark.parametrize("k2,k1", [(7, 2), (7, 7), (6, 3), (5, 1)])
def test_windows_score_every_target_once_and_memory_holds_k2_steps(k2, k1):
    ids = np.arange(100)
    scored = []
    for x, y, _ in lm_stream_windows(ids, 2, k2, k1):
        assert len(x) <= k2
        np.testing.assert_array_equal(y[y != CONTEXT], (x + 1)[y != CONTEXT])
        scored += y[:, 0][y[:, 0] != CONTEXT].tolist()
    assert scored == list(range(1, 50))


def test_bad_stride_is_refused(text_file):
    with pytest.raises(Exception, match=r"--bptt-stride: expected 1\.\.8"):
        CharLM(data=str(text_file), seed=0, options={**OPTIONS, "bptt": 8, "bptt_stride": 9})


def test_documents_start_the_state_again_at_each_line(text_file):
    task, model = _task(text_file, documents="lines", bptt=16)
    starts = task.document_starts("train")
    text = task.splits["train"]
    assert starts.sum() == text.count("\n") and all(text[i] == "\n" for i in np.flatnonzero(starts))
    inputs, _, resets = task.train_batches(0)[3]
    assert resets.any() and (inputs[resets] == task.tokenizer.encode("\n")[0]).all()
    # a line's predictions depend only on that line: the same from any carried state
    carry = tuple(np.random.default_rng(0).normal(size=(2, 3, 6)) for _ in range(1))
    with_carry, _ = model.forward(inputs, carry, resets=resets)
    without, _ = model.forward(inputs, None, resets=resets)
    after = np.cumsum(resets, axis=0) > 0  # steps from each stream's first reset on
    np.testing.assert_allclose(with_carry[after], without[after], rtol=1e-12, atol=1e-12)
    assert not np.allclose(with_carry[~after], without[~after])
    paragraphs, _ = _task(text_file, documents="paragraphs")
    assert not paragraphs.document_starts("train").any()  # no blank lines in this text


def test_documents_need_character_tokens(text_file):
    with pytest.raises(Exception, match="--documents lines .* character tokens"):
        CharLM(data=str(text_file), seed=0, options={**OPTIONS, "documents": "lines", "tokens": "bpe"})


def test_a_run_killed_mid_stream_resumes_exactly(text_file, tmp_path):
    """TBPTT(3, 5) over documents: the carried state (after the first window's first step), the
    reset positions and the phase of the windows come back from the checkpoint, and the run goes
    on bit for bit."""
    pytest.importorskip("safetensors")
    from rnnkit.train import TrainConfig, Trainer

    options = {**OPTIONS, "cell": "lstm", "bptt": 5, "bptt_stride": 3, "documents": "lines"}

    def trainer(out, max_seconds=None):
        task = CharLM(data=str(text_file), seed=0, options=options)
        config = TrainConfig(epochs=2, max_seconds=max_seconds, lr=0.01, patience=None, log_every=5, progress=False)
        return Trainer(task, task.build_model(task.options, dtype=np.float64), task.options, config, out)

    straight = trainer(tmp_path / "a")
    straight.fit()
    stopped = trainer(tmp_path / "b", max_seconds=0.0)  # stops after its first update, mid-stream
    assert stopped.fit() == "time"
    assert stopped.carry is not None  # the state after the first window's first step
    resumed = trainer(tmp_path / "b")
    resumed.resume()
    for saved, live in zip(resumed.carry, stopped.carry, strict=True):
        np.testing.assert_array_equal(saved, live)
    resumed.fit()
    for (name, a, _), (_, b, _) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_sampling_reads_documents_as_training_did(text_file):
    """With --documents lines the state starts again at every newline while sampling too, in the
    prime and in what is generated; with one document it never does."""
    for documents in ("lines", "one"):
        task, model = _task(text_file, documents=documents)
        newline = task.tokenizer.encode("\n")[0]
        seen = []
        forward = model.forward

        def recording(inputs, state=None, lengths=None, resets=None, forward=forward, seen=seen):
            seen.append((np.asarray(inputs)[:, 0].copy(), None if resets is None else resets[:, 0].copy()))
            return forward(inputs, state, lengths, resets)

        model.forward = recording
        text = task.sample(model, "the dog.\ncab", 200, 1.0, 1)
        assert "\n" in text[len("the dog.\ncab"):]  # something generated crosses a line
        for inputs, resets in seen:
            if documents == "one":
                assert resets is None
            else:
                np.testing.assert_array_equal(resets, inputs == newline)
