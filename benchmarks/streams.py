"""Where streams pay (issue 28): charlm at equal wall time for TBPTT(k1, k2), and resets at
document starts against none, each a table in markdown.

TBPTT: ``rnnkit train charlm`` with the defaults (the bundled Shakespeare, GRU 2 x 256) for
``--max-seconds S`` at ``--bptt K2`` in {35, 100, 200} and ``--bptt-stride K1`` in
{K2, K2/2, K2/4}; the figure is the run's test bits per character. A smaller K1 makes more
updates from the same characters, each reading K2 - K1 steps again as context, so it costs
time per character; the table says whether the longer gradient horizon is worth it.

Resets: a text of many short documents, the bundled tweets of ``classify`` (train split, one per
line, their order kept), trained with ``--documents lines`` (each stream's state starts again
at every tweet) and ``--documents one`` (the state flows from one tweet into the next), same
budget; each scored on the run's own held-out tweets, read the way it was trained.

    python benchmarks/streams.py                     # both tables, 120 s per run (~25 min)
    python benchmarks/streams.py --only resets --seconds 60

Every run is a subprocess with a time limit; the CPU and the OpenBLAS variables are printed
with the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# as the environment set them, before rnnkit (imported below) picks OpenBLAS's kernels
ENVIRONMENT = {name: os.environ.get(name, "(unset)") for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rnn import cpu_description  # noqa: E402

GRID = [(k2, k1) for k2 in (35, 100, 200) for k1 in (k2, k2 // 2, k2 // 4)]


def train(out: Path, seconds: float, *options: str) -> dict:
    """One ``rnnkit train charlm`` run; its result line."""
    command = [sys.executable, "-m", "rnnkit", "train", "charlm", "--out", str(out), "--max-seconds", str(seconds),
               "--no-progress", "--no-tensorboard", "--overwrite", *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def tbptt_table(work: Path, seconds: float) -> str:
    rows = ["| K2 (--bptt) | K1 (--bptt-stride) | updates | epochs | test bpc |", "|---:|---:|---:|---:|---:|"]
    for k2, k1 in GRID:
        result = train(work / f"tbptt-{k2}-{k1}", seconds, "--bptt", str(k2), "--bptt-stride", str(k1))
        rows.append(f"| {k2} | {k1} | {result['steps']:,} | {result['epochs']:.3f} | {result['bpc']:.4f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def documents_file(path: Path) -> Path:
    from rnnkit.data import load_classify

    tweets = [" ".join(text.split()) for text, _ in load_classify()["train"]]
    path.write_text("\n".join(tweet for tweet in tweets if tweet) + "\n", encoding="utf-8")
    return path


def resets_table(work: Path, seconds: float) -> str:
    data = documents_file(work / "tweets.txt")
    rows = ["| --documents | the state at a new tweet | updates | epochs | test bpc |", "|---|---|---:|---:|---:|"]
    for documents, what in (("lines", "starts again (reset)"), ("one", "flows on from the last tweet")):
        result = train(work / f"documents-{documents}", seconds, "--data", str(data), "--documents", documents)
        rows.append(f"| {documents} | {what} | {result['steps']:,} | {result['epochs']:.3f} | {result['bpc']:.4f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget of every run")
    parser.add_argument("--only", choices=["tbptt", "resets"], help="one table")
    parser.add_argument("--out", help="where the runs go (default: a temporary directory)")
    args = parser.parse_args()
    print(cpu_description())
    print(", ".join(f"{name}={value}" for name, value in ENVIRONMENT.items()), "(as the environment set them)")
    print(f"charlm defaults, --max-seconds {args.seconds:g} per run\n", flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.out or temporary)
        work.mkdir(parents=True, exist_ok=True)
        tables = []
        if args.only in (None, "tbptt"):
            tables.append(tbptt_table(work, args.seconds))
        if args.only in (None, "resets"):
            tables.append(resets_table(work, args.seconds))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
