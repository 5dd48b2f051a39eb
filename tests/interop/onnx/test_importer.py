"""from_onnx: round trips module -> ONNX -> module, single foreign nodes read against
onnxruntime, and a clear error for every graph rnnkit's modules cannot express."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rnnkit.interop.onnx import from_onnx, to_onnx  # noqa: E402
from tests.interop.onnx.test_export import expected, random_module  # noqa: E402

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_gives_the_same_module(seed, dtype):
    module, x, lengths, initial = random_module(seed, dtype)
    back = from_onnx(to_onnx(module).SerializeToString())
    assert type(back) is type(module) and back.dtype == module.dtype and not back.training
    for option in ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first", "merge_mode",
                   "learn_h0", "dropout"):
        assert getattr(back, option) == getattr(module, option), option
    assert getattr(back, "nonlinearity", None) == getattr(module, "nonlinearity", None)
    assert back.params.keys() == module.params.keys()
    for name, value in module.params.items():
        np.testing.assert_array_equal(back.params[name], value, err_msg=name)
    for have, want in zip(expected(back, x, lengths, initial), expected(module, x, lengths, initial)):
        np.testing.assert_array_equal(have, want)


def single_node(op, seed, directions=1, layout=0, **attributes):
    """A graph of one ``op`` node with random weights stored as initializers, as other tools write it."""
    rng = np.random.default_rng(seed)
    hidden, features = 3, 2
    width = GATES[op] * hidden
    weights = {"W": rng.standard_normal((directions, width, features)), "R": rng.standard_normal((directions, width, hidden)),
               "B": rng.standard_normal((directions, 2 * width))}
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
              helper.make_tensor_value_info("seq", TensorProto.INT32, None)]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("Y", "Y_h")]
    node = helper.make_node(op, ["X", "W", "R", "B", "seq"], ["Y", "Y_h"], hidden_size=hidden, layout=layout,
                            direction="bidirectional" if directions == 2 else "forward", **attributes)
    initializers = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()]
    graph = helper.make_graph([node], "one", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("directions", [1, 2])
@pytest.mark.parametrize("layout", [0, 1])
def test_a_foreign_node_imports_as_the_module_onnxruntime_agrees_with(op, directions, layout):
    attributes = {"linear_before_reset": 1} if op == "GRU" else {}
    if op == "RNN":
        attributes["activations"] = ["Relu"] * directions
    model = single_node(op, 7, directions, layout, **attributes)
    module = from_onnx(model)
    assert module.bidirectional == (directions == 2) and module.batch_first == (layout == 1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)
    lengths = np.array([5, 1, 3, 4])
    # onnxruntime refuses layout=1: it runs the time-major twin of the node
    twin = single_node(op, 7, directions, 0, **attributes)
    session = ort.InferenceSession(twin.SerializeToString(), providers=["CPUExecutionProvider"])
    Y, Y_h = session.run(None, {"X": x, "seq": lengths.astype(np.int32)})
    out, finals = module.forward_states(x.transpose(1, 0, 2) if module.batch_first else x, None, lengths)
    if module.batch_first:
        out = out.transpose(1, 0, 2)
    H = module.hidden_size
    np.testing.assert_allclose(out, Y.transpose(0, 2, 1, 3).reshape(5, 4, directions * H), atol=2e-5)
    np.testing.assert_allclose(finals[0], Y_h, atol=2e-5)


@pytest.mark.parametrize("op, attributes, message", [
    ("LSTM", {"clip": 3.0}, "clip=3.0 has no rnnkit equivalent"),
    ("LSTM", {"input_forget": 1}, "input_forget=1"),
    ("LSTM", {"activations": ["Sigmoid", "Tanh", "Relu"]}, "have no rnnkit equivalent; rnnkit's LSTM computes"),
    ("GRU", {}, "linear_before_reset=0 has no rnnkit equivalent"),
    ("RNN", {"activations": ["LeakyRelu"], "activation_alpha": [0.1]}, "activation_alpha has no rnnkit equivalent"),
    ("RNN", {"activations": ["Softsign"]}, "rnnkit's RNN takes one of Tanh, Relu or Sigmoid"),
    ("RNN", {"direction": "reverse"}, "direction 'reverse' alone has no rnnkit module"),
])
def test_what_rnnkit_cannot_express_is_a_clear_error(op, attributes, message):
    model = single_node(op, 0)
    node = model.graph.node[0]
    kept = [a for a in node.attribute if a.name not in attributes]
    del node.attribute[:]
    node.attribute.extend(kept + [helper.make_attribute(k, v) for k, v in attributes.items()])
    with pytest.raises(ValueError, match=message):
        from_onnx(model)


def test_peepholes_import_only_when_zero():
    model = single_node("LSTM", 0)
    node = model.graph.node[0]
    node.input.extend(["", "", "P"])  # after sequence_lens: initial_h, initial_c, P
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((1, 9), np.float32), "P"))
    assert from_onnx(model).hidden_size == 3
    model.graph.initializer[-1].CopyFrom(numpy_helper.from_array(np.full((1, 9), 0.5, np.float32), "P"))
    with pytest.raises(ValueError, match=r"peepholes \(P\) have no rnnkit equivalent"):
        from_onnx(model)


def test_weights_fed_at_run_time_cannot_be_imported():
    model = single_node("GRU", 0, linear_before_reset=1)
    del model.graph.initializer[0]  # W becomes something the caller would feed
    with pytest.raises(ValueError, match=r"W \('W'\) must be stored in the graph"):
        from_onnx(model)


def test_other_graphs_are_refused_with_what_they_hold():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(ValueError, match="expected a graph with RNN, LSTM or GRU nodes, found Relu"):
        from_onnx(helper.make_model(graph))
    with pytest.raises(FileNotFoundError, match="no ONNX file at"):
        from_onnx("/nonexistent/model.onnx")
    with pytest.raises(ValueError, match="not a serialized ONNX model"):
        from_onnx(b"\x00garbage")


def test_an_export_edited_afterwards_is_caught():
    """The rebuilt module is run against the graph: a changed constant between the layers (here
    the 0.5 of merge mode "ave") no longer matches, and the import says so."""
    from rnnkit.nn import RNN

    model = to_onnx(RNN(2, 3, bidirectional=True, merge_mode="ave", seed=0))
    for init in model.graph.initializer:
        if init.name.endswith("_half"):
            init.CopyFrom(numpy_helper.from_array(np.array(0.7, np.float32), init.name))
    with pytest.raises(ValueError, match="changed after export"):
        from_onnx(model)
