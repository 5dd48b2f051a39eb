"""The minimal cells (minGRU, minLSTM) exported as plain ONNX operators (a Scan over the linear
recurrence) and run in onnxruntime: the same outputs as rnnkit within float32 rounding, for every
architecture that reads a sequence, streaming and resets included."""

import numpy as np
import pytest

from rnnkit.models import ManyToMany, ManyToOne, Seq2Seq

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from rnnkit.interop.onnx import export_model  # noqa: E402
from rnnkit.interop.onnx.deployed import DeployedModel  # noqa: E402

CELLS = ["mingru", "minlstm"]
# float32, sums of a few dozen unit-scale products per value in another order, and 17 steps of a
# contracting recurrence: a few ulps of the outputs' scale
TOL = dict(rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_many_to_many_streams_in_onnxruntime_with_resets(cell):
    model = ManyToMany(7, 8, vocab_size=20, embed_dim=4, cell=cell, num_layers=2, seed=2).eval()
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 20, size=(17, 3))
    resets = rng.random((17, 3)) < 0.15
    deployed = DeployedModel(export_model(model))
    whole, final = model.forward(ids, resets=resets)
    state, outputs = None, []
    for start, stop in [(0, 4), (4, 5), (5, 14), (14, 17)]:
        out, state = deployed.stream(ids[start:stop], state, resets=resets[start:stop])
        outputs.append(out)
    np.testing.assert_allclose(np.concatenate(outputs), whole, **TOL)
    np.testing.assert_allclose(state[0], final[0], **TOL)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_bidirectional_many_to_one_with_padding(cell, pooling):
    model = ManyToOne(3, 8, vocab_size=20, embed_dim=4, cell=cell, num_layers=2, bidirectional=True,
                      pooling=pooling, seed=4).eval()
    ids = np.random.default_rng(5).integers(0, 20, size=(13, 4))
    lengths = np.array([13, 4, 9, 1])
    got = DeployedModel(export_model(model)).forward(ids, lengths)
    np.testing.assert_allclose(got, model.forward(ids, lengths), **TOL)


@pytest.mark.parametrize("cell", CELLS)
def test_seq2seq_with_a_bidirectional_encoder_and_attention_generates_alike(cell):
    model = Seq2Seq(15, 12, 8, embed_dim=4, cell=cell, num_layers=2, bidirectional=True, attention="additive",
                    seed=0).eval()
    source = np.random.default_rng(6).integers(1, 15, size=(9, 3))
    lengths = np.array([9, 4, 6])
    deployed = DeployedModel(export_model(model))
    assert deployed.generate(source, lengths, 1, 2, max_len=6) == model.generate(source, lengths, 1, 2, max_len=6)
