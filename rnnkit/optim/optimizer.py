"""Optimizer base: holds ``(name, param, grad)`` triples and updates the parameters in place.

Parameters are shared with the modules that own them, so every update writes into the same
arrays (``+=`` and ``out=``) and never rebinds them. Per-parameter state (momentum buffers,
moment estimates) is allocated lazily on the first step and kept by parameter name, which is
what lets ``state_dict()`` be written as a flat safetensors file (the arrays) plus JSON (the
scalars); :func:`split_state_dict` and :func:`merge_state_dict` do that split.

Updates need temporaries (``weight_decay * p + g``, ``sqrt(v) + eps``). Rather than allocate
them on every step, each optimizer owns one workspace per dtype, two rows as long as its largest
parameter, and hands out views of it: the memory is paid once, and only for one parameter.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from rnnkit.optim._checks import check_number

Triple = tuple[str, np.ndarray, np.ndarray]
#: an object with ``named_parameters()`` (a module), or an iterable of ``(name, param, grad)``
Params = Iterable[Triple] | Any


def as_triples(params: Params) -> list[Triple]:
    """The ``(name, param, grad)`` triples of a module or an iterable, checked.

    Parameters
    ----------
    params : module or iterable
        An object with ``named_parameters()`` yielding ``(name, param, grad)``, or such triples.

    Returns
    -------
    list of (str, ndarray, ndarray)
        The very arrays given (no copies): updates must reach the module.

    Raises
    ------
    ValueError
        No parameters, a repeated name (state is keyed by name), or a gradient whose shape or
        dtype differs from its parameter's.
    TypeError
        An item that is not a ``(str, float ndarray, float ndarray)`` triple.
    """
    triples = list(params.named_parameters() if hasattr(params, "named_parameters") else params)
    if not triples:
        raise ValueError("params: expected at least one (name, param, grad) triple, got none")
    seen: set[str] = set()
    for index, item in enumerate(triples):
        if not (isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], np.ndarray) and isinstance(item[2], np.ndarray)):
            raise TypeError(f"params[{index}]: expected a (str, ndarray, ndarray) triple, got {type(item).__name__}")
        name, param, grad = item
        if param.dtype.kind != "f":
            raise TypeError(f"params[{name!r}]: expected a float32 or float64 array, got dtype {param.dtype}")
        if grad.shape != param.shape or grad.dtype != param.dtype:
            raise ValueError(f"params[{name!r}]: expected a gradient of shape {param.shape} and dtype {param.dtype}, "
                             f"got shape {grad.shape} and dtype {grad.dtype}")
        if name in seen:
            raise ValueError(f"params: expected unique names (state is keyed by name), got {name!r} twice")
        seen.add(name)
    return triples


def _some(keys: list[str]) -> str:
    """``'a'``, or ``'a' and 4 more``: enough to find the problem, short enough to read."""
    return repr(keys[0]) + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")


def split_state_dict(state_dict: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into ``(arrays, scalars)``.

    ``arrays`` is flat, ``{"<state>.<param name>": ndarray}``, ready for
    ``safetensors.numpy.save_file``; ``scalars`` (type, step, hyperparameters) is plain JSON.

    Examples
    --------
    >>> arrays, scalars = split_state_dict(optimizer.state_dict())      # doctest: +SKIP
    >>> save_file(arrays, "optim.safetensors"); json.dump(scalars, f)   # doctest: +SKIP
    >>> optimizer.load_state_dict(merge_state_dict(load_file(...), json.load(f)))  # doctest: +SKIP
    """
    return dict(state_dict["state"]), {key: value for key, value in state_dict.items() if key != "state"}


