"""How far back each recurrent cell remembers: the adding problem at growing T, and the gradient
that reaches each time step.

1. The adding problem (Hochreiter & Schmidhuber, 1997, in the form of Le et al., 2015). Each step
   reads a pair (value ~ U(0, 1), marker); exactly two steps are marked, one in the first half of
   the sequence and one in the second, and the target is the sum of the two marked values. The
   model is the cell (hidden size H) and a linear head on its last output, trained with MSE and
   Adam. Predicting 1.0 always scores MSE 1/6 (the variance of the sum); a (cell, T) is *solved*
   when the MSE on a held-out test set falls below ``SOLVED_MSE`` = 0.01 (6% of that baseline)
   within the budget: at most ``--steps`` training steps and ``--seconds`` of wall clock. The test
   MSE is measured every ``eval_every`` steps and training stops at the first measurement below
   the threshold, so "steps" is the number of steps a cell needed (to that resolution); "no (time
   cap)" marks a failure where the wall clock ran out first. T grows over ``--lengths``; a cell
   stops growing after two failures in a row.
2. The gradient reaching each step: a batch of length ``FIGURE_STEPS`` goes through each cell, a
   loss sits on the last step's output only, and ``||dL/dx_t||`` is plotted against t, for the
   cells at initialisation and as trained in part 1 at the longest T that every cell reached
   (float64, so that vanishing norms do not underflow).

    python benchmarks/memory.py                   # every cell, T = 10 ... 400: 9-10 minutes
    python benchmarks/memory.py --quick           # under a minute
    python benchmarks/memory.py --cells rnn,gru --lengths 50,100 --steps 1000
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

# One BLAS thread, set before NumPy loads its BLAS: the products here are small (H = 64, a batch
# of 32), and on a 2-core machine shared with other work a second OpenBLAS thread made a training
# step at T = 10 50x slower (10 ms instead of 0.2 ms). OPENBLAS_NUM_THREADS from the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import rnnkit.nn  # noqa: E402
from rnnkit.functional.losses import mse  # noqa: E402
from rnnkit.nn import Linear, Module  # noqa: E402
from rnnkit.optim import Adam, clip_grad_norm  # noqa: E402
from rnnkit.viz import gradient_norms_through_time  # noqa: E402

#: command-line name -> class name in ``rnnkit.nn``
CELL_CLASSES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "mingru": "MinGRU", "minlstm": "MinLSTM"}
#: variants run on request (not by default): a class above with options
CELL_VARIANTS = {"lstm_ln": ("lstm", {"layer_norm": True}), "lstm_rd": ("lstm", {"recurrent_dropout": 0.25}),
                 "lstm_zo": ("lstm", {"zoneout": 0.1})}
SOLVED_MSE = 0.01
BASELINE_PREDICTION = 1.0  # the mean of the target: the best constant guess
FAILURES_TO_STOP = 2
TEST_SEED = 2026  # the held-out sets: independent of --seed
FIGURE_STEPS = 200
FIGURE_PATH = Path(__file__).resolve().parent / "figures" / "gradient_norm.png"


@dataclass(frozen=True)
class Budget:
    """What one (cell, T) may spend, and the fixed training recipe."""

    steps: int = 4000
    seconds: float = 120.0
    batch: int = 32
    lr: float = 3e-3
    clip: float = 1.0
    eval_every: int = 100
    test_size: int = 1000


QUICK_BUDGET = Budget(steps=2000, seconds=15.0, test_size=256)
DEFAULT_LENGTHS = (10, 25, 50, 100, 200, 400)
QUICK_LENGTHS = (10, 25, 50)


@dataclass
class Result:
    """One (cell, T) of the table, with the trained model kept for the figure."""

    cell: str
    length: int  # T
    test_mse: float
    baseline_mse: float
    solved: bool
    train_steps: int
    seconds: float
    model: AddingModel


def cpu_model() -> str:
    """The CPU's name from ``/proc/cpuinfo`` (Linux), or "unknown CPU"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def check_cells(names: list[str]) -> list[str]:
    """``names`` if every one is a known cell that ``rnnkit.nn`` provides; else exit with a
    message saying which is missing."""
    for name in names:
        if name not in CELL_CLASSES and name not in CELL_VARIANTS:
            raise SystemExit(f"--cells: unknown cell {name!r}; choose from {', '.join([*CELL_CLASSES, *CELL_VARIANTS])}")
        if name in CELL_CLASSES and not hasattr(rnnkit.nn, CELL_CLASSES[name]):
            raise SystemExit(f"--cells: rnnkit.nn has no {CELL_CLASSES[name]} in this version of rnnkit; "
                             f"leave {name!r} out of --cells")
    return names


