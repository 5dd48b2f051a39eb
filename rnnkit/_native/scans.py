"""The per-step loops of the recurrence, compiled (``scan.c``: the Elman cell; ``gated.c``: the
LSTM and the GRU): the Python side of each kernel, which checks the arrays and lays out arguments.

What they buy, measured by ``benchmarks/bench_rnn.py`` (README, "Speed"): the ~1.5 us of NumPy
calls per step, which is most of a step at small sizes, and one fused elementwise pass per step
instead of two or three (the bias, and in BPTT the bias gradient and the read of ``dout``, ride
along). Each function returns False, having done nothing, when the kernels are off or can't take
the arrays; the caller (``rnnkit.functional``) then runs its NumPy loop, which computes the same.
"""

from __future__ import annotations

import numpy as np

from rnnkit._native import library, threads
from rnnkit._native.blas import transposed

_ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2}


def _fits(a: np.ndarray, dtype: np.dtype) -> bool:
    """A ``(T, B, H)`` view the kernels can walk: rows contiguous, strides whole elements."""
    size = dtype.itemsize
    return (a.dtype == dtype and a.ndim == 3 and a.strides[2] == size
            and a.strides[0] % size == 0 and a.strides[1] % size == 0 and a.strides[1] >= a.shape[2] * size)


def elman_scan_forward(states: np.ndarray, h0: np.ndarray, W_hh_T: np.ndarray, bias: np.ndarray, activation: str,
                 mask: np.ndarray | None, first_padded: int) -> bool:
    """The forward loop of ``rnnkit.functional.elman._scan_forward``, in place.

    states: ``(T, B, H)`` pre-activations without the bias in, states out (a view with contiguous
    rows); h0, W_hh_T and bias: ``(B, H)``, ``(H, H)`` (or the view ``W_hh.T``) and ``(H,)``
    contiguous; mask: ``(T, B, 1)``
    contiguous or None. The bias is added in the activation's pass. Returns False, having done
    nothing, when the kernels can't take these arrays.
    """
    dtype = states.dtype
    kernel = library.kernel("elman_forward", dtype)
    if kernel is None or not _fits(states, dtype) or states.shape[1] == 0:
        return False
    steps, batch, hidden = states.shape
    if not (h0.dtype == bias.dtype == dtype and h0.shape == (batch, hidden) and bias.shape == (hidden,)
            and h0.flags.c_contiguous and bias.flags.c_contiguous):
        return False
    weight = _recurrent_weight(W_hh_T, (hidden, hidden), dtype, steps * batch)
    if weight is None:
        return False
    W_hh_T, packed = weight
    if not _mask_fits(mask, steps, batch, dtype):
        return False
    slices = threads.slices(batch, 2 * steps * batch * hidden * hidden, packed)
    masks = [_mask_of(mask, steps, batch, *bounds) for bounds in slices]

    def arguments(index: int, start: int, stop: int) -> list:
        rows = masks[index]
        return [*_walk(states, start), _rows_of(h0, start), W_hh_T.ctypes.data,
                None if packed is None else packed.ctypes.data, bias.ctypes.data,
                None if rows is None else rows.ctypes.data, first_padded, steps, stop - start, hidden,
                _ACTIVATIONS[activation]]

    threads.run_slices(kernel, arguments, slices, deferrable=packed is not None)
    return True


