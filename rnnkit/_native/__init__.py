"""Compiled per-step loops of the recurrence (``scan.c``, ``gated.c``), with NumPy's own BLAS.

The C library is built at install time when a C compiler is there (``setup.py``, optional) and
loaded with ctypes; it is handed the matrix-product functions of the OpenBLAS that NumPy's wheels
bundle, so it links nothing and the process keeps one BLAS. Where any of that is missing (no
compiler, a NumPy built on another BLAS, ``RNNKIT_NATIVE=0`` in the environment), :func:`available`
is False and ``rnnkit.functional.recurrent`` runs its NumPy loops, which compute the same thing
and are what the compiled ones are tested against (``tests/_native``).

What it buys, measured by ``benchmarks/bench_rnn.py`` (README, "Speed"): the ~1.5 us of NumPy
calls per step, which is most of a step at small sizes, and one fused elementwise pass per step
instead of two or three (the bias, and in BPTT the bias gradient and the read of ``dout``, ride
along). Two helpers of the same library: :func:`transposed` (the layer's ``W^T`` copies) and
:func:`add_product` (weight gradients accumulated by BLAS itself, beta = 1, no temporary).

float32 scans of 4M multiply-adds and more multiply by the weights with a product of rnnkit's own
(``packed.c``: the weights packed once per scan, not at every step as a BLAS call does), and split
the batch into slices that run their whole scans in parallel on OpenBLAS's own threads
(``parallel.c``); so do the input projections (:func:`product`). ``RNNKIT_PACKED=0`` turns that
off (every step on BLAS, as float64 always is); ``RNNKIT_PACKED=avx2`` runs the AVX2 kernel on an
AVX-512 CPU too (what an AVX2-only CPU runs: ``benchmarks/bench_rnn.py --as-avx2``).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.machinery
import os
import threading
from typing import Callable, Iterator

import numpy as np

from rnnkit import _workspace as workspace
from rnnkit.cli.openblas import AVX512_CORES  # NumPy-free: the command line reads it before NumPy loads

__all__ = ["add_product", "available", "disabled", "gru_scan_backward", "gru_scan_forward", "lstm_scan_backward",
           "lstm_scan_forward", "openblas_core", "packed_kernel", "packed_width", "packing", "product", "scan_forward",
           "scan_backward", "transposed", "why_not"]

_ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2}

_BLAS_SYMBOLS = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_")
_library = None  # the loaded library, or None
_kernels: dict[tuple[str, np.dtype], ctypes._CFuncPtr] = {}  # ("forward" | "backward", dtype) -> function
_gemm: dict[np.dtype, tuple[ctypes._CFuncPtr, type]] = {}  # dtype -> (cblas_?gemm, its scalar type)
_transposes: dict[np.dtype, ctypes._CFuncPtr] = {}
_why_not = "not loaded yet"
_enabled = True
# RNNKIT_PACKED: the CPU's best packed kernel ("1", the default), none ("0"), or AVX2's (the
# argument of rnnkit_packed_width: -1 best, 0 none, 1 AVX2).
_PACKED_CHOICES = {"1": -1, "": -1, "0": None, "avx2": 1}
_packed_width = 0  # columns per panel of packed.c's kernel on this CPU; 0: none (the scans call BLAS)
_threaded = False  # whether slices of a scan can run on OpenBLAS's threads (parallel.c)
_blas_threads: Callable[[], int] = lambda: 1  # noqa: E731


def _numpy_openblas() -> ctypes.CDLL | None:
    """NumPy's bundled OpenBLAS with the ILP64 names of NumPy >= 2's wheels, if that is its BLAS."""
    numpy_dir = os.path.dirname(np.__file__)
    patterns = [os.path.join(numpy_dir, os.pardir, "numpy.libs", "libscipy_openblas64_*"),
                os.path.join(numpy_dir, ".dylibs", "libscipy_openblas64_*")]
    for path in sorted(p for pattern in patterns for p in glob.glob(pattern)):
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: the same copy, not a second one
        except OSError:
            continue
        if all(hasattr(library, name) for name in _BLAS_SYMBOLS):
            return library
    return None


# Argument codes of the gated cells' kernels (gated.c): p pointer, s int64, i int. Each (T, B, W)
# array travels as "pss" (data, time stride, row stride), a (B, W) one as "ps" or "p" (contiguous).
_GATED_SIGNATURES = {
    "lstm_forward": "pss" * 3 + "pppppp" + "ssss",
    "lstm_backward": "pss" * 5 + "ps" + "ppppp" + "sss" + "i",
    "gru_forward": "pss" * 3 + "ppppppp" + "ssss",
    "gru_backward": "pss" * 6 + "ps" + "ppppp" + "sss" + "i",
}


def _load() -> None:
    global _library, _why_not, _packed_width, _blas_threads, _threaded
    if os.environ.get("RNNKIT_NATIVE", "1") == "0":
        _why_not = "RNNKIT_NATIVE=0 is set"
        return
    here = os.path.dirname(__file__)
    paths = [os.path.join(here, "_scan" + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    path = next((p for p in paths if os.path.exists(p)), None)
    if path is None:
        _why_not = "the C kernels were not built at install time (no C compiler?)"
        return
    blas = _numpy_openblas()
    if blas is None:
        _why_not = "NumPy's BLAS is not its bundled OpenBLAS (ILP64, NumPy >= 2)"
        return
    library = ctypes.CDLL(path)
    address = lambda name: ctypes.cast(getattr(blas, name), ctypes.c_void_p)  # noqa: E731
    library.rnnkit_init(address("scipy_cblas_sgemm64_"), address("scipy_cblas_dgemm64_"))
    pointer, size, flag = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    arguments = {"forward": [pointer, size, size, pointer, pointer, pointer, pointer, pointer, size, size, size, size,
                             flag],
                 "backward": [pointer, size, size, pointer, size, size, pointer, size, size, pointer, pointer, pointer,
                              pointer, size, size, size, flag, flag]}
    arguments |= {kind: [{"p": pointer, "s": size, "i": flag}[code] for code in signature]
                  for kind, signature in _GATED_SIGNATURES.items()}
    for suffix, dtype in (("f32", np.dtype(np.float32)), ("f64", np.dtype(np.float64))):
        for kind, argtypes in arguments.items():
            kernel = getattr(library, f"rnnkit_{kind}_{suffix}" if kind in _GATED_SIGNATURES else f"rnnkit_scan_{kind}_{suffix}")
            kernel.argtypes, kernel.restype = argtypes, None
            _kernels[kind, dtype] = kernel
        transpose = getattr(library, f"rnnkit_transpose_{suffix}")
        transpose.argtypes, transpose.restype = [pointer, size, pointer, size, size, size], None
        _transposes[dtype] = transpose
    for name, dtype, scalar in (("scipy_cblas_sgemm64_", np.dtype(np.float32), ctypes.c_float),
                                ("scipy_cblas_dgemm64_", np.dtype(np.float64), ctypes.c_double)):
        gemm = getattr(blas, name)
        gemm.argtypes = [flag, flag, flag, size, size, size, scalar, pointer, size, pointer, size, scalar,
                         pointer, size]
        gemm.restype = None
        _gemm[dtype] = gemm, scalar
    library.rnnkit_packed_width.argtypes, library.rnnkit_packed_width.restype = [flag], size
    library.rnnkit_pack_f32.argtypes, library.rnnkit_pack_f32.restype = [pointer, size, flag, size, size, pointer], None
    library.rnnkit_pack_blocks_f32.argtypes = [pointer, size, flag, size, size, pointer, size, size]
    library.rnnkit_pack_blocks_f32.restype = None
    library.rnnkit_pack_depth.argtypes, library.rnnkit_pack_depth.restype = [], size
    library.rnnkit_packed_columns.argtypes, library.rnnkit_packed_columns.restype = [size], size
    library.rnnkit_packed_product_f32.argtypes = [size, size, size, pointer, size, pointer, pointer, size, flag]
    library.rnnkit_packed_product_f32.restype = None
    choice = os.environ.get("RNNKIT_PACKED", "1").strip().lower()
    if choice not in _PACKED_CHOICES:
        raise ValueError(f"RNNKIT_PACKED={choice!r}: expected one of {sorted(_PACKED_CHOICES)}")
    if _PACKED_CHOICES[choice] is not None:
        _packed_width = library.rnnkit_packed_width(_PACKED_CHOICES[choice])
    library.rnnkit_parallel.argtypes, library.rnnkit_parallel.restype = [flag, size, pointer, flag], None
    library.rnnkit_set_level1_thread.argtypes, library.rnnkit_set_level1_thread.restype = [pointer], flag
    level1_thread = getattr(blas, "blas_level1_thread", None)  # OpenBLAS's own pool, for the scans' slices
    _threaded = bool(library.rnnkit_set_level1_thread(None if level1_thread is None else address("blas_level1_thread")))
    threads = getattr(blas, "scipy_openblas_get_num_threads64_", None)
    if threads is not None:
        threads.argtypes, threads.restype = [], flag
        _blas_threads = threads
    _library, _why_not = library, ""


_load()


def packed_kernel() -> str:
    """Which packed product the float32 scans run: 'AVX-512 (8 x 48 tiles)', 'AVX2 (4 x 24 tiles)',
    or 'none' (every step on BLAS)."""
    return {48: "AVX-512 (8 x 48 tiles)", 24: "AVX2 (4 x 24 tiles)"}.get(packed_width(), "none")


def openblas_core() -> str:
    """The kernel set NumPy's bundled OpenBLAS runs on this CPU ('SkylakeX', 'Haswell', ...), or ''."""
    corename = getattr(_numpy_openblas(), "scipy_openblas_get_corename64_", None)
    if corename is None:
        return ""
    corename.restype = ctypes.c_char_p
    return corename().decode("ascii", "replace")


