"""forecast: many-to-many regression on a real time series; at every step, predict the next value.

Default data: yearly sunspot numbers 1700-2008 (statsmodels' copy; public domain). Values are
standardised with the training split's mean and deviation. Training reads random windows of the
training years; evaluation runs the model over the whole series up to the scored split (so the
state has seen all the history, as a forecaster would) and scores the one-step-ahead forecasts
of that split, in the series' own units, against persistence (tomorrow = today).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rnnkit.data import load_forecast, persistence_mse
from rnnkit.data.readers import MAX_SERIES_VALUE
from rnnkit.models import ManyToMany
from rnnkit.tasks.base import Task, TaskError
from rnnkit.tasks.common import expect, model_kwargs, saved_entry

#: how far from the training series' mean an input to predict may be, in its deviations
MAX_DEVIATIONS = 1e6


class Forecast(Task[ManyToMany]):
    name = "forecast"
    batch_axes = (1, 1)  # inputs, targets (W, B, 1)
    metric_keys = ("mse",)
    predict_inputs = "the numbers of a series"
    primary_metric = "mse"
    # cell: lstm by measured quality (benchmarks/quality.py --scale 0.5: mse 296 lstm, 315 gru, 374 rnn)
    defaults = {"cell": "lstm", "hidden": 32, "layers": 1, "nonlinearity": "tanh", "dropout": 0.0,
                "recurrent_dropout": 0.0, "zoneout": 0.0, "layer_norm": False,
                "bidirectional": False, "batch_size": 16, "window": 40, "epochs": 300, "lr": 3e-3, "patience": 30}

    def __init__(self, data=None, seed=0, meta=None, score_file=None, options=None, load_data=True,
                 valid_file=None, test_file=None) -> None:
        super().__init__(data, seed, meta, score_file, options, load_data, valid_file, test_file)
        self.splits = load_forecast(score_file or data) if load_data else {}
        if meta is not None:
            self.mean = saved_entry(meta, "mean", expect(lambda v: _number_within(v, MAX_SERIES_VALUE), "a finite number"))
            self.scale = saved_entry(meta, "scale", expect(lambda v: _number_within(v, MAX_SERIES_VALUE) and v > 0,
                                                           "a positive number"))
        else:
            train = self.splits["train"]
            self.mean, self.scale = float(train.mean()), float(train.std() or 1.0)
        if not load_data:  # predict: the scaling is all it needs
            return
        self.normalised = (self.splits["series"] - self.mean) / self.scale
        bounds = np.cumsum([0] + [len(self.splits[k]) for k in ("train", "valid", "test")])
        self.ranges = {k: (int(bounds[i]), int(bounds[i + 1])) for i, k in enumerate(("train", "valid", "test"))}
        if score_file is not None:  # score all of the file after its first value
            self.ranges["test"] = (1, len(self.normalised))

    split_file = "series.txt"
    split_file_is_data = True

    def write_split(self, split: str, path: Path) -> None:
        """The whole series (``split_file_is_data``): a split is scored after all that precedes it."""
        Path(path).write_text("".join(f"{value!r}\n" for value in self.splits["series"].tolist()), encoding="utf-8")

    def describe(self) -> str:
        sizes = ", ".join(f"{k} {len(self.splits[k])}" for k in ("train", "valid", "test"))
        return f"{self.data_path or 'yearly sunspot numbers 1700-2008'}: values {sizes}"

    def meta(self) -> dict:
        return {"mean": self.mean, "scale": self.scale}

    def build_model(self, options: dict, dtype=np.float32) -> ManyToMany:
        if options["bidirectional"]:
            raise TaskError("forecast: a forecaster cannot read the future (drop --bidirectional)")
        self.options = {**self.options, **options}
        return ManyToMany(1, options["hidden"], input_size=1, loss="mse", dtype=dtype, seed=self.seed,
                          **model_kwargs(options))

    def train_batches(self, epoch: int):
        start, end = self.ranges["train"]
        window = min(self.options["window"], end - start - 1)
        if window < 2:
            raise TaskError(f"forecast: the training split has {end - start} values; need at least 3")
        rng = np.random.default_rng([self.seed, epoch])
        starts = rng.permutation(end - start - window)
        batch_size = self.options["batch_size"]
        out = []
        for i in range(0, len(starts), batch_size):
            index = starts[i : i + batch_size, None] + np.arange(window + 1)  # (B, W + 1)
            values = self.normalised[start:end][index].T[..., None]  # (W + 1, B, 1)
            out.append((values[:-1], values[1:]))
        return out

    def train_step(self, model: ManyToMany, batch, carry):
        inputs, targets = batch
        outputs, _ = model.forward(inputs)
        loss, doutputs = model.loss(outputs, targets)
        model.backward(doutputs, input_grad=False)  # the series is data: no gradient
        return loss, targets.size, None

    def _forecasts(self, model: ManyToMany, values: np.ndarray) -> np.ndarray:
        """One-step-ahead forecasts after each value: ``out[t]`` predicts ``values[t + 1]``."""
        outputs, _ = model.forward(values[:, None, None])
        return outputs[:, 0, 0]

    def evaluate(self, model: ManyToMany, split: str = "valid") -> dict[str, float]:
        start, end = self.ranges[split]
        predicted = self._forecasts(model, self.normalised[: end - 1])[start - 1 :]
        error = (predicted - self.normalised[start:end]) * self.scale
        mse = float(np.mean(error**2))
        return {"loss": mse / self.scale**2, "mse": mse}

    def baseline(self, split: str = "test") -> dict[str, float]:
        start, end = self.ranges[split]
        series = self.splits["series"]
        return {"mse": persistence_mse(series[start:end], previous=float(series[start - 1]))}

    def predict(self, model: ManyToMany, inputs: Iterable[str]) -> list[str]:
        """For a history given as numbers, the forecast of the next value after each one."""
        try:
            values = np.array([float(v) for v in inputs])
        except ValueError:
            raise TaskError("forecast: inputs are the numbers of a series, e.g. 'rnnkit predict DIR 12 30 55'") from None
        # Beyond a million deviations from the training series no forecast means anything, and the
        # scaled value would overflow the model's float32.
        reach = MAX_DEVIATIONS * self.scale
        beyond = np.flatnonzero(~(np.abs(values - self.mean) <= reach))  # NaN and infinity too
        if beyond.size:
            raise TaskError(f"forecast: input {beyond[0] + 1} ({values[beyond[0]]:g}): expected a finite number "
                            f"within {MAX_DEVIATIONS:g} deviations of the training series ({self.mean - reach:g} to "
                            f"{self.mean + reach:g})")
        forecasts = self._forecasts(model, (values - self.mean) / self.scale) * self.scale + self.mean
        return [f"next: {f:.1f}" for f in forecasts]

    def show(self, model: ManyToMany) -> str:
        start, end = self.ranges["test"]
        series = self.splits["series"]
        predicted = self._forecasts(model, self.normalised[: end - 1])[start - 1 :] * self.scale + self.mean
        rows = [f"  {series[t]:7.1f} {p:9.1f} {series[t - 1]:12.1f}" for t, p in zip(range(start, end), predicted)][:10]
        return "test values, rnnkit forecast, persistence:\n" + "\n".join(rows)


def _number_within(value: object, bound: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= bound
