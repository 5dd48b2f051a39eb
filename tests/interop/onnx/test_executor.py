"""``rnnkit.interop.onnx.run`` against onnxruntime and onnx's reference implementation.

(a) Random ``RNN`` / ``LSTM`` / ``GRU`` nodes with random attributes against onnxruntime, which
runs float32 and time-major only: a ``layout=1`` node is compared with onnxruntime on its
time-major twin. (b) The fast path (rnnkit's kernels) against the general path in float64, and
the general path against ``onnx.reference.ReferenceEvaluator`` where that implements the
attributes. (c) Errors. (d) The plain ops on tiny graphs against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from rnnkit.interop.onnx import operators  # noqa: E402
from rnnkit.interop.onnx.executor import run  # noqa: E402

OPSET = 22
INPUT_NAMES = {"RNN": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
               "GRU": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
               "LSTM": ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]}
OUTPUT_NAMES = {"RNN": ["Y", "Y_h"], "GRU": ["Y", "Y_h"], "LSTM": ["Y", "Y_h", "Y_c"]}
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}

# Ranges that keep unit-scale inputs unit-scale through a few steps.
ALPHA_BETA_RANGES = {
    "Relu": (None, None), "Tanh": (None, None), "Sigmoid": (None, None), "Softsign": (None, None),
    "Softplus": (None, None), "Affine": ((0.5, 1.5), (-0.5, 0.5)), "LeakyRelu": ((0.01, 0.5), None),
    "ThresholdedRelu": ((0.0, 1.0), None), "ScaledTanh": ((0.5, 2.0), (0.5, 2.0)),
    "HardSigmoid": ((0.1, 0.5), (0.3, 0.7)), "Elu": ((0.5, 2.0), None),
}
# The activations whose default alpha/beta onnxruntime shares with the spec (it uses 0 for the others).
SHARED_DEFAULTS = {"LeakyRelu", "HardSigmoid", "Elu"}


# -- building and running graphs -------------------------------------------------------------------


def make_model(nodes: list, feeds: dict[str, np.ndarray], outputs: list[str], opset: int = OPSET):
    """A model whose graph inputs are ``feeds`` (typed and shaped like the arrays) and whose
    outputs are ``outputs`` (untyped: both runtimes infer them)."""
    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
              for name, value in feeds.items()]
    graph = helper.make_graph(nodes, "test", inputs, [onnx.ValueInfoProto(name=name) for name in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_onnxruntime(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's CPU kernels on ``model``; a model it refuses skips the test, saying why."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return session.run(None, feeds)
    except Exception as error:  # onnxruntime raises its own exception types
        pytest.skip(f"onnxruntime refuses this node: {str(error).splitlines()[0][:300]}")


def recurrent_model(op: str, attributes: dict, given: dict[str, np.ndarray | None], outputs: list[str]):
    """One ``op`` node reading ``given`` (None: the optional input is left out as "") and
    writing ``outputs`` ("" for an output the graph does not want); returns ``(model, feeds)``."""
    names = INPUT_NAMES[op]
    node_inputs = [name if given.get(name) is not None else "" for name in names]
    while node_inputs and node_inputs[-1] == "":
        node_inputs.pop()  # trailing optional inputs may be simply omitted
    node = helper.make_node(op, node_inputs, outputs, name=f"{op.lower()}_node", **attributes)
    feeds = {name: given[name] for name in node_inputs if name}
    return make_model([node], feeds, [name for name in outputs if name]), feeds


def time_major_twin(op: str, attributes: dict, given: dict[str, np.ndarray | None]):
    """The same node with ``layout=0``: X and the initial states transposed to time-major."""
    twin = dict(attributes, layout=0)
    swapped = dict(given)
    for name in ("X", "initial_h", "initial_c"):
        if given.get(name) is not None:
            swapped[name] = np.ascontiguousarray(given[name].transpose(1, 0, 2))
    return twin, swapped


def to_batch_major(outputs: list[str], values: list[np.ndarray]) -> list[np.ndarray]:
    """Time-major outputs as layout 1 has them: Y (T, D, B, H) -> (B, T, D, H), states (D, B, H) -> (B, D, H)."""
    wanted = [name for name in outputs if name]
    return [value.transpose(2, 0, 1, 3) if name == "Y" else value.transpose(1, 0, 2)
            for name, value in zip(wanted, values)]


def assert_close_float32(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    """float32 against float32 computed in another order: each step sums a few unit-scale
    products (rounding ~1e-7 of the largest term) and a few steps carry it on, so differences
    are bounded by ~1e-5 of the magnitudes involved, plus 1e-4 relative."""
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.float32, f"{name}: dtype {actual.dtype}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


# -- random nodes ----------------------------------------------------------------------------------


def random_activations(op: str, directions: int, rng: np.random.Generator) -> dict:
    """Attributes ``activations`` / ``activation_alpha`` / ``activation_beta`` drawn from the
    whole list (or absent), with alpha and beta lists that are exact, cut short where the
    defaults agree with onnxruntime's, or longer than needed."""
    if rng.random() < 0.25:
        return {}
    per_direction = len(operators.DEFAULT_ACTIVATIONS[op])
    names = [str(rng.choice(list(ALPHA_BETA_RANGES))) for _ in range(per_direction * directions)]
    alphas = [rng.uniform(*ALPHA_BETA_RANGES[name][0]) for name in names if ALPHA_BETA_RANGES[name][0]]
    betas = [rng.uniform(*ALPHA_BETA_RANGES[name][1]) for name in names if ALPHA_BETA_RANGES[name][1]]
    choice = rng.random()
    if choice < 0.2:  # more values than the functions consume: the rest is ignored
        alphas, betas = alphas + [0.3], betas + [0.7]
    elif choice < 0.4:  # cut short: the last functions fall back to their defaults
        uses_alpha = [name for name in names if ALPHA_BETA_RANGES[name][0]]
        uses_beta = [name for name in names if ALPHA_BETA_RANGES[name][1]]
        keep_alpha, keep_beta = rng.integers(0, len(alphas) + 1), rng.integers(0, len(betas) + 1)
        if set(uses_alpha[keep_alpha:]) | set(uses_beta[keep_beta:]) <= SHARED_DEFAULTS:
            alphas, betas = alphas[:keep_alpha], betas[:keep_beta]
    if op != "RNN":  # onnxruntime takes LSTM and GRU activation names in any case, RNN's only as spelled
        names = [name.lower() if rng.random() < 0.3 else name for name in names]
    attributes = {"activations": names}
    if alphas:
        attributes["activation_alpha"] = [float(a) for a in alphas]
    if betas:
        attributes["activation_beta"] = [float(b) for b in betas]
    return attributes


