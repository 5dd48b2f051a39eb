"""Prove a backward pass the way rnnkit proves its own: gradient checks, and PyTorch as a reference.

Every forward/backward pair in ``rnnkit.functional`` and every module in ``rnnkit.nn`` is checked
by one recipe, and :func:`gradcheck` runs it on a cell of your own:

1. a scalar loss ``L = sum_k sum(out_k * g_k)`` is built from the outputs with fixed random
   upstream gradients ``g_k`` (every output entry counts, each with its own weight);
2. the backward runs once on those ``g_k``: the analytic gradients;
3. each entry of each floating-point input and parameter is moved by ``+eps`` and ``-eps`` in
   float64 and ``(L(+eps) - L(-eps)) / (2 eps)`` is taken: the numerical gradients;
4. analytic ``a`` and numerical ``n`` are compared per input and per parameter by the relative
   error ``max |a - n| / max(max |a|, max |n|)`` (:func:`relative_error`).

A pair of pure functions follows the cs231n convention of ``rnnkit.functional``: the forward
takes the inputs and returns its outputs and then a cache, ``forward(*inputs) -> (*outputs,
cache)``; the backward takes one upstream gradient per floating-point output, then the cache, and
returns one gradient per floating-point input, in order::

    >>> import numpy as np
    >>> from rnnkit.testing import gradcheck
    >>> def forward(x, W):
    ...     y = np.tanh(x @ W.T)
    ...     return y, (x, W, y)
    >>> def backward(dy, cache):
    ...     x, W, y = cache
    ...     da = dy * (1 - y**2)
    ...     return da @ W, da.T @ x                # dx, dW
    >>> rng = np.random.default_rng(0)
    >>> report = gradcheck(forward, rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), backward=backward)
    >>> report.ok, sorted(report.errors)
    (True, ['W', 'x'])

A module is checked through its own ``forward``/``backward`` and ``named_parameters()``:
``gradcheck(rnn, x, h0, lengths)`` checks ``x``, ``h0`` and every parameter (``lengths``, an
integer array, is passed through unchecked). ``str(report)`` names the worst entries: name, index,
analytic and numerical value.

The PyTorch helpers (:func:`torch_reference`, :func:`assert_matches_torch`,
:func:`torch_gradients`) import torch when called; importing this module needs NumPy only.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import RecurrentLayer

__all__ = [
    "GradcheckEntry",
    "GradcheckReport",
    "TorchReference",
    "assert_gradient",
    "assert_matches_torch",
    "gradcheck",
    "numerical_gradient",
    "relative_error",
    "torch_gradients",
    "torch_reference",
]

_SHOWN = 8  # entries listed by str(report)


# -- the building blocks ------------------------------------------------------------------------
def numerical_gradient(loss: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``loss()`` with respect to ``array``, perturbed in place.

    ``array`` must be a writable contiguous float64 array that ``loss`` reads; every entry is
    restored exactly after its two evaluations.
    """
    grad = np.zeros_like(array, dtype=np.float64)
    grad.reshape(-1)[:] = _central_differences(loss, array, np.arange(array.size), eps)
    return grad


def _central_differences(loss: Callable[[], float], array: np.ndarray, indices: np.ndarray,
                         eps: float) -> np.ndarray:
    """``(loss(+eps) - loss(-eps)) / (2 eps)`` at the flat ``indices`` of ``array``."""
    flat = array.reshape(-1)
    if not np.shares_memory(flat, array):
        raise ValueError("array: expected a contiguous array that can be perturbed in place")
    values = np.empty(len(indices), dtype=np.float64)
    for k, i in enumerate(indices):
        original = flat[i]
        flat[i] = original + eps
        plus = loss()
        flat[i] = original - eps
        minus = loss()
        flat[i] = original
        values[k] = (plus - minus) / (2 * eps)
    return values


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max(max |a|, max |b|)``.

    Scaled by the largest entry rather than entry by entry (cs231n's form), because entries
    far below the finite-difference noise floor, such as tiny softmax gradients, would
    otherwise dominate the error without meaning anything.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)
    return float(np.max(np.abs(a - b)) / scale)


