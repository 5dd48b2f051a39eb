"""Loading the compiled library (``rnnkit/_native/library.py``): not under any skip, so that a run
whose kernels did not build or load says so instead of skipping every kernel test."""

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit import _native
from rnnkit._native import library, signatures


def test_required_kernels_are_loaded():
    """CI runs the tests with RNNKIT_NATIVE=require: there the kernels must have built and loaded
    (the import would have failed otherwise; this says so by name)."""
    if os.environ.get("RNNKIT_NATIVE", "").strip().lower() != "require":
        pytest.skip("RNNKIT_NATIVE=require is not set: the NumPy loops are an accepted fallback")
    assert _native.available(), _native.why_not()


@pytest.mark.skipif(sys.platform != "linux", reason="built and checked on Linux")
def test_loaded_where_numpy_bundles_openblas():
    """On Linux with NumPy's wheel and a compiler at install time the kernels load."""
    if library.numpy_openblas() is None:
        pytest.skip("NumPy's BLAS is not its bundled OpenBLAS")
    assert _native.available() or "not built" in _native.why_not(), _native.why_not()


def _import_with(**environment: str) -> subprocess.CompletedProcess:
    code = "from rnnkit import _native; print(_native.available(), repr(_native.why_not()))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=os.environ | environment)


def test_native_off_by_environment_and_unknown_values_refused():
    off = _import_with(RNNKIT_NATIVE="0")
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip() == "False 'RNNKIT_NATIVE=0 is set'"
    unknown = _import_with(RNNKIT_NATIVE="yes please")
    assert unknown.returncode != 0
    assert "RNNKIT_NATIVE='yes please': expected one of 1, 0, require" in unknown.stderr


def test_require_turns_a_missing_library_into_an_import_error(monkeypatch):
    monkeypatch.setattr(library, "_why_not", library._why_not)  # restored after _start below
    monkeypatch.setattr(library, "_load", lambda: "the C kernels were not built at install time (no C compiler?)")
    monkeypatch.setenv("RNNKIT_NATIVE", "require")
    with pytest.raises(ImportError, match=r"RNNKIT_NATIVE=require, but the compiled kernels can't be used: the C "
                                          r"kernels were not built"):
        library._start()
    monkeypatch.setenv("RNNKIT_NATIVE", "1")
    library._start()  # the default: the NumPy loops, no error
    assert library._why_not.startswith("the C kernels were not built")


@pytest.mark.skipif(not _native.available(), reason="no compiled library to check")
def test_the_signature_table_is_checked_against_the_pool_kernels(monkeypatch):
    """The built library's pool (RNNKIT_POOL_KERNELS) and signatures.py name the same kernels in
    the same order with the same argument counts; a mismatch is found at load, by name, not at a
    crash."""
    assert library.pool_kinds == {f"rnnkit_{name}": kind for kind, name in enumerate(signatures.POOL_KERNELS)}
    for name, kind in library.pool_kinds.items():
        assert library.lib.rnnkit_argument_count(kind) == len(signatures.symbols()[name][0])
    fresh = ctypes.CDLL(library.lib._name)  # its own function objects: the loaded ones keep their types
    assert library._bind(fresh) == ""
    codes, result = signatures.TYPED["lstm_forward"]
    monkeypatch.setitem(signatures.TYPED, "lstm_forward", (codes + "s", result))
    assert library._bind(ctypes.CDLL(library.lib._name)) == (
        "the compiled pool_kernels.h gives rnnkit_lstm_forward_f32 19 arguments, signatures.py 20 "
        "(stale build? reinstall rnnkit)")
    monkeypatch.setitem(signatures.TYPED, "lstm_forward", (codes, result))
    library._bind(library.lib)  # pool_kinds as before


def test_kernel_lookup_follows_dtype_and_switch():
    if not _native.available():
        assert library.kernel("elman_forward", np.dtype(np.float32)) is None
        return
    assert library.kernel("elman_forward", np.dtype(np.float32)).__name__ == "rnnkit_elman_forward_f32"
    assert library.kernel("lstm_backward", np.dtype(np.float64)).__name__ == "rnnkit_lstm_backward_f64"
    assert library.kernel("elman_forward", np.dtype(np.float16)) is None
    with _native.disabled():
        assert library.kernel("elman_forward", np.dtype(np.float32)) is None


def test_pool_kernels_h_is_written_from_the_signature_table():
    """parallel.c's kinds and calls are pool_kernels.h as signatures.py writes it: a change to the
    table without rewriting the file fails here (python rnnkit/_native/signatures.py >
    rnnkit/_native/pool_kernels.h)."""
    header = Path(signatures.__file__).with_name("pool_kernels.h").read_text()
    assert header == signatures.pool_header()
    assert "case LSTM_FORWARD:\n        rnnkit_lstm_forward_f32(P(0), a[1], a[2], P(3)," in header
    assert header.count("case ") == len(signatures.POOL_KERNELS)
