"""rnnkit's own executor of ONNX graphs: ``run(model, inputs) -> outputs``.

It walks the graph's nodes in order (ONNX graphs are topologically sorted), keeping every named
value in one dict: the initializers and the caller's inputs first, then each node's outputs. The
ops are the table of :mod:`rnnkit.interop.onnx.operators`: ``RNN``, ``LSTM`` and ``GRU`` with the
whole operator spec, on rnnkit's kernels where a node computes what rnnkit's cells do, and the
plain ops rnnkit's exporter emits around them.

What it refuses, always with the op, the node and what was expected: an op or an op domain it
does not have (``NotImplementedError``, listing the ops it has), an attribute it does not know
(``NotImplementedError``), an input the graph lacks or does not declare, an input of the wrong
element type, rank or size (``ValueError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnkit.interop.onnx._proto import load_model, onnx_module
from rnnkit.interop.onnx.operators import OPS

_DEFAULT_DOMAINS = ("", "ai.onnx")
# Errors an op raises about its inputs and attributes; the executor adds the node to the message.
_REPORTED = (NotImplementedError, ValueError, TypeError, IndexError)


def run(model: Any, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Execute an ONNX graph with NumPy and rnnkit's kernels.

    Parameters
    ----------
    model : an ``onnx.ModelProto``, a path to a ``.onnx`` file, or the serialized bytes.
    inputs : graph input name -> array (lists and scalars are converted). Every graph input
        without an initializer is required; an input named like an initializer replaces it.
        Arrays must have the element type the graph declares and, where it declares one, its
        rank and fixed sizes.

    Returns
    -------
    The graph outputs, in graph-output order, as NumPy arrays.

    Example::

        >>> Y, Y_h = run("lstm.onnx", {"X": x})   # x (T, B, I) float32
    """
    onnx = onnx_module()
    model = load_model(model)
    if not isinstance(inputs, Mapping):
        raise TypeError(f"inputs: expected a dict of input name -> array, got {type(inputs).__name__}")
    graph = model.graph
    opset = _opset(model)

    values: dict[str, Any] = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    if len(graph.sparse_initializer):
        raise NotImplementedError("sparse initializers: rnnkit's executor runs dense tensors only")
    values.update(_graph_inputs(graph, inputs, values))

    for index, node in enumerate(graph.node):
        outputs = _run_node(node, _describe(node, index), values, opset)
        values.update((name, value) for name, value in zip(node.output, outputs) if name)  # "": not wanted

    return [np.asarray(_read(values, output.name, "graph output")) for output in graph.output]


def _run_node(node: Any, where: str, values: dict[str, Any], opset: int) -> list[np.ndarray]:
    """One node's outputs, from the values computed so far; ``where`` names the node in errors."""
    operator = _operator(node, where, opset)
    attributes = _attributes(node, where)
    unknown = sorted(set(attributes) - set(operator.attributes))
    if unknown:
        known = ", ".join(operator.attributes) or "none"
        raise NotImplementedError(f"{where}: attribute {unknown[0]!r} is not one rnnkit's executor honours for "
                                  f"{node.op_type} (it knows: {known})")
    if node.op_type == "Split" and "split" not in attributes and not (len(node.input) > 1 and node.input[1]):
        # Before opset 18 a Split without sizes makes as many equal parts as the node has outputs.
        attributes.setdefault("num_outputs", len(node.output))
    inputs = [_read(values, name, where) if name else None for name in node.input]
    try:
        outputs = operator.run(inputs, attributes)
    except _REPORTED as error:
        # Ops name the input or attribute; add the node. Raised as the built-in class, since
        # subclasses (NumPy's AxisError) take other constructor arguments.
        base = next(cls for cls in _REPORTED if isinstance(error, cls))
        raise base(f"{where}: {error}") from error
    if len(node.output) > len(outputs):
        raise ValueError(f"{where}: the node names {len(node.output)} outputs, {node.op_type} makes {len(outputs)}")
    return outputs


def _opset(model: Any) -> int:
    """The version of the default ONNX domain the model imports."""
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            return int(entry.version)
    return int(onnx_module().defs.onnx_opset_version())


def _describe(node: Any, index: int) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{index} (unnamed)"


def _operator(node: Any, where: str, opset: int) -> Any:
    supported = ", ".join(sorted(OPS))
    if node.domain not in _DEFAULT_DOMAINS:
        raise NotImplementedError(f"{where}: op domain {node.domain!r} is not supported; rnnkit's executor runs "
                                  f"the default ONNX domain's {supported}")
    operator = OPS.get(node.op_type)
    if operator is None:
        raise NotImplementedError(f"{where}: op type {node.op_type!r} is not supported; rnnkit's executor runs "
                                  f"{supported}")
    if opset < operator.since:
        raise NotImplementedError(f"{where}: the graph imports opset {opset}, and rnnkit's executor implements "
                                  f"{node.op_type} as defined from opset {operator.since} on")
    return operator


