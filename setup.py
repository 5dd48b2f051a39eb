"""The optional C kernels (rnnkit/_native/scan.c, gated.c, minimal.c, packed.c, parallel.c); everything else is in
pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and rnnkit runs its NumPy loops.
The library has no Python API (it is loaded with ctypes), hence no Windows build, whose linker
would ask for a module init function.
"""

import sys

from setuptools import Extension, setup

# -fno-trapping-math: the fused passes clamp, then divide (tanh_f32); with trapping math GCC may
# not evaluate both sides of a select unconditionally, and without AVX-512's masked operations it
# then left those loops scalar (the avx2 and x86-64-v3 clones: every AVX2-only CPU). It changes no
# value, only whether floating-point exception flags may be raised. tests/_native builds each
# clone with the same flags.
COMPILE_ARGS = ["-O3", "-fno-trapping-math"]

extensions = []
if sys.platform != "win32":
    sources = ["rnnkit/_native/scan.c", "rnnkit/_native/gated.c", "rnnkit/_native/minimal.c",
               "rnnkit/_native/packed.c", "rnnkit/_native/parallel.c"]
    extensions.append(Extension("rnnkit._native._scan", sources,
                                depends=["rnnkit/_native/kernels.h", "rnnkit/_native/pool_kernels.h"],
                                extra_compile_args=COMPILE_ARGS,
                                libraries=["m"], optional=True))
setup(ext_modules=extensions)
