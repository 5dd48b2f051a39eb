"""The minimal cells (minGRU, minLSTM) as plain ONNX operators: ONNX has no operator for them.

Their gates read the input alone, so each layer and direction is the input projection (``MatMul``,
``Add``), the gates and candidates of every step at once (``Sigmoid``, ``Where``, ...), and the
elementwise recurrence ``h_t = a_t h_{t-1} + b_t`` as a ``Scan`` whose body is one ``Mul`` and one
``Add``. With ``sequence_lens``, padded steps get ``a = 1, b = 0`` so the state holds at each
sequence's last valid step (the final state), the outputs there are zeroed, and the reverse
direction flips each sequence's valid prefix with ``ReverseSequence``, as rnnkit does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.interop.onnx._proto import onnx_module
from rnnkit.interop.onnx.graph import GraphBuilder, tensor_type
from rnnkit.nn.recurrent import RecurrentLayer


def _scan_body(dtype: np.dtype) -> Any:
    """``(h_prev, a_t, b_t) -> (h_t, h_t)``: the carried state and the scanned output."""
    onnx = onnx_module()
    helper, element = onnx.helper, tensor_type(dtype)
    nodes = [helper.make_node("Mul", ["a_t", "h_prev"], ["kept"]), helper.make_node("Add", ["kept", "b_t"], ["h_t"]),
             helper.make_node("Identity", ["h_t"], ["y_t"])]
    values = {name: helper.make_tensor_value_info(name, element, None) for name in ("h_prev", "a_t", "b_t", "h_t", "y_t")}
    return helper.make_graph(nodes, "linear_recurrence", [values["h_prev"], values["a_t"], values["b_t"]],
                             [values["h_t"], values["y_t"]])


def _positive(graph: GraphBuilder, k: str, tag: str) -> str:
    """``g(k) = k + 1/2`` where ``k >= 0``, ``sigmoid(k)`` below."""
    zero = graph.array(np.asarray(0.0, graph.float_dtype), f"{tag}_zero")
    half = graph.array(np.asarray(0.5, graph.float_dtype), f"{tag}_half")
    return graph.add("Where", [graph.add("GreaterOrEqual", [k, zero], f"{tag}_positive"),
                               graph.add("Add", [k, half], f"{tag}_shifted"), graph.add("Sigmoid", [k], f"{tag}_low")],
                     f"{tag}_candidate")


def _coefficients(graph: GraphBuilder, module: RecurrentLayer, projected: str, tag: str) -> tuple[str, str]:
    """``a (T, B, H)`` and ``b`` of the recurrence from a direction's ``projected`` ``(T, B, G*H)``."""
    H = module.hidden_size
    blocks = [graph.add("Slice", [projected, graph.array([j * H], f"{tag}_from{j}"),
                                  graph.array([(j + 1) * H], f"{tag}_to{j}"), graph.array([2], f"{tag}_axis{j}")],
                        f"{tag}_k{j}") for j in range(module.cell.gates)]
    candidate = _positive(graph, blocks[-1], tag)
    if module.cell.name == "mingru":
        a = graph.add("Sigmoid", [graph.add("Neg", [blocks[0]], f"{tag}_minus_z")], f"{tag}_a")  # 1 - z
        return a, graph.add("Mul", [graph.add("Sigmoid", [blocks[0]], f"{tag}_z"), candidate], f"{tag}_b")
    f, i = (graph.add("Sigmoid", [blocks[j]], f"{tag}_{name}") for j, name in enumerate("fi"))
    total = graph.add("Add", [f, i], f"{tag}_fi")
    a = graph.add("Div", [f, total], f"{tag}_a")
    return a, graph.add("Mul", [graph.add("Div", [i, total], f"{tag}_i_share"), candidate], f"{tag}_b")