def assert_gradient(
    loss: Callable[[], float], array: np.ndarray, analytic: np.ndarray, name: str, tol: float = 1e-6
) -> None:
    """Raise AssertionError unless ``analytic`` matches central differences of ``loss`` with
    respect to ``array`` (float64, perturbed in place) to a relative error below ``tol``."""
    if array.dtype != np.float64:
        raise AssertionError(f"{name}: gradient checks run in float64, got {array.dtype}")
    numeric = numerical_gradient(loss, array)
    if analytic.shape != numeric.shape:
        raise AssertionError(f"{name}: shape {analytic.shape} != {numeric.shape}")
    error = relative_error(analytic, numeric)
    if not error < tol:
        raise AssertionError(f"{name}: relative error {error:.2e} >= {tol:.0e}")


# -- the report ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradcheckEntry:
    """The check of one input or parameter.

    ``relative_error`` is over the ``checked`` entries; ``index`` is the entry where
    ``|analytic - numerical|`` is largest, with both values there.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    relative_error: float
    index: tuple[int, ...]
    analytic: float
    numerical: float

    def passed(self, tol: float) -> bool:
        return self.relative_error < tol  # NaN fails


@dataclass
class GradcheckReport:
    """What :func:`gradcheck` found: one :class:`GradcheckEntry` per input and parameter.

    ``ok`` is True when every relative error is below ``tol``; ``skipped`` names the
    floating-point inputs whose backward returned None (not checked). ``str(report)`` says
    passed or FAILED and lists the worst entries first.
    """

    entries: list[GradcheckEntry]
    tol: float
    eps: float
    skipped: list[str] = field(default_factory=list)

    @property
    def errors(self) -> dict[str, float]:
        """Relative error per input and parameter name."""
        return {entry.name: entry.relative_error for entry in self.entries}

    @property
    def max_relative_error(self) -> float:
        """The largest relative error (NaN if any is NaN)."""
        errors = [entry.relative_error for entry in self.entries]
        if any(math.isnan(e) for e in errors):
            return math.nan
        return max(errors, default=0.0)

    @property
    def ok(self) -> bool:
        return all(entry.passed(self.tol) for entry in self.entries)

    @property
    def failures(self) -> list[GradcheckEntry]:
        """The entries at or above ``tol``, worst first."""
        return [entry for entry in self.worst() if not entry.passed(self.tol)]

    def worst(self) -> list[GradcheckEntry]:
        """Every entry, largest relative error (and NaN) first."""
        def badness(entry: GradcheckEntry) -> float:
            return math.inf if math.isnan(entry.relative_error) else entry.relative_error

        return sorted(self.entries, key=badness, reverse=True)

    def __str__(self) -> str:
        failures = len(self.failures)
        count = len(self.entries)
        where = f"float64 central differences, eps {self.eps:.0e}"
        if failures:
            head = (f"gradcheck FAILED: {failures} of {count} gradients have a relative error "
                    f">= {self.tol:.0e} ({where})")
        else:
            head = (f"gradcheck passed: {count} gradients, largest relative error "
                    f"{self.max_relative_error:.1e} < {self.tol:.0e} ({where})")
        shown = self.worst()[: max(_SHOWN, failures)]
        rows = [("name", "shape", "checked", "rel. error", "worst index", "analytic", "numerical")]
        for e in shown:
            size = math.prod(e.shape)
            rows.append((e.name, str(e.shape), f"{e.checked}/{size}", f"{e.relative_error:.1e}", str(e.index),
                         f"{e.analytic:+.6e}", f"{e.numerical:+.6e}"))
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        lines = [head] + ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                          for row in rows]
        if len(self.entries) > len(shown):
            rest = len(self.entries) - len(shown)
            lines.append(f"  ... and {rest} more, each below {shown[-1].relative_error:.1e}")
        if self.skipped:
            lines.append(f"  not checked (backward returned None): {', '.join(self.skipped)}")
        return "\n".join(lines)


# -- the check ----------------------------------------------------------------------------------
def gradcheck(
    fn: Module | Callable[..., Any],
    *inputs: Any,
    backward: Callable[..., Any] | None = None,
    n_outputs: int | None = None,
    tol: float = 1e-6,
    eps: float = 1e-6,
    max_entries: int | None = None,
    seed: int = 0,
) -> GradcheckReport:
    """Check the gradients of a forward/backward pair or of a module against central differences.

    Args:
        fn: a forward function, ``fn(*inputs) -> (*outputs, cache)``, with its ``backward``; or an
            :class:`rnnkit.nn.Module`, ``fn.forward(*inputs) -> outputs`` (an array or a tuple,
            nested tuples allowed) with ``fn.backward(*douts) -> input gradients``.
        *inputs: the forward's positional arguments. Floating-point NumPy arrays, also inside
            tuples, lists and dicts, are checked and must be float64; everything else (integer
            and bool arrays such as ``lengths`` or masks, strings, numbers, None) passes through
            unchecked. Arrays are copied first: the caller's are never perturbed.
        backward: ``backward(*douts, cache)`` for a forward function (``backward(*douts)``, in
            place of ``fn.backward``, for a module). ``douts`` holds one upstream gradient per
            floating-point output, flat, in order (``lstm_forward``'s ``(states, (h_n, c_n),
            cache)`` gets ``backward(dstates, dh_n, dc_n, cache)``). It returns the gradient of
            each floating-point input in order, flat or nested like the inputs (dicts by sorted
            key); extra trailing gradients (of inputs left at their defaults) are ignored and
            None leaves an input unchecked (listed in ``report.skipped``).
        n_outputs: only the first ``n_outputs`` floating-point outputs enter the loss (the
            backward takes just their gradients); None: all of them.
        tol: the largest relative error that passes.
        eps: the central-difference step.
        max_entries: check at most this many entries of each input and parameter, drawn at
            random (seeded by ``seed``); None checks all. For large arrays: each entry costs two
            forward passes.
        seed: seeds the upstream gradients and the drawn entries.

    Returns:
        A :class:`GradcheckReport`: ``ok``, ``max_relative_error``, ``errors`` per name, and a
        ``str`` naming the worst entries. A module's ``grads`` are zeroed first and hold the
        analytic gradients of the check's loss afterwards.

    Raises:
        TypeError: an input, parameter or output that is floating-point but not float64, or a
            forward that does not return ``(*outputs, cache)``.
        ValueError: a forward that gives different results on the same inputs (dropout in
            training mode: call ``module.eval()``), a gradient of the wrong shape, too few
            gradients, or nothing to check.
    """
    module: Module | None
    forward: Callable[..., Any]
    if isinstance(fn, Module):
        module, forward = fn, fn.forward
    elif callable(fn):
        module, forward = None, fn
        if backward is None:
            raise TypeError("backward: a forward function needs its backward: gradcheck(forward, *inputs, "
                            "backward=...)")
    else:
        raise TypeError(f"fn: expected an rnnkit.nn.Module or a forward function, got {type(fn).__name__}")
    for what, value in (("n_outputs", n_outputs), ("max_entries", max_entries)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{what}: expected an integer >= 1 or None, got {value!r}")
    if not (eps > 0 and tol > 0):
        raise ValueError(f"eps, tol: expected positive numbers, got eps={eps!r}, tol={tol!r}")

    args = tuple(_copy_tree(value) for value in inputs)
    names = _argument_names(forward, len(args))
    checked: list[tuple[str, np.ndarray]] = []
    for name, value in zip(names, args):
        checked.extend(_float_arrays(value, name))
    parameters = [] if module is None else [(name, value) for name, value, _ in module.named_parameters()]
    taken = {name for name, _ in parameters}
    checked = [(f"input {name}" if name in taken else name, array) for name, array in checked]
    for name, array in checked:
        _require_float64(f"input {name!r}", array, "pass it as .astype(np.float64)")
    for name, array in parameters:
        _require_float64(f"parameter {name!r}", array, "build the module with dtype=np.float64")

    def run() -> tuple[list[np.ndarray], Any]:
        result = forward(*args)
        if module is not None:
            outputs, cache = result, None
        elif isinstance(result, tuple) and len(result) >= 2:
            outputs, cache = result[:-1], result[-1]
        else:
            raise TypeError(f"forward: expected a tuple (*outputs, cache), got {type(result).__name__}; "
                            f"wrap a forward without a cache as lambda *a: (f(*a), None)")
        arrays = _float_outputs(outputs)
        if n_outputs is not None:
            if n_outputs > len(arrays):
                raise ValueError(f"n_outputs: the forward has {len(arrays)} floating-point outputs, "
                                 f"got {n_outputs}")
            arrays = arrays[:n_outputs]
        if not arrays:
            raise ValueError("forward: no floating-point output to build a loss from")
        return arrays, cache

    def loss_of(outputs: list[np.ndarray]) -> float:
        return float(sum(np.vdot(out, grad) for out, grad in zip(outputs, upstream)))

    rng = np.random.default_rng(seed)
    if module is not None:
        module.zero_grad()
    outputs, cache = run()
    upstream = [rng.normal(size=out.shape) for out in outputs]
    reference = loss_of(outputs)
    douts = [grad.copy() for grad in upstream]  # a backward may write into its upstream gradient
    if module is not None:
        result = (backward or module.backward)(*douts)
    else:
        assert backward is not None
        result = backward(*douts, cache)
    # Copied at once: a backward may hand out buffers that the next forward reuses.
    given = [None if g is None else np.array(g, dtype=np.float64) for g in _gradient_leaves(result)]
    if len(given) < len(checked):
        listed = ", ".join(name for name, _ in checked)
        raise ValueError(f"backward: returned {len(given)} gradients for {len(checked)} floating-point "
                         f"inputs ({listed}); expected one per input, in order")
    analytic: list[tuple[str, np.ndarray, np.ndarray]] = []
    skipped = []
    for (name, array), grad in zip(checked, given):
        if grad is None:
            skipped.append(name)
        else:
            analytic.append((name, array, grad))
    if module is not None:
        grads = {name: grad for name, _, grad in module.named_parameters()}
        analytic.extend((name, array, np.array(grads[name], dtype=np.float64)) for name, array in parameters)
    if not analytic:
        raise ValueError("gradcheck: nothing to check (no floating-point input with a gradient, "
                         "no parameter)")
    for name, array, grad in analytic:
        if grad.shape != array.shape:
            raise ValueError(f"backward: the gradient of {name!r} has shape {grad.shape}, "
                             f"expected {array.shape}")

    def loss() -> float:
        return loss_of(run()[0])

    again = loss()
    if not math.isclose(again, reference, rel_tol=1e-10, abs_tol=1e-12):
        raise ValueError(f"forward: two calls on the same inputs gave different losses ({reference!r}, "
                         f"{again!r}); the check needs a deterministic forward (dropout in training mode? "
                         f"call module.eval())")

    entries = []
    for name, array, grad in analytic:
        if max_entries is None or array.size <= max_entries:
            indices = np.arange(array.size)
        else:
            indices = np.sort(rng.choice(array.size, size=max_entries, replace=False))
        numeric = _central_differences(loss, array, indices, eps)
        chosen = grad.reshape(-1)[indices]
        entries.append(_entry(name, array.shape, indices, chosen, numeric))
    return GradcheckReport(entries, tol, eps, skipped)


def _entry(name: str, shape: tuple[int, ...], indices: np.ndarray, analytic: np.ndarray,
           numeric: np.ndarray) -> GradcheckEntry:
    if indices.size == 0:
        return GradcheckEntry(name, shape, 0, 0.0, (), math.nan, math.nan)
    difference = np.abs(analytic - numeric)
    worst = int(np.argmax(np.where(np.isnan(difference), np.inf, difference)))
    index = tuple(int(i) for i in np.unravel_index(int(indices[worst]), shape))
    return GradcheckEntry(name, tuple(shape), int(indices.size), relative_error(analytic, numeric), index,
                          float(analytic[worst]), float(numeric[worst]))


def _require_float64(what: str, array: np.ndarray, fix: str) -> None:
    if array.dtype != np.float64:
        raise TypeError(f"gradcheck: {what} is {array.dtype}; gradient checks need float64 (central "
                        f"differences in lower precision lose most of the digits they compare): {fix}")


def _argument_names(fn: Callable[..., Any], count: int) -> list[str]:
    """The names of the first ``count`` positional parameters of ``fn`` (``input{i}`` if unknown)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [f"input{i}" for i in range(count)]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    star = next((k for k, p in enumerate(parameters) if p.kind == inspect.Parameter.VAR_POSITIONAL), None)
    names = []
    for i in range(count):
        if i < len(parameters) and parameters[i].kind in positional:
            names.append(parameters[i].name)
        elif star is not None and i >= star:
            names.append(f"{parameters[star].name}[{i - star}]")
        else:
            names.append(f"input{i}")
    return names


