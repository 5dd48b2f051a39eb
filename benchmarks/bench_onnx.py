"""Inference of an exported module: rnnkit's forward, onnxruntime on the graph ``to_onnx`` wrote,
and rnnkit's own executor (``rnnkit.interop.onnx.run``) on the same graph, in one process.

    python benchmarks/bench_onnx.py [--repeats N]

Each row checks first that the three agree (largest difference printed), then times them in
turns (an untimed call, then several timed ones; the median of the turns). onnxruntime runs with
as many intra-op threads as rnnkit's BLAS (``RNNKIT_BENCH_THREADS``, default 2). Needs the
``onnx`` extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_rnn import THREADS, cpu_description, turn_time  # noqa: E402  (sets the BLAS threads first)

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

from rnnkit.interop.onnx import run, to_onnx  # noqa: E402
from rnnkit.nn import GRU, LSTM, RNN  # noqa: E402

# (cell, batch, steps, input, hidden, layers, bidirectional): a batch as training evaluates it,
# a deep bidirectional reader, and one stream of the kind a deployed model serves
CONFIGS = [
    ("rnn", 32, 50, 64, 128, 1, False),
    ("lstm", 32, 50, 64, 128, 1, False),
    ("gru", 32, 50, 64, 128, 1, False),
    ("lstm", 32, 50, 128, 256, 2, True),
    ("gru", 1, 100, 64, 256, 1, False),
]
CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def bench(config: tuple, repeats: int) -> dict[str, float]:
    cell, batch, steps, features, hidden, layers, bidirectional = config
    module = CELLS[cell](features, hidden, num_layers=layers, bidirectional=bidirectional, seed=0).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, features)).astype(np.float32)
    lengths = rng.integers(steps // 2, steps + 1, size=batch)
    lengths[0] = steps
    model = to_onnx(module)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    # onnxruntime's idle threads spin for a while after each call, which slows whatever runs
    # next on the same cores (here: rnnkit's turn); without spinning each library times alone
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rows = layers * (2 if bidirectional else 1)
    feeds = {"x": x, "lengths": lengths.astype(np.int64),
             **{f"{name}0": np.zeros((rows, batch, hidden), np.float32) for name in module.cell.state_names}}
    reference = module.forward_states(x, None, lengths)[0]
    difference = max(float(np.abs(session.run(["out"], feeds)[0] - reference).max()),
                     float(np.abs(run(model, feeds)[0] - reference).max()))
    turns = {"rnnkit": [], "onnxruntime": [], "executor": []}
    for _ in range(repeats):  # in turns, so that a slow spell of the machine hits all three
        turns["rnnkit"].append(turn_time(lambda: module.forward_states(x, None, lengths)))
        turns["onnxruntime"].append(turn_time(lambda: session.run(["out"], feeds)))
        turns["executor"].append(turn_time(lambda: run(model, feeds)))
    return {"difference": difference, **{name: statistics.median(times) for name, times in turns.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="turns per implementation (default 5)")
    args = parser.parse_args()
    print(f"# {cpu_description()}")
    print(f"# numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, {THREADS} threads each; float32, "
          f"forward with random lengths (eval mode)")
    print("| cell | B, T, I, H, layers, dir | rnnkit ms | onnxruntime ms | rnnkit/ORT | executor ms | "
          "executor/rnnkit | max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for config in CONFIGS:
        r = bench(config, args.repeats)
        cell, batch, steps, features, hidden, layers, bidirectional = config
        label = f"{batch}, {steps}, {features}, {hidden}, {layers}, {'bi' if bidirectional else 'uni'}"
        print(f"| {cell} | {label} | {r['rnnkit'] * 1e3:.2f} | {r['onnxruntime'] * 1e3:.2f} | "
              f"{r['rnnkit'] / r['onnxruntime']:.2f} | {r['executor'] * 1e3:.2f} | {r['executor'] / r['rnnkit']:.2f} | "
              f"{r['difference']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
