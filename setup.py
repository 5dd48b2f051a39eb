"""The optional C kernels (rnnkit/_native/scan.c, gated.c); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and rnnkit runs its NumPy loops.
The library has no Python API (it is loaded with ctypes), hence no Windows build, whose linker
would ask for a module init function.
"""

import sys

from setuptools import Extension, setup

extensions = []
if sys.platform != "win32":
    extensions.append(Extension("rnnkit._native._scan", ["rnnkit/_native/scan.c", "rnnkit/_native/gated.c"],
                                depends=["rnnkit/_native/kernels.h"], extra_compile_args=["-O3"],
                                libraries=["m"], optional=True))
setup(ext_modules=extensions)
