"""The packed product of the float32 scans (``rnnkit/_native/packed.c``) and the threads that run
one scan per slice of the batch (``rnnkit/_native/threads.py``, ``parallel.c``).

The product is checked against float64 within the rounding bound of a float32 sum of K products
(every output is one fused multiply-add chain, so that bound holds on every CPU and kernel), for
the AVX-512 and the AVX2 kernel where the CPU has them; threaded scans against one thread exactly
(each row's arithmetic does not depend on its slice), except the bias gradients, which are summed
per slice and then across slices."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rnnkit import _native, openblas
from rnnkit._native import library
from rnnkit._native import threads as native_threads
from rnnkit.functional import recurrent
from rnnkit.functional.elman import ELMAN_CELLS
from rnnkit.functional.gru import GRU_CELL
from rnnkit.functional.lstm import LSTM_CELL

KERNEL_WIDTH = library.lib.rnnkit_packed_width(-1) if _native.available() else 0
pytestmark = pytest.mark.skipif(not KERNEL_WIDTH, reason=f"no packed product for this CPU ({_native.why_not()})")
U = 2.0**-24  # float32 unit roundoff
ISA_AVX2, ISA_AVX512 = 1, 2


@pytest.fixture(autouse=True)
def packed_on(monkeypatch):
    """On, and for the small sizes of these tests too (the layers pack from 4M multiply-adds)."""
    monkeypatch.setattr(library, "_packed_width", KERNEL_WIDTH)
    monkeypatch.setattr(native_threads, "MIN_PACKED_WORK", 0)


def _bound(terms: int) -> float:
    """gamma_n = n u / (1 - n u): the relative bound on a float32 sum of n rounded terms."""
    return terms * U / (1 - terms * U)


def _product(A: np.ndarray, B: np.ndarray, C: np.ndarray, accumulate: bool) -> None:
    packed = native_threads.packed(B, 1)
    assert packed is not None
    M, K = A.shape
    library.lib.rnnkit_packed_product_f32(M, B.shape[1], K, A.ctypes.data, K, packed.ctypes.data, C.ctypes.data,
                                               C.shape[1], int(accumulate))


@pytest.fixture(params=[ISA_AVX512, ISA_AVX2], ids=["avx512", "avx2"])
def kernel(request):
    """Each kernel the CPU can run (the AVX2 one on AVX-512 CPUs too), the CPU's best after."""
    best = library.lib.rnnkit_packed_width(-1)
    width = library.lib.rnnkit_packed_width(request.param)
    if request.param == ISA_AVX512 and width != 48:
        library.lib.rnnkit_packed_width(ISA_AVX512)
        pytest.skip("this CPU has no AVX-512")
    monkey = pytest.MonkeyPatch()
    monkey.setattr(library, "_packed_width", width)
    yield width
    monkey.undo()
    assert library.lib.rnnkit_packed_width(ISA_AVX512) == best


SHAPES = [(1, 1, 1), (1, 7, 3), (3, 5, 20), (4, 128, 48), (7, 129, 49), (8, 300, 97), (9, 127, 200), (13, 64, 24),
          (17, 257, 96), (64, 512, 130), (65, 40, 10), (130, 33, 50), (5, 70, 80), (11, 130, 112)]


@pytest.mark.parametrize("transposed", [False, True], ids=["B", "W.T"])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_product_within_the_rounding_bound(kernel, shape, accumulate, transposed):
    """Every row count (tiles of 8, 4, 2, 1), widths that are no multiple of the panel, depths
    either side of the 128-term blocks, more rows than a 64-row block; B given as itself or as
    the transposed view of a weight matrix."""
    M, K, N = shape
    rng = np.random.default_rng(M * 1000 + K + N)
    A = rng.normal(size=(M, K)).astype(np.float32)
    B = np.ascontiguousarray(rng.normal(size=(N, K)).astype(np.float32).T) if not transposed else \
        rng.normal(size=(N, K)).astype(np.float32).T
    assert B.flags.c_contiguous != transposed or min(K, N) == 1
    start = rng.normal(size=(M, N)).astype(np.float32)
    C = start.copy()
    _product(A, B, C, accumulate)
    exact = A.astype(np.float64) @ B.astype(np.float64) + (start if accumulate else 0)
    magnitude = np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64) + (np.abs(start) if accumulate else 0)
    error = np.abs(C - exact)
    # K products each rounded once or fused, K - 1 (+1 with C) additions, the float32 result rounded
    assert np.all(error <= _bound(K + 2) * magnitude + 1e-45), float((error / (magnitude + 1e-30)).max())
    assert error.max() > 0 or K <= 2 or M * N == 1  # it computed in float32, not a copy of float64


