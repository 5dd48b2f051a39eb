"""Reference computations for the RNN module tests: PyTorch on packed sequences, and a plain
per-sequence NumPy loop for what PyTorch lacks (sigmoid)."""

from __future__ import annotations

import numpy as np

from rnnkit.nn import RNN


def torch_packed_reference(rnn: RNN, x, h0, lengths, dout, dh_n):
    """Outputs and gradients of ``torch.nn.RNN`` with ``rnn``'s weights on a packed batch.

    Returns ``out, h_n, dx, dh0, grads`` where ``grads`` uses rnnkit's parameter names.
    """
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from rnnkit.interop.torch import to_torch

    torch_rnn = to_torch(rnn)
    steps = x.shape[0]
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True)
    packed = pack_padded_sequence(tx, torch.as_tensor(lengths), enforce_sorted=False)
    packed_out, h_n = torch_rnn(packed, th0)
    out, _ = pad_packed_sequence(packed_out, total_length=steps)
    loss = (out * torch.from_numpy(dout)).sum() + (h_n * torch.from_numpy(dh_n)).sum()
    loss.backward()
    grads = {}
    for layer in range(rnn.num_layers):
        for suffix in rnn.parameter_suffixes(layer):
            grads[f"W_xh{suffix}"] = getattr(torch_rnn, f"weight_ih{suffix}").grad.numpy()
            grads[f"W_hh{suffix}"] = getattr(torch_rnn, f"weight_hh{suffix}").grad.numpy()
            grads[f"b_h{suffix}"] = getattr(torch_rnn, f"bias_ih{suffix}").grad.numpy()
    return out.detach().numpy(), h_n.detach().numpy(), tx.grad.numpy(), th0.grad.numpy(), grads


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
