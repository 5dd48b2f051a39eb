"""Learning-rate schedules: each wraps an optimizer and sets its ``lr``.

Call ``schedule.step()`` once after each ``optimizer.step()`` (or once per epoch; either way
consistently): ``count`` is the number of those calls, and the optimizer's ``lr`` is always
``get_lr()`` at the current count. StepLR and CosineAnnealingLR use PyTorch's closed forms, so
``lr`` after ``k`` steps equals torch's ``scheduler.get_last_lr()`` after ``k`` steps.

Every schedule on an optimizer takes its base rate from ``optimizer.initial_lr``, which the
first one records (PyTorch's ``initial_lr``): a warm-up and the schedule it hands over to agree
on the peak whatever the order they were built in.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from rnnkit._checks import check_positive_int
from rnnkit.optim._checks import check_number


class Schedule:
    """Base class: subclasses implement ``get_lr()`` from ``count`` and ``base_lr``.

    Parameters
    ----------
    optimizer : Optimizer
        Any object with a writable ``lr`` (and ``initial_lr``) attribute.
    **options
        The subclass's settings, validated by ``_check_options``.

    Attributes
    ----------
    optimizer : Optimizer
        The optimizer whose ``lr`` this schedule sets.
    base_lr : float
        The rate the schedule scales (``optimizer.initial_lr``).
    count : int
        Number of ``step()`` calls so far.
    """

    def __init__(self, optimizer: Any, **options: Any) -> None:
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer: expected an optimizer with an lr attribute, got {type(optimizer).__name__}")
        if getattr(optimizer, "initial_lr", None) is None:
            optimizer.initial_lr = optimizer.lr
        self.optimizer = optimizer
        self.base_lr = float(optimizer.initial_lr)
        self.count = 0
        checked = self._check_options(options)
        self._option_names = tuple(checked)
        for key, value in checked.items():
            setattr(self, key, value)
        self._apply()

    def _check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def get_lr(self) -> float:
        """The learning rate for the current ``count``; changes nothing."""
        raise NotImplementedError

    def step(self) -> float:
        """Advance one step, set the optimizer's ``lr`` and return it."""
        self.count += 1
        return self._apply()

    def _apply(self) -> float:
        lr = self.get_lr()
        self.optimizer.lr = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        """``{"type", "count", "base_lr", <options>}``: plain JSON."""
        return {"type": type(self).__name__, "count": self.count, "base_lr": self.base_lr,
                **{key: getattr(self, key) for key in self._option_names}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` and set the optimizer's ``lr`` to match.

        Raises ValueError naming the key for another schedule's state, a missing or unknown
        key, or an invalid value; nothing changes unless everything checks out.
        """
        checked = self._check_state(state)
        self._assign(checked)

    def _check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        kind = type(self).__name__
        expected = ("type", "count", "base_lr") + self._option_names
        missing = [key for key in expected if key not in state]
        unknown = sorted(set(state) - set(expected))
        if missing or unknown:
            raise ValueError(f"schedule state: expected the keys {', '.join(expected)} of {kind}.state_dict(), got "
                             + "; ".join(part for part in (f"missing {', '.join(missing)}" if missing else "",
                                                           f"unknown {', '.join(unknown)}" if unknown else "") if part))
        if state["type"] != kind:
            raise ValueError(f"schedule state: expected type {kind}, got {state['type']!r}")
        count = state["count"]
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise ValueError(f"schedule state['count']: expected an integer >= 0, got {count!r}")
        try:
            checked = {"count": int(count), "base_lr": check_number("base_lr", state["base_lr"])}
            checked.update(self._check_options({key: state[key] for key in self._option_names}))
        except (TypeError, ValueError) as error:
            raise type(error)(f"schedule state: {error}") from error
        return checked

    def _assign(self, checked: Mapping[str, Any]) -> None:
        for key, value in checked.items():
            setattr(self, key, value)
        self._apply()


class StepLR(Schedule):
    r"""Decay by ``gamma`` every ``step_size`` steps: ``lr = base_lr * gamma ** (count // step_size)``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to drive.
    step_size : int
        Steps between decays, >= 1.
    gamma : float
        Factor per decay, > 0 (below 1 to decay).
    """

    # set from the keyword arguments by the base class (saved in state_dict)
    step_size: int
    gamma: float

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def _check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"step_size": check_positive_int("step_size", options["step_size"]),
                "gamma": check_number("gamma", options["gamma"], low_open=True)}

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.count // self.step_size)


class CosineAnnealingLR(Schedule):
    r"""Half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` steps (SGDR without
    restarts, Loshchilov and Hutter, 2017):

    .. math::
        \eta_t = \eta_{min} + \tfrac12 (\eta_{base} - \eta_{min}) (1 + \cos(\pi t / T_{max}))

    Past ``T_max`` the formula continues, rising again, as PyTorch's closed form does; size
    ``T_max`` to the run.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to drive.
    T_max : int
        Steps from the base rate to the minimum, >= 1.
    eta_min : float
        The minimum rate, >= 0.
    """

    # set from the keyword arguments by the base class (saved in state_dict)
    T_max: int
    eta_min: float

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    def _check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"T_max": check_positive_int("T_max", options["T_max"]),
                "eta_min": check_number("eta_min", options["eta_min"])}

    def get_lr(self) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.count / self.T_max)) / 2


class LinearWarmup(Schedule):
    r"""Raise the rate linearly from 0 to ``base_lr`` over ``warmup_steps`` steps, then hand over.

    ``lr = base_lr * count / warmup_steps`` while ``count < warmup_steps``; from then on
    ``base_lr``, or, if ``after`` is given, ``after``'s rate, with ``after`` starting from its
    own count 0 at ``count == warmup_steps`` (so the peak comes once, where the two meet).
    With ``warmup_steps = 4`` and no ``after``, the optimizer steps at 0, 1/4, 1/2, 3/4, 1,
    1, ... times ``base_lr``. The first step at rate 0 still primes Adam's moment estimates,
    the point of a warm-up for adaptive optimizers; this matches Hugging Face's
    ``get_*_schedule_with_warmup``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to drive.
    warmup_steps : int
        Steps to reach ``base_lr``, >= 1.
    after : Schedule, optional
        A fresh schedule on the same optimizer to continue with, e.g.
        ``CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps)``.
    """

    # set from the keyword arguments by the base class (saved in state_dict)
    warmup_steps: int

    def __init__(self, optimizer: Any, warmup_steps: int, after: Schedule | None = None) -> None:
        if after is not None:
            if not isinstance(after, Schedule):
                raise TypeError(f"after: expected a Schedule or None, got {type(after).__name__}")
            if after.optimizer is not optimizer:
                raise ValueError("after: expected a schedule on the same optimizer as the warm-up, got one on another")
            if after.count != 0:
                raise ValueError(f"after: expected a fresh schedule (count 0), got one at count {after.count}")
        self.after = after
        super().__init__(optimizer, warmup_steps=warmup_steps)

    def _check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"warmup_steps": check_positive_int("warmup_steps", options["warmup_steps"])}

    def get_lr(self) -> float:
        if self.count < self.warmup_steps:
            return self.base_lr * self.count / self.warmup_steps
        return self.base_lr if self.after is None else self.after.get_lr()

    def step(self) -> float:
        self.count += 1
        if self.after is not None and self.count > self.warmup_steps:
            return self.after.step()
        return self._apply()

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`Schedule.state_dict`, plus ``"after"``: the next schedule's state or None."""
        return {**super().state_dict(), "after": None if self.after is None else self.after.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "after" not in state:
            raise ValueError("schedule state: missing after, expected the keys of LinearWarmup.state_dict()")
        after = state["after"]
        if (after is None) != (self.after is None):
            raise ValueError(f"schedule state['after']: expected {'None' if self.after is None else 'a schedule state'}"
                             f" (as this warm-up was built), got {'None' if after is None else 'a schedule state'}")
        checked = self._check_state({key: value for key, value in state.items() if key != "after"})
        if self.after is not None:
            self.after.load_state_dict(after)  # checks itself before changing anything
        self._assign(checked)
