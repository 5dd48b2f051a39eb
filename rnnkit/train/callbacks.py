"""What a run tells its observers: the trainer calls each callback at these moments, on the
root process only (under ``mpiexec``, one process writes logs), after the run directory holds
what the moment describes.

A callback overrides the methods it needs; the defaults do nothing. A callback must not change
the model, the optimizer or any random generator: a resumed run must stay bit for bit the
uninterrupted one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.train.trainer import Trainer

__all__ = ["Callback"]


class Callback:
    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first step of this process's training (a resumed run calls it again)."""

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """A record of ``metrics.jsonl``: training (``train_loss``, ``items_per_second``,
        ``grad_norm``, ``lr``) every ``log_every`` steps, validation (``valid_*``) at each
        epoch end and mid-epoch stop."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """After epoch ``epoch`` (counted from 1) was validated and checkpointed."""

    def on_train_end(self, trainer: Trainer, reason: str) -> None:
        """After the loop ended (``reason`` as :meth:`Trainer.fit` returns it)."""
