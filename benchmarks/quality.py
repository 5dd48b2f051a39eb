"""Train every task on its default data through the command line, with each recurrent cell, and
print one table: task, cell, metric, baseline, rnnkit, seconds; then the best cell of each run.

    python benchmarks/quality.py                 # every task, every cell, default budgets
    python benchmarks/quality.py charlm tag      # some runs
    python benchmarks/quality.py --scale 0.5     # half the time budgets
    python benchmarks/quality.py --cells rnn     # one cell (or --cells lstm,gru; default: each task's own)
    python benchmarks/quality.py --your-data     # the "your data" files, default cell and options

"Your data" runs train on files of the shapes users bring (single words, names, codes, phoneme
strings, compound words, long documents; built offline by ``benchmarks/your_data.py`` from
packages of the ``bench`` extra) with default options: the command's own choice of tokens, cell
and stopping. Each row must beat its baseline clearly. ``words-fixed-epochs`` is the words file
with the stopping rule rnnkit had before (8 epochs at most, patience 3): the with/without figure
for training that runs while validation improves.

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

from rnnkit.tasks.metrics import LOWER_IS_BETTER

# run name: (task, seconds of training, extra arguments, metrics to show)
PLAN = {
    "charlm": ("charlm", 240, [], ["bpc"]),
    "classify": ("classify", 150, [], ["accuracy", "macro_f1"]),
    "translate": ("translate", 150, [], ["exact_match", "cer"]),
    "translate-no-attention": ("translate", 150, ["--attention", "none"], ["exact_match", "cer"]),
    "translate-additive": ("translate", 150, ["--attention", "additive"], ["exact_match", "cer"]),
    "tag": ("tag", 120, [], ["token_accuracy"]),
    "tag-unidirectional": ("tag", 120, ["--no-bidirectional"], ["token_accuracy"]),
    "caption": ("caption", 60, [], ["exact_match"]),
    "digits": ("digits", 60, [], ["accuracy"]),
    "onetoone": ("onetoone", 30, [], ["accuracy"]),
    "forecast": ("forecast", 30, [], ["mse"]),
}
# "your data" runs: (task, file from benchmarks/your_data.py, seconds, extra arguments, metrics)
YOUR_DATA = {
    "words": ("classify", "words", 60, [], ["accuracy", "macro_f1"]),
    "words-fixed-epochs": ("classify", "words", 60, ["--epochs", "8", "--patience", "3"], ["accuracy", "macro_f1"]),
    "names": ("classify", "names", 30, [], ["accuracy", "macro_f1"]),
    "codes": ("classify", "codes", 60, [], ["accuracy", "macro_f1"]),
    "documents": ("classify", "documents", 120, [], ["accuracy", "macro_f1"]),
    "phonemes": ("translate", "phonemes", 150, [], ["exact_match", "cer"]),
    "compound": ("translate", "compound", 150, [], ["exact_match", "cer"]),
    # harder: the German numbers spelled character by character (~41 per target), with each attention
    "compound-chars": ("translate", "compound", 150, ["--target-tokens", "char"], ["exact_match", "cer"]),
    "compound-chars-no-attention": ("translate", "compound", 150, ["--target-tokens", "char", "--attention", "none"],
                                    ["exact_match", "cer"]),
    "compound-chars-additive": ("translate", "compound", 150, ["--target-tokens", "char", "--attention", "additive"],
                                ["exact_match", "cer"]),
    "phonemes-no-attention": ("translate", "phonemes", 150, ["--attention", "none"], ["exact_match", "cer"]),
    "phonemes-additive": ("translate", "phonemes", 150, ["--attention", "additive"], ["exact_match", "cer"]),
}
CELLS = ("rnn", "lstm", "gru")
DEFAULT_CELL = "default"  # --cells default: no --cell, the task's own choice


def run(task: str, seconds: float, extra: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "rnnkit", "train", task, "--max-seconds", str(seconds), "--out", str(out), *extra]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics


def your_data_table(names: list[str], scale: float, scratch: Path) -> None:
    """One row per metric of each "your data" run, with the tokens the command chose."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from your_data import build

    print("| your data | task | tokens chosen | metric | baseline | rnnkit | clearly better | epochs | stopped by "
          "| train seconds |")
    print("|---|---|---|---|---:|---:|:-:|---:|---|---:|")
    for name in names:
        task, data, seconds, extra, keys = YOUR_DATA[name]
        path = build(data, scratch / "data")
        metrics = run(task, seconds * scale, ["--data", str(path), *extra], scratch / name)
        chosen = ", ".join(f"{side} {kind}" for side, kind in metrics["tokens"].items())
        for key in keys:
            ours, base = metrics[key], metrics[f"baseline_{key}"]
            print(f"| {name} | {task} | {chosen} | {key} | {base:.4f} | {ours:.4f} | "
                  f"{'yes' if metrics['better_than_baseline'] else 'NO'} | {metrics['epochs']:.1f} | "
                  f"{metrics['stopped_by']} | {metrics['seconds']:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", default=list(PLAN), metavar="RUN",
                        help=f"runs to do (default: all): {', '.join(PLAN)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every time budget")
    parser.add_argument("--extra", nargs="*", default=[], metavar="TASK:ARG",
                        help="an extra train argument for one run, e.g. charlm:--hidden=512")
    parser.add_argument("--cells", default=",".join(CELLS), metavar="CELLS",
                        help=f"comma-separated cells to train each run with (default: {','.join(CELLS)})")
    parser.add_argument("--your-data", nargs="*", metavar="RUN", default=None,
                        help=f"the 'your data' runs instead (default: all): {', '.join(YOUR_DATA)}")
    args = parser.parse_args()
    if args.your_data is not None:
        unknown = [name for name in args.your_data if name not in YOUR_DATA]
        if unknown:
            parser.error(f"--your-data: unknown runs {unknown}; expected some of: {', '.join(YOUR_DATA)}")
        with tempfile.TemporaryDirectory() as scratch:
            your_data_table(args.your_data or list(YOUR_DATA), args.scale, Path(scratch))
        return
    unknown = [name for name in args.runs if name not in PLAN]
    if unknown:
        parser.error(f"unknown runs {unknown}; expected some of: {', '.join(PLAN)}")
    cells = [cell.strip() for cell in args.cells.split(",") if cell.strip()]
    if not cells or any(cell not in (*CELLS, DEFAULT_CELL) for cell in cells):
        parser.error(f"--cells: expected a comma-separated list of {', '.join(CELLS)}, got {args.cells!r}")
    print("| task | cell | metric | baseline | rnnkit | better | train seconds |")
    print("|---|---|---|---:|---:|:-:|---:|")
    best: dict[str, tuple[str, str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.runs:
            task, seconds, extra, keys = PLAN[name]
            extra = extra + [e.split(":", 1)[1] for e in args.extra if e.startswith(name + ":")]
            for cell in cells:
                cell_args = [] if cell == DEFAULT_CELL else ["--cell", cell]
                metrics = run(task, seconds * args.scale, [*cell_args, *extra], Path(scratch) / f"{name}-{cell}")
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
