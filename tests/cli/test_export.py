"""rnnkit export: trained runs written as ONNX and scored in onnxruntime on their test split,
the same metrics as rnnkit's; the two graphs of a generator; and the errors."""

import json
import subprocess
import sys

import pytest

from tests.datasets import number_words_tsv

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

TINY = ["--epochs", "1", "--hidden", "16", "--no-progress"]


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


def exported(run, *options):
    result = rnnkit("export", str(run), *options)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_export_checks_the_graph_in_onnxruntime_on_the_test_split(tmp_path):
    run = tmp_path / "digits"
    assert rnnkit("train", "digits", "--out", str(run), *TINY, "--cell", "lstm", "--bidirectional").returncode == 0
    report, stderr = exported(run)
    assert report["files"] == [str(run / "model.onnx")] and (run / "model.onnx").stat().st_size > 1000
    assert report["checked"] and report["backend"] == "onnxruntime" and report["agree"]
    assert report["graphs"]["accuracy"] == report["rnnkit"]["accuracy"]
    assert abs(report["graphs"]["loss"] - report["rnnkit"]["loss"]) < 1e-4
    assert "test split, rnnkit: accuracy" in stderr


def test_a_speech_run_exports_its_acoustic_model_and_scores_alike(tmp_path):
    pytest.importorskip("espeakng_loader")
    run = tmp_path / "speech"
    trained = rnnkit("train", "speech", "--out", str(run), "--max-seconds", "5", "--hidden", "16", "--layers", "1",
                     "--no-progress")
    assert trained.returncode == 0, trained.stderr
    report, stderr = exported(run)
    assert report["agree"] and report["graphs"]["wer"] == report["rnnkit"]["wer"]
    assert "test split, rnnkit: wer" in stderr


def test_an_encoder_decoder_is_two_graphs_scored_by_decoding(tmp_path):
    data = number_words_tsv(tmp_path / "numbers.tsv", 200, max_digits=3)
    run = tmp_path / "translate"
    trained = rnnkit("train", "translate", "--data", str(data), "--out", str(run), *TINY, "--attention", "general",
                     "--cell", "gru")
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "deploy" / "numbers.onnx"
    out.parent.mkdir()
    report, _ = exported(run, "--out", str(out))
    assert report["files"] == [str(out.with_name("numbers.encoder.onnx")), str(out.with_name("numbers.decoder_step.onnx"))]
    assert report["agree"] and report["graphs"]["exact_match"] == report["rnnkit"]["exact_match"]
    assert report["graphs"]["cer"] == pytest.approx(report["rnnkit"]["cer"], abs=1e-12)


def test_export_without_check_and_its_errors(tmp_path):
    run = tmp_path / "caption"
    assert rnnkit("train", "caption", "--out", str(run), *TINY).returncode == 0
    report, _ = exported(run, "--no-check")
    assert not report["checked"] and len(report["files"]) == 2
    directory = rnnkit("export", str(run), "--out", str(tmp_path))
    assert directory.returncode == 2 and "is a directory; give a file name" in directory.stderr
    missing = rnnkit("export", str(run), "--out", str(tmp_path / "nowhere" / "m.onnx"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "rnnkit: error:" in rnnkit("export", str(tmp_path / "no-run")).stderr


@pytest.mark.parametrize("cell", ["minlstm", "gru"])
def test_a_charlm_run_over_documents_exports_and_scores_alike(cell, tmp_path):
    """A stream with resets (``--documents lines``) scored through the graph, which takes no
    resets (the deployed model cuts the stream at them); the minimal cells as plain operators."""
    text = tmp_path / "lines.txt"
    text.write_text("".join(f"line {k} of a few words, {k % 7} and more\n" for k in range(600)), encoding="utf-8")
    run = tmp_path / "run"
    trained = rnnkit("train", "charlm", "--data", str(text), "--out", str(run), "--max-seconds", "3", "--hidden", "8",
                     "--layers", "2", "--cell", cell, "--documents", "lines", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    report, _ = exported(run)
    assert report["checked"] and report["agree"]
    assert abs(report["graphs"]["bpc"] - report["rnnkit"]["bpc"]) < 1e-4
