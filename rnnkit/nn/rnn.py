"""The Elman recurrent layer: stacked, optionally bidirectional, over padded batches."""

from __future__ import annotations

import math

import numpy as np

from rnnkit._checks import (
    as_float_array,
    check_choice,
    check_float_dtype,
    check_lengths,
    check_positive_int,
    check_shape,
)
from rnnkit.functional.activations import ACTIVATIONS
from rnnkit.functional.dropout import dropout_backward, dropout_forward
from rnnkit.functional.recurrent import rnn_layer_backward, rnn_layer_forward
from rnnkit.nn.module import Module, resolve_rng, uniform_init

MERGE_MODES = ("concat", "sum", "mul", "ave")


class RNN(Module):
    r"""Multi-layer Elman RNN applied to a batch of sequences.

    For each layer and direction, at every valid time step,

    .. math:: h_t = \mathrm{act}(W_{hh} h_{t-1} + W_{xh} x_t + b_h)

    where ``act`` is tanh, sigmoid or ReLU, ``x_t`` is the input at step ``t`` (for layers after
    the first, the previous layer's output, after dropout in training mode) and ``h_{t-1}`` the
    state of the same layer and direction one step earlier (``h0`` at the first step).

    Args:
        input_size: features of ``x``, ``I``.
        hidden_size: units per direction, ``H``.
        num_layers: stacked layers, ``L``.
        nonlinearity: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.
        bidirectional: add a reverse direction that reads each sequence from its own last valid
            step back to step 0; ``D = 2`` then, else ``D = 1``.
        dropout: probability of zeroing each input of layers 2..L in training mode.
        batch_first: inputs and outputs are ``(B, T, F)`` instead of ``(T, B, F)``.
        dtype: ``np.float32`` or ``np.float64``; inputs of another dtype are cast.
        seed: int or ``np.random.Generator`` for the initial weights and dropout masks.
        merge_mode: how the two directions of the *last* layer are combined: ``"concat"``
            (default), ``"sum"``, ``"mul"`` or ``"ave"``. Between layers they are always
            concatenated.
        learn_h0: make the initial state a parameter ``h0`` of shape ``(L * D, H)``, used for
            every sequence when ``forward`` gets no ``h0``.

    Inputs: ``forward(x, h0=None, lengths=None)``
        x: ``(T, B, I)`` (``(B, T, I)`` if ``batch_first``).
        h0: ``(L * D, B, H)``; zeros (or the learned ``h0``) if None.
        lengths: ``(B,)`` ints in ``1..T``; steps ``t >= lengths[b]`` are padding.

    Outputs: ``(out, h_n)``
        out: ``(T, B, D * H)`` (``(T, B, H)`` for merge modes other than concat), the last
            layer's states; exactly zero at padding.
        h_n: ``(L * D, B, H)``, ordered layer by layer, forward before reverse: the state at
            each sequence's last valid step (forward) or after reading step 0 (reverse).

    ``backward(dout, dh_n=None, input_grad=True, h0_grad=True)`` takes gradients shaped like
    ``out`` and ``h_n``, adds the weight gradients into ``grads`` and returns ``(dx, dh0)`` shaped
    like ``x`` and ``h0``. With ``input_grad=False`` (``x`` is data that needs no gradient, as
    PyTorch decides from ``requires_grad``) ``dx`` is None and its matrix product is skipped; with
    ``h0_grad=False`` (nothing upstream of ``h0``) ``dh0`` is None and each layer's last product
    through ``W_hh`` is skipped (a learned ``h0`` still gets its gradient).

    where: T = time steps, B = batch, I = ``input_size``, H = ``hidden_size``,
    L = ``num_layers``, D = 2 if ``bidirectional`` else 1.

    Attributes (``params``; ``grads`` has the same keys), for layer ``k`` and with the suffix
    ``_reverse`` for the reverse direction:
        ``W_xh_l{k}``: ``(H, I_k)`` with ``I_0 = I`` and ``I_k = D * H`` for ``k > 0``;
        ``W_hh_l{k}``: ``(H, H)``; ``b_h_l{k}``: ``(H,)``.
        All drawn from ``U(-1/sqrt(H), 1/sqrt(H))``, as in PyTorch.

    Example::

        >>> rnn = RNN(10, 20, num_layers=2, seed=0)
        >>> x = np.random.default_rng(0).normal(size=(5, 3, 10))
        >>> out, h_n = rnn(x, lengths=np.array([5, 2, 4]))
        >>> out.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))
        >>> dx, dh0 = rnn.backward(np.ones_like(out))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = False,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
        merge_mode: str = "concat",
        learn_h0: bool = False,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, tuple(ACTIVATIONS))
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.dtype = check_float_dtype(dtype)
        self.merge_mode = check_choice("merge_mode", merge_mode, MERGE_MODES)
        self.learn_h0 = bool(learn_h0)
        self.rng = resolve_rng(seed)
        self._cache: dict | None = None

        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.num_directions * self.hidden_size
            for suffix in self._suffixes(layer):
                self.add_parameter(f"W_xh{suffix}", uniform_init(self.rng, (hidden_size, layer_input), bound, self.dtype))
                self.add_parameter(f"W_hh{suffix}", uniform_init(self.rng, (hidden_size, hidden_size), bound, self.dtype))
                self.add_parameter(f"b_h{suffix}", uniform_init(self.rng, (hidden_size,), bound, self.dtype))
        if self.learn_h0:
            self.add_parameter("h0", np.zeros((self.num_layers * self.num_directions, hidden_size), self.dtype))

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    @property
    def output_size(self) -> int:
        """Features of ``out``: ``D * H`` for concat, ``H`` for the other merge modes."""
        merged = self.bidirectional and self.merge_mode != "concat"
        return self.hidden_size if merged else self.num_directions * self.hidden_size

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"]
        defaults = {"num_layers": 1, "nonlinearity": "tanh", "bidirectional": False, "dropout": 0.0,
                    "batch_first": False, "merge_mode": "concat", "learn_h0": False}
        options += [f"{k}={getattr(self, k)!r}" for k, v in defaults.items() if getattr(self, k) != v]
        return ", ".join(options + [f"dtype={self.dtype.name}"])

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self, x: np.ndarray, h0: np.ndarray | None = None, lengths: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        x = as_float_array("x", x, self.dtype)
        legend = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        if x.ndim != 3:
            raise ValueError(f"x: expected a 3-D array {legend}, got shape {x.shape}")
        if self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        steps, batch, features = x.shape
        if steps == 0 or batch == 0:
            raise ValueError(f"x: expected at least one time step and one sequence, got shape {x.shape}")
        if features != self.input_size:
            raise ValueError(f"x: expected {self.input_size} input features (last axis), got {features}")
        lengths = check_lengths(lengths, batch, steps)
        h0 = self._initial_state(h0, batch)

        layer_input = x
        D = self.num_directions
        reverse = (False, True)[:D]
        layers = []
        final_states = []
        for layer in range(self.num_layers):
            dropout_cache = None
            if layer > 0:
                layer_input, dropout_cache = dropout_forward(layer_input, self.dropout, self.rng, self.training)
            suffixes = self._suffixes(layer)
            # Both directions in one call: one input projection for both, and their states
            # written side by side, which is already the concatenated input of the next layer.
            layer_input, h_last, cache = rnn_layer_forward(
                layer_input,
                h0[layer * D : (layer + 1) * D],
                tuple(self.params[f"W_xh{suffix}"] for suffix in suffixes),
                tuple(self.params[f"W_hh{suffix}"] for suffix in suffixes),
                tuple(self.params[f"b_h{suffix}"] for suffix in suffixes),
                self.nonlinearity,
                lengths,
                reverse,
            )
            layers.append((dropout_cache, cache))
            final_states.append(h_last)
        H = self.hidden_size
        outputs = [layer_input[..., d * H : (d + 1) * H] for d in range(D)]
        # The last layer's output already holds the directions side by side: concat is free.
        out = layer_input if D == 1 or self.merge_mode == "concat" else self._merge(outputs, self.merge_mode)
        self._cache = {"layers": layers, "last_outputs": outputs, "h0_given": h0.shape}
        h_n = final_states[0] if self.num_layers == 1 else np.concatenate(final_states)
        if self.batch_first:
            out = out.transpose(1, 0, 2)
        return out, h_n

    def _initial_state(self, h0: np.ndarray | None, batch: int) -> np.ndarray:
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if h0 is None:
            if self.learn_h0:
                return np.broadcast_to(self.params["h0"][:, None, :], shape)
            return np.zeros(shape, dtype=self.dtype)
        h0 = as_float_array("h0", h0, self.dtype)
        check_shape("h0", h0, shape, "(num_layers * num_directions, B, hidden_size)")
        return h0

    @staticmethod
    def _merge(outputs: list[np.ndarray], mode: str) -> np.ndarray:
        """Combine the two directions' states for merge modes other than concat."""
        forward_states, reverse_states = outputs
        if mode == "sum":
            return forward_states + reverse_states
        if mode == "ave":
            return 0.5 * (forward_states + reverse_states)
        return forward_states * reverse_states  # "mul"

    # -- backward --------------------------------------------------------------------------
    def backward(
        self, dout: np.ndarray, dh_n: np.ndarray | None = None, input_grad: bool = True, h0_grad: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        cache = self._require_cache(self._cache)
        layers = cache["layers"]
        steps, batch = layers[0][1].out.shape[:2]
        legend = "(B, T, features)" if self.batch_first else "(T, B, features)"
        expected_out = (batch, steps, self.output_size) if self.batch_first else (steps, batch, self.output_size)
        dout = as_float_array("dout", dout, self.dtype, finite=False)
        check_shape("dout", dout, expected_out, f"{legend}, the shape of out")
        if self.batch_first:
            dout = dout.transpose(1, 0, 2)
        if dh_n is not None:
            dh_n = as_float_array("dh_n", dh_n, self.dtype, finite=False)
            check_shape("dh_n", dh_n, cache["h0_given"], "(num_layers * num_directions, B, hidden_size), the shape of h_n")

        D = self.num_directions
        state_grad = h0_grad or self.learn_h0
        dh0 = np.empty(cache["h0_given"], dtype=self.dtype) if state_grad else None
        grad = dout
        if D == 2 and self.merge_mode != "concat":
            grad = np.concatenate(self._split(dout, self.merge_mode, cache["last_outputs"]), axis=-1)
        for layer in range(self.num_layers - 1, -1, -1):
            dropout_cache, layer_cache = layers[layer]
            suffixes = self._suffixes(layer)
            # Weight gradients are added straight into self.grads: no parameter-sized temporaries.
            into = tuple([self.grads[f"{name}{suffix}"] for suffix in suffixes] for name in ("W_xh", "W_hh", "b_h"))
            dx, dh0_layer, *_ = rnn_layer_backward(
                grad, None if dh_n is None else dh_n[layer * D : (layer + 1) * D], layer_cache, into,
                input_grad=input_grad or layer > 0, state_grad=state_grad,
            )
            if dh0 is not None:
                dh0[layer * D : (layer + 1) * D] = dh0_layer
            grad = dropout_backward(dx, dropout_cache)
        if self.learn_h0:
            self.accumulate("h0", dh0.sum(axis=1))
        self._cache = None
        if self.batch_first and grad is not None:
            grad = grad.transpose(1, 0, 2)
        return grad, dh0 if h0_grad else None

    def _split(self, grad: np.ndarray, mode: str, last_outputs: list[np.ndarray]) -> list[np.ndarray]:
        """Gradient for each direction's states from the gradient of :meth:`_merge`'s output."""
        if mode == "sum":
            return [grad, grad]
        if mode == "ave":
            half = 0.5 * grad
            return [half, half]
        forward_states, reverse_states = last_outputs
        return [grad * reverse_states, grad * forward_states]  # "mul"