def random_recurrent_case(op: str, seed: int, dtype=np.float32) -> tuple[dict, dict, list[str]]:
    """``(attributes, inputs, outputs)`` of a random ``op`` node: sizes, direction, layout,
    optional inputs, activations, clip, input_forget, linear_before_reset, wanted outputs."""
    rng = np.random.default_rng(seed)
    direction = str(rng.choice(["forward", "reverse", "bidirectional"]))
    D, G = (2 if direction == "bidirectional" else 1), GATES[op]
    T, B, I, H = (int(n) for n in rng.integers(1, [6, 5, 5, 5]))
    layout = int(rng.random() < 0.3)
    attributes: dict = {"hidden_size": H, "direction": direction, "layout": layout}
    attributes.update(random_activations(op, D, rng))
    if rng.random() < 0.3:
        attributes["clip"] = float(rng.uniform(0.5, 3.0))
    if op == "LSTM" and rng.random() < 0.3:
        attributes["input_forget"] = 1
    if op == "GRU":
        attributes["linear_before_reset"] = int(rng.integers(0, 2))

    def uniform(*shape, scale=1.0):
        return (rng.uniform(-scale, scale, size=shape)).astype(dtype)

    state_shape = (B, D, H) if layout else (D, B, H)
    given = {
        "X": rng.normal(size=(B, T, I) if layout else (T, B, I)).astype(dtype),
        "W": uniform(D, G * H, I, scale=1 / np.sqrt(I)),
        "R": uniform(D, G * H, H, scale=1 / np.sqrt(H)),
        "B": uniform(D, 2 * G * H, scale=0.5) if rng.random() < 0.8 else None,
        "sequence_lens": None,
        "initial_h": uniform(*state_shape) if rng.random() < 0.5 else None,
    }
    if rng.random() < 0.5:
        lengths = rng.integers(1, T + 1, size=B)
        if rng.random() < 0.3:
            lengths[rng.integers(0, B)] = 0  # an empty sequence
        given["sequence_lens"] = lengths.astype(np.int32)
    if op == "LSTM":
        given["initial_c"] = uniform(*state_shape) if rng.random() < 0.5 else None
        given["P"] = uniform(D, 3 * H) if rng.random() < 0.4 else None
    outputs = [name if rng.random() < 0.8 else "" for name in OUTPUT_NAMES[op]]
    if not any(outputs):
        outputs[1] = "Y_h"
    while outputs[-1] == "":
        outputs.pop()
    return attributes, given, outputs


