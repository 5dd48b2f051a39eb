"""The operators :func:`rnnkit.interop.onnx.run` executes, as one table: ``OPS[op_type]``.

Two parts. The recurrent ops ``RNN``, ``LSTM`` and ``GRU`` with the whole ONNX spec (opset 7 to
22): ``layout``, ``direction``, ``sequence_lens``, initial states, every activation with its
alpha and beta, ``clip``, ``input_forget``, peepholes and ``linear_before_reset``. And the plain
ops rnnkit's own exporter emits around them (shapes, slicing, arithmetic, reductions), each a
NumPy one-liner with ONNX's semantics for opset 13 on (``axes`` as an input; the attribute form
of older opsets is accepted too).

Every entry is ``function(inputs, attributes) -> outputs``: ``inputs`` is the node's input list
with ``None`` for an absent optional input, ``attributes`` a dict of plain Python values (strings
decoded, tensors as arrays), ``outputs`` the list of all the op's outputs, which the executor
binds to the names the node gives (skipping ``""``). Errors name the input or attribute; the
executor prefixes the op and node. Float arithmetic stays in the input dtype (float32 stays
float32).

Recurrent ops, letters: T time steps (``seq_length``), B batch, I input features, H hidden units
(``hidden_size``), D directions (2 if bidirectional else 1), G gate blocks (RNN 1, LSTM 4, GRU 3).
Inside, everything is time-major: ``X (T, B, I)``, ``Y (T, D, B, H)``, ``Y_h (D, B, H)``; layout 1
(batch first: ``X (B, T, I)``, ``Y (B, T, D, H)``, ``Y_h (B, D, H)``) is transposed at the boundary.

Two paths compute the same thing:

* **On rnnkit's kernels**, when a node's attributes are what rnnkit's own cells compute (an RNN
  with Tanh, Relu or Sigmoid; an LSTM with the default activations, no peepholes and no
  ``input_forget``; a GRU with the default activations and ``linear_before_reset=1``; no ``clip``;
  float32 or float64; every length in 1..T): the gate blocks are restacked to rnnkit's layout
  (LSTM i, f, g, o from ONNX's i, o, f, c; GRU r, z, n from z, r, h) and
  :func:`rnnkit.functional.recurrent.recurrent_layer_forward` runs the node, compiled where
  ``rnnkit._native`` is loaded.
* **The general path**: the spec's equations in plain NumPy, for every attribute. The inputs of
  all steps are projected in one matrix product before the loop; each step adds the recurrent
  product and does the gate math.

Where the spec leaves a choice open, the executor does what onnxruntime's CPU kernels do (read
from their source, ``onnxruntime/core/providers/cpu/rnn/``, and checked against onnxruntime 1.32
by ``tests/interop/onnx/test_executor.py``):

* ``activation_alpha`` / ``activation_beta`` are consumed in the order of ``activations`` (the
  forward direction's, then the reverse's), each activation taking the next alpha only if it uses
  one (Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu) and the next beta only if
  it uses one (Affine, ScaledTanh, HardSigmoid); values left over are ignored; an activation that
  finds its list used up gets its default (``rnn_helpers.cc``, ``ActivationFuncs``).
* ``clip`` bounds the pre-activation of every gate (bias and peephole terms included); the LSTM's
  cell state itself is not clipped. ``input_forget`` couples the gates as ``f = 1 - i``.
* A sequence of length 0 gives zeros: ``Y`` at every step, and ``Y_h`` / ``Y_c`` too, whatever
  the initial state.

One deliberate difference: the defaults of alpha and beta are those of the ONNX operators of the
same name, as the spec says: LeakyRelu 0.01, HardSigmoid 0.2 and 0.5, Elu 1.0, ThresholdedRelu
1.0, and for the two that were experimental operators (still onnxruntime's contrib ops) Affine 1.0
and 0.0, ScaledTanh 1.0 and 1.0. onnxruntime's recurrent kernels agree on the first three and use
0 for the other three: a node that leaves ThresholdedRelu, Affine or ScaledTanh without its value
computes differently there.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial, reduce
from typing import Any, NamedTuple

import numpy as np

from rnnkit.functional.activations import sigmoid_forward
from rnnkit.functional.cells import Cell
from rnnkit.functional.elman import elman_cell
from rnnkit.functional.gru import GRU_CELL
from rnnkit.functional.lstm import LSTM_CELL
from rnnkit.functional.recurrent import flip_sequences, recurrent_layer_forward
from rnnkit.interop.onnx._proto import onnx_module
from rnnkit.interop.onnx.gates import FROM_ONNX, reorder_gates

Inputs = Sequence["np.ndarray | None"]
Attributes = dict[str, Any]


def _input(inputs: Inputs, index: int) -> np.ndarray | None:
    """Input ``index``, or None when the node leaves it out (``""`` or a shorter list)."""
    return inputs[index] if index < len(inputs) else None


def _required(inputs: Inputs, index: int) -> np.ndarray:
    """Input ``index``, one the op's schema requires. Cast, not checked: a graph that leaves it
    out fails inside the op, on the None (an error of NumPy's or Python's)."""
    return typing.cast(np.ndarray, inputs[index])


def _all_required(inputs: Inputs) -> Sequence[np.ndarray]:
    """Every input, for the ops whose inputs are all required; unchecked, as :func:`_required`."""
    return typing.cast("Sequence[np.ndarray]", inputs)


# -- activations of the recurrent ops -----------------------------------------------------------
# Each takes (x, alpha, beta); those that use neither ignore them. Written so that no input
# overflows: the padding rows of a step are computed too (and then discarded).


def _sigmoid(x: np.ndarray, alpha: float | None, beta: float | None) -> np.ndarray:
    return sigmoid_forward(x)  # (1 + tanh(x / 2)) / 2: no exp overflow for large |x|


def _softplus(x: np.ndarray, alpha: float | None, beta: float | None) -> np.ndarray:
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)  # log(1 + e^x) without overflow


def _elu(x: np.ndarray, alpha: float, beta: float | None) -> np.ndarray:
    # expm1 of min(x, 0): the branch not taken must not overflow either
    return np.where(x >= 0, x, alpha * np.expm1(np.minimum(x, 0)))


class ActivationKind(NamedTuple):
    """A row of :data:`RECURRENT_ACTIVATIONS`: the function and its default alpha and beta,
    None for a parameter the function does not take (and so does not consume)."""

    name: str  # the spelling of the ONNX spec
    function: Callable[..., np.ndarray]
    alpha: float | None
    beta: float | None


RECURRENT_ACTIVATIONS: dict[str, ActivationKind] = {
    kind.name.lower(): kind
    for kind in (
        ActivationKind("Relu", lambda x, a, b: np.maximum(x, 0), None, None),
        ActivationKind("Tanh", lambda x, a, b: np.tanh(x), None, None),
        ActivationKind("Sigmoid", _sigmoid, None, None),
        ActivationKind("Affine", lambda x, a, b: a * x + b, 1.0, 0.0),
        ActivationKind("LeakyRelu", lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
        # x > alpha as the ThresholdedRelu operator and onnxruntime have it (the RNN doc says >=)
        ActivationKind("ThresholdedRelu", lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
        ActivationKind("ScaledTanh", lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
        ActivationKind("HardSigmoid", lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
        ActivationKind("Elu", _elu, 1.0, None),
        ActivationKind("Softsign", lambda x, a, b: x / (1 + np.abs(x)), None, None),
        ActivationKind("Softplus", _softplus, None, None),
    )
}


@dataclass(frozen=True)
class OnnxActivation:
    """One activation of a recurrent node, alpha and beta resolved: ``OnnxActivation("Elu", 1.0,
    None)(x)``. ``x`` of any shape; the result has its shape and dtype."""

    name: str
    alpha: float | None = None
    beta: float | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = RECURRENT_ACTIVATIONS[self.name.lower()].function(x, self.alpha, self.beta)
        return y.astype(x.dtype, copy=False)


DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh")}
_ACTIVATION_ROLES = {"RNN": "f", "LSTM": "f, g, h", "GRU": "f, g"}


def resolve_activations(
    op: str,
    names: Sequence[str] | None,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
    directions: int,
) -> tuple[tuple[OnnxActivation, ...], ...]:
    """The activations of each direction of an ``op`` node, with alpha and beta resolved.

    ``names`` (None: the op's defaults) lists the forward direction's functions, then the
    reverse's: 1 per direction for RNN (f), 3 for LSTM (f, g, h), 2 for GRU (f, g); names are
    case-insensitive. ``alphas`` and ``betas`` are consumed in that order, each function taking
    the next value only for a parameter it uses, its default once the list is used up.

    Example, a bidirectional RNN: Tanh takes no alpha, so the first alpha is LeakyRelu's::

        >>> forward, reverse = resolve_activations("RNN", ["Tanh", "LeakyRelu"], [0.5], None, 2)
        >>> forward, reverse
        ((OnnxActivation(name='Tanh', alpha=None, beta=None),), (OnnxActivation(name='LeakyRelu', alpha=0.5, beta=None),))
    """
    per_direction = len(DEFAULT_ACTIVATIONS[op])
    names = list(DEFAULT_ACTIVATIONS[op] * directions if names is None else names)
    if op == "RNN" and directions == 1 and len(names) == 2:
        # The schema's own default for RNN is ["Tanh", "Tanh"] whatever the direction; a
        # one-direction node reads the first entry (as onnxruntime does).
        names = names[:1]
    if len(names) != per_direction * directions:
        raise ValueError(
            f"activations: {op} needs {per_direction} per direction ({_ACTIVATION_ROLES[op]}), "
            f"{per_direction * directions} for {directions} direction(s), got {len(names)}: {names}"
        )
    remaining_alphas, remaining_betas = iter(alphas or ()), iter(betas or ())
    resolved = []
    for name in names:
        kind = RECURRENT_ACTIVATIONS.get(str(name).lower())
        if kind is None:
            known = ", ".join(entry.name for entry in RECURRENT_ACTIVATIONS.values())
            raise ValueError(f"activations: {name!r} is not an activation of the ONNX recurrent ops ({known})")
        alpha = None if kind.alpha is None else float(next(remaining_alphas, kind.alpha))
        beta = None if kind.beta is None else float(next(remaining_betas, kind.beta))
        resolved.append(OnnxActivation(kind.name, alpha, beta))
    return tuple(tuple(resolved[d * per_direction : (d + 1) * per_direction]) for d in range(directions))


# -- a recurrent node, validated ----------------------------------------------------------------

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
DIRECTIONS = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}
_GATE_NAMES = {"RNN": "i", "LSTM": "i, o, f, c", "GRU": "z, r, h"}
RECURRENT_ATTRIBUTES = {
    "RNN": ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout"),
    "LSTM": ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
             "input_forget"),
    "GRU": ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
            "linear_before_reset"),
}
_FLOAT_TYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class RecurrentNode:
    """An ``RNN`` / ``LSTM`` / ``GRU`` node's inputs and attributes, checked, time-major and in
    the dtype it computes in (float64 for float64 inputs, else float32).

    x: (T, B, I). W: (D, G*H, I) and R: (D, G*H, H), gate blocks in ONNX's order. Wb, Rb: (D, G*H)
    (zeros when ``B`` is absent). lengths: (B,) int64 in 0..T. initial: one (D, B, H) per state,
    ``(h,)`` or ``(h, c)``. peepholes: (D, 3, H) rows i, o, f, or None. activations: per
    direction, see :func:`resolve_activations`. reverse: per direction.
    """

    op: str
    x: np.ndarray
    W: np.ndarray
    R: np.ndarray
    Wb: np.ndarray
    Rb: np.ndarray
    lengths: np.ndarray
    initial: tuple[np.ndarray, ...]
    peepholes: np.ndarray | None
    activations: tuple[tuple[OnnxActivation, ...], ...]
    reverse: tuple[bool, ...]
    clip: float | None
    input_forget: bool
    linear_before_reset: bool
    batch_first: bool
    out_dtype: np.dtype

    @property
    def hidden_size(self) -> int:
        return self.R.shape[2]


def parse_recurrent_node(op: str, inputs: Inputs, attributes: Attributes) -> RecurrentNode:
    """Check an ``op`` node's inputs ``X, W, R, B, sequence_lens, initial_h`` (and for the LSTM
    ``initial_c, P``) against its attributes and each other; errors name the input or attribute
    and say what was expected."""
    layout = int(attributes.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"layout: expected 0 (X is (seq_length, batch_size, input_size)) or 1 "
                         f"(X is (batch_size, seq_length, input_size)), got {layout}")
    direction = attributes.get("direction", "forward")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
    reverse = DIRECTIONS[direction]
    D, G = len(reverse), GATES[op]
    batch_first = layout == 1

    names = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if op == "LSTM" else [])
    if len(inputs) > len(names):
        raise ValueError(f"{op} takes at most {len(names)} inputs ({', '.join(names)}), got {len(inputs)}")
    given = {name: _input(inputs, k) for k, name in enumerate(names)}
    for name in ("X", "W", "R"):
        if given[name] is None:
            raise ValueError(f"{name}: {op} needs input {names.index(name)} ({name}), which the node leaves out")

    X = np.asarray(given["X"])
    if X.dtype.name not in _FLOAT_TYPES:
        raise ValueError(f"X: expected a float tensor ({', '.join(_FLOAT_TYPES)}), got {X.dtype}")
    legend = "(batch_size, seq_length, input_size)" if batch_first else "(seq_length, batch_size, input_size)"
    if X.ndim != 3:
        raise ValueError(f"X: expected rank 3, {legend}, got shape {X.shape}")
    compute = np.dtype(np.float64 if X.dtype == np.float64 else np.float32)
    for name in ("W", "R", "B", "initial_h", "initial_c", "P"):
        value = given.get(name)
        if value is not None and np.asarray(value).dtype != X.dtype:
            raise ValueError(f"{name}: expected X's element type {X.dtype}, got {np.asarray(value).dtype}")
    x = (X.transpose(1, 0, 2) if batch_first else X).astype(compute)
    steps, batch, input_size = x.shape

    W, R = np.asarray(given["W"], compute), np.asarray(given["R"], compute)
    if R.ndim != 3:
        raise ValueError(f"R: expected rank 3, (num_directions, {G}*hidden_size, hidden_size), got shape {R.shape}")
    default_hidden: int = R.shape[2]  # an int: with NumPy's Any, mypy picks get()'s Optional overload
    H = int(attributes.get("hidden_size", default_hidden))
    if H < 1:
        raise ValueError(f"hidden_size: expected a positive number of hidden units, got {H}")
    blocks = f"{G}*hidden_size" if G > 1 else "hidden_size"
    for name, array, last in (("W", W, input_size), ("R", R, H)):
        expected = (D, G * H, last)
        if array.shape != expected:
            what = "input_size" if name == "W" else "hidden_size"
            raise ValueError(
                f"{name}: expected shape {expected}, (num_directions, {blocks}, {what}) with direction "
                f"{direction!r}, hidden_size {H} and input_size {input_size} (gates {_GATE_NAMES[op]}), "
                f"got {array.shape}"
            )

    if given["B"] is None:
        bias = np.zeros((D, 2 * G * H), compute)
    else:
        bias = np.asarray(given["B"], compute)
        if bias.shape != (D, 2 * G * H):
            raise ValueError(f"B: expected shape {(D, 2 * G * H)}, (num_directions, {2 * G}*hidden_size) "
                             f"holding [Wb, Rb], got {bias.shape}")

    lengths = _sequence_lengths(given["sequence_lens"], batch, steps)
    states = ("initial_h", "initial_c") if op == "LSTM" else ("initial_h",)
    initial = tuple(_initial_state(name, given[name], D, batch, H, batch_first, compute) for name in states)

    peepholes = None
    if given.get("P") is not None:
        P = np.asarray(given["P"], compute)
        if P.shape != (D, 3 * H):
            raise ValueError(f"P: expected shape {(D, 3 * H)}, (num_directions, 3*hidden_size) holding the "
                             f"peepholes i, o, f, got {P.shape}")
        peepholes = P.reshape(D, 3, H)

    clip = attributes.get("clip")
    if clip is not None:
        clip = float(clip)
        if not clip > 0:
            raise ValueError(f"clip: expected a positive threshold, got {clip}")
    activations = resolve_activations(op, attributes.get("activations"), attributes.get("activation_alpha"),
                                      attributes.get("activation_beta"), D)
    return RecurrentNode(
        op, x, W, R, bias[:, : G * H], bias[:, G * H :], lengths, initial, peepholes, activations, reverse, clip,
        _flag(attributes, "input_forget"), _flag(attributes, "linear_before_reset"), batch_first, X.dtype,
    )


def _flag(attributes: Attributes, name: str) -> bool:
    value = int(attributes.get(name, 0))
    if value not in (0, 1):
        raise ValueError(f"{name}: expected 0 or 1, got {value}")
    return bool(value)


def _sequence_lengths(sequence_lens: np.ndarray | None, batch: int, steps: int) -> np.ndarray:
    """``sequence_lens`` as int64 ``(B,)`` in 0..T; absent means every sequence has T steps."""
    if sequence_lens is None:
        return np.full(batch, steps, dtype=np.int64)
    lengths = np.asarray(sequence_lens)
    if lengths.dtype.kind not in "iu":
        raise ValueError(f"sequence_lens: expected integers (int32), got {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"sequence_lens: expected shape ({batch},), one length per sequence, got {lengths.shape}")
    if batch and (lengths.min() < 0 or lengths.max() > steps):
        bad = int(np.flatnonzero((lengths < 0) | (lengths > steps))[0])
        raise ValueError(f"sequence_lens: expected every length in 0..{steps} (seq_length), "
                         f"got sequence_lens[{bad}] = {int(lengths[bad])}")
    return lengths.astype(np.int64)


def _initial_state(name: str, value: np.ndarray | None, directions: int, batch: int, hidden: int,
                   batch_first: bool, dtype: np.dtype) -> np.ndarray:
    """An initial state as ``(D, B, H)``; zeros when absent."""
    if value is None:
        return np.zeros((directions, batch, hidden), dtype)
    state = np.asarray(value, dtype)
    expected = (batch, directions, hidden) if batch_first else (directions, batch, hidden)
    if state.shape != expected:
        legend = ("(batch_size, num_directions, hidden_size)" if batch_first
                  else "(num_directions, batch_size, hidden_size)")
        raise ValueError(f"{name}: expected shape {expected}, {legend}, got {state.shape}")
    return state.transpose(1, 0, 2) if batch_first else state


# -- the general path: the spec's equations -----------------------------------------------------


def _clip(a: np.ndarray, threshold: float | None) -> np.ndarray:
    return a if threshold is None else np.clip(a, -threshold, threshold)


def rnn_step(projected: np.ndarray, h_prev: np.ndarray, R: np.ndarray, activations: tuple[OnnxActivation, ...],
             clip: float | None) -> tuple[np.ndarray]:
    """``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)``; ``projected`` (B, H) holds ``X_t W^T + Wb + Rb``,
    ``h_prev`` (B, H), ``R`` (H, H). Returns ``(H_t,)``."""
    (f,) = activations
    return (f(_clip(projected + h_prev @ R.T, clip)),)


def lstm_step(projected: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, R: np.ndarray,
              peepholes: np.ndarray | None, activations: tuple[OnnxActivation, ...], clip: float | None,
              input_forget: bool) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step (gate blocks i, o, f, c)::

        i = f(X_t W_i^T + H_{t-1} R_i^T + P_i * C_{t-1} + b_i)
        f = f(X_t W_f^T + H_{t-1} R_f^T + P_f * C_{t-1} + b_f)      (1 - i with input_forget)
        c = g(X_t W_c^T + H_{t-1} R_c^T + b_c)
        C_t = f * C_{t-1} + i * c
        o = f(X_t W_o^T + H_{t-1} R_o^T + P_o * C_t + b_o)
        H_t = o * h(C_t)

    ``projected`` (B, 4H) holds ``X_t W^T + Wb + Rb``; ``h_prev``, ``c_prev`` (B, H); ``R`` (4H, H);
    ``peepholes`` (3, H) rows i, o, f, or None. ``clip`` bounds each pre-activation. Returns
    ``(H_t, C_t)``.
    """
    f, g, h = activations
    a_i, a_o, a_f, a_c = np.split(projected + h_prev @ R.T, 4, axis=1)
    if peepholes is not None:
        p_i, p_o, p_f = peepholes
        a_i, a_f = a_i + p_i * c_prev, a_f + p_f * c_prev
    i = f(_clip(a_i, clip))
    forget = 1 - i if input_forget else f(_clip(a_f, clip))
    c = forget * c_prev + i * g(_clip(a_c, clip))
    if peepholes is not None:
        a_o = a_o + p_o * c  # the output gate looks at the new cell state
    o = f(_clip(a_o, clip))
    return o * h(c), c


