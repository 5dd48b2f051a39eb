"""Optimizers, gradient clipping and learning-rate schedules, matching ``torch.optim``.

Optimizers take a module (anything with ``named_parameters()`` yielding ``(name, param, grad)``)
or such triples, and update the parameters in place::

    optimizer = Adam(model, lr=1e-3)
    for batch in batches:
        model.zero_grad()
        ...forward, loss, backward...
        norm = clip_grad_norm(model, 5.0)
        optimizer.step()
"""

from __future__ import annotations

from rnnkit.optim.adagrad import Adagrad
from rnnkit.optim.adam import Adam, AdamW
from rnnkit.optim.clip import clip_grad_norm, clip_grad_value, grad_norm
from rnnkit.optim.factory import OPTIMIZERS, make_optimizer
from rnnkit.optim.optimizer import Optimizer, merge_state_dict, split_state_dict
from rnnkit.optim.rmsprop import RMSprop
from rnnkit.optim.schedules import CosineAnnealingLR, LinearWarmup, Schedule, StepLR
from rnnkit.optim.sgd import SGD

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "LinearWarmup", "Optimizer",
           "RMSprop", "Schedule", "StepLR", "clip_grad_norm", "clip_grad_value", "grad_norm", "make_optimizer",
           "merge_state_dict", "split_state_dict"]
