"""Learning-rate schedules: each wraps an optimizer and sets its ``lr`` on ``step()``
(call once per optimizer step, or per epoch, consistently)."""

from __future__ import annotations

import math
from typing import Any

from rnnkit.optim.optimizer import Optimizer


class Schedule:
    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.count = 0

    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self) -> float:
        self.count += 1
        self.optimizer.lr = self.get_lr()
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count, self.base_lr = int(state["count"]), float(state["base_lr"])
        self.optimizer.lr = self.get_lr()


class StepLR(Schedule):
    """``lr = base_lr * gamma ** (count // step_size)``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"step_size: expected a positive integer, got {step_size}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.count // self.step_size)


class CosineAnnealingLR(Schedule):
    """``lr = eta_min + (base_lr - eta_min) (1 + cos(pi count / T_max)) / 2``."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if T_max < 1:
            raise ValueError(f"T_max: expected a positive integer, got {T_max}")
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def get_lr(self) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.count / self.T_max)) / 2


class LinearWarmup(Schedule):
    """``lr`` rises linearly from ``base_lr / warmup_steps`` to ``base_lr`` over ``warmup_steps``
    steps, then ``after`` (another schedule on the same optimizer), if given, takes over."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, after: Schedule | None = None) -> None:
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps: expected a positive integer, got {warmup_steps}")
        super().__init__(optimizer)
        self.warmup_steps, self.after = warmup_steps, after
        optimizer.lr = self.base_lr / warmup_steps

    def get_lr(self) -> float:
        if self.count < self.warmup_steps:
            return self.base_lr * (self.count + 1) / self.warmup_steps
        if self.after is None:
            return self.base_lr
        self.after.count = self.count - self.warmup_steps
        return self.after.get_lr()
