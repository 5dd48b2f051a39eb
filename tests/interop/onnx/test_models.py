"""The architectures' graphs (export_model) against the rnnkit models, in onnxruntime and in
rnnkit's executor: scores, carried states, teacher forcing and generation (greedy and beam)."""

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rnnkit.interop.onnx import export_model  # noqa: E402
from rnnkit.interop.onnx.deployed import DeployedModel  # noqa: E402
from rnnkit.models.ensemble import Ensemble  # noqa: E402
from rnnkit.models.generative import OneToMany, Seq2Seq  # noqa: E402
from rnnkit.models.sequence import ManyToMany, ManyToOne, OneToOne  # noqa: E402

STEPS, BATCH = 6, 4
LENGTHS = np.array([6, 2, 5, 1])
IDS = np.random.default_rng(0).integers(1, 20, size=(STEPS, BATCH))
CELLS = ["rnn", "lstm", "gru"]


def close(have, want, dtype=np.float32):
    """float32: sums of tens of unit-scale products per value; float64: exact but for the order."""
    tolerance = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(np.asarray(have), np.asarray(want), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_many_to_many_scores_and_carried_states(cell, layers, bidirectional):
    model = ManyToMany(7, 5, vocab_size=20, embed_dim=3, cell=cell, num_layers=layers, bidirectional=bidirectional,
                       seed=1).eval()
    graphs = export_model(model)
    assert list(graphs) == ["model"]
    deployed = DeployedModel(graphs)
    want, want_state = model.forward(IDS, None, LENGTHS)
    have, have_state = deployed.forward(IDS, None, LENGTHS)
    close(have, want)
    for h, w in zip(have_state, want_state):
        close(h, w)
    # the state carried into the next chunk, as truncated BPTT and streaming do
    close(deployed.forward(IDS, have_state)[0], model.forward(IDS, want_state)[0])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_one_pools_as_the_model(cell, pooling, bidirectional):
    model = ManyToOne(3, 5, vocab_size=20, embed_dim=3, cell=cell, num_layers=2, bidirectional=bidirectional,
                      pooling=pooling, seed=2).eval()
    if pooling == "attention":  # a learned query, not the zeros it starts from (the mean)
        model.params["pool_query"][:] = np.random.default_rng(2).standard_normal(model.params["pool_query"].shape)
    close(DeployedModel(export_model(model)).forward(IDS, LENGTHS), model.forward(IDS, LENGTHS))


@pytest.mark.parametrize("backend, dtype", [("onnxruntime", np.float32), ("rnnkit", np.float64)])
def test_ensemble_averages_its_members_probabilities_as_the_model(backend, dtype):
    members = [ManyToOne(3, 5, vocab_size=20, embed_dim=3, cell="gru", bidirectional=True, pooling="max", dtype=dtype,
                         seed=20 + k) for k in range(3)]
    for member in members:  # members far apart, so that the combination is not the average of near-equal scores
        member.head.params["W"] *= 8.0
    ensemble = Ensemble(members).eval()
    graphs = export_model(ensemble)
    assert graphs["model"].graph.name == "rnnkit_many_to_one_ensemble"
    close(DeployedModel(graphs, backend=backend).forward(IDS, LENGTHS), ensemble.forward(IDS, LENGTHS), dtype)
    rng = np.random.default_rng(4)  # squared error: the members' mean output, from real-valued inputs
    regressors = Ensemble([ManyToOne(2, 5, input_size=4, loss="mse", pooling="mean", dtype=dtype, seed=k)
                           for k in range(2)]).eval()
    x = rng.standard_normal((STEPS, BATCH, 4)).astype(dtype)
    close(DeployedModel(export_model(regressors), backend=backend).forward(x, LENGTHS), regressors.forward(x, LENGTHS),
          dtype)


def test_real_valued_inputs_and_one_to_one():
    rng = np.random.default_rng(3)
    reader = ManyToOne(3, 5, input_size=4, cell="gru", bidirectional=True, seed=3).eval()
    x = rng.standard_normal((STEPS, BATCH, 4))
    close(DeployedModel(export_model(reader)).forward(x, LENGTHS), reader.forward(x, LENGTHS))
    single = OneToOne(4, 3, 5, cell="lstm", seed=3).eval()
    features = rng.standard_normal((BATCH, 4))
    close(DeployedModel(export_model(single)).forward(features), single.forward(features))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention, bidirectional", [("none", False), ("none", True), ("dot", False),
                                                      ("general", True), ("additive", True)])
def test_seq2seq_encoder_and_decoder_step_graphs(cell, attention, bidirectional):
    model = Seq2Seq(20, 15, 5, embed_dim=3, cell=cell, num_layers=2, bidirectional=bidirectional,
                    attention=attention, seed=4).eval()
    graphs = export_model(model)
    assert list(graphs) == ["encoder", "decoder_step"]
    deployed = DeployedModel(graphs)
    targets = np.random.default_rng(5).integers(1, 15, size=(4, BATCH))
    close(deployed.forward(IDS, LENGTHS, targets), model.forward(IDS, LENGTHS, targets))
    assert deployed.generate(IDS, LENGTHS, 1, 2, 8) == model.generate(IDS, LENGTHS, 1, 2, 8)
    assert deployed.generate(IDS, LENGTHS, 1, 2, 8, method="beam") == model.generate(IDS, LENGTHS, 1, 2, 8,
                                                                                    method="beam")


@pytest.mark.parametrize("cell", CELLS)
def test_one_to_many_generates_as_the_model(cell):
    model = OneToMany(4, 15, 5, cell=cell, num_layers=2, seed=6).eval()
    deployed = DeployedModel(export_model(model))
    features = np.random.default_rng(6).standard_normal((BATCH, 4))
    targets = np.random.default_rng(7).integers(1, 15, size=(4, BATCH))
    close(deployed.forward(features, targets), model.forward(features, targets))
    assert deployed.generate(features, 1, 2, max_len=6) == model.generate(features, 1, 2, max_len=6)


@pytest.mark.parametrize("cell", CELLS)
def test_float64_graphs_run_in_rnnkits_executor(cell):
    model = Seq2Seq(20, 15, 5, embed_dim=3, cell=cell, bidirectional=True, attention="additive", dtype=np.float64,
                    seed=8).eval()
    deployed = DeployedModel(export_model(model), backend="rnnkit")
    targets = np.random.default_rng(9).integers(1, 15, size=(4, BATCH))
    close(deployed.forward(IDS, LENGTHS, targets), model.forward(IDS, LENGTHS, targets), np.float64)
    reader = ManyToOne(3, 5, vocab_size=20, cell=cell, pooling="max", bidirectional=True, dtype=np.float64, seed=8)
    close(DeployedModel(export_model(reader.eval()), backend="rnnkit").forward(IDS, LENGTHS),
          reader.forward(IDS, LENGTHS), np.float64)


def test_deployed_model_errors():
    from rnnkit.interop.onnx import to_onnx
    from rnnkit.nn import RNN

    with pytest.raises(TypeError, match="expected one of rnnkit.models' ManyToMany"):
        export_model(RNN(2, 3))
    with pytest.raises(ValueError, match="not graphs of an rnnkit model"):
        DeployedModel({"model": to_onnx(RNN(2, 3))})
    graphs = export_model(OneToMany(4, 15, 5, seed=0))
    with pytest.raises(ValueError, match=r"a OneToMany is exported as \['decoder_step', 'encoder'\]"):
        DeployedModel({"model": graphs["encoder"]})
    with pytest.raises(ValueError, match="backend: expected one of onnxruntime, rnnkit"):
        DeployedModel(graphs, backend="tvm")
