"""The CTC acoustic model (``rnnkit/models/acoustic.py``) and frame stacking: gradients against
central differences, and five spoken utterances (eSpeak NG) learned until greedy decoding reads
their transcripts back exactly."""

import numpy as np
import pytest

from rnnkit.data.audio import SAMPLE_RATE, log_mel, normalize, resample
from rnnkit.functional.stacking import stack_frames_backward, stack_frames_forward
from rnnkit.models.acoustic import AcousticModel
from rnnkit.optim import Adam, clip_grad_norm
from tests.gradcheck import assert_gradient


def test_frame_stacking_and_its_gradient():
    x = np.arange(5 * 2 * 3, dtype=np.float64).reshape(5, 2, 3)
    y, lengths, cache = stack_frames_forward(x, np.array([5, 3]), 2)
    assert y.shape == (3, 2, 6) and lengths.tolist() == [3, 2]
    np.testing.assert_array_equal(y[1, 0], np.concatenate([x[2, 0], x[3, 0]]))
    np.testing.assert_array_equal(y[2, 1], np.concatenate([x[4, 1], np.zeros(3)]))  # past T: zeros
    dy = np.random.default_rng(0).normal(size=y.shape)
    dx = stack_frames_backward(dy, cache)
    assert dx.shape == x.shape
    assert np.sum(dy * y) == pytest.approx(np.sum(dx * x))  # the adjoint of a reshape


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_match_central_differences(cell, bidirectional):
    rng = np.random.default_rng(1)
    model = AcousticModel(4, 5, 6, cell=cell, num_layers=2, bidirectional=bidirectional, stack=2, dtype=np.float64,
                          seed=0)
    frames = rng.normal(size=(9, 3, 4))
    lengths = np.array([9, 7, 6])
    targets, target_lengths = np.array([[1, 2], [3, 3], [4, 0]]), np.array([2, 2, 1])

    def loss() -> float:
        scores, out_lengths = model.forward(frames, lengths)
        return model.loss(scores, targets, out_lengths, target_lengths)[0]

    scores, out_lengths = model.forward(frames, lengths)
    _, dscores = model.loss(scores, targets, out_lengths, target_lengths)
    model.zero_grad()
    dframes = model.backward(dscores, input_grad=True)
    for name, param, grad in list(model.named_parameters())[:4]:
        assert_gradient(loss, param, grad.copy(), name)
    assert_gradient(loss, frames, dframes, "frames")


DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_five_spoken_utterances_are_learned_and_read_back_exactly():
    espeak = pytest.importorskip("rnnkit.data.espeak")
    pytest.importorskip("espeakng_loader")
    rng = np.random.default_rng(0)
    utterances = [rng.integers(0, 10, size=int(rng.integers(2, 5))) for _ in range(5)]
    features = []
    for digits in utterances:
        samples, rate = espeak.synthesize(" ".join(DIGITS[d] for d in digits), "en-us+Alex", rate=170)
        features.append(normalize(log_mel(resample(samples, rate, SAMPLE_RATE), n_mels=40)))
    lengths = np.array([len(f) for f in features])
    frames = np.zeros((lengths.max(), 5, 40), np.float32)
    for b, f in enumerate(features):
        frames[: len(f), b] = f
    labels = 1 + np.zeros((5, 4), np.int64)
    for b, digits in enumerate(utterances):
        labels[b, : len(digits)] = digits + 1  # label 0 is the blank
    target_lengths = np.array([len(d) for d in utterances])
    model = AcousticModel(40, 11, 48, cell="gru", num_layers=1, bidirectional=True, stack=3, seed=0)
    optimizer = Adam(model, lr=1e-2)
    for _ in range(400):
        model.zero_grad()
        scores, out_lengths = model.forward(frames, lengths)
        loss, dscores = model.loss(scores, labels, out_lengths, target_lengths)
        model.backward(dscores)
        clip_grad_norm(model, 5.0)
        optimizer.step()
        if loss < 0.05:
            break
    model.eval()
    decoded = model.decode(frames, lengths)
    assert decoded == [[int(d) + 1 for d in digits] for digits in utterances], (loss, decoded)
    assert model.decode(frames, lengths, beam_width=4) == decoded
