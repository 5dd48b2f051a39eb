"""``OPENBLAS_CORETYPE``: which kernels NumPy's bundled OpenBLAS runs, chosen before NumPy loads.

OpenBLAS reads the variable once, when NumPy imports it, so :func:`configure` must run before
anything imports NumPy; the command line calls it first thing (``rnnkit.cli.main``), and so does
``benchmarks/bench_rnn.py``, which therefore measures what the command line runs.

Why it matters: the float32 matrix products that bound an RNN's training run on OpenBLAS's
AVX-512 (SkylakeX) kernels at 1.7-2x the throughput of its AVX2 (Haswell) ones on the CPUs
measured (README, "Speed"). The rule:

- the variable is set (by the user, or by the machine's environment): it is kept, always. If it
  names pre-AVX-512 kernels on a CPU that has AVX-512, the training log says so, once, and how to
  change it. Set but empty means OpenBLAS's own detection (``OPENBLAS_CORETYPE= rnnkit ...``);
- it is unset and the CPU has the AVX-512 subsets the SkylakeX kernels use: it is set to SkylakeX
  (OpenBLAS's own detection usually picks those kernels, or kernels with the same float32 GEMM,
  on such CPUs; this covers the ones it doesn't recognise);
- otherwise nothing is set: never AVX-512 kernels on a CPU without AVX-512.

NumPy itself stays the only runtime requirement: nothing here imports it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

VARIABLE = "OPENBLAS_CORETYPE"
# What OpenBLAS's SkylakeX kernels execute (its own cpuid check asks for the same subsets).
AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
# OpenBLAS core names whose float32 GEMM is the AVX-512 one (lower case: OpenBLAS compares names
# case-insensitively); the only ones that also multiply small matrices without packing them
# ("direct sgemm"), which rnnkit._native's threshold for its packed product depends on.
AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})

decision = ""  # what configure() did or advises, in words; '' when there is nothing to say


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The instruction-set flags of the first processor in ``/proc/cpuinfo`` text (empty if none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def choose(environ: MutableMapping[str, str], flags: frozenset[str]) -> tuple[str | None, str]:
    """The value to set (or None to leave the environment alone) and a line saying why.

    The line is '' where all is as it should be: nothing set, nothing to advise.
    """
    has_avx512 = AVX512_FLAGS <= flags
    current = environ.get(VARIABLE)
    if current is None:
        if has_avx512:
            return "SkylakeX", f"{VARIABLE}=SkylakeX set by rnnkit (the CPU has AVX-512; set {VARIABLE} yourself to choose)"
        return None, ""
    core = current.strip().lower()
    if has_avx512 and core and core not in AVX512_CORES:
        return None, (f"{VARIABLE}={current} (from the environment, kept) runs NumPy's matrix products on "
                      f"pre-AVX-512 kernels, but this CPU has AVX-512: {VARIABLE}=SkylakeX measured 1.7-2x "
                      "their float32 throughput (README, Speed)")
    return None, ""


def configure(environ: MutableMapping[str, str] = os.environ, cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """Apply :func:`choose` to ``environ`` unless NumPy is already loaded; return the line.

    Too late once NumPy is imported (OpenBLAS has read the variable): then nothing is set and ''
    is returned. On systems without ``/proc/cpuinfo`` nothing is known and nothing is set.
    """
    global decision
    if "numpy" in sys.modules:
        decision = ""
        return decision
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as file:
            flags = cpu_flags(file.read())
    except OSError:
        flags = frozenset()
    value, decision = choose(environ, flags)
    if value is not None:
        environ[VARIABLE] = value
    return decision


# What MPI launchers tell each process about the processes on its machine: Open MPI, MPICH /
# Intel MPI (Hydra), MVAPICH.
LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def share_threads(environ: MutableMapping[str, str] = os.environ, cores: int | None = None) -> int | None:
    """Under ``mpiexec`` with several processes on this machine, give each its share of the
    cores as BLAS threads (at least one), unless the thread count is set already: N processes
    each running as many threads as there are cores would fight over them. Before NumPy loads;
    returns the threads set, or None."""
    local = next((int(environ[v]) for v in LOCAL_SIZE_VARIABLES if environ.get(v, "").isdigit()), 1)
    if local <= 1 or any(v in environ for v in THREAD_VARIABLES) or "numpy" in sys.modules:
        return None
    threads = max(1, (cores or os.cpu_count() or 1) // local)
    for variable in THREAD_VARIABLES:
        environ[variable] = str(threads)
    return threads

