"""Loading the compiled library, and what this machine and process can run.

The C library is built at install time when a C compiler is there (``setup.py``, optional) and
loaded with ctypes; it is handed the matrix-product functions of the OpenBLAS that NumPy's wheels
bundle, so it links nothing and the process keeps one BLAS. Where any of that is missing (no
compiler, a NumPy built on another BLAS, ``RNNKIT_NATIVE=0`` in the environment), :func:`available`
is False and rnnkit runs its NumPy loops, which compute the same thing and are what the compiled
ones are tested against (``tests/_native``). ``RNNKIT_NATIVE=require`` makes a library that cannot
be loaded an ImportError instead (CI sets it: a green run has tested the compiled code).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.machinery
import os
from collections.abc import Callable, Iterator

import numpy as np

from rnnkit._native import signatures
from rnnkit.openblas import AVX512_CORES  # NumPy-free: the command line reads it before NumPy loads

VARIABLE = "RNNKIT_NATIVE"
_CHOICES = ("1", "0", "require")
# RNNKIT_PACKED: the CPU's best packed kernel ("1", the default), none ("0"), or AVX2's (the
# argument of rnnkit_packed_width: -1 best, 0 none, 1 AVX2).
_PACKED_CHOICES = {"1": -1, "": -1, "0": None, "avx2": 1}
_BLAS_SYMBOLS = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_")

lib: ctypes.CDLL | None = None  # the loaded library, or None
pool_kinds: dict[str, int] = {}  # C symbol -> its kind in parallel.c's pool
gemm: dict[np.dtype, tuple[Callable[..., None], type]] = {}  # dtype -> (cblas_?gemm, its scalar type)
_why_not = "not loaded yet"
_enabled = True
_packed_width = 0  # columns per panel of packed.c's kernel on this CPU; 0: none (the scans call BLAS)


def blas_threads() -> int:
    """Threads a call may use: as many as NumPy's OpenBLAS is told to use (``OPENBLAS_NUM_THREADS``,
    threadpoolctl), so one setting governs both."""
    return 1


def numpy_openblas() -> ctypes.CDLL | None:
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


def _bind(library: ctypes.CDLL) -> str:
    """Give every function of the signature table its ctypes types; '' or what does not match."""
    table = signatures.symbols()
    for name, (arguments, result) in table.items():
        function = getattr(library, name, None)
        if function is None:
            return f"the compiled library has no {name} (stale build? reinstall rnnkit)"
        function.argtypes, function.restype = signatures.ctypes_arguments(arguments), signatures.ctypes_result(result)
    kinds = {}
    for kind in range(64):
        name = library.rnnkit_kernel_name(kind)
        if name is None:
            break
        kinds[name.decode()] = kind
        expected = len(table[name.decode()][0])
        if library.rnnkit_argument_count(kind) != expected:
            return (f"the compiled pool_kernels.h gives {name.decode()} {library.rnnkit_argument_count(kind)} "
                    f"arguments, signatures.py {expected} (stale build? reinstall rnnkit)")
    pool_kinds.clear()
    pool_kinds.update(kinds)
    return ""


def _load() -> str:
    """Load the library; '' on success, else why not."""
    global lib, _packed_width, blas_threads
    here = os.path.dirname(__file__)
    paths = [os.path.join(here, "_scan" + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    path = next((p for p in paths if os.path.exists(p)), None)
    if path is None:
        return "the C kernels were not built at install time (no C compiler?)"
    blas = numpy_openblas()
    if blas is None:
        return "NumPy's BLAS is not its bundled OpenBLAS (ILP64, NumPy >= 2)"
    try:
        library = ctypes.CDLL(path)
    except OSError as error:
        return f"the compiled library does not load: {error}"
    mismatch = _bind(library)
    if mismatch:
        return mismatch
    address = lambda name: ctypes.cast(getattr(blas, name), ctypes.c_void_p)  # noqa: E731
    library.rnnkit_init(address("scipy_cblas_sgemm64_"), address("scipy_cblas_dgemm64_"))
    pointer, size, flag = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for name, dtype, scalar in (("scipy_cblas_sgemm64_", np.dtype(np.float32), ctypes.c_float),
                                ("scipy_cblas_dgemm64_", np.dtype(np.float64), ctypes.c_double)):
        function = getattr(blas, name)
        function.argtypes = [flag, flag, flag, size, size, size, scalar, pointer, size, pointer, size, scalar,
                             pointer, size]
        function.restype = None
        gemm[dtype] = function, scalar
    choice = os.environ.get("RNNKIT_PACKED", "1").strip().lower()
    if choice not in _PACKED_CHOICES:
        raise ValueError(f"RNNKIT_PACKED={choice!r}: expected one of {sorted(_PACKED_CHOICES)}")
    force = _PACKED_CHOICES[choice]
    _packed_width = 0 if force is None else library.rnnkit_packed_width(force)
    threads = getattr(blas, "scipy_openblas_get_num_threads64_", None)
    if threads is not None:
        threads.argtypes, threads.restype = [], flag
        blas_threads = threads
    # OpenBLAS's workers help while they are awake (parallel.c): its pool's entry and thread count.
    level1_thread = getattr(blas, "blas_level1_thread", None)
    library.rnnkit_set_openblas_threads(None if level1_thread is None else address("blas_level1_thread"),
                                        None if threads is None else address("scipy_openblas_get_num_threads64_"))
    lib = library
    return ""


def _start() -> None:
    global _why_not
    choice = os.environ.get(VARIABLE, "1").strip().lower() or "1"
    if choice not in _CHOICES:
        raise ImportError(f"{VARIABLE}={choice!r}: expected one of {', '.join(_CHOICES)}")
    _why_not = f"{VARIABLE}=0 is set" if choice == "0" else _load()
    if _why_not and choice == "require":
        raise ImportError(f"{VARIABLE}=require, but the compiled kernels can't be used: {_why_not}")


_start()


def loaded() -> ctypes.CDLL:
    """The loaded library; only called where :func:`available` was checked."""
    if lib is None:
        raise RuntimeError(f"rnnkit's compiled kernels are not loaded: {_why_not}")
    return lib


def kernel(name: str, dtype: np.dtype) -> Callable[..., None] | None:
    """The compiled ``rnnkit_{name}_{f32|f64}`` for ``dtype``, or None where the kernels are off."""
    if not available() or dtype not in (np.float32, np.float64):
        return None
    return getattr(lib, f"rnnkit_{name}_{'f32' if dtype == np.float32 else 'f64'}")


def available() -> bool:
    """Whether the compiled loops are loaded and enabled (see :func:`why_not`)."""
    return lib is not None and _enabled


def why_not() -> str:
    """Why :func:`available` is False, in words ('' when it is True)."""
    if lib is not None and not _enabled:
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


def packed_width() -> int:
    """Columns per panel of the packed product on this CPU (48 AVX-512, 24 AVX2 + FMA), 0 where the
    float32 scans call BLAS at every step instead (no such kernel, ``RNNKIT_PACKED=0``)."""
    return _packed_width if available() else 0


def packed_kernel() -> str:
    """Which packed product the float32 scans run: 'AVX-512 (8 x 48 tiles)', 'AVX2 (4 x 24 tiles)',
    or 'none' (every step on BLAS)."""
    return {48: "AVX-512 (8 x 48 tiles)", 24: "AVX2 (4 x 24 tiles)"}.get(packed_width(), "none")


def openblas_core() -> str:
    """The kernel set NumPy's bundled OpenBLAS runs on this CPU ('SkylakeX', 'Haswell', ...), or ''."""
    corename = getattr(numpy_openblas(), "scipy_openblas_get_corename64_", None)
    if corename is None:
        return ""
    corename.restype = ctypes.c_char_p
    return corename().decode("ascii", "replace")


def direct_sgemm() -> bool:
    """Whether NumPy's OpenBLAS multiplies small float32 matrices without packing them (its
    AVX-512 kernel sets), which decides where rnnkit's packed product starts to pay."""
    return openblas_core().lower() in AVX512_CORES
