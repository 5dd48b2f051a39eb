"""An ensemble: several models of one kind, trained side by side, predicting as one.

Each member is trained on its own loss, as if it were alone (the members differ only in their
initial weights and dropout draws): training the average of their predictions instead pulls them
together, and their disagreement is what an ensemble averages away. The prediction is the average
of the members' class probabilities, given as its logarithm (``log mean_k softmax(z_k)``, scores
that ``argmax`` and cross-entropy read as any model's), or the mean of their outputs for a model
with squared-error loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.functional.activations import log_softmax
from rnnkit.models.base import Model
from rnnkit.models.sequence import ManyToOne, OneToOne

#: the models an ensemble averages: one output array per input
MEMBER_CLASSES = (ManyToOne, OneToOne)


def mean_probabilities_forward(scores: np.ndarray) -> np.ndarray:
    """``scores (K, ..., C)`` of ``K`` members -> ``log mean_k softmax(scores[k]) (..., C)``,
    computed without overflow (a log-sum-exp over members and classes)."""
    log_probs = log_softmax(scores)
    top = log_probs.max(axis=0)
    return top + np.log(np.exp(log_probs - top).mean(axis=0))


class Ensemble(Model):
    """``K`` models of one class and configuration (``ManyToOne`` or ``OneToOne``: one output
    per input), each trained on its own loss; one prediction.

    ``forward(*inputs, **options)`` runs every member and returns the combined prediction: the
    logarithm of the members' mean class probabilities (``loss_kind == "cross_entropy"``) or
    the mean of their outputs (``"mse"``), shaped as one member's output. In training mode,
    ``loss(outputs, targets)`` scores the last forward's members one by one and returns the
    mean of their losses with each member's gradient, stacked ``(K, *outputs.shape)``, for
    ``backward``; in evaluation mode it is the loss of the combined prediction, the figure to
    compare with a single model's. Parameters are named ``member{k}.<the member's names>``.
    """

    def __init__(self, members: Sequence[Model]) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("members: expected at least one model, got none")
        kinds = {type(member) for member in members}
        if len(kinds) != 1:
            raise TypeError(f"members: expected models of one rnnkit.models class, got "
                            f"{sorted(kind.__name__ for kind in kinds)}")
        if not isinstance(members[0], MEMBER_CLASSES):
            raise TypeError(f"members: expected models with one output per input to average "
                            f"({', '.join(c.__name__ for c in MEMBER_CLASSES)}), got {type(members[0]).__name__}")
        shapes = [{name: value.shape for name, value, _ in member.named_parameters()} for member in members]
        if any(shape != shapes[0] for shape in shapes[1:]):
            raise ValueError("members: expected models of one configuration (the same parameters and shapes)")
        self.loss_kind = members[0].loss_kind
        self.size = len(members)
        for k, member in enumerate(members):
            setattr(self, f"member{k}", member)
        self._outputs: Any = None  # (the combined prediction, the members' outputs) of the last forward

    @property
    def members(self) -> list[Model]:
        return [getattr(self, f"member{k}") for k in range(self.size)]

    def extra_repr(self) -> str:
        return f"{self.size} members"

    def forward(self, *inputs: Any, **options: Any) -> np.ndarray:
        scores = np.stack([member.forward(*inputs, **options) for member in self.members])
        combined = mean_probabilities_forward(scores) if self.loss_kind == "cross_entropy" else scores.mean(axis=0)
        self._outputs = (combined, scores)
        return combined

    def loss(
        self, outputs: np.ndarray, targets: np.ndarray, lengths: np.ndarray | None = None, reduction: str = "sum"
    ) -> tuple[float, np.ndarray]:
        if not self.training:
            return super().loss(outputs, targets, lengths, reduction)
        combined, scores = self._require_cache(self._outputs)
        if outputs is not combined:
            raise ValueError("Ensemble.loss: in training mode, expected the outputs of the last forward (each "
                             "member's loss is computed from its own outputs, which that forward kept)")
        losses, grads = zip(*(super(Ensemble, self).loss(member_scores, targets, lengths, reduction)
                              for member_scores in scores))
        return float(np.mean(losses)), np.stack(grads) / self.size

    def backward(self, doutputs: np.ndarray, **options: Any) -> np.ndarray | None:
        """``doutputs (K, ...)``: each member's gradient, as ``loss`` returns it in training mode.
        Returns the input gradient summed over members (None for token inputs, which have none)."""
        combined, _ = self._require_cache(self._outputs)
        if doutputs.shape != (self.size, *combined.shape):
            raise ValueError(f"doutputs: expected the members' gradients, shape {(self.size, *combined.shape)} "
                             f"(what loss returns in training mode), got {doutputs.shape}")
        input_grads = [member.backward(grad, **options) for member, grad in zip(self.members, doutputs)]
        self._outputs = None
        return None if input_grads[0] is None else np.sum(input_grads, axis=0)