# -- (a) against onnxruntime -----------------------------------------------------------------------


def assert_matches_onnxruntime(op: str, attributes: dict, given: dict, outputs: list[str]) -> None:
    """``run`` on the node against onnxruntime, on the time-major twin for ``layout=1`` (which
    onnxruntime refuses)."""
    model, feeds = recurrent_model(op, attributes, given, outputs)
    ours = run(model, feeds)
    if attributes.get("layout", 0) == 1:
        twin_attributes, twin_given = time_major_twin(op, attributes, given)
        twin_model, twin_feeds = recurrent_model(op, twin_attributes, twin_given, outputs)
        expected = to_batch_major(outputs, run_onnxruntime(twin_model, twin_feeds))
    else:
        expected = run_onnxruntime(model, feeds)
    wanted_names = [name for name in outputs if name]
    assert len(ours) == len(expected) == len(wanted_names)
    for name, actual, wanted in zip(wanted_names, ours, expected):
        assert_close_float32(actual, wanted, name)


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
def test_random_node_matches_onnxruntime(op, seed):
    assert_matches_onnxruntime(op, *random_recurrent_case(op, seed))


def test_random_nodes_cover_both_paths_and_every_activation():
    """The random cases above reach the fast path, the general path, every activation, empty
    sequences and both layouts (else they would test less than they claim)."""
    paths, activations, empty, layouts = set(), set(), False, set()
    for op in ("RNN", "LSTM", "GRU"):
        for seed in range(60):
            attributes, given, outputs = random_recurrent_case(op, seed)
            inputs = [given.get(name) for name in INPUT_NAMES[op]]
            node = operators.parse_recurrent_node(op, inputs, attributes)
            paths.add((op, operators.rnnkit_cell(node) is not None))
            activations.update(a.name for direction in node.activations for a in direction)
            empty |= bool((node.lengths == 0).any())
            layouts.add(attributes["layout"])
    assert paths == {(op, fast) for op in ("RNN", "LSTM", "GRU") for fast in (True, False)}
    assert activations == set(ALPHA_BETA_RANGES)
    assert empty and layouts == {0, 1}


@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_empty_sequence_gives_zeros_as_onnxruntime_does(op, direction):
    """A sequence of length 0: Y zero at every step, and Y_h (Y_c) zero, not the initial state;
    the other sequences of the batch are unaffected."""
    D = 2 if direction == "bidirectional" else 1
    attributes = {"hidden_size": 3, "direction": direction}
    T, B, H, G = 4, 3, 3, GATES[op]
    rng = np.random.default_rng(0)
    given = {"X": rng.normal(size=(T, B, 2)).astype(np.float32),
             "W": rng.uniform(-0.7, 0.7, (D, G * H, 2)).astype(np.float32),
             "R": rng.uniform(-0.5, 0.5, (D, G * H, H)).astype(np.float32),
             "B": None, "sequence_lens": np.array([2, 0, 4], np.int32),
             "initial_h": np.full((D, B, H), 0.5, np.float32)}
    if op == "LSTM":
        given["initial_c"] = np.full((D, B, H), 0.25, np.float32)
    outputs = OUTPUT_NAMES[op]
    model, feeds = recurrent_model(op, attributes, given, outputs)
    ours = run(model, feeds)
    for name, actual, wanted in zip(outputs, ours, run_onnxruntime(model, feeds)):
        assert_close_float32(actual, wanted, name)
    Y, *states = ours
    assert not Y[:, :, 1].any() and all(not state[:, 1].any() for state in states)
    assert Y[:, :, 0].any() and Y[:, :, 2].any()


# -- (b) the two paths, and onnx's reference implementation ----------------------------------------


