"""Exported graphs run behind the models' own interface, by onnxruntime or by rnnkit's executor.

:class:`DeployedModel` has the ``forward`` (and ``generate``, ``loss``) of the architecture its
graphs were exported from (:mod:`rnnkit.interop.onnx.models`), so a task's own ``evaluate``
scores the ONNX graphs exactly as it scores the rnnkit model: that is how ``rnnkit export``
checks what it wrote, and how a user can score a deployed model with rnnkit's metrics.
Teacher forcing through a ``decoder_step`` graph runs it once per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np

from rnnkit.functional.recurrent import segment_starts
from rnnkit.interop.onnx._proto import load_model
from rnnkit.interop.onnx.graph import read_metadata
from rnnkit.models.base import task_loss
from rnnkit.models.decoding import generate
from rnnkit.models.states import DecoderState

BACKENDS = ("onnxruntime", "rnnkit")
Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def runner(model: Any, backend: str) -> Runner:
    """A function ``feeds -> {output name: array}`` running ``model`` on ``backend``."""
    names = [output.name for output in model.graph.output]
    if backend == "onnxruntime":
        try:
            import onnxruntime
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError('running exported graphs in onnxruntime needs it: pip install "rnnkit[onnx]"') from error
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return lambda feeds: dict(zip(names, session.run(names, feeds)))
    if backend == "rnnkit":
        from rnnkit.interop.onnx.executor import run

        return lambda feeds: dict(zip(names, run(model, feeds)))
    raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")


class DeployedModel:
    """The graphs of one exported model (``{"model": ...}`` or ``{"encoder": ...,
    "decoder_step": ...}``: ModelProtos or paths) with the interface of the rnnkit architecture
    they came from. ``backend``: ``"onnxruntime"`` or ``"rnnkit"``."""

    def __init__(self, graphs: dict[str, Any], backend: str = "onnxruntime") -> None:
        self.graphs = {role: load_model(graph) for role, graph in graphs.items()}
        first = read_metadata(next(iter(self.graphs.values())))
        if "architecture" not in first:
            raise ValueError("graphs: these are not graphs of an rnnkit model (no rnnkit.architecture metadata)")
        self.architecture = first["architecture"]
        self.description = {role: read_metadata(graph)["graph"] for role, graph in self.graphs.items()}
        expected = {"encoder", "decoder_step"} if self.architecture in ("OneToMany", "Seq2Seq") else {"model"}
        if set(self.graphs) != expected:
            raise ValueError(f"graphs: a {self.architecture} is exported as {sorted(expected)}, got {sorted(self.graphs)}")
        self.loss_kind = next(iter(self.description.values()))["loss"]
        self.states = tuple(next(iter(self.description.values()))["states"])
        self.dtype = np.dtype(read_metadata(next(iter(self.graphs.values())))["module"]["dtype"])
        self._run = {role: runner(graph, backend) for role, graph in self.graphs.items()}
        self._shapes = {role: {value.name: [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]
                               for value in graph.graph.input} for role, graph in self.graphs.items()}

    # what the tasks call besides forward
    def eval(self) -> DeployedModel:
        return self

    def train(self) -> DeployedModel:
        return self

    def loss(self, outputs: np.ndarray, targets: np.ndarray, lengths: np.ndarray | None = None,
             *rest: Any, **options: Any) -> tuple[float, np.ndarray]:
        if self.loss_kind == "ctc":  # an acoustic model's: (scores, targets, lengths, target_lengths, reduction)
            from rnnkit.functional.ctc import ctc_loss
            from rnnkit.models.acoustic import BLANK

            target_lengths = rest[0] if rest else options.get("target_lengths")
            reduction = rest[1] if len(rest) > 1 else options.get("reduction", "mean")
            # Cast, not checked: ctc_loss takes array-likes and names a missing (None) length array itself
            input_lengths, target_lengths = cast(np.ndarray, lengths), cast(np.ndarray, target_lengths)
            loss, dscores = ctc_loss(outputs, targets, input_lengths, target_lengths, BLANK, reduction,
                                     zero_infinity=True)
            return float(loss), dscores
        reduction = rest[0] if rest else options.get("reduction", "sum")
        return task_loss(self.loss_kind, outputs, targets, lengths, reduction)

    # -- readers ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        readers: dict[str, Callable[..., Any]] = {
            "ManyToMany": self._many_to_many, "ManyToOne": self._many_to_one, "OneToOne": self._one_to_one,
            "OneToMany": self._one_to_many, "Seq2Seq": self._seq2seq, "AcousticModel": self._acoustic}
        return readers[self.architecture](*args, **kwargs)

    __call__ = forward

    def stream(self, chunk: np.ndarray, state: Any = None,
               resets: np.ndarray | None = None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """A many-to-many graph run on a stream chunk by chunk, as ``ManyToMany.stream``: the
        chunk's scores and the states to feed with the next chunk (None: the start); ``resets``
        ``(T_i, B)`` starts a stream again before a step."""
        if self.architecture != "ManyToMany":
            raise ValueError(f"stream: a ManyToMany graph carries its states from chunk to chunk, not a "
                             f"{self.architecture}")
        return self._many_to_many(chunk, state, resets=resets)

    def _sequence_feeds(self, inputs: np.ndarray, lengths: np.ndarray | None) -> dict[str, np.ndarray]:
        name = self.description["model"]["input"]
        value = np.asarray(inputs, dtype=np.int64 if name == "ids" else self.dtype)
        steps, batch = value.shape[:2]
        full = np.full(batch, steps, dtype=np.int64)
        return {name: value, "lengths": full if lengths is None else np.asarray(lengths, dtype=np.int64)}

    def _many_to_many(self, inputs: np.ndarray, state: Any = None, lengths: np.ndarray | None = None,
                      resets: np.ndarray | None = None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        if resets is not None and np.any(resets):
            return self._many_to_many_with_resets(inputs, state, lengths, np.asarray(resets, dtype=bool))
        feeds = self._sequence_feeds(inputs, lengths)
        feeds.update(self._state_feeds("model", state, feeds["lengths"].shape[0]))
        results = self._run["model"](feeds)
        return results["scores"], tuple(results[f"{name}_n"] for name in self.states)

    def _many_to_many_with_resets(self, inputs: np.ndarray, state: Any, lengths: np.ndarray | None,
                                  resets: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Resets, which the graph does not take: the chunk run in pieces cut at the steps where some
        stream starts again, the states of those streams zeroed (the graph's own start) before
        each piece, as rnnkit's layer cuts its scans."""
        if lengths is not None:
            raise ValueError("resets: a deployed graph takes resets on streams, without lengths")
        steps, batch = np.shape(inputs)[:2]
        if resets.shape != (steps, batch):
            raise ValueError(f"resets: expected shape ({steps}, {batch}) (T, B), got {resets.shape}")
        states = tuple(self._state_feeds("model", state, batch).values())
        starts = segment_starts(resets)
        pieces = []
        for start, stop in zip(starts, starts[1:] + [steps]):
            again = resets[start][None, :, None]
            states = tuple(np.where(again, np.zeros((), value.dtype), value) for value in states)
            scores, states = self._many_to_many(inputs[start:stop], states)
            pieces.append(scores)
        return np.concatenate(pieces), states

    def _many_to_one(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        return self._run["model"](self._sequence_feeds(inputs, lengths))["scores"]

    def _acoustic(self, frames: np.ndarray, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        frames = np.asarray(frames, dtype=self.dtype)
        lengths = np.full(frames.shape[1], frames.shape[0]) if lengths is None else lengths
        results = self._run["model"]({"frames": frames, "lengths": np.asarray(lengths, dtype=np.int64)})
        return results["scores"], results["out_lengths"]

    @property
    def stack(self) -> int:
        """Frames per step of an acoustic model (for its alignment figures)."""
        return int(self.description["model"].get("stack", 1))

    def _one_to_one(self, inputs: np.ndarray) -> np.ndarray:
        return self._run["model"]({"x": np.asarray(inputs, dtype=self.dtype)})["scores"]

    def _state_feeds(self, role: str, state: Any, batch: int) -> dict[str, np.ndarray]:
        if state is None:
            shapes = self._shapes[role]
            return {f"{name}0": np.zeros((shapes[f"{name}0"][0], batch, shapes[f"{name}0"][2]), dtype=self.dtype)
                    for name in self.states}
        state = (state,) if isinstance(state, np.ndarray) else tuple(state)
        return {f"{name}0": np.asarray(value, dtype=self.dtype) for name, value in zip(self.states, state)}

    # -- generators -------------------------------------------------------------------------
    def encode(self, *inputs: np.ndarray | None) -> tuple[np.ndarray, ...] | DecoderState:
        """The decoder's first state: from ``features (B, F)`` (OneToMany) or from ``source (S,
        B)`` and ``source_lengths`` (Seq2Seq); a ``DecoderState`` with attention."""
        if self.architecture == "OneToMany":
            results = self._run["encoder"]({"features": np.asarray(inputs[0], dtype=self.dtype)})
        else:
            source, source_lengths = np.asarray(inputs[0], dtype=np.int64), inputs[1]
            if source_lengths is None:
                source_lengths = np.full(source.shape[1], source.shape[0])
            results = self._run["encoder"]({"source": source,
                                            "source_lengths": np.asarray(source_lengths, dtype=np.int64)})
        states = tuple(results[f"{name}0"] for name in self.states)
        if "memory" in results:
            return DecoderState(states, results["memory"], results["mask"])
        return states

    def step(self, ids: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """One decoder step: ``ids (B,)`` and the state -> ``scores (B, V)`` and the next state."""
        states = state.states if isinstance(state, DecoderState) else state
        feeds = {"ids": np.asarray(ids, dtype=np.int64)}
        feeds.update({f"{name}0": value for name, value in zip(self.states, states)})
        if isinstance(state, DecoderState):
            feeds.update({"memory": state.memory, "mask": np.asarray(state.mask, dtype=bool)})
        results = self._run["decoder_step"](feeds)
        following = tuple(results[f"{name}_n"] for name in self.states)
        if isinstance(state, DecoderState):
            return results["scores"], DecoderState(following, state.memory, state.mask)
        return results["scores"], following

    def _teacher_forced(self, state: Any, inputs: np.ndarray) -> np.ndarray:
        """Scores ``(T, B, V)`` reading the true previous tokens ``inputs (T, B)``, a step at a time.
        Steps past a sequence's length are scored too; the loss ignores them."""
        scores = []
        for ids in np.asarray(inputs):
            step_scores, state = self.step(ids, state)
            scores.append(step_scores)
        return np.stack(scores)

    def _one_to_many(self, features: np.ndarray, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        return self._teacher_forced(self.encode(features), inputs)

    def _seq2seq(self, source: np.ndarray, source_lengths: np.ndarray | None, inputs: np.ndarray,
                 lengths: np.ndarray | None = None) -> np.ndarray:
        return self._teacher_forced(self.encode(source, source_lengths), inputs)

    def generate(self, *args: Any, **options: Any) -> list[list[int]]:
        """``generate(features, bos, eos, max_len=20, **options)`` (OneToMany) or
        ``generate(source, source_lengths, bos, eos, max_len=30, **options)`` (Seq2Seq), as the
        rnnkit models: greedy, sampling or beam search over the ``decoder_step`` graph."""
        if self.architecture not in ("OneToMany", "Seq2Seq"):
            raise TypeError(f"a {self.architecture} does not generate")
        sources = 1 if self.architecture == "OneToMany" else 2
        bos, eos, *rest = args[sources:]
        max_len = rest[0] if rest else options.pop("max_len", 20 if sources == 1 else 30)
        return generate(self.step, self.encode(*args[:sources]), bos, eos, max_len, **options)
