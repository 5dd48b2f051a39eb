"""The default datasets, one file per task, and the loaders for user files in the same formats.

Every loader returns plain Python/NumPy structures split into ``"train"``, ``"valid"`` and
``"test"``. Source, size and license of each default dataset are in its module docstring.
"""

from rnnkit.data.datasets.charlm import CHARLM_SOURCES, load_charlm, shakespeare_plays, strip_play_markdown
from rnnkit.data.datasets.classify import CLASSIFY_LABELS, load_classify, sentiment_tweets
from rnnkit.data.datasets.digits import (
                                         DIGIT_WORDS,
                                         digit_images,
                                         load_digit_captions,
                                         load_digits,
                                         load_digits_flat,
                                         load_digits_rows,
)
from rnnkit.data.datasets.forecast import load_forecast, persistence_mse, sunspots
from rnnkit.data.datasets.tag import TAGSETS, brown_sentences, load_tag
from rnnkit.data.datasets.translate import load_translate, number_splits, number_words

__all__ = [
    "CHARLM_SOURCES", "CLASSIFY_LABELS", "DIGIT_WORDS", "TAGSETS",
    "brown_sentences", "digit_images", "load_charlm", "load_classify", "load_digit_captions", "load_digits",
    "load_digits_flat", "load_digits_rows", "load_forecast", "load_tag", "load_translate", "number_splits",
    "number_words", "persistence_mse", "sentiment_tweets", "shakespeare_plays", "strip_play_markdown", "sunspots",
]
