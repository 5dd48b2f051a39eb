"""ONNX for rnnkit: export modules and trained task models, import them back, and execute the
recurrent operators with the whole ONNX spec on rnnkit's own kernels.

``to_onnx`` (:mod:`.export`) writes ``RNN`` / ``LSTM`` / ``GRU`` modules as graphs onnxruntime
runs; ``from_onnx`` (:mod:`.importer`) reads such graphs back into modules; ``run``
(:mod:`.executor`) executes graphs of ``RNN``, ``LSTM`` and ``GRU`` nodes, and the few other ops
rnnkit's exports emit, attribute for attribute. Needs the ``onnx`` extra (``pip install
"rnnkit[onnx]"``); ``import rnnkit`` never imports onnx.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {"run": "executor", "to_onnx": "export", "from_onnx": "importer", "export_model": "models"}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    # Each entry point loads its own module on first use, so that the executor does not pay for
    # the exporter's imports and the other way round.
    if name in _HOMES:
        return getattr(import_module(f"rnnkit.interop.onnx.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'rnnkit.interop.onnx' has no attribute {name!r}")