def merge_state_dict(arrays: Mapping[str, np.ndarray], scalars: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`split_state_dict`: a ``state_dict`` for ``load_state_dict``."""
    return {**scalars, "state": dict(arrays)}


class Optimizer:
    """Base class of the optimizers; subclasses implement ``_update`` and list their state.

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        What to optimise. The arrays are updated in place and must stay the module's own.
    lr : float
        Learning rate, >= 0.
    **hyperparameters
        The subclass's options, validated (with ``lr``) by ``_check_hyperparameters``.

    Attributes
    ----------
    params : list of (str, ndarray, ndarray)
        The triples, in the order given.
    lr : float
        The learning rate; public so that schedules (and users) can change it between steps.
    step_count : int
        Number of ``step()`` calls so far (PyTorch keeps one per parameter; here every
        parameter is stepped every time, so one count serves all).
    state : dict of str to dict of str to ndarray
        Per-parameter state by parameter name, e.g. ``state["rnn.W_hh_l0"]["exp_avg"]``.
    initial_lr : float or None
        The learning rate when the first schedule was attached (PyTorch's ``initial_lr``), so
        that schedules built in any order share one base rate.
    """

    def __init__(self, params: Params, lr: float, **hyperparameters: Any) -> None:
        self.params = as_triples(params)
        self.step_count = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.initial_lr: float | None = None
        self._workspace: dict[np.dtype, np.ndarray] = {}
        checked = self._check_hyperparameters({"lr": lr, **hyperparameters})
        self._hyperparameter_names = tuple(checked)
        for key, value in checked.items():
            setattr(self, key, value)

    # -- hyperparameters ----------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # checked here too, because schedules and users set it directly between steps
        self._lr = check_number("lr", value)

    def _check_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        """Validated, normalised hyperparameters in constructor order (subclasses extend)."""
        return {"lr": check_number("lr", hyperparameters["lr"])}

    def hyperparameters(self) -> dict[str, Any]:
        """The options as JSON-ready values (tuples become lists)."""
        values = {key: getattr(self, key) for key in self._hyperparameter_names}
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}

    def _state_names(self, hyperparameters: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the per-parameter state arrays these hyperparameters keep after a step."""
        return ()

    # -- the update ---------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Set every gradient to zero, in place (gradients accumulate until this is called)."""
        for _, _, grad in self.params:
            grad.fill(0.0)

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        self.step_count += 1
        for name, param, grad in self.params:
            self._update(param, grad, self.state.setdefault(name, {}), *self._scratch(param))

    @staticmethod
    def _buffer(state: dict[str, np.ndarray], key: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """``state[key]``, created filled with ``fill`` on first use: state is allocated once,
        lazily, and an option switched on mid-run (``amsgrad``) finds its buffer too."""
        buffer = state.get(key)
        if buffer is None:
            buffer = state[key] = np.full_like(like, fill)
        return buffer

    def _scratch(self, param: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two scratch arrays shaped like ``param``: views of a workspace allocated once."""
        workspace = self._workspace.get(param.dtype)
        if workspace is None:
            size = max(p.size for _, p, _ in self.params if p.dtype == param.dtype)
            workspace = self._workspace[param.dtype] = np.empty((2, size), dtype=param.dtype)
        return workspace[0, :param.size].reshape(param.shape), workspace[1, :param.size].reshape(param.shape)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray],
                a: np.ndarray, b: np.ndarray) -> None:
        """Update ``param`` in place; ``a`` and ``b`` are scratch space, free to overwrite."""
        raise NotImplementedError

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot: ``{"type", "step", "hyperparameters", "state"}``.

        ``state`` maps ``"<state name>.<param name>"`` (``"exp_avg.rnn.W_hh_l0"``) to a copy of
        the array; everything else is plain JSON. :func:`split_state_dict` separates the two.
        """
        names = self._state_names(self.hyperparameters())
        arrays = {f"{key}.{name}": self.state[name][key].copy()
                  for name, _, _ in self.params for key in names if key in self.state.get(name, {})}
        return {"type": type(self).__name__, "step": self.step_count,
                "hyperparameters": self.hyperparameters(), "state": arrays}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`: step count, hyperparameters (``lr`` included) and state.

        Everything is checked before anything changes, so a refused state leaves the optimizer
        as it was. Arrays are copied and cast to each parameter's dtype.

        Raises
        ------
        ValueError
            Another optimizer's type, a missing, unexpected or mis-shaped entry, or an invalid
            hyperparameter; the message names the key, what was expected and what came.
        """
        kind = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"optimizer state: expected a mapping from {kind}.state_dict(), "
                            f"got {type(state_dict).__name__}")
        absent = [key for key in ("type", "step", "hyperparameters", "state") if key not in state_dict]
        if absent:
            raise ValueError(f"optimizer state: missing {', '.join(map(repr, absent))}, expected the keys of "
                             f"{kind}.state_dict(), got {sorted(map(str, state_dict))}")
        if state_dict["type"] != kind:
            raise ValueError(f"optimizer state: expected type {kind}, got {state_dict['type']!r}")
        step = state_dict["step"]
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"optimizer state['step']: expected an integer >= 0, got {step!r}")

        for key in ("hyperparameters", "state"):
            if not isinstance(state_dict[key], Mapping):
                raise ValueError(f"optimizer state[{key!r}]: expected a mapping, got {type(state_dict[key]).__name__}")
        given = dict(state_dict["hyperparameters"])
        unknown = sorted(set(given) - set(self._hyperparameter_names))
        if unknown:
            raise ValueError(f"optimizer state['hyperparameters']: expected some of "
                             f"{', '.join(self._hyperparameter_names)}, got unknown {', '.join(unknown)}")
        try:
            hyperparameters = self._check_hyperparameters({**self.hyperparameters(), **given})
        except (TypeError, ValueError) as error:
            raise type(error)(f"optimizer state['hyperparameters']: {error}") from error

        arrays = state_dict["state"]
        names = self._state_names(hyperparameters) if int(step) > 0 else ()
        expected = {f"{key}.{name}": param for name, param, _ in self.params for key in names}
        keeps = f"after {step} steps {kind} keeps {', '.join(names) + ' for every parameter' if names else 'no state'}"
        missing = [key for key in expected if key not in arrays]
        if missing:
            raise ValueError(f"optimizer state: missing {_some(missing)} ({keeps})")
        unexpected = sorted(set(arrays) - set(expected))
        if unexpected:
            raise ValueError(f"optimizer state: unexpected {_some(unexpected)} ({keeps}, as "
                             f"'<state>.<parameter name>' for parameters {_some([n for n, _, _ in self.params])})")
        restored: dict[str, dict[str, np.ndarray]] = {}
        for name, param, _ in self.params:
            for key in names:
                where = f"optimizer state['{key}.{name}']"
                value = np.asarray(arrays[f"{key}.{name}"])
                if value.shape != param.shape:
                    raise ValueError(f"{where}: expected shape {param.shape}, got {value.shape}")
                if value.dtype.kind != "f":
                    raise ValueError(f"{where}: expected a float array, got dtype {value.dtype}")
                restored.setdefault(name, {})[key] = np.array(value, dtype=param.dtype)  # a copy, never an alias

        self.state = restored
        self.step_count = int(step)
        for key, value in hyperparameters.items():
            setattr(self, key, value)

    # -- conveniences -------------------------------------------------------------------------
    def named_parameters(self) -> Iterator[Triple]:
        """The triples, so an optimizer can stand in for its module (``clip_grad_norm(opt, 1)``)."""
        return iter(self.params)

    def __iter__(self) -> Iterator[Triple]:
        return iter(self.params)

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._hyperparameter_names)
        return f"{type(self).__name__}({options}; {len(self.params)} parameters, {self.step_count} steps)"


# -- update helpers shared by the optimizers. Each follows the order of operations of one
#    PyTorch kernel, so float64 runs stay within a few ulps of torch.optim per step (not bit-equal:
#    torch's CPU kernels fuse multiply-adds, which NumPy cannot express) -------------------------
def l2_gradient(param: np.ndarray, grad: np.ndarray, weight_decay: float, out: np.ndarray) -> np.ndarray:
    """``grad + weight_decay * param`` written into ``out``; ``grad`` itself when the decay is 0.

    The user's ``grad`` is never modified: it belongs to the module and may be inspected
    (gradient-norm plots) after the step.
    """
    if not weight_decay:
        return grad
    np.multiply(param, weight_decay, out=out)
    out += grad
    return out


def lerp_(target: np.ndarray, end: np.ndarray, weight: float, scratch: np.ndarray) -> None:
    """``target += weight * (end - target)`` in place, computed as ``torch.lerp`` does.

    PyTorch switches formula at ``weight = 0.5`` so that the result is exact at both ends
    (``weight = 1`` gives ``end`` exactly); used for ``exp_avg`` (Adam) and ``grad_avg``
    (centered RMSprop) as torch does.
    """
    np.subtract(end, target, out=scratch)
    if abs(weight) < 0.5:
        scratch *= weight
        target += scratch
    else:
        scratch *= 1.0 - weight
        np.subtract(end, scratch, out=target)


def add_product_(target: np.ndarray, x: np.ndarray, y: np.ndarray, value: float, scratch: np.ndarray) -> None:
    """``target += value * x * y`` in place (``torch.addcmul_``, same order of operations);
    ``scratch`` must be neither ``x`` nor ``y``."""
    np.multiply(x, value, out=scratch)
    scratch *= y
    target += scratch