@pytest.mark.parametrize("transposed", [False, True], ids=["B", "W.T"])
def test_a_last_panel_is_only_as_wide_as_its_columns(kernel, transposed):
    """Whole panels of 3 vectors, then the rest rounded up to whole vectors (one or two), and the
    pack writes exactly that many columns: nothing past them, zeros in the padding."""
    lanes = kernel // 3
    for N in (1, lanes, lanes + 1, 2 * lanes, kernel, kernel + 1, kernel + lanes + 1, 5 * kernel + 2 * lanes):
        columns = library.lib.rnnkit_packed_columns(N)
        assert columns == N // kernel * kernel + -(-(N % kernel) // lanes) * lanes
        K = 131  # two blocks of rows, the second short
        W = np.random.default_rng(N).normal(size=(N, K) if transposed else (K, N)).astype(np.float32) + 2
        B = W.T if transposed else W
        storage = np.full(columns * K + 64, np.nan, np.float32)
        library.lib.rnnkit_pack_f32(B.ctypes.data, K if transposed else N, int(transposed), K, N,
                                         storage.ctypes.data)
        assert np.isnan(storage[columns * K :]).all(), N
        packed = storage[: columns * K]
        assert not np.isnan(packed).any() and np.count_nonzero(packed == 0) == (columns - N) * K, N


