"""Elementwise activations with derivatives expressed through the *output*.

Expressing ``f'`` through ``y = f(a)`` means the backward pass needs only the stored states,
never the pre-activations, which is what lets the recurrent layer keep one ``(T, B, H)`` array
per direction. All functions accept any shape and an optional ``out`` for in-place use.

    tanh:     y = tanh(a),           f'(a) = 1 - y**2
    sigmoid:  y = 1 / (1 + e**-a),   f'(a) = y * (1 - y)
    relu:     y = max(a, 0),         f'(a) = 1[y > 0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rnnkit._checks import check_choice

# The ufunc itself rather than a wrapper: one Python call less per step of a scan.
tanh_forward = np.tanh


def tanh_derivative(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 - y**2`` computed as ``(1 - y) * (1 + y)``, which keeps precision where ``y -> ±1``."""
    out = np.subtract(1.0, y, out=out)
    out *= 1.0 + y
    return out


def sigmoid_forward(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # 0.5 * (1 + tanh(a / 2)) is the logistic function without exp overflow for large |a|.
    out = np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def sigmoid_derivative(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    out = np.subtract(1.0, y, out=out)
    out *= y
    return out


def relu_forward(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(a, 0.0, out=out)


def relu_derivative(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        out = np.empty_like(y)
    # Writing the boolean comparison straight into a float buffer saves a temporary.
    np.greater(y, 0.0, out=out, casting="unsafe")
    return out


class Activation(NamedTuple):
    """A named pair: ``forward(a, out=None)`` and ``derivative(y, out=None)`` from the output."""

    name: str
    forward: Callable[..., np.ndarray]
    derivative: Callable[..., np.ndarray]


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", tanh_forward, tanh_derivative),
    "sigmoid": Activation("sigmoid", sigmoid_forward, sigmoid_derivative),
    "relu": Activation("relu", relu_forward, relu_derivative),
}


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log softmax`` over the last axis, shifted by its maximum so that nothing overflows
    (the class scores of a classifier, a decoder's step, CTC's frames)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def get_activation(name: str) -> Activation:
    """Look up an activation by name; unknown names raise ValueError listing the choices."""
    return ACTIVATIONS[check_choice("nonlinearity", name, tuple(ACTIVATIONS))]


def activation_forward(a: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``y = f(a)`` for any shape. Returns ``(y, cache)``; the cache is ``y`` itself."""
    y = get_activation(name).forward(a)
    return y, y


def activation_backward(dy: np.ndarray, cache: np.ndarray, name: str) -> np.ndarray:
    """``da = dy * f'(a)`` with ``f'`` computed from the cached output ``y``."""
    return dy * get_activation(name).derivative(cache, out=np.empty_like(cache))
