"""float32 GFLOP/s of each candidate source of matrix products at the shapes of an RNN's training step.

For issue #27 (which GEMM library rnnkit's compiled LSTM loops should adopt): in one process, each
candidate multiplies the same float32 operands at the shapes an LSTM's training step runs, for
hidden size H and batch B (T = 100 steps, input size I = H):

- ``recurrent``: C(B, 4H) = A(B, H) @ W(H, 4H), the per-step product (the same W at every step);
- ``recurrent BPTT``: C(B, H) = A(B, 4H) @ W(4H, H);
- ``... slice``: the same two with M = B/2, one thread's share when the batch is split across two
  threads that each run a single-threaded product on their rows (how rnnkit's scans use threads);
- ``input projection``: C(T*B, 4H) = X(T*B, I) @ W(I, 4H), one big product;
- ``weight gradient``: C(4H, H) = G^T(4H, T*B) @ Hs(T*B, H), G read transposed (no copy).

Candidates (each skipped, with the reason printed, where it is not available):

- ``OpenBLAS``: NumPy's bundled OpenBLAS, ``np.matmul(a, b, out=c)``, on 1 and 2 of its own threads
  (threadpoolctl sets the count);
- ``rnnkit``: rnnkit's packed product (``packed.c``) against W packed once, as in a scan, called
  through ctypes with its arguments bound as MKL's columns are (``rnnkit._native.product`` costs
  ~12 us more per call in Python, which the scans, calling it from C, do not pay); ``rnnkit
  repack``: ``product()`` outside a ``packing()`` block, W packed at every call. The size
  threshold of both is lowered so that they take the per-step shapes, as a scan's packing (sized
  by the whole scan) lets it. ``rnnkit 2T``: ``product()`` on rnnkit's own
  pool (its threads follow OpenBLAS's count), only where it splits a call (64-row blocks);
- ``MKL``: ``cblas_sgemm`` of ``libmkl_rt`` loaded with ctypes, sequential threading layer;
  ``MKL packed``: ``cblas_sgemm_pack`` of W once, then ``cblas_sgemm_compute`` per call;
- ``BLIS``: explosion's cython-blis, ``blis.py.gemm(a, b, out=c, beta=0)`` (it bundles BLIS
  0.7, single-threaded);
- ``oneDNN``: ``dnnl_sgemm`` of ``libdnnl`` loaded with ctypes.

"2x1T" columns: two Python threads each run a single-threaded product on its half of the rows (a
ctypes call, and blis's gemm, release the GIL), each repeating its own products with no wait for
the other, as rnnkit's scans run a slice of the batch per thread.

Method: every product is first checked against NumPy's float64 product (tolerance K * float32 eps
* max|a| * max|b|; the table's footer gives each column's largest relative error); then, per shape,
the candidates take turns (the order rotating per round) at blocks of at least 0.2 s, five rounds,
and the median block gives the time per product: GFLOP/s = 2*M*N*K / time. Taking turns spreads the
machine's drift over all alike; after a candidate whose worker threads keep polling when idle
(OpenBLAS's, rnnkit's pool), a pause lets them go to sleep before the next one is timed.

MKL, BLIS and oneDNN are found in the installed environment (``pip install mkl blis onednn``)
first, then under each ``--libs DIR``: a ``lib`` folder or a package folder in DIR or in DIR's
subfolders (``pip install --prefix DIR/mkl mkl``: ``--target`` drops the shared libraries that
the mkl and onednn wheels install as data files).

``--as-avx2`` restricts every library to its AVX2 kernels, as on an AVX2-only CPU: the script runs
itself again in a subprocess with ``OPENBLAS_CORETYPE=Haswell`` (read when NumPy loads OpenBLAS),
``MKL_ENABLE_INSTRUCTIONS=AVX2``, ``DNNL_MAX_CPU_ISA=AVX2``, ``RNNKIT_PACKED=avx2`` and
``BLIS_ARCH_TYPE=haswell`` (for newer BLIS; the BLIS 0.7.0 in cython-blis 1.3.4 has no such
variable and runs its haswell kernels on AVX-512 CPUs too: the header prints its configuration).

    python benchmarks/gemm_sources.py [--as-avx2] [--full] [--libs DIR]
    python benchmarks/gemm_sources.py --libs /tmp/gemmenv    # the wheels installed under /tmp/gemmenv/*

The default grid is H in {256, 512, 1024} x B in {32, 128} for the recurrent shapes and H in {256,
512} at B = 32 for the big ones (~7 minutes on 2 cores); ``--full`` runs H in {128, 256, 512,
1024} x B in {32, 64, 128} for all.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import glob
import importlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# Every library limited to its AVX2 kernels; set in a fresh process, before any of them loads.
AS_AVX2 = {"OPENBLAS_CORETYPE": "Haswell", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
           "ONEDNN_MAX_CPU_ISA": "AVX2", "RNNKIT_PACKED": "avx2", "BLIS_ARCH_TYPE": "haswell"}
CHILD = "RNNKIT_GEMM_SOURCES_CHILD"  # set in the re-executed process, so that it runs the benchmark
if "--as-avx2" in sys.argv and CHILD not in os.environ:
    sys.exit(subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:]],
                            env={**os.environ, **AS_AVX2, CHILD: "1"}).returncode)
# MKL's sequential layer: intel-openmp and tbb, which its threaded layers need, may be missing; the
# two-thread columns run one sequential product per thread, as rnnkit would.
os.environ.setdefault("MKL_THREADING_LAYER", "SEQUENTIAL")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from rnnkit import openblas  # noqa: E402

openblas.configure()  # OPENBLAS_CORETYPE as rnnkit's command line chooses it, before NumPy loads

import numpy as np  # noqa: E402

from rnnkit import _native  # noqa: E402
from rnnkit._native import library, threads as native_threads  # noqa: E402

STEPS = 100
MIN_BLOCK_S = 0.2  # each timed block runs at least this long
ROUNDS = 5  # timed blocks per candidate and shape; the median is reported
SETTLE_S = 0.15  # OpenBLAS's and rnnkit's idle workers poll ~0.1 s before they sleep
FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")
# CBLAS constants (row-major, MKL's LP64 interface)
ROW_MAJOR, NO_TRANS, TRANS, PACKED, B_MATRIX = 101, 111, 112, 151, 162
MKL_THREADING_SEQUENTIAL, MKL_INTERFACE_LP64 = 1, 0

Run = Callable[[int], None]  # run(reps): that many products, on one or two threads


@dataclass(frozen=True)
class Shape:
    kind: str
    hidden: int
    batch: int
    M: int
    N: int
    K: int
    transposed_a: bool = False  # A is read as the transpose of a C-contiguous (K, M) array

    def flops(self) -> float:
        return 2.0 * self.M * self.N * self.K

    def split(self) -> bool:
        """Whether the 2-thread columns apply: a slice is already one thread's share."""
        return "slice" not in self.kind


