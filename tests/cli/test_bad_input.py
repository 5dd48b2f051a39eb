"""Bad input to the command, as a user (or a hostile one) gives it: every case a one-line error
with exit status 2 naming what was expected, never a traceback; damaged checkpoints included."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.cli.test_cli import assert_one_line_error


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], r"--batch-size: expected a positive integer, got 0"),
    (["--batch-size", "-4"], r"--batch-size: expected a positive integer, got -4"),
    (["--max-seconds", "nan"], r"--max-seconds: expected a positive number of seconds, got nan"),
    (["--max-seconds", "-5"], r"--max-seconds: expected a positive number of seconds"),
    (["--patience", "-1"], r"--patience: expected an integer >= 0"),
    (["--seed", "-1"], r"--seed: expected an integer in \[0, 2\*\*32\)"),
    (["--lr", "nan"], r"--lr: expected a positive number, got nan"),
    (["--weight-decay", "-0.1"], r"--weight-decay: expected a number >= 0, got -0.1"),
    (["--weight-decay", "inf"], r"--weight-decay: expected a number >= 0, got inf"),
    (["--dropout", "1.5"], r"--dropout: expected a number in \[0, 1\)"),
    (["--recurrent-dropout", "1"], r"--recurrent-dropout: expected a number in \[0, 1\), got 1.0"),
    (["--zoneout", "-0.5"], r"--zoneout: expected a number in \[0, 1\), got -0.5"),
    (["--embed-dropout", "1"], r"--embed-dropout: expected a number in \[0, 1\), got 1.0"),
    (["--cell", "mingru", "--recurrent-dropout", "0.2"], r"the mingru cell has no recurrent product"),
    (["--hidden", "1000000"], r"the model would need about [\d,.]+ GiB .* Use a smaller --hidden or --layers"),
    (["--layers", "100000"], r"the model would need about [\d,.]+ GiB"),
    (["--data", "/dev/zero"], r"--data: /dev/zero is not a regular file"),
    (["--save-every", "-1"], r"--save-every: expected a number of seconds >= 0"),
    # it trained, then could not load its own checkpoint (whose schema caps it)
    (["--batch-size", "1000000000"], r"--batch-size: expected at most 1,048,576, got 1000000000"),
])
def test_training_arguments_out_of_range(args, message, tmp_path):
    assert_one_line_error(rnnkit("train", "classify", "--out", str(tmp_path / "run"), *args), message)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    result = rnnkit("train", "digits", "--out", str(out), "--epochs", "1", "--hidden", "8")
    assert result.returncode == 0, result.stderr
    return out


def test_sample_arguments_out_of_range(trained):
    assert_one_line_error(rnnkit("sample", str(trained), "--length", "100000000"),
                          r"--length: expected an integer from 1 to 1,000,000")
    assert_one_line_error(rnnkit("sample", str(trained), "--temperature", "nan"),
                          r"--temperature: expected a positive number, got nan")
    assert_one_line_error(rnnkit("sample", str(trained), "--seed", "-1"),
                          r"--seed: expected an integer in \[0, 2\*\*32\), got -1")


def _rewrite(directory, mutate_meta=None, mutate_arrays=None):
    """Write the checkpoint in ``directory`` again with its metadata or arrays changed (a valid
    file with a valid checksum: only the schema can tell)."""
    from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint

    arrays, meta = load_checkpoint(directory)
    if mutate_meta:
        mutate_meta(meta)
    if mutate_arrays:
        mutate_arrays(arrays)
    save_checkpoint(directory, arrays, meta)


@pytest.mark.parametrize("key", ["task", "task_meta", "model_options", "train_config", "dtype", "position", "rng",
                                 "optimizer"])
def test_a_checkpoint_missing_a_key_is_an_error_naming_it(trained, tmp_path, key):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for directory in (run, run / "best"):
        _rewrite(directory, mutate_meta=lambda meta: meta.pop(key))
    for command in (["eval", str(run)], ["predict", str(run), "x"], ["train", "digits", "--out", str(run), "--resume"]):
        assert_one_line_error(rnnkit(*command), rf"checkpoint .*: {key}: expected .*\(the checkpoint is damaged")


@pytest.mark.parametrize("mutation, message", [
    (lambda meta: meta["position"].update(batch=-5), r"position.batch: expected a non-negative integer, got -5"),
    (lambda meta: meta["model_options"].update(hidden=10**7), r"model_options.hidden: expected a positive integer"),
    (lambda meta: meta.update(task="poetry"), r"task: expected one of charlm, .*, got 'poetry'"),
    (lambda meta: meta.update(dtype="int8"), r"dtype: expected float32 or float64, got 'int8'"),
    (lambda meta: meta["task_meta"].clear(), r"its digits metadata is incomplete or damaged|eval|accuracy"),
])
def test_a_checkpoint_with_wrong_values_is_an_error(trained, tmp_path, mutation, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for directory in (run, run / "best"):
        _rewrite(directory, mutate_meta=mutation)
    result = rnnkit("eval", str(run))
    if result.returncode == 0:  # digits keeps no task metadata: an empty one is fine
        assert "digits" in message and json.loads(result.stdout.splitlines()[-1])["task"] == "digits"
        return
    assert_one_line_error(result, message)


@pytest.mark.parametrize("dtype, value, message", [
    (np.float64, 1e300, r"expected float32 \(the description's dtype\), got float64"),
    (np.int32, 1, r"expected float32 \(the description's dtype\), got int32"),
    # another float width, even one that holds the values exactly: the description says float32
    (np.float16, 1, r"expected float32 \(the description's dtype\), got float16"),
    (np.float32, 1e38, r"holds 1e\+38, beyond any trained weight \(at most 1e\+06\): the file is damaged"),
])
def test_checkpoint_arrays_of_another_dtype(trained, tmp_path, dtype, value, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)

    def mutate(arrays):
        name = next(k for k in arrays if k.startswith("model."))
        arrays[name] = np.full(arrays[name].shape, value, dtype=dtype)

    for directory in (run, run / "best"):
        _rewrite(directory, mutate_arrays=mutate)
    assert_one_line_error(rnnkit("eval", str(run)), message)


def test_fuzzed_checkpoint_bytes_are_one_line_errors(trained, tmp_path):
    """Truncations and bit flips anywhere in the file: a clean error every time (or, for a flip
    in JSON whitespace that changes nothing, a correct score)."""
    import shutil

    rng = np.random.default_rng(0)
    original = (trained / "best" / "checkpoint.safetensors").read_bytes()
    reference = json.loads(rnnkit("eval", str(trained)).stdout.splitlines()[-1])
    cases = [("truncate", int(n)) for n in rng.integers(1, len(original), 6)]
    cases += [("flip", int(n)) for n in rng.integers(0, len(original), 14)]
    for kind, at in cases:
        run = tmp_path / f"{kind}-{at}"
        shutil.copytree(trained, run)
        damaged = bytearray(original[:at] if kind == "truncate" else original)
        if kind == "flip":
            damaged[at] ^= 1 << int(rng.integers(8))
        (run / "best" / "checkpoint.safetensors").write_bytes(bytes(damaged))
        result = rnnkit("eval", str(run))
        assert "Traceback" not in result.stderr, (kind, at, result.stderr)
        if result.returncode == 0:
            assert json.loads(result.stdout.splitlines()[-1]) == reference, (kind, at)
        else:
            assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, (kind, at, result.stderr)


def test_no_batch_of_training_data_is_an_error(tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("just a few characters of text, far too few for one window of training.\n" * 1)
    result = rnnkit("train", "charlm", "--data", str(tiny), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ("makes no batch" in result.stderr or "too short" in result.stderr or "too small" in result.stderr), result.stderr


def test_out_under_a_file_is_an_error(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_one_line_error(rnnkit("train", "digits", "--out", str(tmp_path / "file" / "run"), "--epochs", "1"),
                          r"Not a directory")


def test_a_resume_position_past_the_epoch_is_an_error(trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    _rewrite(run, mutate_meta=lambda meta: meta["position"].update(batch=10**9))
    assert_one_line_error(rnnkit("train", "digits", "--out", str(run), "--epochs", "2", "--resume"),
                          r"position.batch: expected at most position.step \(45\), got 1000000000")
    _rewrite(run, mutate_meta=lambda meta: meta["position"].update(batch=50, step=10**6))  # consistent, too many
    assert_one_line_error(rnnkit("train", "digits", "--out", str(run), "--epochs", "2", "--resume"),
                          r"position.batch: expected at most 45 \(the batches of epoch 2\), got 50")


@pytest.mark.parametrize("mutation, message", [
    (lambda meta: meta["position"].update(bad_epochs=10**12), r"position.bad_epochs: expected at most position.epoch \(1\)"),
    (lambda meta: meta["position"].update(epoch=10**12), r"position.step: expected at least epoch \+ batch"),
    (lambda meta: meta["position"].update(seconds="x"), r"position.seconds: expected a number >= 0, got 'x'"),
    (lambda meta: meta["position"].update(history=["x"]), r"position.history: expected a list of JSON objects"),
    (lambda meta: meta["train_config"].update(patience=-5), r"train_config.patience: expected a positive integer or null"),
    (lambda meta: meta["train_config"].update(log_every=None), r"train_config.log_every: expected a positive integer, got None"),
    (lambda meta: meta["train_config"].update(seed=10**12),
     r"train_config.seed: expected a non-negative integer up to 4,294,967,295"),
    (lambda meta: meta["train_config"].update(surprise=1), r"train_config.surprise: expected no such key"),
    (lambda meta: meta["model_options"].update(dropout=None), r"model_options.dropout: expected a number >= 0 below 1"),
    (lambda meta: meta["model_options"].pop("bidirectional"),
     r"model_options.bidirectional: expected true or false, got 'nothing'"),
    (lambda meta: meta["optimizer"]["hyperparameters"].update(eps=1e300), r"optimizer: expected Adam with .* \(this run's"),
    (lambda meta: meta["optimizer"].update(step=10**12), r"optimizer.step: expected position.step \(45\)"),
    (lambda meta: meta["rng"]["rnn"]["state"].update(inc=-5), r"rng.rnn: expected a PCG64 state"),
    (lambda meta: meta.update(carry=2), r"carry: expected 2 arrays of the state carried between batches, found 0"),
])
def test_a_damaged_checkpoint_is_refused_by_resume(trained, tmp_path, mutation, message):
    """What the probes found (benchmarks/probes.py): each of these trained on silently with
    another run's settings, or stopped with a Python error ("'>=' not supported between
    instances of 'str' and 'int'", OverflowError)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    _rewrite(run, mutate_meta=mutation)
    assert_one_line_error(rnnkit("train", "digits", "--out", str(run), "--hidden", "8", "--epochs", "2", "--resume"),
                          r"checkpoint .*: " + message)


