"""Parsers for the user data formats of ``rnnkit train TASK --data PATH``.

Every error is a ``ValueError`` (or ``FileNotFoundError``/``IsADirectoryError``) whose message
names the file and, for a bad line, its 1-based line number, so the command line can show it as
one clear line. Files are UTF-8 (a leading byte-order mark is ignored); a ``.gz`` file is read
through gzip.

| format | reader | result |
|---|---|---|
| UTF-8 text | ``read_text_file`` | ``str`` |
| ``label<TAB>text`` | ``read_labelled_tsv`` | ``[(text, label), ...]`` |
| ``source<TAB>target`` | ``read_pairs_tsv`` | ``[(source, target), ...]`` |
| ``token<TAB>tag`` lines, blank line between sentences | ``read_tagged`` | ``[(tokens, tags), ...]`` |
| one number per line | ``read_series`` | float64 ``(N,)`` |
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np

PathLike = str | os.PathLike


def read_text_file(path: PathLike) -> str:
    """The whole content of a UTF-8 text file, with newlines normalised to ``\\n``.

    Raises ``FileNotFoundError`` if it does not exist, ``ValueError`` if it is not valid UTF-8
    (naming the line of the first bad byte) or is empty.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}: not valid UTF-8 text (line {line}, byte {error.start}: "
                         f"{data[error.start:error.start + 1]!r}); save it as UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    return text


#: the longest line of a line-based data file (one example per line): longer is not a sentence
#: but a mistake (a missing line break, a binary file), and would not fit a batch in memory
MAX_LINE_CHARS = 50_000
#: the largest data file read into memory (a .gz file: unpacked)
MAX_FILE_BYTES = 2 << 30
#: the largest magnitude of a series value: squares and sums of squares of differences stay
#: far from float64's overflow (1.8e308)
MAX_SERIES_VALUE = 1e100


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a file")
    if not path.is_file():  # a pipe or a device would block or never end
        raise ValueError(f"{path}: not a regular file (a pipe or a device); give a data file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size / 2**30:.1f} GiB, more than the {MAX_FILE_BYTES >> 30} GiB "
                         f"rnnkit reads into memory; use a part of it")
    if path.suffix == ".gz":
        too_big = ValueError(f"{path}: unpacks to more than the {MAX_FILE_BYTES >> 30} GiB rnnkit reads into memory; "
                             f"use a part of it")
        if _gzip_last_size(path) > MAX_FILE_BYTES:  # said at once, without unpacking it
            raise too_big
        try:
            with gzip.open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)  # a small file may unpack to anything
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: not a readable gzip file ({error})") from None
        if len(data) > MAX_FILE_BYTES:
            raise too_big
        return data
    return path.read_bytes()


def _gzip_last_size(path: Path) -> int:
    """The unpacked size a gzip file states in its last 4 bytes: its last member's, modulo
    4 GiB, so never more than the truth (0 for a file too short to say)."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) < 18:  # a header and a trailer at the least
            return 0
        handle.seek(-4, os.SEEK_END)
        return int.from_bytes(handle.read(4), "little")


def _lines(path: PathLike) -> tuple[Path, list[str]]:
    path = Path(path)
    lines = read_text_file(path).split("\n")
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"{path}, line {number}: {len(line):,} characters; one example per line, at most "
                             f"{MAX_LINE_CHARS:,} (is a line break missing?)")
    return path, lines


def _show(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:57] + "...")


def read_labelled_tsv(path: PathLike) -> list[tuple[str, str]]:
    """Examples of a ``label<TAB>text`` file, as ``(text, label)`` pairs in file order.

    One example per line; the label is everything before the first tab, the text everything
    after it (stripped of surrounding whitespace). Blank lines are skipped. A line without a tab,
    or with an empty label or text, is a ``ValueError`` naming the file and line.
    """
    path, lines = _lines(path)
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        label, text = label.strip(), text.strip()
        if not tab or not label or not text:
            raise ValueError(f"{path}, line {number}: expected 'label<TAB>text', got {_show(line)}")
        examples.append((text, label))
    if not examples:
        raise ValueError(f"{path}: no examples found (expected 'label<TAB>text' lines)")
    return examples


def read_pairs_tsv(path: PathLike) -> list[tuple[str, str]]:
    """Pairs of a ``source<TAB>target`` file, as ``(source, target)`` in file order.

    Exactly one tab per line (a second tab would make the split ambiguous); both sides non-empty
    after stripping. Blank lines are skipped; anything else is a ``ValueError`` naming the line.
    """
    path, lines = _lines(path)
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise ValueError(f"{path}, line {number}: expected 'source<TAB>target' (one tab, both sides "
                             f"non-empty), got {_show(line)}")
        pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise ValueError(f"{path}: no pairs found (expected 'source<TAB>target' lines)")
    return pairs


def read_tagged(path: PathLike) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL-style file, as ``(tokens, tags)`` pairs of equal-length lists.

    One ``token<TAB>tag`` per line, a blank line (or several) between sentences. CoNLL
    ``-DOCSTART-`` lines are skipped. A line that is not exactly two non-empty tab-separated
    fields is a ``ValueError`` naming the file and line.
    """
    path, lines = _lines(path)
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
                tokens, tags = [], []
            continue
        fields = line.split("\t")
        if fields[0].startswith("-DOCSTART-"):
            continue
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise ValueError(f"{path}, line {number}: expected 'token<TAB>tag' (one tab, both non-empty), "
                             f"got {_show(line)}")
        tokens.append(fields[0].strip())
        tags.append(fields[1].strip())
    if tokens:
        sentences.append((tokens, tags))
    if not sentences:
        raise ValueError(f"{path}: no sentences found (expected 'token<TAB>tag' lines)")
    return sentences


def read_series(path: PathLike) -> np.ndarray:
    """A series from a file with one number per line: float64 ``(N,)``, N >= 2.

    Blank lines at the end are ignored; a blank line inside the series, a line that is not a
    number, or a NaN/infinite value is a ``ValueError`` naming the file and line.
    """
    path, lines = _lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    values = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            raise ValueError(f"{path}, line {number}: empty line inside the series (one number per line)")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{path}, line {number}: expected one number, got {_show(line)}") from None
        if not math.isfinite(value):
            raise ValueError(f"{path}, line {number}: {text} is not a finite number (NaN and infinity are not allowed)")
        if abs(value) > MAX_SERIES_VALUE:
            raise ValueError(f"{path}, line {number}: {text} is beyond +-{MAX_SERIES_VALUE:g}; squared errors of such "
                             f"values overflow (rescale the series)")
        values.append(value)
    if len(values) < 2:
        raise ValueError(f"{path}: expected at least 2 numbers, got {len(values)}")
    return np.asarray(values, dtype=np.float64)