def fast_path_case(op: str, seed: int, dtype=np.float64) -> tuple[dict, dict, list[str]]:
    """A node the fast path takes: rnnkit's activations, no clip, no peepholes or input_forget,
    linear_before_reset=1, lengths in 1..T (or none)."""
    attributes, given, outputs = random_recurrent_case(op, seed, dtype=dtype)
    for name in ("activations", "activation_alpha", "activation_beta", "clip", "input_forget"):
        attributes.pop(name, None)
    if op == "RNN":
        activation = ["Tanh", "Relu", "Sigmoid"][seed % 3]
        attributes["activations"] = [activation] * (2 if attributes["direction"] == "bidirectional" else 1)
    if op == "GRU":
        attributes["linear_before_reset"] = 1
    if op == "LSTM" and seed % 4 == 0 and given["P"] is not None:
        given["P"] = np.zeros_like(given["P"])  # all-zero peepholes are no peepholes
    elif op == "LSTM":
        given["P"] = None
    if given["sequence_lens"] is not None:
        given["sequence_lens"] = np.maximum(given["sequence_lens"], 1)
    inputs = [given.get(name) for name in INPUT_NAMES[op]]
    assert operators.rnnkit_cell(operators.parse_recurrent_node(op, inputs, attributes)) is not None
    return attributes, given, outputs


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
def test_fast_path_equals_general_path_in_float64(op, seed):
    attributes, given, _ = fast_path_case(op, seed)
    inputs = [given.get(name) for name in INPUT_NAMES[op]]
    fast = operators.recurrent(op, inputs, attributes)
    general = operators.recurrent(op, inputs, attributes, use_rnnkit_kernels=False)
    for actual, expected in zip(fast, general):
        assert actual.dtype == np.float64
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
def test_fast_path_matches_onnxruntime_in_float32(op, seed):
    """What rnnkit's exporter writes runs on rnnkit's kernels, compiled where they are loaded."""
    assert_matches_onnxruntime(op, *fast_path_case(op, 500 + seed, dtype=np.float32))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
def test_general_path_matches_onnx_reference_in_float64(op, seed):
    """What ``onnx.reference`` implements: direction, layout, B, initial states, peepholes,
    linear_before_reset, default activations; no sequence_lens, clip or input_forget."""
    from onnx.reference import ReferenceEvaluator

    attributes, given, _ = random_recurrent_case(op, 1000 + seed, dtype=np.float64)
    for name in ("activations", "activation_alpha", "activation_beta", "clip", "input_forget"):
        attributes.pop(name, None)
    given["sequence_lens"] = None
    outputs = OUTPUT_NAMES[op]
    model, feeds = recurrent_model(op, attributes, given, outputs)
    expected = ReferenceEvaluator(model).run(None, feeds)
    general = operators.recurrent(op, [given.get(name) for name in INPUT_NAMES[op]], attributes,
                                  use_rnnkit_kernels=False)
    for name, actual, wanted in zip(outputs, general, expected):
        np.testing.assert_allclose(actual, wanted, rtol=1e-12, atol=1e-12, err_msg=name)
    for name, actual, wanted in zip(outputs, run(model, feeds), expected):  # whichever path run takes
        np.testing.assert_allclose(actual, wanted, rtol=1e-12, atol=1e-12, err_msg=name)


def test_alpha_beta_are_consumed_by_the_functions_that_use_them():
    """onnxruntime's rule: Tanh takes no alpha, so LeakyRelu gets the first; Affine gets the
    next alpha and the first beta; ThresholdedRelu, out of alphas, the ThresholdedRelu
    operator's default 1.0 (onnxruntime's recurrent kernels use 0 there); HardSigmoid both
    defaults. Names in any case."""
    forward, reverse = operators.resolve_activations(
        "LSTM", ["Sigmoid", "Tanh", "LeakyRelu", "affine", "THRESHOLDEDRELU", "HardSigmoid"], [0.5, 2.0], [0.1], 2)
    assert forward == (operators.OnnxActivation("Sigmoid"), operators.OnnxActivation("Tanh"),
                       operators.OnnxActivation("LeakyRelu", 0.5))
    assert reverse == (operators.OnnxActivation("Affine", 2.0, 0.1), operators.OnnxActivation("ThresholdedRelu", 1.0),
                       operators.OnnxActivation("HardSigmoid", 0.2, 0.5))
    x = np.array([-2.0, 0.5, 1.5])
    np.testing.assert_allclose(reverse[1](x), [0.0, 0.0, 1.5])
    np.testing.assert_allclose(reverse[2](x), [0.1, 0.6, 0.8])


