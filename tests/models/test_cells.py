"""Every architecture with every cell: shapes, central-difference gradients for the gated cells,
state tuples through decoding, and the state helpers."""

import numpy as np
import pytest

from rnnkit.models import ManyToMany, ManyToOne, OneToMany, OneToOne, Seq2Seq, beam_search, generate
from rnnkit.models.states import batch_size, detach, join_directions, select_batch, split_directions
from tests.gradcheck import assert_gradient

F64 = dict(dtype=np.float64)
CELLS = ("rnn", "lstm", "gru")
GATED = ("lstm", "gru")
T, B, V, H = 4, 3, 6, 3
rng = np.random.default_rng(11)
LENGTHS = np.array([4, 2, 3])
TOKENS = rng.integers(1, V, size=(T, B))
TARGETS = rng.integers(1, V, size=(T, B))
REALS = rng.normal(size=(T, B, 2))
FEATURES = rng.normal(size=(B, 4))
STATES = {"rnn": 1, "lstm": 2, "gru": 1}


def _check_model(model, run, every=3, tol=1e-6):
    """Central differences for every ``every``-th parameter (and every small one), float64."""
    _, doutputs = run()
    model.zero_grad()
    model.backward(doutputs)
    for index, (name, param, grad) in enumerate(model.named_parameters()):
        if index % every == 0 or param.size < 40:
            assert_gradient(lambda: run()[0], param, grad.copy(), name, tol)


def _models(cell):
    """One small float64 model per architecture, with the run giving ``(loss, doutputs)``."""
    m2m = ManyToMany(V, H, vocab_size=V, embed_dim=2, cell=cell, num_layers=2, bidirectional=True, seed=1, **F64)
    m2o = ManyToOne(3, H, input_size=2, cell=cell, bidirectional=True, pooling="last", seed=2, **F64)
    o2o = OneToOne(4, 3, H, cell=cell, seed=3, **F64)
    o2m = OneToMany(4, V, H, embed_dim=2, cell=cell, num_layers=2, seed=4, **F64)
    s2s = Seq2Seq(V, V, H, embed_dim=2, cell=cell, num_layers=2, bidirectional=True, seed=5, **F64)
    labels = np.array([0, 2, 1])
    return {
        "many_to_many": (m2m, lambda: m2m.loss(m2m.forward(TOKENS, lengths=LENGTHS)[0], TARGETS, LENGTHS)),
        "many_to_one": (m2o, lambda: m2o.loss(m2o.forward(REALS, LENGTHS), labels)),
        "one_to_one": (o2o, lambda: o2o.loss(o2o.forward(FEATURES), labels)),
        "one_to_many": (o2m, lambda: o2m.loss(o2m.forward(FEATURES, TOKENS, LENGTHS), TARGETS, LENGTHS)),
        "seq2seq": (s2s, lambda: s2s.loss(s2s.forward(TOKENS, LENGTHS, TOKENS, LENGTHS), TARGETS, LENGTHS)),
    }


@pytest.mark.parametrize("cell", CELLS)
def test_every_model_forward_backward_shapes(cell):
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    for kind, (model, run) in _models(cell).items():
        assert model.cell == cell
        layer = model.decoder.rnn if kind in ("one_to_many", "seq2seq") else model.rnn
        assert layer.params["W_hh_l0"].shape == (gates * H, H), kind
        loss, doutputs = run()
        assert np.isfinite(loss)
        model.zero_grad()
        model.backward(doutputs)
        for name, param, grad in model.named_parameters():
            assert grad.shape == param.shape and np.all(np.isfinite(grad)), f"{kind} {name}"
        assert sum(np.abs(grad).sum() for _, _, grad in model.named_parameters()) > 0, kind


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("kind", ["many_to_many", "many_to_one", "one_to_one", "one_to_many", "seq2seq"])
def test_gated_gradients(kind, cell):
    model, run = _models(cell)[kind]
    # The LSTM encoder's gradients reach it through the bridge and the whole decoder and are
    # small (max |g| ~ 1e-3): the central-difference noise floor at eps=1e-6 is then ~2e-6.
    _check_model(model, run, tol=1e-5 if (kind, cell) == ("seq2seq", "lstm") else 1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_many_to_many_state_is_a_tuple_and_carries(cell):
    """Running two windows with the carried state equals one run over both."""
    model = ManyToMany(V, H, vocab_size=V, embed_dim=2, cell=cell, num_layers=2, seed=6, **F64)
    whole, final = model.forward(TOKENS)
    assert isinstance(final, tuple) and len(final) == STATES[cell]
    assert all(state.shape == (2, B, H) for state in final)
    first, carry = model.forward(TOKENS[:2])
    second, carried_final = model.forward(TOKENS[2:], detach(carry))
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-12, atol=1e-14)
    for a, b in zip(carried_final, final):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_many_to_one_last_pooling_reads_h_not_c():
    model = ManyToOne(2, H, vocab_size=V, cell="lstm", pooling="last", seed=7, **F64)
    out = model.forward(TOKENS, LENGTHS)
    _, (h_n, _) = model.rnn.forward_states(model.embedding.forward(TOKENS), None, LENGTHS)
    np.testing.assert_allclose(out, model.head.forward(h_n[-1]), rtol=1e-13)


