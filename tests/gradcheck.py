"""The one gradient-check helper every test uses: central differences in float64."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(loss: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``loss()`` with respect to ``array``, perturbed in place."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = loss()
        flat[i] = original - eps
        minus = loss()
        flat[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max(max |a|, max |b|)``.

    Scaled by the largest entry rather than entry by entry (cs231n's form), because entries
    far below the finite-difference noise floor, such as tiny softmax gradients, would
    otherwise dominate the error without meaning anything.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)
    return float(np.max(np.abs(a - b)) / scale)


def assert_gradient(
    loss: Callable[[], float], array: np.ndarray, analytic: np.ndarray, name: str, tol: float = 1e-6
) -> None:
    """Assert that ``analytic`` matches central differences of ``loss`` w.r.t. ``array``."""
    assert array.dtype == np.float64, f"{name}: gradient checks run in float64, got {array.dtype}"
    numeric = numerical_gradient(loss, array)
    assert analytic.shape == numeric.shape, f"{name}: shape {analytic.shape} != {numeric.shape}"
    error = relative_error(analytic, numeric)
    assert error < tol, f"{name}: relative error {error:.2e} >= {tol:.0e}"
