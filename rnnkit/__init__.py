"""rnnkit: recurrent neural networks from first principles on NumPy.

Forward passes and backpropagation through time are written by hand (``rnnkit.functional``),
wrapped in modules that own parameters and gradients (``rnnkit.nn``).
"""

__version__ = "0.1.0"
