"""forecast data: one real-valued series, split 80/10/10 into contiguous pieces.

Default: yearly mean sunspot numbers 1700-2008 (309 values, 0.0 to 190.2), shipped in rnnkit as
``rnnkit/data/files/sunspots.csv`` (2.9 KB, columns ``"YEAR","SUNACTIVITY"``). It is the file
``statsmodels/datasets/sunspots/sunspots.csv`` of statsmodels 0.15.0, from NOAA's National
Geophysical Data Center, which statsmodels documents as public domain; shipping these 310 lines
saves the ``data`` extra statsmodels and its pandas/patsy/formulaic dependencies.

The splits are consecutive years (train 1700-1946, valid 1947-1977, test 1978-2008); forecasting
valid or test needs the end of the previous split as context, so ``"series"`` holds all of it.
The baseline is persistence ("next year = this year"), ``persistence_mse``.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.data._packages import shipped_file
from rnnkit.data.readers import PathLike, read_series, read_text_file
from rnnkit.data.splits import check_splittable, split_sizes

SUNSPOTS_FILE = "sunspots.csv"


def load_forecast(path: PathLike | None = None, *,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """``{"series", "train", "valid", "test"}`` -> float64 arrays.

    ``series`` is the whole series ``(N,)``; ``train``, ``valid`` and ``test`` are its consecutive
    pieces (views into it), in that order.

    Args:
        path: a file with one number per line instead of the sunspots (see ``read_series``:
            a bad line, NaN or infinity is a ``ValueError`` naming the file and line).
    """
    if path is not None:
        series = read_series(path)
        check_splittable(len(series), path, "values")
    else:
        series = sunspots()[1]
    train, valid, _ = split_sizes(len(series), fractions)
    return {"series": series, "train": series[:train], "valid": series[train:train + valid],
            "test": series[train + valid:]}


def sunspots() -> tuple[np.ndarray, np.ndarray]:
    """Years int64 ``(309,)`` 1700..2008 and yearly sunspot numbers float64 ``(309,)``."""
    path = shipped_file(SUNSPOTS_FILE)
    lines = read_text_file(path).strip().split("\n")
    if lines[0].replace('"', "").split(",") != ["YEAR", "SUNACTIVITY"]:
        raise ValueError(f"{path}, line 1: expected the header \"YEAR\",\"SUNACTIVITY\", got {lines[0]!r}")
    years, values = [], []
    for number, line in enumerate(lines[1:], start=2):
        try:
            year, value = line.split(",")
            years.append(int(year))
            values.append(float(value))
        except ValueError:
            raise ValueError(f"{path}, line {number}: expected 'year,value', got {line!r}") from None
        if not math.isfinite(values[-1]):
            raise ValueError(f"{path}, line {number}: {value.strip()} is not a finite number")
    return np.asarray(years, dtype=np.int64), np.asarray(values, dtype=np.float64)


def persistence_mse(series: np.ndarray, previous: float | None = None) -> float:
    """Mean squared error of predicting each value by the one before it.

    Args:
        series: ``(N,)`` one split.
        previous: the value just before ``series[0]`` (the end of the previous split); with it all
            N values are scored, without it the N - 1 values after the first.
    """
    x = np.asarray(series, dtype=np.float64).reshape(-1)
    if previous is not None:
        x = np.concatenate(([float(previous)], x))
    if x.size < 2:
        raise ValueError(f"series: persistence needs at least 2 values, got {x.size}")
    return float(np.mean(np.diff(x) ** 2))