def available() -> bool:
    """Whether the compiled loops are loaded and enabled (see :func:`why_not`)."""
    return _library is not None and _enabled


def why_not() -> str:
    """Why :func:`available` is False, in words ('' when it is True)."""
    if _library is not None and not _enabled:
        return "disabled by rnnkit._native.disabled()"
    return _why_not


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the NumPy loops inside this block (tests compare both; the benchmark reports both)."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def _fits(a: np.ndarray, dtype: np.dtype) -> bool:
    """A ``(T, B, H)`` view the kernels can walk: rows contiguous, strides whole elements."""
    size = dtype.itemsize
    return (a.dtype == dtype and a.ndim == 3 and a.strides[2] == size
            and a.strides[0] % size == 0 and a.strides[1] % size == 0 and a.strides[1] >= a.shape[2] * size)


def scan_forward(states: np.ndarray, h0: np.ndarray, W_hh_T: np.ndarray, bias: np.ndarray, activation: str,
                 mask: np.ndarray | None, first_padded: int) -> bool:
    """The forward loop of ``rnnkit.functional.recurrent._scan_forward``, in place.

    states: ``(T, B, H)`` pre-activations without the bias in, states out (a view with contiguous
    rows); h0, W_hh_T and bias: ``(B, H)``, ``(H, H)`` (or the view ``W_hh.T``) and ``(H,)``
    contiguous; mask: ``(T, B, 1)``
    contiguous or None. The bias is added in the activation's pass. Returns False, having done
    nothing, when the kernels can't take these arrays.
    """
    dtype = states.dtype
    kernel = _kernels.get(("forward", dtype)) if _enabled else None
    if kernel is None or not _fits(states, dtype) or states.shape[1] == 0:
        return False
    steps, batch, hidden = states.shape
    if not (h0.dtype == bias.dtype == dtype and h0.shape == (batch, hidden) and bias.shape == (hidden,)
            and h0.flags.c_contiguous and bias.flags.c_contiguous):
        return False
    weight = _recurrent_weight(W_hh_T, (hidden, hidden), dtype, steps * batch)
    if weight is None:
        return False
    W_hh_T, packed = weight
    if not _mask_fits(mask, steps, batch, dtype):
        return False
    slices = _slices(batch, 2 * steps * batch * hidden * hidden, packed)
    masks = [_mask_of(mask, steps, batch, *bounds) for bounds in slices]

    def arguments(index: int, start: int, stop: int) -> list:
        rows = masks[index]
        return [*_walk(states, start), _rows_of(h0, start), W_hh_T.ctypes.data,
                None if packed is None else packed.ctypes.data, bias.ctypes.data,
                None if rows is None else rows.ctypes.data, first_padded, steps, stop - start, hidden,
                _ACTIVATIONS[activation]]

    _run_slices("elman_forward", kernel, arguments, slices, deferrable=packed is not None)
    return True


