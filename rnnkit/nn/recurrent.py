"""The recurrent layer shared by :class:`RNN`, :class:`LSTM` and :class:`GRU`: stacked,
optionally bidirectional layers of one cell over padded batches.

Everything here is cell-agnostic: arguments and their checks, parameters named and shaped from
the cell's description, dropout between layers, ``batch_first`` at the boundary, merge modes,
learnable initial states and the two gradient skips. States travel as tuples, one ``(L * D, B,
H)`` array per name in ``cell.state_names``; the subclasses only give each cell its public
signature (``h0`` / ``hx = (h0, c0)``) and its constructor arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rnnkit._checks import (
    as_float_array,
    check_choice,
    check_float_dtype,
    check_lengths,
    check_positive_int,
    check_resets,
    check_shape,
)
from rnnkit.functional.cells import Cell, State
from rnnkit.functional.dropout import dropout_backward, dropout_forward
from rnnkit.functional.merge import MERGE_MODES, merge_backward, merge_forward
from rnnkit.functional.recurrent import recurrent_layer_backward, recurrent_layer_forward
from rnnkit.nn.module import Module, resolve_rng, uniform_init

_NO_WEIGHT = np.empty((0, 0))


class RecurrentLayer(Module):
    """Base of the recurrent modules; see :class:`rnnkit.nn.RNN` for the arguments and contract.

    Parameters per layer ``k`` and direction (suffix ``_l{k}`` or ``_l{k}_reverse``):
    ``W_xh`` ``(G*H, I_k)``, ``W_hh`` ``(G*H, H)`` and one ``(G*H,)`` array per name in
    ``cell.bias_names``, all drawn from ``U(-1/sqrt(H), 1/sqrt(H))`` as in PyTorch; with
    ``learn_h0`` one ``(L * D, H)`` parameter per state (``h0``, and ``c0`` for the LSTM).
    """

    #: the gated cells' layer normalisation (Ba et al. 2016), set by LSTM and GRU
    layer_norm = False

    def __init__(
        self,
        cell: Cell,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        batch_first: bool,
        dtype: type | np.dtype,
        seed: int | np.random.Generator | None,
        merge_mode: str,
        learn_h0: bool,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        self.cell = cell
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if proj_size and not 0 < int(proj_size) < hidden_size:
            raise ValueError(f"proj_size: expected 0 (none) or a size in 1..{hidden_size - 1} (below hidden_size), "
                             f"got {proj_size!r}")
        self.proj_size = int(proj_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        for name, value in (("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1), got {value!r}")
        if recurrent_dropout and not cell.recurrent_weight:
            raise ValueError(f"recurrent_dropout: the {cell.name} cell has no recurrent product to drop from (its "
                             "gates read the input alone); use dropout between layers or zoneout")
        self.recurrent_dropout, self.zoneout = float(recurrent_dropout), float(zoneout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.dtype = check_float_dtype(dtype)
        self.merge_mode = check_choice("merge_mode", merge_mode, MERGE_MODES)
        self.learn_h0 = bool(learn_h0)
        self.rng = resolve_rng(seed)
        self._cache: dict | None = None
        #: per layer, the ``(recurrent_masks, zoneout)`` the last forward used (see :meth:`_draw_masks`)
        self.last_masks: list[tuple[tuple[np.ndarray, ...] | None, tuple[np.ndarray, ...] | None]] = []

        bound = 1.0 / math.sqrt(hidden_size)
        width = cell.gates * hidden_size
        features = self.state_size("h")
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.num_directions * features
            for suffix in self.parameter_suffixes(layer):
                self.add_parameter(f"W_xh{suffix}", uniform_init(self.rng, (width, layer_input), bound, self.dtype))
                if cell.recurrent_weight:
                    self.add_parameter(f"W_hh{suffix}", uniform_init(self.rng, (width, features), bound, self.dtype))
                fills = cell.bias_fill or (None,) * len(cell.bias_names)
                for bias, shape, fill in zip(cell.bias_names, cell.bias_shapes(hidden_size, features), fills):
                    self.add_parameter(f"{bias}{suffix}", uniform_init(self.rng, shape, bound, self.dtype)
                                       if fill is None else np.full(shape, fill, self.dtype))
        if self.learn_h0:
            for name in cell.state_names:
                self.add_parameter(f"{name}0", np.zeros((self.num_layers * self.num_directions,
                                                         self.state_size(name)), self.dtype))

    def parameter_suffixes(self, layer: int) -> list[str]:
        """The parameter-name suffixes of layer ``layer``: ``["_l{layer}"]``, and ``"_l{layer}_reverse"``
        for a bidirectional layer (``W_xh_l0``, ``W_xh_l0_reverse``, as PyTorch names them)."""
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    @property
    def output_size(self) -> int:
        """Features of ``out``: ``D * H`` for concat, ``H`` for the other merge modes."""
        merged = self.bidirectional and self.merge_mode != "concat"
        return self.state_size("h") if merged else self.num_directions * self.state_size("h")

    def state_size(self, name: str) -> int:
        """Features of state ``name`` per layer and direction: ``H``, or ``proj_size`` for ``h``
        when the LSTM projects it."""
        return self.proj_size if name == "h" and self.proj_size else self.hidden_size

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"]
        defaults = {"num_layers": 1, "nonlinearity": "tanh", "bidirectional": False, "dropout": 0.0,
                    "batch_first": False, "merge_mode": "concat", "learn_h0": False, "scan": "sequential",
                    "recurrent_dropout": 0.0, "zoneout": 0.0, "layer_norm": False, "proj_size": 0}
        options += [f"{k}={getattr(self, k)!r}" for k, v in defaults.items()
                    if hasattr(self, k) and getattr(self, k) != v]
        return ", ".join(options + [f"dtype={self.dtype.name}"])

    # -- forward ---------------------------------------------------------------------------
    def forward_states(
        self,
        x: np.ndarray,
        initial: tuple[np.ndarray | None, ...] | None = None,
        lengths: np.ndarray | None = None,
        resets: np.ndarray | None = None,
    ) -> tuple[np.ndarray, State]:
        """:meth:`forward` with the states as a tuple, one ``(L * D, B, H)`` array per name in
        ``cell.state_names`` (``(h,)`` or ``(h, c)``), whatever the cell: what models, decoders
        and the trainer's carried state use. ``initial`` None, or an entry None: zeros (or the
        learned state).

        ``resets`` ``(T, B)`` bool (``(B, T)`` if ``batch_first``): where true, that sequence
        starts again before that step, in every layer, from zeros (or the learned initial state),
        whatever ``initial`` held: a new document or episode begins in that stream. No gradient
        crosses a reset. The reverse direction reads each segment on its own.

        With ``recurrent_dropout`` each layer and direction draws, in training, one mask per
        sequence for the state entering the recurrent product; with ``zoneout``, one 0/1 draw per
        step and unit of every state (the constant ``zoneout`` at evaluation). The masks of the
        last call are in :attr:`last_masks`."""
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
        resets = check_resets(resets, steps, batch, self.batch_first)
        given = initial
        initial = self._initial_states(initial, batch)
        reset_states = self._initial_states(None, batch) if resets is not None else None

        layer_input = x
        D = self.num_directions
        reverse = (False, True)[:D]
        layers = []
        finals: list[State] = []
        self.last_masks = []
        for layer in range(self.num_layers):
            masks = self._draw_masks(steps, batch)
            self.last_masks.append(masks)
            dropout_cache = None
            if layer > 0:
                layer_input, dropout_cache = dropout_forward(layer_input, self.dropout, self.rng, self.training)
            suffixes = self.parameter_suffixes(layer)
            rows = slice(layer * D, (layer + 1) * D)
            # Both directions in one call: one input projection for both, and their states
            # written side by side, which is already the concatenated input of the next layer.
            layer_input, final, cache = recurrent_layer_forward(
                self.cell,
                layer_input,
                tuple(state[rows] for state in initial),
                tuple(self.params[f"W_xh{suffix}"] for suffix in suffixes),
                tuple(self.params.get(f"W_hh{suffix}") for suffix in suffixes),
                tuple(tuple(self.params[f"{bias}{suffix}"] for bias in self.cell.bias_names) for suffix in suffixes),
                lengths,
                reverse,
                resets,
                None if reset_states is None else tuple(state[rows] for state in reset_states),
                *masks,
            )
            layers.append((dropout_cache, cache))
            finals.append(final)
        H = self.state_size("h")
        outputs = [layer_input[..., d * H : (d + 1) * H] for d in range(D)]
        # The last layer's output already holds the directions side by side: concat is free.
        concatenated = D == 1 or self.merge_mode == "concat"
        out = layer_input if concatenated else merge_forward(outputs[0], outputs[1], self.merge_mode)
        # which initial states are the learned ones (a state given by the caller takes no part of their gradient)
        from_learned = tuple(self.learn_h0 and (given is None or given[k] is None) for k in range(len(initial)))
        self._cache = {"layers": layers, "last_outputs": outputs, "state_shapes": [state.shape for state in initial],
                       "resets": resets is not None, "from_learned": from_learned}
        final_states = tuple(finals[0][k] if self.num_layers == 1 else np.concatenate([f[k] for f in finals])
                             for k in range(len(self.cell.state_names)))
        if self.batch_first:
            out = out.transpose(1, 0, 2)
        return out, final_states

    def _draw_masks(self, steps: int, batch: int) -> tuple[tuple[np.ndarray, ...] | None, tuple[np.ndarray, ...] | None]:
        """One layer's ``(recurrent_masks, zoneout)`` for :func:`recurrent_layer_forward`: D inverted
        dropout masks ``(B, H)`` (training only), and per state the ``(D, T, B, H)`` zoneout draws
        (``(D, 1, 1, 1)`` of the constant ``zoneout`` at evaluation), or None where off."""
        D, H = self.num_directions, self.state_size("h")
        recurrent_masks = None
        if self.recurrent_dropout and self.training:
            keep = 1.0 - self.recurrent_dropout
            recurrent_masks = tuple((self.rng.random((batch, H)) < keep).astype(self.dtype) / self.dtype.type(keep)
                                    for _ in range(D))
        zoneout = None
        if self.zoneout and self.training:
            zoneout = tuple((self.rng.random((D, steps, batch, self.state_size(name))) < self.zoneout).astype(self.dtype)
                            for name in self.cell.state_names)
        elif self.zoneout:
            zoneout = tuple(np.full((D, 1, 1, 1), self.zoneout, self.dtype) for _ in self.cell.state_names)
        return recurrent_masks, zoneout

    def states_at(self, step: int) -> State:
        """The states after step ``step`` of the last :meth:`forward`, every layer, one ``(L, B, H)``
        array per name (copies): where truncated BPTT with a stride carries the state from, without
        running the steps again. One direction only (a reverse direction's state there has read the
        future). Call it before :meth:`backward`, which releases the forward's buffers."""
        cache = self._require_cache(self._cache)
        if self.bidirectional:
            raise ValueError("states_at: a bidirectional layer's reverse state at a step has read the steps after it")
        layers = cache["layers"]
        steps = layers[0][1].out.shape[0]
        if not 0 <= step < steps:
            raise ValueError(f"states_at: expected a step in 0..{steps - 1}, got {step}")
        return tuple(np.stack([layer.out[step] if name == "h" else layer.kept[0][self.cell.kept.index(name)][step]
                               for _, layer in layers]) for name in self.cell.state_names)

    def _size_name(self, name: str) -> str:
        return "proj_size" if name == "h" and self.proj_size else "hidden_size"

    def _initial_states(self, given: tuple[np.ndarray | None, ...] | None, batch: int) -> State:
        states = []
        for k, name in enumerate(self.cell.state_names):
            shape = (self.num_layers * self.num_directions, batch, self.state_size(name))
            value = None if given is None else given[k]
            if value is None:
                if self.learn_h0:
                    states.append(np.broadcast_to(self.params[f"{name}0"][:, None, :], shape))
                else:
                    states.append(np.zeros(shape, dtype=self.dtype))
                continue
            value = as_float_array(f"{name}0", value, self.dtype)
            check_shape(f"{name}0", value, shape, f"(num_layers * num_directions, B, {self._size_name(name)})")
            states.append(value)
        return tuple(states)

    # -- backward --------------------------------------------------------------------------
    def backward_states(
        self,
        dout: np.ndarray,
        dfinal: tuple[np.ndarray | None, ...] | None = None,
        input_grad: bool = True,
        h0_grad: bool = True,
    ) -> tuple[np.ndarray | None, State | None]:
        """:meth:`backward` with the states as tuples (see :meth:`forward_states`): ``dfinal``
        holds the final states' gradients in ``cell.state_names`` order, None or missing trailing
        entries for zeros (``(dh_n,)`` serves every cell). Returns ``dx`` and the initial states'
        gradients (None when ``h0_grad`` is False)."""
        cache = self._require_cache(self._cache)
        layers = cache["layers"]
        steps, batch = layers[0][1].out.shape[:2]
        legend = "(B, T, features)" if self.batch_first else "(T, B, features)"
        expected_out = (batch, steps, self.output_size) if self.batch_first else (steps, batch, self.output_size)
        dout = as_float_array("dout", dout, self.dtype, finite=False)
        check_shape("dout", dout, expected_out, f"{legend}, the shape of out")
        if self.batch_first:
            dout = dout.transpose(1, 0, 2)
        states = self.cell.state_names
        dfinal = () if dfinal is None else tuple(dfinal)
        if len(dfinal) > len(states):
            raise ValueError(f"dfinal: expected at most {len(states)} gradients, one per state {states}, "
                             f"got {len(dfinal)}")
        dfinal += (None,) * (len(states) - len(dfinal))
        checked = []
        for name, given, shape in zip(self.cell.state_names, dfinal, cache["state_shapes"]):
            if given is not None:
                given = as_float_array(f"d{name}_n", given, self.dtype, finite=False)
                check_shape(f"d{name}_n", given, shape,
                            f"(num_layers * num_directions, B, {self._size_name(name)}), the shape of {name}_n")
            checked.append(given)

        D = self.num_directions
        need_h0_grad = h0_grad or self.learn_h0
        dinitial = (tuple(np.empty(shape, dtype=self.dtype) for shape in cache["state_shapes"])
                    if need_h0_grad else None)
        # The learned initial state is also where every reset starts again from: it gathers both.
        reset_grads = (tuple(np.zeros(shape, dtype=self.dtype) for shape in cache["state_shapes"])
                       if self.learn_h0 and cache["resets"] else None)
        grad = dout
        if D == 2 and self.merge_mode != "concat":
            forward_out, reverse_out = cache["last_outputs"]
            grad = np.concatenate(merge_backward(dout, forward_out, reverse_out, self.merge_mode), axis=-1)
        parameters = ("W_xh", "W_hh", *self.cell.bias_names)
        for layer in range(self.num_layers - 1, -1, -1):
            dropout_cache, layer_cache = layers[layer]
            suffixes = self.parameter_suffixes(layer)
            rows = slice(layer * D, (layer + 1) * D)
            # Weight gradients are added straight into self.grads: no parameter-sized temporaries.
            # a cell without recurrent weights has no W_hh: the layer leaves that slot's empty arrays alone
            into = tuple([self.grads.get(f"{name}{suffix}", _NO_WEIGHT) for suffix in suffixes] for name in parameters)
            dx, dinitial_layer, _ = recurrent_layer_backward(
                grad, tuple(None if g is None else g[rows] for g in checked), layer_cache, into,
                input_grad=input_grad or layer > 0, h0_grad=need_h0_grad,
                reset_grads=None if reset_grads is None else tuple(g[rows] for g in reset_grads),
            )
            if dinitial is not None and dinitial_layer is not None:  # both there when need_h0_grad
                for array, value in zip(dinitial, dinitial_layer):
                    array[rows] = value
            if dx is not None:  # None only out of the first layer (the last one here), with input_grad False
                grad = dx = dropout_backward(dx, dropout_cache)
        if self.learn_h0 and dinitial is not None:  # learn_h0 implies need_h0_grad
            for k, (name, value) in enumerate(zip(self.cell.state_names, dinitial)):
                total = value.sum(axis=1) if cache["from_learned"][k] else np.zeros_like(self.params[f"{name}0"])
                self.accumulate(f"{name}0", total if reset_grads is None else total + reset_grads[k].sum(axis=1))
        self._cache = None
        if self.batch_first and dx is not None:
            dx = dx.transpose(1, 0, 2)
        return dx, dinitial if h0_grad else None


