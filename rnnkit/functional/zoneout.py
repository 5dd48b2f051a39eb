"""Zoneout (Krueger et al. 2017) for every cell: each unit of each state keeps its previous value
with probability ``p``, instead of taking the cell's new one.

    s_t = z_t * s_{t-1} + (1 - z_t) * cell(s_{t-1}, x_t)        for every state s (h, and c)

``z_t`` ``(T, B, H)`` per state is a 0/1 draw in training and the constant ``p`` at evaluation
(the expectation). The LSTM's ``h`` candidate reads the new cell state before it is zoned, as in
the paper: ``o * tanh(f * c_{t-1} + i * g)``.

The cell's own loops (compiled or NumPy) compute each step's candidates; the scans here call them
one step at a time with the zoned state as the step's initial state, so zoneout needs nothing of
a cell but its description. BPTT calls the cell's backward loop for one step at a time the same
way: the gradient reaching a zoned state splits into ``(1 - z) *`` for the candidate, through the
cell, and ``z *`` straight to the state before it. The gate gradients of all steps are kept
(``(T, B, G*H)``) so that the layer takes the weight gradients as one product each.

Letters: T time steps, B batch, H hidden units, G gate blocks. Scan order throughout: the layer
flips a reverse direction before and after.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.functional.cells import BackwardBlock, Cell


class ZoneoutScan(NamedTuple):
    """One direction's stepped scan, in scan order, for :func:`zoneout_scan_backward`."""

    keep: tuple[np.ndarray, ...]  # per state (T, B, H): z_t, 1 where the unit kept its previous value
    inputs: tuple[np.ndarray, ...]  # per state (T, B, H): the state each step started from
    candidates: np.ndarray  # (T, B, H): the h the cell computed (for the Elman cell, its gate buffer)
    cell_kept: tuple[np.ndarray, ...]  # the cell's own kept arrays (the LSTM's candidate c)
    resets: np.ndarray | None  # (T, B) bool: the sequences that started again before each step


def zoneout_scan_forward(cell: Cell, gates: np.ndarray, candidates: np.ndarray, cell_kept: tuple[np.ndarray, ...],
                         zoned: tuple[np.ndarray, ...], initial: tuple[np.ndarray, ...],
                         keep: tuple[np.ndarray, ...], W_hh: np.ndarray | None, biases: tuple[np.ndarray, ...],
                         mask: np.ndarray | None, first_padded: int, loop_options: dict,
                         resets: np.ndarray | None = None,
                         reset_state: tuple[np.ndarray, ...] | None = None) -> ZoneoutScan:
    """Run one direction with zoneout, a step at a time.

    ``gates`` ``(T, B, G*H)`` holds ``W_xh x_t`` (as for :attr:`Cell.scan_forward`);
    ``candidates`` ``(T, B, H)`` receives the cell's ``h`` (``gates`` itself for a cell whose states
    are its gates) and ``cell_kept`` its kept arrays; ``zoned`` one ``(T, B, H)`` per state
    receives the states the layer carries and outputs. ``keep`` per state ``(T, B, H)``: ``z_t``.
    ``loop_options``: keyword arguments for the cell's loops (the recurrent dropout mask).
    ``resets`` ``(T, B)`` bool in scan order: where a sequence starts again from ``reset_state``.
    """
    steps = len(gates)
    inputs = tuple(np.empty_like(array) for array in zoned)
    previous = tuple(np.ascontiguousarray(state) for state in initial)
    for t in range(steps):
        if resets is not None and reset_state is not None and resets[t].any():
            previous = tuple(np.where(resets[t][:, None], start, value) for value, start in zip(previous, reset_state))
        for array, value in zip(inputs, previous):
            array[t] = value
        cell.scan_forward(gates[t : t + 1], candidates[t : t + 1], tuple(k[t : t + 1] for k in cell_kept),
                          tuple(array[t] for array in inputs), W_hh, biases,
                          None if mask is None else mask[t : t + 1], 0 if t >= first_padded else 1, **loop_options)
        for name, before, state, z in zip(cell.state_names, inputs, zoned, keep):
            new = candidates[t] if name == "h" else cell_kept[cell.kept.index(name)][t]
            np.subtract(before[t], new, out=state[t])
            state[t] *= z[t]  # s = new + z (s_{t-1} - new)
            state[t] += new
            if t >= first_padded and mask is not None:
                state[t] *= mask[t]
        previous = tuple(state[t] for state in zoned)
    return ZoneoutScan(keep, inputs, candidates, cell_kept, resets)


def zoneout_scan_backward(cell: Cell, scan: ZoneoutScan, gates: np.ndarray, grad: np.ndarray,
                          grad_hidden: np.ndarray, upstream: tuple[np.ndarray, ...], W_hh: np.ndarray | None,
                          biases: tuple[np.ndarray, ...], bias_grads: tuple[np.ndarray, ...],
                          mask: np.ndarray | None, first_padded: int, loop_options: dict,
                          reset_grad: tuple[np.ndarray, ...] | None = None) -> tuple[np.ndarray, ...]:
    """BPTT of :func:`zoneout_scan_forward`, last step first.

    ``upstream`` per state ``(T, B, H)``: the gradient reaching each zoned state from outside the
    recurrence (from above, and the final states'); ``grad`` (and ``grad_hidden``, the same array
    unless the cell splits them) ``(T, B, G*H)`` receive every step's gate gradients; the cell's
    loops read ``biases`` and add their gradients into ``bias_grads``. ``reset_grad``: per state ``(B, H)`` to add
    what reaches a reset state. Returns the initial states' gradients, per state ``(B, H)``.
    """
    steps, batch = scan.candidates.shape[:2]
    scratch = cell.make_scratch(1, batch, grad.shape[2] // cell.gates, gates.dtype)
    carried = tuple(np.zeros_like(state[0]) for state in scan.inputs)
    through_cell = tuple(np.empty_like(state[0]) for state in scan.inputs)
    total = tuple(np.empty_like(state[:1]) for state in scan.inputs)
    for t in range(steps - 1, -1, -1):
        for k, z in enumerate(scan.keep):
            np.add(upstream[k][t], carried[k], out=total[k][0])
            if t >= first_padded and mask is not None:
                total[k][0] *= mask[t]  # a zoned state at padding is zero whatever it read
            np.multiply(total[k][0], z[t], out=carried[k])  # straight to s_{t-1}
            total[k][0] -= carried[k]  # (1 - z) of it to the candidate
            through_cell[k][...] = 0.0
        block = BackwardBlock(0, 1, grad[t : t + 1], grad_hidden[t : t + 1], gates[t:], scan.candidates[t:],
                              tuple(k[t:] for k in scan.cell_kept), tuple(array[t] for array in scan.inputs), scratch,
                              biases)
        if cell.states_are_gates:  # the loop takes its upstream gradient in the gate buffer
            grad[t] = total[0][0]
        cell.scan_backward(block, None if cell.states_are_gates else total[0], tuple(total[1:]), through_cell, W_hh,
                           bias_grads, True, **loop_options)
        for k in range(len(carried)):
            carried[k][...] += through_cell[k]
        if scan.resets is not None and scan.resets[t].any():  # no gradient crosses a reset
            rows = scan.resets[t]
            for k, value in enumerate(carried):
                if reset_grad is not None:
                    reset_grad[k][rows] += value[rows]
                value[rows] = 0.0
    return carried