def _attributes(node: Any, where: str) -> dict[str, Any]:
    """The node's attributes as plain Python values: strings decoded, tensors as arrays."""
    onnx = onnx_module()
    kinds = onnx.AttributeProto
    attributes: dict[str, Any] = {}
    for attribute in node.attribute:
        if attribute.ref_attr_name:
            raise NotImplementedError(f"{where}: attribute {attribute.name!r} refers to a function's attribute "
                                      f"({attribute.ref_attr_name!r}); rnnkit's executor runs plain graphs")
        value = onnx.helper.get_attribute_value(attribute)
        if attribute.type == kinds.TENSOR:
            value = onnx.numpy_helper.to_array(value)
        elif attribute.type == kinds.STRING:
            value = value.decode("utf-8")
        elif attribute.type == kinds.STRINGS:
            value = [entry.decode("utf-8") for entry in value]
        elif attribute.type in (kinds.INTS, kinds.FLOATS):
            value = list(value)
        attributes[attribute.name] = value
    return attributes


def _read(values: dict[str, Any], name: str, reader: str) -> Any:
    if name not in values:
        raise ValueError(f"{reader}: reads {name!r}, which no input, initializer or earlier node provides "
                         f"(ONNX graphs list their nodes in topological order)")
    return values[name]


def _graph_inputs(graph: Any, given: Mapping[str, Any], initializers: dict[str, Any]) -> dict[str, np.ndarray]:
    """The caller's inputs, checked against the graph's declarations; missing ones are an error
    unless an initializer provides a default."""
    declared = {value_info.name: value_info for value_info in graph.input}
    unknown = sorted(set(given) - set(declared) - set(initializers))
    if unknown:
        names = ", ".join(repr(name) for name in declared) or "none"
        raise ValueError(f"inputs: {unknown[0]!r} is not an input of the graph (its inputs: {names})")
    checked = {}
    for name, value_info in declared.items():
        if name not in given:
            if name not in initializers:
                raise ValueError(f"inputs: missing {name!r}, a graph input without a default; it expects "
                                 f"{_legend(*_declared_type(value_info))}")
            continue
        checked[name] = _check_input(name, given[name], *_declared_type(value_info))
    for name in set(given) - set(declared):  # an initializer the graph does not list as an input
        reference = initializers[name]
        checked[name] = _check_input(name, given[name], reference.dtype, reference.shape)
    return checked


def _declared_type(value_info: Any) -> tuple[np.dtype | None, tuple[int | str | None, ...] | None]:
    """``(dtype, dims)`` a graph input declares; None where it does not (dims: an int for a fixed
    size, the name of a symbolic one, None for an unnamed one)."""
    onnx = onnx_module()
    kind = value_info.type.WhichOneof("value")
    if kind is None:  # no type declared at all
        return None, None
    if kind != "tensor_type":
        raise NotImplementedError(f"graph input {value_info.name!r}: {kind} values are not supported, only tensors")
    tensor_type = value_info.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type) if tensor_type.elem_type else None
    if not tensor_type.HasField("shape"):
        return dtype, None
    dims = tuple(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
                 for dim in tensor_type.shape.dim)
    return dtype, dims


def _legend(dtype: np.dtype | None, dims: tuple[int | str | None, ...] | None) -> str:
    kind = f"a {dtype} tensor" if dtype is not None else "a tensor"
    if dims is None:
        return kind
    shape = "(" + ", ".join("?" if dim is None else str(dim) for dim in dims) + ("," if len(dims) == 1 else "") + ")"
    return f"{kind} of rank {len(dims)}, shape {shape}"


def _check_input(name: str, value: Any, dtype: np.dtype | None,
                 dims: tuple[int | str | None, ...] | None) -> np.ndarray:
    array = np.asarray(value)
    wrong_type = dtype is not None and array.dtype != dtype
    wrong_rank = dims is not None and array.ndim != len(dims)
    if wrong_type or wrong_rank:
        raise ValueError(f"input {name!r}: expected {_legend(dtype, dims)}, got {array.dtype} with shape {array.shape}")
    for axis, (want, got) in enumerate(zip(dims or (), array.shape)):
        if isinstance(want, int) and want != got:
            raise ValueError(f"input {name!r}: expected size {want} on axis {axis} ({_legend(dtype, dims)}), "
                             f"got shape {array.shape}")
    return array

