import threading

import numpy as np
import pytest

from rnnkit import _workspace as workspace


@pytest.fixture(autouse=True)
def empty_workspace():
    workspace.release()
    yield
    workspace.release()


BIG = (512, 1024)  # 2 MiB of float32: above MIN_BYTES


def test_small_arrays_are_numpys_own():
    a = workspace.empty((4, 5), np.float64)
    assert a.shape == (4, 5) and a.dtype == np.float64 and a.flags.owndata


def test_a_dropped_array_is_reused_and_one_in_use_is_not():
    a = workspace.empty(BIG, np.float32)
    assert a.shape == BIG and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    address = a.ctypes.data
    b = workspace.empty(BIG, np.float32)
    assert b.ctypes.data != address  # a is still referenced
    del a
    c = workspace.empty(BIG, np.float32)
    assert c.ctypes.data == address


def test_a_surviving_view_keeps_the_block_in_use():
    a = workspace.empty(BIG, np.float32)
    address = a.ctypes.data
    column = a[:, 3].reshape(-1, 1)[::2]  # a view of views: still refers to the block
    del a
    b = workspace.empty(BIG, np.float32)
    assert b.ctypes.data != address
    b[...] = 7.0
    column[...] = 1.0  # writing through the surviving view does not touch b
    assert (b == 7.0).all()
    del column
    assert workspace.empty(BIG, np.float32).ctypes.data in (address, b.ctypes.data) and (b == 7.0).all()


def test_a_block_serves_smaller_requests_of_another_shape_and_dtype_within_the_slack():
    a = workspace.empty(BIG, np.float32)
    address = a.ctypes.data
    del a
    b = workspace.empty((300, 1024), np.float64)  # 2.3 MiB: bigger than the block, a new one
    assert b.ctypes.data != address and b.shape == (300, 1024) and b.dtype == np.float64
    c = workspace.empty((400, 1024), np.float32)  # 1.6 MiB: the 2 MiB block
    assert c.ctypes.data == address and c.shape == (400, 1024)
    del c
    d = workspace.empty((64, 1024, 4), np.float32)  # 1 MiB: more than 1.5 times smaller, not that block
    assert d.ctypes.data != address


def test_the_limit_is_kept_and_release_frees_what_nothing_uses(monkeypatch):
    monkeypatch.setattr(workspace, "MAX_KEPT_BYTES", 5 << 20)
    held = [workspace.empty(BIG, np.float32) for _ in range(2)]  # 4 MiB kept, in use
    extra = workspace.empty(BIG, np.float32)  # would pass the limit: not kept
    assert extra.shape == BIG and extra.ctypes.data not in [a.ctypes.data for a in held]
    assert workspace.release() == 4 << 20  # both still in use, the extra one not counted
    del held
    assert workspace.release() == 0


def test_threads_never_share_a_block():
    seen, errors = [], []

    def work():
        try:
            for _ in range(50):
                a = workspace.empty(BIG, np.float32)
                marker = float(threading.get_ident() % 1000)
                a[...] = marker
                seen.append(a.ctypes.data)
                assert (a == marker).all()
                del a
        except AssertionError as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(seen)) <= 4  # blocks were reused, one per thread at most
