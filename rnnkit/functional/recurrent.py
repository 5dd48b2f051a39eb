"""The recurrent layer every cell runs on: one layer, one or both directions, forward and BPTT.

Letters: T time steps, B batch, I input features, H hidden units, G gate blocks, D directions.
Time-major. A :class:`~rnnkit.functional.cells.Cell` (``elman.py``, ``lstm.py``, ``gru.py``)
supplies its two per-step loops; everything the cells share is here.

The hot loop touches only what must be per step. The input projection ``x_t W_xh^T`` of all
steps *and all directions* is one matrix product before the loop, written straight into one
``(T, B, D * G*H)`` buffer, so a bidirectional layer never concatenates (for a cell whose states
are its gates, the Elman cell, that buffer is the layer's output). The reverse direction without
padding walks the same buffers backwards through ``[::-1]`` views in both passes, with no flipped
copies: BPTT cuts its blocks in storage order, where each block is one contiguous run of rows for
the weight-gradient products, and scans each block backwards. BPTT walks back a block of steps at
a time: the cell's loop fills the block's gate gradients, then the block's share of ``dx``,
``dW_xh`` and ``dW_hh`` is one product each, added into the gradients by BLAS itself, so that no
``(T, B, G*H)`` gradient array and no weight-sized temporary is ever allocated.

Variable lengths (``lengths[b]`` valid steps, the rest padding) cost no Python branch per
sequence. In the forward direction padding is a suffix: states there are multiplied by a 0/1 mask
so that they are exactly zero and cannot overflow. The reverse direction with padding reads each
sequence backwards from its own last valid step by flipping only the valid prefix of every
sequence (Flax's ``flip_sequences``), which turns it into a forward scan with padding again at the
end; that case alone pays for flipped copies.

Resets (``resets[t, b]``: sequence ``b`` starts again before step ``t``, as when a new
document begins in a stream) cut each direction's scan into segments at the steps where any
sequence starts again; between segments the layer puts the reset state into the rows that start
again and the cells' loops, compiled or not, run each segment unchanged. BPTT calls them over the
same segments and stops the carried gradient at every reset (it goes to the reset state instead).
The reverse direction reads each segment from its own end, so it always takes the flipped path.

The straightforward original implementation is kept in ``tests/functional/recurrent_reference.py``
and every path here is tested against it in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit import _native
from rnnkit import _workspace as workspace
from rnnkit.functional.cells import BackwardBlock, Cell
from rnnkit.functional.zoneout import ZoneoutScan, zoneout_scan_backward, zoneout_scan_forward


def state_sizes(cell: Cell, hidden: int, W_hh: np.ndarray | None) -> tuple[int, tuple[int, ...]]:
    """``(output, sizes)``: the width of ``h``, which the recurrent product reads (``W_hh``'s
    columns: ``H``, or ``P`` for an LSTM with a projection), and every state's width in
    ``cell.state_names`` order (the LSTM's ``c`` keeps ``H``)."""
    output = hidden if W_hh is None else W_hh.shape[1]
    return output, tuple(output if name == "h" else hidden for name in cell.state_names)


def flip_sequences(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse the first ``lengths[b]`` steps of every sequence; padding stays at the end.

    x: ``(T, B, ...)``; lengths: ``(B,)`` ints in ``1..T`` or ``None`` (all full). Returns a new
    array. The map is its own inverse, so the same call flips back.

    Example, T = 4, lengths = [2, 4], features omitted::

        x[:, 0] = [a, b, _, _]   ->   [b, a, _, _]
        x[:, 1] = [p, q, r, s]   ->   [s, r, q, p]

    Index ``(T - 1 - t + lengths[b]) % T`` sends valid step ``t`` to ``lengths[b] - 1 - t`` and
    keeps padding among padding positions.
    """
    steps = x.shape[0]
    if lengths is None:
        return x[::-1].copy()
    time_index = (np.arange(steps - 1, -1, -1)[:, None] + lengths[None, :]) % steps
    return x[time_index, np.arange(x.shape[1])[None, :]]


def transposed_copy(W: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``W.T``, ``(m, n) -> (n, m)``: by the compiled tiles where they are
    loaded (:func:`rnnkit._native.transposed`), else a band of rows at a time.

    NumPy's plain copy of a transposed view walks the source with a stride of a whole row, which
    at power-of-two widths keeps evicting its own cache lines (4.4 ms for 1024 x 1024 float32
    here); 64-row bands keep both sides in cache (1.2 ms).
    """
    fast = _native.transposed(W)
    if fast is not None:
        return fast
    rows = W.shape[0]
    out = np.empty(W.shape[::-1], dtype=W.dtype)
    for start in range(0, rows, _TRANSPOSE_BAND):
        out[:, start : start + _TRANSPOSE_BAND] = W[start : start + _TRANSPOSE_BAND].T
    return out


_TRANSPOSE_BAND = 64


def valid_mask(lengths: np.ndarray | None, steps: int, dtype: np.dtype) -> np.ndarray | None:
    """``(T, B, 1)`` array of ones at valid steps and zeros at padding, or ``None`` if no padding."""
    if lengths is None:
        return None
    return (np.arange(steps)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def last_valid(states: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Gather ``states[lengths[b] - 1, b]`` for every ``b``: ``(T, B, H) -> (B, H)``."""
    if lengths is None:
        return states[-1].copy()
    return states[lengths - 1, np.arange(states.shape[1])]


class RecurrentCache(NamedTuple):
    """What BPTT needs from :func:`recurrent_layer_forward`, for all ``D`` directions of one layer."""

    cell: Cell
    x: np.ndarray  # (T, B, I), input order
    initial: tuple[np.ndarray, ...]  # per state (D, B, H)
    W_xh: tuple[np.ndarray, ...]  # D arrays (G*H, I)
    W_hh: tuple[np.ndarray | None, ...]  # D arrays (G*H, H); None without recurrent weights
    out: np.ndarray  # (T, B, D * H), input order, zero at padding
    scans: tuple[np.ndarray, ...]  # per direction (T, B, H) states in scan order (see _scan_view)
    gates: tuple[np.ndarray, ...]  # per direction (T, B, G*H) in scan order, as the cell left them
    kept: tuple[tuple[np.ndarray, ...], ...]  # per direction, the cell's kept (T, B, H) arrays
    lengths: np.ndarray | None
    reverse: tuple[bool, ...]
    resets: tuple[SegmentStarts, ...] | None = None  # per direction; None without resets (or with zoneout)
    biases: tuple[tuple[np.ndarray, ...], ...] = ()  # per direction, one array per cell.bias_names
    product_masks: tuple[np.ndarray, ...] | None = None  # per direction (B, H): recurrent dropout
    zoneout: tuple[ZoneoutScan, ...] | None = None  # per direction, with zoneout


class SegmentStarts(NamedTuple):
    """One direction's resets in scan order: where its segments start and what state each starts from."""

    at: np.ndarray  # (T, B) bool, scan order: row t marks the sequences that start again before scan step t
    begins: dict[int, tuple[np.ndarray, ...]]  # scan step -> per state (B, H), the state its segment starts from


def scan_order_resets(resets: np.ndarray, reverse: bool, lengths: np.ndarray | None) -> np.ndarray:
    """``resets`` ``(T, B)`` bool in input order -> the scan order of one direction, padding dropped.

    Forward, a reset at ``t`` restarts the state before step ``t``. In reverse the recurrence
    crosses the same boundary between steps ``t`` and ``t - 1`` the other way: scan step ``s``
    reads input step ``lengths[b] - 1 - s``, so it starts again when input step
    ``lengths[b] - s`` is a reset (``s >= 1``; the reverse scan's step 0 starts from its initial
    state). Example, T = 4, a reset at step 2: forward segments ``[0, 1], [2, 3]``; the reverse
    scan reads 3, 2 and starts again before reading 1.
    """
    steps, batch = resets.shape
    full = np.full(batch, steps) if lengths is None else lengths
    scan_step = np.arange(steps)[:, None]
    if not reverse:
        return resets & (scan_step < full[None, :])
    source = full[None, :] - scan_step  # the input step whose reset is crossed before scan step s
    crossed = (scan_step >= 1) & (source >= 1)
    return resets[np.clip(source, 0, steps - 1), np.arange(batch)[None, :]] & crossed


def segment_starts(resets: np.ndarray) -> list[int]:
    """The steps where a segment starts for the whole batch: 0, and every step after it where some
    sequence of ``resets`` ``(T, B)`` starts again."""
    return [0, *(np.flatnonzero(resets[1:].any(axis=1)) + 1).tolist()]


def _start_again(state: tuple[np.ndarray, ...], reset_state: tuple[np.ndarray, ...],
                 rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """``state`` with the sequences marked in ``rows`` ``(B,)`` replaced by ``reset_state``."""
    if not rows.any():
        return state
    return tuple(np.where(rows[:, None], start, value) for value, start in zip(state, reset_state))


def _scan_segments(cell: Cell, gates: np.ndarray, scan: np.ndarray, kept: tuple[np.ndarray, ...],
                   initial: tuple[np.ndarray, ...], reset_state: tuple[np.ndarray, ...], at: np.ndarray,
                   W_hh: np.ndarray | None, biases: tuple[np.ndarray, ...], mask: np.ndarray | None,
                   first_padded: int, loop_options: dict) -> SegmentStarts:
    """One direction's forward scan cut at its resets: ``at`` ``(T, B)`` in scan order (row 0 acts on
    ``initial``). Each segment is one call of the cell's loop from the state it starts from."""
    steps = len(gates)
    starts = segment_starts(at)
    begins: dict[int, tuple[np.ndarray, ...]] = {}
    for start, stop in zip(starts, starts[1:] + [steps]):
        before = initial if start == 0 else tuple(
            scan[start - 1] if name == "h" else kept[cell.kept.index(name)][start - 1] for name in cell.state_names)
        begins[start] = _start_again(before, reset_state, at[start])
        cell.scan_forward(gates[start:stop], scan[start:stop], tuple(k[start:stop] for k in kept), begins[start],
                          W_hh, biases, None if mask is None else mask[start:stop], max(0, first_padded - start),
                          **loop_options)
    return SegmentStarts(at, begins)


def _scan_view(states: np.ndarray, reverse: bool, lengths: np.ndarray | None) -> np.ndarray:
    """``states`` in the order the recurrence visits them, with padding as a suffix.

    Forward: ``states`` itself. Reverse without padding: the view ``states[::-1]`` (no copy; each
    step is still one contiguous block). Reverse with padding: a flipped *copy* (Flax's
    ``flip_sequences``), the only case that pays for a gather.
    """
    if not reverse:
        return states
    if lengths is None:
        return states[::-1]
    return flip_sequences(states, lengths)


def recurrent_layer_forward(
    cell: Cell,
    x: np.ndarray,
    initial: tuple[np.ndarray, ...],
    W_xh: tuple[np.ndarray, ...],
    W_hh: tuple[np.ndarray | None, ...],
    biases: tuple[tuple[np.ndarray, ...], ...],
    lengths: np.ndarray | None = None,
    reverse: tuple[bool, ...] = (False,),
    resets: np.ndarray | None = None,
    reset_states: tuple[np.ndarray, ...] | None = None,
    recurrent_masks: tuple[np.ndarray, ...] | None = None,
    zoneout: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, ...], RecurrentCache]:
    """Run ``D = len(reverse)`` directions of one layer of ``cell`` over a batch, outputs side by side.

    Parameters
    ----------
    cell : the cell (:data:`ELMAN_CELLS`, ``lstm.LSTM_CELL``, ``gru.GRU_CELL``, ``mingru_cell()``,
        ``minlstm_cell()``; :func:`rnnkit.functional.get_cell` finds one by name).
    x : (T, B, I) inputs.
    initial : one (D, B, H) array per ``cell.state_names``: each direction's initial state.
    W_xh, W_hh : D arrays each, (G*H, I) and (G*H, H); ``W_hh`` entries are None for a cell
        without recurrent weights (``cell.recurrent_weight`` False: minGRU, minLSTM).
    biases : D tuples, each one array per ``cell.bias_names``.
    lengths : (B,) ints in 1..T, or None when every sequence has T steps.
    reverse : per direction, whether it reads each sequence from its last valid step back to 0.
    resets : (T, B) bool, or None: where ``resets[t, b]``, sequence ``b`` starts again before step
        ``t`` (forward: from the reset state instead of ``h_{t-1}``; reverse: its segment
        ``[t, ...)`` is read on its own, and the steps before ``t`` start again from the reset
        state). Resets at padding are ignored; at step 0 they replace ``initial``.
    reset_states : one (D, B, H) array per state: what a sequence starts again from; None: zeros.
    recurrent_masks : D arrays (B, H), or None: recurrent dropout (Gal & Ghahramani 2016), the
        mask (already scaled by ``1 / (1 - p)``) that multiplies ``h_{t-1}`` where it enters the
        product with ``W_hh``, the same at every step of a sequence. The cells' NumPy loops run.
        Not for a cell without recurrent weights.
    zoneout : one (D, T, B, H) array per state (broadcastable), input order, or None: ``z_t``,
        each unit keeping its previous value where 1 (``p`` at evaluation), see
        :mod:`rnnkit.functional.zoneout`; the scan then runs a step at a time.

    Returns
    -------
    out : (T, B, D * H) direction ``d``'s states in columns ``d*H:(d+1)*H``, input time order;
        exactly 0 at padding.
    final : one (D, B, H) array per state: step ``lengths[b] - 1`` forward, 0 in reverse.
    cache : for :func:`recurrent_layer_backward`.

    The input projection of all steps, gates and directions is one matrix product. For the
    Elman cell (``G = 1``) it is written straight into ``out``, which the scan then turns into
    states in place, so a bidirectional layer never concatenates; a gated cell keeps it as its
    gate buffer and writes its states into ``out`` beside it.
    """
    steps, batch, inputs = x.shape
    directions, width = len(reverse), W_xh[0].shape[0]
    hidden = width // cell.gates
    output, sizes = state_sizes(cell, hidden, W_hh[0])
    W_x = W_xh[0] if directions == 1 else np.concatenate(W_xh)
    if recurrent_masks is not None and not cell.recurrent_weight:
        raise ValueError(f"recurrent dropout: the {cell.name} cell has no recurrent product to drop from "
                         "(its gates read the input alone); use dropout or zoneout")

    projection = workspace.empty((steps, batch, directions * width), x.dtype)
    # Products against a contiguous W^T run faster in OpenBLAS than against the transposed view
    # (measured: 10 vs 17 us per step at B=32, H=128); the copy is weight-sized, once per call.
    # Biases are added by each direction's scan (in the compiled loop's activation pass).
    x_rows = np.ascontiguousarray(x).reshape(steps * batch, inputs)
    projection_rows = projection.reshape(steps * batch, directions * width)
    if not _native.product(x_rows, W_x.T, projection_rows):  # float32: packed from W_x itself, threads
        np.dot(x_rows, transposed_copy(W_x), out=projection_rows)
    # With zoneout the gate buffer holds the cell's candidates and the layer's states live apart.
    states_in_projection = cell.states_are_gates and zoneout is None
    out = projection if states_in_projection else workspace.empty((steps, batch, directions * output), x.dtype)
    if resets is not None and lengths is None:  # the reverse direction reads segments by flipping
        lengths = np.full(batch, steps)
    mask = valid_mask(lengths, steps, x.dtype)
    first_padded = steps if lengths is None else int(lengths.min())
    final = tuple(np.empty((directions, batch, size), dtype=x.dtype) for size in sizes)
    scans, gate_scans, kept_scans = [], [], []
    segments: list[SegmentStarts] = []
    zoned_scans: list[ZoneoutScan] = []
    if resets is not None and reset_states is None:
        reset_states = tuple(np.zeros((directions, batch, size), x.dtype) for size in sizes)
    # The directions' compiled scans run side by side on the threads, unless segments or steps chain
    # through Python; then each W_hh is packed once for all its calls.
    with _native.together(directions) if resets is None and zoneout is None else _native.packing():
        for d in range(directions):
            flipped = reverse[d] and lengths is not None
            states = out[:, :, d * output : (d + 1) * output]
            gates = _scan_view(projection[:, :, d * width : (d + 1) * width], reverse[d], lengths)
            if states_in_projection:
                scan = gates
            else:  # a reverse direction with padding computes its states in a buffer of its own
                scan = workspace.empty_like(states) if flipped else _scan_view(states, reverse[d], lengths)
            kept = tuple(workspace.empty((steps, batch, size), x.dtype) for size in cell.kept_sizes(hidden))
            initial_d = tuple(state[d] for state in initial)
            loop_options = {} if recurrent_masks is None else {"product_mask": recurrent_masks[d]}
            reset_state_d = None if reset_states is None else tuple(state[d] for state in reset_states)
            if zoneout is not None:
                keep = tuple(_scan_view(np.broadcast_to(z[d], (steps, batch, size)), reverse[d], lengths)
                             for z, size in zip(zoneout, sizes))
                candidates = gates if cell.states_are_gates else workspace.empty((steps, batch, output), x.dtype)
                zoned = (scan, *(workspace.empty((steps, batch, size), x.dtype) for size in sizes[1:]))
                zoned_scans.append(zoneout_scan_forward(
                    cell, gates, candidates, kept, zoned, initial_d, keep, W_hh[d], biases[d], mask, first_padded,
                    loop_options, None if resets is None else scan_order_resets(resets, reverse[d], lengths),
                    reset_state_d))
                # the layer carries the zoned states; the cell's own arrays stay with its scan
                kept = tuple(zoned[cell.state_names.index(name)] if name in cell.state_names else array
                             for name, array in zip(cell.kept, kept))
            elif resets is None:
                cell.scan_forward(gates, scan, kept, initial_d, W_hh[d], biases[d], mask, first_padded,
                                  **loop_options)
            else:
                assert reset_state_d is not None  # zeros when not given
                segments.append(_scan_segments(cell, gates, scan, kept, initial_d, reset_state_d,
                                               scan_order_resets(resets, reverse[d], lengths), W_hh[d], biases[d],
                                               mask, first_padded, loop_options))
            scans.append(scan)
            gate_scans.append(gates)
            kept_scans.append(kept)
    for d, (scan, kept) in enumerate(zip(scans, kept_scans)):
        if reverse[d] and lengths is not None:
            out[:, :, d * output : (d + 1) * output] = flip_sequences(scan, lengths)
        for name, array in zip(cell.state_names, final):
            array[d] = last_valid(scan if name == "h" else kept[cell.kept.index(name)], lengths)
    if segments:  # BPTT pairs each scan's first step with the state it really started from
        initial = tuple(np.stack([segment.begins[0][k] for segment in segments]) for k in range(len(initial)))
    cache = RecurrentCache(cell, x, tuple(initial), tuple(W_xh), tuple(W_hh), out, tuple(scans), tuple(gate_scans),
                           tuple(kept_scans), lengths, tuple(reverse), tuple(segments) if segments else None,
                           tuple(biases), None if recurrent_masks is None else tuple(recurrent_masks),
                           tuple(zoned_scans) if zoned_scans else None)
    return out, final, cache


def recurrent_layer_backward(
    dout: np.ndarray,
    dfinal: tuple[np.ndarray | None, ...] | None,
    cache: RecurrentCache,
    grads: tuple[list[np.ndarray], ...] | None = None,
    input_grad: bool = True,
    h0_grad: bool = True,
    reset_grads: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray | None, tuple[np.ndarray, ...] | None, tuple[list[np.ndarray], ...]]:
    """Backpropagation through time for :func:`recurrent_layer_forward`.

    Parameters
    ----------
    dout : (T, B, D * H) gradient of the loss with respect to ``out``. It holds only the gradient
        arriving *from above* at each step; the part arriving back through time from step
        ``t + 1`` is added here. Values at padding are ignored; ``dout`` is not modified.
    dfinal : per state, (D, B, H) gradient with respect to its final value, or None for zeros
        (None alone: all zeros).
    cache : from :func:`recurrent_layer_forward`.
    grads : optional ``(dW_xh, dW_hh, *dbiases)`` lists of D arrays to *add* the weight
        gradients into (a module's ``grads``; for a cell without recurrent weights ``dW_hh``'s
        entries are empty arrays, left alone); they are returned. Saves a parameter-sized
        temporary each.
    input_grad : False when nothing needs ``dx`` (the first layer reading data, as PyTorch skips
        it for an input that does not require grad): saves a ``(T*B, D*G*H) x (D*G*H, I)`` product.
    h0_grad : False when nothing needs the initial states' gradients (an initial state that is
        not learned and comes from no other layer): saves each direction's last product through
        ``W_hh``.
    reset_grads : with resets, optional per state (D, B, H) arrays to *add* the reset states'
        gradients into: what reaches each segment's start, summed per sequence.

    Returns
    -------
    dx : (T, B, I), zero at padding; None when ``input_grad`` is False.
    dinitial : per state (D, B, H); None when ``h0_grad`` is False.
    grads : ``(dW_xh, dW_hh, *dbiases)``, D arrays each.

    Each direction walks back through time a block of steps at a time. A block's gate
    pre-activation gradients ``dL/da`` live in one small buffer; once the cell's loop has filled
    it, the block's share of ``dx``, ``dW_xh`` and ``dW_hh`` is taken with one matrix product
    each (``_BLOCK_ROWS`` rows keep those products efficient). No ``(T, B, G*H)`` gradient array
    ever exists, which is what keeps the peak memory of a training step close to what BPTT must
    keep.
    """
    cell, x, initial, W_xh, W_hh, out, scans, gate_scans, kept_scans, lengths, reverse, segments = cache[:12]
    steps, batch, _ = out.shape
    inputs = x.shape[2]
    directions = len(reverse)
    width = W_xh[0].shape[0]
    hidden = width // cell.gates
    output, sizes = state_sizes(cell, hidden, W_hh[0])
    dfinal = (None,) * len(cell.state_names) if dfinal is None else tuple(dfinal)
    mask = valid_mask(lengths, steps, out.dtype)
    first_padded = steps if lengths is None else int(lengths.min())
    block = max(1, min(steps, _BLOCK_ROWS // batch))
    work = workspace.empty((block, batch, width), out.dtype)
    work_hidden = workspace.empty_like(work) if cell.split_hidden_grad else work
    # A cell whose states are its gates takes its upstream gradient in its gate buffer; others need one apart.
    upstream_buffer = work if cell.states_are_gates else workspace.empty((block, batch, output), out.dtype)
    extra_buffers = [workspace.empty((block, batch, size), out.dtype) if g is not None else None
                     for g, size in zip(dfinal[1:], sizes[1:])]
    scratch = cell.make_scratch(block, batch, hidden, out.dtype)
    # The second direction adds its share of dx through this buffer, a few rows at a time.
    dx_part = (np.empty((min(block * batch, _DX_CHUNK_ROWS), inputs), dtype=out.dtype)
               if directions > 1 and input_grad else None)

    dx = workspace.empty(x.shape, out.dtype) if input_grad else None
    dinitial = (tuple(np.empty((directions, batch, size), dtype=out.dtype) for size in sizes) if h0_grad else None)
    if grads is None:
        shapes = [(width, inputs), (width, output), *cell.bias_shapes(hidden, output)]
        if not cell.recurrent_weight:
            shapes[1] = (0, 0)
        grads = tuple([np.zeros(shape, out.dtype) for _ in range(directions)] for shape in shapes)
    if cache.zoneout is not None:
        return _zoneout_backward(dout, dfinal, cache, grads, dx, dinitial, reset_grads)
    dW_xh, dW_hh, *dbiases = grads
    upstream: np.ndarray | None  # None: the gate buffer holds it (cell.states_are_gates)
    # Each W_hh is packed once for all its blocks' loops (rnnkit/_native/packed.c), not once per block.
    with _native.packing():
        for d in range(directions):
            columns = slice(d * output, (d + 1) * output)
            flipped = reverse[d] and lengths is not None
            # Blocks are cut in *storage* order, where every block of x, states, dout and dx is one
            # contiguous run of steps that BLAS reads in place. Storage order is scan order, except
            # for a reverse direction without padding, whose scan is the storage walked backwards
            # ("mirrored"): its block products need no reversed copies, since they sum over rows.
            mirrored = reverse[d] and lengths is None
            if flipped:  # scan-order copies; dx is flipped back at the end
                x_st, states_st = flip_sequences(x, lengths), scans[d]
                dout_st = flip_sequences(dout[:, :, columns], lengths)
                dx_st = workspace.empty_like(dx) if dx is not None else None
            else:
                x_st, states_st, dout_st, dx_st = x, out[:, :, columns], dout[:, :, columns], dx
            accumulate_dx = d > 0 and not flipped
            W_in, h0_d = W_xh[d], initial[0][d]
            h0_is_zero = not h0_d.any()  # the common case: its dW_hh term is skipped
            product_mask = None if cache.product_masks is None else cache.product_masks[d]
            loop_options = {} if product_mask is None else {"product_mask": product_mask}
            initial_d = tuple(state[d] for state in initial)
            carried = tuple(np.zeros((batch, size), dtype=out.dtype) for size in sizes)
            dW_in, dW_rec = dW_xh[d], dW_hh[d] if cell.recurrent_weight else None
            bias_grads = tuple(db[d] for db in dbiases)
            segment = None if segments is None else segments[d]
            reset_grad = None if reset_grads is None else tuple(g[d] for g in reset_grads)
            last = None
            if any(g is not None for g in dfinal):  # the storage index of each sequence's final state
                last = np.full(batch, 0 if mirrored else steps - 1) if lengths is None else lengths - 1
            for stop in range(steps, 0, -block):
                start = max(0, stop - block)  # scan steps [start, stop) are storage steps [lo, hi)
                lo, hi = (steps - stop, steps - start) if mirrored else (start, stop)
                n = hi - lo
                g, g_hidden = work[:n], work_hidden[:n]  # storage order
                # The loop reads dout in place, unless padding or dfinal change it for this block.
                upstream = dout_st[lo:hi]
                hit = None if last is None else (last >= lo) & (last < hi)
                hits = hit is not None and hit.any()
                if stop > first_padded or (hits and dfinal[0] is not None):
                    changed = upstream_buffer[:n]
                    np.copyto(changed, upstream, casting="same_kind")
                    if stop > first_padded and mask is not None:  # a mask exists wherever there is padding
                        changed *= mask[start:stop]  # padding contributes nothing, whatever the caller passed there
                    if hits and dfinal[0] is not None:
                        assert last is not None and hit is not None  # hits: some final state in this block
                        changed[last[hit] - lo, hit] += dfinal[0][d][hit]
                    upstream = None if cell.states_are_gates else changed
                extra: list[np.ndarray | None] = []
                for given, buffer in zip(dfinal[1:], extra_buffers):
                    if given is None or not hits:
                        extra.append(None)
                        continue
                    # a buffer was made for every given gradient; hits: some final state in this block
                    assert buffer is not None and last is not None and hit is not None
                    buffer[:n] = 0
                    buffer[last[hit] - lo, hit] = given[d][hit]
                    extra.append(buffer[:n][::-1] if mirrored else buffer[:n])
                # the scan's step 0 feeds only the initial state (and the reset state, where one starts there)
                first_product = h0_grad or start > 0 or (reset_grad is not None and segment is not None)
                if segment is not None:  # never mirrored: a reverse direction with resets is flipped
                    _segments_backward(cell, segment, start, stop, g, g_hidden, upstream, tuple(extra), carried, d,
                                       cache, scratch, bias_grads, first_product, reset_grad, loop_options)
                elif mirrored:  # the loops walk scan order
                    block_grads = BackwardBlock(start, stop, g[::-1], g_hidden[::-1], gate_scans[d], scans[d],
                                                kept_scans[d], initial_d, scratch, cache.biases[d])
                    upstream = None if upstream is None else upstream[::-1]
                else:
                    block_grads = BackwardBlock(start, stop, g, g_hidden, gate_scans[d], scans[d], kept_scans[d],
                                                initial_d, scratch, cache.biases[d])
                if segment is None:
                    cell.scan_backward(block_grads, upstream, tuple(extra), carried, W_hh[d], bias_grads, first_product,
                                       **loop_options)

                rows = g.reshape(-1, width)
                rows_hidden = rows if g_hidden is g else g_hidden.reshape(-1, width)
                _add_product(dW_in, rows.T, x_st[lo:hi].reshape(-1, inputs))
                # dW_hh pairs each step with the state before it in scan order: storage step t - 1
                # (t + 1 when mirrored); the scan's first step pairs with h0.
                if dW_rec is None:  # a cell whose gates read the input alone
                    pass
                elif mirrored and hi < steps:
                    _add_product(dW_rec, rows_hidden.T, _entered(states_st[lo + 1 : hi + 1], product_mask).reshape(-1, output))
                elif not mirrored and lo > 0:
                    _add_product(dW_rec, rows_hidden.T, _entered(states_st[lo - 1 : hi - 1], product_mask).reshape(-1, output))
                else:
                    first = hi - 1 if mirrored else lo  # storage index of the scan's first step
                    if n > 1:
                        others = g_hidden[:-1] if mirrored else g_hidden[1:]
                        previous = states_st[lo + 1 : hi] if mirrored else states_st[lo : hi - 1]
                        _add_product(dW_rec, others.reshape(-1, width).T, _entered(previous, product_mask).reshape(-1, output))
                    if not h0_is_zero:
                        _add_product(dW_rec, g_hidden[first - lo].T, _entered(h0_d, product_mask))
                if segment is not None and dW_rec is not None:  # rows that started again were paired with h_{t-1}
                    _correct_restarts(dW_rec, segment, start, stop, g_hidden, states_st, product_mask)
                # dx_st exists exactly when input_grad, and dx_part whenever a second direction adds into dx
                if accumulate_dx and dx_st is not None and dx_part is not None:
                    dx_rows = dx_st[lo:hi].reshape(-1, inputs)  # a view: dx is contiguous
                    for row in range(0, len(rows), len(dx_part)):
                        chunk = slice(row, row + len(dx_part))
                        part = dx_part[: len(rows[chunk])]
                        dx_rows[chunk] += np.dot(rows[chunk], W_in, out=part)
                elif dx_st is not None:
                    np.dot(rows, W_in, out=dx_st[lo:hi].reshape(-1, inputs))
            if flipped and input_grad:
                assert dx is not None and dx_st is not None  # both made when input_grad
                dx_st = flip_sequences(dx_st, lengths)
                if d > 0:
                    dx += dx_st
                else:
                    dx[...] = dx_st
            if segment is not None and segment.at[0].any():  # sequences reset before step 0 left initial unused
                rows = segment.at[0]
                for k, value in enumerate(carried):
                    if reset_grad is not None:
                        reset_grad[k][rows] += value[rows]
                    value[rows] = 0.0
            if dinitial is not None:
                for array, value in zip(dinitial, carried):
                    array[d] = value
    return dx, dinitial, grads


def _entered(states: np.ndarray, product_mask: np.ndarray | None) -> np.ndarray:
    """What ``W_hh`` multiplied: ``states`` ``(..., B, H)``, through the recurrent dropout mask
    ``(B, H)`` if any (a new array then)."""
    return states if product_mask is None else states * product_mask


def _correct_restarts(dW_hh: np.ndarray, segment: SegmentStarts, start: int, stop: int, grad_hidden: np.ndarray,
                      states: np.ndarray, product_mask: np.ndarray | None = None) -> None:
    """The block products pair each step's gradient with the state before it; a sequence that
    started again at step ``t`` read its reset state instead. One product adds the difference
    for every such row of scan steps ``[start, stop)``: ``grad (n, G*H)`` by ``(reset - h_{t-1})``."""
    steps = [step for step in segment.begins if start <= step < stop and step > 0]
    if not steps:
        return
    grads = np.concatenate([grad_hidden[step - start][segment.at[step]] for step in steps])
    started = np.concatenate([segment.begins[step][0][segment.at[step]] - states[step - 1][segment.at[step]]
                              for step in steps])
    if product_mask is not None:
        started *= np.concatenate([product_mask[segment.at[step]] for step in steps])
    _add_product(dW_hh, grads.T, started)


def _segments_backward(cell: Cell, segment: SegmentStarts, start: int, stop: int, grad: np.ndarray,
                       grad_hidden: np.ndarray, upstream: np.ndarray | None, extra: tuple[np.ndarray | None, ...],
                       carried: tuple[np.ndarray, ...], direction: int, cache: RecurrentCache, scratch: object,
                       bias_grads: tuple[np.ndarray, ...], first_product: bool,
                       reset_grad: tuple[np.ndarray, ...] | None, loop_options: dict) -> None:
    """The cell's BPTT loop over scan steps ``[start, stop)`` of a direction with resets, one call per
    piece between segment starts, last first. A piece that starts a segment reads the state that
    segment started from as its step ``-1``; what the carried gradient holds there belongs to the
    reset state for the rows that started again, and flows no further back for them."""
    W_hh, gates, states, kept = (cache.W_hh[direction], cache.gates[direction], cache.scans[direction],
                                 cache.kept[direction])
    cuts = [step for step in segment.begins if start < step < stop]
    pieces = [start, *sorted(cuts), stop]
    for lo, hi in reversed(list(zip(pieces, pieces[1:]))):
        part = slice(lo - start, hi - start)
        piece_upstream = None if upstream is None else upstream[part]
        piece_extra = tuple(None if e is None else e[part] for e in extra)
        if lo > 0 and lo in segment.begins:
            block = BackwardBlock(0, hi - lo, grad[part], grad_hidden[part], gates[lo:], states[lo:],
                                  tuple(k[lo:] for k in kept), segment.begins[lo], scratch, cache.biases[direction])
            cell.scan_backward(block, piece_upstream, piece_extra, carried, W_hh, bias_grads, True, **loop_options)
            rows = segment.at[lo]
            for k, value in enumerate(carried):
                if reset_grad is not None:
                    reset_grad[k][rows] += value[rows]
                value[rows] = 0.0
        else:
            block = BackwardBlock(lo, hi, grad[part], grad_hidden[part], gates, states, kept,
                                  tuple(state[direction] for state in cache.initial), scratch, cache.biases[direction])
            cell.scan_backward(block, piece_upstream, piece_extra, carried, W_hh, bias_grads,
                               first_product or lo > 0, **loop_options)


def _zoneout_backward(dout: np.ndarray, dfinal: tuple[np.ndarray | None, ...], cache: RecurrentCache,
                      grads: tuple[list[np.ndarray], ...], dx: np.ndarray | None,
                      dinitial: tuple[np.ndarray, ...] | None, reset_grads: tuple[np.ndarray, ...] | None,
                      ) -> tuple[np.ndarray | None, tuple[np.ndarray, ...] | None, tuple[list[np.ndarray], ...]]:
    """:func:`recurrent_layer_backward` of a layer run with zoneout: each direction's stepped BPTT
    (:func:`rnnkit.functional.zoneout.zoneout_scan_backward`) in scan order, then ``dW_xh``,
    ``dW_hh`` and ``dx`` as one product each over all steps."""
    assert cache.zoneout is not None  # the caller checked
    cell, x, lengths, reverse = cache.cell, cache.x, cache.lengths, cache.reverse
    steps, batch, _ = dout.shape
    inputs, width = x.shape[2], cache.W_xh[0].shape[0]
    output, _ = state_sizes(cell, width // cell.gates, cache.W_hh[0])
    mask = valid_mask(lengths, steps, dout.dtype)
    first_padded = steps if lengths is None else int(lengths.min())
    last = np.full(batch, steps - 1) if lengths is None else lengths - 1  # each final state's scan step
    dW_xh, dW_hh, *dbiases = grads
    with _native.packing():
        for d, zone in enumerate(cache.zoneout):
            upstream = [np.array(_scan_view(dout[:, :, d * output : (d + 1) * output], reverse[d], lengths))]
            upstream += [np.zeros_like(state) for state in zone.inputs[1:]]
            for array, given in zip(upstream, dfinal):
                if given is not None:
                    array[last, np.arange(batch)] += given[d]
            grad = np.empty((steps, batch, width), dout.dtype)
            grad_hidden = np.empty_like(grad) if cell.split_hidden_grad else grad
            product_mask = None if cache.product_masks is None else cache.product_masks[d]
            carried = zoneout_scan_backward(
                cell, zone, cache.gates[d], grad, grad_hidden, tuple(upstream), cache.W_hh[d], cache.biases[d],
                tuple(db[d] for db in dbiases), mask, first_padded,
                {} if product_mask is None else {"product_mask": product_mask},
                None if reset_grads is None else tuple(g[d] for g in reset_grads))
            rows = grad.reshape(-1, width)
            x_scan = np.ascontiguousarray(_scan_view(x, reverse[d], lengths)).reshape(-1, inputs)
            _add_product(dW_xh[d], rows.T, x_scan)
            if cell.recurrent_weight:
                _add_product(dW_hh[d], grad_hidden.reshape(-1, width).T,
                             _entered(zone.inputs[0], product_mask).reshape(-1, output))
            if dx is not None:
                dx_scan = (rows @ cache.W_xh[d]).reshape(steps, batch, inputs)
                in_order = flip_sequences(dx_scan, lengths) if reverse[d] and lengths is not None else (
                    dx_scan[::-1] if reverse[d] else dx_scan)
                if d == 0:
                    dx[...] = in_order
                else:
                    dx += in_order
            if dinitial is not None:
                for array, value in zip(dinitial, carried):
                    array[d] = value
    return dx, dinitial, grads


def _add_product(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``out += a @ b``; one BLAS call with beta = 1 where the compiled helpers are loaded.

    The weight gradients gather one block product each; ``+= a @ b`` allocates the product and
    adds it in a second pass (5 of the 26 ms of dW_hh products at B=128, T=35, H=1024).
    """
    if not _native.add_product(out, a, b):
        out += a @ b


# Rows (steps x batch) per block of the backward pass: enough for efficient matrix products, small
# enough that the block's gradient buffer costs little memory next to the states. 2048, not 512:
# fewer blocks, fewer calls and fewer passes of the weight gradients over dW (LSTM training at
# B=32, H=128: 14.8 -> 13.2 ms; 2-layer bidirectional H=256: 282 -> 265; B=128, H=1024: 720 -> 698),
# for a peak of 1.71x the minimum memory instead of 1.49x at B=128, H=1024 (benchmarks/RESULTS.md).
_BLOCK_ROWS = 2048
# Rows per product when a second direction adds its share of dx: bounds that temporary.
_DX_CHUNK_ROWS = 128
