"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay, with
``torch.optim.SGD``'s exact update (the first step fills the momentum buffer with the gradient)."""

from __future__ import annotations

import numpy as np

from rnnkit.optim.optimizer import Optimizer, Params, check_non_negative


class SGD(Optimizer):
    """``v = mu v + (1 - dampening) g``; ``p -= lr * (g + mu v if nesterov else v)``, with
    ``g = grad + weight_decay * p``."""

    state_names = ("momentum_buffer",)

    def __init__(self, params: Params, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = check_non_negative("momentum", momentum)
        self.dampening = check_non_negative("dampening", dampening)
        self.weight_decay = check_non_negative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: expected momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        self.nesterov = bool(nesterov)
        if self.momentum == 0:
            self.state_names = ()

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        g = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum:
            buffer = state["momentum_buffer"]
            if self.step_count == 1:
                buffer[...] = g
            else:
                buffer *= self.momentum
                buffer += (1.0 - self.dampening) * g
            g = g + self.momentum * buffer if self.nesterov else buffer
        param -= self.lr * g
