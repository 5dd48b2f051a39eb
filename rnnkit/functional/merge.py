"""How a bidirectional layer's two directions become one output, other than side by side.

``merge_forward(forward_states, reverse_states, mode)`` with ``mode`` ``"sum"``, ``"ave"`` or
``"mul"`` (Keras' ``merge_mode``; ``"concat"`` needs no function: the layer's output already holds
the directions side by side), each ``(T, B, H)``; ``merge_backward`` splits the output's gradient
into each direction's.
"""

from __future__ import annotations

import numpy as np

MERGE_MODES = ("concat", "sum", "mul", "ave")


def merge_forward(forward_states: np.ndarray, reverse_states: np.ndarray, mode: str) -> np.ndarray:
    """The merged ``(T, B, H)`` output of the two directions' ``(T, B, H)`` states."""
    if mode == "sum":
        return forward_states + reverse_states
    if mode == "ave":
        return 0.5 * (forward_states + reverse_states)
    if mode == "mul":
        return forward_states * reverse_states
    raise ValueError(f"merge_mode: expected sum, ave or mul here, got {mode!r}")


def merge_backward(grad: np.ndarray, forward_states: np.ndarray, reverse_states: np.ndarray,
                   mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Each direction's states' gradient from the merged output's ``grad`` ``(T, B, H)``."""
    if mode == "sum":
        return grad, grad
    if mode == "ave":
        half = 0.5 * grad
        return half, half
    if mode == "mul":
        return grad * reverse_states, grad * forward_states
    raise ValueError(f"merge_mode: expected sum, ave or mul here, got {mode!r}")
