"""Speech: rnnkit's CTC loss + gradient against ``torch.nn.functional.ctc_loss`` on the CPU, in one
process, and the log-mel front end as multiples of real time.

CTC: the same random logits ``(T, B, C)`` float32, padded targets and lengths (between half and
all of ``T`` steps and of ``S`` labels, seeded), ``reduction="mean"``; rnnkit's ``ctc_loss``
returns the loss and the gradient with respect to the logits (softmax folded in); torch computes
``ctc_loss(log_softmax(logits))`` and its ``backward`` to the logits. Each turn times one call of
each after an untimed one, taking turns; the median of the turns is reported, with the two
losses' relative difference. Log-mel: 40 and 80 bins of ten seconds of 16 kHz audio.

    python benchmarks/bench_speech.py [--turns 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_rnn import THREADS, cpu_description  # noqa: E402  (sets the BLAS threads before NumPy loads)

import numpy as np  # noqa: E402

from rnnkit.data.audio import log_mel  # noqa: E402
from rnnkit.functional.ctc import ctc_loss  # noqa: E402

CASES = [(200, 32, 30, 30), (1000, 16, 30, 150), (100, 64, 12, 7)]  # T, B, C, S


def case(steps: int, batch: int, classes: int, labels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(steps, batch, classes)).astype(np.float32)
    targets = rng.integers(1, classes, size=(batch, labels))
    target_lengths = rng.integers(labels // 2, labels + 1, size=batch)
    input_lengths = rng.integers(steps // 2, steps + 1, size=batch)
    input_lengths[0], target_lengths[0] = steps, labels
    return logits, targets, input_lengths, target_lengths


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=11)
    turns = parser.parse_args().turns
    torch.set_num_threads(THREADS)
    print(f"# {cpu_description()}")
    print(f"# numpy {np.__version__}, torch {torch.__version__}, {THREADS} threads; median of {turns} turns")
    print("| T, B, C, S | rnnkit ms | torch ms | ratio | loss rel. difference |")
    print("|---|---:|---:|---:|---:|")
    for steps, batch, classes, labels in CASES:
        logits, targets, input_lengths, target_lengths = case(steps, batch, classes, labels)
        x = torch.tensor(logits, requires_grad=True)
        arguments = (torch.tensor(targets), torch.tensor(input_lengths), torch.tensor(target_lengths))

        def ours():
            return ctc_loss(logits, targets, input_lengths, target_lengths, reduction="mean")[0]

        def theirs():
            x.grad = None
            loss = torch.nn.functional.ctc_loss(torch.log_softmax(x, -1), *arguments, reduction="mean")
            loss.backward()
            return float(loss.detach())

        times = {"ours": [], "theirs": []}
        for _ in range(turns):
            for name, function in (("ours", ours), ("theirs", theirs)):
                function()
                start = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - start)
        a, b = statistics.median(times["ours"]) * 1e3, statistics.median(times["theirs"]) * 1e3
        difference = abs(ours() - theirs()) / abs(theirs())
        print(f"| {steps}, {batch}, {classes}, {labels} | {a:.2f} | {b:.2f} | {a / b:.2f} | {difference:.1e} |")
    audio = np.random.default_rng(0).normal(size=160_000) * 0.1
    for mels in (40, 80):
        seconds = []
        for _ in range(turns):
            start = time.perf_counter()
            log_mel(audio, n_mels=mels)
            seconds.append(time.perf_counter() - start)
        print(f"log-mel, {mels} bins: 10 s of audio in {statistics.median(seconds) * 1e3:.1f} ms "
              f"({10 / statistics.median(seconds):,.0f}x real time)")


if __name__ == "__main__":
    main()
