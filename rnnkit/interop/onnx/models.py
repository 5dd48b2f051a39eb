"""rnnkit's architectures (``rnnkit.models``) as ONNX graphs: what ``rnnkit export`` writes.

One graph for the readers, two for the generators:

- ``ManyToMany`` -> ``model``: ``ids (T, B)`` int64 (or ``x (T, B, I)`` for real-valued inputs),
  ``lengths (B,)`` int64 and the initial states ``h0`` (``c0``) ``(L * D, B, H)`` in;
  ``scores (T, B, C)`` and the final states ``h_n`` (``c_n``) out (what truncated BPTT and a
  streaming caller carry from one chunk to the next);
- ``ManyToOne`` -> ``model``: ``ids`` / ``x`` and ``lengths`` in, ``scores (B, C)`` out, the
  sequence summarised as the model pools (last state, mean or max over valid steps);
- ``OneToOne`` -> ``model``: ``x (B, I)`` in, ``scores (B, C)`` out;
- ``OneToMany`` -> ``encoder`` (``features (B, F)`` -> the decoder's first ``h0`` (``c0``)
  ``(L, B, H)``) and ``decoder_step`` (``ids (B,)`` and the states -> ``scores (B, V)`` and the
  next states ``h_n`` (``c_n``));
- ``AcousticModel`` -> ``model``: ``frames (T, B, F)`` and ``lengths (B,)`` int64 in; ``scores
  (ceil(T / k), B, C)`` (CTC's label scores, blank first) and ``out_lengths (B,)`` out, the
  frames stacked ``k`` a step in the graph (padded to a multiple of ``k``, reshaped);
- ``Seq2Seq`` -> ``encoder`` (``source (S, B)``, ``source_lengths (B,)`` -> the decoder's first
  states, and with attention the ``memory (S, B, M)`` and its ``mask (S, B)`` bool) and
  ``decoder_step`` (``ids (B,)``, the states and, with attention, ``memory`` and ``mask`` ->
  ``scores (B, V)`` and the next states).

Scores are the models' logits (before the softmax). Every graph records its architecture and
interface in ``metadata_props`` (``rnnkit.architecture``, ``rnnkit.graph``), which
:class:`rnnkit.interop.onnx.deployed.DeployedModel` reads to run the graphs behind the models'
own ``forward`` / ``generate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnkit.interop.onnx.export import add_recurrent, module_config
from rnnkit.interop.onnx.graph import GraphBuilder, tensor_type
from rnnkit.models.acoustic import AcousticModel
from rnnkit.models.ensemble import Ensemble
from rnnkit.models.generative import OneToMany, Seq2Seq
from rnnkit.models.sequence import ManyToMany, ManyToOne, OneToOne
from rnnkit.nn.attention import Attention
from rnnkit.nn.embedding import Embedding
from rnnkit.nn.linear import Linear
from rnnkit.nn.recurrent import RecurrentLayer


def export_model(model: Any) -> dict[str, Any]:
    """The ONNX graphs of a trained ``model`` (see the module docstring), by role: ``{"model":
    ...}`` or ``{"encoder": ..., "decoder_step": ...}``; each an ``onnx.ModelProto``."""
    # Any: each exporter takes only its own class, which the isinstance check gives it
    exporters: tuple[tuple[type, Callable[[Any], dict[str, Any]]], ...] = (
        (ManyToMany, _many_to_many), (ManyToOne, _many_to_one), (Ensemble, _ensemble), (OneToOne, _one_to_one),
        (OneToMany, _one_to_many), (Seq2Seq, _seq2seq), (AcousticModel, _acoustic))
    for cls, export in exporters:
        if isinstance(model, cls):
            return export(model)
    raise TypeError(f"model: expected one of rnnkit.models' ManyToMany, ManyToOne, Ensemble, OneToOne, "
                    f"OneToMany, Seq2Seq, AcousticModel, got {type(model).__name__}")


# -- pieces ---------------------------------------------------------------------------------
def _embed(graph: GraphBuilder, embedding: Embedding, ids: str, hint: str) -> str:
    return graph.add("Gather", [graph.array(embedding.params["W"], f"{hint}_table"), ids], hint, axis=0)


def _linear(graph: GraphBuilder, layer: Linear, x: str, hint: str) -> str:
    """``x (..., in) @ W^T + b``, ``W^T`` stored as it is multiplied."""
    product = graph.add("MatMul", [x, graph.array(np.ascontiguousarray(layer.params["W"].T), f"{hint}_weight")],
                        f"{hint}_product" if "b" in layer.params else hint)
    if "b" not in layer.params:
        return product
    return graph.add("Add", [product, graph.array(layer.params["b"], f"{hint}_bias")], hint)


def _sequence_input(graph: GraphBuilder, model: Any) -> tuple[str, str]:
    """The graph input of a reader: token ids, or real values; returns (input name, features)."""
    source = _source(graph, model)
    return source, _features(graph, model, source, "embedded")


def _source(graph: GraphBuilder, model: Any) -> str:
    """A reader's graph input: ``ids (T, B)`` under an embedding, else ``x (T, B, F)``."""
    if model.embedding is not None:
        return graph.input("ids", np.int64, ["T", "B"])
    return graph.input("x", graph.float_dtype, ["T", "B", model.rnn.input_size])


