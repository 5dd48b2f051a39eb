"""The stress test of the threaded paths (``stress_threads.py``), bounded: each run in its own
process with a time limit, after which every thread's stack is printed and the test fails.

10,000 threaded calls with OpenBLAS as the process has it, and 2,000 each with one OpenBLAS thread,
with OpenBLAS's Haswell kernels (every AVX2-only CPU's) and with torch's thread pool in the
process. A run takes seconds; the limit is minutes.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

from rnnkit import _native
from rnnkit._native import library

SCRIPT = os.path.join(os.path.dirname(__file__), "stress_threads.py")
LIMIT_SECONDS = 240

pytestmark = pytest.mark.skipif(not (_native.available() and library.packed_width()),
                                reason=f"no packed kernels to stress ({_native.why_not() or 'this CPU'})")


def _stress(calls: int, *options: str, **environment: str) -> dict:
    # faulthandler prints every thread's stack if the run outlives its limit; then it is killed.
    code = (f"import faulthandler, runpy, sys; faulthandler.dump_traceback_later({LIMIT_SECONDS - 10}, exit=True); "
            f"sys.argv = [{SCRIPT!r}, '--calls', '{calls}', *{list(options)!r}]; runpy.run_path({SCRIPT!r}, "
            "run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT_SECONDS,
                            env=os.environ | environment)
    assert result.returncode == 0, f"stress run failed or hung:\n{result.stdout[-3000:]}\n{result.stderr[-20000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["threaded"] >= calls, report
    return report


def test_ten_thousand_threaded_calls_finish():
    _stress(10_000, "--sleepy", "0.02")


@pytest.mark.parametrize("threads", ["1", "3"])
def test_threaded_calls_finish_whatever_openblas_is_told(threads):
    _stress(2_000, OPENBLAS_NUM_THREADS=threads)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS's Haswell kernels are x86-64's")
def test_threaded_calls_finish_on_haswell_kernels():
    report = _stress(2_000, OPENBLAS_CORETYPE="Haswell")
    assert report["openblas_core"] == "Haswell"


def test_threaded_calls_finish_with_torch_in_the_process():
    pytest.importorskip("torch")
    _stress(2_000, "--torch")