def test_product_is_each_row_alone(kernel):
    """A row's result does not depend on which tile (8, 4, 2 or 1 rows) computed it: the scans'
    slices rely on it."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(15, 200)).astype(np.float32)
    B = rng.normal(size=(200, 100)).astype(np.float32)
    whole = np.zeros((15, 100), np.float32)
    _product(A, B, whole, False)
    for row in range(15):
        alone = np.zeros((1, 100), np.float32)
        _product(np.ascontiguousarray(A[row : row + 1]), B, alone, False)
        np.testing.assert_array_equal(alone[0], whole[row])


def test_packing_scope_packs_each_matrix_once():
    W = np.ones((12, 5), np.float32)
    assert native_threads.packed(W, 1) is not native_threads.packed(W, 1)
    with _native.packing():
        first = native_threads.packed(W, 1)
        assert native_threads.packed(W, 1) is first
        assert native_threads.packed(W.T, 1) is not first
    assert native_threads.packed(W, 1) is not first
    assert native_threads.packed(W.astype(np.float64), 1) is None
    assert native_threads.packed(np.ones((4, 6), np.float32)[:, ::2], 1) is None  # neither layout: BLAS path


def _layer(cell, batch, lengths, seed=0, steps=7, inputs=6, hidden=19, directions=2):
    rng = np.random.default_rng(seed)
    width = cell.gates * hidden
    x = rng.normal(size=(steps, batch, inputs)).astype(np.float32)
    initial = tuple(rng.normal(size=(directions, batch, hidden)).astype(np.float32) for _ in cell.state_names)
    W_xh = tuple(rng.normal(size=(width, inputs)).astype(np.float32) * 0.5 for _ in range(directions))
    W_hh = tuple(rng.normal(size=(width, hidden)).astype(np.float32) * 0.3 for _ in range(directions))
    biases = tuple(tuple(rng.normal(size=width).astype(np.float32) * 0.3 for _ in cell.bias_names)
                   for _ in range(directions))
    dout = rng.normal(size=(steps, batch, directions * hidden)).astype(np.float32)
    dfinal = tuple(rng.normal(size=(directions, batch, hidden)).astype(np.float32) for _ in cell.state_names)
    out, final, cache = recurrent.recurrent_layer_forward(cell, x, initial, W_xh, W_hh, biases, lengths, (False, True))
    dx, dinitial, grads = recurrent.recurrent_layer_backward(dout, dfinal, cache)
    return [out, *final, dx, *dinitial], [g for per_name in grads for g in per_name], len(cell.bias_names)


@pytest.mark.parametrize("cell", [ELMAN_CELLS["tanh"], ELMAN_CELLS["relu"], LSTM_CELL, GRU_CELL],
                         ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
@pytest.mark.parametrize("batch", [2, 9, 21])
@pytest.mark.parametrize("padded", [False, True])
def test_threaded_scans_equal_one_thread(cell, batch, padded, monkeypatch):
    """Slices of 8 rows (9: 8 + 1; 21: 8 + 8 + 5 on three threads), padding masks cut per slice,
    several BPTT blocks; the bias gradients within float32 rounding of a sum over rows."""
    lengths = np.arange(batch) % 7 + 1 if padded else None
    monkeypatch.setattr(recurrent, "_BLOCK_ROWS", 3 * batch)  # blocks of 3 steps
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1 << 62)
    one_values, one_grads, biases = _layer(cell, batch, lengths)
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1)
    monkeypatch.setattr(library, "blas_threads", lambda: 3)
    threaded = []
    original = native_threads.run_slices
    monkeypatch.setattr(native_threads, "run_slices",
                        lambda kernel, arguments, slices, **options: (
                            threaded.append(len(slices)), original(kernel, arguments, slices, **options)))
    values, grads, _ = _layer(cell, batch, lengths)
    assert max(threaded) == min(3, -(-batch // 8))
    for got, want in zip(values + grads[:-biases * 2], one_values + one_grads[:-biases * 2]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(grads[-biases * 2 :], one_grads[-biases * 2 :]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)




@pytest.mark.parametrize("cell", [ELMAN_CELLS["tanh"], LSTM_CELL, GRU_CELL], ids=["rnn-tanh", "lstm", "gru"])
@pytest.mark.parametrize("padded", [False, True])
def test_the_directions_scan_side_by_side(cell, padded, monkeypatch):
    """A bidirectional layer's two forward scans run in one call on two threads, each with the
    whole batch (not one after the other, each cut in two), with the same results as one thread."""
    batch = 16
    lengths = np.arange(batch) % 7 + 1 if padded else None
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1 << 62)
    one_values, one_grads, _ = _layer(cell, batch, lengths)
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1)
    monkeypatch.setattr(library, "blas_threads", lambda: 2)
    calls = []
    original = library.lib.rnnkit_parallel
    monkeypatch.setattr(library.lib, "rnnkit_parallel",
                        lambda kind, count, table, threads: (calls.append((kind, count)),
                                                             original(kind, count, table, threads)))
    values, grads, _ = _layer(cell, batch, lengths)
    forward = library.pool_kinds[{"rnn": "rnnkit_elman", "lstm": "rnnkit_lstm", "gru": "rnnkit_gru"}[cell.name] + "_forward_f32"]
    assert [count for kind, count in calls if kind == forward] == [2]
    for got, want in zip(values, one_values):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(grads, one_grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_side_by_side_scans_never_ask_for_more_threads_than_openblas_is_set_to(threads, monkeypatch):
    """One setting governs both libraries' threads: with OPENBLAS_NUM_THREADS=1 two directions run
    one after the other on the calling thread."""
    batch = 16
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1 << 62)
    one_values, _, _ = _layer(LSTM_CELL, batch, None)
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1)
    monkeypatch.setattr(library, "blas_threads", lambda: threads)
    asked = []
    original = library.lib.rnnkit_parallel
    monkeypatch.setattr(library.lib, "rnnkit_parallel",
                        lambda kind, count, table, wanted: (asked.append((count, wanted)),
                                                            original(kind, count, table, min(wanted, 2))))
    values, _, _ = _layer(LSTM_CELL, batch, None)
    assert asked and all(wanted <= threads for _, wanted in asked)
    for got, want in zip(values, one_values):
        np.testing.assert_array_equal(got, want)


def test_too_little_work_stays_on_blas(monkeypatch):
    monkeypatch.setattr(native_threads, "MIN_PACKED_WORK", 1000)
    W = np.ones((10, 10), np.float32)
    assert native_threads.packed(W, 9) is None and native_threads.packed(W, 10) is not None


@pytest.mark.parametrize("cell", [ELMAN_CELLS["tanh"], ELMAN_CELLS["sigmoid"], LSTM_CELL, GRU_CELL],
                         ids=["rnn-tanh", "rnn-sigmoid", "lstm", "gru"])
@pytest.mark.parametrize("padded", [False, True])
def test_packed_layers_equal_blas_layers(cell, padded, monkeypatch):
    """The whole layer (two directions, padding, BPTT in blocks, every gradient) with the packed
    product against the same layer on BLAS, within float32 rounding (as tests/_native/test_gated)."""
    batch = 11
    lengths = np.arange(batch) % 7 + 1 if padded else None
    monkeypatch.setattr(recurrent, "_BLOCK_ROWS", 3 * batch)
    packed_values, packed_grads, _ = _layer(cell, batch, lengths)
    monkeypatch.setattr(library, "_packed_width", 0)
    blas_values, blas_grads, _ = _layer(cell, batch, lengths)
    for got, want in zip(packed_values + packed_grads, blas_values + blas_grads):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.fixture
def workers_held():
    """parallel.c's workers see calls but never join one, as if they never started."""
    library.lib.rnnkit_pool_hold_workers(1)
    yield
    library.lib.rnnkit_pool_hold_workers(0)


