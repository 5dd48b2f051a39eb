"""Adam and AdamW: bias-corrected first and second moment estimates, with
``torch.optim.Adam``/``AdamW``'s exact update. AdamW is Adam with the weight decay taken out of
the gradient and applied to the parameters directly (decoupled), so it is one flag here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnkit.optim._checks import check_flag, check_number
from rnnkit.optim.optimizer import Optimizer, Params, add_product_, l2_gradient, lerp_


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2015), with optional AMSGrad (Reddi et al., 2018).

    .. math::
        g_t &= \nabla_\theta + \lambda \theta_{t-1} \quad \text{(Adam's L2; AdamW: see below)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad else } v_t \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \;
            \frac{m_t}{\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    ``eps`` is added after the bias correction of :math:`\sqrt{v}`, as in PyTorch (the paper's
    form); Keras and TensorFlow add it before, which differs in the first steps.

    Parameters
    ----------
    params : module or iterable of (name, param, grad)
        What to optimise; updated in place.
    lr : float
        Learning rate :math:`\gamma`, >= 0.
    betas : (float, float)
        Decay rates :math:`(\beta_1, \beta_2)` of the moment estimates, each in [0, 1).
    eps : float
        Added to the denominator, >= 0.
    weight_decay : float
        :math:`\lambda`, >= 0. Adam adds :math:`\lambda\theta` to the gradient (L2), so the
        decay is rescaled by the adaptive denominator; AdamW decouples it.
    amsgrad : bool
        Divide by the running maximum of :math:`v` (never lets the step size grow back).
    """

    # set from the keyword arguments by the base class (hyperparameters, saved in state_dict)
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool

    #: AdamW sets this: ``theta *= 1 - lr * weight_decay`` before the step, grad untouched
    decoupled_weight_decay = False

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def _check_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_hyperparameters(hyperparameters)
        betas = hyperparameters["betas"]
        if isinstance(betas, np.ndarray):
            betas = betas.tolist()
        if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), each in [0, 1), got {betas!r}")
        checked["betas"] = tuple(check_number(f"betas[{i}]", beta, 0.0, 1.0, high_open=True)
                                 for i, beta in enumerate(betas))
        checked["eps"] = check_number("eps", hyperparameters["eps"])
        checked["weight_decay"] = check_number("weight_decay", hyperparameters["weight_decay"])
        checked["amsgrad"] = check_flag("amsgrad", hyperparameters["amsgrad"])
        return checked

    def _state_names(self, hyperparameters: Mapping[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + ("max_exp_avg_sq",) * hyperparameters["amsgrad"]

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray],
                a: np.ndarray, b: np.ndarray) -> None:
        beta1, beta2 = self.betas
        if self.decoupled_weight_decay:
            if self.weight_decay:
                param *= 1.0 - self.lr * self.weight_decay
            g = grad
        else:
            g = l2_gradient(param, grad, self.weight_decay, out=a)
        exp_avg = self._buffer(state, "exp_avg", param)
        exp_avg_sq = self._buffer(state, "exp_avg_sq", param)
        lerp_(exp_avg, g, 1.0 - beta1, scratch=b)
        exp_avg_sq *= beta2
        add_product_(exp_avg_sq, g, g, 1.0 - beta2, scratch=b)

        # the bias corrections are scalars: folded into the step size and the divisor of
        # sqrt(v) instead of correcting m and v element by element
        step_size = self.lr / (1.0 - beta1**self.step_count)
        correction2_sqrt = (1.0 - beta2**self.step_count) ** 0.5
        second = exp_avg_sq
        if self.amsgrad:
            second = self._buffer(state, "max_exp_avg_sq", param)
            np.maximum(second, exp_avg_sq, out=second)
        np.sqrt(second, out=b)
        b /= correction2_sqrt
        b += self.eps
        np.multiply(exp_avg, -step_size, out=a)
        a /= b
        param += a


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov and Hutter, 2019).

    Each step first shrinks the parameters, :math:`\theta \leftarrow \theta (1 - \gamma\lambda)`,
    then takes the Adam step on the raw gradient; so the decay is the same for every
    coordinate, whatever its gradient history. Parameters as :class:`Adam`, except that
    ``weight_decay`` defaults to ``1e-2``.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
