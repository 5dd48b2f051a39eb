"""Data-parallel training over MPI: the processes of one ``mpiexec`` train one model.

Every process builds the same model from the same seed and walks the same global batches; each
takes its contiguous share of every batch (:func:`shard`; uneven shares when the process count
does not divide the batch) and computes the gradients of its share's *summed* loss. One
allreduce per step sums, in a single flat buffer, every parameter's gradient together with the
loss and the number of items; the trainer then divides by the global count (and agrees on
stopping and saving in a second, three-number allreduce). So every process applies the same update, and the model equals the
one-process run's up to the order of float summation.

:func:`current_world` is :class:`SingleProcess` unless the process was started by an MPI launcher
with more than one process: without MPI, or with one process, mpi4py is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

# What MPI launchers put in each process's environment: Open MPI, MPICH / Intel MPI (Hydra),
# MVAPICH.
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


class World:
    """The processes training together: this one's ``rank`` among ``size``. Rank 0 is the root,
    which alone prints, logs and writes the run directory."""

    rank: int = 0
    size: int = 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce_sum(self, buffer: np.ndarray) -> None:
        """Replace ``buffer`` (a contiguous 1-D array) by its sum over the processes, in place."""

    def broadcast(self, value: Any) -> Any:
        """The root's ``value``, on every process."""
        return value

    def allgather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process."""
        return [value]

    def abort(self, code: int) -> None:
        """End every process of the job (one process failing must not leave the others waiting)."""


class SingleProcess(World):
    """One process: every collective is the identity."""


class MPIWorld(World):
    """The processes of ``MPI.COMM_WORLD``, through mpi4py."""

    def __init__(self) -> None:
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise ImportError(f"this process was started by mpiexec with {launched_processes()} processes, but "
                              f'mpi4py is not installed: pip install "rnnkit[mpi]"') from error
        self._mpi = MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce_sum(self, buffer: np.ndarray) -> None:
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)

    def broadcast(self, value: Any) -> Any:
        return self.comm.bcast(value, root=0)

    def allgather(self, value: Any) -> list[Any]:
        return self.comm.allgather(value)

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


def launched_processes() -> int:
    """How many processes the MPI launcher started (1 when none did)."""
    for variable in _SIZE_VARIABLES:
        value = os.environ.get(variable, "")
        if value.isdigit():
            return int(value)
    return 1


_WORLD: World | None = None


def current_world() -> World:
    """This job's processes: an :class:`MPIWorld` under ``mpiexec -n N`` with ``N > 1``, else a
    :class:`SingleProcess` (and mpi4py is not imported)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = MPIWorld() if launched_processes() > 1 else SingleProcess()
    return _WORLD


def share(count: int, rank: int, size: int) -> slice:
    """The contiguous block of ``count`` items that process ``rank`` of ``size`` takes: the first
    ``count % size`` processes take one more (``np.array_split``'s rule); some take none when
    ``count < size``."""
    base, extra = divmod(count, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def shard(batch: Sequence[Any], axes: Sequence[int], rank: int, size: int) -> tuple[Any, ...]:
    """This process's share of ``batch``, a tuple whose ``k``-th entry has its examples along
    axis ``axes[k]`` (``(T, B)`` token ids: 1; labels ``(B,)``: 0; a list: 0). Returns the same
    tuple, each entry cut to the examples of :func:`share`."""
    if len(batch) != len(axes):
        raise ValueError(f"batch: expected {len(axes)} entries (one per batch axis {tuple(axes)}), got {len(batch)}")
    sizes = {_examples(entry, axis) for entry, axis in zip(batch, axes)}
    if len(sizes) != 1:
        raise ValueError(f"batch: its entries disagree on the number of examples: {sorted(sizes)}")
    part = share(sizes.pop(), rank, size)
    return tuple(entry[part] if isinstance(entry, list) else np.asarray(entry)[(slice(None),) * axis + (part,)]
                 for entry, axis in zip(batch, axes))


def _examples(entry: Any, axis: int) -> int:
    return len(entry) if isinstance(entry, list) else np.shape(entry)[axis]


def is_empty(batch: Sequence[Any], axes: Sequence[int]) -> bool:
    """Whether a (sharded) batch holds no example: what a process gets when the batch has fewer
    examples than there are processes."""
    return bool(axes) and _examples(batch[0], axes[0]) == 0


class GradientBuffer:
    """One flat buffer for every gradient of a model and the step's totals, summed in one call.

    ``reduce(world, model, loss, count, votes)`` copies the gradients in, appends the loss, the
    item count and ``votes`` (numbers each process contributes: its wish to stop, to save), sums
    the buffer over the processes with one allreduce, and writes the summed gradients back.
    Returns the summed loss, count and votes. The totals share the gradients' dtype; a float32
    count is exact up to 2^24 items a step.
    """

    def __init__(self, model: Any, votes: int) -> None:
        grads = [grad for _, _, grad in model.named_parameters()]
        self.offsets = np.concatenate([[0], np.cumsum([grad.size for grad in grads])]).astype(int)
        self.buffer = np.zeros(self.offsets[-1] + 2 + votes, dtype=grads[0].dtype)

    def reduce(self, world: World, model: Any, loss: float, count: int,
               votes: Sequence[float]) -> tuple[float, int, list[float]]:
        grads = [grad for _, _, grad in model.named_parameters()]
        ends = self.offsets[1:]
        for grad, start, end in zip(grads, self.offsets[:-1], ends):
            self.buffer[start:end] = grad.reshape(-1)
        total = self.offsets[-1]
        self.buffer[total:] = [loss, count, *votes]
        world.allreduce_sum(self.buffer)
        for grad, start, end in zip(grads, self.offsets[:-1], ends):
            grad.reshape(-1)[...] = self.buffer[start:end]
        loss, total_count, *votes = (float(v) for v in self.buffer[total:])
        return loss, int(round(total_count)), votes
