"""Small data files for tests that train through the command line."""

import random
from pathlib import Path

NUMBER_WORDS = "zero one two three four five six seven eight nine".split()


def number_words_tsv(path: Path, count: int, max_digits: int, seed: int = 4) -> Path:
    """A translate file: ``"four two\\t42"`` lines, numbers of 1..``max_digits`` random digits."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        number = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, max_digits)))
        lines.append(f"{' '.join(NUMBER_WORDS[int(d)] for d in number)}\t{number}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
