import pytest

from rnnkit.data import UNIVERSAL_TAGS, brown_to_universal


@pytest.mark.parametrize("tag, universal", [
    ("nn", "NOUN"), ("np-tl", "NOUN"), ("nns$", "NOUN"), ("vbd", "VERB"), ("bez*", "VERB"), ("md*", "VERB"),
    ("jj-tl-hl", "ADJ"), ("od", "ADJ"), ("rb", "ADV"), ("*", "ADV"), ("ql", "ADV"), ("ppss+md", "PRON"),
    ("pp$", "PRON"), ("at", "DET"), ("ex", "DET"), ("in", "ADP"), ("cs", "ADP"), ("cd", "NUM"), ("cc", "CONJ"),
    ("to", "PRT"), ("rp", "PRT"), ("fw-nn", "X"), ("uh", "X"), ("``", "."), ("--", "."), ("---hl", "."),
    ("NN-TL", "NOUN"),
])
def test_brown_to_universal(tag, universal):
    assert brown_to_universal(tag) == universal
    assert universal in UNIVERSAL_TAGS


def test_unknown_tag():
    with pytest.raises(ValueError, match="not a Brown corpus tag"):
        brown_to_universal("xyz")
