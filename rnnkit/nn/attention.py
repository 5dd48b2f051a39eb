"""Luong-style attention for a decoder: its outputs read the encoder's, and the read is mixed
back in, ``h~_t = tanh(W_c [c_t; h_t] + b_c)``, before the output layer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnkit._checks import check_choice, check_float_dtype, check_positive_int
from rnnkit.functional.activations import tanh_derivative
from rnnkit.functional.attention import SCORES, attention_backward, attention_forward
from rnnkit.nn.linear import Linear
from rnnkit.nn.module import Module, resolve_rng, uniform_init


class Attention(Module):
    """``forward(query (T, B, H), memory (S, B, M), mask (S, B)) -> (attended (T, B, H), weights (B, T, S))``.

    ``kind``: ``"dot"`` (``M == H``), ``"general"`` (``W (H, M)``) or ``"additive"``
    (``W_q (A, H)``, ``W_m (A, M)``, ``v (A,)``, ``A = attention_size``, default ``H``); see
    ``rnnkit.functional.attention``. ``combine`` is ``W_c``. ``backward(dattended)`` returns
    ``(dquery, dmemory)`` and accumulates the parameters' gradients. ``weights`` of the last
    forward stay readable as ``last_weights`` (for pictures).
    """

    def __init__(self, query_size: int, memory_size: int, kind: str = "general", attention_size: int | None = None,
                 dtype: type | np.dtype = np.float32, seed: int | np.random.Generator | None = None) -> None:
        super().__init__()
        check_choice("attention", kind, SCORES)
        self.kind = kind
        self.query_size = check_positive_int("query_size", query_size)
        self.memory_size = check_positive_int("memory_size", memory_size)
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs queries and memory of one size, got {query_size} and {memory_size}; "
                             f"use 'general' or 'additive'")
        self.dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        if kind == "general":
            self.add_parameter("W", uniform_init(rng, (query_size, memory_size), 1.0 / math.sqrt(memory_size), self.dtype))
        elif kind == "additive":
            size = check_positive_int("attention_size", attention_size or query_size)
            self.add_parameter("W_q", uniform_init(rng, (size, query_size), 1.0 / math.sqrt(query_size), self.dtype))
            self.add_parameter("W_m", uniform_init(rng, (size, memory_size), 1.0 / math.sqrt(memory_size), self.dtype))
            self.add_parameter("v", uniform_init(rng, (size,), 1.0 / math.sqrt(size), self.dtype))
        self.combine = Linear(memory_size + query_size, query_size, dtype=self.dtype, seed=rng)
        self.last_weights: np.ndarray | None = None
        self._cache: Any = None  # what backward needs, from the last forward

    def extra_repr(self) -> str:
        return f"{self.kind}, query_size={self.query_size}, memory_size={self.memory_size}"

    def forward(self, query: np.ndarray, memory: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if query.ndim != 3 or query.shape[-1] != self.query_size:
            raise ValueError(f"query: expected (T, B, {self.query_size}), got shape {query.shape}")
        if memory.ndim != 3 or memory.shape[-1] != self.memory_size or memory.shape[1] != query.shape[1]:
            raise ValueError(f"memory: expected (S, {query.shape[1]}, {self.memory_size}), got shape {memory.shape}")
        if mask.shape != memory.shape[:2]:
            raise ValueError(f"mask: expected shape {memory.shape[:2]} (S, B), got {mask.shape}")
        params = {name: self.params[name] for name in self.params}
        context, weights, attention_cache = attention_forward(self.kind, query, memory, mask, params)
        attended = np.tanh(self.combine.forward(np.concatenate([context, query], axis=-1)))
        self._cache = (attention_cache, attended)
        self.last_weights = weights
        return attended, weights

    def backward(self, dattended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        attention_cache, attended = self._require_cache(self._cache)
        djoined = self.combine.backward(dattended * tanh_derivative(attended))
        dcontext, dquery_direct = djoined[..., : self.memory_size], djoined[..., self.memory_size:]
        dquery, dmemory, grads = attention_backward(dcontext, attention_cache)
        for name, grad in grads.items():
            self.accumulate(name, grad)
        self._cache = None
        return dquery + dquery_direct, dmemory
