"""Compiled per-step loops of the recurrence (``scan.c``), with NumPy's own BLAS.

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
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.machinery
import os
from typing import Iterator

import numpy as np

__all__ = ["add_product", "available", "disabled", "openblas_core", "scan_forward", "scan_backward", "transposed",
           "why_not"]

_ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2}

_BLAS_SYMBOLS = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_")
_library = None  # the loaded library, or None
_kernels: dict[tuple[str, np.dtype], ctypes._CFuncPtr] = {}  # ("forward" | "backward", dtype) -> function
_gemm: dict[np.dtype, tuple[ctypes._CFuncPtr, type]] = {}  # dtype -> (cblas_?gemm, its scalar type)
_transposes: dict[np.dtype, ctypes._CFuncPtr] = {}
_why_not = "not loaded yet"
_enabled = True


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


def _load() -> None:
    global _library, _why_not
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
    arguments = {"forward": [pointer, size, size, pointer, pointer, pointer, pointer, size, size, size, size, flag],
                 "backward": [pointer, size, size, pointer, size, size, pointer, size, size, pointer, pointer, pointer,
                              size, size, size, flag, flag]}
    for suffix, dtype in (("f32", np.dtype(np.float32)), ("f64", np.dtype(np.float64))):
        for kind, argtypes in arguments.items():
            kernel = getattr(library, f"rnnkit_scan_{kind}_{suffix}")
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
    _library, _why_not = library, ""


_load()


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
    rows); h0, W_hh_T and bias: ``(B, H)``, ``(H, H)`` and ``(H,)`` contiguous; mask: ``(T, B, 1)``
    contiguous or None. The bias is added in the activation's pass. Returns False, having done
    nothing, when the kernels can't take these arrays.
    """
    dtype = states.dtype
    kernel = _kernels.get(("forward", dtype)) if _enabled else None
    if kernel is None or not _fits(states, dtype) or states.shape[1] == 0:
        return False
    steps, batch, hidden = states.shape
    if not (h0.dtype == W_hh_T.dtype == bias.dtype == dtype and h0.shape == (batch, hidden)
            and W_hh_T.shape == (hidden, hidden) and bias.shape == (hidden,) and h0.flags.c_contiguous
            and W_hh_T.flags.c_contiguous and bias.flags.c_contiguous):
        return False
    if mask is not None and not (mask.dtype == dtype and mask.flags.c_contiguous and mask.size == steps * batch):
        return False
    size = dtype.itemsize
    kernel(states.ctypes.data, states.strides[0] // size, states.strides[1] // size, h0.ctypes.data,
           W_hh_T.ctypes.data, bias.ctypes.data, None if mask is None else mask.ctypes.data, first_padded,
           steps, batch, hidden, _ACTIVATIONS[activation])
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
    size = dtype.itemsize
    up = (None, 0, 0) if upstream is None else (upstream.ctypes.data, upstream.strides[0] // size,
                                                upstream.strides[1] // size)
    kernel(grad.ctypes.data, grad.strides[0] // size, grad.strides[1] // size, *up, states.ctypes.data,
           states.strides[0] // size, states.strides[1] // size, W_hh.ctypes.data, carried.ctypes.data,
           None if bias_grad is None else bias_grad.ctypes.data, steps, batch, hidden, _ACTIVATIONS[activation],
           int(first_product))
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
