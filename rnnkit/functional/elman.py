"""The Elman cell, ``h_t = act(W_hh h_{t-1} + W_xh x_t + b_h)``, on the generic layer: its two
per-step loops, its :class:`~rnnkit.functional.cells.Cell`, and the one-direction and one-step
pairs (``rnn_forward`` / ``rnn_backward``, ``rnn_step_*``).

Its states are its gates: the forward loop turns the layer's projection ``W_xh x_t`` into
``h_t`` in place (adding ``h_{t-1} W_hh^T`` and the bias, then the activation), so the layer's
output is that buffer. The loops run compiled when ``rnnkit._native`` is available (one product
and one fused pass per step, same arithmetic); the NumPy loops here are the fallback and what the
compiled ones are tested against.

Letters: T time steps, B batch, I input features, H hidden units, D directions. Time-major.
"""

from __future__ import annotations

from functools import partial
from typing import cast

import numpy as np

from rnnkit import _native
from rnnkit.functional.activations import ACTIVATIONS, Activation, get_activation
from rnnkit.functional.cells import BackwardBlock, Cell, entering_product, leaving_product
from rnnkit.functional.recurrent import RecurrentCache, recurrent_layer_backward, recurrent_layer_forward, transposed_copy

# Elements per block of activation derivatives in the backward scan: 128 KiB of float32, which
# stays in L2 while the block's steps consume it (larger blocks measured no faster).
_BLOCK_ELEMENTS = 1 << 15

def _scan_forward(
    states: np.ndarray,
    h0: np.ndarray,
    W_hh: np.ndarray,
    bias: np.ndarray,
    activation: Activation,
    mask: np.ndarray | None,
    first_padded: int,
    product_mask: np.ndarray | None = None,
) -> None:
    """Turn ``(T, B, H)`` (scan order) holding ``W_xh x_t`` into states, in place, adding ``bias``
    ``(H,)`` on the way. ``states`` may be a strided view (one direction's columns of the layer
    output). Steps from ``first_padded`` on hold padding for some sequence and are masked to exact
    zeros. ``product_mask`` ``(B, H)``, if given, multiplies ``h_{t-1}`` where it enters the
    product (recurrent dropout); the compiled loop does not take one."""
    # A broadcast h0 (learned initial state) has stride 0; BLAS would copy it on every step.
    h_prev = np.ascontiguousarray(h0)
    if product_mask is None and _native.elman_scan_forward(states, h_prev, W_hh.T, np.ascontiguousarray(bias),
                                                           activation.name, mask, first_padded):
        return
    W_hh_T = transposed_copy(W_hh)  # see recurrent_layer_forward: faster than the view
    states += bias
    if product_mask is not None or (states.shape[1] > 1 and not states[0].flags.c_contiguous):
        _scan_forward_strided(states, h_prev, W_hh_T, activation, mask, first_padded, product_mask)
        return
    recurrent = np.empty(states.shape[1:], dtype=states.dtype)
    # Local names and positional ``out`` arguments: at B = 1 the loop is bound by per-call
    # overhead, and these shave about 0.2 us of its 1.5 us per step.
    act, dot = activation.forward, np.dot
    for h_t in states[:first_padded]:
        dot(h_prev, W_hh_T, recurrent)
        h_t += recurrent
        act(h_t, h_t)
        h_prev = h_t
    if first_padded < len(states):
        assert mask is not None  # the layer makes a mask whenever a sequence has padding
        for h_t, keep in zip(states[first_padded:], mask[first_padded:]):
            dot(h_prev, W_hh_T, recurrent)
            h_t += recurrent
            act(h_t, h_t)
            h_t *= keep
            h_prev = h_t


def _scan_forward_strided(
    states: np.ndarray,
    h0: np.ndarray,
    W_hh_T: np.ndarray,
    activation: Activation,
    mask: np.ndarray | None,
    first_padded: int,
    product_mask: np.ndarray | None = None,
) -> None:
    """:func:`_scan_forward` for states whose rows are not contiguous (a direction's columns of a
    bidirectional output): each step is computed in one of two contiguous ``(B, H)`` buffers and
    then stored. One more copy per step, but the add and the activation run on contiguous memory
    and BLAS reads a contiguous ``h_{t-1}``. Per 100-step scan here: 2.24 -> 1.75 ms at B=32,
    H=128; 6.0 -> 5.3 at H=256; 16.2 -> 15.4 at H=512; 52.1 -> 50.6 at B=128, H=1024. With a
    ``product_mask`` (recurrent dropout) ``h_{t-1}`` is masked into a third buffer first."""
    act, dot, store = activation.forward, np.dot, np.copyto
    # mask is None only without padding, when first_padded is T and no step reads it
    mask = cast(np.ndarray, mask)
    buffers = np.empty((2, *states.shape[1:]), dtype=states.dtype)
    dropped = np.empty(states.shape[1:], dtype=states.dtype)
    h_prev = h0
    for t, h_t in enumerate(states):
        h_new = buffers[t & 1]
        dot(entering_product(h_prev, product_mask, dropped), W_hh_T, h_new)
        h_new += h_t
        act(h_new, h_new)
        if t >= first_padded:
            h_new *= mask[t]
        store(h_t, h_new)
        h_prev = h_new


