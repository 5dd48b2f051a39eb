import numpy as np
import pytest

from rnnkit.models import ManyToMany, ManyToOne, OneToMany, OneToOne, Seq2Seq, beam_search, generate
from tests.gradcheck import assert_gradient

F64 = dict(dtype=np.float64)
rng = np.random.default_rng(0)
T, B, V = 5, 3, 6
LENGTHS = np.array([5, 2, 4])
TOKENS = rng.integers(1, V, size=(T, B))
TARGETS = rng.integers(1, V, size=(T, B))
REALS = rng.normal(size=(T, B, 2))


def _check_model(model, run):
    """``run()`` does forward + loss and returns (loss, doutputs); check every parameter."""
    loss_value, doutputs = run()
    model.zero_grad()
    model.backward(doutputs)
    for name, param, grad in model.named_parameters():
        assert_gradient(lambda: run()[0], param, grad.copy(), name)
    return loss_value


@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_many_tokens_gradients(bidirectional):
    model = ManyToMany(V, 3, vocab_size=V, embed_dim=2, num_layers=2, bidirectional=bidirectional, seed=1, **F64)
    _check_model(model, lambda: model.loss(model.forward(TOKENS, lengths=LENGTHS)[0], TARGETS, LENGTHS))


def test_many_to_many_regression_gradients_include_inputs():
    model = ManyToMany(1, 3, input_size=2, loss="mse", nonlinearity="relu", seed=2, **F64)
    targets = rng.normal(size=(T, B))
    run = lambda: model.loss(model.forward(REALS, lengths=LENGTHS)[0], targets, LENGTHS)
    _check_model(model, run)
    _, doutputs = run()
    dx = model.backward(doutputs)
    assert_gradient(lambda: run()[0], REALS, dx, "inputs")


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_one_gradients(pooling, bidirectional):
    model = ManyToOne(3, 3, vocab_size=V, embed_dim=2, num_layers=2, bidirectional=bidirectional, pooling=pooling, seed=3, **F64)
    if pooling == "attention":  # a learned query, not the zeros it starts from
        model.params["pool_query"][:] = rng.normal(size=model.params["pool_query"].shape)
    labels = np.array([0, 2, 1])
    _check_model(model, lambda: model.loss(model.forward(TOKENS, LENGTHS), labels))


def test_many_to_one_last_pooling_ignores_padding():
    model = ManyToOne(2, 4, vocab_size=V, bidirectional=True, seed=4, **F64)
    short = TOKENS[:2, 1:2]
    padded = np.concatenate([short, np.zeros((3, 1), int)])
    np.testing.assert_allclose(model.forward(padded, np.array([2])), model.forward(short), rtol=1e-13)


def test_one_to_one_gradients():
    model = OneToOne(4, 3, 5, seed=5, **F64)
    x, labels = rng.normal(size=(B, 4)), np.array([0, 1, 2])
    _check_model(model, lambda: model.loss(model.forward(x), labels))


@pytest.mark.parametrize("kind", ["many_to_many", "many_to_one", "one_to_one"])
def test_input_grad_false_skips_only_the_input_gradient(kind):
    """Tasks on real-valued data pass ``input_grad=False``: no dx, the same weight gradients."""
    if kind == "many_to_many":
        model = ManyToMany(1, 3, input_size=2, loss="mse", num_layers=2, bidirectional=True, seed=6, **F64)
        targets = rng.normal(size=(T, B))
        run = lambda: model.loss(model.forward(REALS, lengths=LENGTHS)[0], targets, LENGTHS)  # noqa: E731
    elif kind == "many_to_one":
        model = ManyToOne(3, 3, input_size=2, pooling="mean", seed=6, **F64)
        run = lambda: model.loss(model.forward(REALS, LENGTHS), np.array([0, 2, 1]))  # noqa: E731
    else:
        model = OneToOne(2, 3, 4, seed=6, **F64)
        run = lambda: model.loss(model.forward(REALS[0]), np.array([0, 2, 1]))  # noqa: E731
    _, doutputs = run()
    model.zero_grad()
    dx = model.backward(doutputs)
    full = {name: grad.copy() for name, _, grad in model.named_parameters()}
    _, doutputs = run()
    model.zero_grad()
    assert dx is not None and model.backward(doutputs, input_grad=False) is None
    for name, _, grad in model.named_parameters():
        np.testing.assert_array_equal(grad, full[name], err_msg=name)


def test_token_models_ignore_input_grad_false():
    """Under an embedding the RNN's dx is what trains the embedding: it is computed anyway."""
    model = ManyToMany(V, 3, vocab_size=V, embed_dim=2, seed=7, **F64)
    _, doutputs = model.loss(model.forward(TOKENS)[0], TARGETS)
    model.zero_grad()
    assert model.backward(doutputs, input_grad=False) is None
    assert np.abs(model.embedding.grads["W"]).sum() > 0


