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
