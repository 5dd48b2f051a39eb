"""Batches: padding to time-major arrays with lengths, length-bucketed shuffling, LM streams.

Shapes use T (time steps, the longest sequence in the batch), B (batch size) and F (features).
Everything here returns time-major arrays, the layout of ``rnnkit.nn``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, cast

import numpy as np

SeedLike = int | Sequence[int] | np.random.Generator | None


def pad_batch(seqs: Sequence[Sequence | np.ndarray], pad_id: int | float = 0,
              dtype: type | np.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length sequences into one time-major array.

    Args:
        seqs: B sequences. Each is 1-D of length ``T_b`` (ids) or 2-D ``(T_b, F)`` (real-valued
            features, the same F for all); every ``T_b >= 1``.
        pad_id: the value written at padded positions (id 0 is pad in a ``Vocab``).
        dtype: of the result; default int64 for integer input, else the input's float dtype.

    Returns:
        ids: ``(T, B)`` or ``(T, B, F)`` with ``T = max T_b``; ``ids[t, b]`` is ``seqs[b][t]`` for
            ``t < lengths[b]`` and ``pad_id`` after.
        lengths: int64 ``(B,)``, each in ``1..T``.

    Example::

        >>> ids, lengths = pad_batch([[5, 6, 7], [8]])
        >>> ids
        array([[5, 8],
               [6, 0],
               [7, 0]])
        >>> lengths
        array([3, 1])
    """
    if len(seqs) == 0:
        raise ValueError("seqs: expected at least one sequence, got an empty batch")
    arrays = [np.asarray(s) for s in seqs]
    first = arrays[0]
    if first.ndim not in (1, 2):
        raise ValueError(f"seqs: expected 1-D (T,) or 2-D (T, F) sequences, got shape {first.shape}")
    feature_shape = first.shape[1:]
    for b, a in enumerate(arrays):
        if a.ndim != first.ndim or a.shape[1:] != feature_shape:
            raise ValueError(f"seqs[{b}]: expected shape (T,{''.join(f' {f}' for f in feature_shape)}) "
                             f"like seqs[0], got {a.shape}")
        if a.shape[0] == 0:
            raise ValueError(f"seqs[{b}]: expected at least one time step, got an empty sequence")
    if dtype is None:
        dtype = np.result_type(*arrays)
        if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
            dtype = np.int64
    lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
    out = np.full((int(lengths.max()), len(arrays)) + feature_shape, pad_id, dtype=dtype)
    for b, a in enumerate(arrays):
        out[: a.shape[0], b] = a
    return out, lengths


def _rng(seed: SeedLike, epoch: int) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError("seed: shuffling needs an explicit seed (an int or a numpy Generator), got None")
    # not a list or tuple: an int (or what int() reads); int() rejects any other sequence, as it always has
    base = [int(s) for s in seed] if isinstance(seed, (list, tuple)) else [int(cast(int, seed))]
    return np.random.default_rng(base + [int(epoch)])


