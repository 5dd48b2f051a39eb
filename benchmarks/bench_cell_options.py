"""What the cell options cost: a training step (forward + BPTT with every weight gradient) of an
LSTM and a GRU, plain and with each of ``proj_size``, ``layer_norm``, ``recurrent_dropout`` and
``zoneout``, against torch's plain layer (and ``torch.nn.LSTM(proj_size=...)``, which torch has),
float32, in one process, the libraries taking turns.

    python benchmarks/bench_cell_options.py                 # B = 32, T = 100, I = 64, H = 256
    python benchmarks/bench_cell_options.py --hidden 128 --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from rnnkit.nn import GRU, LSTM

OPTIONS = {"plain": {}, "proj_size=H/2": {"proj_size": None}, "layer_norm": {"layer_norm": True},
           "recurrent_dropout=0.25": {"recurrent_dropout": 0.25}, "zoneout=0.1": {"zoneout": 0.1}}


def cpu() -> str:
    """The CPU model and its vector flags, for the table's header."""
    model, flags = platform.processor() or "unknown CPU", []
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    wanted = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")
                    flags = [flag for flag in wanted if flag in line.split()]
                    break
    except OSError:
        pass
    return f"{model}; flags: {' '.join(flags) or 'unknown'}"


def rnnkit_step(module, x: np.ndarray) -> None:
    out, _ = module.forward(x)
    module.backward(np.ones_like(out), input_grad=False, h0_grad=False)


def torch_step(module, x) -> None:
    out, _ = module(x)
    out.sum().backward()


def timed(step, repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls after one untimed call."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.steps, args.batch, args.inputs)).astype(np.float32)
    tx = torch.tensor(x)
    H = args.hidden
    print(f"# CPU: {cpu()}; numpy {np.__version__}, torch {torch.__version__}")
    print(f"# training step, float32, B={args.batch} T={args.steps} I={args.inputs} H={H}, one layer; median of "
          f"{args.repeats} calls, ms; ratio = rnnkit / torch's plain layer (its own proj_size layer for proj_size)")
    print("| cell | option | rnnkit ms | torch ms | ratio | rnnkit / rnnkit plain |")
    print("|---|---|---:|---:|---:|---:|")
    for name, cls, torch_cls in (("lstm", LSTM, torch.nn.LSTM), ("gru", GRU, torch.nn.GRU)):
        torch_plain = torch_cls(args.inputs, H)
        plain_ms = None
        for option, settings in OPTIONS.items():
            settings = {k: (H // 2 if v is None else v) for k, v in settings.items()}
            if "proj_size" in settings and name != "lstm":
                continue
            module = cls(args.inputs, H, seed=0, **settings)
            reference = torch_cls(args.inputs, H, proj_size=H // 2) if "proj_size" in settings else torch_plain
            ours = timed(lambda: rnnkit_step(module, x), args.repeats)
            theirs = timed(lambda: torch_step(reference, tx), args.repeats)
            plain_ms = plain_ms or ours
            print(f"| {name} | {option} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} | {ours / plain_ms:.1f} |")


if __name__ == "__main__":
    main()
