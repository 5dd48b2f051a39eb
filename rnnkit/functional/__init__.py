"""Pure forward/backward pairs: the only place in rnnkit that does calculus.

Every ``*_forward`` returns its outputs and a cache; the matching ``*_backward`` takes the
upstream gradient and that cache. Shapes are time-major ``(T, B, ...)``.
"""

from rnnkit.functional.activations import (
    ACTIVATIONS,
    activation_backward,
    activation_forward,
    get_activation,
)
from rnnkit.functional.dropout import dropout_backward, dropout_forward
from rnnkit.functional.embedding import embedding_backward, embedding_forward
from rnnkit.functional.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from rnnkit.functional.linear import linear_backward, linear_forward
from rnnkit.functional.losses import mse, softmax_cross_entropy
from rnnkit.functional.lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from rnnkit.functional.recurrent import (
    flip_sequences,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

__all__ = [
    "ACTIVATIONS",
    "activation_backward",
    "activation_forward",
    "dropout_backward",
    "dropout_forward",
    "embedding_backward",
    "embedding_forward",
    "flip_sequences",
    "get_activation",
    "gru_backward",
    "gru_forward",
    "gru_step_backward",
    "gru_step_forward",
    "linear_backward",
    "linear_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "mse",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "softmax_cross_entropy",
]
