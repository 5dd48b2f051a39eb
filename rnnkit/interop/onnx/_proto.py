"""The onnx package, imported on first use with an error that says how to install it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def onnx_module() -> Any:
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('rnnkit.interop.onnx needs the onnx package: pip install "rnnkit[onnx]"') from error
    return onnx


def load_model(model: Any) -> Any:
    """An ``onnx.ModelProto`` from a ModelProto, a path, or serialized bytes."""
    onnx = onnx_module()
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as error:
            raise ValueError(f"model: the bytes are not a serialized ONNX model ({error})") from None
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"model: no ONNX file at {path}")
        try:
            return onnx.load(str(path))
        except Exception as error:
            raise ValueError(f"model: {path} is not a readable ONNX model ({type(error).__name__}: {error})") from None
    raise TypeError(f"model: expected an onnx.ModelProto, a path or bytes, got {type(model).__name__}")