@pytest.mark.parametrize("cell", CELLS)
def test_beam_size_one_equals_greedy(cell):
    o2m = OneToMany(4, V, 5, embed_dim=3, cell=cell, num_layers=2, seed=8, **F64)
    s2s = Seq2Seq(V, V, 5, embed_dim=3, cell=cell, num_layers=2, bidirectional=True, seed=9, **F64)
    for model, args in ((o2m, (FEATURES,)), (s2s, (TOKENS, LENGTHS))):
        model.eval()
        greedy = model.generate(*args, bos=1, eos=2, max_len=8)
        assert greedy == model.generate(*args, bos=1, eos=2, max_len=8, method="beam", beam_size=1)
        beams = model.generate(*args, bos=1, eos=2, max_len=8, method="beam", beam_size=3)
        assert len(beams) == B and all(len(seq) <= 8 and 2 not in seq for seq in beams)


def test_beam_search_follows_every_array_of_the_state():
    """The same decoder with its state as one array and as two: beam search must select both
    arrays of the tuple together, or the hypotheses would read another beam's history."""
    weights = np.random.default_rng(3).normal(size=(2, 5))

    def advance(ids, h, history):
        history = 0.7 * history + ids[None, :, None]  # what the hypothesis has emitted so far
        logits = np.sin(3.0 * history[0] * weights[0] + h[0] * weights[1])  # (B, 5)
        logits[:, 2] -= 2.2  # eos: unlikely early, so that beams live a few steps
        return 4.0 * logits, h + 0.1 * history

    def step_pair(ids, state):
        logits, h = advance(ids, *state)
        return logits, (h, 0.7 * state[1] + ids[None, :, None])

    def step_single(ids, state):
        logits, h = advance(ids, state[..., :1], state[..., 1:])
        return logits, np.concatenate([h, 0.7 * state[..., 1:] + ids[None, :, None]], axis=-1)

    found = []
    for beam_size in (2, 3, 4, 5):
        pair = beam_search(step_pair, (np.zeros((1, 1, 1)), np.zeros((1, 1, 1))), 1, 2, 6, beam_size)
        assert pair == beam_search(step_single, np.zeros((1, 1, 2)), 1, 2, 6, beam_size)
        found.append(pair)
    assert max(map(len, found)) > 1  # the searches went some steps deep


def test_state_helpers():
    h, c = np.arange(24.0).reshape(2, 3, 4), -np.arange(24.0).reshape(2, 3, 4)
    picked = select_batch((h, c), [2, 2, 0])
    assert batch_size(picked) == 3
    np.testing.assert_array_equal(picked[1], c[:, [2, 2, 0]])
    copied = detach((h, c))
    assert not np.shares_memory(copied[0], h) and np.array_equal(copied[1], c)
    both = np.arange(2 * 2 * 3 * 4.0).reshape(4, 3, 4)  # 2 layers x 2 directions
    joined = join_directions(both, 2)
    assert joined.shape == (2, 3, 8)
    np.testing.assert_array_equal(joined[1, :, 4:], both[3])
    np.testing.assert_array_equal(split_directions(joined), both)
    assert generate(lambda ids, s: (np.eye(V)[[3] * len(ids)], s), (h[:, :2], c[:, :2]), 1, 2, 2) == [[3, 3]] * 2


def test_cell_errors():
    with pytest.raises(ValueError, match=r"cell: expected one of 'rnn', 'lstm', 'gru', 'mingru', 'minlstm', got 'elman'"):
        ManyToMany(3, 4, vocab_size=5, cell="elman")
    with pytest.raises(ValueError, match=r"cell: expected one of"):
        OneToMany(2, 5, 3, cell="LSTM")
    with pytest.raises(ValueError, match=r"nonlinearity: the GRU cell has its own gate nonlinearities"):
        Seq2Seq(5, 5, 3, cell="gru", nonlinearity="relu")
