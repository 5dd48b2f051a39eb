"""Recurrent modules by cell name: what models and the command line build from ``--cell``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnkit._checks import check_choice
from rnnkit.functional import get_cell
from rnnkit.nn.gru import GRU
from rnnkit.nn.lstm import LSTM
from rnnkit.nn.mingru import MinGRU
from rnnkit.nn.minlstm import MinLSTM
from rnnkit.nn.recurrent import RecurrentLayer
from rnnkit.nn.rnn import RNN

# The classes, typed by their calls: their constructors differ (only RNN takes nonlinearity), and
# none takes RecurrentLayer's (cell first).
CELLS: dict[str, Callable[..., RecurrentLayer]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "mingru": MinGRU,
                                                   "minlstm": MinLSTM}


def state_names(cell: str) -> tuple[str, ...]:
    """The states a cell carries, without building a layer: ``("h",)`` or ``("h", "c")``."""
    return get_cell(check_choice("cell", cell, tuple(CELLS))).state_names


def recurrent(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    nonlinearity: str = "tanh",
    bidirectional: bool = False,
    dropout: float = 0.0,
    dtype: type | np.dtype = np.float32,
    seed: int | np.random.Generator | None = None,
    **options: object,
) -> RecurrentLayer:
    """An :class:`RNN`, :class:`LSTM`, :class:`GRU`, :class:`MinGRU` or :class:`MinLSTM` by ``cell``
    name (``"rnn"``, ``"lstm"``, ``"gru"``, ``"mingru"``, ``"minlstm"``). ``nonlinearity`` belongs to
    the Elman cell; the gated cells have their own, so anything but the default tanh with them is
    an error rather than silently ignored; ``layer_norm`` likewise belongs to the LSTM and GRU."""
    module = CELLS[check_choice("cell", cell, tuple(CELLS))]
    if options.get("layer_norm") and cell not in ("lstm", "gru"):
        raise ValueError(f"layer_norm: built for the gated cells lstm and gru, not {cell!r}")
    if not options.get("layer_norm", True):  # the default everywhere; only LSTM and GRU take the argument
        del options["layer_norm"]
    arguments = dict(num_layers=num_layers, bidirectional=bidirectional, dropout=dropout, dtype=dtype, seed=seed,
                     **options)
    if cell == "rnn":
        return module(input_size, hidden_size, nonlinearity=nonlinearity, **arguments)
    get_cell(cell, nonlinearity)  # a gated cell refuses another nonlinearity, in get_cell's words
    return module(input_size, hidden_size, **arguments)