def test_one_to_many_gradients_and_generation():
    model = OneToMany(4, V, 3, embed_dim=2, num_layers=2, seed=6, **F64)
    features = rng.normal(size=(B, 4))
    _check_model(model, lambda: model.loss(model.forward(features, TOKENS, LENGTHS), TARGETS, LENGTHS))
    model.eval()
    greedy = model.generate(features, bos=1, eos=2, max_len=7)
    assert len(greedy) == B and all(len(seq) <= 7 and 2 not in seq for seq in greedy)
    beams = model.generate(features, bos=1, eos=2, max_len=7, method="beam", beam_size=3)
    assert len(beams) == B
    sampled = model.generate(features, bos=1, eos=2, max_len=7, method="sample", rng=np.random.default_rng(0))
    assert sampled == model.generate(features, bos=1, eos=2, max_len=7, method="sample", rng=np.random.default_rng(0))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_seq2seq_gradients(bidirectional):
    model = Seq2Seq(V, V, 3, embed_dim=2, num_layers=2, bidirectional=bidirectional, seed=7, **F64)
    _check_model(model, lambda: model.loss(model.forward(TOKENS, LENGTHS, TOKENS[:4], LENGTHS - 1 + (LENGTHS == 1)),
                                           TARGETS[:4], np.minimum(LENGTHS, 4)))


def test_greedy_takes_the_argmax_until_max_len():
    step = lambda ids, h: (np.array([[-50, -50, -9, 0.5, 0.4]] * len(ids)), h)
    assert generate(step, np.zeros((1, 2, 1)), 1, 2, 3) == [[3, 3, 3], [3, 3, 3]]


def test_sampling_at_a_tiny_temperature_is_greedy_and_bad_settings_are_named():
    """logits / 1e-310 overflow to inf, and inf - inf is NaN: the best logit is subtracted
    first, so the limit of a cooling temperature is the argmax, not an error."""
    step = lambda ids, h: (np.array([[-50, -50, -9, 0.5, 0.4]] * len(ids)), h)
    state = np.zeros((1, 2, 1))
    rng = np.random.default_rng(0)
    assert generate(step, state, 1, 2, 3, method="sample", temperature=1e-310, rng=rng) == [[3, 3, 3], [3, 3, 3]]
    assert generate(step, state, 1, 2, 0) == [[], []]
    for temperature in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature: expected a positive number"):
            generate(step, state, 1, 2, 3, method="sample", temperature=temperature)
    for max_len in (-1, 2.5, "3"):
        with pytest.raises(ValueError, match="max_len: expected an integer >= 0"):
            generate(step, state, 1, 2, max_len)


def test_beam_search_prefers_high_probability_completion():
    # Hand-built distributions: greedy takes "3" (p=.55) then is forced to a poor ending, while
    # "4" (p=.45) ends with certainty: beam search must find [4].
    def step(ids, h):
        history = h[0, :, 0]  # first token chosen so far per beam (-1 = none)
        logits = []
        for token, _first in zip(ids, history):
            if token == 1:  # after bos
                logits.append(np.log([1e-9, 1e-9, 1e-9, 0.55, 0.45]))
            elif token == 3:
                logits.append(np.log([1e-9, 1e-9, 0.3, 0.35, 0.35]))
            elif token == 4:
                logits.append(np.log([1e-9, 1e-9, 1.0 - 3e-9, 1e-9, 1e-9]))
            else:
                logits.append(np.log([1e-9, 1e-9, 0.3, 0.35, 0.35]))
        return np.array(logits), h

    h0 = np.full((1, 1, 1), -1.0)
    assert beam_search(step, h0, bos=1, eos=2, max_len=4, beam_size=3) == [4]
    assert generate(step, h0, 1, 2, 4)[0][0] == 3  # greedy takes the locally best token


def test_model_argument_errors():
    with pytest.raises(ValueError, match=r"give exactly one of vocab_size .* or input_size"):
        ManyToMany(3, 4)
    with pytest.raises(ValueError, match=r"pooling: expected one of 'last', 'mean', 'max', 'attention', got 'sum'"):
        ManyToOne(3, 4, vocab_size=5, pooling="sum")
    with pytest.raises(ValueError, match=r"loss: expected one of 'cross_entropy', 'mse', got 'l1'"):
        ManyToMany(3, 4, vocab_size=5, loss="l1")
    with pytest.raises(ValueError, match=r"method: expected one of 'greedy', 'sample', 'beam', got 'top_k'"):
        OneToMany(2, 5, 3).generate(np.zeros((1, 2)), 1, 2, method="top_k")


def test_attention_pooling_starts_as_the_mean_and_ignores_padding():
    attending = ManyToOne(3, 4, vocab_size=V, bidirectional=True, pooling="attention", seed=9, **F64)
    averaging = ManyToOne(3, 4, vocab_size=V, bidirectional=True, pooling="mean", seed=9, **F64)
    np.testing.assert_allclose(attending.forward(TOKENS, LENGTHS), averaging.forward(TOKENS, LENGTHS), rtol=1e-12)
    attending.params["pool_query"][:] = rng.normal(size=attending.params["pool_query"].shape)
    short = TOKENS[:2, 1:2]
    padded = np.concatenate([short, np.full((3, 1), V - 1)])  # padding of real ids, not zeros
    np.testing.assert_allclose(attending.forward(padded, np.array([2])), attending.forward(short), rtol=1e-12)
