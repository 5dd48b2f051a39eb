"""The argument lists of every C function the loader binds, written once.

Codes: ``p`` a pointer, ``s`` an int64, ``i`` an int. A ``(T, B, W)`` array travels as ``pss``
(data, time stride, row stride, in elements), a ``(B, W)`` one as ``ps`` (data, row stride) or
``p`` (contiguous). ctypes' argument types follow from this table (:func:`ctypes_arguments`);
the functions that run on the pool's threads (``RNNKIT_POOL_KERNELS`` in ``kernels.h``) are
also called from ``parallel.c`` with one int64 per argument, and the loader checks that the C
table gives each of them as many arguments as this one (:mod:`rnnkit._native.library`).
"""

from __future__ import annotations

import ctypes

# Name (without the rnnkit_ prefix and the _f32/_f64 suffix where both exist) -> (arguments, result).
TYPED: dict[str, tuple[str, str | None]] = {
    # scan.c: the Elman cell's loops
    "scan_forward": ("pss" + "ppppp" + "ssss" + "i", None),
    "scan_backward": ("pss" * 3 + "pppp" + "sss" + "ii", None),
    "transpose": ("ps" + "ps" + "ss", None),
    # gated.c: the LSTM's and GRU's loops
    "lstm_forward": ("pss" * 3 + "pppppp" + "ssss", None),
    "lstm_backward": ("pss" * 5 + "ps" + "ppppp" + "sss" + "i", None),
    "gru_forward": ("pss" * 3 + "ppppppp" + "ssss", None),
    "gru_backward": ("pss" * 6 + "ps" + "ppppp" + "sss" + "i", None),
}
FLOAT32_ONLY: dict[str, tuple[str, str | None]] = {
    # packed.c: the product against weights packed once
    "packed_product_f32": ("sss" + "ps" + "p" + "ps" + "i", None),
    "pack_f32": ("ps" + "i" + "ss" + "p", None),
    "pack_blocks_f32": ("ps" + "i" + "ss" + "p" + "ss", None),
}
UNTYPED: dict[str, tuple[str, str | None]] = {
    "init": ("pp", None),
    "packed_width": ("i", "s"),
    "pack_depth": ("", "s"),
    "packed_columns": ("s", "s"),
    # parallel.c: the pool
    "parallel": ("i" + "s" + "p" + "i", None),
    "argument_count": ("i", "s"),
    "kernel_name": ("i", "c"),
    "pool_workers": ("", "i"),
    "pool_hold_workers": ("i", None),
    "set_openblas_threads": ("pp", "i"),
    "openblas_awake": ("", "i"),
}
DTYPE_SUFFIXES = ("f32", "f64")

_CTYPES = {"p": ctypes.c_void_p, "s": ctypes.c_int64, "i": ctypes.c_int, "c": ctypes.c_char_p}


def symbols() -> dict[str, tuple[str, str | None]]:
    """Every C symbol the loader binds, with its argument and result codes."""
    table = {f"rnnkit_{name}_{suffix}": signature for name, signature in TYPED.items() for suffix in DTYPE_SUFFIXES}
    table |= {f"rnnkit_{name}": signature for name, signature in (FLOAT32_ONLY | UNTYPED).items()}
    return table


def ctypes_arguments(codes: str) -> list[type]:
    """The ctypes argument types of an argument code string."""
    return [_CTYPES[code] for code in codes]


def ctypes_result(code: str | None) -> type | None:
    return None if code is None else _CTYPES[code]
