"""An acoustic model for speech recognition with CTC: log-mel frames in, per-step label scores out.

``frames (T, B, F)`` -> frame stacking (every ``stack`` frames one step: ``stack`` times fewer
steps) -> a stack of recurrent layers (any cell, bidirectional by default: a recogniser hears
the whole utterance) -> a linear layer to ``num_labels`` scores, label 0 the CTC blank. Trained
with :meth:`loss` (``rnnkit.functional.ctc.ctc_loss``), read with :meth:`decode` (best path, or
prefix beam search with ``beam_width``).
"""

from __future__ import annotations

import numpy as np

from rnnkit._checks import check_float_dtype, check_positive_int
from rnnkit.functional.ctc import ctc_loss
from rnnkit.functional.stacking import stack_frames_backward, stack_frames_forward
from rnnkit.models.base import Model
from rnnkit.models.ctc_decoding import beam_decode, greedy_decode
from rnnkit.nn.factory import recurrent
from rnnkit.nn.linear import Linear
from rnnkit.nn.module import resolve_rng

BLANK = 0


class AcousticModel(Model):
    """``forward(frames (T, B, F), lengths=None) -> (scores (T', B, num_labels), lengths')`` with
    ``T' = ceil(T / stack)``; ``backward(dscores)``; ``loss(scores, targets (B, S), lengths',
    target_lengths)``; ``decode(frames, lengths, beam_width=1)`` -> label lists."""

    loss_kind = "ctc"

    def __init__(
        self,
        input_size: int,
        num_labels: int,
        hidden_size: int = 128,
        *,
        cell: str = "lstm",
        num_layers: int = 2,
        nonlinearity: str = "tanh",
        bidirectional: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
        stack: int = 2,
        dtype: type | np.dtype = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype(dtype)
        rng = resolve_rng(seed)
        self.input_size = check_positive_int("input_size", input_size)
        self.num_labels = check_positive_int("num_labels", num_labels)
        if self.num_labels < 2:
            raise ValueError(f"num_labels: expected the blank and at least one label, got {num_labels}")
        self.stack = check_positive_int("stack", stack)
        self.cell = cell
        self.rnn = recurrent(cell, self.stack * self.input_size, hidden_size, num_layers, nonlinearity, bidirectional,
                             dropout, dtype=dtype, seed=rng, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                             layer_norm=layer_norm)
        self.head = Linear(self.rnn.output_size, self.num_labels, dtype=dtype, seed=rng)
        self._cache: tuple[int, ...] | None = None

    def forward(self, frames: np.ndarray, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[2] != self.input_size:
            raise ValueError(f"frames: expected (T, B, {self.input_size}), got shape {frames.shape}")
        stacked, stacked_lengths, self._cache = stack_frames_forward(frames, lengths, self.stack)
        out, _ = self.rnn.forward_states(stacked, None, stacked_lengths)
        steps, batch = stacked.shape[:2]
        return self.head.forward(out), np.full(batch, steps) if stacked_lengths is None else stacked_lengths

    def backward(self, dscores: np.ndarray, input_grad: bool = False) -> np.ndarray | None:
        """Gradients into the parameters; the frames' gradient when ``input_grad`` (features are
        data: normally not)."""
        cache = self._require_cache(self._cache)
        dx, _ = self.rnn.backward_states(self.head.backward(dscores), None, input_grad=input_grad, h0_grad=False)
        return None if dx is None else stack_frames_backward(dx, cache)

    def loss(self, scores: np.ndarray, targets: np.ndarray, lengths: np.ndarray | None = None,  # type: ignore[override]
             target_lengths: np.ndarray | None = None, reduction: str = "mean") -> tuple[float, np.ndarray]:
        """``(loss, dscores)``: CTC of ``targets`` ``(B, S)`` (labels 1.., padded) given the scores'
        ``lengths`` (from :meth:`forward`) and ``target_lengths``; an utterance too short for
        its transcript scores 0 (``zero_infinity``) rather than stopping training."""
        steps, batch = scores.shape[:2]
        lengths = np.full(batch, steps) if lengths is None else lengths
        if target_lengths is None:
            target_lengths = np.full(batch, np.asarray(targets).shape[1])
        loss, dscores = ctc_loss(scores, targets, lengths, target_lengths, BLANK, reduction, zero_infinity=True)
        return float(loss), dscores

    def decode(self, frames: np.ndarray, lengths: np.ndarray | None = None, beam_width: int = 1) -> list[list[int]]:
        """The label sequence of each utterance: the best path, or prefix beam search."""
        scores, out_lengths = self.forward(frames, lengths)
        self._cache = None
        if beam_width == 1:
            return greedy_decode(scores, out_lengths, BLANK)
        return beam_decode(scores, out_lengths, BLANK, beam_width)
