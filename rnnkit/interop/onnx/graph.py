"""A small builder of ONNX graphs: named values in, nodes appended in order, a model out.

What rnnkit's exporters share: initializers from NumPy arrays, fresh names for intermediate
values, typed graph inputs and outputs with symbolic dimensions, and one opset for every model
rnnkit writes. Nothing here knows about recurrent layers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.interop.onnx._proto import onnx_module

# Opset 21: every op rnnkit emits has its current form there (axes as inputs for Squeeze,
# Unsqueeze, Slice, Split, ReduceSum, ReduceMax), and onnxruntime 1.18 onward runs it.
OPSET = 21
IR_VERSION = 10

Dim = int | str


def tensor_type(dtype: np.dtype | type) -> int:
    """The ONNX element type of a NumPy dtype (float32, float64, int32, int64, bool)."""
    onnx = onnx_module()
    dtype = np.dtype(dtype)
    try:
        return onnx.helper.np_dtype_to_tensor_dtype(dtype)
    except (KeyError, TypeError, ValueError):
        raise TypeError(f"dtype: ONNX export supports float32, float64, int32, int64 and bool, got {dtype}") from None


class GraphBuilder:
    """Collects the nodes, initializers, inputs and outputs of one ONNX graph.

    ``float_dtype`` is the dtype of the graph's real values (the model's). ``value(name)`` hands
    out unused names; ``add(op, inputs, **attributes)`` appends a node and returns its output name
    (or names, with ``outputs=n``); ``array(values, hint)`` stores an initializer. ``model()``
    assembles and checks the result.
    """

    def __init__(self, name: str, float_dtype: np.dtype | type = np.float32) -> None:
        self.name = name
        self.float_dtype = np.dtype(float_dtype)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self._taken: set[str] = set()

    def value(self, hint: str) -> str:
        """A name not used yet in this graph, ``hint`` itself if free."""
        name, number = hint, 1
        while name in self._taken:
            name, number = f"{hint}_{number}", number + 1
        self._taken.add(name)
        return name

    def input(self, name: str, dtype: np.dtype | type, shape: Sequence[Dim]) -> str:
        onnx = onnx_module()
        self._claim(name)
        self.inputs.append(onnx.helper.make_tensor_value_info(name, tensor_type(dtype), list(shape)))
        return name

    def output(self, value: str, name: str, dtype: np.dtype | type, shape: Sequence[Dim]) -> str:
        """Expose ``value`` as the graph output ``name`` (through an Identity if the names differ)."""
        onnx = onnx_module()
        if value != name:
            self._claim(name)
            self.nodes.append(onnx.helper.make_node("Identity", [value], [name], name=f"{name}_identity"))
        self.outputs.append(onnx.helper.make_tensor_value_info(name, tensor_type(dtype), list(shape)))
        return name

    def array(self, values: np.ndarray | Sequence[int] | Sequence[float], hint: str,
              dtype: np.dtype | type | None = None) -> str:
        """An initializer holding ``values`` (lists of ints become int64)."""
        onnx = onnx_module()
        values = np.asarray(values, dtype=dtype if dtype is not None else (np.int64 if _all_ints(values) else None))
        name = self.value(hint)
        self.initializers.append(onnx.numpy_helper.from_array(values.copy(order="C"), name))  # keeps 0-d as 0-d
        return name

    def add(self, op: str, inputs: Sequence[str], hint: str | None = None, outputs: int = 1,
            **attributes: Any) -> Any:
        """Append an ``op`` node reading ``inputs`` ("" for an absent optional input); returns its
        output name, or a list of ``outputs`` names."""
        onnx = onnx_module()
        base = hint or op.lower()
        names = [self.value(base if outputs == 1 else f"{base}_{k}") for k in range(outputs)]
        node_name = self.value(f"{base}_node")
        self.nodes.append(onnx.helper.make_node(op, list(inputs), names, name=node_name, **attributes))
        return names[0] if outputs == 1 else names

    def model(self, doc: str = "", metadata: dict[str, Any] | None = None) -> Any:
        """The checked ``onnx.ModelProto``; ``metadata`` is stored as JSON strings in
        ``metadata_props`` (what :func:`read_metadata` returns)."""
        onnx = onnx_module()
        graph = onnx.helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers,
                                       doc_string=doc)
        model = onnx.helper.make_model(graph, producer_name="rnnkit", ir_version=IR_VERSION,
                                       opset_imports=[onnx.helper.make_opsetid("", OPSET)])
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = f"rnnkit.{key}", json.dumps(value)
        onnx.checker.check_model(model, full_check=True)
        return model

    def _claim(self, name: str) -> None:
        if name in self._taken:
            raise ValueError(f"the graph already has a value named {name!r}")
        self._taken.add(name)


def read_metadata(model: Any) -> dict[str, Any]:
    """The ``rnnkit.*`` entries of a model's ``metadata_props``, decoded (empty for other producers)."""
    found = {}
    for entry in model.metadata_props:
        if entry.key.startswith("rnnkit."):
            try:
                found[entry.key[len("rnnkit."):]] = json.loads(entry.value)
            except json.JSONDecodeError:
                raise ValueError(f"model: metadata {entry.key!r} is not valid JSON: {entry.value[:80]!r}") from None
    return found


def save(model: Any, path: Any) -> None:
    """Write ``model`` to ``path`` all or nothing, as checkpoints are written."""
    from rnnkit.io.checkpoint import write_bytes

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path: {path} is a directory; give a file name such as {path / 'model.onnx'}")
    write_bytes(path, model.SerializeToString())


def _all_ints(values: Any) -> bool:
    array = np.asarray(values)
    return array.size == 0 or array.dtype.kind in "iu"
