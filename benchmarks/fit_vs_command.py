"""``fit`` on arrays against the command's task on the same data and options (issue 30).

For the tweets (``classify``) the task's own tokenizer turns the texts into token ids; ``fit``
trains the same model (same options and seed) on those arrays, and both are scored on the test
split. Both make their batches with ``bucket_batches`` from the same seed, so the figures agree
bit for bit where both processes use the same OpenBLAS kernel (2026-12-05, Intel Xeon with
AVX-512: 0.7560, 0.7457, 0.7479 for seeds 0-2, both ways; the command, in a process of its own,
may choose another kernel elsewhere, and then they agree within noise). The digits agree bit for
bit in one process (``tests/train/test_fit.py``).

    python benchmarks/fit_vs_command.py --epochs 3 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np

from rnnkit.tasks import get_task
from rnnkit.train import evaluate, fit


def command(seed: int, epochs: int, out: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "rnnkit", "train", "classify", "--out", out, "--seed", str(seed),
                           "--epochs", str(epochs), "--no-progress"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def arrays(seed: int, epochs: int, out: str) -> dict:
    task = get_task("classify")(seed=seed)
    options = {k: v for k, v in task.defaults.items() if k not in ("epochs", "lr", "patience")}
    model = task.build_model(options)
    (x, y), (xv, yv), (xt, yt) = (task.encoded[split] for split in ("train", "valid", "test"))
    fit(model, list(x), y, valid=(list(xv), yv), out=out, epochs=epochs, lr=task.defaults["lr"],
        batch_size=options["batch_size"], patience=None, seed=seed, overwrite=True, progress=False)
    return evaluate(model, list(xt), yt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            started = time.perf_counter()
            by_command = command(seed, args.epochs, f"{scratch}/command{seed}")
            middle = time.perf_counter()
            by_fit = arrays(seed, args.epochs, f"{scratch}/fit{seed}")
            rows.append((seed, by_command["accuracy"], middle - started, by_fit["accuracy"],
                         time.perf_counter() - middle))
    print(f"classify (tweets), {args.epochs} epochs, the task's default options, test accuracy")
    print("| seed | rnnkit train classify | seconds | fit on the task's arrays | seconds |")
    print("|---:|---:|---:|---:|---:|")
    for seed, a, sa, b, sb in rows:
        print(f"| {seed} | {a:.4f} | {sa:.0f} | {b:.4f} | {sb:.0f} |")
    commands, fits = np.array([r[1] for r in rows]), np.array([r[3] for r in rows])
    print(f"mean: command {commands.mean():.4f} (sd {commands.std(ddof=1) if len(rows) > 1 else 0:.4f}), "
          f"fit {fits.mean():.4f} (sd {fits.std(ddof=1) if len(rows) > 1 else 0:.4f})")


if __name__ == "__main__":
    main()
