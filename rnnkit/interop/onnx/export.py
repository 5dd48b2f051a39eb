"""rnnkit's recurrent modules as ONNX graphs: one ONNX ``RNN`` / ``LSTM`` / ``GRU`` node per layer.

Each layer of an :class:`~rnnkit.nn.RNN`, :class:`~rnnkit.nn.LSTM` or :class:`~rnnkit.nn.GRU`
is one node with ``direction`` forward or bidirectional and the batch's lengths as
``sequence_lens``: ONNX runtimes then give exactly rnnkit's conventions (zeros at padding, ``Y_h``
at each sequence's last valid step, the reverse direction from its own last valid step). Weights
are copied with the gate blocks reordered to ONNX's (LSTM i, o, f, c from rnnkit's i, f, g, o;
GRU z, r, h from r, z, n, with ``linear_before_reset=1``, which is rnnkit's GRU); ONNX's second
bias ``Rb`` is zero except for the GRU, whose ``b_hh`` it is.

Between layers, ``Y (T, D, B, H)`` becomes the next layer's ``(T, B, D * H)`` input; the top
layer's directions are concatenated, summed, averaged or multiplied as the module's
``merge_mode`` says; a learned initial state is stored in the graph and broadcast over the batch.
Dropout is a training-time operation and is not exported (the graph is the module in ``eval()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.interop.onnx.gates import TO_ONNX, reorder_gates
from rnnkit.interop.onnx.graph import GraphBuilder, save, tensor_type
from rnnkit.interop.onnx.linear_recurrence import add_linear_recurrent
from rnnkit.nn.gru import GRU
from rnnkit.nn.lstm import LSTM
from rnnkit.nn.recurrent import RecurrentLayer
from rnnkit.nn.rnn import RNN

ONNX_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}


def op_type(module: RecurrentLayer) -> str:
    """``"RNN"``, ``"LSTM"`` or ``"GRU"``; a clear error for anything else."""
    for kind, cls in (("LSTM", LSTM), ("GRU", GRU), ("RNN", RNN)):
        if isinstance(module, cls):
            return kind
    if isinstance(module, RecurrentLayer) and not module.cell.recurrent_weight:
        raise TypeError(f"module: a {type(module).__name__} layer has no ONNX operator (ONNX's recurrent operators "
                        f"are RNN, LSTM and GRU); a model holding one exports as plain operators "
                        f"(rnnkit.interop.onnx.export_model), which to_onnx/from_onnx cannot read back as a layer")
    raise TypeError(f"module: expected an rnnkit.nn.RNN, LSTM or GRU, got {type(module).__name__}")


def onnx_weights(module: RecurrentLayer, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX's ``W (D, G*H, I_k)``, ``R (D, G*H, H)`` and ``B (D, 2*G*H)`` for one layer."""
    kind = op_type(module)
    order = TO_ONNX[kind]
    W, R, B = [], [], []
    for suffix in module.parameter_suffixes(layer):
        params = module.params
        W.append(reorder_gates(params[f"W_xh{suffix}"], order))
        R.append(reorder_gates(params[f"W_hh{suffix}"], order))
        if kind == "GRU":
            input_bias, recurrent_bias = params[f"b_xh{suffix}"], params[f"b_hh{suffix}"]
        else:
            input_bias, recurrent_bias = params[f"b_h{suffix}"], np.zeros_like(params[f"b_h{suffix}"])
        B.append(np.concatenate([reorder_gates(input_bias, order), reorder_gates(recurrent_bias, order)]))
    return np.stack(W), np.stack(R), np.stack(B)


def recurrent_attributes(module: RecurrentLayer) -> dict[str, Any]:
    """The node attributes that make an ONNX recurrent op compute ``module``'s cell."""
    attributes: dict[str, Any] = {"hidden_size": module.hidden_size,
                                  "direction": "bidirectional" if module.bidirectional else "forward"}
    kind = op_type(module)
    if kind == "RNN":
        assert isinstance(module, RNN)  # op_type says "RNN" only for an RNN
        attributes["activations"] = [ONNX_ACTIVATIONS[module.nonlinearity]] * module.num_directions
    elif kind == "GRU":
        attributes["linear_before_reset"] = 1
    return attributes


