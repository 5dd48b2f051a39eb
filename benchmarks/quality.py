"""Train every task on its default data through the command line, with each recurrent cell, and
print one table: task, cell, metric, baseline, rnnkit, seconds; then the best cell of each run.

    python benchmarks/quality.py                 # every task, every cell, default budgets
    python benchmarks/quality.py charlm tag      # some runs
    python benchmarks/quality.py --scale 0.5     # half the time budgets
    python benchmarks/quality.py --cells rnn     # one cell (or --cells lstm,gru)

Each run is exactly what a user types (``rnnkit train TASK --cell C --max-seconds N --out DIR``); the
metrics are the JSON object on the last line of its output (test split; baselines from the
same split).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run name: (task, seconds of training, extra arguments, metrics to show)
PLAN = {
    "charlm": ("charlm", 240, [], ["bpc"]),
    "classify": ("classify", 150, [], ["accuracy", "macro_f1"]),
    "translate": ("translate", 150, [], ["exact_match", "cer"]),
    "tag": ("tag", 120, [], ["token_accuracy"]),
    "tag-unidirectional": ("tag", 120, ["--no-bidirectional"], ["token_accuracy"]),
    "caption": ("caption", 60, [], ["exact_match"]),
    "digits": ("digits", 60, [], ["accuracy"]),
    "onetoone": ("onetoone", 30, [], ["accuracy"]),
    "forecast": ("forecast", 30, [], ["mse"]),
}
LOWER_IS_BETTER = {"bpc", "cer", "mse"}
CELLS = ("rnn", "lstm", "gru")


def run(task: str, seconds: float, extra: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "rnnkit", "train", task, "--max-seconds", str(seconds), "--out", str(out), *extra]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", default=list(PLAN), metavar="RUN",
                        help=f"runs to do (default: all): {', '.join(PLAN)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every time budget")
    parser.add_argument("--extra", nargs="*", default=[], metavar="TASK:ARG",
                        help="an extra train argument for one run, e.g. charlm:--hidden=512")
    parser.add_argument("--cells", default=",".join(CELLS), metavar="CELLS",
                        help=f"comma-separated cells to train each run with (default: {','.join(CELLS)})")
    args = parser.parse_args()
    unknown = [name for name in args.runs if name not in PLAN]
    if unknown:
        parser.error(f"unknown runs {unknown}; expected some of: {', '.join(PLAN)}")
    cells = [cell.strip() for cell in args.cells.split(",") if cell.strip()]
    if not cells or any(cell not in CELLS for cell in cells):
        parser.error(f"--cells: expected a comma-separated list of {', '.join(CELLS)}, got {args.cells!r}")
    print("| task | cell | metric | baseline | rnnkit | better | train seconds |")
    print("|---|---|---|---:|---:|:-:|---:|")
    best: dict[str, tuple[str, str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.runs:
            task, seconds, extra, keys = PLAN[name]
            extra = extra + [e.split(":", 1)[1] for e in args.extra if e.startswith(name + ":")]
            for cell in cells:
                metrics = run(task, seconds * args.scale, ["--cell", cell, *extra], Path(scratch) / f"{name}-{cell}")
                for key in keys:
                    ours, base = metrics[key], metrics.get(f"baseline_{key}")
                    better = (ours < base) if key in LOWER_IS_BETTER else (ours > base)
                    print(f"| {name} | {cell} | {key} | {base:.4f} | {ours:.4f} | {'yes' if better else 'NO'} "
                          f"| {metrics['seconds']:.0f} |", flush=True)
                key = keys[0]  # the run's headline metric decides its best cell
                sign = -1.0 if key in LOWER_IS_BETTER else 1.0
                if name not in best or sign * metrics[key] > sign * best[name][2]:
                    best[name] = (cell, key, metrics[key])
    if len(cells) > 1:
        print("\n| task | best cell | by |")
        print("|---|---|---|")
        for name, (cell, key, value) in best.items():
            print(f"| {name} | {cell} | {key} {value:.4f} |")


if __name__ == "__main__":
    main()
