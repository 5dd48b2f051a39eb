"""charlm: a character-level language model (many-to-many, deep), the main job.

Trains on one long text split into B parallel streams; each batch is the next ``bptt`` steps of
every stream and the recurrent state (``h``, and ``c`` with ``--cell lstm``) is carried from
batch to batch (truncated BPTT). With ``bptt_stride`` k1 below ``bptt`` k2, every k1 steps
the gradients flow back k2 steps (TBPTT(k1, k2); see :func:`rnnkit.data.lm_stream_windows`).
With ``documents`` ``lines`` or ``paragraphs`` the text is a collection of documents, and each
stream's state starts again where a document does: the state before reading the newline that
ends the previous document is dropped, so that newline reads like a fresh start. The metric
is bits per character on held-out text, against the unigram entropy of that same text: what a
model that knows only character frequencies would score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data import CONTEXT, carried_steps, lm_stream_windows, load_charlm, read_text_file
from rnnkit.data.tokenizers import fit_tokenizer
from rnnkit.models import ManyToMany
from rnnkit.models.states import detach
from rnnkit.tasks.base import Task, TaskError
from rnnkit.tasks.common import model_kwargs, saved_tokenizer

LN2 = math.log(2.0)


class CharLM(Task[ManyToMany]):
    name = "charlm"
    batch_axes = (1, 1, 1)  # inputs, targets, resets (T, B): streams along axis 1
    metric_keys = ("bpc",)
    takes_split_files = True
    predict_inputs = "a text to continue"
    primary_metric = "bpc"
    defaults = {"cell": "gru", "hidden": 256, "layers": 2, "embed": 64, "nonlinearity": "tanh", "dropout": 0.0,
                "recurrent_dropout": 0.0, "zoneout": 0.0, "layer_norm": False, "embed_dropout": 0.0,
                "bidirectional": False, "batch_size": 32, "bptt": 64, "bptt_stride": None, "documents": "one",
                "epochs": 10, "lr": 2e-3, "tokens": "auto", "vocab_size": None}
    #: how ``documents`` finds where one ends: the text is one document, one per line, or blank-line separated
    DOCUMENTS = ("one", "lines", "paragraphs")

    def __init__(self, data=None, seed=0, meta=None, score_file=None, options=None, load_data=True,
                 valid_file=None, test_file=None) -> None:
        super().__init__(data, seed, meta, score_file, options, load_data, valid_file, test_file)
        self.splits = self._splits(load_charlm, read_text_file)
        if meta is not None:
            self.tokenizer = saved_tokenizer(meta, "tokenizer")
        else:
            tokens = self.options["tokens"]
            if tokens not in ("auto", "char", "bpe"):
                raise TaskError(f"charlm: --tokens {tokens} does not apply: a language model scored in bits per "
                                f"character needs tokens that spell the text exactly (char or bpe)")
            kind = "char" if tokens == "auto" else tokens
            self.tokenizer = fit_tokenizer(kind, [self.splits["train"]], vocab_size=self.options.get("vocab_size"))
            why = "a character model: auto is char" if tokens == "auto" else "set by --tokens"
            self.notes.append(f"[charlm] text tokens: {kind} ({why}); {self.tokenizer.describe()}")
        self.encoded = {name: self.tokenizer.encode(text) for name, text in self.splits.items()}
        documents = self.options["documents"]
        if documents not in self.DOCUMENTS:
            raise TaskError(f"charlm: --documents: expected one of {', '.join(self.DOCUMENTS)}, got {documents!r}")
        if documents != "one" and self.tokenizer.kind != "char":
            raise TaskError(f"charlm: --documents {documents} finds documents by their newlines, which needs "
                            f"character tokens (--tokens char), not {self.tokenizer.kind}")
        stride = self.options["bptt_stride"]
        if stride is not None and not 1 <= stride <= self.options["bptt"]:
            raise TaskError(f"charlm: --bptt-stride: expected 1..{self.options['bptt']} (--bptt, the steps "
                            f"gradients flow back), got {stride}")

    def describe(self) -> str:
        sizes = ", ".join(f"{k} {len(v):,}" for k, v in self.splits.items())
        source = self.data_path or "default corpus"
        return f"{source}: characters {sizes}; {self.tokenizer.describe()}"

    split_file = "held_out.txt"

    def write_split(self, split: str, path) -> None:
        Path(path).write_text(self.splits[split], encoding="utf-8")

    def meta(self) -> dict:
        return {"tokenizer": self.tokenizer.to_dict()}

    def sized_options(self, options: dict[str, Any], given: set[str]) -> dict[str, Any]:
        """A small text gets dropout between the layers and on the embedded characters, unless
        ``--dropout`` or ``--embed-dropout`` is given: below ``SMALL_TEXT`` training characters
        per parameter the model can learn the text by heart within its early epochs (README,
        "Held-out documents": three plays, 0.35 characters per parameter, held-out bpc 2.7185
        without, 2.6748 with these settings; the bundled plays, 5.0 per parameter, are left alone)."""
        if given & {"dropout", "embed_dropout"}:
            return options
        per_parameter = len(self.encoded["train"]) / self.build_model(options).num_parameters()
        if per_parameter >= self.SMALL_TEXT:
            return options
        dropout, embed_dropout = self.SMALL_TEXT_DROPOUT
        self.notes.append(f"[{self.name}] regularization: dropout {dropout} between layers and {embed_dropout} on the "
                          f"embedded characters, because the training text has {per_parameter:.2f} characters per "
                          f"parameter (below {self.SMALL_TEXT}: a model can memorize it); set --dropout and "
                          f"--embed-dropout to choose")
        return {**options, "dropout": dropout, "embed_dropout": embed_dropout}

    #: training characters per parameter below which a text is small (see sized_options)
    SMALL_TEXT = 2.0
    #: (between layers, on the embedding) for a small text
    SMALL_TEXT_DROPOUT = (0.25, 0.1)

    def build_model(self, options: dict, dtype: type = np.float32) -> ManyToMany:
        if options.get("bidirectional"):
            raise TaskError("charlm: a language model cannot be bidirectional (it would read the characters it must predict)")
        self.options = {**self.options, **options}
        return ManyToMany(len(self.tokenizer), options["hidden"], vocab_size=len(self.tokenizer), embed_dim=options["embed"],
                          embed_dropout=options.get("embed_dropout", 0.0), dtype=dtype, seed=self.seed,
                          **model_kwargs(options))

    # -- training ---------------------------------------------------------------------------
    def document_starts(self, split: str) -> np.ndarray | None:
        """``(len(ids),)`` bool: the ids of a split before which a stream's state starts again, or
        None (``documents`` one); see :meth:`starts_in`."""
        return self.starts_in(self.encoded[split])

    def starts_in(self, ids: np.ndarray, after: int | None = None) -> np.ndarray | None:
        """``(len(ids),)`` bool: where a document starts in ``ids`` (``after``: the id read before
        them, if any), or None (``documents`` one). ``lines``: every newline, which then reads like
        a start-of-text mark for the line after it; ``paragraphs``: the second newline of every
        blank line."""
        documents = self.options["documents"]
        if documents == "one":
            return None
        newline_id = self.tokenizer.encode("\n")[0]
        newline = np.asarray(ids) == newline_id
        if documents == "lines":
            return newline
        starts = newline.copy()
        starts[1:] &= newline[:-1]
        if len(starts):
            starts[0] &= after == newline_id
        return starts

    def train_batches(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        # A different start offset each epoch, so window boundaries do not always fall on the
        # same characters; deterministic in (seed, epoch) for exact resume.
        bptt, stride = self.options["bptt"], self.options["bptt_stride"] or self.options["bptt"]
        batch = self.options["batch_size"]
        ids = self.encoded["train"]
        # at most half a stream, so that a window longer than the streams still reads them
        offset = int(np.random.default_rng([self.seed, epoch]).integers(min(stride, max(1, len(ids) // batch // 2))))
        starts = self.document_starts("train")
        return list(lm_stream_windows(ids[offset:], batch, bptt, stride,
                                      None if starts is None else starts[offset:]))

    def train_step(self, model: ManyToMany, batch, carry) -> tuple[float, int, Any]:
        """One truncated-BPTT window. ``carry`` is the state before the window (a tuple, ``(h,)``
        or ``(h, c)``; None at the start of an epoch): it starts this window and takes no
        gradient. Steps whose targets are context (TBPTT(k1, k2)) are read but not scored. The
        returned carry is the state the next window starts from, detached: the state after this
        window's first ``carried_steps`` steps (its last, with k1 = k2)."""
        inputs, targets, resets = batch
        logits, final = model.forward(inputs, carry, resets=resets)
        context = int(np.count_nonzero(targets[:, 0] == CONTEXT)) if targets.shape[1] else 0
        bptt, stride = self.options["bptt"], self.options["bptt_stride"] or self.options["bptt"]
        carried = carried_steps(context, bptt, stride)
        if carried >= len(inputs):
            carry = detach(final)
        elif carried > 0:
            carry = model.states_at(carried - 1)
        loss, dscored = model.loss(logits[context:], targets[context:])
        if context:
            dlogits = np.zeros_like(logits)
            dlogits[context:] = dscored
        else:
            dlogits = dscored
        model.backward(dlogits)
        return loss, targets[context:].size, carry

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, model: ManyToMany, split: str = "valid") -> dict[str, float]:
        ids = self.encoded[split]
        streams = max(1, min(16, (len(ids) - 1) // 256))
        total, count, h = 0.0, 0, None
        model.eval()
        for inputs, targets, resets in lm_stream_windows(ids, streams, 256, starts=self.document_starts(split)):
            logits, h = model.forward(inputs, h, resets=resets)
            loss, _ = model.loss(logits, targets)
            total, count = total + loss, count + targets.size
        model.train()
        if count == 0:
            raise TaskError(f"charlm: the {split} text is too short to score (need at least 2 characters per stream)")
        # bits per character of the text, whatever the tokens: the scored tokens' share of the characters
        characters = count * len(self.splits[split]) / len(ids)
        return {"loss": total / count, "bpc": total / characters / LN2}

    def baseline(self, split: str = "test") -> dict[str, float]:
        if self.tokenizer.kind == "char":
            counts = np.bincount(self.encoded[split], minlength=len(self.tokenizer)).astype(np.float64)
        else:
            codes = np.frombuffer(self.splits[split].encode("utf-32-le", "surrogatepass"), dtype="<u4")
            counts = np.unique(codes, return_counts=True)[1].astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        return {"bpc": float(-(p * np.log2(p)).sum())}

    # -- showing ----------------------------------------------------------------------------
    def sample(self, model: ManyToMany, prime: str, length: int, temperature: float, seed: int) -> str:
        rng = np.random.default_rng(seed)
        model.eval()
        h = None
        tokenizer = self.tokenizer
        prime_ids = tokenizer.encode(prime) if prime else tokenizer.encode("\n")[:1]
        # read the way training read it: the state starts again where a document does
        starts = self.starts_in(prime_ids)
        logits, h = model.forward(prime_ids[:, None], h, resets=None if starts is None else starts[:, None])
        last = logits[-1, 0]
        generated: list[int] = []

        def written() -> int:  # characters so far: one per token at the char level
            return len(generated) if tokenizer.kind == "char" else len(tokenizer.decode(generated))

        while written() < length:
            scores = last.astype(np.float64)
            scores[: tokenizer.num_specials] = -np.inf  # never emit pad/bos/eos/unk
            # the best score subtracted before dividing: a tiny temperature tends to the most
            # likely token instead of overflowing (inf - inf is NaN)
            with np.errstate(over="ignore"):  # to -inf: a probability of 0
                p = np.exp((scores - scores.max()) / temperature)
            next_id = int(rng.choice(len(p), p=p / p.sum()))
            generated.append(next_id)
            previous = generated[-2] if len(generated) > 1 else int(prime_ids[-1])
            starts = self.starts_in(np.array([next_id]), after=previous)
            logits, h = model.forward(np.array([[next_id]]), h, resets=None if starts is None else starts[:, None])
            last = logits[0, 0]
        return prime + tokenizer.decode(generated)[:length]

    def show(self, model: ManyToMany) -> str:
        return "--- sample (temperature 0.8) ---\n" + self.sample(model, "", 500, 0.8, self.seed) + "\n---"

    def predict(self, model: ManyToMany, inputs: Iterable[str]) -> list[str]:
        """A continuation of each input (temperature 0.5)."""
        return [self.sample(model, text, 80, 0.5, self.seed)[len(text):].replace("\n", "\\n") for text in inputs]
