import numpy as np
import pytest

from rnnkit.nn import RNN, Dropout, Embedding, Linear, Module, Sequential
from tests.gradcheck import assert_gradient


class TwoLayer(Module):
    def __init__(self):
        super().__init__()
        self.encoder = Linear(3, 4, dtype=np.float64, seed=0)
        self.decoder = Linear(4, 2, dtype=np.float64, seed=1)


def test_named_parameters_are_dotted_and_share_memory():
    model = TwoLayer()
    names = [name for name, _, _ in model.named_parameters()]
    assert names == ["encoder.W", "encoder.b", "decoder.W", "decoder.b"]
    _, param, grad = next(model.named_parameters())
    assert param is model.encoder.params["W"] and grad is model.encoder.grads["W"]
    assert model.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2


def test_state_dict_round_trip_copies_in_place():
    source, target = TwoLayer(), TwoLayer()
    target.decoder.params["W"][...] = 0.0
    weight_before = target.decoder.params["W"]
    target.load_state_dict(source.state_dict())
    assert target.decoder.params["W"] is weight_before  # optimizers keep their references
    for (name, a, _), (_, b, _) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    state = source.state_dict()
    state["encoder.W"][...] = 99.0
    assert not np.any(source.encoder.params["W"] == 99.0)  # state_dict returns copies


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.pop("decoder.b"), r"missing \['decoder.b'\]"),
        (lambda s: s.update(extra=np.zeros(1)), r"unexpected \['extra'\]"),
        (lambda s: s.update({"encoder.W": np.zeros((3, 4))}),
         r"state_dict\['encoder.W'\]: expected shape \(4, 3\), got \(3, 4\)"),
        (lambda s: s.update({"encoder.b": np.full(4, np.nan)}), r"state_dict\['encoder.b'\]: expected finite values"),
    ],
)
def test_load_state_dict_rejects_mismatches_without_writing(mutate, message):
    model = TwoLayer()
    before = model.state_dict()
    state = TwoLayer().state_dict()
    state["decoder.W"][...] = 5.0
    mutate(state)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_train_eval_propagate_to_children():
    model = Sequential(Linear(2, 2), Dropout(0.5))
    model.eval()
    assert not model.training and not model[1].training
    model.train()
    assert model[1].training


def test_linear_module_gradients():
    layer = Linear(3, 2, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x, upstream = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 5, 2))
    layer.forward(x)
    dx = layer.backward(upstream)
    loss = lambda: float(np.sum(layer.forward(x) * upstream))
    assert_gradient(loss, x, dx, "x")
    for name in ("W", "b"):
        assert_gradient(loss, layer.params[name], layer.grads[name], name)


def test_embedding_module_gradient_and_errors():
    table = Embedding(5, 3, padding_idx=0, dtype=np.float64, seed=0)
    np.testing.assert_array_equal(table.params["W"][0], 0.0)
    ids = np.array([[0, 1], [4, 1]])
    upstream = np.random.default_rng(1).normal(size=(2, 2, 3))
    table.forward(ids)
    assert table.backward(upstream) is None
    np.testing.assert_allclose(table.grads["W"][1], upstream[0, 1] + upstream[1, 1])
    np.testing.assert_array_equal(table.grads["W"][0], 0.0)
    with pytest.raises(ValueError, match=r"ids: expected ids in 0..4, got min 0 and max 5"):
        table.forward(np.array([0, 5]))
    with pytest.raises(TypeError, match=r"ids: expected integer token ids, got dtype float64"):
        table.forward(np.array([0.0]))


def test_sequential_chains_forward_and_reverses_backward():
    model = Sequential(Linear(3, 4, dtype=np.float64, seed=0), Dropout(0.0), Linear(4, 2, dtype=np.float64, seed=1))
    rng = np.random.default_rng(2)
    x, upstream = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    y = model.forward(x)
    first, last = model[0], model[2]
    np.testing.assert_allclose(y, (x @ first.params["W"].T + first.params["b"]) @ last.params["W"].T + last.params["b"])
    dx = model.backward(upstream)
    assert_gradient(lambda: float(np.sum(model.forward(x) * upstream)), x, dx, "x")
    assert [n for n, _, _ in model.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]


def test_backward_before_forward_is_an_error():
    for module in (Linear(2, 2), Embedding(3, 2), Dropout(0.1)):
        with pytest.raises(RuntimeError, match=r"backward: call forward first"):
            module.backward(np.zeros((1, 2)))


def test_rnn_state_dict_round_trip_reproduces_outputs():
    a, b = RNN(3, 4, num_layers=2, bidirectional=True, seed=0), RNN(3, 4, num_layers=2, bidirectional=True, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])


@pytest.mark.parametrize("seed", ["x", -1, 1.5, True])
def test_a_seed_that_is_no_seed_is_named(seed):
    for make in (lambda: Linear(3, 2, seed=seed), lambda: RNN(3, 2, seed=seed), lambda: Embedding(4, 2, seed=seed)):
        with pytest.raises(TypeError, match=r"seed: expected an integer >= 0, a numpy Generator or None"):
            make()
    Linear(3, 2, seed=np.random.default_rng(0))  # a generator is a seed
    Linear(3, 2, seed=np.int64(3))
