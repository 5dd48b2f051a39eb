"""The CTC acoustic model as an ONNX graph (``rnnkit.interop.onnx.models``), run in onnxruntime:
the frames stacked inside the graph, every cell, one or two directions, padded batches; and the
deployed model's CTC loss as the model's."""

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rnnkit.interop.onnx.deployed import DeployedModel  # noqa: E402
from rnnkit.interop.onnx.models import export_model  # noqa: E402
from rnnkit.models.acoustic import AcousticModel  # noqa: E402


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("stack", [1, 3])
def test_scores_and_lengths_equal_the_model(cell, bidirectional, stack):
    model = AcousticModel(5, 7, 6, cell=cell, num_layers=2, bidirectional=bidirectional, stack=stack, seed=0)
    model.eval()
    frames = np.random.default_rng(1).normal(size=(10, 4, 5)).astype(np.float32)
    lengths = np.array([10, 8, 5, 1])
    scores, out_lengths = model.forward(frames, lengths)
    deployed = DeployedModel(export_model(model))
    got, got_lengths = deployed.forward(frames, lengths)
    np.testing.assert_array_equal(got_lengths, out_lengths)
    valid = (np.arange(len(scores))[:, None] < out_lengths[None, :])[..., None]
    # float32 through two recurrent layers in another order of operations: a few units of 2^-24
    np.testing.assert_allclose(got * valid, scores * valid, rtol=1e-5, atol=1e-5)
    targets, target_lengths = np.array([[1, 2], [3, 0], [4, 4], [5, 0]]), np.array([2, 1, 2, 1])
    ours = model.loss(scores, targets, out_lengths, target_lengths, reduction="sum")[0]
    theirs = deployed.loss(got, targets, got_lengths, target_lengths, reduction="sum")[0]
    assert theirs == pytest.approx(ours, rel=1e-5)
    assert deployed.stack == stack
