"""nn.Embedding's dropout on the looked-up vectors (the table itself is checked in
tests/test_testing.py's gradcheck of embedding_backward)."""

import numpy as np
import pytest

from rnnkit.nn import Embedding


def test_embedding_dropout_masks_in_training_only_and_the_gradient_follows():
    embedding = Embedding(50, 16, padding_idx=0, seed=0, dropout=0.5, dtype=np.float64)
    ids = np.arange(1, 41).reshape(8, 5)
    table = embedding.params["W"].copy()
    y = embedding(ids)
    kept = y != 0
    assert 0.35 < kept.mean() < 0.65
    np.testing.assert_allclose(y[kept], (table[ids] * 2.0)[kept])  # survivors scaled by 1 / (1 - p)
    embedding.backward(np.ones_like(y))
    np.testing.assert_allclose(embedding.grads["W"][ids[0, 0]], np.where(kept[0, 0], 2.0, 0.0))
    embedding.eval()
    np.testing.assert_array_equal(embedding(ids), table[ids])
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got 1.0"):
        Embedding(5, 2, dropout=1.0)
