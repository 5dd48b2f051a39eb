"""Modules: they own parameters and gradients and call the pure pairs in ``rnnkit.functional``."""

from rnnkit.nn.dropout import Dropout
from rnnkit.nn.embedding import Embedding
from rnnkit.nn.factory import CELLS, recurrent
from rnnkit.nn.gru import GRU
from rnnkit.nn.linear import Linear
from rnnkit.nn.lstm import LSTM
from rnnkit.nn.mingru import MinGRU
from rnnkit.nn.minlstm import MinLSTM
from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import RecurrentLayer
from rnnkit.nn.rnn import RNN
from rnnkit.nn.sequential import Sequential

__all__ = ["CELLS", "GRU", "LSTM", "MinGRU", "MinLSTM", "RNN", "recurrent", "Dropout", "Embedding", "Linear", "Module",
           "RecurrentLayer", "Sequential"]
