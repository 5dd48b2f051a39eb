"""Time rnnkit.nn.RNN against torch.nn.RNN on the CPU, in one process, float32.

For every configuration both libraries run the same batch with the same weights, taking turns
(rnnkit, torch, rnnkit, torch, ...) so that drift in the machine's speed hits both alike; each
turn makes one untimed call and then times three in a row, so that neither library is timed
while the other's thread pool still spins; the median over the turns is reported. "forward" is
inference (eval mode; torch under ``no_grad``); "train" is forward + backward producing every
weight gradient, but no gradient for the input, which is data, nor for the zero initial state:
torch computes none for tensors that do not require grad, rnnkit is told so with
``backward(..., input_grad=False, h0_grad=False)`` and JAX differentiates with respect to the
weights only. All three do the same arithmetic.

The roofline column is rnnkit's training time divided by the time the step's matrix products
(:meth:`Config.train_flops`) would take at the float32 GEMM throughput measured in this same run
(1.0 = as fast as the arithmetic allows at that throughput). The throughput is a 1024 x 1024 x
1024 product timed in the same rotation of turns as the configuration, so that the machine's drift
over a run (seen at 10% on shared machines) does not move the ratio; the header's figure is the
same probe once, at the start.

The last two columns bound what any implementation could reach against torch on this machine:
"best GEMM GFLOP/s" is the faster of NumPy's and torch's (MKL) 1024-cubed products, timed in the
same rotation, and "lowest train ratio" is the ratio rnnkit would have if its whole training step
ran at that rate, i.e. torch's throughput on the step's products over the best GEMM's. The summary
line gives the median and the worst of those bounds, to hold the targets against (a bound above a
target means that no step built on matrix products meets it on this machine).

Sections (all by default; ``--sections`` picks some):

- ``table``: the configurations above; with JAX installed (optional: ``pip install jax``) also
  the same Elman network as ``jax.lax.scan`` under ``jax.jit`` with gradients by ``jax.grad``
  (compile time excluded from the step time, reported in its own column).
- ``overhead``: per-time-step cost of a training step at B=1, H=64 (slope of time over T).
- ``charlm``: an end-to-end character-LM training step (embedding, 2-layer RNN, output layer,
  softmax cross-entropy over time, gradient-norm clipping, Adam), tokens/s against PyTorch.
- ``memory``: peak memory of a training step (tracemalloc) against the minimum it needs:
  parameters + gradients + the states BPTT keeps.
- ``coretype``: float32 GEMM throughput with ``OPENBLAS_CORETYPE`` unset, SkylakeX and Haswell,
  each in a fresh process (the variable is read when NumPy loads OpenBLAS).

    python benchmarks/bench_rnn.py            # everything, 11 repetitions
    python benchmarks/bench_rnn.py --quick    # 3 repetitions
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace

THREADS = int(os.environ.get("RNNKIT_BENCH_THREADS", "2"))
# Set before NumPy loads its BLAS: the thread count is read once at import.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, str(THREADS))

# --as-avx2: every library on the kernels an AVX2-only CPU runs, set before any of them loads
# (rnnkit's packed product, NumPy's OpenBLAS, torch's oneDNN, MKL and ATen, XLA).
AS_AVX2 = {"RNNKIT_PACKED": "avx2", "OPENBLAS_CORETYPE": "Haswell", "ONEDNN_MAX_CPU_ISA": "AVX2",
           "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}
if "--as-avx2" in sys.argv:
    os.environ.update(AS_AVX2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from rnnkit import openblas  # noqa: E402

openblas.configure()  # OPENBLAS_CORETYPE as the command line chooses it, before NumPy loads

import numpy as np  # noqa: E402

from rnnkit import _native, _workspace as workspace  # noqa: E402
from rnnkit.nn import RNN, RecurrentLayer, recurrent  # noqa: E402
from rnnkit.nn.module import Module  # noqa: E402


GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class Config:
    batch: int
    steps: int
    inputs: int
    hidden: int
    layers: int
    bidirectional: bool
    cell: str = "rnn"

    def label(self) -> str:
        return (f"B={self.batch} T={self.steps} I={self.inputs} H={self.hidden} "
                f"L={self.layers}{' bi' if self.bidirectional else ''}")

    def forward_flops(self) -> float:
        """Multiply-adds x 2 of the forward matrix products (input projection + recurrence)."""
        directions, width = 2 if self.bidirectional else 1, GATES[self.cell] * self.hidden
        total = 0.0
        for layer in range(self.layers):
            layer_inputs = self.inputs if layer == 0 else directions * self.hidden
            total += directions * 2 * self.steps * self.batch * width * (layer_inputs + self.hidden)
        return total

    def train_flops(self) -> float:
        """Forward + backward matrix products: the backward repeats the recurrence and adds the
        weight gradients (twice the forward's products) but no input gradient for layer 0."""
        directions, width = 2 if self.bidirectional else 1, GATES[self.cell] * self.hidden
        first_layer_dx = directions * 2 * self.steps * self.batch * width * self.inputs
        return 3 * self.forward_flops() - first_layer_dx


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


# Calls per turn when libraries take turns. Alternating single calls made each library pay for
# the other's thread pool still spinning after its last call (measured at B=32, T=100, H=128:
# torch 9.3 ms alone vs 21.8 ms alternating, rnnkit 5.5 vs 9.7 ms), which is not what a training
# loop sees. So each turn makes one untimed call, then times TURN_CALLS calls in a row.
TURN_CALLS = 3


def turn_time(function) -> float:
    """Median time of ``function`` over one turn: an untimed call first, then ``TURN_CALLS``."""
    function()
    return median_time(function, TURN_CALLS)


GEMM_SIZE = 1024


def gemm_probe(size: int = GEMM_SIZE):
    """A float32 ``size``-cubed product of NumPy's BLAS, as a function to time."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    return lambda: np.dot(a, b, out=out)


def torch_gemm_probe(size: int = GEMM_SIZE):
    """The same product in torch (its MKL), as a function to time."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand((size, size), generator=generator) for _ in range(2))
    out = torch.empty_like(a)
    return lambda: torch.mm(a, b, out=out)


def gemm_throughput(repeats: int = 10, size: int = GEMM_SIZE) -> float:
    """float32 matrix-product throughput of NumPy's BLAS in FLOP/s, measured now."""
    product = gemm_probe(size)
    for _ in range(3):
        product()
    return 2 * size**3 / median_time(product, repeats)


def bench_config(config: Config, repeats: int) -> dict:
    import torch

    from rnnkit.interop.torch import to_torch

    rng = np.random.default_rng(0)
    rnn = recurrent(config.cell, config.inputs, config.hidden, config.layers, bidirectional=config.bidirectional,
                    seed=0)
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
        rnn.forward_states(x)
        rnn.backward_states(dout, input_grad=False, h0_grad=False)  # as torch: neither tx nor h0 requires grad

    def torch_train():
        torch_rnn.train()
        torch_rnn.zero_grad(set_to_none=False)
        out, _ = torch_rnn(tx)
        out.backward(tdout)

    # The GEMM probe follows rnnkit's turn, never torch's: for tens of ms after a torch step,
    # NumPy's products here ran 10-20% slower (374-417 against 464-471 GFLOP/s).
    turns = (("rk_fwd", rnnkit_forward), ("pt_fwd", torch_forward), ("rk_train", rnnkit_train),
             ("gemm", gemm_probe()), ("pt_train", torch_train), ("torch_gemm", torch_gemm_probe()))
    results: dict[str, list[float]] = {key: [] for key, _ in turns}
    for _, function in turns:
        function()  # warm-up: allocations, thread pools
    for _ in range(repeats):
        for key, function in turns:
            results[key].append(turn_time(function))
    summary: dict = {key: statistics.median(values) for key, values in results.items()}
    summary["throughput"] = 2 * GEMM_SIZE**3 / summary.pop("gemm")
    summary["best_throughput"] = max(summary["throughput"], 2 * GEMM_SIZE**3 / summary.pop("torch_gemm"))
    return summary | {"rnn": rnn, "x": x, "dout": dout}


# -- JAX reference (optional) -------------------------------------------------------------------
def have_jax() -> bool:
    return importlib.util.find_spec("jax") is not None


def _jax_cell_step(cell: str):
    """``step(carry, projected_t, W_hh, b_hh) -> (carry, h_t)`` of ``cell`` in JAX, PyTorch's
    formulation (the GRU's hidden bias inside the reset product)."""
    import jax
    import jax.numpy as jnp

    def elman(h, p_t, W_hh, b_hh):
        h = jnp.tanh(p_t + h @ W_hh.T)
        return h, h

    def lstm(carry, p_t, W_hh, b_hh):
        h, c = carry
        i, f, g, o = jnp.split(p_t + h @ W_hh.T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    def gru(h, p_t, W_hh, b_hh):
        x_r, x_z, x_n = jnp.split(p_t, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ W_hh.T + b_hh, 3, axis=-1)
        r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, h

    return {"rnn": elman, "lstm": lstm, "gru": gru}[cell]


def jax_functions(cell: str):
    """The network in JAX: ``lax.scan`` per layer and direction, jitted; gradients of
    ``sum(out * dout)`` with respect to every weight by ``jax.grad`` (not the input, which is
    data, as in the torch and rnnkit steps)."""
    import jax
    import jax.numpy as jnp

    step = _jax_cell_step(cell)

    def network(params, x):
        layer_input = x
        for layer in params:
            outputs = []
            for direction, (W_xh, W_hh, b_xh, b_hh) in enumerate(layer):
                projected = layer_input @ W_xh.T + b_xh  # all steps and gates at once, as rnnkit does
                h0 = jnp.zeros((x.shape[1], W_hh.shape[1]), x.dtype)
                carry = (h0, h0) if cell == "lstm" else h0
                _, states = jax.lax.scan(lambda c, p, W=W_hh, b=b_hh: step(c, p, W, b), carry, projected,
                                         reverse=direction == 1)
                outputs.append(states)
            layer_input = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=-1)
        return layer_input

    def loss(params, x, dout):
        return jnp.sum(network(params, x) * dout)

    return jax.jit(network), jax.jit(jax.grad(loss))


def jax_params(rnn: RecurrentLayer) -> list:
    """Per layer and direction ``(W_xh, W_hh, b_xh, b_hh)``: the input-side bias (``b_h`` for the
    Elman cell and the LSTM) and the GRU's hidden bias (zeros where the cell has none)."""
    params = []
    for layer in range(rnn.num_layers):
        directions = []
        for suffix in rnn.parameter_suffixes(layer):
            input_bias = rnn.params.get(f"b_xh{suffix}", rnn.params.get(f"b_h{suffix}"))
            hidden_bias = rnn.params.get(f"b_hh{suffix}", np.zeros_like(input_bias))
            directions.append((rnn.params[f"W_xh{suffix}"], rnn.params[f"W_hh{suffix}"], input_bias, hidden_bias))
        params.append(directions)
    return params


def bench_jax(config: Config, rnn: RecurrentLayer, x: np.ndarray, dout: np.ndarray, repeats: int) -> dict[str, float]:
    import jax

    params = jax.tree_util.tree_map(jax.numpy.asarray, jax_params(rnn))
    jx, jdout = jax.numpy.asarray(x), jax.numpy.asarray(dout)
    forward, train = jax_functions(config.cell)
    start = time.perf_counter()
    jax.block_until_ready(train(params, jx, jdout))
    compile_s = time.perf_counter() - start
    jax.block_until_ready(forward(params, jx))
    train_s = median_time(lambda: jax.block_until_ready(train(params, jx, jdout)), repeats)
    forward_s = median_time(lambda: jax.block_until_ready(forward(params, jx)), repeats)
    return {"jax_train": train_s, "jax_fwd": forward_s, "jax_compile": compile_s}


# -- sections ---------------------------------------------------------------------------------------
def cpu_description(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU model and the vector extensions that decide which kernels run (BLAS and ours)."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as file:
            cpuinfo = file.read()
    except OSError:
        return f"CPU: {platform.processor() or platform.machine()} (no {cpuinfo_path})"
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 "unknown model")
    flags = openblas.cpu_flags(cpuinfo)
    shown = [flag for flag in ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")
             if flag in flags]
    return f"CPU: {model}; flags: {' '.join(shown) or 'none of avx/avx2/fma/avx512'}"


def section_table(configs: list[Config], repeats: int, use_jax: bool) -> None:
    print(f"cell: {configs[0].cell} (rnnkit.nn.{type(recurrent(configs[0].cell, 1, 1)).__name__} against torch's)")
    header = ("| config | fwd rnnkit ms | fwd torch ms | fwd ratio | train rnnkit ms | train torch ms "
              "| train ratio | GEMM GFLOP/s | train x roofline | best GEMM GFLOP/s | lowest train ratio |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if use_jax:
        header += " train JAX ms | rnnkit/JAX | JAX compile s |"
        rule += "---:|---:|---:|"
    print(header)
    print(rule)
    train_ratios, forward_ratios, lowest = [], [], []
    for config in configs:
        r = bench_config(config, repeats)
        roofline = config.train_flops() / r["throughput"]
        train_ratios.append(r["rk_train"] / r["pt_train"])
        forward_ratios.append(r["rk_fwd"] / r["pt_fwd"])
        lowest.append(config.train_flops() / r["best_throughput"] / r["pt_train"])
        line = (f"| {config.label()} | {r['rk_fwd'] * 1e3:.2f} | {r['pt_fwd'] * 1e3:.2f} | "
                f"{forward_ratios[-1]:.2f} | {r['rk_train'] * 1e3:.2f} | {r['pt_train'] * 1e3:.2f} | "
                f"{train_ratios[-1]:.2f} | {r['throughput'] / 1e9:.0f} | {r['rk_train'] / roofline:.2f} | "
                f"{r['best_throughput'] / 1e9:.0f} | {lowest[-1]:.2f} |")
        if use_jax:
            j = bench_jax(config, r["rnn"], r["x"], r["dout"], repeats)
            line += f" {j['jax_train'] * 1e3:.2f} | {r['rk_train'] / j['jax_train']:.2f} | {j['jax_compile']:.1f} |"
        print(line, flush=True)
    print(f"\nmedian train ratio (rnnkit/torch): {statistics.median(train_ratios):.2f}; "
          f"worst: {max(train_ratios):.2f}; worst forward ratio: {max(forward_ratios):.2f}")
    print(f"lowest ratios the arithmetic allows (every product at the best GEMM rate): median "
          f"{statistics.median(lowest):.2f}, worst config {max(lowest):.2f}")


def section_overhead(repeats: int, use_jax: bool) -> None:
    """Per-step cost of training at B=1, H=64: the slope of step time over T, so that the fixed
    per-call cost (checks, the input projection, the weight-gradient products) drops out."""
    import torch

    from rnnkit.interop.torch import to_torch

    short, long = 50, 450
    slopes: dict[str, list[float]] = {"rnnkit": [], "torch": [], "jax": []}
    for _ in range(max(3, repeats // 2)):
        per_library: dict[str, list[float]] = {k: [] for k in slopes}
        for steps in (short, long):
            config = Config(1, steps, 32, 64, 1, False)
            rnn = RNN(32, 64, seed=0)
            torch_rnn = to_torch(rnn)
            x = np.random.default_rng(0).standard_normal((steps, 1, 32), dtype=np.float32)
            dout = np.ones((steps, 1, 64), np.float32)
            tx, tdout = torch.from_numpy(x), torch.from_numpy(dout)

            def rnnkit_train():
                rnn.forward(x)
                rnn.backward(dout, input_grad=False, h0_grad=False)

            def torch_train():
                torch_rnn.zero_grad(set_to_none=False)
                torch_rnn(tx)[0].backward(tdout)

            rnnkit_train(), torch_train()
            per_library["rnnkit"].append(median_time(rnnkit_train, 21))
            per_library["torch"].append(median_time(torch_train, 5))
            if use_jax:
                per_library["jax"].append(bench_jax(config, rnn, x, dout, 21)["jax_train"])
        for library, times in per_library.items():
            if times:
                t_short, t_long = times
                slopes[library].append((t_long - t_short) / (long - short))
    line = ", ".join(f"{library} {statistics.median(v) * 1e6:.2f} us" for library, v in slopes.items() if v)
    print(f"per-step training overhead (B=1, I=32, H=64; slope between T={short} and T={long}): {line}")


class CharLM(Module):
    """Embedding -> 2-layer RNN -> Linear, the char-LM of the end-to-end benchmark."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, seed: int) -> None:
        super().__init__()
        from rnnkit.nn import Embedding, Linear

        rng = np.random.default_rng(seed)
        self.embedding = Embedding(vocab, embed, seed=rng)
        self.rnn = RNN(embed, hidden, layers, seed=rng)
        self.head = Linear(hidden, vocab, seed=rng)

    def step(self, ids: np.ndarray, targets: np.ndarray, optimizer, clip: float) -> float:
        from rnnkit.functional.losses import softmax_cross_entropy
        from rnnkit.optim import clip_grad_norm

        self.zero_grad()
        states, _ = self.rnn.forward(self.embedding.forward(ids))
        loss, dlogits = softmax_cross_entropy(self.head.forward(states), targets, reduction="mean")
        self.embedding.backward(self.rnn.backward(self.head.backward(dlogits), h0_grad=False)[0])
        clip_grad_norm(self, clip)
        optimizer.step()
        return loss


def section_charlm(repeats: int) -> None:
    import torch

    from rnnkit.optim import Adam

    vocab, embed, hidden, layers, batch, steps, clip = 96, 64, 256, 2, 32, 64, 5.0
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=(steps + 1, batch))
    inputs, targets = ids[:-1], ids[1:]
    model = CharLM(vocab, embed, hidden, layers, seed=0)
    optimizer = Adam(model, lr=1e-3)

    class TorchCharLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocab, embed)
            self.rnn = torch.nn.RNN(embed, hidden, layers)
            self.head = torch.nn.Linear(hidden, vocab)

        def forward(self, x):
            return self.head(self.rnn(self.embedding(x))[0])

    torch_model = TorchCharLM()
    torch_optimizer = torch.optim.Adam(torch_model.parameters(), lr=1e-3)
    t_inputs, t_targets = torch.from_numpy(inputs), torch.from_numpy(targets)

    def rnnkit_step():
        model.step(inputs, targets, optimizer, clip)

    def torch_step():
        torch_optimizer.zero_grad(set_to_none=False)
        logits = torch_model(t_inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), t_targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(torch_model.parameters(), clip)
        torch_optimizer.step()

    times: dict[str, list[float]] = {"rnnkit": [], "torch": []}
    rnnkit_step(), torch_step()
    for _ in range(repeats):
        times["rnnkit"].append(turn_time(rnnkit_step))
        times["torch"].append(turn_time(torch_step))
    tokens = batch * steps
    rk, pt = (tokens / statistics.median(times[k]) for k in ("rnnkit", "torch"))
    print(f"charlm step (V={vocab}, E={embed}, H={hidden}, L={layers}, B={batch}, T={steps}, Adam, clip {clip}): "
          f"rnnkit {rk:,.0f} tokens/s, torch {pt:,.0f} tokens/s, rnnkit/torch {rk / pt:.2f}x")


def section_memory() -> None:
    """Peak of a training step (tracemalloc sees NumPy's allocations) against the minimum, with
    and without the input gradient (which is an output, not counted in the minimum)."""
    print("| config | minimum MB (params + grads + kept states) | peak MB, with dx | peak / minimum "
          "| peak MB, no dx | peak / minimum |")
    print("|---|---:|---:|---:|---:|---:|")
    for config in (Config(128, 35, 256, 1024, 1, False), Config(32, 100, 64, 256, 2, True)):
        rnn = RNN(config.inputs, config.hidden, config.layers, bidirectional=config.bidirectional, seed=0)
        x = np.random.default_rng(0).standard_normal((config.steps, config.batch, config.inputs), dtype=np.float32)
        dout = np.ones((config.steps, config.batch, rnn.output_size), np.float32)
        rnn.backward(dout) if rnn.forward(x) else None  # warm-up outside the trace
        params = sum(p.nbytes for p in rnn.params.values())
        directions = 2 if config.bidirectional else 1
        states = config.layers * directions * config.steps * config.batch * config.hidden * 4
        minimum = 2 * params + states
        line = f"| {config.label()} | {minimum / 1e6:.1f} |"
        for input_grad in (True, False):
            workspace.release()  # the layers' reused blocks are allocated inside the trace, as in a first step
            tracemalloc.start()
            out, h_n = rnn.forward(x)
            grads = rnn.backward(dout, input_grad=input_grad, h0_grad=False)
            del out, h_n, grads
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            total = 2 * params + peak  # params and grads exist before the step, outside the trace
            line += f" {total / 1e6:.1f} | {total / minimum:.2f} |"
        print(line)


CORETYPE_PROBE = f"""
import sys, time, numpy as np
a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32); c = np.empty_like(a)
for _ in range(3): np.dot(a, a, out=c)
best = []
for _ in range(15):
    t = time.perf_counter(); np.dot(a, a, out=c); best.append(time.perf_counter() - t)
sys.path.insert(0, {ROOT!r})
from rnnkit._native import openblas_core
print(openblas_core() or "?", 2 * 1024**3 / sorted(best)[len(best) // 2] / 1e9)
"""


def section_coretype() -> None:
    results: dict[str, list[float]] = {}
    arch: dict[str, str] = {}
    for _ in range(3):  # interleaved rounds: drift hits every setting alike
        for coretype in ("", "SkylakeX", "Haswell"):
            env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
            if coretype:
                env["OPENBLAS_CORETYPE"] = coretype
            line = subprocess.run([sys.executable, "-c", CORETYPE_PROBE], env=env, capture_output=True,
                                  text=True, check=True).stdout.split()
            arch[coretype or "unset"] = line[0]
            results.setdefault(coretype or "unset", []).append(float(line[1]))
    print("OPENBLAS_CORETYPE: " + "; ".join(
        f"{k} -> kernel {arch[k]}, {max(v):.0f} GFLOP/s (best of 3 medians)" for k, v in results.items()))


SECTIONS = ("table", "overhead", "charlm", "memory", "coretype")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 11")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX column even if JAX is installed")
    parser.add_argument("--configs", default="", help=f"comma-separated indices into the {len(CONFIGS)} table "
                        "configurations (default: all)")
    parser.add_argument("--as-avx2", action="store_true", help="run every library on its AVX2 kernels, as on an "
                        "AVX2-only CPU (environment: " + " ".join(f"{k}={v}" for k, v in AS_AVX2.items()) + "); "
                        "rnnkit's fused gate passes keep the clone the CPU chose at load")
    parser.add_argument("--cells", default="rnn", help="comma-separated cells for the table: rnn, lstm, gru "
                        "(against torch.nn.RNN, LSTM, GRU and the same cell in JAX); the other sections time rnn")
    args = parser.parse_args()
    repeats = 3 if args.quick else 11
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; choose from {SECTIONS}")
    use_jax = not args.no_jax and have_jax()
    try:
        configs = [CONFIGS[int(i)] for i in args.configs.split(",") if i.strip()] or CONFIGS
    except (ValueError, IndexError):
        parser.error(f"--configs: expected indices in 0..{len(CONFIGS) - 1}, got {args.configs!r}")
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not cells or set(cells) - set(GATES):
        parser.error(f"--cells: expected names among {sorted(GATES)}, got {args.cells!r}")

    import torch

    torch.set_num_threads(THREADS)
    throughput = gemm_throughput()
    versions = f"numpy {np.__version__}, torch {torch.__version__}"
    if use_jax:
        import jax

        versions += f", jax {jax.__version__}"
    print(f"# {cpu_description()}")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, {THREADS} threads; {versions}; "
          f"float32 GEMM {throughput / 1e9:.0f} GFLOP/s; median of {repeats} turns of {TURN_CALLS} calls, libraries alternating"
          + ("" if use_jax else "; JAX not installed or --no-jax: no JAX column"))
    print("# rnnkit's compiled per-step loops: " + ("on" if _native.available() else f"off ({_native.why_not()})")
          + f"; packed product: {_native.packed_kernel()}")
    if args.as_avx2:
        print("# --as-avx2: " + " ".join(f"{k}={os.environ.get(k)}" for k in AS_AVX2) + " (an AVX2-only CPU's kernels "
              "on this one; its caches and clock stay this CPU's)")
    print(f"# NumPy's OpenBLAS kernels: {_native.openblas_core() or 'unknown'}; "
          f"{openblas.VARIABLE}={os.environ.get(openblas.VARIABLE, '(unset)')}"
          + (f"; {openblas.decision}" if openblas.decision else ""))
    if "table" in sections:
        for index, cell in enumerate(cells):
            if index:
                print()
            section_table([replace(config, cell=cell) for config in configs], repeats, use_jax)
    if "overhead" in sections:
        print()
        section_overhead(repeats, use_jax)
    if "charlm" in sections:
        print()
        section_charlm(repeats)
    if "memory" in sections:
        print()
        section_memory()
    if "coretype" in sections:
        print()
        section_coretype()


if __name__ == "__main__":
    main()