def test_one_direction_rnn_reads_the_first_of_two_activations():
    """The RNN schema's default is ["Tanh", "Tanh"] whatever the direction, so a forward node may
    carry two names; onnxruntime, and so the executor, use the first."""
    rng = np.random.default_rng(11)
    given = {"X": rng.normal(size=(4, 2, 3)).astype(np.float32),
             "W": rng.uniform(-0.6, 0.6, (1, 5, 3)).astype(np.float32),
             "R": rng.uniform(-0.4, 0.4, (1, 5, 5)).astype(np.float32)}
    attributes = {"hidden_size": 5, "activations": ["Relu", "Tanh"]}
    assert_matches_onnxruntime("RNN", attributes, given, ["Y", "Y_h"])
    Y, _ = operators.recurrent("RNN", [given["X"], given["W"], given["R"]], attributes)
    assert (Y >= 0).all() and (Y == 0).any()  # Relu, not Tanh


@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
def test_half_precision_computes_in_float32_and_returns_float16(op):
    attributes, given, outputs = random_recurrent_case(op, 3)
    inputs = [given.get(name) for name in INPUT_NAMES[op]]
    half = [value if value is None or value.dtype.kind != "f" else value.astype(np.float16) for value in inputs]
    single = [value if value is None or value.dtype.kind != "f" else value.astype(np.float32) for value in half]
    expected = operators.recurrent(op, single, attributes, use_rnnkit_kernels=False)
    for low, high in zip(operators.recurrent(op, half, attributes), expected):
        assert low.dtype == np.float16
        np.testing.assert_array_equal(low, high.astype(np.float16))


# -- (c) clear errors ------------------------------------------------------------------------------


def lstm_case() -> tuple[dict, dict, list[str]]:
    attributes = {"hidden_size": 3}
    rng = np.random.default_rng(0)
    given = {"X": rng.normal(size=(4, 2, 5)).astype(np.float32),
             "W": rng.normal(size=(1, 12, 5)).astype(np.float32),
             "R": rng.normal(size=(1, 12, 3)).astype(np.float32)}
    return attributes, given, ["Y", "Y_h"]


def test_unknown_op_names_op_node_and_the_ops_it_supports():
    x = np.ones((2, 2), np.float32)
    model = make_model([helper.make_node("Frobnicate", ["x"], ["y"], name="mystery")], {"x": x}, ["y"])
    with pytest.raises(NotImplementedError, match=r"Frobnicate node 'mystery'.*not supported.*GRU.*LSTM.*RNN"):
        run(model, {"x": x})


def test_unknown_domain_and_unknown_attribute():
    x = np.ones((2, 2), np.float32)
    node = helper.make_node("Relu", ["x"], ["y"], name="custom", domain="com.example")
    model = make_model([node], {"x": x}, ["y"])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(NotImplementedError, match=r"Relu node 'custom'.*domain 'com.example'"):
        run(model, {"x": x})
    attributes, given, outputs = lstm_case()
    model, feeds = recurrent_model("LSTM", dict(attributes, peephole_mode=2), given, outputs)
    with pytest.raises(NotImplementedError, match=r"LSTM node 'lstm_node'.*attribute 'peephole_mode'"):
        run(model, feeds)


@pytest.mark.parametrize("change, match", [
    ({"activations": ["Sigmoid", "Tanh", "Swish"]},
     r"LSTM node 'lstm_node': activations: 'Swish' is not an activation"),
    ({"activations": ["Sigmoid", "Tanh"]}, r"activations: LSTM needs 3 per direction"),
    ({"layout": 2}, r"LSTM node 'lstm_node': layout: expected 0 .* or 1 .*got 2"),
    ({"direction": "sideways"}, r"direction: expected one of forward, reverse, bidirectional, got 'sideways'"),
    ({"hidden_size": 4}, r"W: expected shape \(1, 16, 5\).*hidden_size 4.*got \(1, 12, 5\)"),
    ({"clip": -1.0}, r"clip: expected a positive threshold"),
])
def test_bad_attributes_are_clear_errors(change, match):
    attributes, given, outputs = lstm_case()
    model, feeds = recurrent_model("LSTM", dict(attributes, **change), given, outputs)
    with pytest.raises(ValueError, match=match):
        run(model, feeds)


