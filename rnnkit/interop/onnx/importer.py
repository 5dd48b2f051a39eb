"""ONNX graphs back into rnnkit modules, where rnnkit's modules can express them.

Two kinds of graph are read:

- a graph rnnkit's :func:`~rnnkit.interop.onnx.to_onnx` wrote (inputs ``x``, ``lengths``,
  ``h0``/``c0``; its ``rnnkit.module`` metadata): one node per layer, merge mode, ``batch_first``
  and learned initial states as exported. The rebuilt module is then run against the graph itself
  (:func:`~rnnkit.interop.onnx.run` on a random batch), so a graph edited after export is caught
  rather than imported as something else;
- any graph whose only node is an ``RNN``, ``LSTM`` or ``GRU`` with its weights stored in the
  graph: one layer, forward or bidirectional, ``layout=1`` as ``batch_first``.

A node is expressible when it computes one of rnnkit's cells: the Elman RNN with Tanh, Relu or
Sigmoid (the same in both directions, no alpha or beta); the LSTM with its default activations,
no peepholes (or all-zero ones), no ``input_forget``; the GRU with its default activations and
``linear_before_reset=1``; and no ``clip``. Anything else is an error that names the attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.interop.onnx._proto import load_model, onnx_module
from rnnkit.interop.onnx.export import ONNX_ACTIVATIONS
from rnnkit.interop.onnx.gates import FROM_ONNX, reorder_gates
from rnnkit.interop.onnx.graph import read_metadata
from rnnkit.nn.gru import GRU
from rnnkit.nn.lstm import LSTM
from rnnkit.nn.recurrent import RecurrentLayer
from rnnkit.nn.rnn import RNN

RECURRENT_OPS = ("RNN", "LSTM", "GRU")
_MODULES = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
_DEFAULT_ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh")}
_NONLINEARITIES = {onnx_name.lower(): name for name, onnx_name in ONNX_ACTIVATIONS.items()}


def from_onnx(model: Any, seed: int | np.random.Generator | None = None) -> RecurrentLayer:
    """The :class:`~rnnkit.nn.RNN`, :class:`~rnnkit.nn.LSTM` or :class:`~rnnkit.nn.GRU` that
    ``model`` (an ``onnx.ModelProto``, a path or bytes) computes; see the module docstring for
    the graphs it reads. ``seed`` seeds the module's dropout masks. The module is in ``eval()``.
    A graph rnnkit cannot express is a ``ValueError`` naming the node and what does not fit.
    """
    model = load_model(model)
    graph = model.graph
    constants = _constant_values(graph)
    nodes = [node for node in graph.node if node.op_type in RECURRENT_OPS]
    if not nodes:
        found = sorted({node.op_type for node in graph.node}) or ["no nodes"]
        raise ValueError(f"model: expected a graph with RNN, LSTM or GRU nodes, found {', '.join(found)}")
    metadata = read_metadata(model).get("module")
    if metadata is None and len(graph.node) != 1:
        raise ValueError(f"model: rnnkit reads graphs it exported itself, or a graph of one RNN/LSTM/GRU node; "
                         f"this one has {len(graph.node)} nodes ({_describe(graph.node)}) and no rnnkit metadata")
    kinds = {node.op_type for node in nodes}
    if len(kinds) > 1:
        raise ValueError(f"model: expected layers of one cell, found {', '.join(sorted(kinds))}")
    kind = nodes[0].op_type
    layers = [_read_layer(node, constants) for node in nodes]
    module = _build(kind, layers, metadata or {}, seed)
    for index, layer in enumerate(layers):
        _load_layer(module, index, layer)
    if metadata is not None and module.learn_h0:
        for name in module.cell.state_names:
            module.params[f"{name}0"][...] = _learned_state(constants, name, module)
    module.eval()
    if metadata is not None:
        _check_equivalent(model, module)
    return module


def _constant_values(graph: Any) -> dict[str, np.ndarray]:
    """Initializers and ``Constant`` node outputs by name."""
    onnx = onnx_module()
    values = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = onnx.numpy_helper.to_array(attribute.t)
    return values


def _describe(nodes: Any) -> str:
    kinds = [node.op_type for node in nodes]
    return ", ".join(kinds[:8]) + (", ..." if len(kinds) > 8 else "")


def _attributes(node: Any) -> dict[str, Any]:
    onnx = onnx_module()
    return {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}


def _read_layer(node: Any, constants: dict[str, np.ndarray]) -> dict[str, Any]:
    """One node's weights and checked attributes, in ONNX's layout."""
    where = f"{node.op_type} node {node.name or '(unnamed)'}"
    attributes = _attributes(node)
    known = {"hidden_size", "direction", "activations", "activation_alpha", "activation_beta", "clip", "layout",
             "input_forget", "linear_before_reset"}
    unknown = sorted(set(attributes) - known)
    if unknown:
        raise ValueError(f"{where}: unknown attribute(s) {', '.join(unknown)}")
    inputs = list(node.input) + [""] * (8 - len(node.input))

    def weight(position: int, label: str) -> np.ndarray | None:
        name = inputs[position]
        if not name:
            return None
        if name not in constants:
            raise ValueError(f"{where}: {label} ({name!r}) must be stored in the graph (an initializer) for rnnkit "
                             f"to read it; it is computed or fed at run time")
        return np.asarray(constants[name])

    W, R, B = weight(1, "W"), weight(2, "R"), weight(3, "B")
    if W is None or R is None:
        raise ValueError(f"{where}: W and R are required inputs")
    if W.dtype not in (np.float32, np.float64):
        raise ValueError(f"{where}: rnnkit modules are float32 or float64, W is {W.dtype}")
    direction = attributes.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction == "reverse":
        raise ValueError(f"{where}: direction 'reverse' alone has no rnnkit module (a bidirectional layer's "
                         f"reverse half reads the other way, beside a forward half)")
    if direction not in ("forward", "bidirectional"):
        raise ValueError(f"{where}: direction must be forward or bidirectional, got {direction!r}")
    if "clip" in attributes:
        raise ValueError(f"{where}: clip={attributes['clip']} has no rnnkit equivalent (its cells do not clip)")
    for name in ("activation_alpha", "activation_beta"):
        if attributes.get(name):
            raise ValueError(f"{where}: {name} has no rnnkit equivalent (its activations take no parameters)")
    layout = int(attributes.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"{where}: layout must be 0 or 1, got {layout}")
    default_hidden: int = R.shape[-1]  # an int: with NumPy's Any, mypy picks get()'s Optional overload
    hidden = int(attributes.get("hidden_size", default_hidden))
    directions = 2 if direction == "bidirectional" else 1
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[node.op_type]
    expected = {"W": (directions, gates * hidden, W.shape[-1]), "R": (directions, gates * hidden, hidden),
                "B": (directions, 2 * gates * hidden)}
    for label, array in (("W", W), ("R", R), ("B", B)):
        if array is not None and array.shape != expected[label]:
            raise ValueError(f"{where}: {label} has shape {array.shape}, expected {expected[label]} "
                             f"(num_directions, {gates} * hidden_size{', ...' if label != 'B' else ''})")
    activations = [a.decode() if isinstance(a, bytes) else a for a in attributes.get("activations", [])]
    activations = [a.lower() for a in activations]
    layer = {"op": node.op_type, "where": where, "W": W, "R": R,
             "B": np.zeros(expected["B"], W.dtype) if B is None else B.astype(W.dtype),
             "hidden": hidden, "directions": directions, "batch_first": layout == 1}
    if node.op_type == "RNN":
        chosen = set(activations or ["tanh"])
        if len(chosen) != 1 or not chosen <= set(_NONLINEARITIES):
            raise ValueError(f"{where}: activations {activations} have no rnnkit equivalent; rnnkit's RNN takes one "
                             f"of Tanh, Relu or Sigmoid for both directions")
        layer["nonlinearity"] = _NONLINEARITIES[chosen.pop()]
    else:
        default = list(_DEFAULT_ACTIVATIONS[node.op_type]) * directions
        if activations and activations != default:
            raise ValueError(f"{where}: activations {activations} have no rnnkit equivalent; rnnkit's "
                             f"{node.op_type} computes the default {default[: len(default) // directions]}")
    if node.op_type == "LSTM":
        if int(attributes.get("input_forget", 0)):
            raise ValueError(f"{where}: input_forget=1 (coupled input and forget gates) has no rnnkit equivalent")
        peepholes = weight(7, "P")
        if peepholes is not None and np.any(peepholes):
            raise ValueError(f"{where}: peepholes (P) have no rnnkit equivalent; only all-zero P can be imported")
    if node.op_type == "GRU" and int(attributes.get("linear_before_reset", 0)) != 1:
        raise ValueError(f"{where}: linear_before_reset=0 has no rnnkit equivalent; rnnkit's GRU (PyTorch's) "
                         f"is the linear_before_reset=1 form")
    return layer


def _build(kind: str, layers: list[dict[str, Any]], metadata: dict[str, Any],
           seed: int | np.random.Generator | None) -> RecurrentLayer:
    first = layers[0]
    hidden, directions = first["hidden"], first["directions"]
    for index, layer in enumerate(layers):
        if (layer["hidden"], layer["directions"]) != (hidden, directions):
            raise ValueError(f"{layer['where']}: every layer needs the same hidden_size and direction; layer 0 has "
                             f"{hidden} and {directions} direction(s), layer {index} {layer['hidden']} and "
                             f"{layer['directions']}")
        expected_input = first["W"].shape[-1] if index == 0 else directions * hidden
        if layer["W"].shape[-1] != expected_input:
            raise ValueError(f"{layer['where']}: layer {index} reads {layer['W'].shape[-1]} features, expected "
                             f"{expected_input} (the previous layer's output)")
    options: dict[str, Any] = dict(
        num_layers=len(layers), bidirectional=directions == 2, dtype=first["W"].dtype, seed=seed,
        batch_first=metadata.get("batch_first", first["batch_first"]),
        merge_mode=metadata.get("merge_mode", "concat"), learn_h0=metadata.get("learn_h0", False),
        dropout=metadata.get("dropout", 0.0),
    )
    if kind == "RNN":
        options["nonlinearity"] = first["nonlinearity"]
    return _MODULES[kind](first["W"].shape[-1], hidden, **options)


def _load_layer(module: RecurrentLayer, index: int, layer: dict[str, Any]) -> None:
    """Copy one ONNX layer's weights into ``module``, gate blocks back in rnnkit's order."""
    back = FROM_ONNX[layer["op"]]
    width = layer["W"].shape[1]
    def restack(array: np.ndarray) -> np.ndarray:
        return reorder_gates(array, back)

    for direction, suffix in enumerate(module.parameter_suffixes(index)):
        module.params[f"W_xh{suffix}"][...] = restack(layer["W"][direction])
        module.params[f"W_hh{suffix}"][...] = restack(layer["R"][direction])
        input_bias, recurrent_bias = layer["B"][direction, :width], layer["B"][direction, width:]
        if layer["op"] == "GRU":
            module.params[f"b_xh{suffix}"][...] = restack(input_bias)
            module.params[f"b_hh{suffix}"][...] = restack(recurrent_bias)
        else:  # ONNX's two biases always appear summed in these cells
            module.params[f"b_h{suffix}"][...] = restack(input_bias + recurrent_bias)


def _learned_state(constants: dict[str, np.ndarray], name: str, module: RecurrentLayer) -> np.ndarray:
    stored = constants.get(f"learned_{name}0")
    expected = (module.num_layers * module.num_directions, 1, module.hidden_size)
    if stored is None or stored.shape != expected:
        raise ValueError(f"model: its metadata says learn_h0 but the graph has no learned_{name}0 of shape {expected}")
    return stored[:, 0, :]


def _check_equivalent(model: Any, module: RecurrentLayer) -> None:
    """Run ``model`` and ``module`` on one random padded batch; a graph that computes anything
    else than the rebuilt module (edited after export) is an error."""
    from rnnkit.interop.onnx.executor import run

    rng = np.random.default_rng(0)
    steps, batch = 4, 3
    x = rng.standard_normal((steps, batch, module.input_size)).astype(module.dtype)
    lengths = np.array([4, 1, 3], dtype=np.int64)
    rows = module.num_layers * module.num_directions
    initial = None if module.learn_h0 else tuple(
        rng.standard_normal((rows, batch, module.hidden_size)).astype(module.dtype) for _ in module.cell.state_names)
    feeds = {"x": x.transpose(1, 0, 2) if module.batch_first else x, "lengths": lengths}
    if initial is not None:
        feeds.update({f"{name}0": value for name, value in zip(module.cell.state_names, initial)})
    graph_inputs = {value.name for value in model.graph.input} - {init.name for init in model.graph.initializer}
    if graph_inputs != set(feeds):
        raise ValueError(f"model: expected the graph inputs rnnkit exports, {sorted(feeds)}, got {sorted(graph_inputs)}")
    expected_out, expected_final = module.forward_states(feeds["x"], initial, lengths)
    got = run(model, feeds)
    tolerance = 1e-4 if module.dtype == np.float32 else 1e-10
    for label, want, have in zip(("out", *[f"{n}_n" for n in module.cell.state_names]),
                                 (expected_out, *expected_final), got):
        if np.shape(have) != want.shape or not np.allclose(have, want, rtol=tolerance, atol=tolerance):
            raise ValueError(f"model: the graph's {label} differs from the module rnnkit rebuilt from its recurrent "
                             f"nodes; it was changed after export and rnnkit cannot express it")

