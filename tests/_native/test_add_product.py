"""``rnnkit._native.add_product``: ``out += a @ b`` as one BLAS call, against NumPy."""

import numpy as np
import pytest

from rnnkit import _native

pytestmark = pytest.mark.skipif(not _native.available(), reason=f"compiled loops: {_native.why_not()}")


def _views(rng, rows, cols, dtype):
    """The 2-D views the backward pass hands over: plain, transposed, a column window."""
    return {"plain": rng.normal(size=(rows, cols)).astype(dtype),
            "transposed": rng.normal(size=(cols, rows)).astype(dtype).T,
            "window": rng.normal(size=(rows, cols + 3)).astype(dtype)[:, 1 : cols + 1]}


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_adds_the_product_for_every_view(dtype, tol):
    rng = np.random.default_rng(0)
    for a in _views(rng, 6, 9, dtype).values():
        for b in _views(rng, 9, 4, dtype).values():
            out = rng.normal(size=(6, 4)).astype(dtype)
            expected = out.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
            assert _native.add_product(out, a, b)
            np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def test_single_rows_and_columns():
    """A (1, H) x (H, 1) pair: leading dimensions BLAS must still accept."""
    rng = np.random.default_rng(1)
    a, b, out = rng.normal(size=(1, 5)), rng.normal(size=(5, 1)), np.zeros((1, 1))
    assert _native.add_product(out, a, b)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    out = np.ones((5, 5))
    assert _native.add_product(out, b, a)
    np.testing.assert_allclose(out, 1 + b @ a, rtol=1e-12)


def test_refuses_what_blas_cannot_read_and_leaves_out_alone():
    rng = np.random.default_rng(2)
    out = np.zeros((3, 2))
    strided = rng.normal(size=(3, 8))[:, ::2]  # no unit stride
    assert not _native.add_product(out, strided, rng.normal(size=(4, 2)))
    assert not _native.add_product(out, rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4, 2)))
    assert not _native.add_product(out, rng.normal(size=(3, 5)), rng.normal(size=(4, 2)))  # k differs
    assert not _native.add_product(np.zeros((2, 3)).T, rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))
    np.testing.assert_array_equal(out, 0)
    with _native.disabled():
        assert not _native.add_product(out, rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))
