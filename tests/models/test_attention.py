"""Seq2Seq with attention: gradients of every parameter (the encoder's outputs now take them),
the decoder state through greedy and beam decoding, padding that never leaks, and the weights."""

import numpy as np
import pytest

from rnnkit.models import Seq2Seq
from rnnkit.models.states import DecoderState, select_batch
from tests.gradcheck import assert_gradient, numerical_gradient

F64 = dict(dtype=np.float64)
S, T, B, V, H = 5, 4, 3, 7, 4
rng = np.random.default_rng(21)
SOURCE_LENGTHS = np.array([5, 2, 3])
LENGTHS = np.array([4, 3, 1])
SOURCE = rng.integers(1, V, size=(S, B))
INPUTS = rng.integers(1, V, size=(T, B))
TARGETS = rng.integers(1, V, size=(T, B))


def _model(attention, cell="gru", bidirectional=True, seed=0):
    return Seq2Seq(V, V, H, embed_dim=3, cell=cell, num_layers=2, bidirectional=bidirectional, attention=attention,
                   seed=seed, **F64)


@pytest.mark.parametrize("attention, cell, bidirectional", [
    ("dot", "rnn", False), ("general", "gru", True), ("additive", "lstm", True), ("general", "lstm", False),
])
def test_seq2seq_attention_gradients(attention, cell, bidirectional):
    model = _model(attention, cell, bidirectional)

    def run():
        return model.loss(model.forward(SOURCE, SOURCE_LENGTHS, INPUTS, LENGTHS), TARGETS, LENGTHS)

    _, dlogits = run()
    model.zero_grad()
    model.backward(dlogits)
    names = [name for name, _, _ in model.named_parameters()]
    assert any(name.startswith("decoder.attention.") for name in names)
    for name, param, grad in model.named_parameters():
        if not (name.startswith(("encoder.", "source_embedding.", "decoder.attention.")) or param.size < 40):
            continue
        if np.abs(grad).max() > 1e-4:
            # 1e-5: the summed loss (~20) puts central differences' rounding near 1e-9 per entry
            assert_gradient(lambda: run()[0], param, grad.copy(), name, tol=1e-5)
        else:  # a gradient this small (additive W_q of a 2-layer LSTM: ~1e-7) is below that
            # rounding as a ratio; compare it in absolute terms (the functional tests check the
            # same arithmetic against torch to 1e-10)
            numeric = numerical_gradient(lambda: run()[0], param)
            assert np.abs(numeric - grad).max() < 1e-8, name


def test_the_encoder_outputs_take_gradients_only_with_attention():
    """Without attention the encoder's last layer output feeds nothing but its final state; with it,
    every valid source step is read, so the first layer's input weights get gradient from every step."""
    plain, attentive = _model("none", seed=3), _model("general", seed=3)
    for model in (plain, attentive):
        model.zero_grad()
        model.backward(model.loss(model.forward(SOURCE, SOURCE_LENGTHS, INPUTS, LENGTHS), TARGETS, LENGTHS)[1])
    name = next(n for n, _, _ in plain.named_parameters() if n.startswith("source_embedding."))
    g_plain = dict((n, g) for n, _, g in plain.named_parameters())[name]
    g_attn = dict((n, g) for n, _, g in attentive.named_parameters())[name]
    assert not np.allclose(g_plain, g_attn)


def test_padding_never_leaks_into_attention():
    model = _model("additive")
    model.eval()
    logits = model.forward(SOURCE, SOURCE_LENGTHS, INPUTS, LENGTHS)
    weights = model.attention_weights()
    assert weights.shape == (B, T, S)
    for b, length in enumerate(SOURCE_LENGTHS):
        assert np.all(weights[b, :, length:] == 0.0)
    garbage = SOURCE.copy()
    for b, length in enumerate(SOURCE_LENGTHS):
        garbage[length:, b] = (SOURCE[length:, b] % (V - 1)) + 1  # other tokens at padding
    np.testing.assert_array_equal(model.forward(garbage, SOURCE_LENGTHS, INPUTS, LENGTHS), logits)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_beam_search_of_width_one_is_greedy_with_attention(cell):
    model = _model("general", cell)
    model.eval()
    greedy = model.generate(SOURCE, SOURCE_LENGTHS, bos=1, eos=2, max_len=6)
    beam = model.generate(SOURCE, SOURCE_LENGTHS, bos=1, eos=2, max_len=6, method="beam", beam_size=1)
    assert greedy == beam
    wide = model.generate(SOURCE, SOURCE_LENGTHS, bos=1, eos=2, max_len=6, method="beam", beam_size=3)
    assert len(wide) == B


def test_generation_step_by_step_matches_teacher_forcing():
    """The decoder state carried step by step (memory and mask beside the recurrent tuple) gives
    the logits of one teacher-forced pass over the same inputs."""
    model = _model("additive", "lstm")
    model.eval()
    logits = model.forward(SOURCE, SOURCE_LENGTHS, INPUTS)
    state = model.encode(SOURCE, SOURCE_LENGTHS)
    assert isinstance(state, DecoderState) and len(state.states) == 2  # (h, c)
    for t in range(T):
        step_logits, state = model.decoder.step(INPUTS[t], state)
        np.testing.assert_allclose(step_logits, logits[t], rtol=1e-10, atol=1e-12)
    picked = select_batch(state, [2, 0])
    assert picked.memory.shape == (S, 2, 2 * H) and picked.mask.shape == (S, 2)
    np.testing.assert_array_equal(picked.mask[:, 0], np.arange(S) < SOURCE_LENGTHS[2])


def test_attention_argument_errors():
    with pytest.raises(ValueError, match="attention: expected one of 'none', 'dot', 'general', 'additive', got 'luong'"):
        _model("luong")
    with pytest.raises(ValueError, match=r"dot attention needs the encoder's outputs \(8: bidirectional\)"):
        _model("dot", bidirectional=True)
