"""Work split over threads: slices of a batch, blocks of rows, and weights packed once.

Calls run on ``parallel.c``'s pool, in which the calling thread works through every slice that no
worker has taken, so a call finishes whether or not a worker ever starts (see that file). The
thread count is NumPy's OpenBLAS's (``OPENBLAS_NUM_THREADS``, threadpoolctl): one setting for both.

float32 scans of enough work multiply by the weights with a product of rnnkit's own (``packed.c``:
the weights packed once per scan, not at every step as a BLAS call does), and split the batch into
slices that run their whole scans in parallel; so do the input projections (:func:`product`).
Nothing run on the pool calls BLAS.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import numpy as np

from rnnkit import _workspace as workspace
from rnnkit._native import library

TILE_ROWS = 8  # rows of packed.c's register tile (AVX-512; AVX2's is 4): slices are cut in multiples
ROW_BLOCK = 64  # rows packed.c takes at a time against all of B: threads of product() take whole ones
# OpenBLAS multiplies small float32 matrices in place ("direct sgemm") only on its AVX-512 kernel
# sets; elsewhere (Haswell, Zen: every AVX2-only CPU) it packs B again at every call. Where it has
# direct sgemm, below ~4M multiply-adds per call (an Elman layer at B=16, H=32, T=64 makes 1M)
# packing and the Python around it cost more than its products. On its Haswell kernels the packed
# product wins from far smaller calls (benchmarks/RESULTS.md, the sixth session).
MIN_PACKED_WORK = 1 << 22 if library.direct_sgemm() else 1 << 18
MIN_SLICE_FLOPS = 1 << 23  # a thread's share below ~50 us of products costs more to hand over than it saves

Arguments = Callable[[int, int, int], list]  # (slice index, start, stop) -> the kernel's arguments
Call = tuple[Callable[..., None], Arguments, int, tuple[int, int]]

_pack_scope = threading.local()  # .packs: id(B) -> (B, packed) inside packing(), per thread
_together = threading.local()  # .scans, .queue (of calls): inside together(), per thread


def slices(batch: int, flops: int, packed: np.ndarray | None) -> list[tuple[int, int]]:
    """The batch cut into contiguous slices, one per thread: a scan's rows are independent
    sequences, so each slice runs its whole scan alone, with no step waiting for another thread.
    One slice unless the product is packed.c's (BLAS threads itself) and each share is worth it."""
    if packed is None or flops < 2 * MIN_SLICE_FLOPS:
        return [(0, batch)]
    together_scans = getattr(_together, "scans", 1)  # scans sharing the threads (see together())
    threads = max(1, library.blas_threads() // together_scans)
    return cut(batch, TILE_ROWS, min(threads, flops // MIN_SLICE_FLOPS))


def cut(size: int, unit: int, threads: int) -> list[tuple[int, int]]:
    """``[0, size)`` as ``(start, stop)`` slices for up to ``threads`` threads, each a whole number of
    ``unit`` items (the last may end short), as even as whole units allow."""
    units = -(-size // unit)
    threads = max(1, min(threads, units))
    bounds = [min(size, units * k // threads * unit) for k in range(threads + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def accumulators(arrays: tuple[np.ndarray | None, ...], slices: list) -> list[tuple[np.ndarray | None, ...]]:
    """Per slice, the arrays its kernel adds into (the bias gradients): the caller's for the first,
    zeroed twins for the others, so that no two threads add into one array; :func:`add_up` sums
    them into the caller's after, in slice order (the same sum at every run)."""
    return [arrays] + [tuple(None if a is None else np.zeros_like(a) for a in arrays) for _ in slices[1:]]


def add_up(accumulators: list[tuple[np.ndarray | None, ...]]) -> None:
    for parts in accumulators[1:]:
        for total, part in zip(accumulators[0], parts):
            if total is not None:
                total += part


@contextlib.contextmanager
def together(scans: int) -> Iterator[None]:
    """The float32 forward scans called within this block (``scans`` of them: a bidirectional
    layer's directions) run when it ends, all at once, each on its share of the threads.

    A layer's directions are independent scans. One after the other, each one's batch was cut
    into a slice per thread: at B = 32, 16 rows each, against which every step streams all of
    ``W_hh``. Side by side, each thread runs one direction with all 32 rows. The caller must
    not read what the scans write before the block ends; scans that call BLAS (float64, small
    products) are not held back."""
    if getattr(_together, "queue", None) is not None:  # nested: the outer block runs them
        yield
        return
    _together.scans, _together.queue = max(1, scans), []
    try:
        yield
        queue = _together.queue
    finally:
        _together.scans, _together.queue = 1, None
    for name in dict.fromkeys(call[0].__name__ for call in queue):  # ctypes functions are unhashable
        run_calls([call for call in queue if call[0].__name__ == name])


def run_slices(kernel: Callable[..., None], arguments: Arguments, slices: list[tuple[int, int]],
               deferrable: bool = False) -> None:
    """``kernel(*arguments(index, start, stop))`` for every slice: on this thread when there is
    one, else on the pool, one slice each; inside :func:`together`, when ``deferrable`` (a packed
    float32 scan: nothing in it calls BLAS), when that block ends. The arrays behind the arguments
    must outlive the call: the callers keep them, and a deferred call keeps ``arguments``, whose
    closure holds them."""
    calls = [(kernel, arguments, index, bounds) for index, bounds in enumerate(slices)]
    queue = getattr(_together, "queue", None)
    if deferrable and queue is not None:
        queue.extend(calls)
    else:
        run_calls(calls)


def run_calls(calls: list[Call]) -> None:
    """Each ``kernel(*arguments(index, start, stop))`` of ``calls`` (one kernel): on this thread when
    there is one, else on the pool (parallel.c), whose threads take them from a shared counter."""
    if len(calls) == 1:
        kernel, arguments, index, bounds = calls[0]
        kernel(*arguments(index, *bounds))
        return
    kind = library.pool_kinds[calls[0][0].__name__]
    table = np.array([[0 if value is None else int(value) for value in arguments(index, *bounds)]
                      for _, arguments, index, bounds in calls], dtype=np.int64)
    library.loaded().rnnkit_parallel(kind, len(calls), table.ctypes.data, min(len(calls), library.blas_threads()))


@contextlib.contextmanager
def packing() -> Iterator[None]:
    """Within this block each weight matrix is packed once, however many scan calls multiply by it
    (BPTT calls its loop once per block of steps); the caller must not change them meanwhile. Per
    thread: another thread's backward keeps its own."""
    outer = getattr(_pack_scope, "packs", None)
    _pack_scope.packs = {} if outer is None else outer
    try:
        yield
    finally:
        _pack_scope.packs = outer


def packed(B: np.ndarray, rows: int) -> np.ndarray | None:
    """``B`` ``(K, N)`` in packed.c's panels, 64-byte aligned, for products of ``rows`` rows in all,
    or None where the caller calls BLAS instead: float64, no kernel for this CPU, or too little
    work to pay for packing and the threads' hand-over. ``B`` is C-contiguous, or the transposed
    view ``W.T`` of a C-contiguous ``W`` (read as such: no copy of ``W^T``)."""
    scope = getattr(_pack_scope, "packs", None)
    if (scope is None and rows * B.size < MIN_PACKED_WORK) or B.dtype != np.float32 or B.ndim != 2 \
            or not library.packed_width():
        return None
    # Keyed by the memory B reads, not by the object: each call's W_hh.T is a new view of the same
    # weights (its owner's id, and where in it B starts). The scope keeps B, and so its owner,
    # alive: no other array can take that memory meanwhile. Once packed, a call of few rows (a
    # short segment between resets) uses it too.
    key = None
    if scope is not None:
        owner = B if B.base is None else B.base
        key = (id(owner), B.shape, B.strides)
        if key in scope and scope[key][2] == B.ctypes.data:
            return scope[key][1]
    if rows * B.size < MIN_PACKED_WORK:
        return None
    if B.flags.c_contiguous:
        transposed = 0
    elif B.T.flags.c_contiguous:
        transposed = 1
    else:
        return None
    lib = library.loaded()
    K, N = B.shape
    size = lib.rnnkit_packed_columns(N) * K
    storage = workspace.empty((size + 16,), np.float32)  # W-sized, at every call: not freshly mapped
    start = (-storage.ctypes.data // 4) % 16
    result = storage[start : start + size]
    # Blocks of rows of B on the threads from 1M values (W_hh^T of an LSTM at H = 512): packing
    # is bound by memory, and an idle worker would otherwise wait.
    blocks = -(-K // lib.rnnkit_pack_depth())
    threads = library.blas_threads() if B.size >= 1 << 20 else 1
    data, ldb = B.ctypes.data, K if transposed else N
    run_slices(lib.rnnkit_pack_blocks_f32,
               lambda index, first, end: [data, ldb, transposed, K, N, result.ctypes.data, first, end],
               cut(blocks, 1, threads))
    if scope is not None:
        scope[key] = (B, result, data)
    return result


def product(a: np.ndarray, B: np.ndarray, out: np.ndarray, accumulate: bool = False) -> bool:
    """``out = a @ B`` (``+=`` when accumulate) by the packed product, on threads over blocks of
    rows: the input projection of all steps of a layer, BPTT's ``dx``. a ``(M, K)`` and out
    ``(M, N)`` float32 with contiguous rows, B ``(K, N)`` C-contiguous or the view ``W.T`` of a
    C-contiguous ``W``. Returns False, having done nothing, where the packed product can't take
    these arrays (the caller then calls NumPy); inside :func:`packing`, B is packed once."""
    if a.shape[0] * B.size < MIN_PACKED_WORK:  # first: the common small case returns at once
        return False
    if not (a.ndim == B.ndim == out.ndim == 2 and a.dtype == B.dtype == out.dtype == np.float32 and 0 not in a.shape
            and a.shape[1] == B.shape[0] and out.shape == (a.shape[0], B.shape[1]) and out.shape[1] > 0
            and rows_fit(a, a.shape, a.dtype) and rows_fit(out, out.shape, out.dtype)):
        return False
    weights = packed(B, a.shape[0])
    if weights is None:
        return False
    (M, K), N = a.shape, B.shape[1]
    lda, ldc = a.strides[0] // 4, out.strides[0] // 4
    threads = min(library.blas_threads(), 2 * M * N * K // MIN_SLICE_FLOPS)

    def arguments(index: int, start: int, stop: int) -> list:
        return [stop - start, N, K, a.ctypes.data + start * lda * 4, lda, weights.ctypes.data,
                out.ctypes.data + start * ldc * 4, ldc, int(accumulate)]

    run_slices(library.loaded().rnnkit_packed_product_f32, arguments, cut(M, ROW_BLOCK, threads))
    return True


def rows_fit(a: np.ndarray, shape: tuple[int, int], dtype: np.dtype) -> bool:
    """A ``(B, W)`` view with contiguous rows (any row stride of whole elements)."""
    size = dtype.itemsize
    return (a.dtype == dtype and a.shape == shape and a.strides[1] == size and a.strides[0] % size == 0
            and a.strides[0] >= shape[1] * size)


def pool_workers() -> int:
    """Threads the pool has started so far (none until a call first wants one)."""
    return library.lib.rnnkit_pool_workers() if library.lib is not None else 0


__all__ = ["accumulators", "add_up", "cut", "packed", "packing", "pool_workers", "product", "run_calls",
           "run_slices", "rows_fit", "slices", "together"]
