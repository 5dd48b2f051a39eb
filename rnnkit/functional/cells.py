"""What makes one recurrent cell differ from another, as data that the generic layer runs.

The layer (:func:`rnnkit.functional.recurrent.recurrent_layer_forward` and its backward) owns
everything the cells share: the input projection of all steps, gates and directions as one
matrix product, reverse directions and padding, blocks of BPTT with the weight gradients as
block products after the scan, the input gradient. A :class:`Cell` supplies what differs: how
many gate blocks its weights stack, which states it carries, which biases it has, and the two
per-step loops. Elman, LSTM, GRU, minGRU and minLSTM are five entries (in ``elman.py``,
``lstm.py``, ``gru.py``, ``mingru.py`` and ``minlstm.py``), not five copies of the layer; the
last two have no recurrent weight (:attr:`Cell.recurrent_weight`), which the layer honours by
skipping what ``W_hh`` needs. :func:`rnnkit.functional.get_cell` finds one by name.

Letters: T time steps, B batch, H hidden units, G gate blocks (1 Elman, 4 LSTM, 3 GRU, 2 minGRU,
3 minLSTM).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar

import numpy as np

#: A recurrent layer's carried states, one array per name in :attr:`Cell.state_names`: ``(h,)`` or
#: ``(h, c)``; each ``(B, H)`` for one direction, ``(L * D, B, H)`` for a stacked layer's.
State = tuple[np.ndarray, ...]

#: What a cell's :attr:`Cell.make_scratch` returns and its ``scan_backward`` reads back.
_ScratchT = TypeVar("_ScratchT")


@dataclass(frozen=True)
class Cell:
    """A recurrent cell as the generic layer sees it.

    Attributes:
        name: ``"rnn"``, ``"lstm"``, ``"gru"``, ``"mingru"`` or ``"minlstm"``.
        gates: ``G``; ``W_xh`` is ``(G*H, I)`` and ``W_hh`` is ``(G*H, H)``.
        state_names: the states carried from step to step, ``("h",)`` or ``("h", "c")``; the
            layer takes and returns one ``(D, B, H)`` array per name.
        bias_names: ``("b_h",)``, or ``("b_xh", "b_hh")`` for the GRU, whose hidden bias sits
            inside the reset product.
        kept: names of the extra ``(T, B, H)`` arrays the forward scan fills and BPTT reads
            (the LSTM's cell states ``"c"``, the GRU's ``"hn" = W_hn h + b_hn``); a name that is
            also a state gives that state's final value.
        split_hidden_grad: BPTT needs a second ``(n, B, G*H)`` buffer for the gradient of the
            recurrent pre-activations, because it differs from the input side's (the GRU's
            ``n`` gate; the Elman and LSTM gradients are the same on both sides).
        scan_forward: ``(gates, states, kept, initial, W_hh, biases, mask, first_padded)``.
            ``gates`` ``(T, B, G*H)`` in scan order holds ``W_xh x_t`` on entry (no bias) and
            whatever BPTT needs on exit; ``states`` ``(T, B, H)`` receives ``h_t`` (for ``G = 1``
            it is ``gates`` itself); ``kept`` the arrays named above, ``initial`` one ``(B, H)``
            per state. Steps from ``first_padded`` on are multiplied by ``mask[t]`` (``(T, B, 1)``)
            so that padding holds exact zeros.
        scan_backward: ``(block, upstream, extra_upstream, carried, W_hh, bias_grads,
            first_product)``, see :class:`BackwardBlock`.
        make_scratch: ``(steps, batch, hidden, dtype) -> object`` handed to every
            ``scan_backward`` call of one layer: buffers reused across blocks.
        states_are_gates: the forward loop turns the gate pre-activations into the states in
            place (one gate block whose activation is the state: the Elman cell), so the
            layer's output is the projection buffer itself, and the backward loop takes its
            upstream gradient in the gate-gradient buffer (``upstream`` None).
        recurrent_weight: the gates read ``h_{t-1}`` through ``W_hh``. False for the minimal
            cells (minGRU, minLSTM), whose gates read the input alone: the layer then has no
            ``W_hh`` (None), no ``dW_hh`` products, and the loops receive ``W_hh=None``; the
            recurrence left is the elementwise ``h_t = a_t h_{t-1} + b_t``.
        bias_blocks: per name in ``bias_names``, its length in blocks of ``H`` (empty: every
            one ``G``); the layer-normalised cells' gains and shifts of ``c`` are ``H`` long; 0
            marks a projection matrix ``(P, H)``, the projecting LSTM's ``W_hr``.
        bias_fill: per name, the constant it starts from, or None for PyTorch's uniform draw
            (empty: all uniform): a normalisation's gain starts at 1, its shift at 0.
        kept_widths: per name in ``kept``, its last axis in blocks of ``H``, or as a negative
            number ``-n``, ``n`` columns (empty: every one ``H``): the layer-normalised cells
            keep ``(T, B, G*H)`` normalised rows and ``(T, B, n)`` inverse deviations.
    """

    name: str
    gates: int
    state_names: tuple[str, ...]
    bias_names: tuple[str, ...]
    kept: tuple[str, ...]
    split_hidden_grad: bool
    scan_forward: Callable[..., None]
    scan_backward: Callable[..., None]
    make_scratch: Callable[..., object]
    states_are_gates: bool = False
    recurrent_weight: bool = True
    bias_blocks: tuple[int, ...] = ()
    bias_fill: tuple[float | None, ...] = ()
    kept_widths: tuple[int, ...] = ()

    def bias_shapes(self, hidden: int, output: int | None = None) -> tuple[tuple[int, ...], ...]:
        """The shape of each array in :attr:`bias_names` for ``hidden`` units whose ``h`` has
        ``output`` (``hidden`` when None): a block count of 0 is a projection ``(output, hidden)``."""
        blocks = self.bias_blocks or (self.gates,) * len(self.bias_names)
        return tuple((count * hidden,) if count else (hidden if output is None else output, hidden) for count in blocks)

    def kept_sizes(self, hidden: int) -> tuple[int, ...]:
        """The last axis of each array in :attr:`kept` for ``hidden`` units."""
        widths = self.kept_widths or (1,) * len(self.kept)
        return tuple(width * hidden if width > 0 else -width for width in widths)


@dataclass(slots=True)
class BackwardBlock(Generic[_ScratchT]):
    """The arrays one call of :attr:`Cell.scan_backward` works on: scan steps ``[start, stop)``.

    ``grad`` (and ``grad_hidden``, the same array unless the cell splits them) are
    ``(stop - start, B, G*H)`` in scan order and receive ``dL/da`` of the block's gate
    pre-activations. ``gates``, ``states`` and ``kept`` are the whole scan-order arrays of the
    forward (the cell reads step ``start - 1`` of them, or ``initial`` at step 0). ``scratch`` is
    the cell's own, from :attr:`Cell.make_scratch`. ``biases``: the direction's arrays named in
    :attr:`Cell.bias_names` (a normalisation's gain is needed backward).
    """

    start: int
    stop: int
    grad: np.ndarray
    grad_hidden: np.ndarray
    gates: np.ndarray
    states: np.ndarray
    kept: tuple[np.ndarray, ...]
    initial: tuple[np.ndarray, ...]
    scratch: _ScratchT
    biases: tuple[np.ndarray, ...] = ()


class GateScratch:
    """Buffers of a gated cell's NumPy BPTT loop, shared by every block of one layer; each is made
    on first use, since the compiled loops need none.

    ``derivative`` ``(steps, B, G*H)``: the gates' derivatives of a block, evaluated for all its
    steps at once as ``(1 - y) * (y + offset)`` from the gate outputs ``y``: ``y (1 - y)`` for a
    sigmoid gate (offset 0), ``(1 - y)(1 + y)`` for the tanh block (offset 1; the third block in
    both the LSTM's i, f, g, o and the GRU's r, z, n). ``rows``: two ``(B, H)`` per-step rows.
    """

    TANH_BLOCK = 2

    def __init__(self, steps: int, batch: int, hidden: int, gates: int, dtype: np.dtype) -> None:
        self.steps, self.batch, self.hidden, self.gates, self.dtype = steps, batch, hidden, gates, dtype

    @cached_property
    def derivative(self) -> np.ndarray:
        return np.empty((self.steps, self.batch, self.gates * self.hidden), self.dtype)

    @cached_property
    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        return np.empty((self.batch, self.hidden), self.dtype), np.empty((self.batch, self.hidden), self.dtype)

    @cached_property
    def offset(self) -> np.ndarray:
        offset = np.zeros(self.gates * self.hidden, self.dtype)
        offset[self.TANH_BLOCK * self.hidden : (self.TANH_BLOCK + 1) * self.hidden] = 1.0
        return offset

    def gate_derivatives(self, gates: np.ndarray) -> np.ndarray:
        """The derivatives of a block's gates ``(n, B, G*H)`` from their outputs, in ``derivative``."""
        derivative = np.add(gates, self.offset, out=self.derivative[: len(gates)])
        derivative *= 1.0 - gates
        return derivative


def entering_product(h_prev: np.ndarray, product_mask: np.ndarray | None, buffer: np.ndarray) -> np.ndarray:
    """``h_{t-1}`` as a loop's recurrent product reads it: ``h_prev`` itself, or through the
    recurrent dropout mask ``(B, H)`` into ``buffer``."""
    return h_prev if product_mask is None else np.multiply(h_prev, product_mask, out=buffer)


def leaving_product(grad: np.ndarray, W_hh: np.ndarray, product_mask: np.ndarray | None, out: np.ndarray) -> None:
    """``out`` = the gradient ``(B, H)`` that reaches ``h_{t-1}`` through the recurrent product
    from ``grad`` ``(B, G*H)``: ``grad @ W_hh``, through the same recurrent dropout mask as
    :func:`entering_product` applied forward."""
    np.dot(grad, W_hh, out)
    if product_mask is not None:
        out *= product_mask