def elman_scan_backward(grad: np.ndarray, states: np.ndarray, W_hh: np.ndarray, activation: str,
                  carried: np.ndarray, upstream: np.ndarray | None = None, bias_grad: np.ndarray | None = None,
                  first_product: bool = True) -> bool:
    """The loop of ``rnnkit.functional.elman._scan_backward``, in place.

    grad, states: ``(n, B, H)`` in scan order (views with contiguous rows); W_hh ``(H, H)`` and
    carried ``(B, H)`` contiguous. upstream: the gradient from above, ``(n, B, H)`` in scan order,
    read instead of what ``grad`` holds (saves the caller a copy into ``grad``); bias_grad:
    ``(H,)`` contiguous, ``grad`` summed over steps and batch is added to it in the same pass.
    first_product False skips the first step's product with W_hh (what flows on to ``h0``; nobody
    asked for it), leaving ``carried`` undefined. Returns False, having done nothing, when the
    kernels can't take these arrays.
    """
    dtype = grad.dtype
    kernel = library.kernel("elman_backward", dtype)
    if kernel is None or not (_fits(grad, dtype) and _fits(states, dtype)) or grad.shape != states.shape:
        return False
    steps, batch, hidden = grad.shape
    if batch == 0 or not (W_hh.dtype == carried.dtype == dtype and W_hh.shape == (hidden, hidden)
                          and carried.shape == (batch, hidden) and W_hh.flags.c_contiguous
                          and carried.flags.c_contiguous):
        return False
    if upstream is not None and not (_fits(upstream, dtype) and upstream.shape == grad.shape):
        return False
    if bias_grad is not None and not (bias_grad.dtype == dtype and bias_grad.shape == (hidden,)
                                      and bias_grad.flags.c_contiguous):
        return False
    packed = threads.packed(W_hh, steps * batch)
    slices = threads.slices(batch, 2 * steps * batch * hidden * hidden, packed)
    bias_grads = threads.accumulators((bias_grad,), slices)

    def arguments(index: int, start: int, stop: int) -> list:
        up = (None, 0, 0) if upstream is None else _walk(upstream, start)
        (slice_bias_grad,) = bias_grads[index]
        return [*_walk(grad, start), *up, *_walk(states, start), W_hh.ctypes.data,
                None if packed is None else packed.ctypes.data, _rows_of(carried, start),
                None if slice_bias_grad is None else slice_bias_grad.ctypes.data, steps, stop - start, hidden,
                _ACTIVATIONS[activation], int(first_product)]

    threads.run_slices(kernel, arguments, slices)
    threads.add_up(bias_grads)
    return True