def make_cell(name: str, input_size: int, hidden_size: int, seed: int, dtype: type = np.float32) -> Module:
    """One single-layer, unidirectional recurrent module by name ("rnn" is Elman's, tanh; a variant
    such as "lstm_ln" is its class with options, see ``CELL_VARIANTS``)."""
    base, options = CELL_VARIANTS.get(name, (name, {}))
    return getattr(rnnkit.nn, CELL_CLASSES[base])(input_size, hidden_size, dtype=dtype, seed=seed, **options)


def adding_problem(rng: np.random.Generator, length: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of the adding problem.

    Returns ``x (T, B, 2)`` float32, channel 0 the values ~ U(0, 1) and channel 1 the markers
    (exactly one 1 in steps ``[0, T//2)`` and one in ``[T//2, T)``), and ``y (B, 1)``, the sum
    of the two marked values.
    """
    if length < 2:
        raise ValueError(f"length: expected T >= 2 (one marker in each half), got {length}")
    half = length // 2
    values = rng.random((length, batch), dtype=np.float32)
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, length, size=batch)
    markers = np.zeros((length, batch), np.float32)
    columns = np.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    y = values[first, columns] + values[second, columns]
    return np.stack([values, markers], axis=-1), y[:, None]


class AddingModel(Module):
    """The cell and a linear head on its last output: ``x (T, B, 2) -> y (B, 1)``."""

    def __init__(self, cell: Module, hidden_size: int, seed: int) -> None:
        super().__init__()
        self.cell = cell
        self.head = Linear(hidden_size, 1, seed=seed)
        self._out_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        # out[-1] is the last state for every cell, whatever form of state it returns (an
        # LSTM's is the pair (h_n, c_n)), so the state itself is not needed.
        out, _ = self.cell.forward(x)
        self._out_shape = out.shape
        return self.head.forward(out[-1])

    def backward(self, dy: np.ndarray) -> None:
        dout = np.zeros(self._require_cache(self._out_shape), dy.dtype)
        dout[-1] = self.head.backward(dy)
        self.cell.backward(dout, input_grad=False, h0_grad=False)  # x is data, h0 is zero
        self._out_shape = None


def evaluate(model: AddingModel, x: np.ndarray, y: np.ndarray, chunk: int = 250) -> float:
    """Mean squared error over a held-out set, in chunks of sequences to bound memory, in
    evaluation mode (no recurrent dropout; zoneout's expectation)."""
    total = 0.0
    model.eval()
    for start in range(0, y.shape[0], chunk):
        predictions = model.forward(x[:, start : start + chunk])
        total += mse(predictions, y[start : start + chunk], reduction="sum")[0]
    model.train()
    return total / y.shape[0]


def train_step(model: AddingModel, optimizer: Adam, x: np.ndarray, y: np.ndarray, clip: float) -> None:
    """One step of Adam on the mean squared error of a batch, gradients clipped to norm ``clip``
    (the usual guard against the exploding side of BPTT)."""
    model.zero_grad()
    _, dy = mse(model.forward(x), y, reduction="mean")
    model.backward(dy)
    clip_grad_norm(model, clip)
    optimizer.step()


def train_adding(cell: str, length: int, budget: Budget, hidden: int, seed: int) -> Result:
    """Train one cell on the adding problem of length ``length`` within ``budget``.

    The training batches come from a stream seeded by ``(seed, T)``; the test set depends on T
    only, so every cell and every seed meets the same one.
    """
    x_test, y_test = adding_problem(np.random.default_rng((TEST_SEED, length)), length, budget.test_size)
    data = np.random.default_rng((seed, length))
    model = AddingModel(make_cell(cell, 2, hidden, seed), hidden, seed + 1)
    optimizer = Adam(model, lr=budget.lr)
    start = time.perf_counter()
    step = 0
    while step < budget.steps and time.perf_counter() - start < budget.seconds:
        train_step(model, optimizer, *adding_problem(data, length, budget.batch), budget.clip)
        step += 1
        if step % budget.eval_every == 0 and evaluate(model, x_test, y_test) < SOLVED_MSE:
            break
    seconds = time.perf_counter() - start
    test_mse = evaluate(model, x_test, y_test)  # the final model's, wherever the loop stopped
    baseline = float(np.mean((y_test - BASELINE_PREDICTION) ** 2))
    return Result(cell, length, test_mse, baseline, test_mse < SOLVED_MSE, step, seconds, model)


def verdict(result: Result, budget: Budget) -> str:
    """"yes", "no", or "no (time cap)" when the wall clock ran out before the step budget: a
    failure that a faster (or less busy) machine might turn into a success."""
    if result.solved:
        return "yes"
    return "no" if result.train_steps >= budget.steps else "no (time cap)"


def sweep(cells: list[str], lengths: list[int], budget: Budget, hidden: int, seed: int) -> list[Result]:
    """Train every cell at every length in order, printing a table row per run; a cell stops
    growing T after ``FAILURES_TO_STOP`` failures in a row."""
    print("| cell | T | test MSE | baseline | solved | steps | seconds |")
    print("|---|---:|---:|---:|:-:|---:|---:|")
    results = []
    for cell in cells:
        failures = 0
        for length in lengths:
            result = train_adding(cell, length, budget, hidden, seed)
            results.append(result)
            print(f"| {cell} | {length} | {result.test_mse:.4f} | {result.baseline_mse:.4f} | "
                  f"{verdict(result, budget)} | {result.train_steps} | {result.seconds:.1f} |", flush=True)
            failures = 0 if result.solved else failures + 1
            if failures == FAILURES_TO_STOP:
                break
    return results


def longest_solved(results: list[Result], cells: list[str]) -> dict[str, int]:
    """The longest T each cell solved (0 when none)."""
    return {cell: max((r.length for r in results if r.cell == cell and r.solved), default=0) for cell in cells}


def gradient_profile(cell: Module, name: str, hidden: int, seed: int) -> np.ndarray:
    """``||dL/dx_t||`` for ``L`` the sum of the last step's outputs of a float64 copy of
    ``cell``, over an adding-problem batch of ``FIGURE_STEPS`` steps: ``(FIGURE_STEPS,)``,
    averaged over the batch.

    float64 because at initialisation every cell's norm falls to about 1e-40 within 200 steps,
    below float32's smallest normal number.
    """
    copy = make_cell(name, 2, hidden, seed, dtype=np.float64)
    copy.load_state_dict(cell.state_dict())
    x, _ = adding_problem(np.random.default_rng((seed, FIGURE_STEPS)), FIGURE_STEPS, 64)
    return gradient_norms_through_time(copy, x)


def trained_at_common_length(results: list[Result], cells: list[str]) -> tuple[int, list[Result]]:
    """The longest T at which every cell was trained, and the runs at that T."""
    common = min(max(r.length for r in results if r.cell == cell) for cell in cells)
    return common, [r for r in results if r.length == common]


def plot_gradient_figure(panels: dict[str, dict[str, np.ndarray]], hidden: int, out: Path) -> Path:
    """One panel per title, one line per label of ``||dL/dx_t||`` against t on a log axis."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=True, squeeze=False)
    for axis, (title, norms) in zip(axes[0], panels.items()):
        for label, values in norms.items():
            axis.semilogy(np.arange(len(values)), values, label=label)
        axis.set(title=title, xlabel=f"time step t (the loss is on t = {FIGURE_STEPS - 1})")
        axis.grid(alpha=0.3, which="both")
        axis.legend(loc="lower right")
    axes[0][0].set_ylabel("||dL / dx_t||, mean over the batch")
    figure.suptitle(f"How far back the gradient reaches (adding-problem inputs, T = {FIGURE_STEPS}, H = {hidden})")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def gradient_figure(results: list[Result], cells: list[str], hidden: int, seed: int, out: Path) -> Path:
    """The figure of part 2: each cell at initialisation, and after training at the longest T
    that every cell reached in the sweep (whether it solved that T or not)."""
    at_init = {label(cell): gradient_profile(make_cell(cell, 2, hidden, seed), cell, hidden, seed)
               for cell in cells}
    common, trained = trained_at_common_length(results, cells)
    after = {f"{label(r.cell)} ({'solved' if r.solved else 'not solved'})":
             gradient_profile(r.model.cell, r.cell, hidden, seed) for r in trained}
    panels = {"at initialisation": at_init, f"after training on the adding problem at T = {common}": after}
    return plot_gradient_figure(panels, hidden, out)


def label(cell: str) -> str:
    """A cell's name in the figure: its class ("LSTM"), with a variant's options ("LSTM layer_norm")."""
    base, options = CELL_VARIANTS.get(cell, (cell, {}))
    return " ".join([CELL_CLASSES[base], *options])


def parse_lengths(text: str) -> list[int]:
    """``"10,25,50"`` -> ``[10, 25, 50]``, each at least 2."""
    lengths = [int(part) for part in text.split(",") if part.strip()]
    if not lengths or min(lengths) < 2:
        raise argparse.ArgumentTypeError(f"expected comma-separated lengths >= 2, got {text!r}")
    return lengths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"T in {QUICK_LENGTHS}, at most {QUICK_BUDGET.steps} steps / "
                             f"{QUICK_BUDGET.seconds:.0f} s per run")
    parser.add_argument("--cells", default=",".join(CELL_CLASSES), help="comma-separated subset of "
                        f"{', '.join(CELL_CLASSES)} (default: all), or the variants {', '.join(CELL_VARIANTS)}")
    parser.add_argument("--lengths", type=parse_lengths, help=f"sequence lengths T (default {DEFAULT_LENGTHS})")
    parser.add_argument("--steps", type=int, help=f"training steps per (cell, T) (default {Budget.steps})")
    parser.add_argument("--seconds", type=float, help=f"wall-clock cap per (cell, T) (default {Budget.seconds:.0f})")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size H (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and training data (default 0)")
    parser.add_argument("--figure", type=Path, default=FIGURE_PATH, help="where to write the gradient figure")
    args = parser.parse_args(argv)
    cells = check_cells([name.strip() for name in args.cells.split(",") if name.strip()])
    overrides = {"steps": args.steps, "seconds": args.seconds}
    budget = replace(QUICK_BUDGET if args.quick else Budget(), **{k: v for k, v in overrides.items() if v is not None})
    lengths = args.lengths or list(QUICK_LENGTHS if args.quick else DEFAULT_LENGTHS)

    print(f"CPU: {cpu_model()}")
    print(f"adding problem: H = {args.hidden}, batch {budget.batch}, Adam lr {budget.lr}, clip {budget.clip}, "
          f"at most {budget.steps} steps or {budget.seconds:.0f} s per (cell, T); solved = test MSE < "
          f"{SOLVED_MSE} on {budget.test_size} held-out sequences (baseline: always {BASELINE_PREDICTION})\n")
    started = time.perf_counter()
    results = sweep(cells, lengths, budget, args.hidden, args.seed)
    solved = longest_solved(results, cells)
    print("\nlongest T solved: " + ", ".join(f"{cell} {solved[cell] or 'none'}" for cell in cells))
    path = gradient_figure(results, cells, args.hidden, args.seed, args.figure)
    print(f"gradient figure: {path}; total {math.ceil(time.perf_counter() - started)} s")


if __name__ == "__main__":
    main()