def gru_step(projected: np.ndarray, h_prev: np.ndarray, R: np.ndarray, Rb_h: np.ndarray,
             activations: tuple[OnnxActivation, ...], clip: float | None,
             linear_before_reset: bool) -> tuple[np.ndarray]:
    """One GRU step (gate blocks z, r, h)::

        z = f(X_t W_z^T + H_{t-1} R_z^T + Wb_z + Rb_z)
        r = f(X_t W_r^T + H_{t-1} R_r^T + Wb_r + Rb_r)
        h = g(X_t W_h^T + (r * H_{t-1}) R_h^T + Rb_h + Wb_h)     linear_before_reset = 0
        h = g(X_t W_h^T + r * (H_{t-1} R_h^T + Rb_h) + Wb_h)     linear_before_reset = 1
        H_t = (1 - z) * h + z * H_{t-1}

    ``projected`` (B, 3H) holds ``X_t W^T + Wb`` plus ``Rb`` on the z and r blocks, and on the h
    block too unless ``linear_before_reset`` (then ``Rb_h`` (H,) goes inside the reset product).
    ``h_prev`` (B, H), ``R`` (3H, H). Returns ``(H_t,)``.
    """
    f, g = activations
    H = h_prev.shape[1]
    a_zr = projected[:, : 2 * H] + h_prev @ R[: 2 * H].T
    z, r = f(_clip(a_zr[:, :H], clip)), f(_clip(a_zr[:, H:], clip))
    if linear_before_reset:
        a_h = projected[:, 2 * H :] + r * (h_prev @ R[2 * H :].T + Rb_h)
    else:
        a_h = projected[:, 2 * H :] + (r * h_prev) @ R[2 * H :].T
    return ((1 - z) * g(_clip(a_h, clip)) + z * h_prev,)