def _copy_tree(value: Any) -> Any:
    """``value`` with every floating-point array copied (contiguous, writable), containers rebuilt."""
    if isinstance(value, np.ndarray):
        return value.copy() if value.dtype.kind == "f" else value
    if isinstance(value, tuple):
        return tuple(_copy_tree(v) for v in value)
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    return value


def _float_arrays(value: Any, name: str) -> Iterator[tuple[str, np.ndarray]]:
    """The floating-point arrays in ``value``, depth first (dicts by sorted key), named by path."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            yield name, value
    elif isinstance(value, (tuple, list)):
        for k, item in enumerate(value):
            yield from _float_arrays(item, f"{name}[{k}]")
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _float_arrays(value[key], f"{name}[{key!r}]")


def _float_outputs(value: Any) -> list[np.ndarray]:
    """The floating-point outputs, flat, in order: arrays and float scalars (a loss value)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "f":
            return []
        _require_float64("an output", value, "its inputs and parameters are float64, so should it be")
        return [value]
    if isinstance(value, (float, np.floating)):
        return _float_outputs(np.asarray(value))
    if isinstance(value, (tuple, list)):
        return [array for item in value for array in _float_outputs(item)]
    if isinstance(value, dict):
        return [array for key in sorted(value, key=str) for array in _float_outputs(value[key])]
    return []