def _features(graph: GraphBuilder, model: Any, source: str, hint: str) -> str:
    """What ``model``'s recurrent layer reads from ``source``: its embedded tokens, or the values."""
    return source if model.embedding is None else _embed(graph, model.embedding, source, hint)


def _state_inputs(graph: GraphBuilder, rnn: RecurrentLayer, rows: int) -> tuple[str, ...]:
    return tuple(graph.input(f"{name}0", graph.float_dtype, [rows, "B", rnn.hidden_size])
                 for name in rnn.cell.state_names)


def _state_outputs(graph: GraphBuilder, rnn: RecurrentLayer, finals: tuple[str, ...], rows: int) -> None:
    for name, final in zip(rnn.cell.state_names, finals):
        graph.output(final, f"{name}_n", graph.float_dtype, [rows, "B", rnn.hidden_size])


def _valid_mask(graph: GraphBuilder, reference: str, lengths: str) -> str:
    """``(T, B)`` bool, True where ``t < lengths[b]``, ``T`` read from ``reference``'s axis 0."""
    steps = graph.add("Squeeze", [graph.add("Shape", [reference], "steps_1d", start=0, end=1),
                                  graph.array([0], "steps_axis")], "steps")
    positions = graph.add("Range", [graph.array(np.int64(0), "zero"), steps, graph.array(np.int64(1), "one")],
                          "positions")
    column = graph.add("Unsqueeze", [positions, graph.array([1], "column_axis")], "positions_column")
    row = graph.add("Unsqueeze", [lengths, graph.array([0], "row_axis")], "lengths_row")
    return graph.add("Less", [column, row], "valid")


def _model(graph: GraphBuilder, architecture: str, role: str, model: Any, rnn: RecurrentLayer,
           extra: dict[str, Any] | None = None) -> Any:
    description = {"role": role, "cell": type(rnn).__name__, "states": list(rnn.cell.state_names),
                   "loss": getattr(model, "loss_kind", "cross_entropy"), **(extra or {})}
    return graph.model(doc=f"rnnkit {architecture} {role}",
                       metadata={"architecture": architecture, "graph": description, "module": module_config(rnn)})


# -- readers --------------------------------------------------------------------------------
def _many_to_many(model: ManyToMany) -> dict[str, Any]:
    rnn = model.rnn
    graph = GraphBuilder("rnnkit_many_to_many", rnn.dtype)
    rows = rnn.num_layers * rnn.num_directions
    source, features = _sequence_input(graph, model)
    lengths = graph.input("lengths", np.int64, ["B"])
    initial = _state_inputs(graph, rnn, rows)
    sequence_lens = graph.add("Cast", [lengths], "sequence_lens", to=tensor_type(np.int32))
    out, finals = add_recurrent(graph, rnn, features, sequence_lens, initial)
    scores = _linear(graph, model.head, out, "scores_raw")
    graph.output(scores, "scores", rnn.dtype, ["T", "B", model.head.out_features])
    _state_outputs(graph, rnn, finals, rows)
    return {"model": _model(graph, "ManyToMany", "model", model, rnn, {"input": source})}


