"""``speech``: speech recognition with CTC, audio in, words out (a bidirectional LSTM by default).

The default data is connected digit strings synthesised by eSpeak NG
(``rnnkit.data.datasets.spoken_digits``), split by voice so that the test voices were never heard
in training. Labels are the ten digit words (label 0 is CTC's blank); the model reads 40 log-mel
bins per 10 ms, three frames stacked per step (``AcousticModel``). Metrics: ``wer`` (word error
rate: edit distance over words per reference word) and ``cer`` (the same over characters of the
transcript), against the empty transcript (WER and CER 1.0) and the most common transcript of
the training split.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from rnnkit.data.batching import BatchIterator, pad_batch
from rnnkit.data.datasets.spoken_digits import DIGIT_WORDS, load_spoken_digits
from rnnkit.models.acoustic import AcousticModel
from rnnkit.tasks.base import Task, TaskError
from rnnkit.tasks.common import model_kwargs
from rnnkit.tasks.metrics import character_error_rate, edit_distance

N_MELS = 40
EVAL_BATCH = 64


def word_error_rate(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """Total word edit distance over total reference words."""
    errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references))
    return errors / max(1, sum(len(r) for r in references))


class Speech(Task):
    name = "speech"
    metric_keys = ("wer", "cer")
    primary_metric = "wer"
    batch_axes = (1, 0, 0, 0)  # frames (T, B, F), frame counts, labels (B, S), label counts
    defaults = {"cell": "lstm", "hidden": 128, "layers": 2, "nonlinearity": "tanh", "dropout": 0.0,
                "bidirectional": True, "batch_size": 32, "epochs": 40, "lr": 3e-3, "stack": 3}

    def __init__(self, data=None, seed=0, meta=None, score_file=None, options=None, load_data=True) -> None:
        super().__init__(data, seed, meta, score_file, options, load_data)
        if data is not None or score_file is not None:
            raise TaskError("speech: --data (your own recordings) is not supported yet; the default data is "
                            "synthesised spoken digits")
        self.words = list(DIGIT_WORDS)
        self.splits = load_spoken_digits(seed, N_MELS) if load_data else {}

    def describe(self) -> str:
        parts = []
        for split, (frames, _, voices) in self.splits.items():
            hours = sum(len(f) for f in frames) / 100 / 3600
            parts.append(f"{split} {len(frames):,} utterances ({hours:.2f} h, {len(set(voices))} voices)")
        return ("spoken digit strings (eSpeak NG, split by voice: the test voices are never heard in training): "
                + ", ".join(parts))

    def num_train_examples(self) -> int:
        return len(self.splits["train"][0])

    def build_model(self, options: dict[str, Any], dtype: type = np.float32) -> AcousticModel:
        self.options = {**self.options, **options}
        return AcousticModel(N_MELS, len(self.words) + 1, options["hidden"], bidirectional=options["bidirectional"],
                             stack=int(options.get("stack", 3)), dtype=dtype, seed=self.seed, **model_kwargs(options))

    def _batch(self, split: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        frames, digits, _ = self.splits[split]
        x, lengths = pad_batch([frames[i] for i in index], dtype=np.float32)
        labels, label_lengths = pad_batch([np.array(digits[i]) + 1 for i in index], dtype=np.int64)
        return x, lengths, labels.T.copy(), label_lengths

    def train_batches(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        frames = self.splits["train"][0]
        iterator = BatchIterator(frames, self.options["batch_size"], seed=self.seed)
        return [self._batch("train", index) for index in iterator.batches(epoch)]

    def train_step(self, model, batch, carry):
        x, lengths, labels, label_lengths = batch
        scores, out_lengths = model.forward(x, lengths)
        loss, dscores = model.loss(scores, labels, out_lengths, label_lengths, reduction="sum")
        model.backward(dscores)
        return loss, len(lengths), None

    def _decode(self, model, split: str) -> tuple[list[list[str]], float]:
        frames = self.splits[split][0]
        order = np.argsort([len(f) for f in frames], kind="stable")  # similar lengths together: less padding
        hypotheses: list[list[str]] = [[] for _ in frames]
        total = 0.0
        for start in range(0, len(order), EVAL_BATCH):
            index = order[start : start + EVAL_BATCH]
            x, lengths, labels, label_lengths = self._batch(split, index)
            scores, out_lengths = model.forward(x, lengths)
            loss, _ = model.loss(scores, labels, out_lengths, label_lengths, reduction="sum")
            total += loss
            from rnnkit.models.ctc_decoding import greedy_decode

            for i, labels_said in zip(index, greedy_decode(scores, out_lengths)):
                hypotheses[i] = [self.words[label - 1] for label in labels_said]
        return hypotheses, total / max(1, len(frames))

    def _references(self, split: str) -> list[list[str]]:
        return [[self.words[d] for d in digits] for digits in self.splits[split][1]]

    def evaluate(self, model, split: str = "valid") -> dict[str, float]:
        hypotheses, loss = self._decode(model, split)
        references = self._references(split)
        return {"loss": loss, "wer": word_error_rate(hypotheses, references),
                "cer": character_error_rate([" ".join(h) for h in hypotheses], [" ".join(r) for r in references])}

    def baseline(self, split: str = "test") -> dict[str, float]:
        """The better of the empty transcript and the training split's most common one."""
        references = self._references(split)
        common = Counter(" ".join(r) for r in self._references("train")).most_common(1)[0][0].split()
        scores = []
        for guess in ([], common):
            scores.append((word_error_rate([guess] * len(references), references),
                           character_error_rate([" ".join(guess)] * len(references), [" ".join(r) for r in references])))
        wer, cer = min(scores)
        return {"wer": wer, "cer": cer}

    def predict(self, model, inputs) -> list[str]:
        """The transcript of each sound file (WAV, or what soundfile reads), by the best path."""
        from rnnkit.data.audio import load_audio, log_mel, normalize
        from rnnkit.models.ctc_decoding import greedy_decode

        transcripts = []
        for path in inputs:
            features = normalize(log_mel(load_audio(path), n_mels=N_MELS))
            scores, lengths = model.forward(features[:, None, :], np.array([len(features)]))
            transcripts.append(" ".join(self.words[label - 1] for label in greedy_decode(scores, lengths)[0]))
        return transcripts

    def show(self, model) -> str:
        hypotheses, _ = self._decode(model, "test")
        references = self._references("test")
        voices = self.splits["test"][2]
        lines = ["test utterances (voices never heard in training):"]
        for i in range(min(6, len(references))):
            mark = "" if hypotheses[i] == references[i] else "   <- differs"
            lines.append(f"  {voices[i]:<22} said: {' '.join(references[i]):<40} heard: {' '.join(hypotheses[i])}{mark}")
        return "\n".join(lines)
