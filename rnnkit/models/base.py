"""Pieces shared by the architectures: the input layer (tokens through an embedding, real
values straight in), pooling over valid time steps, and the task losses."""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.functional.losses import mse, softmax_cross_entropy
from rnnkit.nn.embedding import Embedding
from rnnkit.nn.module import Module

LOSSES = ("cross_entropy", "mse")
POOLINGS = ("last", "mean", "max", "attention")


def make_input_layer(
    vocab_size: int | None, input_size: int | None, embed_dim: int, dtype: np.dtype, rng: np.random.Generator,
    embed_dropout: float = 0.0,
) -> tuple[Embedding | None, int]:
    """An embedding for token inputs (``vocab_size``; dropout on its vectors in training) or
    nothing for real-valued inputs (``input_size``); returns it with the feature size the RNN will see."""
    if (vocab_size is None) == (input_size is None):
        raise ValueError(
            f"give exactly one of vocab_size (token inputs) or input_size (real-valued inputs), "
            f"got vocab_size={vocab_size!r}, input_size={input_size!r}"
        )
    if vocab_size is not None:
        return Embedding(vocab_size, embed_dim, padding_idx=0, dtype=dtype, seed=rng, dropout=embed_dropout), embed_dim
    if embed_dropout:
        raise ValueError(f"embed_dropout: real-valued inputs (input_size) have no embedding, got {embed_dropout}")
    assert input_size is not None  # exactly one of the two, checked above
    return None, int(input_size)


def embed_forward(embedding: Embedding | None, inputs: np.ndarray) -> np.ndarray:
    return inputs if embedding is None else embedding.forward(inputs)


def embed_backward(embedding: Embedding | None, dx: np.ndarray | None) -> np.ndarray | None:
    """Returns the input gradient for real-valued inputs, None for tokens (ids have none; the
    embedding's table takes the gradient)."""
    if embedding is None:
        return dx
    assert dx is not None  # under an embedding the recurrent layer always computes dx
    embedding.backward(dx)
    return None


def task_loss(
    kind: str, outputs: np.ndarray, targets: np.ndarray, lengths: np.ndarray | None = None, reduction: str = "sum"
) -> tuple[float, np.ndarray]:
    """Cross-entropy over classes or squared error over values, summed over valid steps."""
    check_choice("loss", kind, LOSSES)
    if kind == "cross_entropy":
        return softmax_cross_entropy(outputs, targets, lengths, reduction)
    if targets.ndim == outputs.ndim - 1 and outputs.shape[-1] == 1:
        targets = targets[..., None]  # one value per step given without its feature axis
    return mse(outputs, targets, lengths, reduction)


class Model(Module):
    """Base for the architectures: a ``loss`` and the choice of loss kind."""

    loss_kind: str = "cross_entropy"

    def loss(
        self, outputs: np.ndarray, targets: np.ndarray, lengths: np.ndarray | None = None, reduction: str = "sum"
    ) -> tuple[float, np.ndarray]:
        """``(loss, doutputs)`` for this model's outputs; pass ``doutputs`` to ``backward``."""
        return task_loss(self.loss_kind, outputs, targets, lengths, reduction)
