"""Gate blocks in rnnkit's order and in ONNX's: what every converter between them shares.

rnnkit stacks PyTorch's gates (LSTM i, f, g, o; GRU r, z, n); ONNX stacks LSTM i, o, f, c and
GRU z, r, h. The Elman RNN has one block.
"""

from __future__ import annotations

import numpy as np

# Block k of ONNX's stacking is block TO_ONNX[op][k] of rnnkit's, and the other way round.
TO_ONNX = {"RNN": (0,), "LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2)}
FROM_ONNX = {op: tuple(int(k) for k in np.argsort(order)) for op, order in TO_ONNX.items()}


def reorder_gates(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Restack the ``len(order)`` equal blocks of ``array``'s first axis: block ``k`` of the
    result is block ``order[k]`` of ``array``. ``(G * H, ...) -> (G * H, ...)``."""
    blocks = np.split(array, len(order), axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)