def add_recurrent(
    graph: GraphBuilder,
    module: RecurrentLayer,
    x: str,
    sequence_lens: str | None,
    initial: tuple[str, ...] | None,
    prefix: str = "",
) -> tuple[str, tuple[str, ...]]:
    """Append ``module``'s layers to ``graph``, reading the time-major ``x (T, B, I)``.

    ``sequence_lens``: an int32 ``(B,)`` value, or None for full sequences. ``initial``: one
    ``(L * D, B, H)`` value per state (``h``, and ``c`` for an LSTM), or None for the module's
    default (zeros, or its learned states: these must then be given by the caller, see
    :func:`learned_initial`). Returns the name of ``out (T, B, F)`` and of the final states, each
    ``(L * D, B, H)``.
    """
    if module.proj_size:
        raise ValueError("proj_size: ONNX's LSTM operator has no projection (h_t = W_hr (o * tanh(c_t))); "
                         "export an LSTM without proj_size")
    if module.layer_norm:
        raise ValueError(f"layer_norm: ONNX's {op_type(module)} operator has no layer normalisation; its gates read "
                         "the raw products. Train without --layer-norm to export")
    if module.zoneout:
        raise ValueError(f"zoneout: ONNX's {op_type(module) if module.cell.recurrent_weight else 'Scan'} export has no "
                         f"zoneout; at evaluation each state is mixed with the one before ({module.zoneout} * s_(t-1) + "
                         f"{1 - module.zoneout:g} * s_new). Train without --zoneout to export")
    if not module.cell.recurrent_weight:  # no ONNX operator: plain ones and a Scan
        return add_linear_recurrent(graph, module, x, sequence_lens, initial, prefix)
    kind = op_type(module)
    D, H = module.num_directions, module.hidden_size
    state_count = len(module.cell.state_names)
    attributes = recurrent_attributes(module)
    finals: list[list[str]] = [[] for _ in range(state_count)]
    layer_input = x
    for layer in range(module.num_layers):
        W, R, B = onnx_weights(module, layer)
        tag = f"{prefix}l{layer}"
        inputs = [layer_input, graph.array(W, f"{tag}_W"), graph.array(R, f"{tag}_R"), graph.array(B, f"{tag}_B"),
                  sequence_lens or ""]
        if initial is not None:
            rows = [graph.array([layer * D], f"{tag}_first"), graph.array([(layer + 1) * D], f"{tag}_end"),
                    graph.array([0], f"{tag}_axis")]
            inputs += [graph.add("Slice", [state, *rows], f"{tag}_{name}0")
                       for state, name in zip(initial, module.cell.state_names)]
        else:
            inputs += [""] * state_count
        outputs = graph.add(kind, inputs, f"{tag}_{kind.lower()}", outputs=1 + 1 + (state_count - 1), **attributes)
        Y, layer_finals = outputs[0], outputs[1:]
        for k, final in enumerate(layer_finals):
            finals[k].append(final)
        last = layer == module.num_layers - 1
        if last and D == 2 and module.merge_mode != "concat":
            layer_input = _merge_directions(graph, Y, module.merge_mode, tag)
        elif D == 1:
            layer_input = graph.add("Squeeze", [Y, graph.array([1], f"{tag}_direction_axis")], f"{tag}_out")
        else:  # (T, 2, B, H) -> (T, B, 2, H) -> (T, B, 2H): forward then reverse, as rnnkit concatenates
            side_by_side = graph.add("Transpose", [Y], f"{tag}_directions_last", perm=[0, 2, 1, 3])
            layer_input = graph.add("Reshape", [side_by_side, graph.array([0, 0, D * H], f"{tag}_shape")],
                                    f"{tag}_out")
    final_states = tuple(names[0] if len(names) == 1 else graph.add("Concat", names, f"{prefix}{state}_n", axis=0)
                         for names, state in zip(finals, module.cell.state_names))
    return layer_input, final_states


def _merge_directions(graph: GraphBuilder, Y: str, mode: str, tag: str) -> str:
    """``Y (T, 2, B, H)`` -> ``(T, B, H)``: the two directions summed, averaged or multiplied."""
    forward, reverse = graph.add("Split", [Y], f"{tag}_direction", outputs=2, axis=1, num_outputs=2)
    axis = graph.array([1], f"{tag}_direction_axis")
    forward = graph.add("Squeeze", [forward, axis], f"{tag}_forward")
    reverse = graph.add("Squeeze", [reverse, axis], f"{tag}_reverse")
    if mode == "mul":
        return graph.add("Mul", [forward, reverse], f"{tag}_out")
    total = graph.add("Add", [forward, reverse], f"{tag}_sum" if mode == "ave" else f"{tag}_out")
    if mode == "ave":
        half = graph.array(np.asarray(0.5, dtype=graph.float_dtype), f"{tag}_half")
        return graph.add("Mul", [total, half], f"{tag}_out")
    return total


