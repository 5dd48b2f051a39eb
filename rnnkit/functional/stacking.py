"""Frame stacking: ``k`` consecutive frames side by side as one step, ``k`` times fewer steps
(Deep Speech 2's strides, Listen-Attend-Spell's pyramid): most of an acoustic model's speed.

``stack_frames_forward(x (T, B, F), lengths, k) -> (y (ceil(T / k), B, k F), lengths')``: step
``t`` of ``y`` holds frames ``k t .. k t + k - 1`` (zeros past ``T``); a sequence of ``n`` frames
keeps ``ceil(n / k)`` steps, the last one zero-padded past its own frames (they were zero
padding already, or past ``T``). ``stack_frames_backward`` undoes the reshape on the gradient.
"""

from __future__ import annotations

import numpy as np


def stack_frames_forward(x: np.ndarray, lengths: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray | None,
                                                                                   tuple[int, ...]]:
    """``(y, lengths', cache)``: ``x`` ``(T, B, F)`` with every ``k`` frames as one step."""
    steps, batch, features = x.shape
    stacked = -(-steps // k)
    padded = np.zeros((stacked * k, batch, features), x.dtype)
    padded[:steps] = x
    y = padded.reshape(stacked, k, batch, features).transpose(0, 2, 1, 3).reshape(stacked, batch, k * features)
    return y, None if lengths is None else -(-np.asarray(lengths) // k), x.shape


def stack_frames_backward(dy: np.ndarray, cache: tuple[int, ...]) -> np.ndarray:
    """The gradient with respect to ``x`` ``(T, B, F)`` from that with respect to ``y``."""
    steps, batch, features = cache
    stacked = dy.shape[0]
    k = dy.shape[2] // features
    dx = dy.reshape(stacked, batch, k, features).transpose(0, 2, 1, 3).reshape(stacked * k, batch, features)
    return dx[:steps]
