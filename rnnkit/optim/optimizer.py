"""Optimizer base: holds ``(name, param, grad)`` triples and updates parameters in place.

Parameters are shared with the modules that own them, so every update writes into the same
arrays (``-=`` and ``out=``), never rebinding them. Per-parameter state (momentum buffers,
moment estimates) is allocated lazily on the first step and kept by parameter name, which is
what lets ``state_dict`` be written as a flat safetensors file plus JSON scalars.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Union

import numpy as np

Triple = tuple[str, np.ndarray, np.ndarray]
Params = Union[Iterable[Triple], Any]  # an object with named_parameters(), or triples


def as_triples(params: Params) -> list[Triple]:
    """``(name, param, grad)`` triples from a module (``named_parameters()``) or an iterable."""
    triples = list(params.named_parameters() if hasattr(params, "named_parameters") else params)
    if not triples:
        raise ValueError("params: expected at least one parameter, got none")
    for item in triples:
        if len(item) != 3 or item[1].shape != item[2].shape:
            raise ValueError(f"params: expected (name, param, grad) triples of equal shapes, got {item[0]!r}")
    return triples


def check_non_negative(name: str, value: float) -> float:
    if not value >= 0.0:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return float(value)


def check_unit_interval(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


class Optimizer:
    """Base class: subclasses implement ``_update(name, param, grad, state)``."""

    #: names of the per-parameter state arrays, e.g. ("exp_avg", "exp_avg_sq")
    state_names: tuple[str, ...] = ()

    def __init__(self, params: Params, lr: float) -> None:
        self.params = as_triples(params)
        self.lr = check_non_negative("lr", lr)
        self.step_count = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def zero_grad(self) -> None:
        for _, _, grad in self.params:
            grad.fill(0.0)

    def step(self) -> None:
        self.step_count += 1
        for name, param, grad in self.params:
            if name not in self.state:
                self.state[name] = self._init_state(param)
            self._update(param, grad, self.state[name])

    def _init_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {key: np.zeros_like(param) for key in self.state_names}

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr}

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"type", "step", "hyperparameters", "state": {"<key>.<param name>": array}}``:
        scalars for JSON, arrays for safetensors."""
        arrays = {f"{key}.{name}": value for name, state in self.state.items() for key, value in state.items()}
        return {"type": type(self).__name__, "step": self.step_count, "hyperparameters": self.hyperparameters(),
                "state": {k: v.copy() for k, v in arrays.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"optimizer state: expected type {type(self).__name__}, got {state_dict.get('type')!r}")
        arrays = state_dict["state"]
        restored: dict[str, dict[str, np.ndarray]] = {}
        for name, param, _ in self.params:
            keys = [f"{key}.{name}" for key in self.state_names]
            present = [k in arrays for k in keys]
            if not any(present):
                continue  # parameter never stepped
            if not all(present):
                missing = [k for k, p in zip(keys, present) if not p]
                raise ValueError(f"optimizer state: missing {missing}")
            for key in keys:
                if arrays[key].shape != param.shape:
                    raise ValueError(f"optimizer state[{key!r}]: expected shape {param.shape}, got {arrays[key].shape}")
            restored[name] = {key: np.array(arrays[f"{key}.{name}"], dtype=param.dtype) for key in self.state_names}
        known = {f"{key}.{name}" for name, _, _ in self.params for key in self.state_names}
        unexpected = sorted(set(arrays) - known)
        if unexpected:
            raise ValueError(f"optimizer state: unexpected keys {unexpected}")
        self.state = restored
        self.step_count = int(state_dict["step"])
        for key, value in state_dict.get("hyperparameters", {}).items():
            setattr(self, key, tuple(value) if isinstance(value, list) else value)

    def __iter__(self) -> Iterator[Triple]:
        return iter(self.params)
