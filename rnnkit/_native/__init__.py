"""Compiled per-step loops of the recurrence, with NumPy's own BLAS, and the threads they run on.

- :mod:`~rnnkit._native.library`: loading the C library, what this machine can run
  (:func:`available`, :func:`why_not`, :func:`packed_kernel`), ``RNNKIT_NATIVE`` and ``RNNKIT_PACKED``;
- :mod:`~rnnkit._native.signatures`: every C function's argument list, written once;
- :mod:`~rnnkit._native.threads`: slices over the batch on ``parallel.c``'s pool, weights packed
  once (``packed.c``), the packed input projections (:func:`product`);
- :mod:`~rnnkit._native.scans`: the Elman, LSTM, GRU, minGRU and minLSTM loops' Python side;
- :mod:`~rnnkit._native.blas`: tiled transposes, gradient products accumulated in place.

``RNNKIT_PACKED=0`` keeps every step on BLAS (as float64 always is); ``RNNKIT_PACKED=avx2`` runs the
AVX2 kernel on an AVX-512 CPU too (what an AVX2-only CPU runs: ``benchmarks/bench_rnn.py --as-avx2``).
"""

from rnnkit._native.blas import add_product, transposed
from rnnkit._native.library import available, disabled, openblas_core, packed_kernel, packed_width, why_not
from rnnkit._native.scans import (
                                  elman_scan_backward,
                                  elman_scan_forward,
                                  gru_scan_backward,
                                  gru_scan_forward,
                                  lstm_scan_backward,
                                  lstm_scan_forward,
                                  minimal_scan_backward,
                                  minimal_scan_forward,
)
from rnnkit._native.threads import packing, product, together

__all__ = ["add_product", "available", "disabled", "elman_scan_backward", "elman_scan_forward", "gru_scan_backward",
           "gru_scan_forward", "lstm_scan_backward", "lstm_scan_forward", "minimal_scan_backward",
           "minimal_scan_forward", "openblas_core", "packed_kernel", "packed_width", "packing", "product", "together",
           "transposed", "why_not"]
