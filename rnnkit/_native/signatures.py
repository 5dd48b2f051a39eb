"""The argument lists of every C function the loader binds, written once.

Codes: ``p`` a pointer, ``s`` an int64, ``i`` an int. A ``(T, B, W)`` array travels as ``pss``
(data, time stride, row stride, in elements), a ``(B, W)`` one as ``ps`` (data, row stride) or
``p`` (contiguous). ctypes' argument types follow from this table (:func:`ctypes_arguments`).
The functions that run on the pool's threads (:data:`POOL_KERNELS`) are called by ``parallel.c``
with one int64 per argument: its kinds and those calls are ``pool_kernels.h``, which this module
writes (``python rnnkit/_native/signatures.py > rnnkit/_native/pool_kernels.h``; a test checks that
the file is up to date), and the C compiler checks each call against the prototype in ``kernels.h``.
The loader checks the built library's kinds against this table (:mod:`rnnkit._native.library`).
"""

from __future__ import annotations

import ctypes

# Name (without the rnnkit_ prefix and the _f32/_f64 suffix where both exist) -> (arguments, result).
TYPED: dict[str, tuple[str, str | None]] = {
    # scan.c: the Elman cell's loops
    "elman_forward": ("pss" + "ppppp" + "ssss" + "i", None),
    "elman_backward": ("pss" * 3 + "pppp" + "sss" + "ii", None),
    "transpose": ("ps" + "ps" + "ss", None),
    # gated.c: the LSTM's and GRU's loops
    "lstm_forward": ("pss" * 3 + "pppppp" + "ssss", None),
    "lstm_backward": ("pss" * 5 + "ps" + "ppppp" + "sss" + "i", None),
    "gru_forward": ("pss" * 3 + "ppppppp" + "ssss", None),
    "gru_backward": ("pss" * 6 + "ps" + "ppppp" + "sss" + "i", None),
    # minimal.c: the minGRU's and minLSTM's loops
    "mingru_forward": ("pss" * 2 + "ppp" + "ssss", None),
    "mingru_backward": ("pss" * 4 + "ps" + "pp" + "sss", None),
    "minlstm_forward": ("pss" * 3 + "ppp" + "ssss", None),
    "minlstm_backward": ("pss" * 5 + "ps" + "pp" + "sss", None),
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
#: The kernels ``rnnkit_parallel`` runs, a kind each (its number: the place here), float32 only.
POOL_KERNELS = ("lstm_forward_f32", "lstm_backward_f32", "gru_forward_f32", "gru_backward_f32",
                "packed_product_f32", "elman_forward_f32", "elman_backward_f32", "pack_blocks_f32")

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


def pool_header() -> str:
    """The text of ``pool_kernels.h``: ``RNNKIT_POOL_KERNELS`` (kind, function, argument count)
    and ``run_slice``, which calls a kind's function with its arguments from an int64 array."""
    table = symbols()
    rows, cases = [], []
    for name in POOL_KERNELS:
        symbol, kind = f"rnnkit_{name}", name.removesuffix("_f32").upper()
        codes = table[symbol][0]
        rows.append(f"X({kind}, {symbol}, {len(codes)})")
        casts = {"p": "P({})", "s": "a[{}]", "i": "(int)a[{}]"}
        call = _wrap(f"{symbol}(", [casts[code].format(k) for k, code in enumerate(codes)], ");", indent=8)
        cases.append(f"    case {kind}:\n{call}\n        break;")
    macro = "".join(f"    {row}{' ' * (95 - len(row))}\\\n" for row in rows[:-1]) + f"    {rows[-1]}\n"
    return f"""/* Written by rnnkit/_native/signatures.py from its table (python rnnkit/_native/signatures.py >
 * rnnkit/_native/pool_kernels.h): change the table, not this file. The kernels that run on the
 * pool's threads (parallel.c), each called with one int64 per argument; the compiler checks each
 * call against the prototype in kernels.h. */
#ifndef RNNKIT_POOL_KERNELS_H
#define RNNKIT_POOL_KERNELS_H

#include <stdint.h>

#include "kernels.h"

/* kind, function, arguments per call */
#define RNNKIT_POOL_KERNELS(X)                                                                     \\
{macro}
enum pool_kernel {{
#define KIND(kind, symbol, count) kind,
    RNNKIT_POOL_KERNELS(KIND)
#undef KIND
    KERNEL_KINDS
}};

#define P(i) ((void *)(intptr_t)a[i])
static void run_slice(int kind, const int64_t *a) {{
    switch (kind) {{
{chr(10).join(cases)}
    }}
}}
#undef P

#endif
"""


def _wrap(head: str, items: list[str], tail: str, indent: int, width: int = 100) -> str:
    """``head`` + ``items`` joined by ", " + ``tail``, broken into lines of at most ``width``."""
    lines, line = [], " " * indent + head
    for k, item in enumerate(items):
        piece = item + (tail if k == len(items) - 1 else ",")
        if len(line) + len(piece) + 1 > width:
            lines.append(line.rstrip())
            line = " " * (indent + len(head)) + piece
        else:
            line += ("" if line.endswith("(") else " ") + piece
    return "\n".join(lines + [line])


if __name__ == "__main__":
    print(pool_header(), end="")
