"""The elementwise linear recurrence ``h_t = a_t h_{t-1} + b_t`` of the minimal cells (minGRU,
minLSTM; Feng et al. 2024, "Were RNNs All We Needed?"), forward and reverse, and the positive
candidate function ``g`` that lets it run in log space.

Letters: T (or n) steps, B batch, H hidden units; every array ``(T, B, H)`` unless said.

Two ways to run the forward recurrence, equal up to rounding:

- :func:`linear_scan`, sequential: two elementwise passes per step over ``(B, H)`` rows.
- :func:`log_linear_scan`, parallel in log space, for ``b_t > 0``: with ``A_t = prod_{r<=t} a_r``,
  ``h_t = A_t h_0 + sum_{s<=t} (A_t / A_s) b_s``, and the sum is
  ``exp(log A_t + logcumsumexp_s(log b_s - log A_s))``: a cumulative sum and a cumulative
  log-sum-exp over time, whole-array passes with no loop over steps. The logs come from the
  gates' pre-activations (``log sigmoid(k) = -softplus(-k)``), so a gate that rounds to 0 or 1
  stays finite. ``log A_t`` falls linearly with t (``T * log(1/2)`` is -2,839 at T = 4096); it is
  summed within chunks of :data:`LOG_SCAN_CHUNK` steps, the state handed from chunk to chunk, so
  the logs added and subtracted stay small and lose few bits.

BPTT's recurrence for the states' gradients runs the other way,
``dh_t = u_t + a_{t+1} dh_{t+1}`` (:func:`reverse_linear_scan`), sequentially.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

#: steps per chunk of the log-space scan: ``log A_t`` within a chunk stays within a few hundred
LOG_SCAN_CHUNK = 256
SCANS = ("sequential", "parallel")


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow."""
    return np.logaddexp(0.0, x)


def sigmoid_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = sigmoid(x)`` as ``(1 + tanh(x / 2)) / 2`` (no overflow), in place: no temporaries,
    which at ``(T, B, H)`` cost more than the arithmetic (fresh pages). ``out`` may be ``x``."""
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def positive_forward(x: np.ndarray, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """The candidate function ``g(x) = x + 1/2`` for ``x >= 0``, ``sigmoid(x)`` below: continuous,
    increasing and positive, so the recurrence's ``b_t`` is positive (Feng et al., the log-space
    minGRU and minLSTM). Computed as ``max(x, 0) + sigmoid(min(x, 0))``; ``out`` may be ``x``,
    ``scratch`` (``x``'s shape) saves the one temporary."""
    scratch = np.minimum(x, 0.0, out=scratch)
    sigmoid_into(scratch, scratch)
    out = np.maximum(x, 0.0, out=out)
    out += scratch
    return out


def positive_derivative(y: np.ndarray, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """``g'`` from the output ``y = g(x)``: 1 where ``y >= 1/2`` (``x >= 0``), else ``y (1 - y)``
    (at most 1/4 there): ``max(y (1 - y), [y >= 1/2])``. ``scratch`` (``y``'s shape, not ``out``)
    saves a temporary; a masked copy instead of it is 4x slower."""
    out = np.subtract(1.0, y, out=out)
    out *= y
    step = np.greater_equal(y, 0.5, out=scratch, casting="unsafe") if scratch is not None else (y >= 0.5)
    return np.maximum(out, step, out=out, casting="unsafe")


def log_positive(x: np.ndarray) -> np.ndarray:
    """``log g(x)``: ``log(x + 1/2)`` for ``x >= 0``, ``-softplus(-x)`` below (finite everywhere)."""
    return np.where(x >= 0, np.log(np.maximum(x, 0.0) + 0.5), -softplus(-np.minimum(x, 0.0)))


def linear_scan(a: np.ndarray, b: np.ndarray, h0: np.ndarray, out: np.ndarray) -> None:
    """``out[t] = a[t] * out[t - 1] + b[t]`` from ``out[-1] = h0`` ``(B, H)``, one step at a time
    (``out`` apart from ``a`` and ``b``; views of any strides)."""
    h = h0
    for t in range(len(a)):
        np.multiply(a[t], h, out=out[t])
        out[t] += b[t]
        h = out[t]


def log_linear_scan(log_a: np.ndarray, log_b: np.ndarray, h0: np.ndarray, out: np.ndarray,
                    chunk: int = LOG_SCAN_CHUNK) -> None:
    """:func:`linear_scan` of ``a = exp(log_a)`` and ``b = exp(log_b) > 0``, in log space: per chunk
    of steps, ``out = exp(log A + logcumsumexp(log_b - log A)) + exp(log A) * h_start`` with
    ``log A`` the chunk's cumulative sum of ``log_a``. ``h0`` may have any sign."""
    steps = len(log_a)
    h = h0
    for start in range(0, steps, chunk):
        stop = min(steps, start + chunk)
        log_prefix = np.cumsum(log_a[start:stop], axis=0)
        terms = log_b[start:stop] - log_prefix
        np.logaddexp.accumulate(terms, axis=0, out=terms)
        terms += log_prefix
        block = out[start:stop]
        np.exp(terms, out=block)
        np.exp(log_prefix, out=log_prefix)
        log_prefix *= h  # now the carried-in state's share, A_t * h_start
        block += log_prefix
        h = block[-1]


def reverse_linear_scan(a: np.ndarray, upstream: np.ndarray, carried: np.ndarray, out: np.ndarray) -> None:
    """BPTT of the recurrence over one block of ``n`` steps: ``out[t] = upstream[t] + a[t + 1] *
    out[t + 1]``, with ``out[n - 1] = upstream[n - 1] + carried`` (what flows back from after the
    block). ``out[t]`` is then ``dL/dh_t``; what flows on to the step before the block is
    ``a[0] * out[0]``."""
    np.add(upstream[-1], carried, out=out[-1])
    for t in range(len(a) - 2, -1, -1):
        np.multiply(a[t + 1], out[t + 1], out=out[t])
        out[t] += upstream[t]


class ScanScratch:
    """``(steps, B, H)`` buffers every block of a minimal cell's BPTT reuses (its
    ``Cell.make_scratch``): the states' gradients, ``1 - a``, and one for ``g'``'s step."""

    def __init__(self, steps: int, batch: int, hidden: int, dtype: np.dtype) -> None:
        self.shape, self.dtype = (steps, batch, hidden), dtype

    @cached_property
    def state_grads(self) -> np.ndarray:
        return np.empty(self.shape, self.dtype)

    @cached_property
    def work(self) -> np.ndarray:
        return np.empty(self.shape, self.dtype)

    @cached_property
    def spare(self) -> np.ndarray:
        return np.empty(self.shape, self.dtype)


def previous_difference(values: np.ndarray, states: np.ndarray, start: int, before: np.ndarray,
                        out: np.ndarray) -> np.ndarray:
    """``out[k] = values[k] - h_{start + k - 1}`` for a block from scan step ``start``: the states
    before each step (``before`` ahead of the first), without joining them into a new array."""
    np.subtract(values[0], before, out=out[0])
    np.subtract(values[1:], states[start : start + len(values) - 1], out=out[1:])
    return out