@pytest.mark.parametrize("cell", [ELMAN_CELLS["tanh"], LSTM_CELL, GRU_CELL], ids=["rnn-tanh", "lstm", "gru"])
def test_a_call_finishes_when_no_worker_ever_joins(cell, monkeypatch, workers_held):
    """Progress never depends on a worker: with every worker held off, the calling thread runs all
    the slices itself (three per call here), with the same results."""
    monkeypatch.setattr(recurrent, "_BLOCK_ROWS", 3 * 21)
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1 << 62)
    library.lib.rnnkit_pool_hold_workers(0)
    one_values, one_grads, biases = _layer(cell, 21, None)
    library.lib.rnnkit_pool_hold_workers(1)
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1)
    monkeypatch.setattr(library, "blas_threads", lambda: 3)
    values, grads, _ = _layer(cell, 21, None)
    assert native_threads.pool_workers() >= 1  # the workers exist; they just never joined
    for got, want in zip(values + grads[:-biases * 2], one_values + one_grads[:-biases * 2]):
        np.testing.assert_array_equal(got, want)


def test_more_threads_than_the_machine_has_are_harmless(monkeypatch):
    """Asking for 8 threads on any machine: the pool starts what it is asked for, and extra workers
    only share the cores (OpenBLAS's pool, asked for more threads than it had, waited forever)."""
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1 << 62)
    one_values, _, _ = _layer(LSTM_CELL, 64, None)
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1)
    monkeypatch.setattr(library, "blas_threads", lambda: 8)
    for _ in range(20):
        values, _, _ = _layer(LSTM_CELL, 64, None)
        for got, want in zip(values, one_values):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("threads", [1, 2])
def test_product_in_row_blocks_on_threads(threads, monkeypatch):
    """rnnkit._native.product, the layers' input projection: rows cut into 64-row blocks over the
    threads, W given as itself (W.T read in place), an output with a row stride; accumulate adds."""
    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1)
    monkeypatch.setattr(library, "blas_threads", lambda: threads)
    rng = np.random.default_rng(threads)
    x = rng.normal(size=(203, 37)).astype(np.float32)
    W = rng.normal(size=(70, 37)).astype(np.float32)
    wide = rng.normal(size=(203, 90)).astype(np.float32)
    out, before = wide[:, 5:75], wide.copy()
    assert _native.product(x, W.T, out)
    exact = x.astype(np.float64) @ W.T.astype(np.float64)
    bound = _bound(39) * (np.abs(x).astype(np.float64) @ np.abs(W.T).astype(np.float64))
    assert np.all(np.abs(out - exact) <= bound)
    np.testing.assert_array_equal(wide[:, :5], before[:, :5])  # nothing written outside the view
    np.testing.assert_array_equal(wide[:, 75:], before[:, 75:])
    assert _native.product(x, W.T, out, accumulate=True)
    assert np.all(np.abs(out - 2 * exact) <= 2 * bound + _bound(1) * np.abs(2 * exact))
    assert not _native.product(x.astype(np.float64), W.T.astype(np.float64), out.astype(np.float64))
    assert not _native.product(x, W.T[:, :10], out)  # shapes that do not match: left to NumPy