def test_missing_input_wrong_rank_wrong_type_and_unknown_input():
    attributes, given, outputs = lstm_case()
    model, feeds = recurrent_model("LSTM", attributes, given, outputs)
    with pytest.raises(ValueError, match=r"missing 'R'.*float32 tensor of rank 3, shape \(1, 12, 3\)"):
        run(model, {"X": feeds["X"], "W": feeds["W"]})
    with pytest.raises(ValueError, match=r"input 'X': expected a float32 tensor of rank 3.*got float32 with shape"):
        run(model, dict(feeds, X=feeds["X"].reshape(4, 10)))
    with pytest.raises(ValueError, match=r"input 'X': expected a float32 tensor.*got float64"):
        run(model, dict(feeds, X=feeds["X"].astype(np.float64)))
    with pytest.raises(ValueError, match=r"'x' is not an input of the graph \(its inputs: 'X', 'W', 'R'\)"):
        run(model, dict(feeds, x=feeds["X"]))


def test_node_level_shape_errors_name_the_input():
    """Graphs that declare no shapes still get the op's own checks."""
    attributes, given, outputs = lstm_case()
    node = helper.make_node("LSTM", ["X", "W", "R", "", "", "h0"], outputs, name="untyped", **attributes)
    inputs = [helper.make_empty_tensor_value_info(name) for name in ("X", "W", "R", "h0")]
    graph = helper.make_graph([node], "g", inputs, [onnx.ValueInfoProto(name=name) for name in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    h0 = np.zeros((1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"LSTM node 'untyped': initial_h: expected shape \(1, 2, 3\)"):
        run(model, dict(given, h0=h0))
    with pytest.raises(ValueError, match=r"X: expected rank 3"):
        run(model, dict(given, X=given["X"][0], h0=h0[:, :2]))


def test_model_from_path_and_bytes(tmp_path):
    attributes, given, outputs = lstm_case()
    model, feeds = recurrent_model("LSTM", attributes, given, outputs)
    path = tmp_path / "lstm.onnx"
    onnx.save(model, str(path))
    for source in (path, str(path), model.SerializeToString()):
        for actual, expected in zip(run(source, feeds), run(model, feeds)):
            np.testing.assert_array_equal(actual, expected)


def test_initializers_are_defaults_the_caller_may_override():
    attributes, given, outputs = lstm_case()
    node = helper.make_node("LSTM", ["X", "W", "R"], outputs, **attributes)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", 5])],
        [onnx.ValueInfoProto(name=name) for name in outputs],
        [onnx.numpy_helper.from_array(given["W"], "W"), onnx.numpy_helper.from_array(given["R"], "R")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    plain = run(model, {"X": given["X"]})
    np.testing.assert_allclose(plain[1], run_onnxruntime(model, {"X": given["X"]})[1], rtol=1e-4, atol=1e-5)
    overridden = run(model, {"X": given["X"], "R": np.zeros_like(given["R"])})
    assert not np.allclose(plain[1], overridden[1])
    with pytest.raises(ValueError, match=r"input 'R': expected a float32 tensor of rank 3"):
        run(model, {"X": given["X"], "R": np.zeros((12, 3), np.float32)})


# -- (d) the plain ops -----------------------------------------------------------------------------

_rng = np.random.default_rng(0)
_x = _rng.normal(size=(2, 3, 4)).astype(np.float32)
_m = _rng.normal(size=(3, 4)).astype(np.float32)


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# (op, inputs in order, attributes, number of outputs); the outputs must match onnxruntime's in
# dtype (float32 stays float32) and shape, and in value to float32 rounding.
PLAIN_OPS = [
    ("Identity", [_x], {}, 1),
    ("Constant", [], {"value": onnx.numpy_helper.from_array(_m, "c")}, 1),
    ("Constant", [], {"value_float": 1.5}, 1),
    ("Constant", [], {"value_floats": [1.0, 2.5]}, 1),
    ("Constant", [], {"value_int": 3}, 1),
    ("Constant", [], {"value_ints": [3, -1]}, 1),
    ("Cast", [_x], {"to": TensorProto.INT64}, 1),
    ("Cast", [_i64(1, 0, 2)], {"to": TensorProto.FLOAT}, 1),
    ("Cast", [_x], {"to": TensorProto.BOOL}, 1),
    ("Shape", [_x], {}, 1),
    ("Shape", [_x], {"start": 1}, 1),
    ("Shape", [_x], {"start": -2, "end": -1}, 1),
    ("Gather", [_x, _i64(2, 0, -1)], {"axis": 1}, 1),
    ("Gather", [_x, np.array([[1, 0]], np.int32)], {}, 1),
    ("Gather", [_i64(5, 6, 7), np.array(1, np.int64)], {}, 1),
    ("Slice", [_x, _i64(1), _i64(3), _i64(1)], {}, 1),
    ("Slice", [_x, _i64(-1, 0), _i64(-2**62, 3), _i64(2, 0), _i64(-1, 2)], {}, 1),
    ("Slice", [_x, _i64(0, 1), _i64(2**62, -1)], {}, 1),
    ("Squeeze", [_x[:, :1], _i64(1)], {}, 1),
    ("Squeeze", [_x[:1, :, :1]], {}, 1),
    ("Unsqueeze", [_m, _i64(0, -1)], {}, 1),
    ("Concat", [_x, _x[:, :1]], {"axis": 1}, 1),
    ("Concat", [_m, _m], {"axis": -1}, 1),
    ("Split", [_x, _i64(1, 3)], {"axis": 2}, 2),
    ("Split", [_x], {"axis": 2, "num_outputs": 3}, 3),
    ("Reshape", [_x, _i64(0, -1)], {}, 1),
    ("Reshape", [_x, _i64(4, 0, 2)], {}, 1),
    ("Reshape", [_x, _i64(-1)], {"allowzero": 1}, 1),
    ("Transpose", [_x], {"perm": [1, 0, 2]}, 1),
    ("Transpose", [_x], {}, 1),
    ("Expand", [_m[:1], _i64(2, 3, 4)], {}, 1),
    ("Expand", [_m, _i64(3, 1)], {}, 1),
    ("Range", [np.array(0, np.int64), np.array(7, np.int64), np.array(2, np.int64)], {}, 1),
    ("Range", [np.array(1.0, np.float32), np.array(-1.0, np.float32), np.array(-0.3, np.float32)], {}, 1),
    ("Less", [_x, _m], {}, 1),
    ("Greater", [_x, np.array(0.1, np.float32)], {}, 1),
    ("Equal", [_i64(1, 2, 3), _i64(1, 0, 3)], {}, 1),
    ("Not", [np.array([True, False])], {}, 1),
    ("Where", [_x > 0, _x, _m], {}, 1),
    ("Add", [_x, _m], {}, 1),
    ("Sub", [_x, _m[0]], {}, 1),
    ("Mul", [_x, _m], {}, 1),
    ("Div", [_x, _m + 3], {}, 1),
    ("Div", [_i64(7, -7, 7, -7), _i64(2, 2, -2, -2)], {}, 1),
    ("Neg", [_x], {}, 1),
    ("MatMul", [_x, _m.T], {}, 1),
    ("MatMul", [_m[0], _m.T], {}, 1),
    ("Gemm", [_m, _m[:2], _m[0, :2]], {"alpha": 0.5, "beta": 2.0, "transB": 1}, 1),
    ("Gemm", [_m, _m], {"transA": 1}, 1),
    ("Tanh", [_x], {}, 1),
    ("Sigmoid", [_x * 30], {}, 1),
    ("Relu", [_x], {}, 1),
    ("Softmax", [_x * 10], {}, 1),
    ("Softmax", [_x], {"axis": 0}, 1),
    ("LogSoftmax", [_x * 10], {"axis": 1}, 1),
    ("ReduceSum", [_x, _i64(1)], {}, 1),
    ("ReduceSum", [_x, _i64(0, -1)], {"keepdims": 0}, 1),
    ("ReduceSum", [_x], {}, 1),
    ("ReduceSum", [_x, np.zeros(0, np.int64)], {"noop_with_empty_axes": 1}, 1),
    ("ReduceMax", [_x, _i64(2)], {"keepdims": 0}, 1),
    ("ReduceMax", [_x], {"keepdims": 0}, 1),
    ("ReduceMean", [_x, _i64(-1)], {}, 1),
    ("ArgMax", [_x], {}, 1),
    ("ArgMax", [_x, ], {"axis": -1, "keepdims": 0}, 1),
    ("ArgMax", [np.array([[1, 3, 3], [2, 2, 0]], np.float32)], {"axis": 1, "select_last_index": 1}, 1),
    ("Max", [_x, _m, np.array(0.2, np.float32)], {}, 1),
    ("Min", [_x, _m], {}, 1),
    ("Sqrt", [np.abs(_x)], {}, 1),
    ("Exp", [_x], {}, 1),
    ("Log", [np.abs(_x) + 0.1], {}, 1),
    ("Pow", [np.abs(_x), np.array(1.5, np.float32)], {}, 1),
    ("Pow", [_x, np.array(2, np.int64)], {}, 1),
]


@pytest.mark.parametrize("op, inputs, attributes, outputs", PLAIN_OPS,
                         ids=[f"{case[0]}-{k}" for k, case in enumerate(PLAIN_OPS)])
def test_plain_op_matches_onnxruntime(op, inputs, attributes, outputs):
    names = [f"in{k}" for k in range(len(inputs))]
    output_names = [f"out{k}" for k in range(outputs)]
    node = helper.make_node(op, names, output_names, name=f"{op.lower()}_node", **attributes)
    feeds = dict(zip(names, inputs))
    model = make_model([node], feeds, output_names, opset=21)
    ours, expected = run(model, feeds), run_onnxruntime(model, feeds)
    assert len(ours) == len(expected) == outputs
    for actual, wanted in zip(ours, expected):
        assert actual.dtype == wanted.dtype and actual.shape == wanted.shape
        np.testing.assert_allclose(actual, wanted, rtol=1e-6, atol=1e-6)


def test_older_attribute_forms_of_axes_starts_and_split():
    """Opset 9: axes, split, starts and ends are attributes, and a Split without sizes makes as
    many equal parts as it has outputs."""
    nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0]),
             helper.make_node("Squeeze", ["u"], ["s"], axes=[0]),
             helper.make_node("ReduceSum", ["s"], ["r"], axes=[1], keepdims=0),
             helper.make_node("ReduceMax", ["s"], ["m"], axes=[0, 2]),
             helper.make_node("Split", ["s"], ["a", "b"], axis=2, split=[3, 1]),
             helper.make_node("Split", ["s"], ["p", "q", "v"], axis=1),
             helper.make_node("Slice", ["s"], ["c"], starts=[1], ends=[100], axes=[-1])]
    outputs = ["s", "r", "m", "a", "b", "p", "q", "v", "c"]
    model = make_model(nodes, {"x": _x}, outputs, opset=9)
    ours, expected = run(model, {"x": _x}), run_onnxruntime(model, {"x": _x})
    assert len(ours) == len(expected) == len(outputs)
    for actual, wanted in zip(ours, expected):
        assert actual.shape == wanted.shape
        np.testing.assert_allclose(actual, wanted, rtol=1e-6, atol=1e-6)


def test_softmax_before_opset_13_is_refused():
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], name="old")], {"x": _x}, ["y"], opset=11)
    with pytest.raises(NotImplementedError, match=r"Softmax node 'old': the graph imports opset 11.*from opset 13"):
        run(model, {"x": _x})


def test_a_small_graph_around_a_recurrent_node():
    """A chain like rnnkit's exports: GRU, squeeze the direction axis, project, softmax."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 2, 4)).astype(np.float32)
    W = rng.uniform(-0.5, 0.5, (1, 9, 4)).astype(np.float32)
    R = rng.uniform(-0.5, 0.5, (1, 9, 3)).astype(np.float32)
    V = rng.normal(size=(3, 5)).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["axes"], value=onnx.numpy_helper.from_array(_i64(1), "axes")),
             helper.make_node("GRU", ["x", "W", "R", "", "lengths"], ["Y", ""], hidden_size=3,
                              linear_before_reset=1),
             helper.make_node("Squeeze", ["Y", "axes"], ["states"]),
             helper.make_node("MatMul", ["states", "V"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 4]),
                     helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"])],
        [onnx.ValueInfoProto(name="probs")],
        [onnx.numpy_helper.from_array(array, name) for array, name in ((W, "W"), (R, "R"), (V, "V"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    feeds = {"x": x, "lengths": np.array([3, 1], np.int32)}
    (ours,), (expected,) = run(model, feeds), run_onnxruntime(model, feeds)
    assert_close_float32(ours, expected, "probs")