def bucket_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, *, seed: SeedLike = None,
                   epoch: int = 0, shuffle: bool = True, bucket_size: int | None = None,
                   drop_last: bool = False) -> list[np.ndarray]:
    """Index batches with little padding: shuffle, sort by length within buckets, shuffle batches.

    The examples are shuffled (seeded by ``(seed, epoch)``), cut into buckets of ``bucket_size``
    (default ``50 * batch_size``), sorted by length inside each bucket and cut into batches; the
    order of all batches is then shuffled. Every example appears in exactly one batch (unless
    ``drop_last`` drops each bucket's short last batch). The result is a pure function of
    ``(lengths, batch_size, seed, epoch)``, so a resumed run sees the same batches.

    With ``shuffle=False`` (evaluation) no randomness is used: buckets follow the given order and
    the batches come in order.

    Args:
        lengths: ``(N,)`` the length of every example.
        seed: an int (or ints), mixed with ``epoch``; or a ``numpy.random.Generator`` to draw from.

    Returns:
        list of int64 index arrays, each of size ``<= batch_size``.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths: expected a 1-D array (N,), got shape {lengths.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size}")
    if bucket_size is None:
        bucket_size = 50 * batch_size
    if bucket_size < 1:
        raise ValueError(f"bucket_size: expected an integer >= 1, got {bucket_size}")
    n = lengths.shape[0]
    rng = _rng(seed, epoch) if shuffle else None
    order = rng.permutation(n) if rng is not None else np.arange(n)
    batches: list[np.ndarray] = []
    for start in range(0, n, bucket_size):
        bucket = order[start:start + bucket_size]
        # stable sort: equal lengths keep their shuffled order
        bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
        for b in range(0, len(bucket), batch_size):
            batch = bucket[b:b + batch_size]
            if drop_last and len(batch) < batch_size:
                continue
            batches.append(batch.astype(np.int64))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class Batch(NamedTuple):
    """One batch of a ``BatchIterator``.

    index: int64 ``(B,)`` positions of the examples in the dataset (to gather their targets).
    ids: ``(T, B)`` (or ``(T, B, F)``) padded sequences.
    lengths: int64 ``(B,)``.
    """

    # the public field shadows tuple.index (a method nothing here calls), which mypy rejects
    index: np.ndarray  # type: ignore[assignment]
    ids: np.ndarray
    lengths: np.ndarray


class BatchIterator:
    """Padded, length-bucketed batches of a list of sequences, epoch after epoch.

    ``iterator.epoch(e)`` gives the batches of epoch ``e`` (a pure function of seed and ``e``);
    iterating the object itself runs epoch 0, 1, 2, ... on successive loops. Targets that are not
    in ``seqs`` (labels, tags, target sentences) are gathered with ``batch.index``.

    Example::

        it = BatchIterator([vocab.encode(t) for t in texts], batch_size=32, seed=0)
        for batch in it.epoch(0):
            logits = model(batch.ids, lengths=batch.lengths)   # batch.ids: (T, B)
            y = labels[batch.index]                            # (B,)
    """

    def __init__(self, seqs: Sequence[Sequence | np.ndarray], batch_size: int, *, seed: SeedLike = None,
                 shuffle: bool = True, bucket_size: int | None = None, drop_last: bool = False,
                 pad_id: int | float = 0, dtype: type | np.dtype | None = None) -> None:
        if shuffle and seed is None:
            raise ValueError("seed: shuffling needs an explicit seed (an int or a numpy Generator), got None")
        self.seqs = seqs
        self.lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        if self.lengths.size and self.lengths.min() < 1:
            first = int(np.argmin(self.lengths))
            raise ValueError(f"seqs[{first}]: expected at least one time step, got an empty sequence")
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.bucket_size, self.drop_last = bucket_size, drop_last
        self.pad_id, self.dtype = pad_id, dtype
        self._next_epoch = 0

    def batches(self, epoch: int = 0) -> list[np.ndarray]:
        """The index arrays of ``epoch``'s batches (see ``bucket_batches``)."""
        return bucket_batches(self.lengths, self.batch_size, seed=self.seed, epoch=epoch, shuffle=self.shuffle,
                              bucket_size=self.bucket_size, drop_last=self.drop_last)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        for index in self.batches(epoch):
            ids, lengths = pad_batch([self.seqs[i] for i in index], pad_id=self.pad_id, dtype=self.dtype)
            yield Batch(index, ids, lengths)

    def __iter__(self) -> Iterator[Batch]:
        epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return self.epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches(0))


