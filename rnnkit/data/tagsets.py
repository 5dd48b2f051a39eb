"""Brown corpus tags -> the 12 universal part-of-speech tags.

The universal tagset of Petrov, Das and McDonald (2012, "A Universal Part-of-Speech Tagset"):
NOUN VERB ADJ ADV PRON DET ADP NUM CONJ PRT . X. The mapping below is ours, written from the
Brown Corpus Manual's tag list; it follows the same categories as NLTK's ``en-brown.map`` but
is not a copy of it (it differs on a few rare tags, e.g. ``abl``/``abn`` "quite"/"all" are ADV/DET
here).

A Brown tag is a base tag (``nn``, ``vbd``, ``pp$``...) with optional decorations: a ``fw-``
prefix (foreign word), suffixes ``-tl`` (in a title), ``-hl`` (in a headline), ``-nc`` (cited
word), a ``*`` for a negation fused to the word (``isn't`` = ``bez*``), and ``+`` joining the tags
of a contraction (``I'll`` = ``ppss+md``). Contractions take the tag of their first part.
"""

from __future__ import annotations

UNIVERSAL_TAGS: tuple[str, ...] = ("NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X")

_BASE: dict[str, str] = {}


def _add(tag: str, names: str) -> None:
    for name in names.split():
        _BASE[name] = tag


_add(".", ". , : ( ) -- ' '' `` ` ;")
_add("NOUN", "nn nn$ nns nns$ np np$ nps nps$ nr nr$ nrs nc")
_add("VERB", "vb vbd vbg vbn vbz md be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz")
_add("ADJ", "jj jj$ jjr jjs jjt ap ap$ od")
_add("ADV", "rb rb$ rbr rbt rn ql qlp wql wrb abl *")
_add("PRON", "pn pn$ pp$ pp$$ ppl ppls ppo pps ppss wp$ wpo wps")
_add("DET", "at dt dt$ dti dts dtx wdt abn abx ex")
_add("ADP", "in cs")
_add("NUM", "cd cd$")
_add("CONJ", "cc")
_add("PRT", "rp to")
_add("X", "uh nil fw")


def brown_to_universal(tag: str) -> str:
    """The universal tag of a Brown corpus tag (case-insensitive).

    >>> [brown_to_universal(t) for t in ["np-tl", "bez*", "ppss+md", "fw-nn", "``"]]
    ['NOUN', 'VERB', 'PRON', 'X', '.']
    """
    t = tag.lower()
    if t.startswith("fw-"):
        return "X"
    if t in _BASE:  # punctuation such as "--" or "*" contains the decoration characters
        return _BASE[t]
    t = t.split("+", 1)[0]
    while t[-3:] in ("-hl", "-tl", "-nc"):
        t = t[:-3]
    if t not in _BASE:
        t = t.rstrip("*")
    try:
        return _BASE[t]
    except KeyError:
        raise ValueError(f"tag: {tag!r} is not a Brown corpus tag") from None