def scan_backward(grad: np.ndarray, states: np.ndarray, W_hh: np.ndarray, activation: str,
                  carried: np.ndarray, upstream: np.ndarray | None = None, bias_grad: np.ndarray | None = None,
                  first_product: bool = True) -> bool:
    """The loop of ``rnnkit.functional.recurrent._scan_backward``, in place.

    grad, states: ``(n, B, H)`` in scan order (views with contiguous rows); W_hh ``(H, H)`` and
    carried ``(B, H)`` contiguous. upstream: the gradient from above, ``(n, B, H)`` in scan order,
    read instead of what ``grad`` holds (saves the caller a copy into ``grad``); bias_grad:
    ``(H,)`` contiguous, ``grad`` summed over steps and batch is added to it in the same pass.
    first_product False skips the first step's product with W_hh (what flows on to ``h0``; nobody
    asked for it), leaving ``carried`` undefined. Returns False, having done nothing, when the
    kernels can't take these arrays.
    """
    dtype = grad.dtype
    kernel = _kernels.get(("backward", dtype)) if _enabled else None
    if kernel is None or not (_fits(grad, dtype) and _fits(states, dtype)) or grad.shape != states.shape:
        return False
    steps, batch, hidden = grad.shape
    if batch == 0 or not (W_hh.dtype == carried.dtype == dtype and W_hh.shape == (hidden, hidden)
                          and carried.shape == (batch, hidden) and W_hh.flags.c_contiguous
                          and carried.flags.c_contiguous):
        return False
    if upstream is not None and not (_fits(upstream, dtype) and upstream.shape == grad.shape):
        return False
    if bias_grad is not None and not (bias_grad.dtype == dtype and bias_grad.shape == (hidden,)
                                      and bias_grad.flags.c_contiguous):
        return False
    packed = _packed(W_hh, steps * batch)
    slices = _slices(batch, 2 * steps * batch * hidden * hidden, packed)
    bias_grads = _accumulators((bias_grad,), slices)

    def arguments(index: int, start: int, stop: int) -> list:
        up = (None, 0, 0) if upstream is None else _walk(upstream, start)
        (slice_bias_grad,) = bias_grads[index]
        return [*_walk(grad, start), *up, *_walk(states, start), W_hh.ctypes.data,
                None if packed is None else packed.ctypes.data, _rows_of(carried, start),
                None if slice_bias_grad is None else slice_bias_grad.ctypes.data, steps, stop - start, hidden,
                _ACTIVATIONS[activation], int(first_product)]

    _run_slices("elman_backward", kernel, arguments, slices)
    _add_up(bias_grads)
    return True


