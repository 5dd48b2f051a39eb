"""Attention, every forward/backward pair: central differences in float64, torch autograd on the
same computation, and padding that gets exactly zero weight and zero gradient."""

import numpy as np
import pytest

from rnnkit.functional.attention import (
    attend,
    attend_backward,
    attention_backward,
    attention_forward,
    masked_softmax,
    masked_softmax_backward,
)
from rnnkit.nn.attention import Attention
from tests.gradcheck import assert_gradient

T, B, S, H, M, A = 3, 4, 5, 6, 6, 7
LENGTHS = np.array([5, 2, 4, 1])  # every source length, 1 included


def _mask(lengths=LENGTHS, steps=S):
    return np.arange(steps)[:, None] < lengths[None, :]  # (S, B)


def _params(kind, rng, memory_size=M):
    if kind == "general":
        return {"W": rng.normal(size=(H, memory_size))}
    if kind == "additive":
        return {"W_q": rng.normal(size=(A, H)) * 0.5, "W_m": rng.normal(size=(A, memory_size)) * 0.5,
                "v": rng.normal(size=A)}
    return {}


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(T, B, H)), rng.normal(size=(S, B, M)), rng.normal(size=(T, B, M))


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_attention_gradients_match_central_differences(kind):
    rng, query, memory, upstream = _inputs()
    params = _params(kind, rng)
    mask = _mask()

    def loss():
        context, _, _ = attention_forward(kind, query, memory, mask, params)
        return float(np.sum(context * upstream))

    _, _, cache = attention_forward(kind, query, memory, mask, params)
    dquery, dmemory, grads = attention_backward(upstream, cache)
    assert_gradient(loss, query, dquery, "query")
    assert_gradient(loss, memory, dmemory, "memory")
    assert set(grads) == set(params)
    for name, value in params.items():
        assert_gradient(loss, value, grads[name], name)


def test_softmax_and_attend_pairs_match_central_differences():
    rng = np.random.default_rng(1)
    scores, memory, mask = rng.normal(size=(B, T, S)), rng.normal(size=(S, B, M)), _mask()
    dweights_up, dcontext_up = rng.normal(size=(B, T, S)), rng.normal(size=(T, B, M))
    weights = masked_softmax(scores, mask)
    assert_gradient(lambda: float(np.sum(masked_softmax(scores, mask) * dweights_up)), scores,
                    masked_softmax_backward(dweights_up, weights), "scores")
    dweights, dmemory = attend_backward(dcontext_up, weights, memory)
    assert_gradient(lambda: float(np.sum(attend(weights, memory) * dcontext_up)), weights, dweights, "weights")
    assert_gradient(lambda: float(np.sum(attend(weights, memory) * dcontext_up)), memory, dmemory, "memory")


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_padding_gets_zero_weight_and_zero_gradient(kind):
    rng, query, memory, upstream = _inputs(2)
    mask = _mask()
    memory[~mask] = 1e6  # garbage at padding must change nothing
    _, weights, cache = attention_forward(kind, query, memory, mask, _params(kind, rng))
    padded = ~mask.T[:, None, :].repeat(T, axis=1)  # (B, T, S)
    assert np.all(weights[padded] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    _, dmemory, _ = attention_backward(upstream, cache)
    assert np.all(dmemory[~mask] == 0.0)
    # and the valid part equals attention over the unpadded sequence alone
    b = 1
    valid = slice(0, LENGTHS[b])
    params = _params(kind, np.random.default_rng(5))
    alone, alone_weights, _ = attention_forward(kind, query[:, b:b + 1], memory[valid, b:b + 1],
                                                mask[valid, b:b + 1], params)
    full, full_weights, _ = attention_forward(kind, query, memory, mask, params)
    np.testing.assert_allclose(full[:, b:b + 1], alone, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(full_weights[b, :, valid], alone_weights[0], rtol=1e-12, atol=1e-15)


def _torch_attention(torch, kind, query, memory, mask, params):
    q, m = query.permute(1, 0, 2), memory.permute(1, 0, 2)  # (B, T, H), (B, S, M)
    if kind == "dot":
        scores = q @ m.transpose(1, 2)
    elif kind == "general":
        scores = q @ (m @ params["W"].T).transpose(1, 2)
    else:
        z = torch.tanh((q @ params["W_q"].T)[:, :, None, :] + (m @ params["W_m"].T)[:, None, :, :])
        scores = z @ params["v"]
    scores = scores.masked_fill(~mask.T[:, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights @ m).permute(1, 0, 2), weights


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_attention_matches_torch_autograd(kind):
    torch = pytest.importorskip("torch")
    rng, query, memory, upstream = _inputs(3)
    params = _params(kind, rng)
    mask = _mask()
    context, weights, cache = attention_forward(kind, query, memory, mask, params)
    dquery, dmemory, grads = attention_backward(upstream, cache)

    tq, tm = torch.tensor(query, requires_grad=True), torch.tensor(memory, requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    t_context, t_weights = _torch_attention(torch, kind, tq, tm, torch.tensor(mask), tp)
    (t_context * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(context, t_context.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights, t_weights.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dquery, tq.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dmemory, tm.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], tp[name].grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_attention_module_gradients(kind):
    layer = Attention(H, M, kind=kind, attention_size=A, dtype=np.float64, seed=0)
    rng, query, memory, upstream = _inputs(4)
    upstream = rng.normal(size=(T, B, H))
    mask = _mask()

    def loss():
        attended, _ = layer.forward(query, memory, mask)
        return float(np.sum(attended * upstream))

    layer.zero_grad()
    layer.forward(query, memory, mask)
    dquery, dmemory = layer.backward(upstream)
    assert_gradient(loss, query, dquery, "query")
    assert_gradient(loss, memory, dmemory, "memory")
    for name, param, grad in layer.named_parameters():
        assert_gradient(loss, param, grad.copy(), name)


def test_attention_module_errors_name_the_problem():
    with pytest.raises(ValueError, match="dot attention needs queries and memory of one size, got 4 and 8"):
        Attention(4, 8, kind="dot")
    with pytest.raises(ValueError, match="attention: expected one of"):
        Attention(4, 4, kind="multiplicative")
    layer = Attention(4, 8, kind="general")
    with pytest.raises(ValueError, match=r"memory: expected \(S, 2, 8\)"):
        layer.forward(np.zeros((3, 2, 4)), np.zeros((5, 2, 4)), np.ones((5, 2), bool))
