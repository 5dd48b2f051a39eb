"""Module: owns parameters and their gradients, and calls the pure functions in
``rnnkit.functional``. It does no calculus of its own.

Parameters and gradients live in two dicts with the same keys, ``params`` and ``grads``.
Optimizers update the arrays *in place*, so a module never rebinds a parameter array after
construction (``load_state_dict`` copies into it). Sub-modules assigned as attributes are
registered automatically and appear with dotted names, as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnkit._checks import check_float_dtype


class Module:
    """Base class. Subclasses call ``super().__init__()`` first, then ``add_parameter``."""

    _modules: dict[str, Module]  # sub-modules by attribute name, in assignment order

    def __init__(self) -> None:
        object.__setattr__(self, "_modules", {})
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    def __setattr__(self, name: str, value: Any) -> None:
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning sub-modules")
            modules[name] = value
        elif modules is not None and name in modules:
            del modules[name]
        object.__setattr__(self, name, value)

    # -- parameters ------------------------------------------------------------------------
    def add_parameter(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register ``value`` as a parameter with a zero gradient of the same shape and dtype."""
        if name in self.params:
            raise ValueError(f"{type(self).__name__}: parameter {name!r} already exists")
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with dotted names (root is "")."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(dotted name, parameter, gradient)`` for every parameter of the tree."""
        for prefix, module in self.named_modules():
            for name, value in module.params.items():
                yield (f"{prefix}.{name}" if prefix else name), value, module.grads[name]

    def num_parameters(self) -> int:
        return sum(value.size for _, value, _ in self.named_parameters())

    def zero_grad(self) -> None:
        for _, _, grad in self.named_parameters():
            grad.fill(0.0)

    def accumulate(self, name: str, grad: np.ndarray) -> None:
        """Add ``grad`` into ``self.grads[name]``: gradients accumulate until ``zero_grad``."""
        self.grads[name] += grad

    # -- modes -----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, keyed by dotted name."""
        return {name: value.copy() for name, value, _ in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters, checking that names and shapes match exactly.

        Nothing is written unless every array fits, so a failed load leaves the module intact.
        """
        own = {name: value for name, value, _ in self.named_parameters()}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"state_dict: expected keys {sorted(own)}; missing {missing}, unexpected {unexpected}"
            )
        for name, value in state.items():
            incoming = np.asarray(value)
            if incoming.shape != own[name].shape:
                raise ValueError(
                    f"state_dict[{name!r}]: expected shape {own[name].shape}, got {incoming.shape}"
                )
            if incoming.dtype.kind != "f":
                raise TypeError(f"state_dict[{name!r}]: expected a floating-point array, got dtype {incoming.dtype}")
            # finite after the cast too: a float64 1e300 is inf as float32
            with np.errstate(over="ignore"):  # the overflow is what is being checked for
                cast = incoming.astype(own[name].dtype, copy=False)
            if not np.all(np.isfinite(cast)):
                raise ValueError(f"state_dict[{name!r}]: expected finite values as {own[name].dtype}, got NaN/inf "
                                 f"or values beyond its range")
        for name, value in state.items():
            np.copyto(own[name], value, casting="unsafe")

    # -- calling ---------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _require_cache(self, cache: Any) -> Any:
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call forward first (no forward pass is cached)")
        return cache

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = "".join(
            f"\n  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()
        )
        return f"{type(self).__name__}({self.extra_repr()}{children}{chr(10) if children else ''})"


def resolve_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from a seed, an existing Generator, or fresh OS entropy for ``None``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise TypeError(f"seed: expected an integer >= 0, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(seed)


def uniform_init(
    rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: np.dtype
) -> np.ndarray:
    """``U(-bound, bound)`` in ``dtype``: PyTorch's default for RNN and Linear weights."""
    return rng.uniform(-bound, bound, size=shape).astype(check_float_dtype(dtype))
