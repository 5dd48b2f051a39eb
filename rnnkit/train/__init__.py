"""Training: the loop, checkpoints with exact resume, the divergence guard, and ``fit`` on arrays."""

from rnnkit.train.callbacks import Callback
from rnnkit.train.fit import FitResult, evaluate, fit, predict
from rnnkit.train.trainer import DivergenceError, TrainConfig, Trainer

__all__ = ["Callback", "DivergenceError", "FitResult", "TrainConfig", "Trainer", "evaluate", "fit", "predict"]
