"""Affine layer applied at every position: ``y = x W^T + b``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnkit._checks import as_float_array, check_float_dtype, check_positive_int
from rnnkit.functional.linear import linear_backward, linear_forward
from rnnkit.nn.module import Module, resolve_rng, uniform_init


class Linear(Module):
    """``y = x W^T + b`` over the last axis; ``x (..., in_features) -> y (..., out_features)``.

    Used as the output layer ``y_t = W_hy h_t + b_y`` at every time step at once.

    Attributes: ``W (out_features, in_features)``, ``b (out_features,)``, both drawn from
    ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` as in PyTorch.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        bound = 1.0 / math.sqrt(in_features)
        self.add_parameter("W", uniform_init(rng, (out_features, in_features), bound, self.dtype))
        if bias:
            self.add_parameter("b", uniform_init(rng, (out_features,), bound, self.dtype))
        self._cache: Any = None  # what backward needs, from the last forward

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={'b' in self.params}, dtype={self.dtype.name}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array("x", x, self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected {self.in_features} features on the last axis, got shape {x.shape}")
        y, self._cache = linear_forward(x, self.params["W"], self.params.get("b"))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self._require_cache(self._cache)
        dy = np.asarray(dy, dtype=self.dtype)
        if dy.shape != x.shape[:-1] + (self.out_features,):
            raise ValueError(f"dy: expected shape {x.shape[:-1] + (self.out_features,)}, got {dy.shape}")
        dx, dW, db = linear_backward(dy, x, self.params["W"])
        self.accumulate("W", dW)
        if "b" in self.params:
            self.accumulate("b", db)
        self._cache = None
        return dx
