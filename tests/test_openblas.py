"""OPENBLAS_CORETYPE as the command line chooses it: kept when set, SkylakeX only on AVX-512."""

import os
import subprocess
import sys

import pytest

from rnnkit import openblas

AVX512 = frozenset({"fpu", "sse2", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
AVX2_ONLY = frozenset({"fpu", "sse2", "avx", "avx2", "fma"})

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl
bogomips\t: 4800.00

processor\t: 1
flags\t\t: fpu sse2
"""


def test_cpu_flags_reads_the_first_processor():
    assert openblas.cpu_flags(CPUINFO) == AVX512
    assert openblas.cpu_flags("no flags here") == frozenset()


def test_unset_on_avx512_sets_skylakex():
    value, line = openblas.choose({}, AVX512)
    assert value == "SkylakeX" and "set by rnnkit" in line


def test_unset_without_avx512_sets_nothing():
    assert openblas.choose({}, AVX2_ONLY) == (None, "")
    assert openblas.choose({}, AVX512 - {"avx512bw"}) == (None, "")  # SkylakeX kernels need all five subsets


@pytest.mark.parametrize("flags", [AVX512, AVX2_ONLY])
@pytest.mark.parametrize("current", ["SkylakeX", "skylakex", "Cooperlake", "SapphireRapids", ""])
def test_a_set_value_is_kept_without_advice_when_it_fits(current, flags):
    assert openblas.choose({"OPENBLAS_CORETYPE": current}, flags) == (None, "")


def test_pre_avx512_kernels_on_an_avx512_cpu_are_kept_with_advice():
    value, line = openblas.choose({"OPENBLAS_CORETYPE": "Haswell"}, AVX512)
    assert value is None
    assert "OPENBLAS_CORETYPE=Haswell" in line and "kept" in line and "OPENBLAS_CORETYPE=SkylakeX" in line
    assert openblas.choose({"OPENBLAS_CORETYPE": "Haswell"}, AVX2_ONLY) == (None, "")


def test_configure_writes_the_environment_only_before_numpy(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    environ: dict[str, str] = {}
    monkeypatch.setitem(sys.modules, "numpy", sys.modules.get("numpy", object()))
    assert openblas.configure(environ, str(cpuinfo)) == "" and environ == {}  # too late: OpenBLAS is loaded
    monkeypatch.delitem(sys.modules, "numpy")
    assert "set by rnnkit" in openblas.configure(environ, str(cpuinfo))
    assert environ == {"OPENBLAS_CORETYPE": "SkylakeX"}
    assert openblas.configure({}, str(tmp_path / "missing")) == ""


def cpu_has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as file:
            return openblas.AVX512_FLAGS <= openblas.cpu_flags(file.read())
    except OSError:
        return False


def run_cli_module(environ):
    code = ("import os, sys; import rnnkit.cli.main; from rnnkit import _native; "
            "print(os.environ.get('OPENBLAS_CORETYPE', '(unset)'), _native.openblas_core() or '?')")
    result = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_command_line_applies_it_before_numpy_loads():
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    variable, core = run_cli_module(environ)
    if cpu_has_avx512():
        assert variable == "SkylakeX"
        assert core in ("SkylakeX", "?")  # '?': NumPy's BLAS is not its bundled OpenBLAS
    else:
        assert variable == "(unset)"
    variable, core = run_cli_module({**environ, "OPENBLAS_CORETYPE": "Haswell"})
    assert variable == "Haswell" and core in ("Haswell", "?")
