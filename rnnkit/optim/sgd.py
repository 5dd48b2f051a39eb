"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, with
``torch.optim.SGD``'s exact update (the first step fills the momentum buffer with the gradient)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnkit.optim._checks import check_flag, check_number
from rnnkit.optim.optimizer import Optimizer, Params, l2_gradient


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    .. math::
        g_t &= \nabla_\theta + \lambda \theta_{t-1} \\
        b_t &= g_1 \text{ if } t = 1 \text{ else } \mu b_{t-1} + (1 - \tau) g_t \\
        \theta_t &= \theta_{t-1} - \gamma \, (g_t + \mu b_t \text{ if nesterov else } b_t)

    With ``momentum=0`` this is plain ``theta -= lr * g``. As in PyTorch (and unlike Sutskever
    et al.), the learning rate multiplies the buffer rather than entering it, and the first
    step copies the gradient into the buffer undamped.

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        What to optimise; updated in place.
    lr : float
        Learning rate :math:`\gamma`, >= 0.
    momentum : float
        Momentum factor :math:`\mu`, in [0, 1); 0 keeps no state.
    dampening : float
        :math:`\tau`, in [0, 1]: the share of each new gradient left out of the buffer.
    nesterov : bool
        Nesterov momentum: step along :math:`g_t + \mu b_t`. Needs momentum > 0, dampening 0.
    weight_decay : float
        L2 penalty :math:`\lambda`, >= 0, added to the gradient.

    Examples
    --------
    >>> optimizer = SGD(model, lr=0.1, momentum=0.9, nesterov=True)  # doctest: +SKIP
    >>> model.zero_grad(); loss_and_backward(); optimizer.step()       # doctest: +SKIP
    """

    # set from the keyword arguments by the base class (hyperparameters, saved in state_dict)
    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float

    def __init__(self, params: Params, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def _check_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_hyperparameters(hyperparameters)
        checked["momentum"] = check_number("momentum", hyperparameters["momentum"], 0.0, 1.0, high_open=True)
        checked["dampening"] = check_number("dampening", hyperparameters["dampening"], 0.0, 1.0)
        checked["nesterov"] = check_flag("nesterov", hyperparameters["nesterov"])
        checked["weight_decay"] = check_number("weight_decay", hyperparameters["weight_decay"])
        if checked["nesterov"] and (checked["momentum"] == 0 or checked["dampening"] != 0):
            raise ValueError("nesterov: expected momentum > 0 and dampening = 0 with nesterov=True, "
                             f"got momentum={checked['momentum']!r}, dampening={checked['dampening']!r}")
        return checked

    def _state_names(self, hyperparameters: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if hyperparameters["momentum"] else ()

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray],
                a: np.ndarray, b: np.ndarray) -> None:
        g = l2_gradient(param, grad, self.weight_decay, out=a)
        if self.momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                # torch starts the buffer at the gradient itself, not at zero: no warm-up bias
                state["momentum_buffer"] = buffer = g.copy()
            else:
                buffer *= self.momentum
                if self.dampening:
                    np.multiply(g, 1.0 - self.dampening, out=b)
                    buffer += b
                else:
                    buffer += g
            if self.nesterov:
                np.multiply(buffer, self.momentum, out=b)
                b += g
                g = b
            else:
                g = buffer
        np.multiply(g, self.lr, out=b)
        param -= b
