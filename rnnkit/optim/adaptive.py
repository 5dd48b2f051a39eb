"""Optimizers with per-coordinate step sizes: Adagrad, RMSprop, Adam and AdamW, each with
PyTorch's exact update so a run can be checked against ``torch.optim`` step by step."""

from __future__ import annotations

import math

import numpy as np

from rnnkit.optim.optimizer import Optimizer, Params, check_non_negative, check_unit_interval


class Adagrad(Optimizer):
    """``s += g^2``; ``p -= lr_t * g / (sqrt(s) + eps)`` with ``lr_t = lr / (1 + (t-1) lr_decay)``
    (min-char-rnn's optimizer)."""

    state_names = ("sum",)

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(params, lr)
        self.lr_decay = check_non_negative("lr_decay", lr_decay)
        self.weight_decay = check_non_negative("weight_decay", weight_decay)
        self.initial_accumulator_value = check_non_negative("initial_accumulator_value", initial_accumulator_value)
        self.eps = check_non_negative("eps", eps)

    def hyperparameters(self):
        return {"lr": self.lr, "lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps}

    def _init_state(self, param):
        return {"sum": np.full_like(param, self.initial_accumulator_value)}

    def _update(self, param, grad, state):
        g = grad + self.weight_decay * param if self.weight_decay else grad
        step_lr = self.lr / (1 + (self.step_count - 1) * self.lr_decay)
        state["sum"] += g * g
        param -= step_lr * g / (np.sqrt(state["sum"]) + self.eps)


class RMSprop(Optimizer):
    """``s = alpha s + (1 - alpha) g^2``; ``p -= lr g / (sqrt(s - m^2 if centered else s) + eps)``,
    with optional momentum on that step."""

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha = check_unit_interval("alpha", alpha)
        self.eps = check_non_negative("eps", eps)
        self.weight_decay = check_non_negative("weight_decay", weight_decay)
        self.momentum = check_non_negative("momentum", momentum)
        self.centered = bool(centered)
        self.state_names = ("square_avg",) + ("grad_avg",) * self.centered + ("momentum_buffer",) * (momentum > 0)

    def hyperparameters(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}

    def _update(self, param, grad, state):
        g = grad + self.weight_decay * param if self.weight_decay else grad
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * g * g
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg *= self.alpha
            grad_avg += (1 - self.alpha) * g
            denominator = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denominator = np.sqrt(square_avg) + self.eps
        if self.momentum:
            buffer = state["momentum_buffer"]
            buffer *= self.momentum
            buffer += g / denominator
            param -= self.lr * buffer
        else:
            param -= self.lr * g / denominator


class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is added to the gradient (L2), as in
    ``torch.optim.Adam``; ``amsgrad`` keeps the running maximum of the second moment."""

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    decoupled = False

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        self.betas = (check_unit_interval("betas[0]", betas[0]), check_unit_interval("betas[1]", betas[1]))
        self.eps = check_non_negative("eps", eps)
        self.weight_decay = check_non_negative("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        if not self.amsgrad:
            self.state_names = ("exp_avg", "exp_avg_sq")

    def hyperparameters(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "amsgrad": self.amsgrad}

    def _update(self, param, grad, state):
        beta1, beta2 = self.betas
        if self.weight_decay and self.decoupled:
            param *= 1 - self.lr * self.weight_decay
            g = grad
        elif self.weight_decay:
            g = grad + self.weight_decay * param
        else:
            g = grad
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        second = exp_avg_sq
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second = state["max_exp_avg_sq"]
        correction1 = 1 - beta1**self.step_count
        correction2_sqrt = math.sqrt(1 - beta2**self.step_count)
        denominator = np.sqrt(second) / correction2_sqrt + self.eps
        param -= (self.lr / correction1) * exp_avg / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam step."""

    decoupled = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
