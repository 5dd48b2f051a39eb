"""PyTorch on packed sequences as the reference for rnnkit's LSTM and GRU modules."""

from __future__ import annotations

from rnnkit.nn.recurrent import RecurrentLayer


def torch_packed_states(module: RecurrentLayer, x, initial, lengths, dout, dfinal):
    """Outputs and gradients of the ``torch.nn.LSTM`` / ``torch.nn.GRU`` with ``module``'s weights.

    ``initial`` and ``dfinal`` are tuples of state arrays as in ``forward_states``. Returns
    ``out, finals, dx, dinitial, grads`` with ``grads`` under rnnkit's parameter names.
    """
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from rnnkit.interop.torch import to_torch

    torch_module = to_torch(module)
    tx = torch.tensor(x, requires_grad=True)
    tinitial = tuple(torch.tensor(s, requires_grad=True) for s in initial)
    packed = pack_padded_sequence(tx, torch.as_tensor(lengths), enforce_sorted=False)
    packed_out, tfinal = torch_module(packed, tinitial if len(tinitial) == 2 else tinitial[0])
    tfinal = tfinal if isinstance(tfinal, tuple) else (tfinal,)
    out, _ = pad_packed_sequence(packed_out, total_length=x.shape[0])
    loss = (out * torch.from_numpy(dout)).sum()
    for state, grad in zip(tfinal, dfinal):
        loss = loss + (state * torch.from_numpy(grad)).sum()
    loss.backward()
    torch_names = {"W_xh": "weight_ih", "W_hh": "weight_hh", "b_xh": "bias_ih", "b_hh": "bias_hh", "b_h": "bias_ih"}
    grads = {}
    for name in module.params:
        prefix, suffix = name.split("_l", 1)
        grads[name] = getattr(torch_module, f"{torch_names[prefix]}_l{suffix}").grad.numpy()
    return (out.detach().numpy(), tuple(s.detach().numpy() for s in tfinal), tx.grad.numpy(),
            tuple(s.grad.numpy() for s in tinitial), grads)
