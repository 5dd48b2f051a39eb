"""Figures written to PNG files. Each plotting function takes plain arrays or a metrics file,
so it can be used on any run; matplotlib is imported lazily (``pip install "rnnkit[train]"``)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnkit.io.checkpoint import write_bytes
from rnnkit.nn.rnn import RNN


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError('plots need matplotlib: pip install "rnnkit[train]"') from error
    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(metrics_file: str | Path, out: str | Path) -> Path:
    """Training loss per logging window and validation loss per evaluation, from a run's
    ``metrics.jsonl``, against epochs."""
    plt = _pyplot()
    records = [json.loads(line) for line in Path(metrics_file).read_text().splitlines() if line.strip()]
    train = [(r["epoch"], r["train_loss"]) for r in records if "train_loss" in r]
    valid = [(r["epoch"], r["valid_loss"]) for r in records if "valid_loss" in r]
    figure, axis = plt.subplots(figsize=(7, 4))
    if train:
        axis.plot(*zip(*train), label="train loss", alpha=0.8)
    if valid:
        axis.plot(*zip(*valid), "o-", label="validation loss")
    axis.set(xlabel="epoch", ylabel="loss per item", title="loss")
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(plt, figure, out)


def plot_hidden_states(states: np.ndarray, out: str | Path, labels: Sequence[str] | None = None, units: int = 32) -> Path:
    """Heatmap of hidden units (rows) over time (columns) for one sequence ``states (T, H)``;
    ``labels`` (e.g. the characters read) annotate the time axis."""
    plt = _pyplot()
    states = np.asarray(states)[:, :units]
    figure, axis = plt.subplots(figsize=(max(6, 0.18 * len(states)), 0.18 * states.shape[1] + 1.5))
    image = axis.imshow(states.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    if labels is not None:
        axis.set_xticks(range(len(labels)), [repr(c)[1:-1] for c in labels], fontsize=7)
    axis.set(xlabel="time step", ylabel="hidden unit", title="hidden state activations")
    figure.colorbar(image, ax=axis, fraction=0.03)
    return _save(plt, figure, out)


def gradient_norms_through_time(rnn: RNN, x: np.ndarray) -> np.ndarray:
    """``||dL/dx_t||`` for ``L`` the sum of the last step's outputs: how much of the final step's
    gradient reaches each earlier step. Returns ``(T,)``, averaged over the batch. Leaves the
    RNN's gradients as they were."""
    saved = {name: grad.copy() for name, grad in rnn.grads.items()}
    out, _ = rnn.forward(x)
    dout = np.zeros_like(out)
    dout[-1] = 1.0
    dx, _ = rnn.backward(dout)
    for name, grad in saved.items():
        rnn.grads[name][...] = grad
    assert dx is not None  # asked for (input_grad defaults to True)
    return np.linalg.norm(dx, axis=-1).mean(axis=1)


def plot_gradient_norms(norms: dict[str, np.ndarray], out: str | Path) -> Path:
    """One curve per label (e.g. per nonlinearity) of :func:`gradient_norms_through_time`, on a
    log scale, with the last step at the right."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, values in norms.items():
        axis.semilogy(np.arange(len(values)), values, label=label)
    axis.set(xlabel="time step t", ylabel="||dL_T / dx_t||", title="gradient reaching each step from the last")
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    return _save(plt, figure, out)


def plot_attention(maps: Sequence[tuple[Sequence[str], Sequence[str], np.ndarray]], out: str | Path,
                   titles: Sequence[str] | None = None) -> Path:
    """One heatmap per example: ``(source_tokens, output_tokens, weights (T, S))``, the output
    tokens down the side and the source tokens along the top; a row is what producing that
    output token read (it sums to 1 over the valid source tokens)."""
    plt = _pyplot()
    if not maps:
        raise ValueError("maps: expected at least one (source_tokens, output_tokens, weights)")
    columns = min(2, len(maps))
    rows = (len(maps) + columns - 1) // columns
    widths = [max(4.0, 0.32 * len(source) + 1.5) for source, _, _ in maps]
    heights = [max(3.0, 0.3 * len(output) + 1.5) for _, output, _ in maps]
    figure, axes = plt.subplots(rows, columns, figsize=(columns * max(widths), rows * max(heights)), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(maps):
            axis.axis("off")
            continue
        source, output, weights = maps[index]
        weights = np.asarray(weights)[: len(output), : len(source)]
        image = axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axis.set_xticks(range(len(source)), labels=list(source), rotation=90, fontsize=8)
        axis.set_yticks(range(len(output)), labels=list(output), fontsize=8)
        axis.set(xlabel="source", ylabel="output")
        if titles is not None:
            axis.set_title(titles[index], fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.03)
    return _save(plt, figure, out)


def plot_ctc_alignment(examples: Sequence[tuple[np.ndarray, np.ndarray, Sequence[str], str]], out: str | Path,
                       frames_per_step: int = 1, blank: int = 0) -> Path:
    """Per example ``(features (T, F), posteriors (T', C), label_names, title)``: the log-mel
    spectrogram, and beneath it on the same time axis each label's posterior per step (every
    step spans ``frames_per_step`` frames; the blank dashed grey, the labels the model used in
    colour, named where each peaks): the alignment CTC found."""
    plt = _pyplot()
    if not examples:
        raise ValueError("examples: expected at least one (features, posteriors, label_names, title)")
    figure, axes = plt.subplots(2 * len(examples), 1, figsize=(10, 4.2 * len(examples)), squeeze=False,
                                gridspec_kw={"height_ratios": [3, 2] * len(examples)})
    for index, (features, posteriors, names, title) in enumerate(examples):
        top, bottom = axes[2 * index, 0], axes[2 * index + 1, 0]
        features, posteriors = np.asarray(features), np.asarray(posteriors)
        top.imshow(features.T, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, len(features), 0, features.shape[1]))
        top.set(title=title, ylabel="mel bin")
        centres = (np.arange(len(posteriors)) + 0.5) * frames_per_step
        bottom.plot(centres, posteriors[:, blank], color="0.6", linestyle="--", linewidth=1, label="blank")
        best = posteriors.argmax(axis=1)
        for label in sorted(set(best.tolist()) - {blank}):
            bottom.plot(centres, posteriors[:, label], linewidth=1.5)
            for step in np.flatnonzero((best == label) & (np.r_[-1, best[:-1]] != label)):
                bottom.annotate(names[label], (centres[step], posteriors[step, label]), fontsize=8,
                                xytext=(0, 3), textcoords="offset points", ha="center")
        bottom.set(xlim=(0, len(features)), ylim=(0, 1.08), xlabel="frame (10 ms)", ylabel="posterior")
    return _save(plt, figure, out)


def _save(plt, figure, out: str | Path) -> Path:
    out = Path(out)
    figure.tight_layout()
    image = io.BytesIO()
    try:
        figure.savefig(image, dpi=100, format=out.suffix[1:].lower() or "png")
    finally:
        plt.close(figure)
    # written here, whole or not at all: matplotlib's own writer lets a full disk pass silently
    write_bytes(out, image.getvalue())
    return out