def _acoustic(model: AcousticModel) -> dict[str, Any]:
    """Frames stacked ``k`` a step (zero frames appended up to a multiple of ``k``: the padding
    rnnkit's ``stack_frames_forward`` adds), the recurrent layers, the label scores."""
    rnn, k = model.rnn, model.stack
    graph = GraphBuilder("rnnkit_acoustic", rnn.dtype)
    frames = graph.input("frames", graph.float_dtype, ["T", "B", model.input_size])
    lengths = graph.input("lengths", np.int64, ["B"])
    stack = graph.array(np.array([k], np.int64), "stack")
    steps = graph.add("Shape", [frames], "steps", start=0, end=1)
    missing = graph.add("Mod", [graph.add("Sub", [stack, graph.add("Mod", [steps, stack], "remainder")], "short"),
                                stack], "missing")
    pads = graph.add("Concat", [graph.array(np.zeros(3, np.int64), "pads_before"), missing,
                                graph.array(np.zeros(2, np.int64), "pads_after")], "pads", axis=0)
    padded = graph.add("Pad", [frames, pads], "padded")
    batch_major = graph.add("Transpose", [padded], "batch_major", perm=[1, 0, 2])
    grouped = graph.add("Reshape", [batch_major, graph.array(np.array([0, -1, k * model.input_size], np.int64),
                                                             "stacked_shape")], "grouped")
    stacked = graph.add("Transpose", [grouped], "stacked", perm=[1, 0, 2])
    out_lengths = graph.add("Div", [graph.add("Add", [lengths, graph.array(np.int64(k - 1), "round_up")], "rounded"),
                                    graph.array(np.int64(k), "stack_scalar")], "out_lengths_raw")
    sequence_lens = graph.add("Cast", [out_lengths], "sequence_lens", to=tensor_type(np.int32))
    out, _ = add_recurrent(graph, rnn, stacked, sequence_lens, None)
    scores = _linear(graph, model.head, out, "scores_raw")
    graph.output(scores, "scores", rnn.dtype, ["steps", "B", model.head.out_features])
    graph.output(out_lengths, "out_lengths", np.int64, ["B"])
    return {"model": _model(graph, "AcousticModel", "model", model, rnn, {"input": "frames", "stack": k})}


def _many_to_one(model: ManyToOne) -> dict[str, Any]:
    graph = GraphBuilder("rnnkit_many_to_one", model.rnn.dtype)
    source, features = _sequence_input(graph, model)
    lengths = graph.input("lengths", np.int64, ["B"])
    scores = _many_to_one_scores(graph, model, features, lengths)
    graph.output(scores, "scores", model.rnn.dtype, ["B", model.head.out_features])
    return {"model": _model(graph, "ManyToOne", "model", model, model.rnn, {"input": source, "pooling": model.pooling})}


