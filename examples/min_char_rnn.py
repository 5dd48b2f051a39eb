"""min-char-rnn, rebuilt from rnnkit's pieces: a character-level language model on real text.

Karpathy's one-screen story (embedding -> Elman RNN -> output layer -> softmax cross-entropy
summed over time, truncated BPTT with the state carried between chunks, Adagrad, clipping,
sampling), but every forward and backward pass is rnnkit's. The text is CPython's own
documentation of the language (``pydoc_data.topics``), present in every Python install.

    python examples/min_char_rnn.py --seconds 60
"""

from __future__ import annotations

import argparse
import math
import time
from pydoc_data.topics import topics

import numpy as np

from rnnkit.functional import softmax_cross_entropy
from rnnkit.nn import RNN, Embedding, Linear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="training time budget")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    text = "\n".join(topics[key] for key in sorted(topics))
    chars = sorted(set(text))
    char_to_id = {c: i for i, c in enumerate(chars)}
    data = np.array([char_to_id[c] for c in text], dtype=np.int64)
    split = int(0.95 * len(data))
    train, valid = data[:split], data[split:]
    vocab, batch, bptt = len(chars), 32, 64
    counts = np.bincount(train, minlength=vocab) + 1
    unigram_bpc = float(-(counts / counts.sum() * np.log2(counts / counts.sum())).sum())
    print(f"corpus: {len(text):,} characters of pydoc_data.topics, {vocab} distinct; "
          f"unigram entropy {unigram_bpc:.3f} bits/char")

    rng = np.random.default_rng(args.seed)
    embed = Embedding(vocab, 64, seed=rng)
    rnn = RNN(64, args.hidden, num_layers=1, seed=rng)
    head = Linear(args.hidden, vocab, seed=rng)
    modules = (embed, rnn, head)
    params = [(p, g) for m in modules for _, p, g in m.named_parameters()]
    memory = [np.zeros_like(p) for p, _ in params]

    # B parallel streams through the training text; the state is carried from chunk to chunk.
    stream_len = len(train) // batch
    streams = train[: stream_len * batch].reshape(batch, stream_len).T  # (time, B)
    h = None
    position, step, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        if position + bptt + 1 > stream_len:
            position, h = 0, None
        inputs, targets = streams[position : position + bptt], streams[position + 1 : position + bptt + 1]
        position += bptt
        for m in modules:
            m.zero_grad()
        states, h_n = rnn.forward(embed.forward(inputs), h)
        loss, dlogits = softmax_cross_entropy(head.forward(states), targets, reduction="mean")
        embed.backward(rnn.backward(head.backward(dlogits))[0])
        h = h_n  # truncated BPTT: keep the state, drop the graph
        norm = math.sqrt(sum(float(np.sum(g * g)) for _, g in params))
        scale = min(1.0, 5.0 / (norm + 1e-6))
        for (p, g), m in zip(params, memory):  # Adagrad, as in min-char-rnn
            g *= scale
            m += g * g
            p -= 0.05 * g / np.sqrt(m + 1e-8)
        if step % 100 == 0:
            print(f"step {step:5d}  {time.perf_counter() - start:5.1f}s  train loss {loss / math.log(2):.3f} bits/char")
        step += 1

    rnn.eval()
    total, count, h = 0.0, 0, None
    for chunk in range(0, len(valid) - 1, 1024):
        inputs = valid[chunk : min(chunk + 1024, len(valid) - 1), None]  # (T, B=1)
        targets = valid[chunk + 1 : chunk + 1 + len(inputs), None]
        states, h = rnn.forward(embed.forward(inputs), h)
        loss, _ = softmax_cross_entropy(head.forward(states), targets)
        total, count = total + loss, count + len(targets)
    print(f"\nvalidation: {total / count / math.log(2):.3f} bits/char (unigram baseline {unigram_bpc:.3f})")

    h, x = None, np.array([[char_to_id["T"]]])
    sample = ["T"]
    for _ in range(400):
        states, h = rnn.forward(embed.forward(x), h)
        logits = head.forward(states)[0, 0].astype(np.float64) / 0.8
        p = np.exp(logits - logits.max())
        x = np.array([[rng.choice(vocab, p=p / p.sum())]])
        sample.append(chars[x[0, 0]])
    print("\nsample (temperature 0.8):\n" + "".join(sample))


if __name__ == "__main__":
    main()