@pytest.mark.parametrize("task, args, message", [
    ("classify", ["--bptt", "10"], r"--bptt does not apply to the classify task"),
    ("tag", ["--documents", "lines"], r"--documents does not apply to the tag task"),
    ("charlm", ["--bptt-stride", "0"], r"--bptt-stride: expected a positive integer, got 0"),
    ("charlm", ["--bptt", "8", "--bptt-stride", "9"], r"--bptt-stride: expected 1\.\.8 \(--bptt"),
    ("charlm", ["--documents", "lines", "--tokens", "bpe"], r"--documents lines finds documents by their newlines"),
    ("onetoone", ["--zoneout", "0.1"], r"--zoneout does not apply to the onetoone task"),
    ("tag", ["--layer-norm"], r"layer_norm: built for the gated cells lstm and gru, not 'rnn'"),
    ("translate", ["--embed-dropout", "0.2"], r"--embed-dropout does not apply to the translate task"),
    ("tag", ["--pooling", "max"], r"--pooling does not apply to the tag task"),
    ("classify", ["--pooling", "sum"], r"argument --pooling: invalid choice: 'sum'"),
    ("classify", ["--ensemble", "0"], r"--ensemble: expected a positive integer, got 0"),
    ("tag", ["--ensemble", "2"], r"--ensemble does not apply to the tag task"),
    ("classify", ["--embed", "256"], r"unrecognized arguments: --embed 256"),  # not --embed-dropout
])
def test_stream_options_out_of_place_or_range(task, args, message, tmp_path):
    assert_one_line_error(rnnkit("train", task, "--out", str(tmp_path / "run"), "--max-seconds", "1", *args), message)