def _ensemble(model: Ensemble) -> dict[str, Any]:
    """An ensemble of ``ManyToOne`` models: one graph with every member's, and ``scores`` the
    logarithm of their mean class probabilities (their mean output for squared error), as
    ``Ensemble.forward`` gives."""
    members = model.members
    first = members[0]
    if not isinstance(first, ManyToOne):
        raise TypeError(f"model: an Ensemble exports with ManyToOne members, got {type(first).__name__}")
    graph = GraphBuilder("rnnkit_many_to_one_ensemble", first.rnn.dtype)
    source = _source(graph, first)
    lengths = graph.input("lengths", np.int64, ["B"])
    outputs = []
    for k, member in enumerate(members):
        assert isinstance(member, ManyToOne)  # the Ensemble holds one class
        scores = _many_to_one_scores(graph, member, _features(graph, member, source, f"member{k}_embedded"), lengths)
        if model.loss_kind == "cross_entropy":
            scores = graph.add("LogSoftmax", [scores], f"member{k}_log_probabilities", axis=-1)
        outputs.append(scores)
    stacked = graph.add("Concat", [graph.add("Unsqueeze", [scores, graph.array([0], "member_axis")], "member_scores")
                                   for scores in outputs], "members_scores", axis=0)
    members_axis = graph.array([0], "members_axis")
    if model.loss_kind == "cross_entropy":  # log mean_k exp(log p_k), less the largest first: no underflow to log 0
        top = graph.add("ReduceMax", [stacked, members_axis], "top_log_probabilities", keepdims=1)
        mean = graph.add("ReduceMean", [graph.add("Exp", [graph.add("Sub", [stacked, top], "below_top")],
                                                  "scaled_probabilities"), members_axis], "scaled_mean", keepdims=1)
        combined = graph.add("Squeeze", [graph.add("Add", [top, graph.add("Log", [mean], "log_scaled_mean")],
                                                   "log_mean_probabilities_3d"), members_axis], "log_mean_probabilities")
    else:
        combined = graph.add("ReduceMean", [stacked, members_axis], "mean_outputs", keepdims=0)
    graph.output(combined, "scores", first.rnn.dtype, ["B", first.head.out_features])
    return {"model": _model(graph, "ManyToOne", "model", first, first.rnn,
                            {"input": source, "pooling": first.pooling, "ensemble": len(members)})}


def _many_to_one_scores(graph: GraphBuilder, model: ManyToOne, features: str, lengths: str) -> str:
    """The class scores of ``model`` reading ``features (T, B, F)`` with ``lengths (B,)``."""
    rnn = model.rnn
    D, H = rnn.num_directions, rnn.hidden_size
    sequence_lens = graph.add("Cast", [lengths], "sequence_lens", to=tensor_type(np.int32))
    out, finals = add_recurrent(graph, rnn, features, sequence_lens, None)
    if model.pooling == "last":  # the top layer's h, forward then reverse: (D, B, H) -> (B, D * H)
        rows = rnn.num_layers * D
        top = graph.add("Slice", [finals[0], graph.array([rows - D], "top_first"), graph.array([rows], "top_end"),
                                  graph.array([0], "top_axis")], "top_states")
        side_by_side = graph.add("Transpose", [top], "top_batch_first", perm=[1, 0, 2])
        summary = graph.add("Reshape", [side_by_side, graph.array([0, D * H], "summary_shape")], "summary")
    elif model.pooling == "mean":  # padding is exactly zero: the sum over all steps is over valid ones
        total = graph.add("ReduceSum", [out, graph.array([0], "time_axis")], "total", keepdims=0)
        counts = graph.add("Cast", [graph.add("Unsqueeze", [lengths, graph.array([1], "count_axis")], "counts_int")],
                           "counts", to=tensor_type(rnn.dtype))
        summary = graph.add("Div", [total, counts], "summary")
    elif model.pooling == "attention":  # softmax over valid steps of each state's score against the query
        query = graph.array(model.params["pool_query"], "pool_query")
        raw = graph.add("MatMul", [out, query], "attention_scores_raw")
        lowest = graph.array(np.array(-np.inf, dtype=rnn.dtype), "minus_infinity")
        scores = graph.add("Where", [_valid_mask(graph, out, lengths), raw, lowest], "attention_scores")
        weights = graph.add("Unsqueeze", [graph.add("Softmax", [scores], "attention_weights_2d", axis=0),
                                          graph.array([2], "feature_axis")], "attention_weights")
        summary = graph.add("ReduceSum", [graph.add("Mul", [out, weights], "weighted_states"),
                                          graph.array([0], "time_axis")], "summary", keepdims=0)
    else:  # max over valid steps only
        valid = graph.add("Unsqueeze", [_valid_mask(graph, out, lengths), graph.array([2], "feature_axis")],
                          "valid_3d")
        lowest = graph.array(np.array(-np.inf, dtype=rnn.dtype), "minus_infinity")
        masked = graph.add("Where", [valid, out, lowest], "masked")
        summary = graph.add("ReduceMax", [masked, graph.array([0], "time_axis")], "summary", keepdims=0)
    return _linear(graph, model.head, summary, "scores_raw")


