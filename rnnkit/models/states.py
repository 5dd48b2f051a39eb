"""Recurrent states as values, whatever the cell: the one place models, decoding and the trainer
handle them.

A state is a tuple with one ``(L, B, H)`` array per name in ``layer.cell.state_names``:
``(h,)`` for the Elman RNN and the GRU, ``(h, c)`` for the LSTM. Every array in a state has the
batch on axis 1, so selecting beams, copying a carry or joining directions is the same
operation applied to each array. A bare array is accepted where a state is expected and read as
a one-array state (what single-state code and old checkpoints hold).

A state may also be an object with a ``map_arrays(fn)`` method returning the same kind of object
with ``fn`` applied to each of its arrays (a decoder state that carries more than the recurrent
arrays, e.g. an attention memory): every helper below goes through :func:`map_state`.

>>> h, c = np.zeros((2, 3, 4)), np.ones((2, 3, 4))
>>> [a.shape for a in select_batch((h, c), [2, 0])]
[(2, 2, 4), (2, 2, 4)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.functional.cells import State


@dataclass
class DecoderState:
    """What an attentional decoder carries from step to step: its recurrent ``states`` (a tuple
    of ``(L, B, H)`` arrays, ``(h, c)`` for an LSTM), the encoder's outputs it attends to,
    ``memory (S, B, M)``, and their ``mask (S, B)`` (True at valid source positions). Every
    array has the batch on axis 1, so beam search selects hypotheses in all of them alike."""

    states: State
    memory: np.ndarray
    mask: np.ndarray

    def map_arrays(self, fn: Callable[[np.ndarray], np.ndarray]) -> DecoderState:
        return DecoderState(tuple(fn(array) for array in self.states), fn(self.memory), fn(self.mask))


def as_state(value: Any) -> Any:
    """``None`` stays None (zeros); a bare array becomes a one-array state; a list a tuple."""
    if value is None or isinstance(value, tuple) or hasattr(value, "map_arrays"):
        return value
    if isinstance(value, list):
        return tuple(value)
    return (value,)


def map_state(fn: Callable[[np.ndarray], np.ndarray], state: Any) -> Any:
    """``fn`` applied to every array of ``state`` (tuples nest; None entries stay None)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(map_state(fn, part) for part in state)
    if hasattr(state, "map_arrays"):
        return state.map_arrays(fn)
    return fn(state)


def leaves(state: Any) -> list[np.ndarray]:
    """The arrays of ``state`` in order."""
    found: list[np.ndarray] = []

    def keep(array: np.ndarray) -> np.ndarray:
        found.append(array)
        return array

    map_state(keep, state)
    return found


def batch_size(state: Any) -> int:
    """The number of sequences ``B`` (axis 1 of every array)."""
    return leaves(state)[0].shape[1]


def select_batch(state: Any, index: Any) -> Any:
    """Sequences ``index`` (a slice, or integer positions, possibly repeated) of every array:
    what beam search does to follow the surviving hypotheses."""
    return map_state(lambda array: array[:, index], state)


def detach(state: Any) -> Any:
    """A copy owning its memory: the state carried across truncated-BPTT windows, which takes no
    gradient from the next window and shares nothing with the caches of the last one."""
    return map_state(np.array, state)


def join_directions(array: np.ndarray, num_layers: int) -> np.ndarray:
    """``(L * 2, B, H)``, forward before reverse per layer -> ``(L, B, 2H)``, ``[fwd; rev]`` per layer."""
    _, batch, hidden = array.shape
    return array.reshape(num_layers, 2, batch, hidden).transpose(0, 2, 1, 3).reshape(num_layers, batch, 2 * hidden)


def split_directions(array: np.ndarray) -> np.ndarray:
    """The inverse of :func:`join_directions` (for gradients): ``(L, B, 2H)`` -> ``(L * 2, B, H)``."""
    layers, batch, width = array.shape
    hidden = width // 2
    return array.reshape(layers, batch, 2, hidden).transpose(0, 2, 1, 3).reshape(2 * layers, batch, hidden)