def transposed(a: np.ndarray) -> np.ndarray | None:
    """A C-contiguous copy of ``a.T`` for a 2-D ``a`` with contiguous rows, made in cache-sized
    tiles (AVX registers for float32), or None when the kernels can't take ``a``.

    NumPy's copy of a transposed view walks the source a whole row apart: 1.7 ms for 1024 x 1024
    float32 here, in 64-row bands 1.2 ms, this way 0.5 ms (0.1 ms at 1000 x 1000: rows 4 KiB
    apart still share cache sets).
    """
    transpose = _transposes.get(a.dtype) if _enabled and _library is not None else None
    size = a.itemsize
    if (transpose is None or a.ndim != 2 or a.strides[1] != size or a.strides[0] % size
            or a.strides[0] < a.shape[1] * size):
        return None
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    if a.size:
        transpose(a.ctypes.data, a.strides[0] // size, out.ctypes.data, max(a.shape[0], 1), a.shape[0], a.shape[1])
    return out


_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _operand(a: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) under which BLAS reads the 2-D view ``a`` in place."""
    size, (rows, cols) = a.itemsize, a.shape
    if a.strides[1] == size and a.strides[0] % size == 0 and a.strides[0] >= cols * size:
        return _NO_TRANS, max(a.strides[0] // size, cols, 1)
    if a.strides[0] == size and a.strides[1] % size == 0 and a.strides[1] >= rows * size:
        return _TRANS, max(a.strides[1] // size, rows, 1)
    return None


def add_product(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """``out += a @ b`` as one BLAS call (beta = 1): no product-sized temporary, no second pass.

    out: ``(m, n)`` C-contiguous; a: ``(m, k)``, b: ``(k, n)``, each a view with one unit stride
    (a transposed view is read as such). Returns False, having done nothing, when BLAS can't
    take these arrays; the caller then writes ``out += a @ b``.
    """
    dtype = out.dtype
    entry = _gemm.get(dtype) if _enabled and _library is not None else None
    if (entry is None or a.dtype != dtype or b.dtype != dtype or out.ndim != 2 or a.ndim != 2 or b.ndim != 2
            or not out.flags.c_contiguous or a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1])
            or 0 in a.shape or 0 in b.shape):
        return False
    a_read, b_read = _operand(a), _operand(b)
    if a_read is None or b_read is None:
        return False
    gemm, scalar = entry
    (m, k), n = a.shape, b.shape[1]
    gemm(_ROW_MAJOR, a_read[0], b_read[0], m, n, k, scalar(1), a.ctypes.data, a_read[1], b.ctypes.data, b_read[1],
         scalar(1), out.ctypes.data, max(n, 1))
    return True


# -- the gated cells' loops (gated.c), their packed product (packed.c), threads over the batch ------
def _gated_kernel(kind: str, dtype: np.dtype) -> ctypes._CFuncPtr | None:
    return _kernels.get((kind, dtype)) if _enabled else None


_TILE_ROWS = 8  # rows of packed.c's register tile (AVX-512; AVX2's is 4): slices are cut in multiples
_ROW_BLOCK = 64  # rows packed.c takes at a time against all of B: threads of product() take whole ones
# OpenBLAS multiplies small float32 matrices in place ("direct sgemm") only on its AVX-512 kernel
# sets; elsewhere (Haswell, Zen: every AVX2-only CPU) it packs B again at every call. Where it has
# direct sgemm, below ~4M multiply-adds per call (an Elman layer at B=16, H=32,
# T=64 makes 1M) packing and the Python around it cost more than its products: 0.32-0.55 ms
# against 0.27-0.40 there. On its Haswell kernels the packed product wins from far smaller calls:
# at B=1, T=200, H=64 (3.3M for an LSTM) the LSTM forward took 1.22 ms on BLAS against 0.56-0.61
# from 256K or 1M, the GRU's 0.91 against 0.45-0.49, the Elman's 0.34 against 0.26.
_MIN_PACKED_WORK = 1 << 22 if openblas_core().lower() in AVX512_CORES else 1 << 18
_MIN_SLICE_FLOPS = 1 << 23  # a thread's share below ~50 us of products costs more to hand over than it saves
_pack_scope = threading.local()  # .packs: id(B) -> (B, packed) inside packing(), per thread


def packed_width() -> int:
    """Columns per panel of the packed product on this CPU (48 AVX-512, 24 AVX2 + FMA), 0 where the
    float32 scans call BLAS at every step instead (no such kernel, ``RNNKIT_PACKED=0``)."""
    return _packed_width if available() else 0


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


def _packed(B: np.ndarray, rows: int) -> np.ndarray | None:
    """``B`` ``(K, N)`` in packed.c's panels, 64-byte aligned, for products of ``rows`` rows in all,
    or None where the caller calls BLAS instead: float64, no kernel for this CPU, or too little
    work to pay for packing and the threads' hand-over. ``B`` is C-contiguous, or the transposed
    view ``W.T`` of a C-contiguous ``W`` (read as such: no copy of ``W^T``)."""
    if rows * B.size < _MIN_PACKED_WORK or B.dtype != np.float32 or B.ndim != 2 or not packed_width():
        return None
    if B.flags.c_contiguous:
        transposed = 0
    elif B.T.flags.c_contiguous:
        transposed = 1
    else:
        return None
    scope = getattr(_pack_scope, "packs", None)
    if scope is not None and id(B) in scope and scope[id(B)][0] is B:
        return scope[id(B)][1]
    K, N = B.shape
    size = _library.rnnkit_packed_columns(N) * K
    storage = workspace.empty((size + 16,), np.float32)  # W-sized, at every call: not freshly mapped
    start = (-storage.ctypes.data // 4) % 16
    packed = storage[start : start + size]
    # Blocks of rows of B on OpenBLAS's threads from 1M values (W_hh^T of an LSTM at H = 512):
    # packing is bound by memory, and the idle worker would otherwise spin.
    blocks = -(-K // _library.rnnkit_pack_depth())
    threads = _blas_threads() if _threaded and B.size >= 1 << 20 else 1
    data, ldb = B.ctypes.data, K if transposed else N
    _run_slices("pack", _library.rnnkit_pack_blocks_f32,
                lambda index, first, end: [data, ldb, transposed, K, N, packed.ctypes.data, first, end],
                _cut(blocks, 1, threads))
    if scope is not None:
        scope[id(B)] = (B, packed)
    return packed


def _recurrent_weight(W_hh_T: np.ndarray, shape: tuple[int, int], dtype: np.dtype,
                      rows: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``W_hh^T`` as the forward scans take it: ``(W_hh_T, packed)`` with the packed product, else
    ``(a C-contiguous W_hh_T, None)`` for BLAS; None if it has the wrong shape or dtype. Given
    C-contiguous or as the view ``W_hh.T``: the packed product reads that view in place, and only
    BLAS needs the contiguous copy (made here, in tiles)."""
    if W_hh_T.dtype != dtype or W_hh_T.shape != shape:
        return None
    if not (W_hh_T.flags.c_contiguous or W_hh_T.T.flags.c_contiguous):
        W_hh_T = np.ascontiguousarray(W_hh_T)
    packed = _packed(W_hh_T, rows)
    if packed is None and not W_hh_T.flags.c_contiguous:
        W_hh_T = transposed(W_hh_T.T)
    return W_hh_T, packed


def _cut(size: int, unit: int, threads: int) -> list[tuple[int, int]]:
    """``[0, size)`` as ``(start, stop)`` slices for up to ``threads`` threads, each a whole number of
    ``unit`` items (the last may end short), as even as whole units allow."""
    units = -(-size // unit)
    threads = max(1, min(threads, units))
    bounds = [min(size, units * k // threads * unit) for k in range(threads + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _accumulators(arrays: tuple[np.ndarray | None, ...], slices: list) -> list[tuple[np.ndarray | None, ...]]:
    """Per slice, the arrays its kernel adds into (the bias gradients): the caller's for the first,
    zeroed twins for the others, so that no two threads add into one array; :func:`_add_up` sums
    them into the caller's after, in slice order (the same sum at every run)."""
    return [arrays] + [tuple(None if a is None else np.zeros_like(a) for a in arrays) for _ in slices[1:]]


def _add_up(accumulators: list[tuple[np.ndarray | None, ...]]) -> None:
    for parts in accumulators[1:]:
        for total, part in zip(accumulators[0], parts):
            if total is not None:
                total += part


def _slices(batch: int, flops: int, packed: np.ndarray | None) -> list[tuple[int, int]]:
    """The batch cut into contiguous slices, one per thread: a scan's rows are independent
    sequences, so each slice runs its whole scan alone, with no step waiting for another thread.
    One slice unless the product is packed.c's (BLAS threads itself) and each share is worth it.
    As many threads as NumPy's OpenBLAS is told to use (``OPENBLAS_NUM_THREADS``, threadpoolctl)."""
    if packed is None or not _threaded or flops < 2 * _MIN_SLICE_FLOPS:
        return [(0, batch)]
    together_scans = getattr(_together, "scans", 1)  # scans sharing the threads (see together())
    threads = max(1, _blas_threads() // together_scans)
    return _cut(batch, _TILE_ROWS, min(threads, flops // _MIN_SLICE_FLOPS))


_KINDS = {"lstm_forward": 0, "lstm_backward": 1, "gru_forward": 2, "gru_backward": 3, "product": 4,  # parallel.c
          "elman_forward": 5, "elman_backward": 6, "pack": 7}


_together = threading.local()  # .scans, .queue (of (kind, call)): inside together(), per thread


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
    for kind in dict.fromkeys(queued_kind for queued_kind, _ in queue):
        _run_calls(kind, [call for queued_kind, call in queue if queued_kind == kind])


def _run_slices(kind: str, kernel: ctypes._CFuncPtr, arguments: Callable[[int, int, int], list],
                slices: list[tuple[int, int]], deferrable: bool = False) -> None:
    """``kernel(*arguments(index, start, stop))`` for every slice: on this thread when there is
    one, else on OpenBLAS's threads (parallel.c), one slice each; inside :func:`together`, when
    ``deferrable`` (a packed float32 scan: nothing in it calls BLAS), when that block ends. The
    arrays behind the arguments must outlive the call: the callers keep them, and a deferred
    call keeps ``arguments``, whose closure holds them."""
    calls = [(kernel, arguments, index, bounds) for index, bounds in enumerate(slices)]
    queue = getattr(_together, "queue", None)
    if deferrable and queue is not None:
        queue.extend((kind, call) for call in calls)
    else:
        _run_calls(kind, calls)


def _run_calls(kind: str, calls: list[tuple[ctypes._CFuncPtr, Callable[[int, int, int], list], int,
                                             tuple[int, int]]]) -> None:
    """Each ``kernel(*arguments(index, start, stop))`` of ``calls``: on this thread when there is one,
    else on OpenBLAS's threads (parallel.c), which take them from a shared counter."""
    if len(calls) == 1:
        kernel, arguments, index, bounds = calls[0]
        kernel(*arguments(index, *bounds))
        return
    table = np.array([[0 if value is None else int(value) for value in arguments(index, *bounds)]
                      for _, arguments, index, bounds in calls], dtype=np.int64)
    # Never more threads than OpenBLAS has (with OPENBLAS_NUM_THREADS=1 two would wait forever for
    # a worker that does not exist).
    _library.rnnkit_parallel(_KINDS[kind], len(calls), table.ctypes.data, min(len(calls), _blas_threads()))


def product(a: np.ndarray, B: np.ndarray, out: np.ndarray, accumulate: bool = False) -> bool:
    """``out = a @ B`` (``+=`` when accumulate) by the packed product, on threads over blocks of
    rows: the input projection of all steps of a layer, BPTT's ``dx``. a ``(M, K)`` and out
    ``(M, N)`` float32 with contiguous rows, B ``(K, N)`` C-contiguous or the view ``W.T`` of a
    C-contiguous ``W``. Returns False, having done nothing, where the packed product can't take
    these arrays (the caller then calls NumPy); inside :func:`packing`, B is packed once."""
    if a.shape[0] * B.size < _MIN_PACKED_WORK:  # first: the common small case returns at once
        return False
    if not (a.ndim == B.ndim == out.ndim == 2 and a.dtype == B.dtype == out.dtype == np.float32 and 0 not in a.shape
            and a.shape[1] == B.shape[0] and out.shape == (a.shape[0], B.shape[1]) and out.shape[1] > 0
            and _rows(a, a.shape, a.dtype) and _rows(out, out.shape, out.dtype)):
        return False
    packed = _packed(B, a.shape[0])
    if packed is None:
        return False
    (M, K), N = a.shape, B.shape[1]
    lda, ldc = a.strides[0] // 4, out.strides[0] // 4
    threads = min(_blas_threads(), 2 * M * N * K // _MIN_SLICE_FLOPS) if _threaded else 1

    def arguments(index: int, start: int, stop: int) -> list:
        return [stop - start, N, K, a.ctypes.data + start * lda * 4, lda, packed.ctypes.data,
                out.ctypes.data + start * ldc * 4, ldc, int(accumulate)]

    _run_slices("product", _library.rnnkit_packed_product_f32, arguments, _cut(M, _ROW_BLOCK, threads))
    return True


def _rows_of(a: np.ndarray, start: int) -> int:
    """The address of row ``start`` of a ``(T, B, W)`` or ``(B, W)`` view."""
    return a.ctypes.data + start * a.strides[-2]


def _mask_of(mask: np.ndarray | None, steps: int, batch: int, start: int, stop: int) -> np.ndarray | None:
    """The contiguous ``(T, stop - start)`` mask of a slice (the kernels index it ``t * rows + b``)."""
    if mask is None or (start, stop) == (0, batch):
        return mask
    return np.ascontiguousarray(mask.reshape(steps, batch)[:, start:stop])


def _walk(a: np.ndarray, start: int = 0) -> tuple[int, int, int]:
    """A ``(T, B, W)`` view from row ``start`` on as the kernels take it: data, time stride, row
    stride (elements)."""
    size = a.itemsize
    return _rows_of(a, start), a.strides[0] // size, a.strides[1] // size


def _rows(a: np.ndarray, shape: tuple[int, int], dtype: np.dtype) -> bool:
    """A ``(B, W)`` view with contiguous rows (any row stride of whole elements)."""
    size = dtype.itemsize
    return (a.dtype == dtype and a.shape == shape and a.strides[1] == size and a.strides[0] % size == 0
            and a.strides[0] >= shape[1] * size)


def _contiguous(dtype: np.dtype, *pairs: tuple[np.ndarray, tuple[int, ...]]) -> bool:
    return all(a.dtype == dtype and a.shape == shape and a.flags.c_contiguous for a, shape in pairs)


def _mask_fits(mask: np.ndarray | None, steps: int, batch: int, dtype: np.dtype) -> bool:
    return mask is None or (mask.dtype == dtype and mask.flags.c_contiguous and mask.size == steps * batch)


def lstm_scan_forward(gates: np.ndarray, states: np.ndarray, cells: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                      W_hh_T: np.ndarray, bias: np.ndarray, mask: np.ndarray | None, first_padded: int) -> bool:
    """The LSTM's forward loop (``rnnkit.functional.lstm._scan_forward``), in place.

    gates ``(T, B, 4H)`` holds ``W_xh x_t`` without the bias on entry, ``i, f, g, o`` on exit;
    states and cells ``(T, B, H)`` receive ``h_t`` and ``c_t`` (views with contiguous rows); h0,
    c0 ``(B, H)``, W_hh_T ``(H, 4H)`` (or the view ``W_hh.T``) and bias ``(4H,)`` contiguous. Returns False, having done
    nothing, when the kernels can't take these arrays.
    """
    dtype = gates.dtype
    kernel = _gated_kernel("lstm_forward", dtype)
    if kernel is None or not (_fits(gates, dtype) and _fits(states, dtype) and _fits(cells, dtype)):
        return False
    steps, batch, hidden = states.shape
    if batch == 0 or gates.shape != (steps, batch, 4 * hidden) or cells.shape != states.shape:
        return False
    if not (_contiguous(dtype, (h0, (batch, hidden)), (c0, (batch, hidden)), (bias, (4 * hidden,)))
            and _mask_fits(mask, steps, batch, dtype)):
        return False
    weight = _recurrent_weight(W_hh_T, (hidden, 4 * hidden), dtype, steps * batch)
    if weight is None:
        return False
    W_hh_T, packed = weight
    slices = _slices(batch, 8 * steps * batch * hidden * hidden, packed)
    masks = [_mask_of(mask, steps, batch, *bounds) for bounds in slices]

    def arguments(index: int, start: int, stop: int) -> list:
        rows = masks[index]
        return [*_walk(gates, start), *_walk(states, start), *_walk(cells, start), _rows_of(h0, start),
                _rows_of(c0, start), W_hh_T.ctypes.data, None if packed is None else packed.ctypes.data,
                bias.ctypes.data, None if rows is None else rows.ctypes.data, first_padded, steps, stop - start, hidden]

    _run_slices("lstm_forward", kernel, arguments, slices, deferrable=packed is not None)
    return True


def lstm_scan_backward(grad: np.ndarray, upstream: np.ndarray, dc_upstream: np.ndarray | None, gates: np.ndarray,
                       cells: np.ndarray, c_before: np.ndarray, W_hh: np.ndarray, carried_h: np.ndarray,
                       carried_c: np.ndarray, bias_grad: np.ndarray, first_product: bool) -> bool:
    """The LSTM's BPTT loop over one block (``rnnkit.functional.lstm._scan_backward``), in place.

    grad, gates ``(n, B, 4H)``, upstream, dc_upstream (or None) and cells ``(n, B, H)``: the
    block's steps in scan order (views with contiguous rows); c_before ``(B, H)`` the cell state
    before the block (rows contiguous); W_hh ``(4H, H)``, carried_h, carried_c ``(B, H)`` and
    bias_grad ``(4H,)`` contiguous. Returns False, having done nothing, when the kernels can't
    take these arrays.
    """
    dtype = grad.dtype
    kernel = _gated_kernel("lstm_backward", dtype)
    blocks = (grad, upstream, gates, cells) + (() if dc_upstream is None else (dc_upstream,))
    if kernel is None or not all(_fits(a, dtype) for a in blocks):
        return False
    steps, batch, hidden = upstream.shape
    if (batch == 0 or grad.shape != gates.shape or grad.shape != (steps, batch, 4 * hidden)
            or cells.shape != upstream.shape or (dc_upstream is not None and dc_upstream.shape != upstream.shape)):
        return False
    if not (_rows(c_before, (batch, hidden), dtype) and _contiguous(
            dtype, (W_hh, (4 * hidden, hidden)), (carried_h, (batch, hidden)), (carried_c, (batch, hidden)),
            (bias_grad, (4 * hidden,)))):
        return False
    # No gradient reaching c from outside: a zero row read at every step (strides 0), not a branch.
    zero_row = np.zeros(hidden, dtype)  # kept alive by this name until the kernel returns
    dc = (zero_row.ctypes.data, 0, 0) if dc_upstream is None else _walk(dc_upstream)
    packed = _packed(W_hh, steps * batch)
    slices = _slices(batch, 8 * steps * batch * hidden * hidden, packed)
    bias_grads = _accumulators((bias_grad,), slices)

    def arguments(index: int, start: int, stop: int) -> list:
        slice_dc = dc if dc_upstream is None else _walk(dc_upstream, start)
        return [*_walk(grad, start), *_walk(upstream, start), *slice_dc, *_walk(gates, start), *_walk(cells, start),
                _rows_of(c_before, start), c_before.strides[0] // dtype.itemsize, W_hh.ctypes.data,
                None if packed is None else packed.ctypes.data, _rows_of(carried_h, start), _rows_of(carried_c, start),
                bias_grads[index][0].ctypes.data, steps, stop - start, hidden, int(first_product)]

    _run_slices("lstm_backward", kernel, arguments, slices)
    _add_up(bias_grads)
    return True


def gru_scan_forward(gates: np.ndarray, states: np.ndarray, hidden_n: np.ndarray, h0: np.ndarray,
                     W_hh_T: np.ndarray, b_xh: np.ndarray, b_hh: np.ndarray, mask: np.ndarray | None,
                     first_padded: int) -> bool:
    """The GRU's forward loop (``rnnkit.functional.gru._scan_forward``), in place.

    gates ``(T, B, 3H)`` holds ``W_xh x_t`` without the bias on entry, ``r, z, n`` on exit;
    states and hidden_n ``(T, B, H)`` receive ``h_t`` and ``W_hn h_{t-1} + b_hn``; h0 ``(B, H)``,
    W_hh_T ``(H, 3H)`` (or the view ``W_hh.T``), b_xh and b_hh ``(3H,)`` contiguous. Returns False, having done nothing,
    when the kernels can't take these arrays.
    """
    dtype = gates.dtype
    kernel = _gated_kernel("gru_forward", dtype)
    if kernel is None or not (_fits(gates, dtype) and _fits(states, dtype) and _fits(hidden_n, dtype)):
        return False
    steps, batch, hidden = states.shape
    if batch == 0 or gates.shape != (steps, batch, 3 * hidden) or hidden_n.shape != states.shape:
        return False
    if not (_contiguous(dtype, (h0, (batch, hidden)), (b_xh, (3 * hidden,)), (b_hh, (3 * hidden,)))
            and _mask_fits(mask, steps, batch, dtype)):
        return False
    weight = _recurrent_weight(W_hh_T, (hidden, 3 * hidden), dtype, steps * batch)
    if weight is None:
        return False
    W_hh_T, packed = weight
    row_buffer = np.empty((batch, 3 * hidden), dtype)
    slices = _slices(batch, 6 * steps * batch * hidden * hidden, packed)
    masks = [_mask_of(mask, steps, batch, *bounds) for bounds in slices]

    def arguments(index: int, start: int, stop: int) -> list:
        rows = masks[index]
        return [*_walk(gates, start), *_walk(states, start), *_walk(hidden_n, start), _rows_of(h0, start),
                W_hh_T.ctypes.data, None if packed is None else packed.ctypes.data, b_xh.ctypes.data, b_hh.ctypes.data,
                _rows_of(row_buffer, start), None if rows is None else rows.ctypes.data, first_padded, steps,
                stop - start, hidden]

    _run_slices("gru_forward", kernel, arguments, slices, deferrable=packed is not None)
    return True


def gru_scan_backward(grad: np.ndarray, grad_hidden: np.ndarray, upstream: np.ndarray, gates: np.ndarray,
                      hidden_n: np.ndarray, states: np.ndarray, h_before: np.ndarray, W_hh: np.ndarray,
                      carried: np.ndarray, b_xh_grad: np.ndarray, b_hh_grad: np.ndarray, first_product: bool) -> bool:
    """The GRU's BPTT loop over one block (``rnnkit.functional.gru._scan_backward``), in place.

    grad, grad_hidden, gates ``(n, B, 3H)``, upstream, hidden_n and states ``(n, B, H)``: the
    block's steps in scan order (views with contiguous rows); h_before ``(B, H)`` the state
    before the block (rows contiguous); W_hh ``(3H, H)``, carried ``(B, H)`` and the two bias
    gradients ``(3H,)`` contiguous. Returns False, having done nothing, when the kernels can't
    take these arrays.
    """
    dtype = grad.dtype
    kernel = _gated_kernel("gru_backward", dtype)
    if kernel is None or not all(_fits(a, dtype) for a in (grad, grad_hidden, upstream, gates, hidden_n, states)):
        return False
    steps, batch, hidden = upstream.shape
    wide = (steps, batch, 3 * hidden)
    if (batch == 0 or not grad.shape == grad_hidden.shape == gates.shape == wide
            or not hidden_n.shape == states.shape == upstream.shape):
        return False
    if not (_rows(h_before, (batch, hidden), dtype) and _contiguous(
            dtype, (W_hh, (3 * hidden, hidden)), (carried, (batch, hidden)), (b_xh_grad, (3 * hidden,)),
            (b_hh_grad, (3 * hidden,)))):
        return False
    packed = _packed(W_hh, steps * batch)
    slices = _slices(batch, 6 * steps * batch * hidden * hidden, packed)
    bias_grads = _accumulators((b_xh_grad, b_hh_grad), slices)

    def arguments(index: int, start: int, stop: int) -> list:
        slice_b_xh_grad, slice_b_hh_grad = bias_grads[index]
        return [*_walk(grad, start), *_walk(grad_hidden, start), *_walk(upstream, start), *_walk(gates, start),
                *_walk(hidden_n, start), *_walk(states, start), _rows_of(h_before, start),
                h_before.strides[0] // dtype.itemsize, W_hh.ctypes.data, None if packed is None else packed.ctypes.data,
                _rows_of(carried, start), slice_b_xh_grad.ctypes.data, slice_b_hh_grad.ctypes.data, steps,
                stop - start, hidden, int(first_product)]

    _run_slices("gru_backward", kernel, arguments, slices)
    _add_up(bias_grads)
    return True