def add_linear_recurrent(
    graph: GraphBuilder,
    module: RecurrentLayer,
    x: str,
    sequence_lens: str | None,
    initial: tuple[str, ...] | None,
    prefix: str = "",
) -> tuple[str, tuple[str, ...]]:
    """:func:`rnnkit.interop.onnx.export.add_recurrent` for a minimal cell (``module.cell`` without a
    recurrent weight): the same arguments and results, built from plain operators."""
    D, H = module.num_directions, module.hidden_size
    dtype = graph.float_dtype
    body = _scan_body(dtype)
    prefix = f"{prefix}{module.cell.name}_"  # apart from the names the caller gives its inputs and outputs
    batch = graph.add("Shape", [x], f"{prefix}batch", start=1, end=2)
    valid = lens = None
    if sequence_lens is not None:
        lens = graph.add("Cast", [sequence_lens], f"{prefix}lens", to=tensor_type(np.int64))
        steps = graph.add("Squeeze", [graph.add("Shape", [x], f"{prefix}steps_1", start=0, end=1)], f"{prefix}steps")
        time = graph.add("Range", [graph.array(np.asarray(0, np.int64), f"{prefix}range_start"), steps,
                                   graph.array(np.asarray(1, np.int64), f"{prefix}range_step")], f"{prefix}time")
        time = graph.add("Unsqueeze", [time, graph.array([1], f"{prefix}time_axis")], f"{prefix}time_column")
        valid = graph.add("Less", [time, graph.add("Unsqueeze", [lens, graph.array([0], f"{prefix}lens_axis")],
                                                   f"{prefix}lens_row")], f"{prefix}valid_steps")
        valid = graph.add("Unsqueeze", [valid, graph.array([2], f"{prefix}valid_axis")], f"{prefix}valid")
    if initial is None:
        zeros_shape = graph.add("Concat", [graph.array([module.num_layers * D], f"{prefix}state_rows"), batch,
                                           graph.array([H], f"{prefix}state_width")], f"{prefix}state_shape", axis=0)
        zero = onnx_module().helper.make_tensor("zero", tensor_type(dtype), [1], [0.0])
        initial = (graph.add("ConstantOfShape", [zeros_shape], f"{prefix}h0", value=zero),)
    if valid is not None:
        one = graph.array(np.asarray(1.0, dtype), f"{prefix}one")
        nothing = graph.array(np.asarray(0.0, dtype), f"{prefix}nothing")
    finals: list[str] = []
    layer_input = x
    for layer in range(module.num_layers):
        outputs = []
        for d, suffix in enumerate(module.parameter_suffixes(layer)):
            tag = f"{prefix}l{layer}{'_reverse' if d else ''}"
            W, bias = module.params[f"W_xh{suffix}"], module.params[f"b_h{suffix}"]
            projected = graph.add("Add", [graph.add("MatMul", [layer_input, graph.array(W.T, f"{tag}_W_T")],
                                                    f"{tag}_product"), graph.array(bias, f"{tag}_bias")],
                                  f"{tag}_projected")
            a, b = _coefficients(graph, module, projected, tag)
            if valid is not None:  # padding holds the state: a = 1, b = 0
                a = graph.add("Where", [valid, a, one], f"{tag}_a_held")
                b = graph.add("Where", [valid, b, nothing], f"{tag}_b_held")
            reverse_by_scan = d == 1 and lens is None
            if d == 1 and lens is not None:  # each sequence's valid prefix reversed, padding kept last
                a, b = (graph.add("ReverseSequence", [v, lens], f"{tag}_{n}_flipped", batch_axis=1, time_axis=0)
                        for v, n in ((a, "a"), (b, "b")))
            row = layer * D + d
            h0 = graph.add("Squeeze", [graph.add("Slice", [initial[0], graph.array([row], f"{tag}_row"),
                                                           graph.array([row + 1], f"{tag}_row_end"),
                                                           graph.array([0], f"{tag}_row_axis")], f"{tag}_h0_row"),
                                       graph.array([0], f"{tag}_h0_axis")], f"{tag}_h0")
            directions = {"scan_input_directions": [1, 1], "scan_output_directions": [1]} if reverse_by_scan else {}
            final, states = graph.add("Scan", [h0, a, b], f"{tag}_scan", outputs=2, body=body, num_scan_inputs=2,
                                      **directions)
            if d == 1 and lens is not None:
                states = graph.add("ReverseSequence", [states, lens], f"{tag}_states", batch_axis=1, time_axis=0)
            if valid is not None:
                states = graph.add("Where", [valid, states, nothing], f"{tag}_out")
            outputs.append(states)
            finals.append(graph.add("Unsqueeze", [final, graph.array([0], f"{tag}_final_axis")], f"{tag}_h_n"))
        last = layer == module.num_layers - 1
        if D == 1:
            layer_input = outputs[0]
        elif last and module.merge_mode != "concat":
            merged = graph.add("Mul" if module.merge_mode == "mul" else "Add", outputs, f"{prefix}l{layer}_merged")
            layer_input = merged if module.merge_mode != "ave" else graph.add(
                "Mul", [merged, graph.array(np.asarray(0.5, dtype), f"{prefix}l{layer}_half")], f"{prefix}l{layer}_out")
        else:
            layer_input = graph.add("Concat", outputs, f"{prefix}l{layer}_out", axis=2)
    final_state = finals[0] if len(finals) == 1 else graph.add("Concat", finals, f"{prefix}h_n", axis=0)
    return layer_input, (final_state,)
