"""Modules: they own parameters and gradients and call the pure pairs in ``rnnkit.functional``."""

from rnnkit.nn.dropout import Dropout
from rnnkit.nn.embedding import Embedding
from rnnkit.nn.linear import Linear
from rnnkit.nn.module import Module
from rnnkit.nn.rnn import RNN
from rnnkit.nn.sequential import Sequential

__all__ = ["Dropout", "Embedding", "Linear", "Module", "RNN", "Sequential"]
