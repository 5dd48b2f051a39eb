"""Convert between ``torch.nn.RNN`` and :class:`rnnkit.nn.RNN`.

PyTorch's Elman RNN has two biases, ``b_ih`` and ``b_hh``, that always appear summed, so
``b_h = b_ih + b_hh`` gives the same function; the way back puts ``b_h`` in ``b_ih`` and zeros
in ``b_hh``. Names map ``weight_ih_l{k}{sfx} <-> W_xh_l{k}{sfx}`` and
``weight_hh_l{k}{sfx} <-> W_hh_l{k}{sfx}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.nn.rnn import RNN

_TORCH_NONLINEARITIES = ("tanh", "relu")


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("rnnkit.interop.torch needs PyTorch: pip install torch==2.13.0") from error
    return torch


def from_torch(torch_rnn: Any, seed: int | np.random.Generator | None = None) -> RNN:
    """A :class:`rnnkit.nn.RNN` computing the same function as ``torch_rnn`` (a ``torch.nn.RNN``).

    Keeps the module's dtype (float32 or float64), layers, direction, dropout and
    ``batch_first``. ``seed`` seeds rnnkit's dropout masks.
    """
    torch = _torch()
    if not isinstance(torch_rnn, torch.nn.RNN):
        raise TypeError(f"torch_rnn: expected a torch.nn.RNN, got {type(torch_rnn).__name__}")
    if getattr(torch_rnn, "proj_size", 0):
        raise ValueError(f"torch_rnn: proj_size is not supported by rnnkit.nn.RNN, got {torch_rnn.proj_size}")
    dtype = torch_rnn.weight_ih_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"torch_rnn: expected float32 or float64 weights, got {dtype}")
    rnn = RNN(
        torch_rnn.input_size,
        torch_rnn.hidden_size,
        num_layers=torch_rnn.num_layers,
        nonlinearity=torch_rnn.nonlinearity,
        bidirectional=torch_rnn.bidirectional,
        dropout=torch_rnn.dropout,
        batch_first=torch_rnn.batch_first,
        dtype=np.float64 if dtype == torch.float64 else np.float32,
        seed=seed,
    )
    torch_state = {name: value.detach().cpu().numpy() for name, value in torch_rnn.state_dict().items()}
    state = {}
    for layer in range(rnn.num_layers):
        for suffix in rnn._suffixes(layer):
            state[f"W_xh{suffix}"] = torch_state[f"weight_ih{suffix}"]
            state[f"W_hh{suffix}"] = torch_state[f"weight_hh{suffix}"]
            bias = np.zeros(rnn.hidden_size, dtype=rnn.dtype)
            for torch_bias in (f"bias_ih{suffix}", f"bias_hh{suffix}"):
                if torch_bias in torch_state:  # absent when torch_rnn was built with bias=False
                    bias += torch_state[torch_bias]
            state[f"b_h{suffix}"] = bias
    rnn.load_state_dict(state)
    return rnn


def to_torch(rnn: RNN) -> Any:
    """A ``torch.nn.RNN`` computing the same function as ``rnn`` (``b_ih = b_h``, ``b_hh = 0``).

    Raises ValueError for what torch has no equivalent of: ``nonlinearity="sigmoid"``, merge
    modes other than concat, and a learned initial state.
    """
    torch = _torch()
    if not isinstance(rnn, RNN):
        raise TypeError(f"rnn: expected an rnnkit.nn.RNN, got {type(rnn).__name__}")
    if rnn.nonlinearity not in _TORCH_NONLINEARITIES:
        raise ValueError(
            f"rnn.nonlinearity: torch.nn.RNN supports only {', '.join(_TORCH_NONLINEARITIES)}, "
            f"got {rnn.nonlinearity!r}"
        )
    if rnn.bidirectional and rnn.merge_mode != "concat":
        raise ValueError(f"rnn.merge_mode: torch.nn.RNN concatenates directions, got {rnn.merge_mode!r}")
    if rnn.learn_h0:
        raise ValueError("rnn.learn_h0: torch.nn.RNN has no learned initial state; pass h0 explicitly")
    torch_dtype = torch.float64 if rnn.dtype == np.float64 else torch.float32
    torch_rnn = torch.nn.RNN(
        rnn.input_size,
        rnn.hidden_size,
        num_layers=rnn.num_layers,
        nonlinearity=rnn.nonlinearity,
        bidirectional=rnn.bidirectional,
        dropout=rnn.dropout,
        batch_first=rnn.batch_first,
        dtype=torch_dtype,
    )
    state = {}
    for layer in range(rnn.num_layers):
        for suffix in rnn._suffixes(layer):
            state[f"weight_ih{suffix}"] = torch.from_numpy(rnn.params[f"W_xh{suffix}"].copy())
            state[f"weight_hh{suffix}"] = torch.from_numpy(rnn.params[f"W_hh{suffix}"].copy())
            state[f"bias_ih{suffix}"] = torch.from_numpy(rnn.params[f"b_h{suffix}"].copy())
            state[f"bias_hh{suffix}"] = torch.zeros(rnn.hidden_size, dtype=torch_dtype)
    torch_rnn.load_state_dict(state)
    return torch_rnn.train(rnn.training)
