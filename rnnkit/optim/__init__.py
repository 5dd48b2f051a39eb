"""Optimizers, gradient clipping and learning-rate schedules, matching ``torch.optim``."""

from __future__ import annotations

from rnnkit._checks import check_choice
from rnnkit.optim.adaptive import Adagrad, Adam, AdamW, RMSprop
from rnnkit.optim.clip import clip_grad_norm, clip_grad_value
from rnnkit.optim.optimizer import Optimizer
from rnnkit.optim.schedules import CosineAnnealingLR, LinearWarmup, Schedule, StepLR
from rnnkit.optim.sgd import SGD

OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, params, **options) -> Optimizer:
    """An optimizer by its lower-case name (the CLI's ``--optimizer``)."""
    return OPTIMIZERS[check_choice("optimizer", name, tuple(OPTIMIZERS))](params, **options)


__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "LinearWarmup", "Optimizer",
           "RMSprop", "Schedule", "StepLR", "clip_grad_norm", "clip_grad_value", "make_optimizer"]
