"""Three views of the same handwritten digits (8x8 images, scikit-learn's bundled copy):

- ``digits``   many-to-one: an image read as a sequence of its 8 rows (T = 8, 8 features each);
- ``onetoone`` one-to-one: the 64 pixels at once, a single step (T = 1);
- ``caption``  one-to-many: the image sets the decoder's initial state, which spells the digit's
  English word one character at a time ("s", "e", "v", "e", "n").

All three use one seeded split, so they are scored on the same test images. Default data only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from rnnkit.data import Vocab, load_digit_captions, load_digits_flat, load_digits_rows, pad_batch
from rnnkit.models import ManyToOne, OneToMany, OneToOne
from rnnkit.tasks.base import ModelT, Task, TaskError
from rnnkit.tasks.common import model_kwargs, saved_entry
from rnnkit.tasks.metrics import accuracy, exact_match


def _batch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


class _DigitTask(Task[ModelT]):
    """Shared by the three: default data only, an (x, y) per split, majority baseline."""

    batch_axes = (0, 0)  # images (N, ...) and their labels or captions (a list)

    def __init__(self, data=None, seed=0, meta=None, score_file=None, options=None, load_data=True,
                 valid_file=None, test_file=None) -> None:
        super().__init__(data, seed, meta, score_file, options, load_data, valid_file, test_file)
        if data is not None or score_file is not None:
            raise TaskError(f"{self.name}: uses its default data only (the bundled handwritten digits); drop --data")
        self.splits = self._load(seed)

    def _load(self, seed: int) -> dict[str, tuple[np.ndarray, Any]]:
        """The seeded split: per split the images and their labels or captions."""
        raise NotImplementedError

    def describe(self) -> str:
        sizes = ", ".join(f"{k} {len(v[0]):,}" for k, v in self.splits.items())
        return f"handwritten digits (8x8, scikit-learn's copy of the UCI data): images {sizes}"

    def train_batches(self, epoch: int):
        x, y = self.splits["train"]
        return [(x[index], y[index]) for index in _batch_order(len(y), self.options["batch_size"], self.seed, epoch)]

    def baseline(self, split: str = "test") -> dict[str, float]:
        labels = self.splits[split][1]
        majority = np.bincount(self.splits["train"][1]).argmax()
        return {"accuracy": accuracy(np.full_like(labels, majority), labels)}


class _DigitClassifier(_DigitTask[ModelT]):
    metric_keys = ("accuracy",)
    primary_metric = "accuracy"

    def _logits(self, model: ModelT, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def train_step(self, model, batch, carry):
        x, y = batch
        loss, dlogits = model.loss(self._logits(model, x), y)
        model.backward(dlogits, input_grad=False)  # pixels are data: no gradient
        return loss, len(y), None

    def evaluate(self, model, split: str = "valid") -> dict[str, float]:
        x, y = self.splits[split]
        logits = self._logits(model, x)
        loss, _ = model.loss(logits, y, reduction="mean")
        return {"loss": loss, "accuracy": accuracy(logits.argmax(axis=-1), y)}

    def show(self, model) -> str:
        x, y = self.splits["test"]
        predicted = self._logits(model, x[:20]).argmax(axis=-1)
        return (f"first 20 test images: predicted {''.join(map(str, predicted))}\n"
                f"                       true      {''.join(map(str, y[:20]))}")


class DigitRows(_DigitClassifier[ManyToOne]):
    name = "digits"
    defaults = {"cell": "rnn", "hidden": 64, "layers": 1, "nonlinearity": "tanh", "dropout": 0.0,
                "recurrent_dropout": 0.0, "zoneout": 0.0, "layer_norm": False,
                "bidirectional": False, "batch_size": 32, "epochs": 60, "lr": 3e-3, "patience": 10}

    def _load(self, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return load_digits_rows(seed=seed)

    def build_model(self, options: dict, dtype=np.float32) -> ManyToOne:
        self.options = {**self.options, **options}
        return ManyToOne(10, options["hidden"], input_size=8, bidirectional=options["bidirectional"], dtype=dtype,
                         seed=self.seed, **model_kwargs(options))

    def _logits(self, model: ManyToOne, x: np.ndarray) -> np.ndarray:
        return model.forward(x.transpose(1, 0, 2))  # (N, 8 rows, 8) -> time-major (8, N, 8)


class OneToOneDigits(_DigitClassifier[OneToOne]):
    name = "onetoone"
    defaults = {"cell": "rnn", "hidden": 64, "layers": 1, "nonlinearity": "tanh", "dropout": 0.0,
                "bidirectional": False, "batch_size": 32, "epochs": 60, "lr": 3e-3, "patience": 10}

    def _load(self, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return load_digits_flat(seed=seed)

    def build_model(self, options: dict, dtype=np.float32) -> OneToOne:
        if options["layers"] != 1 or options["bidirectional"]:
            raise TaskError("onetoone: a single step has one layer and one direction (drop --layers/--bidirectional)")
        self.options = {**self.options, **options}
        return OneToOne(64, 10, options["hidden"], cell=options.get("cell", "rnn"), nonlinearity=options["nonlinearity"],
                        dtype=dtype, seed=self.seed)

    def _logits(self, model: OneToOne, x: np.ndarray) -> np.ndarray:
        return model.forward(x)


class Caption(_DigitTask[OneToMany]):
    name = "caption"
    metric_keys = ("exact_match",)
    predict_inputs = "a test image number"
    primary_metric = "exact_match"
    defaults = {"cell": "rnn", "hidden": 64, "layers": 1, "embed": 16, "nonlinearity": "tanh", "dropout": 0.0,
                "recurrent_dropout": 0.0, "zoneout": 0.0, "layer_norm": False,
                "bidirectional": False, "batch_size": 32, "epochs": 60, "lr": 3e-3, "patience": 10}

    def __init__(self, data=None, seed=0, meta=None, score_file=None, options=None, load_data=True,
                 valid_file=None, test_file=None) -> None:
        super().__init__(data, seed, meta, score_file, options, load_data, valid_file, test_file)
        self.vocab = (saved_entry(meta, "vocab", Vocab.from_dict) if meta
                      else Vocab.from_texts(self.splits["train"][1], level="char"))

    def _load(self, seed: int) -> dict[str, tuple[np.ndarray, list[str]]]:
        return load_digit_captions(seed=seed)

    def meta(self) -> dict:
        return {"vocab": self.vocab.to_dict()}

    def build_model(self, options: dict, dtype=np.float32) -> OneToMany:
        if options["bidirectional"]:
            raise TaskError("caption: a decoder that generates text cannot be bidirectional")
        self.options = {**self.options, **options}
        return OneToMany(64, len(self.vocab), options["hidden"], embed_dim=options["embed"], dtype=dtype,
                         seed=self.seed, **model_kwargs(options))

    def _teacher_forcing(self, captions):
        encoded = [self.vocab.encode(c) for c in captions]
        inputs, _ = pad_batch([np.concatenate(([self.vocab.bos_id], ids)) for ids in encoded])
        outputs, lengths = pad_batch([np.concatenate((ids, [self.vocab.eos_id])) for ids in encoded])
        return inputs, outputs, lengths

    def train_step(self, model: OneToMany, batch, carry):
        x, captions = batch
        inputs, outputs, lengths = self._teacher_forcing(captions)
        loss, dlogits = model.loss(model.forward(x, inputs, lengths), outputs, lengths)
        count = int(lengths.sum())
        model.backward(dlogits)
        return loss, count, None

    def train_batches(self, epoch: int):
        x, captions = self.splits["train"]
        return [(x[index], [captions[i] for i in index])
                for index in _batch_order(len(captions), self.options["batch_size"], self.seed, epoch)]

    def _captions(self, model: OneToMany, x: np.ndarray, **options) -> list[str]:
        generated = model.generate(x, self.vocab.bos_id, self.vocab.eos_id, max_len=12, **options)
        return [self.vocab.decode(ids) for ids in generated]

    def evaluate(self, model: OneToMany, split: str = "valid") -> dict[str, float]:
        x, captions = self.splits[split]
        inputs, outputs, lengths = self._teacher_forcing(captions)
        loss, _ = model.loss(model.forward(x, inputs, lengths), outputs, lengths)
        return {"loss": loss / int(lengths.sum()), "exact_match": exact_match(self._captions(model, x), captions)}

    def baseline(self, split: str = "test") -> dict[str, float]:
        train = self.splits["train"][1]
        most_common = max(set(train), key=train.count)
        return {"exact_match": exact_match([most_common] * len(self.splits[split][1]), self.splits[split][1])}

    def predict(self, model: OneToMany, inputs: Iterable[str]) -> list[str]:
        """Captions for test images given by index (``rnnkit predict DIR 0 5 17``)."""
        x, _ = self.splits["test"]
        try:
            index = [int(i) for i in inputs]
        except ValueError:
            raise TaskError(f"caption: inputs are test image numbers 0..{len(x) - 1}") from None
        if any(not 0 <= i < len(x) for i in index):
            raise TaskError(f"caption: image numbers must be in 0..{len(x) - 1}, got {index}")
        return self._captions(model, x[index], method="beam", beam_size=3)

    def show(self, model: OneToMany) -> str:
        x, captions = self.splits["test"]
        greedy = self._captions(model, x[:8])
        sampled = self._captions(model, x[:8], method="sample", temperature=0.7, rng=np.random.default_rng(self.seed))
        return "\n".join(f"image {i}: {_ascii(x[i])}  greedy {g!r:9} sampled {s!r:9} true {c!r}"
                         for i, (g, s, c) in enumerate(zip(greedy, sampled, captions[:8])))


def _ascii(image: np.ndarray) -> str:
    """The 8x8 image squeezed into one line of shading characters (rows joined by '|')."""
    shades = " .:#"
    rows = image.reshape(8, 8)
    return "|".join("".join(shades[min(3, int(v * 4))] for v in row) for row in rows)
