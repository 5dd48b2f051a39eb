"""The speech task's test WER across cells, directions and frame stacking, at a fixed time budget.

Each configuration is ``rnnkit train speech --max-seconds SECONDS`` with the task's defaults but
the options named, in a fresh process and run directory, one after the other; the table gives
the test WER and CER on the held-out voices, the epochs and the steps reached. The seed's claim
that future context helps is the ``--no-bidirectional`` rows against the others.

    python benchmarks/speech_quality.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CONFIGS = [
    ("lstm, bidirectional, stack 3 (default)", []),
    ("lstm, one direction", ["--no-bidirectional"]),
    ("gru, bidirectional", ["--cell", "gru"]),
    ("gru, one direction", ["--cell", "gru", "--no-bidirectional"]),
    ("rnn, bidirectional", ["--cell", "rnn"]),
    ("rnn, one direction", ["--cell", "rnn", "--no-bidirectional"]),
    ("lstm, bidirectional, stack 1 (no stacking)", ["--stack", "1"]),
    ("lstm, bidirectional, stack 2", ["--stack", "2"]),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0)
    seconds = parser.parse_args().seconds
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"| configuration ({seconds:g} s) | test WER | test CER | epochs | steps | stopped by |")
    print("|---|---:|---:|---:|---:|---|")
    for name, options in CONFIGS:
        with tempfile.TemporaryDirectory() as out:
            run = subprocess.run([sys.executable, "-m", "rnnkit", "train", "speech", "--max-seconds", str(seconds),
                                  "--out", out, "--no-progress", *options], capture_output=True, text=True,
                                 cwd=root, timeout=seconds * 4 + 300)
        if run.returncode != 0:
            print(f"| {name} | failed: {run.stderr.strip().splitlines()[-1]} | | | | |")
            continue
        result = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"| {name} | {result['wer']:.4f} | {result['cer']:.4f} | {result['epochs']:.1f} | {result['steps']} | "
              f"{result['stopped_by']} |", flush=True)


if __name__ == "__main__":
    main()
