import gzip
import re

import numpy as np
import pytest

from rnnkit.data import read_labelled_tsv, read_pairs_tsv, read_series, read_tagged, read_text_file


def write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def line_error(path, number):
    return re.escape(f"{path}, line {number}:")


def test_text_file_reads_utf8_and_normalises_newlines(tmp_path):
    path = write(tmp_path, "\ufeffcafé\r\nline two\rthree\n")
    assert read_text_file(path) == "café\nline two\nthree\n"


def test_text_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_text_file(tmp_path / "missing.txt")
    with pytest.raises(IsADirectoryError):
        read_text_file(tmp_path)
    bad = write(tmp_path, b"fine\nnot \xff utf-8\n")
    with pytest.raises(ValueError, match=re.escape(f"{bad}: not valid UTF-8 text (line 2")):
        read_text_file(bad)
    with pytest.raises(ValueError, match="empty"):
        read_text_file(write(tmp_path, " \n\n", "blank.txt"))


def test_gzip_files_are_read_transparently(tmp_path):
    path = tmp_path / "text.txt.gz"
    path.write_bytes(gzip.compress(b"hello\tworld\n"))
    assert read_labelled_tsv(path) == [("world", "hello")]
    broken = write(tmp_path, b"not gzip", "broken.gz")
    with pytest.raises(ValueError, match="gzip"):
        read_text_file(broken)


def test_a_gzip_file_that_unpacks_beyond_the_limit_is_refused(tmp_path, monkeypatch):
    """A small file that unpacks to gigabytes (a gzip bomb): refused from the size its trailer
    states, without unpacking, or (a size the trailer cannot state) after reading up to the
    limit, never more."""
    import rnnkit.data.readers as readers

    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 1000)
    bomb = tmp_path / "bomb.txt.gz"
    bomb.write_bytes(gzip.compress(b"0" * 5000))
    with pytest.raises(ValueError, match=r"bomb.txt.gz: unpacks to more than the 0 GiB"):
        read_text_file(bomb)
    two_members = tmp_path / "members.txt.gz"  # the trailer states only the last member's size
    two_members.write_bytes(gzip.compress(b"0" * 5000) + gzip.compress(b"1\n"))
    with pytest.raises(ValueError, match=r"unpacks to more than"):
        read_text_file(two_members)
    fine = tmp_path / "fine.txt.gz"
    fine.write_bytes(gzip.compress(b"1\n2\n"))
    assert read_series(fine).tolist() == [1.0, 2.0]


def test_labelled_tsv(tmp_path):
    path = write(tmp_path, "pos\tgreat film\n\nneg\tawful\tand long \n")
    assert read_labelled_tsv(path) == [("great film", "pos"), ("awful\tand long", "neg")]


@pytest.mark.parametrize("bad_line", ["no tab here", "\tmissing label", "label\t   "])
def test_labelled_tsv_malformed_line_names_file_and_line(tmp_path, bad_line):
    path = write(tmp_path, f"pos\tok\nneg\tfine\n{bad_line}\npos\tlater\n")
    with pytest.raises(ValueError, match=line_error(path, 3)):
        read_labelled_tsv(path)


def test_pairs_tsv(tmp_path):
    path = write(tmp_path, "one\tun\ntwo\tdeux\n\n")
    assert read_pairs_tsv(path) == [("one", "un"), ("two", "deux")]
    bad = write(tmp_path, "one\tun\ntwo\tdeux\textra\n", "bad.tsv")
    with pytest.raises(ValueError, match=line_error(bad, 2)):
        read_pairs_tsv(bad)
    no_tab = write(tmp_path, "three\n", "no_tab.tsv")
    with pytest.raises(ValueError, match=line_error(no_tab, 1)):
        read_pairs_tsv(no_tab)


def test_tagged_sentences(tmp_path):
    path = write(tmp_path, "-DOCSTART-\tO\n\nThe\tDET\ncat\tNOUN\n\n\n\nran\tVERB\n.\t.\n")
    assert read_tagged(path) == [(["The", "cat"], ["DET", "NOUN"]), (["ran", "."], ["VERB", "."])]


@pytest.mark.parametrize("bad_line", ["cat NOUN", "cat\tNOUN\textra", "\tNOUN"])
def test_tagged_malformed_line_names_file_and_line(tmp_path, bad_line):
    path = write(tmp_path, f"The\tDET\n\nA\tDET\n{bad_line}\n")
    with pytest.raises(ValueError, match=line_error(path, 4)):
        read_tagged(path)


def test_series(tmp_path):
    values = read_series(write(tmp_path, "1\n2.5\n-3e2\n\n\n"))
    assert values.dtype == np.float64
    assert values.tolist() == [1.0, 2.5, -300.0]


@pytest.mark.parametrize("bad, line", [("1\nnan\n3\n", 2), ("1\n2\ninf\n", 3), ("1\nabc\n", 2), ("1\n\n2\n", 2)])
def test_series_bad_values_name_the_line(tmp_path, bad, line):
    path = write(tmp_path, bad)
    with pytest.raises(ValueError, match=line_error(path, line)):
        read_series(path)


def test_series_needs_two_values(tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        read_series(write(tmp_path, "4\n"))


def test_series_values_whose_squares_overflow_are_refused(tmp_path):
    """1e300 is finite, but its squared error is not: the forecast's mse would be inf and its
    loss NaN."""
    path = write(tmp_path, "1\n2\n1e300\n3\n")
    with pytest.raises(ValueError, match=line_error(path, 3) + r" 1e300 is beyond \+-1e\+100"):
        read_series(path)