def scan(step: Callable[..., tuple[np.ndarray, ...]], projected: np.ndarray, initial: tuple[np.ndarray, ...],
         lengths: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Run ``step(projected[t], *states) -> states`` over the valid steps of every sequence.

    projected: (T, B, G*H) in scan order; initial: one (B, H) per state; lengths: (B,) in 0..T,
    padding a suffix of each sequence. Returns the hidden state (the first state) at every step
    (T, B, H), exactly 0 at padding, and the final states (B, H) each: the last valid step's, or 0
    for a sequence of length 0 (onnxruntime's answer, rather than the initial state).
    """
    steps, batch = projected.shape[:2]
    outputs = np.zeros((steps, batch, initial[0].shape[1]), projected.dtype)
    states = initial
    for t in range(int(lengths.max(initial=0))):
        valid = (t < lengths)[:, None]
        # A sequence past its end keeps its state, so that after the loop each holds its last
        # valid step's: no gather needed, and the reverse direction is the same loop on flipped input.
        states = tuple(np.where(valid, new, old) for new, old in zip(step(projected[t], *states), states))
        outputs[t] = np.where(valid, states[0], 0)
    empty = (lengths == 0)[:, None]
    return outputs, tuple(np.where(empty, 0, state).astype(projected.dtype) for state in states)


def run_general(node: RecurrentNode) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The spec's equations for every attribute. Returns ``Y`` (T, D, B, H) and the final states,
    one (D, B, H) per state."""
    steps, batch = node.x.shape[:2]
    H, G = node.hidden_size, GATES[node.op]
    Y = np.zeros((steps, len(node.reverse), batch, H), node.x.dtype)
    finals = []
    for d, reverse in enumerate(node.reverse):
        # Reading each sequence backwards from its own last valid step: flip the valid prefix of
        # each (rnnkit's flip_sequences), scan forward, flip back.
        x = flip_sequences(node.x, node.lengths) if reverse and steps else node.x
        input_bias = node.Wb[d] + node.Rb[d]
        if node.op == "GRU" and node.linear_before_reset:
            input_bias[2 * H :] = node.Wb[d, 2 * H :]  # Rb_h belongs inside the reset product
        projected = (x.reshape(steps * batch, x.shape[2]) @ node.W[d].T + input_bias).reshape(steps, batch, G * H)
        common = {"R": node.R[d], "activations": node.activations[d], "clip": node.clip}
        step: Callable[..., tuple[np.ndarray, ...]]
        if node.op == "RNN":
            step = partial(rnn_step, **common)
        elif node.op == "LSTM":
            peepholes = None if node.peepholes is None else node.peepholes[d]
            step = partial(lstm_step, peepholes=peepholes, input_forget=node.input_forget, **common)
        else:
            step = partial(gru_step, Rb_h=node.Rb[d, 2 * H :], linear_before_reset=node.linear_before_reset, **common)
        outputs, final = scan(step, projected, tuple(state[d] for state in node.initial), node.lengths)
        Y[:, d] = flip_sequences(outputs, node.lengths) if reverse and steps else outputs
        finals.append(final)
    return Y, tuple(np.stack(states) for states in zip(*finals))


# -- the fast path: rnnkit's kernels ------------------------------------------------------------

def rnnkit_cell(node: RecurrentNode) -> Cell | None:
    """The rnnkit cell that computes ``node`` exactly, or None when only the general path can
    (other activations, peepholes, ``input_forget``, ``linear_before_reset=0``, ``clip``, a dtype
    other than float32/float64, a sequence of length 0, no steps or an empty batch)."""
    if node.out_dtype not in (np.float32, np.float64) or node.clip is not None:
        return None
    if node.x.shape[0] == 0 or node.x.shape[1] == 0 or node.lengths.min() < 1:
        return None  # rnnkit's layers take lengths in 1..T
    functions = {tuple(activation.name for activation in direction) for direction in node.activations}
    if len(functions) != 1:
        return None  # one rnnkit call runs both directions with one cell
    (names,) = functions
    if node.op == "RNN":
        return elman_cell(names[0].lower()) if names[0] in ("Tanh", "Relu", "Sigmoid") else None
    if node.op == "LSTM":
        plain = names == DEFAULT_ACTIVATIONS["LSTM"] and not node.input_forget
        return LSTM_CELL if plain and (node.peepholes is None or not node.peepholes.any()) else None
    return GRU_CELL if names == DEFAULT_ACTIVATIONS["GRU"] and node.linear_before_reset else None


def run_on_rnnkit_kernels(node: RecurrentNode, cell: Cell) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Run ``node`` with :func:`recurrent_layer_forward`, both directions in one call. Returns
    ``Y`` (T, D, B, H) and the final states, one (D, B, H) per state."""
    order = FROM_ONNX[node.op]  # LSTM i, f, g, o from i, o, f, c; GRU r, z, n from z, r, h
    D = len(node.reverse)
    biases: tuple[tuple[np.ndarray, ...], ...]
    W_xh = tuple(reorder_gates(node.W[d], order) for d in range(D))
    W_hh = tuple(reorder_gates(node.R[d], order) for d in range(D))
    if node.op == "GRU":  # two biases: b_hh's n block sits inside the reset product
        biases = tuple((reorder_gates(node.Wb[d], order), reorder_gates(node.Rb[d], order)) for d in range(D))
    else:
        biases = tuple((reorder_gates(node.Wb[d] + node.Rb[d], order),) for d in range(D))
    steps, batch = node.x.shape[:2]
    lengths = None if (node.lengths == steps).all() else node.lengths  # None: no masking at all
    out, finals, _ = recurrent_layer_forward(cell, node.x, node.initial, W_xh, W_hh, biases, lengths, node.reverse)
    # out (T, B, D*H) holds the directions side by side; ONNX's Y is (T, D, B, H)
    return out.reshape(steps, batch, D, node.hidden_size).transpose(0, 2, 1, 3), finals


def recurrent(op: str, inputs: Inputs, attributes: Attributes, *,
              use_rnnkit_kernels: bool = True) -> list[np.ndarray]:
    """Run one ``op`` node (``"RNN"``, ``"LSTM"`` or ``"GRU"``): ``[Y, Y_h]``, and ``Y_c`` for
    the LSTM, in the node's layout and X's dtype. ``use_rnnkit_kernels=False`` forces the
    general path (what the tests compare the fast path with)."""
    node = parse_recurrent_node(op, inputs, attributes)
    cell = rnnkit_cell(node) if use_rnnkit_kernels else None
    Y, finals = run_general(node) if cell is None else run_on_rnnkit_kernels(node, cell)
    if node.batch_first:
        Y, finals = Y.transpose(2, 0, 1, 3), tuple(state.transpose(1, 0, 2) for state in finals)
    return [np.ascontiguousarray(array, node.out_dtype) for array in (Y, *finals)]


# -- the plain ops --------------------------------------------------------------------------------


def _ints(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).ravel()]


def _axes(inputs: Inputs, index: int, attributes: Attributes) -> list[int] | None:
    """``axes`` from input ``index`` (opset 13 on, 18 for some reductions) or, in older graphs,
    the attribute; None when neither is given."""
    given = _input(inputs, index)
    if given is not None:
        return _ints(given)
    return list(attributes["axes"]) if "axes" in attributes else None


def constant(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    """The tensor of the one value attribute the node carries."""
    if len(attributes) != 1:
        raise ValueError(f"Constant needs exactly one value attribute, got {sorted(attributes) or 'none'}")
    (name, value), = attributes.items()
    dtype = {"value": None, "value_float": np.float32, "value_floats": np.float32,
             "value_int": np.int64, "value_ints": np.int64}[name]
    return [np.array(value, dtype=dtype)]


def cast(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    """To the element type ``to`` (an ONNX TensorProto type). ``saturate`` only concerns float8
    types, which NumPy has not: accepted and nothing to do."""
    return [_required(inputs, 0).astype(onnx_module().helper.tensor_dtype_to_np_dtype(int(attributes["to"])))]


def shape(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    # ONNX clamps start and end into [0, rank] after adding rank to negatives, as Python's slices do
    sizes = _required(inputs, 0).shape
    return [np.array(sizes[attributes.get("start", 0) : attributes.get("end")], dtype=np.int64)]


def slice_(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    """``data[starts:ends:steps]`` along ``axes``; ONNX's clamping of out-of-range starts and ends
    is Python's. Inputs since opset 10, attributes before."""
    data = _required(inputs, 0)
    if len(inputs) > 1:
        starts, ends = _ints(inputs[1]), _ints(inputs[2])
        given_axes, given_steps = _input(inputs, 3), _input(inputs, 4)
    else:
        starts, ends = attributes["starts"], attributes["ends"]
        given_axes, given_steps = attributes.get("axes"), None
    axes: Sequence[int] = range(len(starts)) if given_axes is None else _ints(given_axes)
    steps = [1] * len(starts) if given_steps is None else _ints(given_steps)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step == 0:
            raise ValueError("steps: a slice step cannot be 0")
        index[axis % data.ndim] = slice(int(start), int(end), int(step))
    return [data[tuple(index)]]


def squeeze(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    axes, data = _axes(inputs, 1, attributes), _required(inputs, 0)
    return [np.squeeze(data) if axes is None else np.squeeze(data, axis=tuple(axes))]


def unsqueeze(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    # negative axes count from the end of the *output*, as NumPy's expand_dims does
    data = _required(inputs, 0)
    # Unsqueeze requires axes: without them tuple(None) raises a TypeError, which the executor reports
    axes = typing.cast("list[int]", _axes(inputs, 1, attributes))
    return [np.expand_dims(data, tuple(axes))]


def split(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    """Along ``axis`` into the sizes of ``split`` (input since opset 13, attribute before), or
    into ``num_outputs`` parts, the last smaller if the axis does not divide evenly (the executor
    gives ``num_outputs`` as the node's output count when neither is set)."""
    data, axis = _required(inputs, 0), int(attributes.get("axis", 0))
    given = _input(inputs, 1)
    sizes: list[int] | None = _ints(given) if given is not None else attributes.get("split")
    if sizes is None:
        parts, length = int(attributes["num_outputs"]), data.shape[axis]
        chunk = -(-length // parts)
        sizes = [chunk] * (parts - 1) + [length - chunk * (parts - 1)]
    if sum(sizes) != data.shape[axis]:
        raise ValueError(f"split: sizes {list(sizes)} do not add up to the {data.shape[axis]} entries of axis {axis}")
    return np.split(data, np.cumsum(sizes)[:-1], axis=axis)


def reshape(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    """To ``shape``: -1 inferred, 0 copies the input's size on that axis unless ``allowzero``."""
    data, target = _required(inputs, 0), _ints(inputs[1])
    if not attributes.get("allowzero", 0):
        target = [data.shape[axis] if size == 0 else size for axis, size in enumerate(target)]
    return [data.reshape(target)]


def expand(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    # ONNX broadcasts both ways: a 1 in ``shape`` keeps the input's size
    data = _required(inputs, 0)
    return [np.array(np.broadcast_to(data, np.broadcast_shapes(data.shape, tuple(_ints(inputs[1])))))]


def range_(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    start, limit, delta = (np.asarray(value).item() for value in inputs[:3])
    return [np.arange(start, limit, delta, dtype=np.asarray(inputs[0]).dtype)]


def divide(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    a, b = _all_required(inputs)
    if a.dtype.kind in "iu":  # ONNX's integer division truncates toward zero, NumPy's // floors
        return [(np.abs(a) // np.abs(b) * np.sign(a) * np.sign(b)).astype(a.dtype)]
    return [np.divide(a, b)]


def gemm(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    """``alpha * A' B' + beta * C``, ``A'`` = ``A.T`` if ``transA`` (likewise B); C broadcasts."""
    A, B, C = _required(inputs, 0), _required(inputs, 1), _input(inputs, 2)
    A = A.T if attributes.get("transA", 0) else A
    B = B.T if attributes.get("transB", 0) else B
    Y = attributes.get("alpha", 1.0) * (A @ B)
    if C is not None:
        Y = Y + attributes.get("beta", 1.0) * C
    return [Y.astype(A.dtype, copy=False)]


def softmax(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    x, axis = _required(inputs, 0), attributes.get("axis", -1)
    exp = np.exp(x - x.max(axis=axis, keepdims=True))  # shifted: no overflow
    return [exp / exp.sum(axis=axis, keepdims=True)]


def log_softmax(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    x, axis = _required(inputs, 0), attributes.get("axis", -1)
    shifted = x - x.max(axis=axis, keepdims=True)
    return [shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))]


def _reduction(function: Callable[..., np.ndarray]) -> Callable[[Inputs, Attributes], list[np.ndarray]]:
    """A Reduce* op: over ``axes`` (input or attribute; none or empty: every axis, or nothing at
    all with ``noop_with_empty_axes``), keeping the reduced axes as size 1 if ``keepdims``."""

    def reduce_op(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
        data, axes = _required(inputs, 0), _axes(inputs, 1, attributes)
        if not axes and attributes.get("noop_with_empty_axes", 0):
            return [data]
        result = function(data, axis=tuple(axes) if axes else None, keepdims=bool(attributes.get("keepdims", 1)))
        return [np.asarray(result, dtype=data.dtype)]

    return reduce_op


def argmax(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    data, axis = _required(inputs, 0), int(attributes.get("axis", 0))
    if attributes.get("select_last_index", 0):  # NumPy returns the first of ties: search the flipped axis
        index = data.shape[axis] - 1 - np.argmax(np.flip(data, axis), axis=axis)
    else:
        index = np.argmax(data, axis=axis)
    return [np.asarray(np.expand_dims(index, axis) if attributes.get("keepdims", 1) else index, dtype=np.int64)]


def power(inputs: Inputs, attributes: Attributes) -> list[np.ndarray]:
    base, exponent = _all_required(inputs)
    if base.dtype.kind == "f":  # the result has the base's type: compute there, not in a promoted one
        exponent = exponent.astype(base.dtype)
    return [np.power(base, exponent).astype(base.dtype, copy=False)]


def _elementwise(function: Callable[..., Any]) -> Callable[[Inputs, Attributes], list[np.ndarray]]:
    """An op that applies a NumPy function to all its inputs (broadcasting as ONNX does)."""
    return lambda inputs, attributes: [np.asarray(function(*inputs))]


def _variadic(function: Callable[..., Any]) -> Callable[[Inputs, Attributes], list[np.ndarray]]:
    """Max / Min of any number of inputs, broadcast together."""
    return lambda inputs, attributes: [np.asarray(reduce(function, inputs))]


# -- the table ----------------------------------------------------------------------------------


class Operator(NamedTuple):
    """An entry of :data:`OPS`: the function, the attributes it honours (any other is refused),
    and the oldest opset whose semantics it has."""

    run: Callable[[Inputs, Attributes], list[np.ndarray]]
    attributes: tuple[str, ...] = ()
    since: int = 1


OPS: dict[str, Operator] = {
    # the recurrent ops: opset 7 on (opset 1 had other attributes)
    "RNN": Operator(partial(recurrent, "RNN"), RECURRENT_ATTRIBUTES["RNN"], 7),
    "LSTM": Operator(partial(recurrent, "LSTM"), RECURRENT_ATTRIBUTES["LSTM"], 7),
    "GRU": Operator(partial(recurrent, "GRU"), RECURRENT_ATTRIBUTES["GRU"], 7),
    # values and types
    "Identity": Operator(lambda inputs, attributes: [_required(inputs, 0)]),
    "Constant": Operator(constant, ("value", "value_float", "value_floats", "value_int", "value_ints")),
    "Cast": Operator(cast, ("to", "saturate")),
    # shapes
    "Shape": Operator(shape, ("start", "end")),
    "Gather": Operator(lambda inputs, attributes: [np.take(_required(inputs, 0), _required(inputs, 1),
                                                           axis=attributes.get("axis", 0))],
                       ("axis",)),
    "Slice": Operator(slice_, ("starts", "ends", "axes")),
    "Squeeze": Operator(squeeze, ("axes",)),
    "Unsqueeze": Operator(unsqueeze, ("axes",)),
    "Concat": Operator(lambda inputs, attributes: [np.concatenate(_all_required(inputs),
                                                                  axis=attributes["axis"])], ("axis",)),
    "Split": Operator(split, ("axis", "split", "num_outputs")),
    "Reshape": Operator(reshape, ("allowzero",)),
    "Transpose": Operator(lambda inputs, attributes: [np.transpose(_required(inputs, 0),
                                                                   attributes.get("perm"))], ("perm",)),
    "Expand": Operator(expand),
    "Range": Operator(range_),
    # logic
    "Less": Operator(_elementwise(np.less)),
    "Greater": Operator(_elementwise(np.greater)),
    "Equal": Operator(_elementwise(np.equal)),
    "Not": Operator(_elementwise(np.logical_not)),
    "Where": Operator(_elementwise(np.where)),
    # arithmetic
    "Add": Operator(_elementwise(np.add)),
    "Sub": Operator(_elementwise(np.subtract)),
    "Mul": Operator(_elementwise(np.multiply)),
    "Div": Operator(divide),
    "Neg": Operator(_elementwise(np.negative)),
    "Pow": Operator(power),
    "Sqrt": Operator(_elementwise(np.sqrt)),
    "Exp": Operator(_elementwise(np.exp)),
    "Log": Operator(_elementwise(np.log)),
    "Max": Operator(_variadic(np.maximum)),
    "Min": Operator(_variadic(np.minimum)),
    "MatMul": Operator(_elementwise(np.matmul)),
    "Gemm": Operator(gemm, ("alpha", "beta", "transA", "transB")),
    # activations
    "Tanh": Operator(_elementwise(np.tanh)),
    "Sigmoid": Operator(_elementwise(sigmoid_forward)),
    "Relu": Operator(_elementwise(lambda x: np.maximum(x, 0).astype(x.dtype, copy=False))),
    # opset 13 changed Softmax's meaning (before: over the 2-D flattening at ``axis``, default 1)
    "Softmax": Operator(softmax, ("axis",), 13),
    "LogSoftmax": Operator(log_softmax, ("axis",), 13),
    # reductions
    "ReduceSum": Operator(_reduction(np.sum), ("axes", "keepdims", "noop_with_empty_axes")),
    "ReduceMax": Operator(_reduction(np.max), ("axes", "keepdims", "noop_with_empty_axes")),
    "ReduceMean": Operator(_reduction(np.mean), ("axes", "keepdims", "noop_with_empty_axes")),
    "ArgMax": Operator(argmax, ("axis", "keepdims", "select_last_index")),
}
