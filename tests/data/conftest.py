import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep the tests' dataset cache out of the user's ~/.cache (one cache for the session, so
    the slow-to-build datasets are built once)."""
    old = os.environ.get("RNNKIT_CACHE")
    os.environ["RNNKIT_CACHE"] = str(tmp_path_factory.mktemp("rnnkit-cache"))
    yield
    if old is None:
        del os.environ["RNNKIT_CACHE"]
    else:
        os.environ["RNNKIT_CACHE"] = old