class SingleStateLayer(RecurrentLayer):
    """A layer whose cell carries one state, ``h`` (the Elman RNN and the GRU): the public
    ``forward(x, h0=None, lengths=None, resets=None) -> (out, h_n)`` and ``backward(dout, dh_n=None,
    input_grad=True, h0_grad=True) -> (dx, dh0)`` of :class:`rnnkit.nn.RNN`."""

    def forward(
        self, x: np.ndarray, h0: np.ndarray | None = None, lengths: np.ndarray | None = None,
        resets: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        out, (h_n,) = self.forward_states(x, None if h0 is None else (h0,), lengths, resets)
        return out, h_n

    def backward(
        self, dout: np.ndarray, dh_n: np.ndarray | None = None, input_grad: bool = True, h0_grad: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        dx, dinitial = self.backward_states(dout, (dh_n,), input_grad, h0_grad)
        return dx, None if dinitial is None else dinitial[0]


class MinimalLayer(SingleStateLayer):
    """A layer of a cell whose gates read the input alone (:class:`rnnkit.nn.MinGRU`,
    :class:`rnnkit.nn.MinLSTM`): the arguments of :class:`rnnkit.nn.RNN` without
    ``nonlinearity``, and ``scan`` (``"sequential"`` or ``"parallel"``, log space) for the
    subclass's ``make_cell``; ``recurrent_dropout`` is refused (there is no recurrent product)."""

    make_cell: Callable[[str], Cell]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = False,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
        merge_mode: str = "concat",
        learn_h0: bool = False,
        scan: str = "sequential",
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        self.scan = scan
        super().__init__(type(self).make_cell(scan), input_size, hidden_size, num_layers, bidirectional, dropout,
                         batch_first, dtype, seed, merge_mode, learn_h0, recurrent_dropout, zoneout)
