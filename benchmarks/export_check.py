"""Every task, trained briefly and exported: `rnnkit export`'s check, as a table.

    python benchmarks/export_check.py [--seconds 15] [--tasks charlm,translate] [--keep DIR]

For each task: ``rnnkit train TASK --max-seconds N --out DIR/TASK`` (default data and cell), then
``rnnkit export DIR/TASK``, which writes the ONNX graphs and scores them in onnxruntime on the
test split with the task's own ``evaluate``. The table shows the metrics from rnnkit and from
onnxruntime, the loss's relative difference and the export's wall time. Needs the ``train``,
``data`` and ``onnx`` extras.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rnn import cpu_description  # noqa: E402

TASKS = ["charlm", "classify", "translate", "tag", "caption", "digits", "onetoone", "forecast"]


def rnnkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True)


def check(task: str, directory: Path, seconds: float) -> str:
    run = directory / task
    trained = rnnkit("train", task, "--max-seconds", str(seconds), "--out", str(run), "--overwrite", "--no-progress")
    if trained.returncode != 0:
        return f"| {task} | training failed: {trained.stderr.strip().splitlines()[-1]} | | | | |"
    cell = json.loads((run / "config.json").read_text())["model_options"].get("cell", "rnn")
    start = time.perf_counter()
    exported = rnnkit("export", str(run))
    took = time.perf_counter() - start
    if exported.returncode != 0:
        return f"| {task} | {cell} | export failed: {exported.stderr.strip().splitlines()[-1]} | | | |"
    report = json.loads(exported.stdout.splitlines()[-1])
    metrics = ", ".join(f"{k} {report['rnnkit'][k]:.4f} / {report['graphs'][k]:.4f}"
                        for k in report["rnnkit"] if k != "loss")
    relative = report["differences"]["loss"] / max(abs(report["rnnkit"]["loss"]), 1e-12)
    return (f"| {task} | {cell} | {len(report['files'])} | {metrics} | {relative:.1e} | "
            f"{'yes' if report['agree'] else 'NO'} | {took:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15, help="training budget per task (default 15)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks (default: all)")
    parser.add_argument("--keep", help="train into this directory and keep the runs (default: a temporary one)")
    args = parser.parse_args()
    print(f"# {cpu_description()}")
    print("| task | cell | graphs | test metrics, rnnkit / onnxruntime | loss rel. diff | agree | export + check s |")
    print("|---|---|---:|---|---:|:-:|---:|")
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(args.keep or temporary)
        directory.mkdir(parents=True, exist_ok=True)
        for task in args.tasks.split(","):
            print(check(task, directory, args.seconds), flush=True)


if __name__ == "__main__":
    main()
