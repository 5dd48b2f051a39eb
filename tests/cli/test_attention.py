"""translate with attention through the command: the option, the pictures it draws (in the run
directory, and of any input with predict --plot), and its errors."""

import json
import random
import subprocess
import sys

TINY = ["--epochs", "1", "--hidden", "16", "--batch-size", "32", "--no-progress"]


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300)


def test_translate_with_attention_draws_what_it_read(tmp_path):
    """Training saves attention.png for validation sources; predict --plot draws any input's."""
    rng = random.Random(4)
    digits = {str(d): w for d, w in enumerate("zero one two three four five six seven eight nine".split())}
    lines = []
    for _ in range(300):
        number = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 4)))
        lines.append(f"{' '.join(digits[d] for d in number)}\t{number}")
    path = tmp_path / "digits.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
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