def _scan_backward(
    grad: np.ndarray,
    states: np.ndarray,
    W_hh: np.ndarray,
    activation: Activation,
    carried: np.ndarray,
    derivative: np.ndarray,
    upstream: np.ndarray | None = None,
    bias_grad: np.ndarray | None = None,
    first_product: bool = True,
    product_mask: np.ndarray | None = None,
) -> None:
    """Carry the gradient back through a block of steps, in place.

    ``grad`` and ``states`` are ``(n, B, H)`` in scan order (views allowed). On entry ``grad[t]``
    holds the gradient reaching state ``t`` from above (or ``upstream[t]`` does, same shape, and
    ``grad`` is only written) and ``carried`` what arrives from the step after the block; on exit
    ``grad[t]`` holds ``dL/da_t`` and ``carried`` what flows on to the step before the block
    (``dL/dh0`` after the first block). At padding both the upstream gradient and everything
    arriving from later (padded) steps are zero, so the padded suffix stays zero without a mask in
    the loop. ``bias_grad`` ``(H,)``, if given, gets ``dL/da`` summed over the block added to it
    (by the compiled loop in the same pass). ``first_product=False`` skips the first step's
    product, whose result only ``dL/dh0`` needs (``carried`` is then left undefined).

    The activation derivative is evaluated for ``len(derivative)`` steps at a time, into that
    small buffer, which stays in cache: one call per few steps instead of one per step.
    ``product_mask`` ``(B, H)``: the forward's recurrent dropout mask, applied again to what
    flows back through the product (NumPy loop only).
    """
    name = activation.name
    if product_mask is None and _native.elman_scan_backward(grad, states, W_hh, name, carried, upstream, bias_grad,
                                                            first_product):
        return
    if upstream is not None:
        np.copyto(grad, upstream, casting="same_kind")
    if product_mask is not None or not _native.elman_scan_backward(grad, states, W_hh, name, carried,
                                                                   first_product=first_product):
        block = derivative.shape[0]
        for stop in range(grad.shape[0], 0, -block):
            start = max(0, stop - block)
            d = activation.derivative(states[start:stop], out=derivative[: stop - start])
            skip_first = start == 0 and not first_product
            for g_t, d_t in zip(grad[start + skip_first : stop][::-1], d[skip_first:][::-1]):
                g_t += carried
                g_t *= d_t
                leaving_product(g_t, W_hh, product_mask, carried)
            if skip_first:  # step 0 without its product, which only dL/dh0 needs
                grad[0] += carried
                grad[0] *= d[0]
    if bias_grad is not None:
        bias_grad += grad.sum(axis=(0, 1))


def _elman_scan_forward(activation: Activation, gates: np.ndarray, states: np.ndarray, kept: tuple,
                        initial: tuple[np.ndarray], W_hh: np.ndarray, biases: tuple[np.ndarray],
                        mask: np.ndarray | None, first_padded: int, product_mask: np.ndarray | None = None) -> None:
    """The Elman cell's forward loop for the generic layer: ``states`` is ``gates`` itself."""
    _scan_forward(states, initial[0], W_hh, biases[0], activation, mask, first_padded, product_mask)


def _elman_scan_backward(activation: Activation, block: BackwardBlock[np.ndarray],
                         upstream: np.ndarray | None, extra_upstream: tuple, carried: tuple[np.ndarray],
                         W_hh: np.ndarray, bias_grads: tuple[np.ndarray], first_product: bool,
                         product_mask: np.ndarray | None = None) -> None:
    """The Elman cell's BPTT loop for the generic layer (``upstream`` None: ``block.grad`` holds it)."""
    _scan_backward(block.grad, block.states[block.start : block.stop], W_hh, activation, carried[0], block.scratch,
                   upstream, bias_grads[0], first_product, product_mask)


