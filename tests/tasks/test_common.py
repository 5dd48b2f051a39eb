"""A task rebuilt from a checkpoint's metadata (eval, predict, sample, --resume) names the entry
that is missing or damaged, never a Python error from deep inside ("'int' object is not
subscriptable", a KeyError of a label)."""

import math
import random

import pytest

from rnnkit.tasks.base import TaskError
from rnnkit.tasks.classify import Classify
from rnnkit.tasks.forecast import Forecast
from rnnkit.tasks.tag import Tag
from rnnkit.tasks.translate import Translate

WORDS = ["red", "green", "blue", "cat", "dog", "runs", "sleeps", "the", "a"]
KINDS = {"red": "ADJ", "green": "ADJ", "blue": "ADJ", "cat": "NOUN", "dog": "NOUN", "runs": "VERB", "sleeps": "VERB",
         "the": "DET", "a": "DET"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = random.Random(5)
    sentences = [rng.choices(WORDS, k=rng.randint(1, 5)) for _ in range(200)]
    directory = tmp_path_factory.mktemp("data")
    contents = {
        Classify: "".join(f"{'animal' if s[0] in ('cat', 'dog') else 'other'}\t{' '.join(s)}\n" for s in sentences),
        Tag: "\n".join("".join(f"{w}\t{KINDS[w]}\n" for w in s) for s in sentences),
        Translate: "".join(f"{' '.join(s)}\t{' '.join(reversed(s))}\n" for s in sentences),
        Forecast: "".join(f"{10 * math.sin(i / 5):.3f}\n" for i in range(200)),
    }
    paths = {}
    for task, content in contents.items():
        paths[task] = directory / f"{task.name}.txt"
        paths[task].write_text(content, encoding="utf-8")
    return paths


@pytest.mark.parametrize("task, damage, message", [
    (Classify, lambda m: m.update(majority="nonsense"), r"task_meta.majority: expected one of the labels, got 'nonsense'"),
    (Classify, lambda m: m.update(labels=5), r"task_meta.labels: not a vocabulary dict: expected keys .*, got int"),
    (Classify, lambda m: m.pop("tokenizer"), r"task_meta.tokenizer: missing"),
    (Classify, lambda m: m["tokenizer"].update(vocab=5), r"task_meta.tokenizer: not a vocabulary dict"),
    (Tag, lambda m: m.update(word_tag=5), r"task_meta.word_tag: expected a dict from words to known tags, got 5"),
    (Tag, lambda m: m["word_tag"].update(cat="VERBOSE"), r"task_meta.word_tag: expected a dict from words to known tags"),
    (Tag, lambda m: m["tags"].update(symbols=5), r"task_meta.tags: vocabulary dict symbols: expected a list of strings"),
    (Translate, lambda m: m.update(max_len="x"), r"task_meta.max_len: expected a positive integer, got 'x'"),
    (Translate, lambda m: m["source"].update(min_freq="x"), r"task_meta.source: word tokenizer min_freq: expected a positive"),
    (Forecast, lambda m: m.update(scale=-5.0), r"task_meta.scale: expected a positive number, got -5.0"),
    (Forecast, lambda m: m.update(mean=None), r"task_meta.mean: expected a finite number, got None"),
    (Forecast, lambda m: m.update(mean=1e300), r"task_meta.mean: expected a finite number, got 1e\+300"),
])
def test_damaged_task_metadata_is_named(files, task, damage, message):
    import copy

    options = {"tokens": "word"} if task is not Forecast else {}
    meta = copy.deepcopy(task(data=str(files[task]), options=options).meta())
    task(data=str(files[task]), meta=copy.deepcopy(meta), load_data=False)  # undamaged: fine
    damage(meta)
    with pytest.raises(TaskError, match=r"^checkpoint " + message):
        task(data=str(files[task]), meta=meta, load_data=False)


def test_a_split_whose_labels_training_never_saw_is_an_error(tmp_path):
    """Every label different: the validation examples all have labels training never saw, are
    left out, and nothing is left to score (it was a ZeroDivisionError)."""
    path = tmp_path / "unique.tsv"
    path.write_text("".join(f"label{i}\tword{i} other\n" for i in range(300)), encoding="utf-8")
    with pytest.raises(TaskError, match=r"classify: no (valid|test) example has a label seen in training"):
        Classify(data=str(path))
