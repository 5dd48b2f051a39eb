"""Optimizers by name, for configs and the command line (``--optimizer adam``)."""

from __future__ import annotations

import inspect
from typing import Any

from rnnkit._checks import check_choice
from rnnkit.optim.adagrad import Adagrad
from rnnkit.optim.adam import Adam, AdamW
from rnnkit.optim.optimizer import Optimizer, Params
from rnnkit.optim.rmsprop import RMSprop
from rnnkit.optim.sgd import SGD

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam,
                                          "adamw": AdamW}


def make_optimizer(name: str, params: Params, **options: Any) -> Optimizer:
    """An optimizer by its lower-case name.

    Parameters
    ----------
    name : str
        One of ``OPTIMIZERS``: ``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``.
    params : module or iterable of (name, param, grad)
        What to optimise.
    **options
        Keyword arguments of that optimizer (``lr``, ``momentum``, ...).

    Raises
    ------
    ValueError
        An unknown name, or an option the chosen optimizer does not take (a config meant for
        another optimizer fails loudly instead of being ignored).
    """
    cls = OPTIMIZERS[check_choice("optimizer", name, tuple(OPTIMIZERS))]
    accepted = [key for key in inspect.signature(cls.__init__).parameters if key not in ("self", "params")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"options: expected some of {', '.join(accepted)} for optimizer {name!r}, "
                         f"got unknown {', '.join(unknown)}")
    return cls(params, **options)