def _elman_scratch(steps: int, batch: int, hidden: int, dtype: np.dtype) -> np.ndarray:
    """The activation-derivative buffer of :func:`_scan_backward`."""
    return np.empty((max(1, min(steps, _BLOCK_ELEMENTS // (batch * hidden))), batch, hidden), dtype)


ELMAN_CELLS: dict[str, Cell] = {
    name: Cell("rnn", 1, ("h",), ("b_h",), (), False, partial(_elman_scan_forward, activation),
               partial(_elman_scan_backward, activation), _elman_scratch, states_are_gates=True)
    for name, activation in ACTIVATIONS.items()
}


def elman_cell(nonlinearity: str = "tanh") -> Cell:
    """The Elman cell ``h_t = act(W_hh h_{t-1} + W_xh x_t + b_h)`` with ``act`` one of tanh,
    sigmoid, relu (the layer's nonlinearity is part of its cell)."""
    return ELMAN_CELLS[get_activation(nonlinearity).name]



def rnn_layer_forward(
    x: np.ndarray,
    h0: np.ndarray,
    W_xh: tuple[np.ndarray, ...],
    W_hh: tuple[np.ndarray, ...],
    b_h: tuple[np.ndarray, ...],
    nonlinearity: str = "tanh",
    lengths: np.ndarray | None = None,
    reverse: tuple[bool, ...] = (False,),
) -> tuple[np.ndarray, np.ndarray, RecurrentCache]:
    """:func:`recurrent_layer_forward` for the Elman cell: ``h0`` and ``h_n`` are (D, B, H),
    ``W_xh`` (H, I), ``W_hh`` (H, H) and ``b_h`` (H,) per direction; ``nonlinearity`` "tanh",
    "sigmoid" or "relu"."""
    cell = elman_cell(nonlinearity)
    out, (h_n,), cache = recurrent_layer_forward(cell, x, (h0,), W_xh, W_hh, tuple((b,) for b in b_h), lengths,
                                                    reverse)
    return out, h_n, cache


def rnn_layer_backward(
    dout: np.ndarray,
    dh_n: np.ndarray | None,
    cache: RecurrentCache,
    grads: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] | None = None,
    input_grad: bool = True,
    h0_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """:func:`recurrent_layer_backward` for :func:`rnn_layer_forward`: returns ``dx`` (None when
    ``input_grad`` is False), ``dh0`` (D, B, H) (None when ``h0_grad`` is False) and the lists
    ``dW_xh``, ``dW_hh``, ``db_h`` of D arrays each."""
    dx, dinitial, (dW_xh, dW_hh, db_h) = recurrent_layer_backward(dout, (dh_n,), cache, grads, input_grad,
                                                                  h0_grad)
    return dx, None if dinitial is None else dinitial[0], dW_xh, dW_hh, db_h


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b_h: np.ndarray,
    nonlinearity: str = "tanh",
    lengths: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, RecurrentCache]:
    """Run the recurrence, one direction, over a whole batch of sequences.

    Parameters
    ----------
    x : (T, B, I) inputs.
    h0 : (B, H) initial state.
    W_xh : (H, I) input-to-hidden weights.
    W_hh : (H, H) hidden-to-hidden weights.
    b_h : (H,) bias.
    nonlinearity : "tanh", "sigmoid" or "relu".
    lengths : (B,) ints in 1..T, or None when every sequence has T steps.
    reverse : read each sequence from its last valid step back to step 0.

    Returns
    -------
    states : (T, B, H) the state after each step, in input time order; exactly 0 at padding.
    h_n : (B, H) the final state: at step ``lengths[b] - 1`` going forward, at step 0 in reverse.
    cache : for :func:`rnn_backward`.
    """
    states, h_n, cache = rnn_layer_forward(
        x, h0[None], (W_xh,), (W_hh,), (b_h,), nonlinearity, lengths, (reverse,)
    )
    return states, h_n[0], cache


def rnn_backward(
    dstates: np.ndarray, dh_n: np.ndarray | None, cache: RecurrentCache, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time for :func:`rnn_forward`.

    Parameters
    ----------
    dstates : (T, B, H) gradient of the loss with respect to every output state, in input time
        order. It holds only the gradient arriving *from above* at each step; the part arriving
        back through time from step ``t + 1`` is added here. Values at padding are ignored.
    dh_n : (B, H) gradient with respect to ``h_n``, or None for zeros.
    cache : from :func:`rnn_forward`.
    input_grad : False to skip ``dx`` (returned as None).

    Returns
    -------
    dx : (T, B, I), zero at padding; None when ``input_grad`` is False.
    dh0 : (B, H).
    dW_xh : (H, I).
    dW_hh : (H, H).
    db_h : (H,).
    """
    dx, dh0, dW_xh, dW_hh, db_h = rnn_layer_backward(
        dstates, None if dh_n is None else dh_n[None], cache, input_grad=input_grad
    )
    assert dh0 is not None  # h0_grad is left True
    return dx, dh0[0], dW_xh[0], dW_hh[0], db_h[0]


def rnn_step_forward(
    x_t: np.ndarray,
    h_prev: np.ndarray,
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    b_h: np.ndarray,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, tuple]:
    """One step of the recurrence, for decoders that feed back their own outputs.

    x_t: (B, I); h_prev: (B, H). Returns ``h_t`` (B, H) and a cache for
    :func:`rnn_step_backward`.
    """
    activation = get_activation(nonlinearity)
    h_t = activation.forward(x_t @ W_xh.T + h_prev @ W_hh.T + b_h)
    return h_t, (x_t, h_prev, W_xh, W_hh, h_t, activation)


def rnn_step_backward(
    dh_t: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`rnn_step_forward`: returns ``dx_t, dh_prev, dW_xh, dW_hh, db_h``."""
    x_t, h_prev, W_xh, W_hh, h_t, activation = cache
    da = dh_t * activation.derivative(h_t)
    return da @ W_xh, da @ W_hh, da.T @ x_t, da.T @ h_prev, da.sum(axis=0)
