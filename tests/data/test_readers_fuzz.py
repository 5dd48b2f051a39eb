"""Every --data reader on arbitrary files (hypothesis): a result of the documented shape, or a
ValueError of one line that names the file; never another exception."""

import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data import read_labelled_tsv, read_pairs_tsv, read_series, read_tagged, read_text_file
from rnnkit.data.readers import MAX_LINE_CHARS

# text built from the characters that matter to the formats, and some that should not
PIECES = st.sampled_from(["\t", "\n", "\r\n", " ", "a", "B", "é", "日", "1", "-2.5e3", "nan", "inf", ".", "\x00",
                          "\ufeff", "label", "tag"])
CONTENT = st.one_of(st.lists(PIECES, max_size=60).map("".join), st.binary(max_size=200))
READERS = [read_text_file, read_labelled_tsv, read_pairs_tsv, read_tagged, read_series]


def _write(content) -> str:
    handle, path = tempfile.mkstemp(suffix=".txt")
    with os.fdopen(handle, "wb") as out:
        out.write(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _check(reader, path):
    try:
        result = reader(path)
    except ValueError as error:
        message = str(error)
        assert "\n" not in message and path in message, (reader.__name__, message)
        return
    if reader is read_text_file:
        assert isinstance(result, str) and result.strip()
    elif reader is read_series:
        assert isinstance(result, np.ndarray) and len(result) >= 2 and np.all(np.isfinite(result))
    elif reader is read_tagged:
        assert result and all(len(words) == len(tags) > 0 for words, tags in result)
    elif reader is read_labelled_tsv:  # (text, label): the label ends at the first tab
        assert result and all(text and label and "\t" not in label for text, label in result)
    else:
        assert result and all(a and b and "\t" not in a + b for a, b in result)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=CONTENT)
def test_every_reader_on_arbitrary_content(content):
    path = _write(content)
    try:
        for reader in READERS:
            _check(reader, path)
    finally:
        os.unlink(path)


def test_a_line_too_long_for_one_example_is_named(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("one\tuno\n" + "x" * (MAX_LINE_CHARS + 1) + "\ty\n", encoding="utf-8")
    import pytest

    with pytest.raises(ValueError, match=r"line 2: 50,003 characters; one example per line, at most 50,000"):
        read_pairs_tsv(path)


def test_a_pipe_is_not_read(tmp_path):
    import pytest

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"not a regular file \(a pipe or a device\)"):
        read_text_file(fifo)
