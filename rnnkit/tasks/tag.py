"""tag: part-of-speech tagging, many-to-many with past and future context (bidirectional).

Default data: sentences of the Brown corpus with the 12 universal part-of-speech tags. A tag
depends on the words after it too ("that" is a determiner, a pronoun or a conjunction depending
on what follows), which is what the reverse direction adds; ``--no-bidirectional`` shows the
difference. Baselines: the most frequent tag overall, and (reported beside it) each word's most
frequent training tag.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rnnkit.data import Vocab, load_tag, read_tagged
from rnnkit.data.tokenizers import WordTokenizer, unknown_share
from rnnkit.models import ManyToMany
from rnnkit.tasks.base import Task, TaskError
from rnnkit.tasks.common import (
    batches,
    check_labels,
    expect,
    label_warnings,
    model_kwargs,
    saved_entry,
    saved_tokenizer,
    tokenize,
)

#: validation words unknown to the vocabulary above which tagging is warned of (unknown words are
#: normal in tagging, tagged from context; this many are not)
MAX_TAG_OOV = 0.10


class Tag(Task[ManyToMany]):
    name = "tag"
    batch_axes = (1, 0, 1)  # ids (T, B), lengths (B,), tags (T, B)
    metric_keys = ("token_accuracy",)
    takes_split_files = True
    predict_inputs = "a sentence to tag"
    primary_metric = "token_accuracy"
    # 1,000 Brown sentences: 10 epochs (290 updates) 0.842 token accuracy, up to 60 with early stopping
    # 0.852 (README, "Small data")
    min_updates = 2000
    defaults = {"cell": "rnn", "hidden": 128, "layers": 1, "embed": 64, "nonlinearity": "tanh", "dropout": 0.0,
                "recurrent_dropout": 0.0, "zoneout": 0.0, "layer_norm": False, "embed_dropout": 0.0,
                "bidirectional": True, "batch_size": 32, "epochs": 10, "lr": 2e-3, "tokens": "auto", "min_freq": 2,
                "vocab_size": None}

    def __init__(self, data=None, seed=0, meta=None, score_file=None, options=None, load_data=True,
                 valid_file=None, test_file=None) -> None:
        super().__init__(data, seed, meta, score_file, options, load_data, valid_file, test_file)
        self.splits = self._splits(lambda path: load_tag(path, seed=seed), read_tagged)
        if self.options["tokens"] not in ("auto", "word"):
            raise TaskError(f"tag: --tokens {self.options['tokens']} does not apply: the tokens are the words of "
                            f"the file, one tag each (use --tokens word or auto)")
        if meta is not None:
            tokenizer = saved_tokenizer(meta, "tokenizer")
            if not isinstance(tokenizer, WordTokenizer):  # tag fits the words of its file, one tag each
                raise TaskError(f"checkpoint task_meta.tokenizer: expected word tokens, got {tokenizer.describe()}")
            self.tokenizer = tokenizer
            self.tags = saved_entry(meta, "tags", Vocab.from_dict)
            self.word_tag = saved_entry(meta, "word_tag", expect(lambda table: isinstance(table, dict) and all(
                isinstance(word, str) and tag in self.tags.stoi for word, tag in table.items()),
                "a dict from words to known tags"))
        else:
            train = self.splits["train"]
            self.tokenizer = WordTokenizer.fit([words for words, _ in train], min_freq=int(self.options["min_freq"]),
                                               max_size=self.options.get("vocab_size"))
            self.notes.append(f"[tag] text tokens: word (the file's own tokens, one tag each); "
                              f"{self.tokenizer.describe()}")
            valid = self.splits.get("valid", [])
            unknown = unknown_share([self.tokenizer.encode_words(words) for words, _ in valid], self.tokenizer.unk_id)
            if unknown > MAX_TAG_OOV:
                self.warnings.append(f"{unknown:.1%} of the validation words are unknown to the vocabulary "
                                     f"({self.tokenizer.describe()}); their tags come from context alone. "
                                     f"Try --min-freq 1, or more training data")
            self.tags = Vocab(sorted({t for _, tags in train for t in tags}), level="word", specials=())
            self.word_tag = _most_frequent_tags(train)
            others: dict[str, Sequence[str]] = {name: [t for _, tags in sentences for t in tags]
                                                for name, sentences in self.splits.items() if name != "train"}
            self.warnings += label_warnings("tags", [t for _, tags in train for t in tags], others,
                                            imbalance=False)  # tags are skewed by nature
        self.encoded = {name: self._encode(sentences, name) for name, sentences in self.splits.items()}

    def _encode(self, sentences, split):
        check_labels(self.name, "tags", self.tags.stoi, [t for _, tags in sentences for t in tags], split,
                     self.score_file)
        # a sentence with a tag never seen in training cannot be tagged right: warned of in __init__
        sentences = [(ws, ts) for ws, ts in sentences if all(t in self.tags for t in ts)]
        words = [self.tokenizer.encode_words(ws) for ws, _ in sentences]
        tags = [np.array([self.tags.stoi[t] for t in ts], dtype=np.int64) for _, ts in sentences]
        return words, tags

    def describe(self) -> str:
        sizes = ", ".join(f"{k} {len(v):,}" for k, v in self.splits.items())
        tokens = sum(len(w) for w, _ in self.splits.get("train", []))
        return (f"{self.data_path or 'Brown corpus, universal tags'}: sentences {sizes} ({tokens:,} training tokens); "
                f"{self.tokenizer.describe()}; {len(self.tags)} tags")

    split_file = "held_out.tsv"

    def write_split(self, split: str, path) -> None:
        known = [(words, tags) for words, tags in self.splits[split] if all(t in self.tags for t in tags)]
        Path(path).write_text("\n".join("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) for words, tags in known),
                              encoding="utf-8")

    def meta(self) -> dict:
        return {"tokenizer": self.tokenizer.to_dict(), "tags": self.tags.to_dict(), "word_tag": self.word_tag}

    def build_model(self, options: dict, dtype=np.float32) -> ManyToMany:
        self.options = {**self.options, **options}
        return ManyToMany(len(self.tags), options["hidden"], vocab_size=len(self.tokenizer), embed_dim=options["embed"],
                          bidirectional=options["bidirectional"], embed_dropout=options.get("embed_dropout", 0.0),
                          dtype=dtype, seed=self.seed, **model_kwargs(options))

    def _padded_tags(self, tags, batch):
        out = np.zeros(batch.ids.shape, dtype=np.int64)
        for column, i in enumerate(batch.index):
            out[: len(tags[i]), column] = tags[i]
        return out

    def train_batches(self, epoch: int):
        words, tags = self.encoded["train"]
        return [(b.ids, b.lengths, self._padded_tags(tags, b))
                for b in batches(words, self.options["batch_size"], self.seed, epoch)]

    def train_step(self, model: ManyToMany, batch, carry):
        ids, lengths, targets = batch
        logits, _ = model.forward(ids, lengths=lengths)
        loss, dlogits = model.loss(logits, targets, lengths)
        count = int(lengths.sum())
        model.backward(dlogits)
        return loss, count, None

    def _run(self, model: ManyToMany, words, tags=None) -> tuple[list[np.ndarray], float]:
        """Predicted tag ids per sentence, and the summed loss when ``tags`` are given."""
        predicted: list = [None] * len(words)
        total_loss = 0.0
        for b in batches(words, 128, None, shuffle=False):
            logits, _ = model.forward(b.ids, lengths=b.lengths)
            guesses = logits.argmax(axis=-1)
            for column, i in enumerate(b.index):
                predicted[i] = guesses[: b.lengths[column], column]
            if tags is not None:
                total_loss += model.loss(logits, self._padded_tags(tags, b), b.lengths)[0]
        return predicted, total_loss

    def evaluate(self, model: ManyToMany, split: str = "valid") -> dict[str, float]:
        words, tags = self.encoded[split]
        predicted, loss = self._run(model, words, tags)
        correct = sum(int(np.sum(p == t)) for p, t in zip(predicted, tags))
        count = sum(len(t) for t in tags)
        return {"loss": loss / count, "token_accuracy": correct / count}

    def baseline(self, split: str = "test") -> dict[str, float]:
        sentences = self.splits[split]
        gold = [t for _, tags in sentences for t in tags]
        majority = Counter(self.word_tag.values()).most_common(1)[0][0] if self.word_tag else Counter(gold).most_common(1)[0][0]
        return {"token_accuracy": float(np.mean([t == majority for t in gold]))}

    def per_word_baseline(self, split: str = "test") -> float:
        """Accuracy of tagging each word with its most frequent training tag (unseen: the
        most frequent tag overall): the classic strong baseline for part-of-speech tagging."""
        fallback = Counter(self.word_tag.values()).most_common(1)[0][0]
        pairs = [(w.lower(), t) for words, tags in self.splits[split] for w, t in zip(words, tags)]
        return float(np.mean([self.word_tag.get(w, fallback) == t for w, t in pairs]))

    def predict(self, model: ManyToMany, inputs: Iterable[str]) -> list[str]:
        inputs = list(inputs)
        self.check_predict_inputs(inputs)
        return self._tagged(model, [tokenize(text, lower=False) for text in inputs])

    def _tagged(self, model: ManyToMany, sentences: list[list[str]]) -> list[str]:
        predicted, _ = self._run(model, [self.tokenizer.encode_words(s) for s in sentences])
        return [" ".join(f"{w}/{self.tags.itos[t]}" for w, t in zip(s, p)) for s, p in zip(sentences, predicted)]

    def show(self, model: ManyToMany) -> str:
        lines = self._tagged(model, [words for words, _ in self.splits["test"][:3]])
        return "\n".join(lines) + f"\n(each word's most frequent training tag scores {self.per_word_baseline():.4f} on test)"


def _most_frequent_tags(sentences) -> dict[str, str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for words, tags in sentences:
        for w, t in zip(words, tags):
            counts[w.lower()][t] += 1
    return {w: c.most_common(1)[0][0] for w, c in counts.items()}
