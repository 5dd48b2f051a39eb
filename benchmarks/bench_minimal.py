"""Where the linear recurrence wins: a training step of minGRU / minLSTM against the GRU, in rnnkit
and in torch, as the sequence grows (issue 29).

One training step is forward + backward to every weight gradient (no input gradient: the input
is data), float32, one layer, B = 16, I = 64, H = 128 and 512, at T = 128 ... 4096. Columns:

- rnnkit ``GRU`` and ``torch.nn.GRU`` (the recurrent product at every step);
- rnnkit ``MinGRU`` with its sequential scan and with its log-space scan (``scan="parallel"``),
  and ``MinLSTM`` (sequential);
- torch minGRU written as the paper's log-space form (``torch.logcumsumexp`` over time, autograd
  for the backward): what a PyTorch user would run, since torch ships no minGRU.

Libraries take turns (rnnkit, torch, ...) for ``--repeats`` rounds, each turn one untimed call
and one timed (so that no library is timed while another's thread pool still spins); each figure
is the median.

    python benchmarks/bench_minimal.py             # ~2 min on 2 vCPUs
    python benchmarks/bench_minimal.py --steps 128,1024 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ENVIRONMENT = {name: os.environ.get(name, "(unset)") for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from bench_rnn import cpu_description  # noqa: E402

from rnnkit.nn import GRU, MinGRU, MinLSTM  # noqa: E402

BATCH, INPUTS = 16, 64


def rnnkit_step(module, x):
    def step():
        out, _ = module.forward_states(x)
        module.backward_states(np.ones_like(out), input_grad=False, h0_grad=False)
    return step


def torch_gru_step(torch, x, hidden):
    module = torch.nn.GRU(INPUTS, hidden)
    tx = torch.tensor(x)

    def step():
        module.zero_grad()
        out, _ = module(tx)
        out.sum().backward()
    return step


def torch_mingru_step(torch, x, hidden):
    """minGRU in log space as Feng et al. write it: h = exp(logcumsumexp(log b - log A) + log A)."""
    linear = torch.nn.Linear(INPUTS, 2 * hidden)
    tx = torch.tensor(x)
    F = torch.nn.functional

    def log_g(v):
        return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))

    def step():
        linear.zero_grad()
        k_z, k_h = linear(tx).chunk(2, dim=-1)
        log_a, log_b = -F.softplus(k_z), -F.softplus(-k_z) + log_g(k_h)
        log_prefix = torch.cumsum(log_a, dim=0)
        h = torch.exp(log_prefix + torch.logcumsumexp(log_b - log_prefix, dim=0))
        h.sum().backward()
    return step


def median_times(steps: dict, repeats: int) -> dict[str, float]:
    for step in steps.values():
        step()  # warm up: buffers, thread pools, torch's autograd graph
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():  # in turns, so that drift hits every column alike
            step()  # untimed: the other library's thread pool may still spin (as in bench_rnn.py)
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) * 1e3 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="128,512,1024,4096", help="sequence lengths T")
    parser.add_argument("--hidden", default="128,512", help="hidden sizes H")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("RNNKIT_BENCH_THREADS", "2")))  # as bench_rnn.py
    print(cpu_description())
    print(", ".join(f"{k}={v}" for k, v in ENVIRONMENT.items()), f"(as the environment set them); numpy "
          f"{np.__version__}, torch {torch.__version__}, {torch.get_num_threads()} torch threads")
    print(f"training step (forward + backward), float32, B={BATCH} I={INPUTS}, one layer, median of "
          f"{args.repeats}, ms\n")
    names = ["rnnkit GRU", "torch GRU", "rnnkit MinGRU", "rnnkit MinGRU parallel", "rnnkit MinLSTM",
             "torch minGRU (log space)"]
    print("| H | T | " + " | ".join(names) + " | rnnkit MinGRU / rnnkit GRU | rnnkit MinGRU / torch GRU |")
    print("|---:|---:|" + "---:|" * (len(names) + 2))
    for hidden in [int(h) for h in args.hidden.split(",")]:
        for steps in [int(s) for s in args.steps.split(",")]:
            x = np.random.default_rng(0).normal(size=(steps, BATCH, INPUTS)).astype(np.float32)
            runs = {"rnnkit GRU": rnnkit_step(GRU(INPUTS, hidden, seed=0), x),
                    "torch GRU": torch_gru_step(torch, x, hidden),
                    "rnnkit MinGRU": rnnkit_step(MinGRU(INPUTS, hidden, seed=0), x),
                    "rnnkit MinGRU parallel": rnnkit_step(MinGRU(INPUTS, hidden, seed=0, scan="parallel"), x),
                    "rnnkit MinLSTM": rnnkit_step(MinLSTM(INPUTS, hidden, seed=0), x),
                    "torch minGRU (log space)": torch_mingru_step(torch, x, hidden)}
            ms = median_times(runs, args.repeats)
            cells = " | ".join(f"{ms[name]:.1f}" for name in names)
            print(f"| {hidden} | {steps} | {cells} | {ms['rnnkit MinGRU'] / ms['rnnkit GRU']:.2f} | "
                  f"{ms['rnnkit MinGRU'] / ms['torch GRU']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