def _one_to_one(model: OneToOne) -> dict[str, Any]:
    rnn = model.rnn
    graph = GraphBuilder("rnnkit_one_to_one", rnn.dtype)
    x = graph.input("x", rnn.dtype, ["B", rnn.input_size])
    one_step = graph.add("Unsqueeze", [x, graph.array([0], "time_axis")], "one_step")
    out, _ = add_recurrent(graph, rnn, one_step, None, None)
    state = graph.add("Squeeze", [out, graph.array([0], "time_axis_again")], "state")
    graph.output(_linear(graph, model.head, state, "scores_raw"), "scores", rnn.dtype, ["B", model.head.out_features])
    return {"model": _model(graph, "OneToOne", "model", model, rnn, {"input": "x"})}


# -- generators -----------------------------------------------------------------------------
def _decoder_step(model: Any, architecture: str) -> Any:
    """``ids (B,)``, the states (and the attention's memory and mask) -> ``scores (B, V)`` and the
    next states: one step of ``model.decoder``."""
    decoder = model.decoder
    rnn = decoder.rnn
    graph = GraphBuilder("rnnkit_decoder_step", rnn.dtype)
    ids = graph.input("ids", np.int64, ["B"])
    initial = _state_inputs(graph, rnn, rnn.num_layers)
    attention = decoder.attention
    memory = mask = None
    if attention is not None:
        memory = graph.input("memory", rnn.dtype, ["S", "B", attention.memory_size])
        mask = graph.input("mask", np.bool_, ["S", "B"])
    one_step = graph.add("Unsqueeze", [ids, graph.array([0], "time_axis")], "one_step_ids")
    out, finals = add_recurrent(graph, rnn, _embed(graph, decoder.embedding, one_step, "embedded"), None, initial)
    query = graph.add("Squeeze", [out, graph.array([0], "time_axis_again")], "query")  # (B, H)
    if attention is not None:
        assert memory is not None and mask is not None  # both inputs are declared above with attention
        query = _attend(graph, attention, query, memory, mask)
    scores = _linear(graph, decoder.head, query, "scores_raw")
    graph.output(scores, "scores", rnn.dtype, ["B", decoder.head.out_features])
    _state_outputs(graph, rnn, finals, rnn.num_layers)
    extra = {"attention": None if attention is None else attention.kind}
    return _model(graph, architecture, "decoder_step", model, rnn, extra)


def _attend(graph: GraphBuilder, attention: Attention, query: str, memory: str, mask: str) -> str:
    """Luong attention for one step: ``query (B, H)`` over ``memory (S, B, M)`` where ``mask
    (S, B)`` -> ``tanh(W_c [context; query] + b_c)`` ``(B, H)``; see :mod:`rnnkit.nn.attention`."""
    batch_memory = graph.add("Transpose", [memory], "memory_batch_first", perm=[1, 0, 2])  # (B, S, M)
    one_query = graph.add("Unsqueeze", [query, graph.array([1], "query_axis")], "query_row")  # (B, 1, H)
    params = attention.params
    if attention.kind == "additive":  # v . tanh(W_q q + W_m m)
        projected_query = graph.add("MatMul", [one_query, graph.array(params["W_q"].T.copy(), "W_q_T")], "q_proj")
        projected_memory = graph.add("MatMul", [batch_memory, graph.array(params["W_m"].T.copy(), "W_m_T")], "m_proj")
        hidden = graph.add("Tanh", [graph.add("Add", [projected_query, projected_memory], "joint")], "joint_tanh")
        column = graph.add("MatMul", [hidden, graph.array(params["v"][:, None], "v_column")], "score_column")
        scores = graph.add("Transpose", [column], "attention_scores", perm=[0, 2, 1])  # (B, 1, S)
    else:  # dot: q . m; general: q . (W m)
        keys = batch_memory if attention.kind == "dot" else graph.add(
            "MatMul", [batch_memory, graph.array(params["W"].T.copy(), "W_T")], "keys")
        scores = graph.add("MatMul", [one_query, graph.add("Transpose", [keys], "keys_T", perm=[0, 2, 1])], "attention_scores")
    valid = graph.add("Unsqueeze", [graph.add("Transpose", [mask], "mask_batch_first", perm=[1, 0]),
                                    graph.array([1], "mask_axis")], "valid")  # (B, 1, S)
    masked = graph.add("Where", [valid, scores, graph.array(np.array(-np.inf, dtype=graph.float_dtype), "minus_inf")],
                       "masked_scores")
    weights = graph.add("Softmax", [masked], "weights", axis=-1)
    context = graph.add("Squeeze", [graph.add("MatMul", [weights, batch_memory], "context_row"),
                                    graph.array([1], "context_axis")], "context")  # (B, M)
    joined = graph.add("Concat", [context, query], "context_query", axis=-1)
    return graph.add("Tanh", [_linear(graph, attention.combine, joined, "combined")], "attended")


