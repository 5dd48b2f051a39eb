"""Data-parallel training on MPI: measured speed on this machine, and the scaling it predicts.

    python benchmarks/bench_mpi.py [--seconds 60]

1. Tokens per second of the default char-LM (`rnnkit train charlm`, GRU, 2 layers, H=256, 32
   streams of 64 steps), read from its metrics.jsonl: one process with one BLAS thread, one
   process with two, and `mpiexec -n 2` with one thread each.
2. The allreduce of that model's gradient (one float32 buffer, every parameter plus the loss and
   the count), timed between two processes of this machine.
3. From those: the efficiency a ring allreduce predicts on N = 2..64 machines over 10 and 100
   Gbit/s networks, for the global batch split N ways (what ``--batch-size`` means under
   mpiexec) and for a batch that grows with N.

Needs the ``mpi``, ``train`` and ``data`` extras.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOKENS_PER_STEP = 32 * 64  # charlm's default batch: 32 streams, 64 steps of truncated BPTT
# Ring allreduce: 2 (N - 1) / N of the buffer crosses each link, in 2 (N - 1) latency-bound steps.
NETWORKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 5e-6)}  # bytes/s, latency per step
MACHINES = (2, 4, 8, 16, 32, 64)


def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.is_file() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit('no mpiexec: pip install "rnnkit[mpi]"')
    return found


def environment(threads: int) -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
            "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def tokens_per_second(processes: int, threads: int, seconds: float, directory: Path) -> float:
    """Median training tokens/s of a char-LM run (the records after the first, which holds
    the warm-up)."""
    out = directory / f"charlm-{processes}x{threads}"
    command = [sys.executable, "-m", "rnnkit", "train", "charlm", "--max-seconds", str(seconds), "--out", str(out),
               "--overwrite", "--no-progress", "--save-every", "0"]
    if processes > 1:
        command = [mpiexec(), "-n", str(processes), "--oversubscribe", "--bind-to", "none", *command]
    subprocess.run(command, check=True, capture_output=True, env=environment(threads))
    rates = [json.loads(line)["items_per_second"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if "items_per_second" in line]
    return statistics.median(rates[1:] or rates)


def gradient_size() -> int:
    """Parameters of the default char-LM (the allreduce buffer adds the loss and the count)."""
    from rnnkit.models.sequence import ManyToMany
    from rnnkit.tasks.charlm import CharLM

    options = CharLM.defaults
    vocab = 100  # Shakespeare's characters and the specials, about
    model = ManyToMany(vocab, options["hidden"], vocab_size=vocab, embed_dim=options["embed"], cell=options["cell"],
                       num_layers=options["layers"])
    return sum(param.size for _, param, _ in model.named_parameters()) + 2


def allreduce_worker(size: int, repeats: int) -> None:
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    buffer = np.ones(size, dtype=np.float32)
    times = []
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        times.append(time.perf_counter() - start)
    if comm.Get_rank() == 0:
        print(json.dumps({"median": statistics.median(times), "min": min(times)}))


def allreduce_seconds(size: int, repeats: int = 200) -> dict[str, float]:
    command = [mpiexec(), "-n", "2", "--oversubscribe", sys.executable, __file__, "--allreduce-worker", str(size),
               "--repeats", str(repeats)]
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=environment(1))
    return json.loads(result.stdout.strip().splitlines()[-1])


def ring_allreduce(machines: int, size_bytes: int, bandwidth: float, latency: float) -> float:
    return 2 * (machines - 1) / machines * size_bytes / bandwidth + 2 * (machines - 1) * latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="training budget of each char-LM run (default 60)")
    parser.add_argument("--allreduce-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=200, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allreduce_worker:
        allreduce_worker(args.allreduce_worker, args.repeats)
        return
    from bench_rnn import cpu_description

    print(f"# {cpu_description()}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        runs = {"1 process, 1 BLAS thread": (1, 1), "1 process, 2 BLAS threads": (1, 2),
                "mpiexec -n 2, 1 BLAS thread each": (2, 1)}
        rates = {label: tokens_per_second(p, t, args.seconds, directory) for label, (p, t) in runs.items()}
    print(f"\n## char-LM training throughput (`rnnkit train charlm --max-seconds {args.seconds:g}`, default model)\n")
    print("| run | tokens/s | vs 1 process, 1 thread |")
    print("|---|---:|---:|")
    base = rates["1 process, 1 BLAS thread"]
    for label, rate in rates.items():
        print(f"| {label} | {rate:,.0f} | {rate / base:.2f}x |")

    size = gradient_size()
    measured = allreduce_seconds(size)
    step = TOKENS_PER_STEP / base  # one process's compute time for one global batch
    print(f"\n## allreduce of the gradient: {size:,} float32 ({size * 4 / 1e6:.2f} MB), 2 processes on this machine\n")
    print(f"median {measured['median'] * 1e3:.3f} ms, best {measured['min'] * 1e3:.3f} ms; one training step of one "
          f"process (1 thread) takes {step * 1e3:.1f} ms")
    print("\n## predicted scaling efficiency over a network (ring allreduce: 2(N-1)/N x buffer / bandwidth "
          "+ 2(N-1) x latency)\n")
    print(f"Compute per global batch: {step * 1e3:.1f} ms on one machine (measured above, 1 thread). Split: "
          f"the global batch of 32 shared by N machines (compute / N + allreduce). Grown: 32 streams per machine "
          f"(compute + allreduce). Efficiency = ideal time / predicted time; latency per step "
          + ", ".join(f"{name} {lat * 1e6:.0f} us" for name, (_, lat) in NETWORKS.items()) + ".\n")
    header = "| N | " + " | ".join(f"allreduce ms, {n} | split, {n} | grown, {n}" for n in NETWORKS) + " |"
    print(header)
    print("|---:|" + "---:|---:|---:|" * len(NETWORKS))
    for machines in MACHINES:
        cells = []
        for bandwidth, latency in NETWORKS.values():
            reduce = ring_allreduce(machines, size * 4, bandwidth, latency)
            split = (step / machines) / (step / machines + reduce)
            grown = step / (step + reduce)
            cells.append(f"{reduce * 1e3:.2f} | {split:.2f} | {grown:.2f}")
        print(f"| {machines} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
