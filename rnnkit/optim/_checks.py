"""Argument checks for optimizers, clipping and schedules.

Every error names the argument, the range it must lie in and the value that came, so a bad
``--lr`` or a typo in a config is fixed without reading the source. Checked values come back as
plain Python ``float``/``int``/``bool``, which keeps ``state_dict()`` JSON-serialisable even when
the caller passed NumPy scalars.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(name: str, value: Any, low: float | None = 0.0, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float if it is a real number inside the interval, else raise.

    Parameters
    ----------
    name : str
        The argument's name, used in the message (``"betas[1]"``, ``"lr"``).
    value : Any
        What the caller passed.
    low, high : float or None
        Bounds of the interval; ``None`` for no bound.
    low_open, high_open : bool
        Whether the bound itself is excluded.
    allow_inf : bool
        Accept ``+inf`` (``max_norm=inf`` means "never clip").

    Raises
    ------
    TypeError
        ``value`` is not a real number (a string, ``None``, a bool, an array).
    ValueError
        ``value`` is NaN, infinite (unless allowed) or outside the interval.
    """
    expected = _interval(low, high, low_open, high_open)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected {expected}, got {value!r} ({type(value).__name__})")
    number = float(value)
    inside = not math.isnan(number) and (allow_inf or not math.isinf(number))
    if inside and low is not None:
        inside = number > low if low_open else number >= low
    if inside and high is not None:
        inside = number < high if high_open else number <= high
    if not inside:
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return number


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` as a bool if it is one; a truthy string such as ``"False"`` is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r} ({type(value).__name__})")
    return bool(value)

