"""``speech``: speech recognition with CTC, audio in, words out (a bidirectional LSTM by default).

The default data is connected digit strings synthesised by eSpeak NG
(``rnnkit.data.datasets.spoken_digits``), split by voice so that the test voices were never heard
in training. ``--data FILE.tsv`` trains on the user's recordings: lines ``path<TAB>transcript``,
paths relative to the file, any format ``rnnkit.data.audio.load_audio`` reads; split 80/10/10
by a seeded shuffle. A recording that cannot be used (unreadable, empty, longer than
``MAX_SECONDS``, or too short for its transcript under CTC) is skipped, counted and reported,
never a crash. Transcripts are tokenized as in the text tasks (``--tokens auto|char|word|bpe``;
auto chooses words for a closed vocabulary such as the digits); label 0, the tokenizer's padding
id, is CTC's blank.

The model reads 40 log-mel bins per 10 ms, normalised per utterance, ``stack`` frames per step
(``AcousticModel``). Metrics: ``wer`` (word edit distance per reference word) and ``cer`` (the
same over characters), against the better of the empty transcript and the training split's
most common one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.batching import BatchIterator, pad_batch
from rnnkit.data.readers import read_pairs_tsv
from rnnkit.data.splits import check_splittable, split_indices
from rnnkit.functional.ctc import minimum_steps
from rnnkit.models.acoustic import AcousticModel
from rnnkit.models.ctc_decoding import greedy_decode
from rnnkit.tasks.base import Task, TaskError
from rnnkit.tasks.common import fit_text_tokenizer, model_kwargs, saved_tokenizer
from rnnkit.tasks.metrics import character_error_rate, edit_distance

N_MELS = 40
EVAL_BATCH = 64
MAX_SECONDS = 60.0
FRAMES_PER_SECOND = 100

#: one split: per utterance its frames (T, N_MELS), its transcript, and where it came from (a
#: voice for the default data, a file for the user's)
Split = tuple[list[np.ndarray], list[str], list[str]]


def word_error_rate(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """Total word edit distance over total reference words."""
    errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references))
    return errors / max(1, sum(len(r) for r in references))


def _features(path: Path) -> np.ndarray:
    from rnnkit.data.audio import load_audio, log_mel, normalize

    samples = load_audio(path)
    if samples.size > MAX_SECONDS * 16000:
        raise ValueError(f"{path}: {samples.size / 16000:.1f} s is over the {MAX_SECONDS:g} s limit")
    return normalize(log_mel(samples, n_mels=N_MELS))


class Speech(Task):
    name = "speech"
    metric_keys = ("wer", "cer")
    takes_split_files = True
    predict_inputs = "a sound file"
    primary_metric = "wer"
    batch_axes = (1, 0, 0, 0)  # frames (T, B, F), frame counts, labels (B, S), label counts
    split_file = "held_out.tsv"
    defaults = {"cell": "lstm", "hidden": 128, "layers": 2, "nonlinearity": "tanh", "dropout": 0.0,
                "recurrent_dropout": 0.0, "zoneout": 0.0, "layer_norm": False,
                "bidirectional": True, "batch_size": 32, "epochs": 40, "lr": 3e-3, "stack": 3,
                "tokens": "auto", "min_freq": 1, "vocab_size": None, "augment": True}

    def __init__(self, data=None, seed=0, meta=None, score_file=None, options=None, load_data=True,
                 valid_file=None, test_file=None) -> None:
        super().__init__(data, seed, meta, score_file, options, load_data, valid_file, test_file)
        self.skipped: Counter[str] = Counter()
        self.first_skipped: dict[str, str] = {}
        self.splits: dict[str, Split] = self._splits(self._load, self._read)
        if meta is not None:
            self.tokenizer = saved_tokenizer(meta, "tokenizer")
        else:
            train, valid = self.splits["train"][1], self.splits.get("valid", ([], [], []))[1]
            self.tokenizer, note, warnings = fit_text_tokenizer(self.name, "text", self.options["tokens"], train, valid,
                                                                self.options)
            self.notes.append(note)
            self.warnings += warnings
        self._drop_too_short()
        if self.skipped:
            reasons = ", ".join(f"{count} {reason} (first: {self.first_skipped[reason]})"
                                for reason, count in self.skipped.items())
            self.warnings.append(f"skipped {sum(self.skipped.values())} recordings: {reasons}")

    # -- data ---------------------------------------------------------------------------------
    def _load(self, data: str | None) -> dict[str, Split]:
        if data is None:
            from rnnkit.data.datasets.spoken_digits import DIGIT_WORDS, load_spoken_digits

            loaded = load_spoken_digits(self.seed, N_MELS)
            return {split: (frames, [" ".join(DIGIT_WORDS[d] for d in said) for said in digits], voices)
                    for split, (frames, digits, voices) in loaded.items()}
        whole = self._read(data)
        check_splittable(len(whole[0]), data, "usable recordings")
        return {split: tuple([part[i] for i in index] for part in whole)  # type: ignore[misc]
                for split, index in split_indices(len(whole[0]), seed=self.seed).items()}

    def _read(self, path: str) -> Split:
        """A ``path<TAB>transcript`` file's usable recordings, the others counted as skipped."""
        folder = Path(path).parent
        frames, transcripts, sources = [], [], []
        for audio, transcript in read_pairs_tsv(path):
            where = Path(audio) if Path(audio).is_absolute() else folder / audio
            try:
                features = _features(where)
            except (ValueError, ImportError) as error:
                reason = "over the length limit" if "limit" in str(error) else "unreadable"
                self._skip(reason, str(error))
                continue
            frames.append(features)
            transcripts.append(transcript)
            sources.append(str(where.resolve()))
        if not frames:
            raise TaskError(f"{path}: no usable recording (skipped: {dict(self.skipped)}; first: "
                            f"{next(iter(self.first_skipped.values()), '')})")
        return frames, transcripts, sources

    def _skip(self, reason: str, example: str) -> None:
        self.skipped[reason] += 1
        self.first_skipped.setdefault(reason, example)

    def _drop_too_short(self) -> None:
        """Utterances with fewer stacked steps than CTC needs for their labels cannot be learned."""
        stack = int(self.options.get("stack", 3))
        for split, (frames, transcripts, sources) in list(self.splits.items()):
            keep = []
            for i, (f, t) in enumerate(zip(frames, transcripts)):
                labels = self.tokenizer.encode(t)[None, :]
                if len(labels[0]) == 0 or minimum_steps(labels, np.array([labels.shape[1]]))[0] > -(-len(f) // stack):
                    self._skip("too short for their transcripts" if len(labels[0]) else "with an empty transcript",
                               f"{sources[i]}: {len(f)} frames for {t!r}")
                else:
                    keep.append(i)
            if len(keep) < len(frames):
                self.splits[split] = ([frames[i] for i in keep], [transcripts[i] for i in keep],
                                      [sources[i] for i in keep])
        if self.load_data and not self.splits.get("train" if self.score_file is None else "test", ([],))[0]:
            raise TaskError("speech: no utterance long enough for its transcript is left")
        # Each transcript's labels, once (batches are cut from them at every epoch).
        self.labels = {split: [self.tokenizer.encode(t) for t in transcripts]
                       for split, (_, transcripts, _) in self.splits.items()}

    def describe(self) -> str:
        parts = []
        for split, (frames, _, _) in self.splits.items():
            hours = sum(len(f) for f in frames) / FRAMES_PER_SECOND / 3600
            parts.append(f"{split} {len(frames):,} utterances ({hours:.2f} h)")
        if self.data_path is None:
            voices = {split: len(set(sources)) for split, (_, _, sources) in self.splits.items()}
            return ("spoken digit strings (eSpeak NG, split by voice: the test voices are never heard in training): "
                    + ", ".join(f"{p}, {voices[s]} voices" for p, s in zip(parts, self.splits)))
        return f"{self.data_path}: " + ", ".join(parts) + f"; {self.tokenizer.describe()}"

    def num_train_examples(self) -> int:
        return len(self.splits["train"][0])

    def meta(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer.to_dict()}

    def write_split(self, split: str, path: Path) -> None:
        _, transcripts, sources = self.splits[split]
        path.write_text("".join(f"{source}\t{text}\n" for source, text in zip(sources, transcripts)), encoding="utf-8")

    # -- model and training ---------------------------------------------------------------------
    def build_model(self, options: dict[str, Any], dtype: type = np.float32) -> AcousticModel:
        self.options = {**self.options, **options}
        return AcousticModel(N_MELS, len(self.tokenizer), options["hidden"], bidirectional=options["bidirectional"],
                             stack=int(options.get("stack", 3)), dtype=dtype, seed=self.seed, **model_kwargs(options))

    def _batch(self, split: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        frames, labels_of = self.splits[split][0], self.labels[split]
        x, lengths = pad_batch([frames[i] for i in index], dtype=np.float32)
        labels, label_lengths = pad_batch([labels_of[i] for i in index], dtype=np.int64)
        return x, lengths, labels.T.copy(), label_lengths

    def train_batches(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Length-bucketed batches; with ``augment`` (the default), each utterance's frames masked
        SpecAugment-style afresh every epoch (a pure function of seed and epoch: resume is exact)."""
        iterator = BatchIterator(self.splits["train"][0], self.options["batch_size"], seed=self.seed)
        batches = [self._batch("train", index) for index in iterator.batches(epoch)]
        if not self.options.get("augment", True):
            return batches
        from rnnkit.data.audio import spec_augment

        rng = np.random.default_rng([self.seed, epoch, 17])
        augmented = []
        for x, lengths, labels, label_lengths in batches:
            x = x.copy()
            for b, length in enumerate(lengths):
                x[:length, b] = spec_augment(x[:length, b], rng, time_masks=2, time_width=10, freq_masks=2,
                                             freq_width=6)
            augmented.append((x, lengths, labels, label_lengths))
        return augmented

    def train_step(self, model, batch, carry):
        x, lengths, labels, label_lengths = batch
        scores, out_lengths = model.forward(x, lengths)
        loss, dscores = model.loss(scores, labels, out_lengths, label_lengths, reduction="sum")
        model.backward(dscores)
        return loss, len(lengths), None

    # -- evaluation -----------------------------------------------------------------------------
    def _decode(self, model, split: str) -> tuple[list[str], float]:
        frames = self.splits[split][0]
        order = np.argsort([len(f) for f in frames], kind="stable")  # similar lengths together: less padding
        hypotheses = [""] * len(frames)
        total = 0.0
        for start in range(0, len(order), EVAL_BATCH):
            index = order[start : start + EVAL_BATCH]
            x, lengths, labels, label_lengths = self._batch(split, index)
            scores, out_lengths = model.forward(x, lengths)
            total += model.loss(scores, labels, out_lengths, label_lengths, reduction="sum")[0]
            for i, said in zip(index, greedy_decode(scores, out_lengths)):
                hypotheses[i] = self.tokenizer.decode(said)
        return hypotheses, total / max(1, len(frames))

    def evaluate(self, model, split: str = "valid") -> dict[str, float]:
        hypotheses, loss = self._decode(model, split)
        references = self.splits[split][1]
        return {"loss": loss, "wer": word_error_rate([h.split() for h in hypotheses], [r.split() for r in references]),
                "cer": character_error_rate(hypotheses, references)}

    def baseline(self, split: str = "test") -> dict[str, float]:
        """The better of the empty transcript and the training split's most common one (the
        empty one alone where the training split is not at hand: ``eval --data``)."""
        references = self.splits[split][1]
        guesses = [""]
        if "train" in self.splits:
            guesses.append(Counter(self.splits["train"][1]).most_common(1)[0][0])
        scores = [(word_error_rate([guess.split()] * len(references), [r.split() for r in references]),
                   character_error_rate([guess] * len(references), references)) for guess in guesses]
        wer, cer = min(scores)
        return {"wer": wer, "cer": cer}

    def show(self, model) -> str:
        hypotheses, _ = self._decode(model, "test")
        _, references, sources = self.splits["test"]
        heard_from = "voices never heard in training" if self.data_path is None else "held out"
        lines = [f"test utterances ({heard_from}):"]
        for i in range(min(6, len(references))):
            mark = "" if hypotheses[i] == references[i] else "   <- differs"
            lines.append(f"  {Path(sources[i]).name:<22} said: {references[i]:<40} heard: {hypotheses[i]}{mark}")
        return "\n".join(lines)

    def alignments(self, model, features: list[np.ndarray], titles: list[str]) -> list[tuple]:
        """``(features, posteriors, label names, title)`` per utterance, for ``plot_ctc_alignment``."""
        names = [self.tokenizer.decode([label]) or "·" for label in range(len(self.tokenizer))]
        examples = []
        for f, title in zip(features, titles):
            scores, _ = model.forward(f[:, None, :], np.array([len(f)]))
            shifted = np.exp(scores[:, 0] - scores[:, 0].max(axis=1, keepdims=True))
            examples.append((f, shifted / shifted.sum(axis=1, keepdims=True), names, title))
        return examples

    def plot(self, model, inputs: list[str], path: Path) -> Path:
        """``predict --plot``: the alignment of each sound file."""
        from rnnkit.viz import plot_ctc_alignment

        features = [_features(Path(p)) for p in inputs]
        transcripts = self.predict(model, inputs)
        return plot_ctc_alignment(self.alignments(model, features, [f"{p}: {t}" for p, t in zip(inputs, transcripts)]),
                                  path, frames_per_step=model.stack)

    def pictures(self, model, directory: Path) -> list[Path]:
        """``alignment.png``: three validation utterances, spectrogram and label posteriors."""
        if "valid" not in self.splits or not self.splits["valid"][0]:
            return []
        from rnnkit.viz import plot_ctc_alignment

        frames, transcripts, _ = self.splits["valid"]
        chosen = list(range(min(3, len(frames))))
        examples = self.alignments(model, [frames[i] for i in chosen], [f"said: {transcripts[i]}" for i in chosen])
        return [plot_ctc_alignment(examples, directory / "alignment.png", frames_per_step=model.stack)]

    def predict(self, model, inputs: Iterable[str]) -> list[str]:
        """The transcript of each sound file (WAV, or what soundfile reads), by the best path."""
        transcripts = []
        for path in inputs:
            try:
                features = _features(Path(path))
            except ValueError as error:
                raise TaskError(str(error)) from None
            scores, lengths = model.forward(features[:, None, :], np.array([len(features)]))
            transcripts.append(self.tokenizer.decode(greedy_decode(scores, lengths)[0]))
        return transcripts
