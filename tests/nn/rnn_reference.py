"""Reference computations for the RNN module tests: PyTorch on packed sequences, and a plain
per-sequence NumPy loop for what PyTorch lacks (sigmoid)."""

from __future__ import annotations

import numpy as np

from rnnkit.nn import RNN
from rnnkit.testing import torch_reference


def torch_packed_reference(rnn: RNN, x, h0, lengths, dout, dh_n):
    """Outputs and gradients of ``torch.nn.RNN`` with ``rnn``'s weights on a packed batch.

    Returns ``out, h_n, dx, dh0, grads`` where ``grads`` uses rnnkit's parameter names
    (:func:`rnnkit.testing.torch_reference`).
    """
    out, (h_n,), dx, (dh0,), grads = torch_reference(rnn, x, (h0,), lengths, dout, (dh_n,))
    return out, h_n, dx, dh0, grads


def loop_reference_forward(rnn: RNN, x, h0, lengths):
    """The equation applied one sequence, one layer, one direction, one step at a time."""
    activation = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "sigmoid": lambda a: 1 / (1 + np.exp(-a))}[
        rnn.nonlinearity
    ]
    steps, batch, _ = x.shape
    D, H = rnn.num_directions, rnn.hidden_size
    out = np.zeros((steps, batch, D * H))
    h_n = np.zeros((rnn.num_layers * D, batch, H))
    for b in range(batch):
        layer_input = x[: lengths[b], b]
        for layer in range(rnn.num_layers):
            layer_output = np.zeros((lengths[b], D * H))
            for direction, suffix in enumerate(rnn.parameter_suffixes(layer)):
                W_xh, W_hh, b_h = (rnn.params[f"{n}{suffix}"] for n in ("W_xh", "W_hh", "b_h"))
                h = h0[layer * D + direction, b]
                order = range(lengths[b] - 1, -1, -1) if direction else range(lengths[b])
                for t in order:
                    h = activation(W_hh @ h + W_xh @ layer_input[t] + b_h)
                    layer_output[t, direction * H : (direction + 1) * H] = h
                h_n[layer * D + direction, b] = h
            layer_input = layer_output
        out[: lengths[b], b] = layer_input
    return out, h_n