def test_scans_from_several_python_threads_at_once(monkeypatch):
    """Four Python threads each running threaded scans (one call holds the pool at a time; the
    others run their slices on their own thread meanwhile): every result equals the same run alone."""
    import threading

    monkeypatch.setattr(native_threads, "MIN_SLICE_FLOPS", 1)
    monkeypatch.setattr(library, "blas_threads", lambda: 2)
    cells = [LSTM_CELL, GRU_CELL, ELMAN_CELLS["tanh"], LSTM_CELL]
    alone = [_layer(cell, 17, np.arange(17) % 7 + 1, seed=index) for index, cell in enumerate(cells)]
    together: dict[int, tuple] = {}
    errors = []

    def run(index: int) -> None:
        try:
            for _ in range(3):
                together[index] = _layer(cells[index], 17, np.arange(17) % 7 + 1, seed=index)
        except Exception as error:  # surfaced below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(cells))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(thread.is_alive() for thread in threads)
    for index, (values, grads, biases) in enumerate(alone):
        got_values, got_grads, _ = together[index]
        for got, want in zip(got_values + got_grads[:-biases * 2], values + grads[:-biases * 2]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("transposed", [False, True], ids=["B", "W.T"])
def test_parallel_packing_equals_one_thread(transposed, monkeypatch):
    """From 1M values the blocks of rows are packed on the pool's threads (each block its own
    memory): the same bytes as one thread, with a last block shorter than the others."""
    monkeypatch.setattr(library, "blas_threads", lambda: 2)
    K, N = 1000, 1100  # 8 blocks of 128 rows, the last of 104
    W = np.random.default_rng(0).normal(size=(N, K) if transposed else (K, N)).astype(np.float32)
    B = W.T if transposed else W
    parallel = native_threads.packed(B, 1)
    alone = np.empty_like(parallel)
    library.lib.rnnkit_pack_f32(B.ctypes.data, K if transposed else N, int(transposed), K, N, alone.ctypes.data)
    np.testing.assert_array_equal(parallel, alone)
    C, A = np.zeros((3, N), np.float32), np.ones((3, K), np.float32)
    library.lib.rnnkit_packed_product_f32(3, N, K, A.ctypes.data, K, parallel.ctypes.data, C.ctypes.data, N, 0)
    np.testing.assert_allclose(C, np.ones((3, K)) @ B.astype(np.float64), rtol=1e-4, atol=1e-3)


def _fresh_native(printed: str, **environment: str) -> subprocess.CompletedProcess:
    """``print(printed)`` in a new process whose rnnkit._native loads under ``environment`` (read at import)."""
    return subprocess.run([sys.executable, "-c", f"from rnnkit import _native; print({printed})"], capture_output=True,
                          text=True, timeout=120, env=os.environ | environment)


def _import_with(packed: str) -> subprocess.CompletedProcess:
    return _fresh_native("_native.packed_width(), _native.packed_kernel()", RNNKIT_PACKED=packed)


@pytest.mark.parametrize("packed, width, kernel", [("avx2", 24, "AVX2 (4 x 24 tiles)"), ("0", 0, "none"),
                                                   ("1", KERNEL_WIDTH, None)])
def test_the_environment_chooses_the_packed_kernel(packed, width, kernel):
    """RNNKIT_PACKED=avx2 runs the AVX2 kernel on an AVX-512 CPU too (what benchmarks/bench_rnn.py
    --as-avx2 measures); 0 turns the packed product off; 1 (the default) is the CPU's best."""
    result = _import_with(packed)
    assert result.returncode == 0, result.stderr
    got_width, got_kernel = result.stdout.split(" ", 1)
    assert int(got_width) == width
    assert kernel is None or got_kernel.strip() == kernel


def test_an_unknown_packed_kernel_is_refused_by_name():
    result = _import_with("avx999")
    assert result.returncode != 0
    assert "RNNKIT_PACKED='avx999': expected one of" in result.stderr and "'avx2'" in result.stderr


def test_small_scans_take_the_packed_product_where_openblas_packs_at_every_call():
    """OpenBLAS's Haswell kernels (every AVX2-only CPU) pack B at every call, where its SkylakeX
    ones multiply small matrices in place: there the packed product starts at 256K multiply-adds
    a call, not 4M (an LSTM at B=1, H=64 ran its forward 2x faster)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            has_avx512 = openblas.AVX512_FLAGS <= openblas.cpu_flags(file.read())
    except OSError:  # not Linux: Haswell only
        has_avx512 = False
    # Never SkylakeX kernels on a CPU without AVX-512: some OpenBLAS versions force them anyway.
    expected = {"Haswell": 1 << 18} | ({"SkylakeX": 1 << 22} if has_avx512 else {})
    for core, threshold in expected.items():
        result = _fresh_native("_native.openblas_core(), _native.threads.MIN_PACKED_WORK", OPENBLAS_CORETYPE=core)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [core, str(threshold)]