def _recurrent_weight(W_hh_T: np.ndarray, shape: tuple[int, int], dtype: np.dtype,
                      rows: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``W_hh^T`` as the forward scans take it: ``(W_hh_T, packed)`` with the packed product, else
    ``(a C-contiguous W_hh_T, None)`` for BLAS; None if it has the wrong shape or dtype. Given
    C-contiguous or as the view ``W_hh.T``: the packed product reads that view in place, and only
    BLAS needs the contiguous copy (made here, in tiles)."""
    if W_hh_T.dtype != dtype or W_hh_T.shape != shape:
        return None
    if not (W_hh_T.flags.c_contiguous or W_hh_T.T.flags.c_contiguous):
        W_hh_T = np.ascontiguousarray(W_hh_T)
    packed = threads.packed(W_hh_T, rows)
    if packed is None and not W_hh_T.flags.c_contiguous:
        copy = transposed(W_hh_T.T)
        W_hh_T = np.ascontiguousarray(W_hh_T) if copy is None else copy
    return W_hh_T, packed



def _address(a: np.ndarray | None) -> int | None:
    """An array's data address for ctypes, None for a missing one (a NULL pointer)."""
    return None if a is None else a.ctypes.data


def _rows_of(a: np.ndarray, start: int) -> int:
    """The address of row ``start`` of a ``(T, B, W)`` or ``(B, W)`` view."""
    return a.ctypes.data + start * a.strides[-2]


def _mask_of(mask: np.ndarray | None, steps: int, batch: int, start: int, stop: int) -> np.ndarray | None:
    """The contiguous ``(T, stop - start)`` mask of a slice (the kernels index it ``t * rows + b``)."""
    if mask is None or (start, stop) == (0, batch):
        return mask
    return np.ascontiguousarray(mask.reshape(steps, batch)[:, start:stop])


def _walk(a: np.ndarray, start: int = 0) -> tuple[int, int, int]:
    """A ``(T, B, W)`` view from row ``start`` on as the kernels take it: data, time stride, row
    stride (elements)."""
    size = a.itemsize
    return _rows_of(a, start), a.strides[0] // size, a.strides[1] // size


def _contiguous(dtype: np.dtype, *pairs: tuple[np.ndarray, tuple[int, ...]]) -> bool:
    return all(a.dtype == dtype and a.shape == shape and a.flags.c_contiguous for a, shape in pairs)


def _mask_fits(mask: np.ndarray | None, steps: int, batch: int, dtype: np.dtype) -> bool:
    return mask is None or (mask.dtype == dtype and mask.flags.c_contiguous and mask.size == steps * batch)


def lstm_scan_forward(gates: np.ndarray, states: np.ndarray, cells: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                      W_hh_T: np.ndarray, bias: np.ndarray, mask: np.ndarray | None, first_padded: int) -> bool:
    """The LSTM's forward loop (``rnnkit.functional.lstm._scan_forward``), in place.

    gates ``(T, B, 4H)`` holds ``W_xh x_t`` without the bias on entry, ``i, f, g, o`` on exit;
    states and cells ``(T, B, H)`` receive ``h_t`` and ``c_t`` (views with contiguous rows); h0,
    c0 ``(B, H)``, W_hh_T ``(H, 4H)`` (or the view ``W_hh.T``) and bias ``(4H,)`` contiguous. Returns False, having done
    nothing, when the kernels can't take these arrays.
    """
    dtype = gates.dtype
    kernel = library.kernel("lstm_forward", dtype)
    if kernel is None or not (_fits(gates, dtype) and _fits(states, dtype) and _fits(cells, dtype)):
        return False
    steps, batch, hidden = states.shape
    if batch == 0 or gates.shape != (steps, batch, 4 * hidden) or cells.shape != states.shape:
        return False
    if not (_contiguous(dtype, (h0, (batch, hidden)), (c0, (batch, hidden)), (bias, (4 * hidden,)))
            and _mask_fits(mask, steps, batch, dtype)):
        return False
    weight = _recurrent_weight(W_hh_T, (hidden, 4 * hidden), dtype, steps * batch)
    if weight is None:
        return False
    W_hh_T, packed = weight
    slices = threads.slices(batch, 8 * steps * batch * hidden * hidden, packed)
    masks = [_mask_of(mask, steps, batch, *bounds) for bounds in slices]

    def arguments(index: int, start: int, stop: int) -> list:
        rows = masks[index]
        return [*_walk(gates, start), *_walk(states, start), *_walk(cells, start), _rows_of(h0, start),
                _rows_of(c0, start), W_hh_T.ctypes.data, None if packed is None else packed.ctypes.data,
                bias.ctypes.data, None if rows is None else rows.ctypes.data, first_padded, steps, stop - start, hidden]

    threads.run_slices(kernel, arguments, slices, deferrable=packed is not None)
    return True


def lstm_scan_backward(grad: np.ndarray, upstream: np.ndarray, dc_upstream: np.ndarray | None, gates: np.ndarray,
                       cells: np.ndarray, c_before: np.ndarray, W_hh: np.ndarray, carried_h: np.ndarray,
                       carried_c: np.ndarray, bias_grad: np.ndarray, first_product: bool) -> bool:
    """The LSTM's BPTT loop over one block (``rnnkit.functional.lstm._scan_backward``), in place.

    grad, gates ``(n, B, 4H)``, upstream, dc_upstream (or None) and cells ``(n, B, H)``: the
    block's steps in scan order (views with contiguous rows); c_before ``(B, H)`` the cell state
    before the block (rows contiguous); W_hh ``(4H, H)``, carried_h, carried_c ``(B, H)`` and
    bias_grad ``(4H,)`` contiguous. Returns False, having done nothing, when the kernels can't
    take these arrays.
    """
    dtype = grad.dtype
    kernel = library.kernel("lstm_backward", dtype)
    blocks = (grad, upstream, gates, cells) + (() if dc_upstream is None else (dc_upstream,))
    if kernel is None or not all(_fits(a, dtype) for a in blocks):
        return False
    steps, batch, hidden = upstream.shape
    if (batch == 0 or grad.shape != gates.shape or grad.shape != (steps, batch, 4 * hidden)
            or cells.shape != upstream.shape or (dc_upstream is not None and dc_upstream.shape != upstream.shape)):
        return False
    if not (threads.rows_fit(c_before, (batch, hidden), dtype) and _contiguous(
            dtype, (W_hh, (4 * hidden, hidden)), (carried_h, (batch, hidden)), (carried_c, (batch, hidden)),
            (bias_grad, (4 * hidden,)))):
        return False
    # No gradient reaching c from outside: a zero row read at every step (strides 0), not a branch.
    zero_row = np.zeros(hidden, dtype)  # kept alive by this name until the kernel returns
    dc = (zero_row.ctypes.data, 0, 0) if dc_upstream is None else _walk(dc_upstream)
    packed = threads.packed(W_hh, steps * batch)
    slices = threads.slices(batch, 8 * steps * batch * hidden * hidden, packed)
    bias_grads = threads.accumulators((bias_grad,), slices)

    def arguments(index: int, start: int, stop: int) -> list:
        slice_dc = dc if dc_upstream is None else _walk(dc_upstream, start)
        return [*_walk(grad, start), *_walk(upstream, start), *slice_dc, *_walk(gates, start), *_walk(cells, start),
                _rows_of(c_before, start), c_before.strides[0] // dtype.itemsize, W_hh.ctypes.data,
                None if packed is None else packed.ctypes.data, _rows_of(carried_h, start), _rows_of(carried_c, start),
                _address(bias_grads[index][0]), steps, stop - start, hidden, int(first_product)]

    threads.run_slices(kernel, arguments, slices)
    threads.add_up(bias_grads)
    return True


def gru_scan_forward(gates: np.ndarray, states: np.ndarray, hidden_n: np.ndarray, h0: np.ndarray,
                     W_hh_T: np.ndarray, b_xh: np.ndarray, b_hh: np.ndarray, mask: np.ndarray | None,
                     first_padded: int) -> bool:
    """The GRU's forward loop (``rnnkit.functional.gru._scan_forward``), in place.

    gates ``(T, B, 3H)`` holds ``W_xh x_t`` without the bias on entry, ``r, z, n`` on exit;
    states and hidden_n ``(T, B, H)`` receive ``h_t`` and ``W_hn h_{t-1} + b_hn``; h0 ``(B, H)``,
    W_hh_T ``(H, 3H)`` (or the view ``W_hh.T``), b_xh and b_hh ``(3H,)`` contiguous. Returns False, having done nothing,
    when the kernels can't take these arrays.
    """
    dtype = gates.dtype
    kernel = library.kernel("gru_forward", dtype)
    if kernel is None or not (_fits(gates, dtype) and _fits(states, dtype) and _fits(hidden_n, dtype)):
        return False
    steps, batch, hidden = states.shape
    if batch == 0 or gates.shape != (steps, batch, 3 * hidden) or hidden_n.shape != states.shape:
        return False
    if not (_contiguous(dtype, (h0, (batch, hidden)), (b_xh, (3 * hidden,)), (b_hh, (3 * hidden,)))
            and _mask_fits(mask, steps, batch, dtype)):
        return False
    weight = _recurrent_weight(W_hh_T, (hidden, 3 * hidden), dtype, steps * batch)
    if weight is None:
        return False
    W_hh_T, packed = weight
    row_buffer = np.empty((batch, 3 * hidden), dtype)
    slices = threads.slices(batch, 6 * steps * batch * hidden * hidden, packed)
    masks = [_mask_of(mask, steps, batch, *bounds) for bounds in slices]

    def arguments(index: int, start: int, stop: int) -> list:
        rows = masks[index]
        return [*_walk(gates, start), *_walk(states, start), *_walk(hidden_n, start), _rows_of(h0, start),
                W_hh_T.ctypes.data, None if packed is None else packed.ctypes.data, b_xh.ctypes.data, b_hh.ctypes.data,
                _rows_of(row_buffer, start), None if rows is None else rows.ctypes.data, first_padded, steps,
                stop - start, hidden]

    threads.run_slices(kernel, arguments, slices, deferrable=packed is not None)
    return True


def gru_scan_backward(grad: np.ndarray, grad_hidden: np.ndarray, upstream: np.ndarray, gates: np.ndarray,
                      hidden_n: np.ndarray, states: np.ndarray, h_before: np.ndarray, W_hh: np.ndarray,
                      carried: np.ndarray, b_xh_grad: np.ndarray, b_hh_grad: np.ndarray, first_product: bool) -> bool:
    """The GRU's BPTT loop over one block (``rnnkit.functional.gru._scan_backward``), in place.

    grad, grad_hidden, gates ``(n, B, 3H)``, upstream, hidden_n and states ``(n, B, H)``: the
    block's steps in scan order (views with contiguous rows); h_before ``(B, H)`` the state
    before the block (rows contiguous); W_hh ``(3H, H)``, carried ``(B, H)`` and the two bias
    gradients ``(3H,)`` contiguous. Returns False, having done nothing, when the kernels can't
    take these arrays.
    """
    dtype = grad.dtype
    kernel = library.kernel("gru_backward", dtype)
    if kernel is None or not all(_fits(a, dtype) for a in (grad, grad_hidden, upstream, gates, hidden_n, states)):
        return False
    steps, batch, hidden = upstream.shape
    wide = (steps, batch, 3 * hidden)
    if (batch == 0 or not grad.shape == grad_hidden.shape == gates.shape == wide
            or not hidden_n.shape == states.shape == upstream.shape):
        return False
    if not (threads.rows_fit(h_before, (batch, hidden), dtype) and _contiguous(
            dtype, (W_hh, (3 * hidden, hidden)), (carried, (batch, hidden)), (b_xh_grad, (3 * hidden,)),
            (b_hh_grad, (3 * hidden,)))):
        return False
    packed = threads.packed(W_hh, steps * batch)
    slices = threads.slices(batch, 6 * steps * batch * hidden * hidden, packed)
    bias_grads = threads.accumulators((b_xh_grad, b_hh_grad), slices)

    def arguments(index: int, start: int, stop: int) -> list:
        slice_b_xh_grad, slice_b_hh_grad = bias_grads[index]
        return [*_walk(grad, start), *_walk(grad_hidden, start), *_walk(upstream, start), *_walk(gates, start),
                *_walk(hidden_n, start), *_walk(states, start), _rows_of(h_before, start),
                h_before.strides[0] // dtype.itemsize, W_hh.ctypes.data, None if packed is None else packed.ctypes.data,
                _rows_of(carried, start), _address(slice_b_xh_grad), _address(slice_b_hh_grad), steps,
                stop - start, hidden, int(first_product)]

    threads.run_slices(kernel, arguments, slices)
    threads.add_up(bias_grads)
    return True


def minimal_scan_forward(cell: str, gates: np.ndarray, states: np.ndarray, candidates: np.ndarray | None,
                         h0: np.ndarray, bias: np.ndarray, mask: np.ndarray | None, first_padded: int) -> bool:
    """The forward loop of a minimal cell (``cell`` ``"mingru"`` or ``"minlstm"``; ``rnnkit.functional.
    mingru._scan_forward``, ``minlstm._scan_forward``), in place, one fused pass per step.

    gates ``(T, B, G*H)`` holds ``W_xh x_t`` without the bias on entry and what BPTT reads on exit
    (minGRU: z, c; minLSTM: f', f, i); states ``(T, B, H)`` receives ``h_t``; candidates ``(T, B,
    H)`` the minLSTM's ``c_t`` (None for the minGRU); h0 ``(B, H)`` and bias ``(G*H,)``
    contiguous. One thread: the pass is bound by memory, not arithmetic. Returns False, having
    done nothing, when the kernels can't take these arrays.
    """
    dtype = gates.dtype
    kernel = library.kernel(f"{cell}_forward", dtype)
    gate_count = 2 if cell == "mingru" else 3
    if kernel is None or not (_fits(gates, dtype) and _fits(states, dtype)):
        return False
    steps, batch, hidden = states.shape
    if batch == 0 or gates.shape != (steps, batch, gate_count * hidden):
        return False
    if (candidates is None) != (cell == "mingru") or (candidates is not None and not (
            _fits(candidates, dtype) and candidates.shape == states.shape)):
        return False
    if not (_contiguous(dtype, (h0, (batch, hidden)), (bias, (gate_count * hidden,)))
            and _mask_fits(mask, steps, batch, dtype)):
        return False
    arguments = [*_walk(gates), *_walk(states), *(() if candidates is None else _walk(candidates)), h0.ctypes.data,
                 bias.ctypes.data, _address(mask), first_padded, steps, batch, hidden]
    kernel(*arguments)
    return True


def minimal_scan_backward(cell: str, grad: np.ndarray, upstream: np.ndarray, gates: np.ndarray,
                          candidates: np.ndarray | None, states: np.ndarray, h_before: np.ndarray,
                          carried: np.ndarray, bias_grad: np.ndarray) -> bool:
    """BPTT of a minimal cell over one block (``_scan_backward`` in ``rnnkit.functional.mingru`` and
    ``minlstm``), in place. grad and gates ``(n, B, G*H)``, upstream, candidates (the minLSTM's;
    None for the minGRU) and states ``(n, B, H)``: the block's steps in scan order (views with
    contiguous rows); h_before ``(B, H)`` the state before the block (rows contiguous); carried
    ``(B, H)`` and bias_grad ``(G*H,)`` contiguous. Returns False, having done nothing, when the
    kernels can't take these arrays.
    """
    dtype = grad.dtype
    kernel = library.kernel(f"{cell}_backward", dtype)
    gate_count = 2 if cell == "mingru" else 3
    if kernel is None or not all(_fits(a, dtype) for a in (grad, upstream, gates, states)):
        return False
    steps, batch, hidden = states.shape
    if batch == 0 or grad.shape != gates.shape or gates.shape != (steps, batch, gate_count * hidden) \
            or upstream.shape != states.shape:
        return False
    if (candidates is None) != (cell == "mingru") or (candidates is not None and not (
            _fits(candidates, dtype) and candidates.shape == states.shape)):
        return False
    if not (_contiguous(dtype, (carried, (batch, hidden)), (bias_grad, (gate_count * hidden,)))
            and h_before.dtype == dtype and h_before.shape == (batch, hidden) and h_before.strides[1] == dtype.itemsize):
        return False
    arguments = [*_walk(grad), *_walk(upstream), *_walk(gates), *(() if candidates is None else _walk(candidates)),
                 *_walk(states), h_before.ctypes.data, h_before.strides[0] // dtype.itemsize, carried.ctypes.data,
                 bias_grad.ctypes.data, steps, batch, hidden]
    kernel(*arguments)
    return True
