"""translate data: English number words -> French number words (encoder-decoder).

Default: the numbers ``0..max_number`` (9,999 by default) written out by the PyPI package
``num2words==0.5.14`` (LGPL-2.1; its rules encode the real spelling of each language), e.g.
``"one thousand, two hundred and thirty-four" -> "mille deux cent trente-quatre"`` and
``"seventy-one" -> "soixante et onze"``. Sources are at most 47 characters, targets 46.

The split holds out *numbers*: each number is in exactly one of train/valid/test (80/10/10,
seeded), so the model is tested on numbers it never saw, in either language. Generating the
10,000 pairs takes ~1.3 s, so they are cached (``rnnkit.data.cache``): ~0.03 s afterwards.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np

from rnnkit.data._packages import missing_package_error
from rnnkit.data.cache import cached_json
from rnnkit.data.readers import PathLike, read_pairs_tsv
from rnnkit.data.splits import check_splittable, split_groups, split_indices


def load_translate(path: PathLike | None = None, *, seed: int = 0, max_number: int = 9999,
                   source_lang: str = "en", target_lang: str = "fr",
                   fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, list[tuple[str, str]]]:
    """Splits ``{"train", "valid", "test"}`` of ``(source, target)`` string pairs.

    Args:
        path: a ``source<TAB>target`` file instead of the default number words (see
            ``read_pairs_tsv``). Its pairs are split so that all pairs with the same source
            sentence land in the same split.
        seed: of the split.
        max_number: the default data uses the numbers ``0..max_number``.
        source_lang, target_lang: num2words language codes ("en", "fr", "de", "es", ...).
    """
    if path is not None:
        pairs = read_pairs_tsv(path)
        check_splittable(len({source for source, _ in pairs}), path, "distinct source sentences")
        return split_groups(pairs, [source for source, _ in pairs], fractions, seed)
    splits = number_splits(max_number, seed=seed, fractions=fractions)
    words = number_words(max_number, source_lang, target_lang)
    return {name: [tuple(words[n]) for n in numbers] for name, numbers in splits.items()}


def number_splits(max_number: int = 9999, *, seed: int = 0,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """The held-out numbers: ``{"train", "valid", "test"}`` -> sorted int64 arrays, disjoint,
    together ``0..max_number``."""
    if max_number < 2:
        raise ValueError(f"max_number: expected an integer >= 2, got {max_number}")
    return split_indices(max_number + 1, fractions, seed)


def number_words(max_number: int = 9999, source_lang: str = "en", target_lang: str = "fr") -> list[list[str]]:
    """``[[source words, target words] for n in 0..max_number]`` (cached after the first call)."""
    try:
        from num2words import num2words
    except ImportError:
        raise missing_package_error("num2words", "the default translate data (number words)") from None
    try:
        version = importlib.metadata.version("num2words")
    except importlib.metadata.PackageNotFoundError:  # imported from a source tree
        version = "unknown"
    key = {"format": 1, "num2words": version, "max": max_number, "langs": [source_lang, target_lang]}

    def build() -> list[list[str]]:
        try:
            return [[num2words(n, lang=source_lang), num2words(n, lang=target_lang)] for n in range(max_number + 1)]
        except NotImplementedError:
            raise ValueError(f"num2words does not support the languages {source_lang!r} -> {target_lang!r}") from None

    return cached_json(f"translate-{source_lang}-{target_lang}", key, build)
