"""Time rnnkit.nn.RNN against torch.nn.RNN on the CPU, in one process, float32.

For every configuration both libraries run the same batch with the same weights, interleaved
(rnnkit, torch, rnnkit, torch, ...) so that drift in the machine's speed hits both alike; the
median of the repetitions is reported. "forward" is inference (eval mode; torch under
``no_grad``); "train" is forward + backward producing every gradient.

The roofline column is rnnkit's training time divided by the time the step's matrix products
would take at the float32 GEMM throughput measured in this same run (1.0 = as fast as the
arithmetic allows at that throughput).

    python benchmarks/bench_rnn.py            # the full table
    python benchmarks/bench_rnn.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

THREADS = int(os.environ.get("RNNKIT_BENCH_THREADS", "2"))
# Set before NumPy loads its BLAS: the thread count is read once at import.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, str(THREADS))

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rnnkit.nn import RNN  # noqa: E402


@dataclass(frozen=True)
class Config:
    batch: int
    steps: int
    inputs: int
    hidden: int
    layers: int
    bidirectional: bool

    def label(self) -> str:
        return (f"B={self.batch} T={self.steps} I={self.inputs} H={self.hidden} "
                f"L={self.layers}{' bi' if self.bidirectional else ''}")

    def forward_flops(self) -> float:
        """Multiply-adds x 2 of the forward matrix products (input projection + recurrence)."""
        directions = 2 if self.bidirectional else 1
        total = 0.0
        for layer in range(self.layers):
            layer_inputs = self.inputs if layer == 0 else directions * self.hidden
            total += directions * 2 * self.steps * self.batch * self.hidden * (layer_inputs + self.hidden)
        return total


CONFIGS = [
    Config(32, 100, 64, 128, 1, False),
    Config(32, 100, 64, 256, 2, True),
    Config(64, 50, 128, 512, 1, False),
    Config(1, 200, 32, 64, 1, False),
    Config(16, 64, 32, 32, 3, False),
    Config(128, 35, 256, 1024, 1, False),
]


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_throughput(repeats: int = 10, size: int = 1024) -> float:
    """float32 matrix-product throughput of NumPy's BLAS in FLOP/s, measured now."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    for _ in range(3):
        np.dot(a, b, out=out)
    return 2 * size**3 / median_time(lambda: np.dot(a, b, out=out), repeats)


def bench_config(config: Config, repeats: int) -> dict[str, float]:
    import torch

    from rnnkit.interop.torch import to_torch

    rng = np.random.default_rng(0)
    rnn = RNN(config.inputs, config.hidden, config.layers, bidirectional=config.bidirectional, seed=0)
    torch_rnn = to_torch(rnn)
    x = rng.standard_normal((config.steps, config.batch, config.inputs), dtype=np.float32)
    tx = torch.from_numpy(x)
    dout = np.ones((config.steps, config.batch, rnn.output_size), np.float32)
    tdout = torch.from_numpy(dout)

    def rnnkit_forward():
        rnn.eval()
        rnn.forward(x)
        rnn._cache = None

    def torch_forward():
        torch_rnn.eval()
        with torch.no_grad():
            torch_rnn(tx)

    def rnnkit_train():
        rnn.train()
        out, _ = rnn.forward(x)
        rnn.backward(dout)

    def torch_train():
        torch_rnn.train()
        torch_rnn.zero_grad(set_to_none=False)
        out, _ = torch_rnn(tx)
        out.backward(tdout)

    results: dict[str, list[float]] = {k: [] for k in ("rk_fwd", "pt_fwd", "rk_train", "pt_train")}
    for function in (rnnkit_forward, torch_forward, rnnkit_train, torch_train):
        function()  # warm-up: allocations, thread pools
    for _ in range(repeats):
        for key, function in (("rk_fwd", rnnkit_forward), ("pt_fwd", torch_forward),
                              ("rk_train", rnnkit_train), ("pt_train", torch_train)):
            results[key].append(median_time(function, 1))
    return {key: statistics.median(values) for key, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 11")
    args = parser.parse_args()
    repeats = 3 if args.quick else 11

    import torch

    torch.set_num_threads(THREADS)
    throughput = gemm_throughput()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {THREADS} threads; "
          f"numpy {np.__version__}, torch {torch.__version__}; "
          f"float32 GEMM {throughput / 1e9:.0f} GFLOP/s; median of {repeats} interleaved repetitions")
    header = ("| config | fwd rnnkit ms | fwd torch ms | fwd ratio | train rnnkit ms | train torch ms "
              "| train ratio | train x roofline |")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    train_ratios = []
    for config in CONFIGS:
        r = bench_config(config, repeats)
        roofline = 3 * config.forward_flops() / throughput  # backward is about twice the forward
        train_ratios.append(r["rk_train"] / r["pt_train"])
        print(f"| {config.label()} | {r['rk_fwd'] * 1e3:.2f} | {r['pt_fwd'] * 1e3:.2f} | "
              f"{r['rk_fwd'] / r['pt_fwd']:.2f} | {r['rk_train'] * 1e3:.2f} | {r['pt_train'] * 1e3:.2f} | "
              f"{train_ratios[-1]:.2f} | {r['rk_train'] / roofline:.2f} |", flush=True)
    print(f"\nmedian train ratio (rnnkit/torch): {statistics.median(train_ratios):.2f}; "
          f"worst: {max(train_ratios):.2f}")


if __name__ == "__main__":
    main()
