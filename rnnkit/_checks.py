"""Input validation shared by the library: every error names the argument, what was expected
and what came, so a user can fix the call without reading the source."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_float_dtype(dtype: np.dtype | type) -> np.dtype:
    """Return ``dtype`` as a NumPy dtype if it is float32 or float64, else raise TypeError."""
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {resolved}")
    return resolved


def as_float_array(
    name: str, value: object, dtype: np.dtype, ndim: int | None = None, finite: bool = True
) -> np.ndarray:
    """Convert ``value`` to a float array of ``dtype``; check its rank and (``finite``) that it
    holds no NaN/inf.

    Other float dtypes are cast (DESIGN.md: inputs are cast, not rejected); integer and bool
    inputs are cast too, which is what a user passing ``np.arange`` expects. Gradients arriving
    at ``backward`` are not checked for finiteness: a diverging loss is the trainer's to report,
    with the step it happened at.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {array.shape} ({array.ndim}-D)")
    array = np.ascontiguousarray(array, dtype=dtype)
    if finite:
        check_finite(name, array)
    return array


def check_finite(name: str, array: np.ndarray) -> None:
    """Raise ValueError if ``array`` holds NaN or infinity, saying where the first one is."""
    # A sum is one cheap pass; only when it is not finite do we pay for locating the culprit.
    # (A finite array whose sum overflows is rare and still gets the exact check.)
    if np.isfinite(array.sum()):
        return
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
        f"{name}: expected finite values, got {int(bad.sum())} NaN/inf entries "
        f"(first at index {first}: {array[first]})"
    )


def check_shape(name: str, array: np.ndarray, expected: Sequence[int | None], legend: str = "") -> None:
    """Raise ValueError unless ``array.shape`` matches ``expected`` (``None`` matches any size)."""
    shape_ok = array.ndim == len(expected) and all(
        want is None or want == got for want, got in zip(expected, array.shape)
    )
    if not shape_ok:
        pretty = "(" + ", ".join("*" if s is None else str(s) for s in expected) + ")"
        suffix = f" {legend}" if legend else ""
        raise ValueError(f"{name}: expected shape {pretty}{suffix}, got {array.shape}")


def check_lengths(lengths: object, batch: int, steps: int) -> np.ndarray | None:
    """Validate ``lengths`` ``(B,)`` with ``1 <= lengths[b] <= T``; ``None`` means all full.

    Returns an int64 array, or ``None`` when every sequence is full length, so callers can skip
    masking entirely in the common case.
    """
    if lengths is None:
        return None
    array = np.asarray(lengths)
    if array.dtype.kind not in "iu":
        if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise TypeError(f"lengths: expected integers, got dtype {array.dtype}")
    if array.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},) (one length per sequence), got {array.shape}")
    if batch and (array.min() < 1 or array.max() > steps):
        bad = int(np.flatnonzero((array < 1) | (array > steps))[0])
        raise ValueError(
            f"lengths: expected every length in 1..{steps} (T), got lengths[{bad}] = {int(array[bad])}"
        )
    array = array.astype(np.int64, copy=False)
    return None if batch and array.min() == steps else array


def check_resets(resets: object, steps: int, batch: int, batch_first: bool = False) -> np.ndarray | None:
    """Validate ``resets``: ``(T, B)`` (``(B, T)`` if ``batch_first``) of bools, or of 0 and 1.

    Returns a time-major bool array, or ``None`` when no sequence starts again anywhere, so
    callers keep the path without resets.
    """
    if resets is None:
        return None
    array = np.asarray(resets)
    legend, expected = ("(B, T)", (batch, steps)) if batch_first else ("(T, B)", (steps, batch))
    if array.shape != expected:
        raise ValueError(f"resets: expected shape {expected} {legend}, one flag per step and sequence, "
                         f"got {array.shape}")
    if array.dtype != bool:
        if array.dtype.kind not in "iuf" or not np.all((array == 0) | (array == 1)):
            raise TypeError(f"resets: expected bools (or 0 and 1), got dtype {array.dtype}")
        array = array != 0
    if batch_first:
        array = array.T
    return np.ascontiguousarray(array) if array.any() else None


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int if it is an integer >= 1: TypeError for another type (a bool
    too, and a float even if whole), ValueError for an integer below 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
