"""Convert between PyTorch's recurrent modules and rnnkit's: ``torch.nn.RNN`` <-> :class:`rnnkit.nn.RNN`,
``torch.nn.LSTM`` <-> :class:`rnnkit.nn.LSTM`, ``torch.nn.GRU`` <-> :class:`rnnkit.nn.GRU`.

Gate layouts are PyTorch's, so weights copy as they are: ``weight_ih_l{k}{sfx} <-> W_xh_l{k}{sfx}``
and ``weight_hh_l{k}{sfx} <-> W_hh_l{k}{sfx}``. PyTorch's Elman RNN and LSTM have two biases,
``b_ih`` and ``b_hh``, that always appear summed, so ``b_h = b_ih + b_hh`` gives the same
function; the way back puts ``b_h`` in ``b_ih`` and zeros in ``b_hh``. The GRU keeps both
(``b_xh <-> bias_ih``, ``b_hh <-> bias_hh``): the n block of ``b_hh`` sits inside the reset product.
An LSTM with ``proj_size`` carries its projection across as ``weight_hr_l{k}{sfx} <-> W_hr_l{k}{sfx}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.nn.gru import GRU
from rnnkit.nn.lstm import LSTM
from rnnkit.nn.recurrent import RecurrentLayer
from rnnkit.nn.rnn import RNN

_TORCH_NONLINEARITIES = ("tanh", "relu")
_MODULES = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("rnnkit.interop.torch needs PyTorch: pip install torch==2.13.0") from error
    return torch


def _kind(torch_module: Any, torch: Any) -> str:
    for kind in _MODULES:
        if type(torch_module) is getattr(torch.nn, kind):
            return kind
    raise TypeError(f"torch_rnn: expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got "
                    f"{type(torch_module).__name__}")


def from_torch(torch_rnn: Any, seed: int | np.random.Generator | None = None) -> RecurrentLayer:
    """The rnnkit module computing the same function as ``torch_rnn`` (a ``torch.nn.RNN``,
    ``torch.nn.LSTM`` or ``torch.nn.GRU``).

    Keeps the module's dtype (float32 or float64), layers, direction, dropout and
    ``batch_first``, and an LSTM's ``proj_size``. ``seed`` seeds rnnkit's dropout masks.
    """
    torch = _torch()
    kind = _kind(torch_rnn, torch)
    dtype = torch_rnn.weight_ih_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"torch_rnn: expected float32 or float64 weights, got {dtype}")
    options = dict(num_layers=torch_rnn.num_layers, bidirectional=torch_rnn.bidirectional,
                   dropout=torch_rnn.dropout, batch_first=torch_rnn.batch_first,
                   dtype=np.float64 if dtype == torch.float64 else np.float32, seed=seed)
    if kind == "RNN":
        options["nonlinearity"] = torch_rnn.nonlinearity
    if kind == "LSTM" and torch_rnn.proj_size:
        options["proj_size"] = torch_rnn.proj_size
    module = _MODULES[kind](torch_rnn.input_size, torch_rnn.hidden_size, **options)
    torch_state = {name: value.detach().cpu().numpy() for name, value in torch_rnn.state_dict().items()}
    width = module.cell.gates * module.hidden_size
    state = {}
    for layer in range(module.num_layers):
        for suffix in module.parameter_suffixes(layer):
            state[f"W_xh{suffix}"] = torch_state[f"weight_ih{suffix}"]
            state[f"W_hh{suffix}"] = torch_state[f"weight_hh{suffix}"]
            if module.proj_size:
                state[f"W_hr{suffix}"] = torch_state[f"weight_hr{suffix}"]
            # Absent biases (a torch module built with bias=False) are zeros.
            bias_ih, bias_hh = (torch_state.get(f"{name}{suffix}", np.zeros(width, module.dtype))
                                for name in ("bias_ih", "bias_hh"))
            if kind == "GRU":
                state[f"b_xh{suffix}"], state[f"b_hh{suffix}"] = bias_ih, bias_hh
            else:
                state[f"b_h{suffix}"] = bias_ih + bias_hh
    module.load_state_dict(state)
    return module


def to_torch(rnn: RecurrentLayer) -> Any:
    """A ``torch.nn.RNN``, ``torch.nn.LSTM`` or ``torch.nn.GRU`` computing the same function as
    ``rnn`` (for RNN and LSTM ``b_ih = b_h``, ``b_hh = 0``).

    Raises ValueError for what torch has no equivalent of: ``nonlinearity="sigmoid"``, merge
    modes other than concat, and a learned initial state.
    """
    torch = _torch()
    kind = next((name for name, cls in _MODULES.items() if isinstance(rnn, cls)), None)
    if kind is None:
        minimal = isinstance(rnn, RecurrentLayer) and not rnn.cell.recurrent_weight
        why = " (PyTorch has no such layer)" if minimal else ""
        raise TypeError(f"rnn: expected an rnnkit.nn.RNN, LSTM or GRU, got {type(rnn).__name__}{why}")
    options: dict[str, Any] = {}
    if kind == "RNN":
        assert isinstance(rnn, RNN)  # kind is the first of _MODULES that rnn is an instance of
        if rnn.nonlinearity not in _TORCH_NONLINEARITIES:
            raise ValueError(
                f"rnn.nonlinearity: torch.nn.RNN supports only {', '.join(_TORCH_NONLINEARITIES)}, "
                f"got {rnn.nonlinearity!r}"
            )
        options["nonlinearity"] = rnn.nonlinearity
    if rnn.bidirectional and rnn.merge_mode != "concat":
        raise ValueError(f"rnn.merge_mode: torch.nn.{kind} concatenates directions, got {rnn.merge_mode!r}")
    if rnn.learn_h0:
        raise ValueError(f"rnn.learn_h0: torch.nn.{kind} has no learned initial state; pass h0 explicitly")
    if rnn.layer_norm:
        raise ValueError(f"rnn.layer_norm: torch.nn.{kind} has no layer normalisation; its gates read the raw "
                         "products, so the weights of a normalised layer would compute something else")
    if rnn.zoneout:
        raise ValueError(f"rnn.zoneout: torch.nn.{kind} has no zoneout; at evaluation each state is mixed with "
                         f"the one before ({rnn.zoneout} * s_(t-1) + {1 - rnn.zoneout:g} * s_new), which it cannot compute")
    torch_dtype = torch.float64 if rnn.dtype == np.float64 else torch.float32
    if rnn.proj_size:
        options["proj_size"] = rnn.proj_size
    torch_rnn = getattr(torch.nn, kind)(rnn.input_size, rnn.hidden_size, num_layers=rnn.num_layers,
                                        bidirectional=rnn.bidirectional, dropout=rnn.dropout,
                                        batch_first=rnn.batch_first, dtype=torch_dtype, **options)
    width = rnn.cell.gates * rnn.hidden_size
    state = {}
    for layer in range(rnn.num_layers):
        for suffix in rnn.parameter_suffixes(layer):
            state[f"weight_ih{suffix}"] = torch.from_numpy(rnn.params[f"W_xh{suffix}"].copy())
            state[f"weight_hh{suffix}"] = torch.from_numpy(rnn.params[f"W_hh{suffix}"].copy())
            if rnn.proj_size:
                state[f"weight_hr{suffix}"] = torch.from_numpy(rnn.params[f"W_hr{suffix}"].copy())
            if kind == "GRU":
                state[f"bias_ih{suffix}"] = torch.from_numpy(rnn.params[f"b_xh{suffix}"].copy())
                state[f"bias_hh{suffix}"] = torch.from_numpy(rnn.params[f"b_hh{suffix}"].copy())
            else:
                state[f"bias_ih{suffix}"] = torch.from_numpy(rnn.params[f"b_h{suffix}"].copy())
                state[f"bias_hh{suffix}"] = torch.zeros(width, dtype=torch_dtype)
    torch_rnn.load_state_dict(state)
    return torch_rnn.train(rnn.training)
