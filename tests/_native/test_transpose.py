"""``rnnkit._native.transposed``: the tiled (AVX for float32) copy of ``a.T``, against NumPy."""

import numpy as np
import pytest

from rnnkit import _native

pytestmark = pytest.mark.skipif(not _native.available(), reason=f"compiled loops: {_native.why_not()}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 13), (8, 8), (16, 8), (24, 40), (33, 65), (128, 1024)])
def test_equals_the_transpose(dtype, shape):
    """Shapes around the 8 x 8 blocks and the 16-row pairs, edges included."""
    a = np.random.default_rng(0).normal(size=shape).astype(dtype)
    got = _native.transposed(a)
    assert got.flags.c_contiguous and got.dtype == dtype
    np.testing.assert_array_equal(got, a.T)


def test_reads_a_view_with_a_row_stride():
    a = np.random.default_rng(1).normal(size=(20, 50)).astype(np.float32)[3:17, 5:42]
    np.testing.assert_array_equal(_native.transposed(a), a.T)


def test_refuses_what_it_cannot_walk():
    a = np.arange(24.0).reshape(4, 6)
    assert _native.transposed(a[:, ::2]) is None
    assert _native.transposed(a.T) is None  # columns not contiguous
    assert _native.transposed(a.astype(np.float16)) is None
    assert _native.transposed(np.zeros(5)) is None
    with _native.disabled():
        assert _native.transposed(a) is None