def shapes(full: bool) -> list[Shape]:
    hiddens, batches = ((128, 256, 512, 1024), (32, 64, 128)) if full else ((256, 512, 1024), (32, 128))
    big = [(H, B) for H in hiddens for B in batches] if full else [(256, 32), (512, 32)]
    result = []
    for H in hiddens:
        for B in batches:
            result += [Shape("recurrent", H, B, B, 4 * H, H), Shape("recurrent BPTT", H, B, B, H, 4 * H)]
    for H in hiddens:
        for B in batches:
            result += [Shape("recurrent slice", H, B, B // 2, 4 * H, H), Shape("recurrent BPTT slice", H, B, B // 2, H, 4 * H)]
    for H, B in big:
        result += [Shape("input projection", H, B, STEPS * B, 4 * H, H),
                   Shape("weight gradient", H, B, 4 * H, H, STEPS * B, transposed_a=True)]
    return result


@dataclass
class Operands:
    a: np.ndarray  # (M, K), possibly a transposed view
    b: np.ndarray  # (K, N), C-contiguous
    c: np.ndarray  # (M, N), C-contiguous
    reference: np.ndarray  # a @ b in float64
    tolerance: float


def operands(shape: Shape, rng: np.random.Generator) -> Operands:
    if shape.transposed_a:
        a = rng.standard_normal((shape.K, shape.M), dtype=np.float32).T
    else:
        a = rng.standard_normal((shape.M, shape.K), dtype=np.float32)
    b = rng.standard_normal((shape.K, shape.N), dtype=np.float32)
    reference = a.astype(np.float64) @ b.astype(np.float64)
    # A product's rounding error is at most about K * eps * sum|a||b| <= K * eps * K max|a| max|b|;
    # K * eps * max|a| max|b| is tighter than that worst case but far above random data's error, so a
    # wrong call (a wrong stride, a missing row) fails and a right one never does.
    tolerance = shape.K * np.finfo(np.float32).eps * float(np.abs(a).max() * np.abs(b).max())
    return Operands(a, b, np.empty((shape.M, shape.N), np.float32), reference, tolerance)


# -- the machine and the libraries -------------------------------------------------------------------


def cpu_line() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return "CPU: unknown (no /proc/cpuinfo)"
    model = next((line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = openblas.cpu_flags(text)
    present = " ".join(flag if flag in flags else f"-{flag}" for flag in FLAGS)
    return f"CPU: {model}, {os.cpu_count()} logical CPUs; flags: {present}"


def library_dirs(libs: list[str]) -> list[str]:
    """Where shared libraries are looked for: the installed environment's lib, then each --libs
    DIR, its lib, and its subfolders' lib (DIR/mkl/lib from ``pip install --prefix DIR/mkl mkl``)."""
    dirs = [os.path.join(sys.prefix, "lib")]
    for root in libs:
        dirs += [root, os.path.join(root, "lib")] + sorted(glob.glob(os.path.join(root, "*", "lib")))
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def find_library(patterns: tuple[str, ...], dirs: list[str]) -> str | None:
    for directory in dirs:
        for pattern in patterns:
            found = sorted(glob.glob(os.path.join(directory, pattern)))
            if found:
                return found[0]
    return None


class MKL:
    """``cblas_sgemm`` and the packed API of ``libmkl_rt`` (LP64), sequential."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)  # mkl_rt loads its core and kernel libraries
        lib.MKL_Set_Interface_Layer.argtypes = lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Interface_Layer(MKL_INTERFACE_LP64)
        layer = lib.MKL_Set_Threading_Layer(MKL_THREADING_SEQUENTIAL)
        if layer != MKL_THREADING_SEQUENTIAL:
            raise OSError(f"MKL_Set_Threading_Layer(SEQUENTIAL) returned {layer}")
        buffer = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buffer, len(buffer))
        self.version = buffer.value.decode(errors="replace").strip()
        i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
        lib.cblas_sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
        lib.cblas_sgemm_pack_get_size.argtypes, lib.cblas_sgemm_pack_get_size.restype = [i, i, i, i], ctypes.c_size_t
        lib.cblas_sgemm_pack.argtypes = [i, i, i, i, i, i, f, p, i, p]
        lib.cblas_sgemm_compute.argtypes = [i, i, i, i, i, i, p, i, p, i, f, p, i]
        for function in (lib.cblas_sgemm, lib.cblas_sgemm_pack, lib.cblas_sgemm_compute):
            function.restype = None
        self.lib = lib

    def gemm(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Callable[[], None]:
        """c = a @ b as a call with its arguments bound: only ctypes' own cost per call, near what a
        C loop calling MKL pays (``a.ctypes.data`` alone costs ~1 us in Python)."""
        trans, lda = leading(a)
        (M, K), N = a.shape, b.shape[1]
        call = functools.partial(self.lib.cblas_sgemm, ROW_MAJOR, trans, NO_TRANS, M, N, K, 1.0, a.ctypes.data, lda,
                                 b.ctypes.data, b.strides[0] // 4, 0.0, c.ctypes.data, c.strides[0] // 4)
        call.arrays = (a, b, c)  # the call holds addresses only: keep what they point to alive
        return call

    def pack(self, b: np.ndarray, rows: int) -> np.ndarray:
        """b in MKL's packed format, for products of up to ``rows`` rows (uint8 storage)."""
        K, N = b.shape
        packed = np.empty(self.lib.cblas_sgemm_pack_get_size(B_MATRIX, rows, N, K), np.uint8)
        self.lib.cblas_sgemm_pack(ROW_MAJOR, B_MATRIX, NO_TRANS, rows, N, K, 1.0, b.ctypes.data, b.strides[0] // 4,
                                  packed.ctypes.data)
        return packed

    def compute(self, a: np.ndarray, packed: np.ndarray, N: int, c: np.ndarray) -> Callable[[], None]:
        """c = a @ B with B packed by :meth:`pack`, as a call with its arguments bound."""
        trans, lda = leading(a)
        (M, K) = a.shape
        call = functools.partial(self.lib.cblas_sgemm_compute, ROW_MAJOR, trans, PACKED, M, N, K, a.ctypes.data, lda,
                                 packed.ctypes.data, N, 0.0, c.ctypes.data, c.strides[0] // 4)
        call.arrays = (a, packed, c)  # the call holds addresses only: keep what they point to alive
        return call


class OneDNN:
    """``dnnl_sgemm`` (row-major, int64 sizes) of ``libdnnl``."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        c, d, f, p = ctypes.c_char, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
        lib.dnnl_sgemm.argtypes = [c, c, d, d, d, f, p, d, p, d, f, p, d]
        lib.dnnl_sgemm.restype = ctypes.c_int
        lib.dnnl_version.restype = ctypes.POINTER(ctypes.c_int * 3)
        self.version = ".".join(map(str, lib.dnnl_version().contents))
        self.lib = lib

    def gemm(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Callable[[], None]:
        """c = a @ b as a call with its arguments bound (raises on a failed status)."""
        trans, lda = leading(a)
        (M, K), N = a.shape, b.shape[1]
        call = functools.partial(self.lib.dnnl_sgemm, b"T" if trans == TRANS else b"N", b"N", M, N, K, 1.0,
                                 a.ctypes.data, lda, b.ctypes.data, b.strides[0] // 4, 0.0, c.ctypes.data, c.strides[0] // 4)

        def checked() -> None:  # its closure keeps a, b and c alive
            if (a, b, c) and call():
                raise RuntimeError("dnnl_sgemm returned an error status")
        return checked


def leading(a: np.ndarray) -> tuple[int, int]:
    """CBLAS transpose flag and leading dimension of a row-major ``a`` or a transposed view."""
    if a.strides[1] == 4:
        return NO_TRANS, a.strides[0] // 4
    return TRANS, a.strides[1] // 4


def load_blis(libs: list[str]) -> tuple[object | None, str]:
    """cython-blis's ``blis.py``, installed or under a --libs DIR; (module, '') or (None, why not)."""
    try:
        return importlib.import_module("blis.py"), ""
    except ImportError:
        pass
    for root in libs:
        for parent in [root] + sorted(glob.glob(os.path.join(root, "*"))):
            if os.path.isfile(os.path.join(parent, "blis", "__init__.py")):
                sys.path.insert(0, parent)
                try:
                    return importlib.import_module("blis.py"), ""
                except ImportError as error:
                    return None, f"blis under {parent} does not import: {error}"
    return None, "cython-blis is not installed (pip install blis) nor under --libs"


def blis_configuration(module: object) -> str:
    """BLIS's version and the kernel configuration it runs on this CPU (from its exported C API)."""
    lib = ctypes.CDLL(module.__file__.replace("py.", "cy.", 1))  # the BLIS library is linked into blis.cy
    lib.bli_info_get_version_str.restype = lib.bli_arch_string.restype = ctypes.c_char_p
    lib.bli_arch_query_id.restype = ctypes.c_int
    about = importlib.import_module("blis.about")
    return (f"cython-blis {about.__version__} (BLIS {lib.bli_info_get_version_str().decode()}, "
            f"{lib.bli_arch_string(lib.bli_arch_query_id()).decode()} kernels)")


# -- the candidates ----------------------------------------------------------------------------------


@dataclass
class Candidate:
    name: str
    prepare: Callable[[Shape, Operands], Run | None]  # None: not applicable to this shape
    openblas_threads: int = 1
    polls: bool = False  # leaves worker threads polling for a while after its calls


def halves(shape: Shape, ops: Operands) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows of A, rows of C) for each of two threads, cut at a multiple of 8 rows (rnnkit's tile)."""
    middle = (shape.M // 2 + 7) // 8 * 8
    return [(ops.a[:middle], ops.c[:middle]), (ops.a[middle:], ops.c[middle:])]


def looped(call: Callable[[], None]) -> Run:
    def run(reps: int) -> None:
        for _ in range(reps):
            call()
    return run


def two_threads(runs: list[Run]) -> Run:
    """Each run on its own thread, each repeating its products without waiting for the other."""
    def run(reps: int) -> None:
        workers = [threading.Thread(target=r, args=(reps,)) for r in runs]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return run


RnnkitCall = Literal["bound", "pool", "repack"]


def rnnkit_run(a: np.ndarray, b: np.ndarray, c: np.ndarray, how: RnnkitCall) -> Run | None:
    """rnnkit's packed product repeated. ``bound``: W packed once, then packed.c's product as a
    call with its arguments bound (what a scan pays per step, calling it from C, plus ctypes' own
    cost, as MKL's columns pay); ``pool``: ``product()`` inside one ``packing()`` block, on
    rnnkit's threads; ``repack``: ``product()`` alone, W packed again at every call."""
    if not native_threads.product(a, b, c):
        return None  # it does not take these arrays (A transposed): the library calls BLAS there
    if how == "repack":
        return looped(lambda: _native.product(a, b, c))
    if how == "pool":
        def run(reps: int) -> None:
            with _native.packing():
                for _ in range(reps):
                    _native.product(a, b, c)
        return run
    with _native.packing():
        weights = native_threads.packed(b, a.shape[0])
    assert weights is not None  # product() took these arrays, so they pack
    (M, K), N = a.shape, b.shape[1]
    call = functools.partial(library.loaded().rnnkit_packed_product_f32, M, N, K, a.ctypes.data, a.strides[0] // 4,
                             weights.ctypes.data, c.ctypes.data, c.strides[0] // 4, 0)
    call.arrays = (a, b, c, weights)  # the call holds addresses only: keep what they point to alive
    return looped(call)


def candidates(mkl: MKL | None, blis: object | None, dnnl: OneDNN | None) -> list[Candidate]:
    def numpy_run(shape: Shape, ops: Operands) -> Run:
        return looped(lambda: np.matmul(ops.a, ops.b, out=ops.c))

    def rnnkit_one(how: RnnkitCall) -> Callable[[Shape, Operands], Run | None]:
        return lambda shape, ops: rnnkit_run(ops.a, ops.b, ops.c, how)

    def rnnkit_pool(shape: Shape, ops: Operands) -> Run | None:
        # only where product() itself splits the rows over its threads (whole 64-row blocks)
        if not shape.split() or native_threads.cut(shape.M, native_threads.ROW_BLOCK, 2) == [(0, shape.M)]:
            return None
        return rnnkit_run(ops.a, ops.b, ops.c, "pool")

    def rnnkit_halves(shape: Shape, ops: Operands) -> Run | None:
        if not shape.split():
            return None
        runs = [rnnkit_run(a, ops.b, c, "bound") for a, c in halves(shape, ops)]
        return None if None in runs else two_threads(runs)

    result = [Candidate("OpenBLAS", numpy_run), Candidate("rnnkit", rnnkit_one("bound")),
              Candidate("rnnkit repack", rnnkit_one("repack"))]
    if mkl is not None:
        def mkl_packed(shape: Shape, ops: Operands, split: bool) -> Run | None:
            if split and not shape.split():
                return None
            packed = mkl.pack(ops.b, shape.M)  # once, as a scan would pack W_hh
            parts = halves(shape, ops) if split else [(ops.a, ops.c)]
            runs = [looped(mkl.compute(a, packed, shape.N, c)) for a, c in parts]
            return two_threads(runs) if split else runs[0]

        def mkl_halves(shape: Shape, ops: Operands) -> Run | None:
            if not shape.split():
                return None
            return two_threads([looped(mkl.gemm(a, ops.b, c)) for a, c in halves(shape, ops)])

        result += [Candidate("MKL", lambda shape, ops: looped(mkl.gemm(ops.a, ops.b, ops.c))),
                   Candidate("MKL packed", lambda shape, ops: mkl_packed(shape, ops, split=False))]
    if blis is not None:
        def blis_call(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Callable[[], None]:
            transposed = leading(a)[0] == TRANS
            source = a.T if transposed else a
            # blis.py.gemm takes A's leading dimension from its shape: only whole arrays, or row blocks
            if not source.flags.c_contiguous:
                raise ValueError("blis.py.gemm needs A (or A^T) C-contiguous")
            return lambda: blis.gemm(source, b, out=c, trans1=transposed, beta=0.0)

        def blis_halves(shape: Shape, ops: Operands) -> Run | None:
            if not shape.split() or shape.transposed_a:
                return None  # G^T's row halves are column blocks of G: not C-contiguous
            return two_threads([looped(blis_call(a, ops.b, c)) for a, c in halves(shape, ops)])

        result.append(Candidate("BLIS", lambda shape, ops: looped(blis_call(ops.a, ops.b, ops.c))))
    if dnnl is not None:
        result.append(Candidate("oneDNN", lambda shape, ops: looped(dnnl.gemm(ops.a, ops.b, ops.c))))
    result += [Candidate("OpenBLAS 2T", lambda shape, ops: numpy_run(shape, ops) if shape.split() else None,
                         openblas_threads=2, polls=True),
               Candidate("rnnkit 2T", rnnkit_pool, openblas_threads=2, polls=True),
               Candidate("rnnkit 2x1T", rnnkit_halves)]
    if mkl is not None:
        result += [Candidate("MKL 2x1T", mkl_halves),
                   Candidate("MKL packed 2x1T", lambda shape, ops: mkl_packed(shape, ops, split=True))]
    if blis is not None:
        result.append(Candidate("BLIS 2x1T", blis_halves))
    return result


# -- measuring ---------------------------------------------------------------------------------------


class Threads:
    """OpenBLAS's thread count (which rnnkit's pool follows), via threadpoolctl."""

    def __init__(self) -> None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            self.controller = None
            self.why_not = "threadpoolctl is not installed: OpenBLAS runs on OPENBLAS_NUM_THREADS threads throughout"
            return
        self.controller, self.why_not = ThreadpoolController(), ""

    def set(self, count: int) -> None:
        if self.controller is not None:
            self.controller.select(internal_api="openblas").limit(limits=count)

    def describe(self) -> str:
        if self.controller is None:
            return self.why_not
        infos = [info for info in self.controller.info() if info.get("internal_api") == "openblas"]
        return "; ".join(f"OpenBLAS {i.get('version')} ({i.get('architecture')}, {i.get('threading_layer')}, "
                         f"{os.path.basename(i.get('filepath', ''))})" for i in infos) or "no OpenBLAS found by threadpoolctl"


def check(run: Run, ops: Operands) -> float:
    """One product into a NaN-filled C, compared with float64; returns the max relative error."""
    ops.c.fill(np.nan)
    run(1)
    error = float(np.abs(ops.c - ops.reference).max())
    if not error <= ops.tolerance:  # also NaN: rows left unwritten
        raise AssertionError(f"error {error:.3g} above the tolerance {ops.tolerance:.3g}")
    return error / float(np.abs(ops.reference).max())


def calibrate(run: Run) -> int:
    """Repetitions that take at least MIN_BLOCK_S (after one untimed call, the warm-up)."""
    run(1)
    reps = 1
    while True:
        start = time.perf_counter()
        run(reps)
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_BLOCK_S:
            return reps
        reps = max(reps + 1, int(reps * 1.2 * MIN_BLOCK_S / max(elapsed, 1e-6)))


def measure_shape(shape: Shape, ops: Operands, cands: list[Candidate], threads: Threads,
                  errors: dict[str, float]) -> dict[str, str]:
    """GFLOP/s per candidate (as cells of the table), the candidates taking turns per round."""
    cells: dict[str, str] = {}
    ready: list[tuple[Candidate, Run, int]] = []
    for cand in cands:
        threads.set(cand.openblas_threads)
        try:
            run = cand.prepare(shape, ops)
            if run is None:
                cells[cand.name] = "n/a"
                continue
            errors[cand.name] = max(errors.get(cand.name, 0.0), check(run, ops))
            ready.append((cand, run, calibrate(run)))
        except (AssertionError, ValueError, RuntimeError, OSError) as error:
            cells[cand.name] = "FAIL"
            print(f"  {cand.name} at {shape.kind} B={shape.batch} H={shape.hidden}: {error}", flush=True)
        if cand.polls:
            time.sleep(SETTLE_S)
    times: dict[str, list[float]] = {cand.name: [] for cand, _, _ in ready}
    for round_ in range(ROUNDS):
        for cand, run, reps in ready[round_ % len(ready):] + ready[:round_ % len(ready)] if ready else []:
            threads.set(cand.openblas_threads)
            start = time.perf_counter()
            run(reps)
            times[cand.name].append((time.perf_counter() - start) / reps)
            if cand.polls:
                time.sleep(SETTLE_S)
    for cand, _, _ in ready:
        cells[cand.name] = f"{shape.flops() / statistics.median(times[cand.name]) / 1e9:.1f}"
    threads.set(1)
    return cells


def call_overhead(mkl: MKL | None, blis: object | None) -> str:
    """Time per call of an 8 x 8 x 8 product: the Python (and library) cost around the arithmetic."""
    a, b, c = (np.ones((8, 8), np.float32) for _ in range(3))
    calls: dict[str, Callable[[], None]] = {"np.matmul": lambda: np.matmul(a, b, out=c)}
    if library.packed_width():
        # the smallest product it takes: one row against one 8 x (panel width) block of W
        wide, row, out = np.ones((8, library.packed_width()), np.float32), np.ones((1, 8), np.float32), \
            np.ones((1, library.packed_width()), np.float32)
        calls[f"rnnkit product() (1 x {wide.shape[1]} x 8, packed once)"] = lambda: _native.product(row, wide, out)
    if mkl is not None:
        calls["MKL cblas_sgemm (ctypes, bound arguments)"] = mkl.gemm(a, b, c)
    if blis is not None:
        calls["blis.py.gemm"] = lambda: blis.gemm(a, b, out=c, beta=0.0)
    parts = []
    with _native.packing():  # rnnkit's W packed at the first call, as in a scan
        for name, call in calls.items():
            for _ in range(1000):
                call()
            start = time.perf_counter()
            for _ in range(20000):
                call()
            parts.append(f"{name} {(time.perf_counter() - start) / 20000 * 1e6:.2f} us")
    return "per-call cost at 8x8x8: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-avx2", action="store_true", help="every library on its AVX2 kernels")
    parser.add_argument("--full", action="store_true", help="the whole grid: H 128-1024, B 32-128")
    parser.add_argument("--libs", action="append", default=[], metavar="DIR",
                        help="also look for MKL, BLIS and oneDNN under DIR (repeatable)")
    args = parser.parse_args()

    skipped: list[str] = []
    dirs = library_dirs(args.libs)

    def load(name: str, stem: str, package: str, wrapper: Any) -> Any:
        """The ctypes wrapper of library ``stem``, or None with the reason in ``skipped``."""
        path = find_library((f"{stem}.so.*", f"{stem}.so"), dirs)
        if path is None:
            skipped.append(f"{name}: {stem}.so not found (pip install {package}, or --libs DIR)")
            return None
        try:
            return wrapper(path)
        except (OSError, AttributeError) as error:
            skipped.append(f"{name}: {path} does not load: {error}")
            return None

    mkl = load("MKL", "libmkl_rt", "mkl", MKL)
    dnnl = load("oneDNN", "libdnnl", "onednn", OneDNN)
    blis, why = load_blis(args.libs)
    if blis is None:
        skipped.append(f"BLIS: {why}")
    if not library.available() or not library.packed_width():
        skipped.append(f"rnnkit: no packed product ({library.why_not() or 'RNNKIT_PACKED=0 or no kernel for this CPU'})")
    # The scans pack W_hh for a whole scan (rows = B*T), so per-step products take the packed
    # kernel at any size; product() alone would decline calls below this threshold.
    native_threads.MIN_PACKED_WORK = 0
    threads = Threads()
    if threads.controller is None:
        skipped.append(f"OpenBLAS 1T/2T: {threads.why_not}")

    cands = candidates(mkl, blis, dnnl)
    if "rnnkit" in " ".join(skipped):
        cands = [c for c in cands if not c.name.startswith("rnnkit")]
    print(f"## float32 GEMM sources, {'AVX2 kernels (--as-avx2)' if args.as_avx2 else 'default kernels'}\n")
    print(cpu_line())
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}; "
          f"OpenBLAS runs its {library.openblas_core() or '?'} kernels")
    print(f"NumPy {np.__version__}; {threads.describe()}")
    print(f"rnnkit packed product: {library.packed_kernel()} (RNNKIT_PACKED={os.environ.get('RNNKIT_PACKED', '(unset)')})")
    if mkl is not None:
        print(f"MKL: {mkl.version} (MKL_ENABLE_INSTRUCTIONS={os.environ.get('MKL_ENABLE_INSTRUCTIONS', '(unset)')}, "
              f"threading layer sequential)")
    if blis is not None:
        print(f"BLIS: {blis_configuration(blis)} (BLIS_ARCH_TYPE={os.environ.get('BLIS_ARCH_TYPE', '(unset)')})")
    if dnnl is not None:
        print(f"oneDNN {dnnl.version} (DNNL_MAX_CPU_ISA={os.environ.get('DNNL_MAX_CPU_ISA', '(unset)')})")
    for line in skipped:
        print(f"skipped {line}")
    threads.set(1)
    print(call_overhead(mkl, blis))
    print(f"\nGFLOP/s (2*M*N*K / median of {ROUNDS} blocks of >= {MIN_BLOCK_S} s); T={STEPS}, I=H; 1T: one thread, "
          "2T: the library's own 2 threads, 2x1T: 2 threads each on half the rows; n/a: not applicable\n", flush=True)

    names = [c.name for c in cands]
    print("| shape | B | H | M x N x K | " + " | ".join(names) + " |")
    print("|---|---:|---:|---|" + "---:|" * len(names), flush=True)
    rng = np.random.default_rng(0)
    errors: dict[str, float] = {}
    for shape in shapes(args.full):
        ops = operands(shape, rng)
        cells = measure_shape(shape, ops, cands, threads, errors)
        dims = f"{shape.M} x {shape.N} x {shape.K}" + (" (A^T)" if shape.transposed_a else "")
        print(f"| {shape.kind} | {shape.batch} | {shape.hidden} | {dims} | "
              + " | ".join(cells.get(n, "") for n in names) + " |", flush=True)
    print("\nlargest relative error against float64 (max|C - C64| / max|C64|): "
          + ", ".join(f"{name} {error:.1e}" for name, error in errors.items()))


if __name__ == "__main__":
    main()