def lm_stream_batches(ids: Sequence[int] | np.ndarray, batch_size: int,
                      bptt: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of B parallel streams of one long id sequence, for truncated BPTT.

    The sequence is cut into ``B = batch_size`` equal contiguous streams (the remainder of
    ``len(ids) % B`` ids at the end is dropped): stream ``b`` is
    ``ids[b * S:(b + 1) * S]`` with ``S = len(ids) // B``. Chunks come in order, so the hidden
    state after one chunk is the right initial state for the next. Each chunk is

        inputs  = streams[t : t + T]       shape (T, B), int64
        targets = streams[t + 1 : t + 1 + T]

    with ``T = bptt`` except possibly the last chunk, which is shorter. Together the chunks cover
    positions ``0 .. S - 2`` of every stream as inputs (``1 .. S - 1`` as targets). Nothing is
    yielded when ``S < 2``.

    Example::

        >>> [(x.T.tolist(), y.T.tolist()) for x, y in lm_stream_batches(range(8), 2, 2)]
        [([[0, 1], [4, 5]], [[1, 2], [5, 6]]), ([[2], [6]], [[3], [7]])]
    """
    for inputs, targets, _ in lm_stream_windows(ids, batch_size, bptt):
        yield inputs, targets


#: The target of a window's context rows (:func:`lm_stream_windows`): steps read again to rebuild
#: the state that gradients flow back through, whose predictions were scored by an earlier window.
CONTEXT = -1


def lm_stream_windows(ids: Sequence[int] | np.ndarray, batch_size: int, bptt: int, stride: int | None = None,
                      starts: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Windows of B parallel streams for truncated BPTT with a stride: TBPTT(k1, k2) of Williams
    and Peng, every ``k1 = stride`` steps backpropagate ``k2 = bptt`` steps.

    Streams are cut as in :func:`lm_stream_batches`. Window ``u`` scores the ``k1`` new steps
    ``[u k1, (u + 1) k1)`` (fewer at the end) and reaches back to step
    ``max(0, (u + 1) k1 - k2)``: the ``k2 - k1`` steps before the new ones (fewer at the start)
    are its *context*, read again so that the gradients of the new steps' losses flow back
    ``k2`` steps from the window's last step; their targets are :data:`CONTEXT`. With
    ``stride`` None or equal to ``bptt`` there is no context and the windows are
    :func:`lm_stream_batches`' chunks. Each window is

        inputs  (W, B) int64 = streams[s : e],   targets (W, B) int64 = streams[s + 1 : e + 1]
        resets  (W, B) bool  = starts' streams[s : e] (all False when ``starts`` is None)

    ``starts`` ``(len(ids),)`` bool marks the ids before which the state starts again (a new
    document); it is cut into streams like ``ids``. The state to carry into window ``u + 1`` is
    the one after the window's first ``(u + 1) k1 - k2 - s`` steps, clipped at 0: see
    :func:`carried_steps`.

    Example, one stream of 8, k2 = 4, k1 = 2 (``_`` is context)::

        >>> [(x[:, 0].tolist(), y[:, 0].tolist()) for x, y, _ in lm_stream_windows(range(8), 1, 4, 2)]
        [([0, 1], [1, 2]), ([0, 1, 2, 3], [-1, -1, 3, 4]), ([2, 3, 4, 5], [-1, -1, 5, 6]), ([4, 5, 6], [-1, -1, 7])]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size}")
    if bptt < 1:
        raise ValueError(f"bptt: expected an integer >= 1, got {bptt}")
    stride = bptt if stride is None else stride
    if not 1 <= stride <= bptt:
        raise ValueError(f"stride: expected an integer in 1..{bptt} (bptt), got {stride}")
    data = np.asarray(ids, dtype=np.int64)
    if data.ndim != 1:
        raise ValueError(f"ids: expected a 1-D id sequence, got shape {data.shape}")
    if starts is not None and np.shape(starts) != data.shape:
        raise ValueError(f"starts: expected one flag per id, shape {data.shape}, got {np.shape(starts)}")
    steps = data.shape[0] // batch_size
    streams = data[: steps * batch_size].reshape(batch_size, steps).T  # (S, B)
    flags = (np.zeros((steps, batch_size), bool) if starts is None
             else np.asarray(starts, bool)[: steps * batch_size].reshape(batch_size, steps).T)
    for new in range(0, steps - 1, stride):
        end = min(new + stride, steps - 1)
        begin = max(0, new + stride - bptt)
        targets = np.array(streams[begin + 1 : end + 1])
        targets[: new - begin] = CONTEXT
        yield np.ascontiguousarray(streams[begin:end]), targets, np.ascontiguousarray(flags[begin:end])


def carried_steps(context: int, bptt: int, stride: int) -> int:
    """How many leading steps of a :func:`lm_stream_windows` window that reads ``context`` steps
    again lead to the state the next window starts from: ``min(context + k1, k2 - k1)`` of its
    steps are the next window's context. 0 means the next window starts where this one did."""
    return stride + context - min(context + stride, bptt - stride)
