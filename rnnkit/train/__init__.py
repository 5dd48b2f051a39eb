"""Training: the loop, checkpoints with exact resume, and the divergence guard."""

from rnnkit.train.trainer import DivergenceError, TrainConfig, Trainer

__all__ = ["DivergenceError", "TrainConfig", "Trainer"]