def _gradient_leaves(value: Any) -> list[np.ndarray | None]:
    """A backward's result as a flat list of arrays and Nones (dicts by sorted key)."""
    if value is None or isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (float, np.floating)):
        return [np.asarray(value)]
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _gradient_leaves(item)]
    if isinstance(value, dict):
        return [leaf for key in sorted(value, key=str) for leaf in _gradient_leaves(value[key])]
    raise TypeError(f"backward: expected arrays (or tuples, lists, dicts of them, or None), "
                    f"got {type(value).__name__}")


# -- PyTorch as the reference -------------------------------------------------------------------
class TorchReference(NamedTuple):
    """What the PyTorch twin of a recurrent module computes (rnnkit's names and layouts).

    out: like the module's ``out``; finals: one array per ``cell.state_names`` (``(h_n,)`` or
    ``(h_n, c_n)``); dx: like ``x``; dinitial: like ``finals``; grads: per rnnkit parameter name.
    """

    out: np.ndarray
    finals: tuple[np.ndarray, ...]
    dx: np.ndarray
    dinitial: tuple[np.ndarray, ...]
    grads: dict[str, np.ndarray]


# rnnkit's parameter prefix -> torch's (rnnkit's single b_h is torch's b_ih + b_hh: both get its gradient)
_TORCH_NAMES = {"W_xh": "weight_ih", "W_hh": "weight_hh", "b_xh": "bias_ih", "b_hh": "bias_hh",
                "b_h": "bias_ih"}
