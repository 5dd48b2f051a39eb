"""Streams chunk by chunk, the state carried: the same as one call on the whole streams, in
rnnkit and in onnxruntime."""

import numpy as np
import pytest

from rnnkit.models import ManyToMany

CELLS = ["rnn", "lstm", "gru"]


def _chunks(steps, sizes):
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == steps
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sizes", [[1] * 23, [5, 5, 5, 5, 3], [23], [2, 13, 1, 7]])
def test_chunks_of_any_size_give_the_whole_stream(cell, sizes):
    model = ManyToMany(6, 8, input_size=3, cell=cell, num_layers=2, dropout=0.3, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((23, 4, 3))
    whole, final = model.eval().forward(x)
    model.train()  # stream runs in eval mode whatever the model's mode, and puts the mode back
    state, outputs = None, []
    for part in _chunks(23, sizes):
        out, state = model.stream(x[part], state)
        outputs.append(out)
    assert model.training
    np.testing.assert_allclose(np.concatenate(outputs), whole, rtol=1e-12, atol=1e-12)
    for carried, expected in zip(state, final):
        np.testing.assert_allclose(carried, expected, rtol=1e-12, atol=1e-12)


def test_a_bidirectional_model_cannot_stream():
    model = ManyToMany(6, 8, input_size=3, bidirectional=True, seed=0)
    with pytest.raises(ValueError, match="stream: a bidirectional model reads each sequence from its end"):
        model.stream(np.zeros((2, 1, 3), np.float32))


@pytest.mark.parametrize("cell", CELLS)
def test_the_exported_graph_streams_in_onnxruntime(cell):
    pytest.importorskip("onnxruntime")
    from rnnkit.interop.onnx import export_model
    from rnnkit.interop.onnx.deployed import DeployedModel

    model = ManyToMany(7, 8, vocab_size=20, embed_dim=4, cell=cell, num_layers=2, seed=2).eval()
    ids = np.random.default_rng(3).integers(0, 20, size=(17, 3))
    deployed = DeployedModel(export_model(model))
    state, outputs = None, []
    for part in _chunks(17, [4, 1, 9, 3]):
        out, state = deployed.stream(ids[part], state)
        outputs.append(out)
    whole, final = model.forward(ids)
    # float32: sums of tens of unit-scale products per value, in another order
    np.testing.assert_allclose(np.concatenate(outputs), whole, rtol=2e-5, atol=2e-5)
    for carried, expected in zip(state, final):
        np.testing.assert_allclose(carried, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_chunks_with_resets_give_the_whole_stream_with_resets(cell):
    """A new document starts in stream 1 at step 6 and in stream 2 at steps 3 and 15; the chunk
    boundaries fall anywhere, a reset at a chunk's first step included."""
    model = ManyToMany(6, 8, input_size=3, cell=cell, num_layers=2, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((20, 3, 3))
    resets = np.zeros((20, 3), bool)
    resets[6, 1] = resets[3, 2] = resets[15, 2] = True
    whole, final = model.eval().forward(x, resets=resets)
    state, outputs = None, []
    for part in _chunks(20, [3, 3, 9, 5]):
        out, state = model.stream(x[part], state, resets=resets[part])
        outputs.append(out)
    np.testing.assert_allclose(np.concatenate(outputs), whole, rtol=1e-12, atol=1e-12)
    for carried, expected in zip(state, final):
        np.testing.assert_allclose(carried, expected, rtol=1e-12, atol=1e-12)
    fresh, _ = model.forward(x[15:, 2:3])  # after its last reset, stream 2 reads like a new stream
    np.testing.assert_allclose(whole[15:, 2:3], fresh, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("attention", ["none", "additive"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_seq2seq_encoder_streams(cell, attention):
    from rnnkit.models import Seq2Seq

    model = Seq2Seq(15, 12, 8, embed_dim=4, cell=cell, num_layers=2, attention=attention, dtype=np.float64, seed=0)
    source = np.random.default_rng(2).integers(1, 15, size=(11, 3))
    whole = model.encode(source)
    state, outputs = None, []
    for part in _chunks(11, [4, 1, 6]):
        out, state = model.encode_stream(source[part], state)
        outputs.append(out)
    start = model.decoder_start(np.concatenate(outputs), state)
    states = whole if attention == "none" else whole.states
    streamed = start if attention == "none" else start.states
    for got, want in zip(streamed, states, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if attention != "none":
        np.testing.assert_allclose(start.memory, whole.memory, rtol=1e-12, atol=1e-12)
    assert model.generate_from(start, 1, 2, max_len=6) == model.generate(source, None, 1, 2, max_len=6)


def test_a_bidirectional_encoder_cannot_stream():
    from rnnkit.models import Seq2Seq

    model = Seq2Seq(15, 12, 8, bidirectional=True, seed=0)
    with pytest.raises(ValueError, match="encode_stream: a bidirectional encoder"):
        model.encode_stream(np.ones((2, 1), np.int64))
