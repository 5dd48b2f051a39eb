import numpy as np
import pytest

from rnnkit.models import Ensemble, ManyToMany, ManyToOne
from rnnkit.models.ensemble import mean_probabilities_forward
from tests.gradcheck import assert_gradient

F64 = dict(dtype=np.float64)
rng = np.random.default_rng(0)
T, B, V, C = 5, 3, 6, 3
LENGTHS = np.array([5, 2, 4])
TOKENS = rng.integers(1, V, size=(T, B))
LABELS = np.array([0, 2, 1])


def members(count=3, **options):
    return [ManyToOne(C, 4, vocab_size=V, embed_dim=2, bidirectional=True, pooling="max", seed=10 + k, **F64,
                      **options) for k in range(count)]


def log_softmax(scores):
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_forward_is_the_log_of_the_members_mean_probabilities():
    models = members()
    ensemble = Ensemble(models)
    combined = ensemble.forward(TOKENS, LENGTHS)
    probabilities = np.mean([np.exp(log_softmax(model.forward(TOKENS, LENGTHS))) for model in models], axis=0)
    np.testing.assert_allclose(combined, np.log(probabilities), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.exp(combined).sum(axis=-1), 1.0, rtol=1e-12)


def test_combination_matches_torch_and_survives_huge_scores():
    torch = pytest.importorskip("torch")
    scores = rng.normal(size=(4, 5, C)) * 30.0
    expected = (torch.logsumexp(torch.log_softmax(torch.from_numpy(scores), -1), 0) - np.log(4)).numpy()
    np.testing.assert_allclose(mean_probabilities_forward(scores), expected, rtol=1e-12, atol=1e-12)
    huge = np.array([[[1e4, 0.0, -1e4]], [[-1e4, 1e4, 0.0]]])  # each member certain, of another class
    combined = mean_probabilities_forward(huge)
    assert np.all(np.isfinite(combined))
    np.testing.assert_allclose(combined[0, :2], np.log(0.5), rtol=1e-12)


def test_training_loss_is_the_members_mean_and_each_member_gets_its_own_gradient():
    models = members()
    ensemble = Ensemble(models)
    loss, dscores = ensemble.loss(ensemble.forward(TOKENS, LENGTHS), LABELS)
    assert dscores.shape == (3, B, C)
    alone = [model.loss(model.forward(TOKENS, LENGTHS), LABELS) for model in models]
    np.testing.assert_allclose(loss, np.mean([value for value, _ in alone]), rtol=1e-13)
    for k, (_, dalone) in enumerate(alone):
        np.testing.assert_allclose(dscores[k], dalone / 3, rtol=1e-13)
    # the gradient of the training loss, every parameter, against central differences
    run = lambda: ensemble.loss(ensemble.forward(TOKENS, LENGTHS), LABELS)
    ensemble.zero_grad()
    ensemble.backward(run()[1])
    for name, param, grad in ensemble.named_parameters():
        assert_gradient(lambda: run()[0], param, grad.copy(), name)


def test_evaluation_loss_is_the_combined_predictions():
    ensemble = Ensemble(members())
    ensemble.eval()
    combined = ensemble.forward(TOKENS, LENGTHS)
    loss, _ = ensemble.loss(combined, LABELS)
    np.testing.assert_allclose(loss, -combined[np.arange(B), LABELS].sum(), rtol=1e-12)


def test_squared_error_members_average_their_outputs_and_pass_input_gradients():
    models = [ManyToOne(2, 3, input_size=2, loss="mse", pooling="mean", seed=k, **F64) for k in range(2)]
    ensemble = Ensemble(models)
    x = rng.normal(size=(T, B, 2))
    targets = rng.normal(size=(B, 2))
    combined = ensemble.forward(x, LENGTHS)
    np.testing.assert_allclose(combined, np.mean([m.forward(x, LENGTHS) for m in models], axis=0), rtol=1e-13)
    run = lambda: ensemble.loss(ensemble.forward(x, LENGTHS), targets)
    ensemble.zero_grad()
    dx = ensemble.backward(run()[1])
    assert_gradient(lambda: run()[0], x, dx, "inputs")


def test_parameters_are_named_by_member_and_load_back():
    ensemble = Ensemble(members(2))
    names = [name for name, _, _ in ensemble.named_parameters()]
    assert names[0].startswith("member0.") and any(name.startswith("member1.") for name in names)
    copy = Ensemble(members(2))
    copy.load_state_dict(ensemble.state_dict())
    np.testing.assert_array_equal(copy.forward(TOKENS, LENGTHS), ensemble.forward(TOKENS, LENGTHS))


def test_bad_ensembles_and_calls_are_refused():
    with pytest.raises(ValueError, match="members: expected at least one model, got none"):
        Ensemble([])
    with pytest.raises(TypeError, match=r"members: expected models of one rnnkit.models class, got \['ManyToMany', "
                                        r"'ManyToOne'\]"):
        Ensemble([members(1)[0], ManyToMany(C, 4, vocab_size=V, **F64)])
    with pytest.raises(TypeError, match=r"members: expected models with one output per input to average "
                                        r"\(ManyToOne, OneToOne\), got ManyToMany"):
        Ensemble([ManyToMany(C, 4, vocab_size=V, **F64)])
    with pytest.raises(ValueError, match="members: expected models of one configuration"):
        Ensemble([members(1)[0], ManyToOne(C, 5, vocab_size=V, embed_dim=2, bidirectional=True, **F64)])
    ensemble = Ensemble(members(2))
    with pytest.raises(RuntimeError, match="call forward first"):
        ensemble.loss(np.zeros((B, C)), LABELS)
    ensemble.forward(TOKENS, LENGTHS)
    with pytest.raises(ValueError, match="in training mode, expected the outputs of the last forward"):
        ensemble.loss(np.zeros((B, C)), LABELS)
    with pytest.raises(ValueError, match=r"doutputs: expected the members' gradients, shape \(2, 3, 3\)"):
        ensemble.backward(np.zeros((B, C)))
