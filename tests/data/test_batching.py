import numpy as np
import pytest

from rnnkit.data import BatchIterator, bucket_batches, lm_stream_batches, pad_batch


def test_pad_batch_ids_time_major():
    ids, lengths = pad_batch([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert ids.shape == (3, 3) and ids.dtype == np.int64
    assert lengths.tolist() == [3, 1, 2] and lengths.dtype == np.int64
    assert ids[:, 0].tolist() == [5, 6, 7]
    assert ids[:, 1].tolist() == [8, 0, 0]
    assert ids[:, 2].tolist() == [9, 10, 0]


def test_pad_batch_custom_pad_and_dtype():
    ids, _ = pad_batch([np.array([1, 2], dtype=np.int32), np.array([3])], pad_id=-1)
    assert ids.dtype == np.int64 and ids[1, 1] == -1
    ids, _ = pad_batch([[1, 2], [3]], dtype=np.int32)
    assert ids.dtype == np.int32


def test_pad_batch_features():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)]
    x, lengths = pad_batch(seqs)
    assert x.shape == (4, 2, 3) and x.dtype == np.float32
    assert lengths.tolist() == [4, 2]
    np.testing.assert_array_equal(x[:, 0], seqs[0])
    np.testing.assert_array_equal(x[:2, 1], seqs[1])
    assert np.all(x[2:, 1] == 0.0)


def test_pad_batch_rejects_bad_input():
    with pytest.raises(ValueError, match="empty batch"):
        pad_batch([])
    with pytest.raises(ValueError, match=r"seqs\[1\].*empty sequence"):
        pad_batch([[1], []])
    with pytest.raises(ValueError, match=r"seqs\[1\]"):
        pad_batch([np.zeros((2, 3)), np.zeros((2, 4))])


def _lengths(n=1000, seed=1):
    return np.random.default_rng(seed).integers(1, 60, size=n)


def test_buckets_yield_every_example_exactly_once():
    lengths = _lengths()
    batches = bucket_batches(lengths, 32, seed=0)
    everything = np.concatenate(batches)
    assert sorted(everything.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 32 for b in batches)


def test_buckets_are_deterministic_per_seed_and_differ_across_seeds_and_epochs():
    lengths = _lengths()
    a = bucket_batches(lengths, 32, seed=7, epoch=3)
    b = bucket_batches(lengths, 32, seed=7, epoch=3)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    c = bucket_batches(lengths, 32, seed=8, epoch=3)
    d = bucket_batches(lengths, 32, seed=7, epoch=4)
    assert [x.tolist() for x in a] != [x.tolist() for x in c]
    assert [x.tolist() for x in a] != [x.tolist() for x in d]
    g1 = bucket_batches(lengths, 32, seed=np.random.default_rng(5))
    g2 = bucket_batches(lengths, 32, seed=np.random.default_rng(5))
    assert [x.tolist() for x in g1] == [x.tolist() for x in g2]


def test_bucketing_reduces_padding():
    lengths = _lengths(2000)
    bucketed = bucket_batches(lengths, 32, seed=0)
    order = np.random.default_rng(0).permutation(len(lengths))
    random = [order[i:i + 32] for i in range(0, len(order), 32)]
    padding = lambda batches: sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)  # noqa: E731
    assert padding(bucketed) < 0.1 * padding(random)


def test_no_shuffle_needs_no_seed_and_keeps_order():
    lengths = np.array([3, 1, 2, 5, 4])
    batches = bucket_batches(lengths, 2, shuffle=False, bucket_size=5)
    assert [b.tolist() for b in batches] == [[1, 2], [0, 4], [3]]
    with pytest.raises(ValueError, match="seed"):
        bucket_batches(lengths, 2)
    assert all(len(b) == 2 for b in bucket_batches(lengths, 2, shuffle=False, bucket_size=5, drop_last=True))


def test_batch_iterator_pads_and_indexes():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(4, 20, size=n) for n in rng.integers(1, 30, size=200)]
    it = BatchIterator(seqs, batch_size=16, seed=3)
    seen = []
    for batch in it.epoch(0):
        assert batch.ids.shape == (batch.lengths.max(), len(batch.index))
        for j, i in enumerate(batch.index):
            assert batch.lengths[j] == len(seqs[i])
            assert batch.ids[: len(seqs[i]), j].tolist() == seqs[i].tolist()
            assert np.all(batch.ids[len(seqs[i]):, j] == 0)
        seen.extend(batch.index.tolist())
    assert sorted(seen) == list(range(200))
    first, second = [b.index.tolist() for b in it], [b.index.tolist() for b in it]
    assert first == [b.index.tolist() for b in it.epoch(0)]
    assert second == [b.index.tolist() for b in it.epoch(1)] and first != second
    assert len(it) == len(first)
    with pytest.raises(ValueError, match="seed"):
        BatchIterator(seqs, 16)


def test_lm_stream_covers_the_streams_and_targets_shift_by_one():
    ids = np.arange(103)
    chunks = list(lm_stream_batches(ids, batch_size=4, bptt=7))
    steps = 103 // 4  # 25 positions per stream, the last 3 ids dropped
    streams = ids[: steps * 4].reshape(4, steps).T
    inputs = np.concatenate([x for x, _ in chunks])
    targets = np.concatenate([y for _, y in chunks])
    np.testing.assert_array_equal(inputs, streams[:-1])
    np.testing.assert_array_equal(targets, streams[1:])
    assert [x.shape for x, _ in chunks] == [(7, 4)] * 3 + [(3, 4)]
    for x, y in chunks:
        assert x.dtype == np.int64 and x.flags.c_contiguous
        np.testing.assert_array_equal(x[1:], y[:-1])  # within a chunk: shifted by one


def test_lm_stream_edge_cases():
    assert list(lm_stream_batches(np.arange(3), batch_size=2, bptt=4)) == []  # one step per stream
    ((x, y),) = list(lm_stream_batches([1, 2, 3], batch_size=1, bptt=10))
    assert x[:, 0].tolist() == [1, 2] and y[:, 0].tolist() == [2, 3]
    with pytest.raises(ValueError, match="bptt"):
        list(lm_stream_batches([1, 2, 3], 1, 0))
    with pytest.raises(ValueError, match="batch_size"):
        list(lm_stream_batches([1, 2, 3], 0, 2))
