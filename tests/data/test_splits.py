import numpy as np
import pytest

from rnnkit.data import split_contiguous, split_groups, split_indices, split_items
from rnnkit.data.splits import split_sizes


def test_sizes_sum_and_round_to_train():
    assert split_sizes(1000) == (800, 100, 100)
    assert split_sizes(3) == (1, 1, 1)
    assert sum(split_sizes(309, (0.9, 0.05, 0.05))) == 309
    with pytest.raises(ValueError, match="at least 3"):
        split_sizes(2)
    with pytest.raises(ValueError, match="fractions"):
        split_sizes(10, (0.5, 0.5, 0.5))


def test_indices_are_a_seeded_partition():
    a = split_indices(500, seed=1)
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(500))
    assert [len(v) for v in a.values()] == [400, 50, 50]
    b = split_indices(500, seed=1)
    c = split_indices(500, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_items_and_groups():
    items = [f"x{i}" for i in range(100)]
    splits = split_items(items, seed=0)
    assert sorted(sum(splits.values(), [])) == sorted(items)
    keys = [i // 4 for i in range(100)]  # 25 groups of 4
    grouped = split_groups(list(range(100)), keys, seed=0)
    group_sets = {name: {keys[i] for i in members} for name, members in grouped.items()}
    assert not group_sets["train"] & group_sets["valid"]
    assert not group_sets["train"] & group_sets["test"]
    assert not group_sets["valid"] & group_sets["test"]
    assert sorted(sum(grouped.values(), [])) == list(range(100))
    with pytest.raises(ValueError, match="keys"):
        split_groups([1, 2, 3], [1, 2])


def test_contiguous():
    pieces = split_contiguous("abcdefghijklmnopqrst", (0.8, 0.1, 0.1))
    assert pieces == {"train": "abcdefghijklmnop", "valid": "qr", "test": "st"}
