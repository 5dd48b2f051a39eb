"""to_onnx: exported RNN / LSTM / GRU modules against rnnkit's forward, in onnxruntime (float32)
and in rnnkit's own executor (float64), on random configurations with variable lengths."""

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rnnkit.interop.onnx import run, to_onnx  # noqa: E402
from rnnkit.interop.onnx.gates import FROM_ONNX, TO_ONNX, reorder_gates  # noqa: E402
from rnnkit.nn import GRU, LSTM, RNN  # noqa: E402

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def random_module(seed: int, dtype=np.float32):
    """A module of random cell, depth, direction, merge mode, layout and initial state, and a
    batch for it with random lengths (at least one sequence full, one of length 1)."""
    rng = np.random.default_rng(seed)
    cell = ["rnn", "lstm", "gru"][seed % 3]
    bidirectional = bool(rng.integers(2))
    options = dict(num_layers=int(rng.integers(1, 4)), bidirectional=bidirectional,
                   batch_first=bool(rng.integers(2)), learn_h0=bool(rng.integers(2)), dtype=dtype, seed=seed,
                   merge_mode=str(rng.choice(["concat", "sum", "mul", "ave"])) if bidirectional else "concat")
    if cell == "rnn":
        options["nonlinearity"] = str(rng.choice(["tanh", "relu", "sigmoid"]))
    input_size, hidden = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    module = CELLS[cell](input_size, hidden, **options)
    for name in ("h0", "c0"):
        if name in module.params:
            module.params[name][...] = rng.standard_normal(module.params[name].shape)
    module.eval()
    steps, batch = int(rng.integers(1, 8)), int(rng.integers(1, 5))
    lengths = rng.integers(1, steps + 1, size=batch)
    lengths[0] = steps
    lengths[-1] = min(lengths[-1], 1) if batch > 1 else lengths[-1]
    shape = (batch, steps, input_size) if module.batch_first else (steps, batch, input_size)
    x = rng.standard_normal(shape).astype(dtype)
    rows = module.num_layers * module.num_directions
    initial = None if module.learn_h0 else tuple(
        rng.standard_normal((rows, batch, hidden)).astype(dtype) for _ in module.cell.state_names)
    return module, x, lengths, initial


def feeds_for(module, x, lengths, initial):
    feeds = {"x": x, "lengths": lengths.astype(np.int64)}
    if initial is not None:
        feeds.update({f"{name}0": value for name, value in zip(module.cell.state_names, initial)})
    return feeds


def expected(module, x, lengths, initial):
    out, finals = module.forward_states(x, initial, lengths)
    return [out, *finals]


def padding_positions(module, lengths, steps):
    """(time, batch) index arrays of the padded positions of ``out``."""
    time, batch = np.nonzero(np.arange(steps)[:, None] >= lengths[None, :])
    return (batch, time) if module.batch_first else (time, batch)


@pytest.mark.parametrize("seed", range(60))
def test_exported_module_in_onnxruntime_equals_forward(seed):
    module, x, lengths, initial = random_module(seed)
    model = to_onnx(module)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds_for(module, x, lengths, initial))
    want = expected(module, x, lengths, initial)
    assert [o.name for o in model.graph.output] == ["out", *[f"{n}_n" for n in module.cell.state_names]]
    for have, reference in zip(got, want):
        assert have.shape == reference.shape and have.dtype == np.float32
        # float32 sums of at most ~20 unit-scale terms per gate, through at most 3 layers and 7
        # steps: errors of a few ulp of the largest magnitude involved
        scale = max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(have, reference, rtol=0, atol=2e-5 * scale)
    steps = x.shape[1] if module.batch_first else x.shape[0]
    assert np.all(got[0][padding_positions(module, lengths, steps)] == 0.0)


@pytest.mark.parametrize("seed", range(0, 60, 5))
def test_float64_export_runs_in_rnnkits_executor_exactly(seed):
    module, x, lengths, initial = random_module(seed, np.float64)
    model = to_onnx(module)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    for have, reference in zip(run(model, feeds_for(module, x, lengths, initial)), expected(module, x, lengths, initial)):
        np.testing.assert_allclose(have, reference, rtol=1e-12, atol=1e-12)


def test_each_layer_is_one_recurrent_node_with_onnx_gate_order():
    """One LSTM node per layer; its W holds rnnkit's i, f, g, o blocks as ONNX's i, o, f, c."""
    lstm = LSTM(3, 2, num_layers=2, bidirectional=True, seed=0)
    model = to_onnx(lstm)
    nodes = [node for node in model.graph.node if node.op_type == "LSTM"]
    assert len(nodes) == 2
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    W = weights[nodes[0].input[1]]
    i, f, g, o = np.split(lstm.params["W_xh_l0_reverse"], 4)
    np.testing.assert_array_equal(W[1], np.concatenate([i, o, f, g]))
    np.testing.assert_array_equal(reorder_gates(np.arange(6.0)[:, None], (1, 0, 2))[:, 0], [2, 3, 0, 1, 4, 5])
    for op, order in TO_ONNX.items():  # the two orders undo each other
        blocks = np.arange(len(order) * 2.0)
        np.testing.assert_array_equal(reorder_gates(reorder_gates(blocks, order), FROM_ONNX[op]), blocks)


def test_to_onnx_writes_the_file(tmp_path):
    gru = GRU(2, 3, seed=0)
    path = tmp_path / "gru.onnx"
    model = to_onnx(gru, path)
    assert onnx.load(str(path)).SerializeToString() == model.SerializeToString()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        to_onnx(gru, tmp_path)


def test_to_onnx_refuses_what_is_not_a_recurrent_module():
    from rnnkit.nn import Linear

    with pytest.raises(TypeError, match="expected an rnnkit.nn.RNN, LSTM or GRU, got Linear"):
        to_onnx(Linear(2, 3))


def test_import_rnnkit_never_imports_onnx():
    code = ("import sys, rnnkit, rnnkit.nn, rnnkit.models, rnnkit.interop, rnnkit.cli.main, rnnkit.interop.onnx; "
            "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules, 'onnx was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
