"""Dropout as a module: active in training mode only."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.functional.dropout import dropout_backward, dropout_forward
from rnnkit.nn.module import Module, resolve_rng

_INACTIVE = object()  # distinguishes "forward ran without dropping" from "forward never ran"


class Dropout(Module):
    """Inverted dropout with probability ``p``; the identity in eval mode. Masks come from
    ``seed`` (an int or ``np.random.Generator``), so runs are reproducible."""

    def __init__(self, p: float = 0.5, seed: int | np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"p: expected a dropout probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = resolve_rng(seed)
        self._cache: Any = None  # what backward needs, from the last forward

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, mask = dropout_forward(np.asarray(x), self.p, self.rng, self.training)
        self._cache = _INACTIVE if mask is None else mask
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        mask = self._require_cache(self._cache)
        self._cache = None
        return dropout_backward(np.asarray(dy), None if mask is _INACTIVE else mask)
