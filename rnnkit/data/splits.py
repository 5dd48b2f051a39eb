"""Deterministic train/valid/test splits.

``split_sizes`` decides how many items each split gets; ``split_indices`` shuffles with a seed;
``split_groups`` keeps all items that share a key (the same source sentence, the same number) in
one split, so nothing is tested on what was trained on; ``split_contiguous`` cuts a sequence
(text, time series) into consecutive pieces.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np

SPLITS = ("train", "valid", "test")
T = TypeVar("T")


def check_splittable(n: int, source: object, what: str = "examples") -> None:
    """A ``ValueError`` naming ``source`` (a file) when ``n`` items are too few for three splits."""
    if n < 3:
        raise ValueError(f"{source}: need at least 3 {what} to make train/valid/test splits, got {n}")


def split_sizes(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[int, int, int]:
    """Sizes ``(train, valid, test)`` summing to ``n``; valid and test get at least one item each
    and train the rest (rounding goes to train). Needs ``n >= 3``."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions: expected three non-negative numbers summing to 1, got {tuple(fractions)}")
    if fractions[1] == 0 or fractions[2] == 0 or fractions[0] == 0:
        raise ValueError(f"fractions: every split needs a positive fraction, got {tuple(fractions)}")
    if n < 3:
        raise ValueError(f"need at least 3 examples to make train/valid/test splits, got {n}")
    valid = max(1, int(round(n * fractions[1])))
    test = max(1, int(round(n * fractions[2])))
    train = n - valid - test
    if train < 1:
        raise ValueError(f"need at least 3 examples to make train/valid/test splits, got {n}")
    return train, valid, test


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, np.ndarray]:
    """Shuffled indices ``0..n-1`` cut into ``{"train", "valid", "test"}`` (int64 arrays, each
    sorted so the splits keep the original order); a pure function of ``(n, fractions, seed)``."""
    sizes = split_sizes(n, fractions)
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum((0,) + sizes)
    return {name: np.sort(order[bounds[i]:bounds[i + 1]]).astype(np.int64) for i, name in enumerate(SPLITS)}


def split_items(items: Sequence[T], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[T]]:
    """``items`` shuffled into train/valid/test lists (see ``split_indices``)."""
    return {name: [items[i] for i in index] for name, index in split_indices(len(items), fractions, seed).items()}


def split_groups(items: Sequence[T], keys: Sequence[Hashable], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> dict[str, list[T]]:
    """Like ``split_items`` but whole groups move together: items with equal ``keys[i]`` always
    land in the same split. The fractions count groups, not items."""
    if len(keys) != len(items):
        raise ValueError(f"keys: expected one key per item ({len(items)}), got {len(keys)}")
    groups: dict[Hashable, int] = {}
    for key in keys:
        groups.setdefault(key, len(groups))
    group_of = np.fromiter((groups[k] for k in keys), dtype=np.int64, count=len(keys))
    assignment = np.empty(len(groups), dtype=np.int64)
    for i, index in enumerate(split_indices(len(groups), fractions, seed).values()):
        assignment[index] = i
    return {name: [items[int(j)] for j in np.flatnonzero(assignment[group_of] == i)] for i, name in enumerate(SPLITS)}


def split_contiguous(sequence: Sequence[T], fractions: Sequence[float] = (0.9, 0.05, 0.05)) -> dict[str, Sequence[T]]:
    """Consecutive pieces ``sequence[:a]``, ``sequence[a:b]``, ``sequence[b:]`` (no shuffling)."""
    train, valid, _ = split_sizes(len(sequence), fractions)
    return {"train": sequence[:train], "valid": sequence[train:train + valid], "test": sequence[train + valid:]}