_States = np.ndarray | Sequence[np.ndarray | None] | None


def _as_states(value: _States, count: int) -> tuple[np.ndarray | None, ...]:
    if value is None:
        return (None,) * count
    states = (value,) if isinstance(value, np.ndarray) else tuple(value)
    if len(states) > count:
        raise ValueError(f"expected at most {count} state arrays, got {len(states)}")
    return states + (None,) * (count - len(states))


def torch_reference(
    module: RecurrentLayer,
    x: np.ndarray,
    initial: _States = None,
    lengths: np.ndarray | None = None,
    dout: np.ndarray | None = None,
    dfinal: _States = None,
) -> TorchReference:
    """Outputs and gradients of the ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` holding ``module``'s
    weights (:func:`rnnkit.interop.torch.to_torch`), fed the batch as a packed sequence.

    Args:
        module: an rnnkit ``RNN``, ``LSTM`` or ``GRU`` (what ``to_torch`` converts).
        x: ``(T, B, I)``, or ``(B, T, I)`` if ``module.batch_first``.
        initial: the initial states, one ``(L * D, B, H)`` array per ``cell.state_names`` (a
            bare array for one state); None or a None entry: zeros.
        lengths: ``(B,)`` ints in ``1..T``; None: every sequence has ``T`` steps.
        dout: the gradient of the loss with respect to ``out``; None: zeros.
        dfinal: the final states' gradients, like ``initial``; None: zeros.

    The loss is ``sum(out * dout) + sum_k sum(final_k * dfinal_k)``. Dropout draws torch's own
    masks: compare modules without it (or in eval mode).
    """
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from rnnkit.interop.torch import to_torch

    torch_module = to_torch(module)
    torch_module.train(module.training)
    names = module.cell.state_names
    x = np.asarray(x, dtype=module.dtype)
    steps, batch = (x.shape[1], x.shape[0]) if module.batch_first else x.shape[:2]
    shape = (module.num_layers * module.num_directions, batch, module.hidden_size)
    tx = torch.tensor(x, requires_grad=True)
    tinitial = tuple(torch.tensor(np.zeros(shape, module.dtype) if s is None else np.asarray(s, module.dtype),
                                  requires_grad=True) for s in _as_states(initial, len(names)))
    full = np.full(batch, steps, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    packed = pack_padded_sequence(tx, torch.as_tensor(full), batch_first=module.batch_first,
                                  enforce_sorted=False)
    packed_out, tfinal = torch_module(packed, tinitial if len(tinitial) == 2 else tinitial[0])
    tfinals = tuple(tfinal) if isinstance(tfinal, tuple) else (tfinal,)
    out, _ = pad_packed_sequence(packed_out, batch_first=module.batch_first, total_length=steps)
    loss = out.sum() * 0.0
    if dout is not None:
        loss = loss + (out * torch.tensor(np.asarray(dout, module.dtype))).sum()
    for state, grad in zip(tfinals, _as_states(dfinal, len(names))):
        if grad is not None:
            loss = loss + (state * torch.tensor(np.asarray(grad, module.dtype))).sum()
    loss.backward()

    def numpy_grad(tensor: Any) -> np.ndarray:
        return np.zeros(tuple(tensor.shape), module.dtype) if tensor.grad is None else tensor.grad.numpy()

    grads = {}
    for name in module.params:
        prefix, suffix = name.split("_l", 1)
        grads[name] = numpy_grad(getattr(torch_module, f"{_TORCH_NAMES[prefix]}_l{suffix}"))
    return TorchReference(out.detach().numpy(), tuple(s.detach().numpy() for s in tfinals), numpy_grad(tx),
                          tuple(numpy_grad(s) for s in tinitial), grads)


def assert_matches_torch(
    module: RecurrentLayer,
    x: np.ndarray,
    initial: _States = None,
    lengths: np.ndarray | None = None,
    dout: np.ndarray | None = None,
    dfinal: _States = None,
    rtol: float = 1e-9,
    atol: float = 1e-10,
    seed: int = 0,
) -> None:
    """Raise AssertionError unless ``module`` computes what its PyTorch twin computes
    (:func:`torch_reference`): ``out``, every final state, ``dx``, every initial state's gradient
    and every parameter's gradient, each within ``rtol``/``atol`` (``np.testing.assert_allclose``).

    Arguments as for :func:`torch_reference`, except that ``dout`` and ``dfinal`` left None are
    drawn from N(0, 1) with ``seed`` (so that every gradient is exercised). The module's
    ``grads`` are zeroed first. The defaults suit float64; float32 needs about ``1e-5``.
    """
    names = module.cell.state_names
    states = _as_states(initial, len(names))
    module.zero_grad()
    out, finals = module.forward_states(x, states, lengths)
    rng = np.random.default_rng(seed)
    dout = rng.normal(size=out.shape) if dout is None else dout
    dfinals = tuple(rng.normal(size=f.shape) if g is None else g
                    for f, g in zip(finals, _as_states(dfinal, len(names))))
    dx, dinitial = module.backward_states(dout, dfinals)
    assert dx is not None and dinitial is not None  # input_grad and h0_grad are left True
    expected = torch_reference(module, x, states, lengths, dout, dfinals)
    np.testing.assert_allclose(out, expected.out, rtol=rtol, atol=atol, err_msg="out")
    for name, got, want in zip(names, finals, expected.finals):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"{name}_n")
    np.testing.assert_allclose(dx, expected.dx, rtol=rtol, atol=atol, err_msg="dx")
    for name, got, want in zip(names, dinitial, expected.dinitial):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"d{name}0")
    if set(expected.grads) != set(module.grads):
        raise AssertionError(f"parameters: rnnkit has {sorted(module.grads)}, "
                             f"torch's twin {sorted(expected.grads)}")
    for name, want in expected.grads.items():
        np.testing.assert_allclose(module.grads[name], want, rtol=rtol, atol=atol, err_msg=name)