def learned_initial(graph: GraphBuilder, module: RecurrentLayer, batch_of: str) -> tuple[str, ...]:
    """The module's learned initial states, ``(L * D, H)`` parameters, broadcast to
    ``(L * D, B, H)`` with ``B`` read from the value ``batch_of``'s axis 1 (time-major)."""
    batch = graph.add("Shape", [batch_of], "batch", start=1, end=2)
    shape = graph.add("Concat", [graph.array([module.num_layers * module.num_directions], "state_rows"), batch,
                                 graph.array([module.hidden_size], "state_width")], "state_shape", axis=0)
    states = []
    for name in module.cell.state_names:
        stored = graph.array(module.params[f"{name}0"][:, None, :], f"learned_{name}0")
        states.append(graph.add("Expand", [stored, shape], f"{name}0"))
    return tuple(states)


def to_onnx(module: RecurrentLayer, path: str | Path | None = None) -> Any:
    """``module`` (an :class:`~rnnkit.nn.RNN`, :class:`~rnnkit.nn.LSTM` or :class:`~rnnkit.nn.GRU`
    of any depth, direction, merge mode and ``batch_first``) as an ``onnx.ModelProto``, also
    written to ``path`` if given.

    Graph inputs: ``x`` ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``) in the module's dtype,
    ``lengths`` ``(B,)`` int64 in ``1..T``, and ``h0`` (and ``c0`` for an LSTM) ``(L * D, B, H)``
    -- except with ``learn_h0``, where the learned states are in the graph and these inputs are
    absent. Graph outputs: ``out`` ``(T, B, F)`` (``(B, T, F)`` with ``batch_first``), ``h_n``
    (and ``c_n``) ``(L * D, B, H)``: the module's ``forward`` in ``eval()`` mode, zeros at padding.

    onnxruntime runs the recurrent ops in float32 only; a float64 module's graph runs in
    :func:`rnnkit.interop.onnx.run`.
    """
    kind = op_type(module)
    dtype = module.dtype
    graph = GraphBuilder(f"rnnkit_{kind.lower()}", dtype)
    I, H, rows = module.input_size, module.hidden_size, module.num_layers * module.num_directions
    x = graph.input("x", dtype, ["B", "T", I] if module.batch_first else ["T", "B", I])
    lengths = graph.input("lengths", np.int64, ["B"])
    if module.batch_first:
        x = graph.add("Transpose", [x], "x_time_major", perm=[1, 0, 2])
    sequence_lens = graph.add("Cast", [lengths], "sequence_lens", to=tensor_type(np.int32))
    if module.learn_h0:
        initial = learned_initial(graph, module, x)
    else:
        initial = tuple(graph.input(f"{name}0", dtype, [rows, "B", H]) for name in module.cell.state_names)
    out, finals = add_recurrent(graph, module, x, sequence_lens, initial)
    if module.batch_first:
        out = graph.add("Transpose", [out], "out_batch_first", perm=[1, 0, 2])
    F = module.output_size
    graph.output(out, "out", dtype, ["B", "T", F] if module.batch_first else ["T", "B", F])
    for name, final in zip(module.cell.state_names, finals):
        graph.output(final, f"{name}_n", dtype, [rows, "B", H])
    model = graph.model(doc=f"rnnkit {module!r}", metadata={"module": module_config(module)})
    if path is not None:
        save(model, path)
    return model


def module_config(module: RecurrentLayer) -> dict[str, Any]:
    """What it takes to rebuild ``module`` beyond its weights (read back by ``from_onnx``)."""
    kind = module.cell.name if not module.cell.recurrent_weight else op_type(module)
    config = {"kind": kind, "input_size": module.input_size, "hidden_size": module.hidden_size,
              "num_layers": module.num_layers, "bidirectional": module.bidirectional,
              "batch_first": module.batch_first, "merge_mode": module.merge_mode, "learn_h0": module.learn_h0,
              "dropout": module.dropout, "dtype": module.dtype.name}
    if config["kind"] == "RNN":
        assert isinstance(module, RNN)  # op_type says "RNN" only for an RNN
        config["nonlinearity"] = module.nonlinearity
    return config

