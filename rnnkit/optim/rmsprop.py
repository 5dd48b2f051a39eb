"""RMSprop: steps divided by a running root-mean-square of the gradients, optionally centered
and with momentum, with ``torch.optim.RMSprop``'s exact update."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnkit.optim._checks import check_flag, check_number
from rnnkit.optim.optimizer import Optimizer, Params, add_product_, l2_gradient, lerp_


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e; the centered form is Graves, 2013).

    .. math::
        g_t &= \nabla_\theta + \lambda \theta_{t-1} \\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        m_t &= \alpha m_{t-1} + (1 - \alpha) g_t \quad \text{(centered only)} \\
        d_t &= \sqrt{v_t - m_t^2 \text{ if centered else } v_t} + \epsilon \\
        b_t &= \mu b_{t-1} + g_t / d_t, \qquad \theta_t = \theta_{t-1} - \gamma b_t
            \quad \text{(or } \theta_{t-1} - \gamma g_t / d_t \text{ without momentum)}

    All state starts at zero, so the first steps are large (``v_1 = (1 - alpha) g^2``): there
    is no bias correction, as in PyTorch and Keras.

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        What to optimise; updated in place.
    lr : float
        Learning rate :math:`\gamma`, >= 0.
    alpha : float
        Smoothing constant :math:`\alpha`, in [0, 1).
    eps : float
        Added to the denominator, >= 0, outside the square root.
    weight_decay : float
        L2 penalty :math:`\lambda`, >= 0, added to the gradient.
    momentum : float
        Momentum factor :math:`\mu`, in [0, 1); 0 keeps no buffer.
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its second moment.
    """

    # set from the keyword arguments by the base class (hyperparameters, saved in state_dict)
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered)

    def _check_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_hyperparameters(hyperparameters)
        checked["alpha"] = check_number("alpha", hyperparameters["alpha"], 0.0, 1.0, high_open=True)
        checked["eps"] = check_number("eps", hyperparameters["eps"])
        checked["weight_decay"] = check_number("weight_decay", hyperparameters["weight_decay"])
        checked["momentum"] = check_number("momentum", hyperparameters["momentum"], 0.0, 1.0, high_open=True)
        checked["centered"] = check_flag("centered", hyperparameters["centered"])
        return checked

    def _state_names(self, hyperparameters: Mapping[str, Any]) -> tuple[str, ...]:
        return (("square_avg",) + ("grad_avg",) * hyperparameters["centered"]
                + ("momentum_buffer",) * (hyperparameters["momentum"] > 0))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray],
                a: np.ndarray, b: np.ndarray) -> None:
        g = l2_gradient(param, grad, self.weight_decay, out=a)
        square_avg = self._buffer(state, "square_avg", param)
        square_avg *= self.alpha
        add_product_(square_avg, g, g, 1.0 - self.alpha, scratch=b)
        if self.centered:
            grad_avg = self._buffer(state, "grad_avg", param)
            lerp_(grad_avg, g, 1.0 - self.alpha, scratch=b)
            np.multiply(grad_avg, -1.0, out=b)
            b *= grad_avg
            b += square_avg
            np.sqrt(b, out=b)
        else:
            np.sqrt(square_avg, out=b)
        b += self.eps
        if self.momentum:
            buffer = self._buffer(state, "momentum_buffer", param)
            buffer *= self.momentum
            np.divide(g, b, out=a)
            buffer += a
            np.multiply(buffer, self.lr, out=a)
            param -= a
        else:
            np.multiply(g, -self.lr, out=a)
            a /= b
            param += a