def _one_to_many(model: OneToMany) -> dict[str, Any]:
    rnn = model.decoder.rnn
    bridge = model.bridge
    graph = GraphBuilder("rnnkit_one_to_many_encoder", rnn.dtype)
    features = graph.input("features", rnn.dtype, ["B", bridge.proj.in_features])
    states = graph.add("Tanh", [_linear(graph, bridge.proj, features, "bridge_raw")], "bridge")
    shaped = graph.add("Reshape", [states, graph.array([0, bridge.num_states, bridge.num_layers, bridge.hidden_size],
                                                       "bridge_shape")], "bridge_split")
    for k, name in enumerate(rnn.cell.state_names):  # (B, S, L, H) -> state k's (L, B, H)
        picked = graph.add("Gather", [shaped, graph.array(np.int64(k), f"{name}_index")], f"{name}_batch_first", axis=1)
        state = graph.add("Transpose", [picked], f"{name}_start", perm=[1, 0, 2])
        graph.output(state, f"{name}0", rnn.dtype, [rnn.num_layers, "B", rnn.hidden_size])
    encoder = _model(graph, "OneToMany", "encoder", model, rnn)
    return {"encoder": encoder, "decoder_step": _decoder_step(model, "OneToMany")}


def _seq2seq(model: Seq2Seq) -> dict[str, Any]:
    encoder_rnn, decoder_rnn = model.encoder, model.decoder.rnn
    graph = GraphBuilder("rnnkit_seq2seq_encoder", encoder_rnn.dtype)
    source = graph.input("source", np.int64, ["S", "B"])
    lengths = graph.input("source_lengths", np.int64, ["B"])
    embedded = _embed(graph, model.source_embedding, source, "embedded")
    sequence_lens = graph.add("Cast", [lengths], "sequence_lens", to=tensor_type(np.int32))
    outputs, finals = add_recurrent(graph, encoder_rnn, embedded, sequence_lens, None)
    L, H = decoder_rnn.num_layers, decoder_rnn.hidden_size
    for k, name in enumerate(decoder_rnn.cell.state_names):
        state = finals[k]
        if encoder_rnn.bidirectional:  # (2L, B, H) -> (L, B, 2H), [fwd; rev] per layer, then the bridge
            pairs = graph.add("Reshape", [state, graph.array([L, 2, -1, H], f"{name}_pairs_shape")], f"{name}_pairs")
            side = graph.add("Transpose", [pairs], f"{name}_side_by_side", perm=[0, 2, 1, 3])
            joined = graph.add("Reshape", [side, graph.array([L, 0, 2 * H], f"{name}_joined_shape")], f"{name}_joined")
            bridge = getattr(model, model.bridge_names[k])
            state = graph.add("Tanh", [_linear(graph, bridge, joined, f"{name}_bridge_raw")], f"{name}_bridged")
        graph.output(state, f"{name}0", decoder_rnn.dtype, [L, "B", H])
    attention = model.decoder.attention
    if attention is not None:
        graph.output(outputs, "memory", encoder_rnn.dtype, ["S", "B", attention.memory_size])
        graph.output(_valid_mask(graph, source, lengths), "mask", np.bool_, ["S", "B"])
    extra = {"attention": None if attention is None else attention.kind}
    encoder = _model(graph, "Seq2Seq", "encoder", model, encoder_rnn, extra)
    return {"encoder": encoder, "decoder_step": _decoder_step(model, "Seq2Seq")}
