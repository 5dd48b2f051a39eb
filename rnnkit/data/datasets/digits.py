"""digits data: 8x8 images of handwritten digits, for three tasks.

Source: scikit-learn's bundled ``sklearn/datasets/data/digits.csv.gz`` (the test set of the UCI
"Optical Recognition of Handwritten Digits" data, E. Alpaydin and C. Kaynak, 1998, CC BY 4.0;
scikit-learn is BSD-3-Clause): 1,797 images of 8x8 pixels with values 0..16, about 180 of each
digit. The file is read directly with NumPy (importing scikit-learn would cost ~1 s); only if the
file is not where scikit-learn 1.x keeps it is ``sklearn.datasets.load_digits`` called.

Pixels are scaled to ``[0, 1]`` (divided by 16) as float32. One seeded 80/10/10 split of the
images serves all three views, so a model of each task sees the same test images:

- ``load_digits_rows``: many-to-one, each image a sequence of its 8 rows (T=8, F=8);
- ``load_digits_flat``: one-to-one, each image one vector of 64 features;
- ``load_digit_captions``: one-to-many, each image -> the English word of its digit ("seven").
"""

from __future__ import annotations

import gzip

import numpy as np

from rnnkit.data._packages import missing_package_error, package_dir
from rnnkit.data.splits import split_indices

DIGIT_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_WHAT = "the digits data"


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images: float32 ``(N, 8, 8)`` in ``[0, 1]`` and int64 labels ``(N,)`` in 0..9."""
    path = package_dir("sklearn", _WHAT) / "datasets" / "data" / "digits.csv.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="ascii") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
        source = str(path)
        pixels, labels = table[:, :64], table[:, 64]
    else:  # another scikit-learn layout: let it load its own data
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise missing_package_error("sklearn", _WHAT) from None
        bunch = load_digits()
        pixels, labels = np.asarray(bunch.data, np.float64), np.asarray(bunch.target)
        source = "sklearn.datasets.load_digits()"
    bad = np.flatnonzero(~np.isfinite(pixels).all(axis=1) | ~np.isfinite(labels))
    if bad.size:
        raise ValueError(f"{source}, line {bad[0] + 1}: NaN or infinite value")
    if pixels.shape[1] != 64 or pixels.min() < 0 or pixels.max() > 16 or not np.isin(labels, np.arange(10)).all():
        raise ValueError(f"{source}: expected 64 pixel values in 0..16 and a label 0..9 per line")
    images = (pixels / 16.0).astype(np.float32).reshape(-1, 8, 8)
    return images, labels.astype(np.int64)


def load_digits(*, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train", "valid", "test"}`` -> ``(images (N, 8, 8) float32, labels (N,) int64)``."""
    images, labels = digit_images()
    return {name: (images[index], labels[index]) for name, index in split_indices(len(labels), fractions, seed).items()}


def load_digits_rows(*, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Many-to-one: ``(x (N, T=8, F=8) float32, labels (N,) int64)`` per split.

    ``x[n, t]`` is row ``t`` of image ``n``; a batch in the library's time-major layout is
    ``x[index].transpose(1, 0, 2)``, shape ``(8, B, 8)``.
    """
    return load_digits(seed=seed, fractions=fractions)


def load_digits_flat(*, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One-to-one: ``(x (N, 64) float32, labels (N,) int64)`` per split (T=1 when fed as a sequence)."""
    return {name: (x.reshape(len(x), 64), y) for name, (x, y) in load_digits(seed=seed, fractions=fractions).items()}


def load_digit_captions(*, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                        ) -> dict[str, tuple[np.ndarray, list[str]]]:
    """One-to-many: ``(x (N, 64) float32, captions)`` per split, ``captions[n]`` the English word
    of the digit (``DIGIT_WORDS``: "zero" ... "nine")."""
    return {name: (x, [DIGIT_WORDS[int(label)] for label in y])
            for name, (x, y) in load_digits_flat(seed=seed, fractions=fractions).items()}
