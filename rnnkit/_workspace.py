"""Large arrays of the recurrent layers, reused between calls instead of freshly mapped.

A layer's forward and backward allocate arrays of tens of MiB (the gate buffer of all steps, the
states, BPTT's blocks). glibc's ``malloc`` maps blocks above its threshold (32 MiB at most) from
the kernel at every call and unmaps them at ``free``, and blocks below it are often returned to
the kernel when they sit at the top of the heap, so each call touches fresh pages: one page fault
per 4 KiB, a few microseconds each in a virtual machine. An LSTM forward at B=32, T=100, H=256,
2 bidirectional layers took 6,700 faults per call, and ran at 84 ms without them against 110-195
ms with them (``benchmarks/RESULTS.md``).

:func:`empty` hands out a view of a block kept here, when one is big enough and nothing else
refers to it: a NumPy view keeps its memory's owner alive (views of views point at the owner
too), so a block whose only references are this module's is free, whatever the caller did with
the arrays it was handed. Blocks are kept up to a total of :data:`MAX_KEPT_BYTES`, least recently
used dropped first; below :data:`MIN_BYTES` NumPy's own allocation is as fast.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict

import numpy as np

MIN_BYTES = 1 << 20
MAX_KEPT_BYTES = 1 << 30
_SLACK = 1.5  # a block up to this much bigger than asked for is handed out (sequence lengths vary)

_blocks: OrderedDict[int, np.ndarray] = OrderedDict()  # id -> block (uint8), least recently used first
_lock = threading.Lock()
_kept_bytes = 0
# References to a free block while _take looks at it: _blocks's, the loop's name, getrefcount's argument.
_FREE_REFERENCES = 3


def _take(nbytes: int) -> np.ndarray | None:
    """The smallest free block of at least ``nbytes`` (and at most _SLACK times that), marked
    most recently used; None if there is none."""
    best = None
    for block in _blocks.values():
        if nbytes <= block.nbytes <= nbytes * _SLACK and (best is None or block.nbytes < best.nbytes):
            if sys.getrefcount(block) == _FREE_REFERENCES:
                best = block
    if best is not None:
        _blocks.move_to_end(id(best))
    return best


def _keep(block: np.ndarray) -> bool:
    """Keep ``block``, dropping free blocks least recently used first to stay within the limit;
    False (nothing kept) if it does not fit."""
    global _kept_bytes
    for key in list(_blocks):
        if _kept_bytes + block.nbytes <= MAX_KEPT_BYTES:
            break
        old = _blocks[key]
        if sys.getrefcount(old) == _FREE_REFERENCES:
            del _blocks[key]
            _kept_bytes -= old.nbytes
        del old
    if _kept_bytes + block.nbytes > MAX_KEPT_BYTES:
        return False
    _blocks[id(block)] = block
    _kept_bytes += block.nbytes
    return True


def empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` with undefined contents, as ``np.empty``;
    from :data:`MIN_BYTES` on, a view of a block reused between calls."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    with _lock:
        block = _take(nbytes)
        if block is None:
            block = np.empty(nbytes, np.uint8)
            if not _keep(block):
                return block.view(dtype).reshape(shape)
        return block[:nbytes].view(dtype).reshape(shape)


def empty_like(array: np.ndarray) -> np.ndarray:
    """:func:`empty` with ``array``'s shape and dtype (always C-contiguous)."""
    return empty(array.shape, array.dtype)


def release() -> int:
    """Drop every kept block nothing else refers to (their memory goes back to the allocator);
    returns the bytes still kept."""
    global _kept_bytes
    with _lock:
        for key in list(_blocks):
            block = _blocks[key]
            if sys.getrefcount(block) == _FREE_REFERENCES:
                del _blocks[key]
                _kept_bytes -= block.nbytes
            del block
        return _kept_bytes
