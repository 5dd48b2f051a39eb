"""``--cell`` through the command line: train with a gated cell, then eval, predict, sample and
resume rebuild the same cell; checkpoints from before ``--cell`` load as rnn."""

import json

import pytest

from tests.cli.test_cli import assert_one_line_error, rnnkit
from tests.cli.test_end_to_end import last_json

pytestmark = pytest.mark.slow


def test_charlm_lstm_train_resume_eval_sample_predict(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 100, encoding="utf-8")
    out = str(tmp_path / "run")
    first = last_json(rnnkit("train", "charlm", "--cell", "lstm", "--data", str(text), "--out", out, "--epochs", "1",
                             "--hidden", "16", "--layers", "1", "--batch-size", "4"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model_options"]["cell"] == "lstm"
    resumed = last_json(rnnkit("train", "charlm", "--data", str(text), "--out", out, "--epochs", "2", "--resume"))
    assert resumed["steps"] > first["steps"]
    evaluated = last_json(rnnkit("eval", out))
    assert evaluated["bpc"] == pytest.approx(resumed["bpc"], rel=1e-6)
    sample = rnnkit("sample", out, "--prime", "the ", "--length", "30")
    assert sample.returncode == 0 and sample.stdout.startswith("the ")
    predicted = rnnkit("predict", out, "the quick")
    assert predicted.returncode == 0 and predicted.stdout.startswith("the quick\t")
    assert_one_line_error(rnnkit("train", "charlm", "--data", str(text), "--out", out, "--resume", "--cell", "gru"),
                          r"--resume: .* was trained with --cell lstm, not gru")


WORDS = ["one", "two", "three", "four", "five", "six"]
PAIRS = "".join(f"{a} {b}\t{b} {a}\n" for a in WORDS for b in WORDS)  # translate: swap two words


@pytest.mark.parametrize("task, cell, inputs", [("caption", "gru", ["0", "3"]), ("translate", "lstm", ["one two", "six"])])
def test_decoders_with_gated_cells_eval_and_predict_by_beam(task, cell, inputs, tmp_path):
    out = str(tmp_path / task)
    data = []
    if task == "translate":  # a small file: decoding the default test split takes long untrained
        (tmp_path / "pairs.tsv").write_text(PAIRS, encoding="utf-8")
        data = ["--data", str(tmp_path / "pairs.tsv")]
    trained = last_json(rnnkit("train", task, "--cell", cell, "--out", out, "--max-seconds", "2", "--hidden", "16",
                               "--epochs", "1", *data))
    key = "exact_match"
    assert last_json(rnnkit("eval", out))[key] == pytest.approx(trained[key], rel=1e-6)
    predicted = rnnkit("predict", out, *inputs)  # beam search over the gated decoder's tuple state
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert [line.split("\t")[0] for line in predicted.stdout.splitlines()] == inputs


def test_checkpoint_without_a_cell_loads_as_rnn(tmp_path):
    from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint

    out = tmp_path / "run"
    trained = last_json(rnnkit("train", "digits", "--out", str(out), "--max-seconds", "1", "--hidden", "8",
                               "--epochs", "1"))
    for directory in (out, out / "best"):  # as written before --cell existed
        arrays, meta = load_checkpoint(directory)
        del meta["model_options"]["cell"]
        save_checkpoint(directory, arrays, meta)
    assert last_json(rnnkit("eval", str(out)))["accuracy"] == pytest.approx(trained["accuracy"], rel=1e-6)
    resumed = last_json(rnnkit("train", "digits", "--out", str(out), "--epochs", "2", "--resume"))
    assert resumed["steps"] > trained["steps"]
    assert json.loads((out / "config.json").read_text())["model_options"]["cell"] == "rnn"


def test_nonlinearity_with_a_gated_cell_is_a_clear_error(tmp_path):
    assert_one_line_error(rnnkit("train", "tag", "--cell", "gru", "--nonlinearity", "relu", "--out", str(tmp_path)),
                          r"rnnkit: error: --nonlinearity relu applies only to --cell rnn; the gru cell has its own")
    assert_one_line_error(rnnkit("train", "tag", "--cell", "peephole"), r"argument --cell: invalid choice: 'peephole'")
    assert "--cell" in rnnkit("train", "--help").stdout
