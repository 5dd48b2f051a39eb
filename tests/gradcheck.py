"""The one gradient-check helper every test uses: central differences in float64.

It lives in the package, :mod:`rnnkit.testing`, so that a cell of your own is checked the same
way; re-exported here for the tests.
"""

from rnnkit.testing import assert_gradient, numerical_gradient, relative_error

__all__ = ["assert_gradient", "numerical_gradient", "relative_error"]
