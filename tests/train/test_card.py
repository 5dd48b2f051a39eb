"""The model card of a run directory (``rnnkit/train/card.py``): its YAML front matter read back
by PyYAML, its figures those given (and, through the command, those of the result line), the
bundled data set or the user's, and the user's own README.md never replaced."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from rnnkit.tasks import TASKS, get_task
from rnnkit.train.card import (
    CARD_FILE,
    OWN_DATA,
    TASK_FACTS,
    RunFacts,
    card_text,
    dataset_of,
    is_card,
    remove_card,
    write_card,
    yaml_lines,
)
from rnnkit.train.runs import replace_earlier_run

yaml = pytest.importorskip("yaml")


def _facts(**changes):
    result = {"task": "classify", "accuracy": 0.8125, "macro_f1": 1e-05, "baseline_accuracy": 0.4437,
              "baseline_macro_f1": float("nan"), "test_loss": 0.51, "epochs": 2.5,
              "better_than_baseline": True, "tokens": {"text": "word"}, "steps": 120, "seconds": 4.2,
              "stopped_by": "early_stopping", "checkpoint": "runs/classify"}
    facts = {"result": result, "metric_keys": ("accuracy", "macro_f1"), "data": None,
             "data_description": "labelled tweets: examples train 10", "model_class": "ManyToOne",
             "parameters": 12345, "dtype": "float32",
             "options": {"cell": "lstm", "hidden": 8, "layers": 1, "bidirectional": True},
             "train_config": {"epochs": 3, "lr": 0.002, "optimizer": "adam", "progress": False},
             "train_seconds": 3.5, "predicts": "a text to classify",
             "verdict": "better than the baseline on accuracy"}
    return RunFacts(**{**facts, **changes})


def _front(text):
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def _figures(front):
    """The model-index metrics: the model's and the baselines', by type."""
    (entry,) = front["model-index"]
    (results,) = entry["results"]
    assert results["dataset"]["split"] == "test"
    metrics = {m["type"]: m["value"] for m in results["metrics"]}
    assert len(metrics) == len(results["metrics"])  # no metric twice
    model = {k: v for k, v in metrics.items() if not k.startswith("baseline_")}
    return model, {k: v for k, v in metrics.items() if k.startswith("baseline_")}


# -- the writer -------------------------------------------------------------------------------
def test_each_baseline_is_named_for_what_it_is():
    result = {**_facts().result, "baseline_tfidf_accuracy": 0.7823, "baseline_tfidf_macro_f1": 0.7736}
    front, _ = _front(card_text(_facts(result=result)))
    names = {m["type"]: m["name"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert names["baseline_accuracy"].endswith("(the majority class)")
    assert names["baseline_tfidf_accuracy"] == ("baseline test accuracy (TF-IDF of words and word pairs with "
                                                "logistic regression)")
    assert "majority" not in names["baseline_tfidf_macro_f1"]


def test_the_front_matter_parses_and_holds_the_figures_given():
    front, body = _front(card_text(_facts()))
    assert front["library_name"] == "rnnkit"
    assert front["tags"] == ["text-classification", "rnnkit", "lstm"]
    assert front["pipeline_tag"] == "text-classification"
    assert front["datasets"] == [TASK_FACTS["classify"].dataset.name] and front["license"] == "mit"
    assert front["metrics"] == ["accuracy", "macro_f1"]
    model, baseline = _figures(front)
    assert model == {"accuracy": 0.8125, "macro_f1": 1e-05}  # 1e-05 read back as a float, not a string
    assert isinstance(model["macro_f1"], float)
    assert baseline == {"baseline_accuracy": 0.4437, "baseline_macro_f1": None}  # NaN: null, as in the JSON
    assert "| accuracy (accuracy, higher is better) | 0.8125 | 0.4437 |" in body
    assert "| macro_f1 (macro-averaged F1, higher is better) | 0.0000 | n/a |" in body


def test_the_body_says_what_how_and_how_to_run_it():
    _, body = _front(card_text(_facts()))
    for words in ("`ManyToOne`", "lstm cell", "hidden size 8", "bidirectional", "12,345 parameters",
                  "2.5 epochs, 120 steps, 3.50 s of training (4.2 s for the whole command)", "early stopping",
                  f"Python {sys.version_info.major}.{sys.version_info.minor}", "NumPy ", "rnnkit 0.",
                  "Verdict: better than the baseline on accuracy", "rnnkit eval DIR",
                  "rnnkit predict DIR 'what a lovely day'", "rnnkit export DIR", "load_trained(\"DIR\")",
                  "| lr | 0.002 |", "| bidirectional | true |", "Tokens: text word."):
        assert words in body, words
    assert "| progress |" not in body  # a setting that changes nothing of the model
    assert "rnnkit sample" not in body  # classify does not sample
    _, charlm = _front(card_text(_facts(result={"task": "charlm", "bpc": 2.0, "baseline_bpc": 4.8},
                                        metric_keys=("bpc",), samples=True, predicts="a text to continue")))
    assert "rnnkit sample DIR" in charlm and "lower is better" in charlm


def test_own_data_is_named_so_and_carries_no_license():
    own = "/home/me/tweets.tsv"
    front, body = _front(card_text(_facts(data=own, data_description=f"{own}: examples train 10")))
    assert front["datasets"] == [OWN_DATA] and "license" not in front
    assert front["model-index"][0]["results"][0]["dataset"]["name"] == OWN_DATA
    assert "`tweets.tsv`" in body and "/home/me" not in body
    assert "rnnkit predict DIR INPUT..." in body  # the bundled data's example fits no other data
    bundled, _ = _front(card_text(_facts()))
    assert bundled["model-index"][0]["results"][0]["dataset"]["name"] != OWN_DATA


def test_a_license_is_given_only_where_the_data_has_a_known_one():
    assert dataset_of("tag", None).license is None  # "redistribution permitted" is no license of the list
    assert dataset_of("digits", None).license == "cc-by-4.0"
    front, _ = _front(card_text(_facts(result={"task": "forecast", "mse": 1.0, "baseline_mse": 2.0},
                                       metric_keys=("mse",), options={"cell": "gru"})))
    assert (front["license"], front["license_name"]) == ("other", "public-domain")
    tagged = {"task": "tag", "token_accuracy": 0.9, "baseline_token_accuracy": 0.2}
    front, _ = _front(card_text(_facts(result=tagged, metric_keys=("token_accuracy",))))
    assert "license" not in front and front["tags"][0] == "token-classification"


def test_every_task_has_its_card_facts():
    assert set(TASK_FACTS) == set(TASKS)


@pytest.mark.parametrize("value", [
    "plain", "yes", "No", "null", "~", "", "1.5", "0x1F", "1e5", "12:30", "- item", "# not a comment", "a: b",
    'say "hi"', "back\\slash", "two\nlines", "tab\there", "\u2028line separator", "\x85next line",
    "caf\u00e9",
    "\U0001f600 beyond the BMP", "[not, a, list]", "{not: a map}", "&anchor", "*alias", "!tag", "%directive",
    "@at", "`tick", "|", ">", "'single'", "trailing space ", " leading space", "lgpl-2.1", "cc-by-4.0",
    0, -7, 10**20, 0.0, -0.0, 1e-05, 1e16, -2.5e-300, 5e-324, 1.7976931348623157e308, 0.1, True, False, None,
    [], {}, ["a", 1, [2.5, None]], {"nested": {"deep": ["x"]}}, [{"type": "a", "value": 1.0}, {"type": "b"}],
])
def test_each_value_reads_back_as_written(value):
    assert yaml.safe_load("\n".join(yaml_lines({"key": value}))) == {"key": value}


def test_a_value_that_is_not_finite_reads_back_as_null():
    assert yaml.safe_load("\n".join(yaml_lines({"a": math.inf, "b": [math.nan]}))) == {"a": None, "b": [None]}


def test_the_card_is_written_whole_and_replaces_only_a_card(tmp_path, capsys):
    path = write_card(tmp_path, _facts())
    assert path == tmp_path / CARD_FILE and is_card(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CARD_FILE]  # no temporary file left
    assert write_card(tmp_path, _facts(result={**_facts().result, "accuracy": 0.5})) == path  # its own card
    assert _figures(_front(path.read_text(encoding="utf-8"))[0])[0]["accuracy"] == 0.5

    mine = tmp_path / "project"
    mine.mkdir()
    (mine / CARD_FILE).write_text("# My project\n\nlibrary_name: rnnkit\n", encoding="utf-8")
    assert write_card(mine, _facts()) is None
    assert (mine / CARD_FILE).read_text(encoding="utf-8") == "# My project\n\nlibrary_name: rnnkit\n"
    assert "is not an rnnkit model card; left as it is" in capsys.readouterr().err


def test_a_fresh_run_removes_the_earlier_card_but_not_a_readme_of_the_users(tmp_path):
    run, project = tmp_path / "run", tmp_path / "project"
    run.mkdir()
    project.mkdir()
    write_card(run, _facts())
    (project / CARD_FILE).write_text("---\ntitle: mine\n---\n# Mine\n", encoding="utf-8")
    replace_earlier_run(run, "classify", None)
    replace_earlier_run(project, "classify", None)
    assert not (run / CARD_FILE).exists()
    assert (project / CARD_FILE).read_text(encoding="utf-8") == "---\ntitle: mine\n---\n# Mine\n"
    remove_card(project)
    assert (project / CARD_FILE).exists()


# -- through the command ----------------------------------------------------------------------
SHORT = ["--max-seconds", "1", "--epochs", "1", "--hidden", "8", "--no-progress"]
no_espeak = importlib.util.find_spec("espeakng_loader") is None


def _train(task, out, *extra):
    command = [sys.executable, "-m", "rnnkit", "train", task, "--out", str(out), *SHORT, *extra]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("task", [
    *(t for t in TASKS if t != "speech"),
    pytest.param("speech", marks=pytest.mark.skipif(no_espeak, reason="speech's data needs espeakng_loader")),
])
def test_the_model_card_of_every_bundled_task_names_its_metrics_correctly(task, tmp_path):
    result = _train(task, tmp_path / "run")
    front, body = _front((tmp_path / "run" / CARD_FILE).read_text(encoding="utf-8"))
    keys = get_task(task).metric_keys
    model, baseline = _figures(front)
    assert list(model) == list(keys) == front["metrics"]
    assert model == {k: result[k] for k in keys}
    assert baseline == {k: v for k, v in result.items() if k.startswith("baseline_")} and baseline
    assert front["library_name"] == "rnnkit" and front["datasets"] == [dataset_of(task, None).name]
    assert front["tags"][:2] == [TASK_FACTS[task].pipeline_tag, "rnnkit"] and len(front["tags"]) == 3
    assert f"{result['steps']} steps" in body and f"rnnkit train {task}" in body


@pytest.mark.slow
def test_a_run_on_own_data_says_so_and_eval_leaves_the_card_alone(tmp_path):
    series = tmp_path / "series.txt"
    series.write_text("".join(f"{50 + 40 * math.sin(i / 3):.2f}\n" for i in range(200)), encoding="utf-8")
    result = _train("forecast", tmp_path / "run", "--data", str(series))
    card = tmp_path / "run" / CARD_FILE
    front, _ = _front(card.read_text(encoding="utf-8"))
    assert front["datasets"] == [OWN_DATA] and "license" not in front
    assert _figures(front) == ({"mse": result["mse"]}, {"baseline_mse": result["baseline_mse"]})

    before = card.read_bytes(), os.stat(card).st_mtime_ns
    evaluated = subprocess.run([sys.executable, "-m", "rnnkit", "eval", str(tmp_path / "run")],
                               capture_output=True, text=True, timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr
    assert (card.read_bytes(), os.stat(card).st_mtime_ns) == before