def torch_gradients(
    fn: Callable[..., Any],
    *inputs: Any,
    upstream: np.ndarray | Sequence[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Outputs and input gradients of a PyTorch function by autograd, on NumPy arrays: the
    reference to compare a hand-written backward with.

    Each floating-point array in ``inputs`` becomes a tensor that requires grad, other arrays
    (integer ids, bool masks) plain tensors, anything else passes as it is. ``fn`` returns a
    tensor or a tuple of tensors; the loss ``sum_k sum(out_k * upstream[k])`` pairs the
    floating-point outputs with ``upstream`` in order (a bare array for one output). Returns the
    outputs and one gradient per floating-point input, in order (None where none flowed).
    """
    import torch

    tensors = [torch.tensor(value, requires_grad=value.dtype.kind == "f") if isinstance(value, np.ndarray)
               else value for value in inputs]
    result = fn(*tensors)
    outputs = [t for t in (result if isinstance(result, (tuple, list)) else (result,))
               if isinstance(t, torch.Tensor) and t.is_floating_point()]
    grads = [upstream] if isinstance(upstream, np.ndarray) else list(upstream)
    if len(grads) != len(outputs):
        raise ValueError(f"upstream: expected {len(outputs)} arrays, one per floating-point output, "
                         f"got {len(grads)}")
    terms = [(out * torch.tensor(np.asarray(g, dtype=np.float64), dtype=out.dtype)).sum()
             for out, g in zip(outputs, grads)]
    loss = terms[0]
    for term in terms[1:]:
        loss = loss + term
    loss.backward()
    leaves = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    return ([out.detach().numpy() for out in outputs],
            [None if t.grad is None else t.grad.numpy() for t in leaves])
