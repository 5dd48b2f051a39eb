"""A PyTorch reference for the recurrent modules: the recurrence written out as a loop over time
in torch (its own cells for the Elman, LSTM and GRU cells, torch ops for the minimal ones), with
padding and resets by hand, and autograd for every gradient."""

from __future__ import annotations

import numpy as np


def torch_loop(module, x, initial, lengths, resets, dout, dfinal, masks=None):
    """Outputs and gradients of ``module``'s computation, written as a loop over torch's cells
    (the minimal cells from torch ops), autograd for the gradients: ``out``, the final states,
    ``dx``, the initial states' gradients and every parameter's, as NumPy arrays. The loss is
    ``sum(out * dout) + sum_k sum(final_k * dfinal_k)``; ``lengths`` (B,) and ``resets`` (T, B)
    are arrays (all T, all False for none). ``masks``: per layer ``(recurrent_masks, zoneout)``
    as the module's ``last_masks`` holds them: the recurrent dropout mask multiplies ``h_{t-1}``
    in the products (the GRU then from torch ops, its ``z * h_{t-1}`` unmasked) and zoneout mixes
    each new state with the one before. The layer-normalised cells are written from torch ops
    with ``torch.nn.functional.layer_norm``."""
    import torch

    names = module.cell.state_names
    params = {name: torch.tensor(value, requires_grad=True) for name, value in module.params.items()}
    tx = torch.tensor(x, requires_grad=True)
    tinitial = [torch.tensor(state, requires_grad=True) for state in initial]
    steps, batch, _ = x.shape
    D, H = module.num_directions, module.hidden_size
    valid = torch.tensor(np.arange(steps)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
    again = torch.tensor(resets)[:, :, None] & valid
    zero_bias = torch.zeros(module.cell.gates * H, dtype=torch.float64)

    def norm(a, suffix, side):
        return torch.nn.functional.layer_norm(a, a.shape[-1:], params[f"ln_{side}_gain{suffix}"],
                                              params[f"ln_{side}_shift{suffix}"], eps=1e-5)

    def cell(x_t, state, suffix, product_mask=None):
        W_ih, W_hh = params[f"W_xh{suffix}"], params.get(f"W_hh{suffix}")
        entering = state[0] if product_mask is None else state[0] * product_mask
        if module.cell.name == "lstm_ln":  # Ba et al. 2016, from torch ops
            a = norm(x_t @ W_ih.T, suffix, "x") + norm(entering @ W_hh.T, suffix, "h") + params[f"b_h{suffix}"]
            i, f, g, o = a.split(H, dim=1)
            c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(norm(c, suffix, "c")), c
        if module.cell.name == "gru_ln":
            x_r, x_z, x_n = (norm(x_t @ W_ih.T, suffix, "x") + params[f"b_xh{suffix}"]).split(H, dim=1)
            h_r, h_z, h_n = (norm(entering @ W_hh.T, suffix, "h") + params[f"b_hh{suffix}"]).split(H, dim=1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            return ((1 - z) * n + z * state[0],)
        if module.cell.name == "lstm":
            return torch.lstm_cell(x_t, (entering, state[1]), W_ih, W_hh, params[f"b_h{suffix}"], zero_bias)
        if module.cell.name == "lstm_proj":
            i, f, g, o = (x_t @ W_ih.T + entering @ W_hh.T + params[f"b_h{suffix}"]).split(H, dim=1)
            c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
            return (torch.sigmoid(o) * torch.tanh(c)) @ params[f"W_hr{suffix}"].T, c
        if module.cell.name == "gru" and product_mask is not None:
            x_r, x_z, x_n = (x_t @ W_ih.T + params[f"b_xh{suffix}"]).split(H, dim=1)
            h_r, h_z, h_n = (entering @ W_hh.T + params[f"b_hh{suffix}"]).split(H, dim=1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            return ((1 - z) * n + z * state[0],)
        if module.cell.name == "gru":
            return (torch.gru_cell(x_t, state[0], W_ih, W_hh, params[f"b_xh{suffix}"], params[f"b_hh{suffix}"]),)
        if module.cell.name in ("mingru", "minlstm"):
            blocks = (x_t @ W_ih.T + params[f"b_h{suffix}"]).split(H, dim=1)
            candidate = torch.where(blocks[-1] >= 0, blocks[-1] + 0.5, torch.sigmoid(blocks[-1]))
            if module.cell.name == "mingru":
                z = torch.sigmoid(blocks[0])
                return ((1 - z) * state[0] + z * candidate,)
            f, i = torch.sigmoid(blocks[0]), torch.sigmoid(blocks[1])
            return ((f * state[0] + i * candidate) / (f + i),)
        return (torch.rnn_tanh_cell(x_t, entering, W_ih, W_hh, params[f"b_h{suffix}"], zero_bias),)

    layer_input, finals = tx, [[None] * (module.num_layers * D) for _ in names]
    for layer in range(module.num_layers):
        outputs = []
        product_masks, zoneout = (None, None) if masks is None else masks[layer]
        for d, suffix in enumerate(module.parameter_suffixes(layer)):
            row = layer * D + d
            start = tuple(params[f"{n}0"][row].expand(batch, module.state_size(n)) if module.learn_h0 else
                          torch.zeros(batch, module.state_size(n), dtype=torch.float64) for n in names)
            state = tuple(s[row] for s in tinitial)
            out = [None] * steps
            order = range(steps) if d == 0 else range(steps - 1, -1, -1)
            for t in order:
                # forward: a reset at t restarts before t; reverse: one at t + 1 restarts before t
                crossing = t if d == 0 else t + 1
                if crossing < steps:
                    state = tuple(torch.where(again[crossing], s0, s) for s0, s in zip(start, state))
                new = cell(layer_input[t], state, suffix,
                           None if product_masks is None else torch.tensor(product_masks[d]))
                if zoneout is not None:
                    keep = [torch.tensor(np.broadcast_to(z[d], (steps, batch, module.state_size(n)))[t])
                            for z, n in zip(zoneout, names)]
                    new = tuple(z * s + (1 - z) * n for z, s, n in zip(keep, state, new))
                state = tuple(torch.where(valid[t], n, s) for n, s in zip(new, state))
                out[t] = torch.where(valid[t], new[0], torch.zeros_like(new[0]))
            outputs.append(torch.stack(out))
            for k in range(len(names)):
                finals[k][row] = state[k]
        layer_input = torch.cat(outputs, dim=2)
    final = [torch.stack(f) for f in finals]
    loss = (layer_input * torch.tensor(dout)).sum() + sum((f * torch.tensor(g)).sum() for f, g in zip(final, dfinal))
    loss.backward()
    return (layer_input.detach().numpy(), [f.detach().numpy() for f in final], tx.grad.numpy(),
            [s.grad.numpy() for s in tinitial], {name: p.grad.numpy() for name, p in params.items()})


def assert_matches(got, want, module, tol=None):
    """``got`` = ``(out, finals, dx, dinitial)`` of ``module`` (``dinitial`` None: not compared)
    and its accumulated ``grads`` against :func:`torch_loop`'s ``want``, to ``tol`` (default
    1e-10 relative and absolute: float64)."""
    tol = tol or dict(rtol=1e-10, atol=1e-10)
    out, finals, dx, dinitial = got
    want_out, want_finals, want_dx, want_dinitial, want_grads = want
    np.testing.assert_allclose(out, want_out, **tol)
    for value, expected in zip(finals, want_finals):
        np.testing.assert_allclose(value, expected, **tol)
    np.testing.assert_allclose(dx, want_dx, **tol)
    if dinitial is not None:
        for value, expected in zip(dinitial, want_dinitial):
            np.testing.assert_allclose(value, expected, **tol)
    for name, expected in want_grads.items():
        np.testing.assert_allclose(module.grads[name], expected, err_msg=name, **tol)
