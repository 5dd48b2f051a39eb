"""Adagrad: per-coordinate step sizes from the running sum of squared gradients
(min-char-rnn's optimizer), with ``torch.optim.Adagrad``'s exact update."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnkit.optim._checks import check_number
from rnnkit.optim.optimizer import Optimizer, Params, add_product_, l2_gradient


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011).

    .. math::
        g_t &= \nabla_\theta + \lambda \theta_{t-1} \\
        s_t &= s_{t-1} + g_t^2, \qquad s_0 = \text{initial\_accumulator\_value} \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 + (t - 1)\eta} \; \frac{g_t}{\sqrt{s_t} + \epsilon}

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        What to optimise; updated in place.
    lr : float
        Learning rate :math:`\gamma`, >= 0.
    lr_decay : float
        :math:`\eta`, >= 0: the rate decays as ``lr / (1 + (t - 1) lr_decay)``.
    weight_decay : float
        L2 penalty :math:`\lambda`, >= 0, added to the gradient.
    initial_accumulator_value : float
        Starting value of the sum :math:`s`, >= 0; a positive value tames the first steps,
        which are otherwise ``lr * sign(g)``.
    eps : float
        Added to the denominator, >= 0, outside the square root (as in PyTorch).
    """

    # set from the keyword arguments by the base class (hyperparameters, saved in state_dict)
    lr_decay: float
    weight_decay: float
    initial_accumulator_value: float
    eps: float

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def _check_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_hyperparameters(hyperparameters)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            checked[key] = check_number(key, hyperparameters[key])
        return checked

    def _state_names(self, hyperparameters: Mapping[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray],
                a: np.ndarray, b: np.ndarray) -> None:
        g = l2_gradient(param, grad, self.weight_decay, out=a)
        step_lr = self.lr / (1 + (self.step_count - 1) * self.lr_decay)
        total = self._buffer(state, "sum", param, self.initial_accumulator_value)
        add_product_(total, g, g, 1.0, scratch=b)
        np.sqrt(total, out=b)
        b += self.eps
        np.multiply(g, -step_lr, out=a)
        a /= b
        param += a
