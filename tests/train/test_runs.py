"""train/runs.py: the upgrade of checkpoints older versions wrote, in one function."""

import numpy as np
import pytest

from rnnkit.data.vocab import Vocab
from rnnkit.tasks import get_task
from rnnkit.train.runs import upgrade


def _meta(task: str, task_meta: dict, **options) -> dict:
    return {"task": task, "task_meta": task_meta, "model_options": dict(options),
            "position": {"epoch": 1, "batch": 0, "step": 4, "saved_scores": [0.5]}}


def test_a_run_from_before_cells_processes_and_tuple_states_reads_as_today():
    h = np.ones((1, 2, 3), np.float32)
    arrays = {"model.w": np.zeros(2, np.float32), "carry": h}
    meta = upgrade(_meta("charlm", {"tokenizer": {}}, hidden=3), arrays)
    assert meta["model_options"]["cell"] == "rnn" and meta["processes"] == 1
    assert "saved_scores" not in meta["position"]
    assert meta["carry"] == 1 and "carry" not in arrays and arrays["carry.0"] is h


def test_today_s_description_is_left_as_it_is():
    arrays = {"carry.0": np.zeros(3), "carry.1": np.zeros(3)}
    meta = {**_meta("charlm", {"tokenizer": {"kind": "char"}}, cell="lstm", bptt_stride=None, documents="one"),
            "processes": 2, "carry": 2}
    meta["position"].pop("saved_scores")
    before = repr(meta), sorted(arrays)
    assert (repr(upgrade(meta, arrays)), sorted(arrays)) == before


@pytest.mark.parametrize("task", ["charlm", "classify", "tag"])
def test_a_bare_vocabulary_becomes_the_tokenizer_the_task_reads(task):
    vocab = Vocab.from_texts([["a", "b"]], level="word").to_dict()
    task_meta = upgrade(_meta(task, {"vocab": vocab}), None)["task_meta"]
    assert task_meta["tokenizer"] is vocab and "vocab" not in task_meta


def test_entries_added_later_get_the_values_older_runs_behaved_by():
    classify = upgrade(_meta("classify", {}), None)
    assert classify["task_meta"]["majority"] is None and classify["model_options"]["ensemble"] == 1
    assert upgrade(_meta("tag", {}), None)["task_meta"]["word_tag"] == {}
    translate = upgrade(_meta("translate", {}), None)
    assert translate["task_meta"]["max_len"] == 40 and translate["model_options"]["attention"] == "none"
    charlm = upgrade(_meta("charlm", {}), None)["model_options"]
    assert "attention" not in charlm
    assert charlm["bptt_stride"] is None and charlm["documents"] == "one"  # k1 = k2, one document


def test_an_upgraded_classify_run_rebuilds_its_task_without_data():
    """A classify checkpoint from before tokenizers and the majority baseline: its task comes back
    from the upgraded description alone."""
    vocab = Vocab.from_texts(["hello there"], level="char").to_dict()
    labels = Vocab(["neg", "pos"], level="word", specials=()).to_dict()
    meta = upgrade(_meta("classify", {"vocab": vocab, "labels": labels}), None)
    task = get_task("classify")(meta=meta["task_meta"], options={"tokens": "char"}, load_data=False)
    assert task.majority is None and list(task.labels.stoi) == ["neg", "pos"]
    assert task.tokenizer.decode(task.tokenizer.encode("hello")) == "hello"
