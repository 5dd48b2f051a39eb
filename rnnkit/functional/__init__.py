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
from rnnkit.functional.cells import Cell
from rnnkit.functional.ctc import ctc_backward, ctc_forward, ctc_loss
from rnnkit.functional.dropout import dropout_backward, dropout_forward
from rnnkit.functional.elman import (
    ELMAN_CELLS,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)
from rnnkit.functional.embedding import embedding_backward, embedding_forward
from rnnkit.functional.gru import GRU_CELL, gru_backward, gru_forward, gru_step_backward, gru_step_forward
from rnnkit.functional.linear import linear_backward, linear_forward
from rnnkit.functional.losses import mse, softmax_cross_entropy
from rnnkit.functional.lstm import LSTM_CELL, lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from rnnkit.functional.mingru import mingru_cell
from rnnkit.functional.minlstm import minlstm_cell
from rnnkit.functional.recurrent import flip_sequences

CELL_NAMES = ("rnn", "lstm", "gru", "mingru", "minlstm")
#: the cells whose gates read the input alone, so that their recurrence is a linear scan
MINIMAL_CELLS = ("mingru", "minlstm")


def get_cell(name: str, nonlinearity: str = "tanh", scan: str = "sequential") -> Cell:
    """The :class:`Cell` called ``name`` (``"rnn"``, ``"lstm"``, ``"gru"``, ``"mingru"``,
    ``"minlstm"``); ``nonlinearity`` (``"tanh"``, ``"sigmoid"``, ``"relu"``) is the Elman cell's,
    the gated cells have their own; ``scan`` (``"sequential"``, ``"parallel"``: log space) is the
    minimal cells'."""
    if name == "rnn":
        from rnnkit.functional.elman import elman_cell

        return elman_cell(nonlinearity)
    if name not in CELL_NAMES:
        raise ValueError(f"cell: expected one of {', '.join(CELL_NAMES)}, got {name!r}")
    if nonlinearity != "tanh":
        raise ValueError(f"nonlinearity: the {name.upper()} cell has its own gate nonlinearities; "
                         f"{nonlinearity!r} applies only to cell 'rnn'")
    if name in MINIMAL_CELLS:
        return (mingru_cell if name == "mingru" else minlstm_cell)(scan)
    return {"lstm": LSTM_CELL, "gru": GRU_CELL}[name]


__all__ = [
    "ACTIVATIONS",
    "CELL_NAMES",
    "Cell",
    "ELMAN_CELLS",
    "GRU_CELL",
    "LSTM_CELL",
    "MINIMAL_CELLS",
    "activation_backward",
    "activation_forward",
    "ctc_backward",
    "ctc_forward",
    "ctc_loss",
    "dropout_backward",
    "dropout_forward",
    "embedding_backward",
    "embedding_forward",
    "flip_sequences",
    "get_activation",
    "get_cell",
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
    "mingru_cell",
    "minlstm_cell",
    "mse",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "softmax_cross_entropy",
]
