"""translate with attention through the command: the option, the pictures it draws (in the run
directory, and of any input with predict --plot), and its errors."""

import json
import subprocess
import sys

from tests.datasets import number_words_tsv

TINY = ["--epochs", "1", "--hidden", "16", "--batch-size", "32", "--no-progress"]


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


def test_translate_with_attention_draws_what_it_read(tmp_path):
    """Training saves attention.png for validation sources; predict --plot draws any input's."""
    path = number_words_tsv(tmp_path / "digits.tsv", 300, max_digits=4)
    run = tmp_path / "run"
    result = rnnkit("train", "translate", "--data", str(path), "--out", str(run), *TINY, "--attention", "additive")
    assert result.returncode == 0, result.stderr
    assert (run / "attention.png").stat().st_size > 1000 and f"wrote {run / 'attention.png'}" in result.stderr
    assert json.loads((run / "config.json").read_text())["model_options"]["attention"] == "additive"
    picture = tmp_path / "mine.png"
    predicted = rnnkit("predict", str(run), "one two", "nine nine nine", "--plot", str(picture))
    assert predicted.returncode == 0, predicted.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(predicted.stdout.splitlines()) == 2
    # a model without attention has nothing to draw, and says so
    plain = tmp_path / "plain"
    assert rnnkit("train", "translate", "--data", str(path), "--out", str(plain), *TINY, "--attention", "none").returncode == 0
    assert not (plain / "attention.png").exists()
    refused = rnnkit("predict", str(plain), "one", "--plot", str(tmp_path / "no.png"))
    assert refused.returncode == 2 and "has no attention to draw (train it with --attention" in refused.stderr
    dot = rnnkit("train", "translate", "--data", str(path), "--out", str(tmp_path / "dot"), *TINY, "--attention", "dot")
    assert dot.returncode == 2 and "dot attention needs the encoder's outputs" in dot.stderr
    assert "does not apply to the classify task" in rnnkit("train", "classify", "--attention", "dot").stderr