def test_resume_keeps_the_stream_options(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("a short line of text\nand another one\n" * 200, encoding="utf-8")
    out = tmp_path / "run"
    first = rnnkit("train", "charlm", "--data", str(text), "--out", str(out), "--max-seconds", "1", "--hidden", "8",
                   "--layers", "1", "--bptt", "8", "--bptt-stride", "4", "--documents", "lines")
    assert first.returncode == 0, first.stderr
    config = json.loads((out / "config.json").read_text())
    options = config["model_options"]
    assert (options["bptt"], options["bptt_stride"], options["documents"]) == (8, 4, "lines")
    assert_one_line_error(rnnkit("train", "charlm", "--out", str(out), "--resume", "--bptt-stride", "2"),
                          r"these options differ: --bptt-stride 2 \(was 4\)")


def small_tagged_file(path):
    """100 short tagged sentences: a run of a few steps, where the bundled corpus takes a minute an epoch."""
    path.write_text("".join(f"the\tDET\ncat\tNOUN\nsat\tVERB\n{k}\tNUM\n\n" for k in range(100)), encoding="utf-8")
    return path


def test_recurrent_dropout_zoneout_and_layer_norm_train_are_saved_and_kept_on_resume(tmp_path):
    out = tmp_path / "run"
    data = small_tagged_file(tmp_path / "tagged.tsv")
    first = rnnkit("train", "tag", "--data", str(data), "--out", str(out), "--epochs", "1", "--hidden", "8", "--cell",
                   "lstm", "--recurrent-dropout", "0.25", "--zoneout", "0.1", "--layer-norm", "--embed-dropout", "0.3")
    assert first.returncode == 0, first.stderr
    options = json.loads((out / "config.json").read_text())["model_options"]
    assert (options["recurrent_dropout"], options["zoneout"], options["layer_norm"]) == (0.25, 0.1, True)
    assert options["embed_dropout"] == 0.3
    assert_one_line_error(rnnkit("train", "tag", "--out", str(out), "--resume", "--zoneout", "0.2"),
                          r"these options differ: --zoneout 0.2 \(was 0.1\)")
    scored = rnnkit("eval", str(out))
    assert scored.returncode == 0, scored.stderr
    assert_one_line_error(rnnkit("export", str(out), "--out", str(tmp_path / "tag.onnx")),
                          r"layer_norm: ONNX's LSTM operator has no layer normalisation")


def test_weight_decay_reaches_the_optimizer_is_saved_and_kept_on_resume(tmp_path):
    data = small_tagged_file(tmp_path / "tagged.tsv")
    out = tmp_path / "run"
    train = ("train", "tag", "--data", str(data), "--out", str(out), "--no-progress")
    first = rnnkit(*train, "--epochs", "1", "--hidden", "8", "--optimizer", "adamw", "--weight-decay", "0.25")
    assert first.returncode == 0, first.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["train_config"]["optimizer"], config["train_config"]["weight_decay"]) == ("adamw", 0.25)
    assert config["optimizer"]["hyperparameters"]["weight_decay"] == 0.25  # what the optimizer was given
    assert_one_line_error(rnnkit(*train, "--resume", "--weight-decay", "0.5"),
                          r"these options differ: --weight-decay 0.5 \(was 0.25\)")
    resumed = rnnkit(*train, "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "config.json").read_text())["optimizer"]["hyperparameters"]["weight_decay"] == 0.25


def _small_classify_run(tmp_path, *options):
    """One epoch of classify on 200 two-word-kind texts with ``options``: (the train command, its
    result, the run directory)."""
    data = tmp_path / "texts.tsv"
    data.write_text("".join(f"{('pos', 'neg')[k % 2]}\t{('a fine good film', 'a dull bad film')[k % 2]} {k}\n"
                            for k in range(200)), encoding="utf-8")
    out = tmp_path / "run"
    train = ("train", "classify", "--data", str(data), "--out", str(out), "--no-progress")
    first = rnnkit(*train, "--epochs", "1", "--hidden", "8", *options)
    assert first.returncode == 0, first.stderr
    return train, first, out


def test_attention_pooling_trains_is_saved_kept_on_resume_and_exports(tmp_path):
    train, _, out = _small_classify_run(tmp_path, "--pooling", "attention")
    assert json.loads((out / "config.json").read_text())["model_options"]["pooling"] == "attention"
    assert_one_line_error(rnnkit(*train, "--resume", "--pooling", "max"),
                          r"these options differ: --pooling max \(was attention\)")
    exported = rnnkit("export", str(out), "--out", str(tmp_path / "classify.onnx"))
    assert exported.returncode == 0, exported.stderr


def test_an_ensemble_trains_is_saved_kept_on_resume_predicts_and_exports(tmp_path):
    train, first, out = _small_classify_run(tmp_path, "--ensemble", "2")
    assert json.loads((out / "config.json").read_text())["model_options"]["ensemble"] == 2
    assert "(an ensemble of 2 models, each trained on its own loss)" in first.stderr
    assert_one_line_error(rnnkit(*train, "--resume", "--ensemble", "3"),
                          r"these options differ: --ensemble 3 \(was 2\)")
    resumed = rnnkit(*train, "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    predicted = rnnkit("predict", str(out), "a fine good film 3")
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.strip().splitlines()[-1].split("\t")[-1] in ("pos", "neg")
    exported = rnnkit("export", str(out), "--out", str(tmp_path / "classify.onnx"))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout.strip().splitlines()[-1])["agree"] is True
