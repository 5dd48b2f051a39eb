"""Probes of crash safety and bad input (GitHub issue #16), as a new user and a hostile one would
try them: kills at every checkpoint write, damaged checkpoints, bad data files, bad arguments and
misuse of the library. Each case runs and is classified; a table of outcomes per category is
printed, then every case that did not end clean or ok.

    python benchmarks/probes.py [--only CATEGORY ...] [--verbose] [--timeout SECONDS]

Outcomes:
    clean      the command: one line ``rnnkit: error: ...`` on standard error, exit 2; the library:
               an error raised by rnnkit's own checks, saying what was expected
    ok         exit 0 with the right result (a harmless input; a resume equal to the uninterrupted run)
    cryptic    one line and exit 2, or a library error, whose message is Python's or NumPy's, not
               what was wrong ("'int' object is not subscriptable")
    traceback  a traceback (the library: an exception raised from inside NumPy or Python)
    hang       still running at the time limit (killed)
    silent     exit 0 (or no exception) with a wrong result: a resume that differs from the
               uninterrupted run, a damaged checkpoint scored, an invalid value accepted
    other      anything else (killed by a signal, several lines, another exit status)

Each command runs in a forked copy of this process (``rnnkit.cli.main.main``, exactly what
``python -m rnnkit`` runs, without paying the interpreter's start each time), its address space
capped so that a runaway allocation is a MemoryError, not the machine's. A kill is ``os._exit``
at a chosen ``os.fsync`` or ``os.replace`` of the run (every one, counted in an uninterrupted
run first). About five minutes on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

# One BLAS thread: a forked child of a process whose OpenBLAS started threads can deadlock.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnnkit.cli.main import main as rnnkit_main  # noqa: E402  (configures OpenBLAS before NumPy)

import numpy as np  # noqa: E402

#: what a forked command may allocate beyond what this process already maps
MEMORY_HEADROOM = 6 << 30
OUTCOMES = ("clean", "ok", "cryptic", "traceback", "hang", "silent", "other")
#: messages that are Python's or NumPy's rather than a statement of what was wrong
CRYPTIC = re.compile(
    r"object is not subscriptable|has no attribute|unsupported operand|not supported between|invalid literal|"
    r"index out of range|unhashable|positional argument|unexpected keyword|is not iterable|must be real number|"
    r"cannot convert|could not broadcast|not aligned|out of bounds|range\(\) arg|Probabilities contain|"
    r"math domain|^rnnkit: error: '[^']*'$|^rnnkit: error: \w+Error$|object cannot be interpreted|"
    r"argument must be|not JSON serializable|'NoneType'|expected str, bytes|takes \d+ |missing \d+ required|"
    r"invalid value encountered|overflow encountered|setting an array element|buffer is smaller|"
    r"zero-size array|division by zero|cannot reshape|operands could not")


@dataclass
class Ran:
    """A forked command's end."""

    code: int | None  # exit status; None: killed at the time limit; negative: the signal
    stdout: str
    stderr: str


@dataclass
class Result:
    category: str
    name: str
    outcome: str
    detail: str = ""


# -- running commands ----------------------------------------------------------------------

#: (seconds, command) of every command run, to show the slowest
TIMES: list[tuple[float, str]] = []


def run(argv: list[str], timeout: float, hook: Callable[[], None] | None = None) -> Ran:
    """``rnnkit ARGV`` in a forked child (``hook()`` runs in it first), within ``timeout``."""
    started = time.perf_counter()
    try:
        return _run(argv, timeout, hook)
    finally:
        TIMES.append((time.perf_counter() - started, " ".join(argv)[:150]))


def _run(argv: list[str], timeout: float, hook: Callable[[], None] | None) -> Ran:
    text = {"mode": "w+", "encoding": "utf-8", "errors": "replace"}  # a command may print any bytes
    with tempfile.TemporaryFile(**text) as out, tempfile.TemporaryFile(**text) as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(argv, out, err, hook)
        code = _wait(pid, timeout)
        out.seek(0)
        err.seek(0)
        return Ran(code, out.read(), err.read())


def _child(argv, out, err, hook) -> None:
    code = 1
    try:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        # the streams too: a caller (pytest) may have replaced them with objects of its own
        sys.stdout = open(1, "w", encoding=sys.__stdout__.encoding, errors=sys.__stdout__.errors, closefd=False)
        sys.stderr = open(2, "w", encoding=sys.__stderr__.encoding, errors=sys.__stderr__.errors, closefd=False)
        _cap_memory()
        if hook is not None:
            hook()
        code = rnnkit_main(argv)
    except SystemExit as stop:  # argparse's errors
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - what python -m rnnkit would print
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def _cap_memory() -> None:
    with open("/proc/self/status") as status:
        mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    limit = mapped + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def classify(ran: Ran, expected: Callable[[Ran], bool] | None = None) -> tuple[str, str]:
    """The outcome of a command that should fail cleanly (``expected`` None), or whose exit 0
    is right when ``expected(ran)`` says so."""
    lines = ran.stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    if ran.code is None:
        return "hang", last
    if "Traceback" in ran.stderr:
        return "traceback", last
    if ran.code == 2:
        errors = [line for line in lines if line.startswith("rnnkit: error:")]
        if len(errors) != 1 or len(lines) != 1 and not _only_notes(lines):
            return "other", " / ".join(lines[-3:])
        return ("cryptic" if CRYPTIC.search(errors[0]) else "clean"), errors[0]
    if ran.code == 0:
        if expected is not None and expected(ran):
            return "ok", _last_line(ran.stdout)
        return "silent", _last_line(ran.stdout) or last
    return "other", f"exit {ran.code}: {last}"


def _only_notes(lines: list[str]) -> bool:
    """Lines before the error that the command prints as it goes ("[task] ..." notes)."""
    return all(line.startswith("[") or line.startswith("rnnkit: error:") for line in lines)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def result_of(ran: Ran) -> dict | None:
    """The JSON result line, less what a clock or a path decides; None if there is none."""
    try:
        result = json.loads(_last_line(ran.stdout))
    except json.JSONDecodeError:
        return None
    for key in ("seconds", "checkpoint", "data"):
        result.pop(key, None)
    return result


# -- the workspace -------------------------------------------------------------------------

TASK_DATA = {"charlm": "text.txt", "classify": "labels.tsv", "translate": "pairs.tsv", "tag": "tagged.tsv",
             "forecast": "series.txt"}


def write_data(directory: Path) -> None:
    """Small files in each task's format, the kind a user brings."""
    import random

    import pydoc_data.topics

    rng = random.Random(5)
    words = ["red", "green", "blue", "cat", "dog", "runs", "sleeps", "the", "a"]
    kinds = {"red": "ADJ", "green": "ADJ", "blue": "ADJ", "cat": "NOUN", "dog": "NOUN", "runs": "VERB",
             "sleeps": "VERB", "the": "DET", "a": "DET"}
    sentences = [rng.choices(words, k=rng.randint(1, 5)) for _ in range(240)]
    (directory / "text.txt").write_text("\n".join(pydoc_data.topics.topics.values())[:30_000], encoding="utf-8")
    (directory / "labels.tsv").write_text("".join(f"{'animal' if s[0] in ('cat', 'dog') else 'other'}\t{' '.join(s)}\n"
                                                  for s in sentences), encoding="utf-8")
    (directory / "pairs.tsv").write_text("".join(f"{' '.join(s)}\t{' '.join(reversed(s))}\n" for s in sentences),
                                         encoding="utf-8")
    (directory / "tagged.tsv").write_text("\n".join("".join(f"{w}\t{kinds[w]}\n" for w in s) for s in sentences),
                                          encoding="utf-8")
    (directory / "series.txt").write_text("".join(f"{10 * math.sin(i / 5) + rng.random():.3f}\n" for i in range(300)),
                                          encoding="utf-8")


def train_argv(task: str, out: Path, data_dir: Path, *extra: str) -> list[str]:
    data = ["--data", str(data_dir / TASK_DATA[task])] if task in TASK_DATA else []
    return ["train", task, *data, "--out", str(out), "--hidden", "8", "--epochs", "2", "--no-progress", *extra]


@dataclass
class Workspace:
    root: Path
    data: Path
    runs: dict[str, Path]  # task -> a trained run (best/ and a main checkpoint)
    timeout: float

    def copy_run(self, task: str, name: str) -> Path:
        copy = self.root / "cases" / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.runs[task], copy)
        return copy


def prepare(root: Path, timeout: float) -> Workspace:
    data = root / "data"
    data.mkdir(parents=True)
    write_data(data)
    runs = {}
    for task in ("digits", "caption", "charlm", "classify", "translate", "tag", "forecast"):
        runs[task] = root / "runs" / task
        ran = run(train_argv(task, runs[task], data), timeout * 4)
        if ran.code != 0:
            raise SystemExit(f"probes: training {task} for the workspace failed:\n{ran.stderr}")
    return Workspace(root, data, runs, timeout)


# -- kills at checkpoint writes --------------------------------------------------------------

def die_at(call: str, number: int, after: bool = False) -> Callable[[], None]:
    """A hook that kills the process (as kill -9 would: no cleanup, no flush) at the
    ``number``-th call of ``os.replace`` or ``os.fsync`` (before it, or just after)."""

    def hook() -> None:
        real = getattr(os, call)
        calls = [0]

        def dying(*args, **kwargs):
            calls[0] += 1
            if calls[0] == number and not after:
                os._exit(137)
            value = real(*args, **kwargs)
            if calls[0] == number:
                os._exit(137)
            return value

        setattr(os, call, dying)

    return hook


def count_calls(call: str, path: Path) -> Callable[[], None]:
    """A hook that keeps in ``path`` how often ``os.<call>`` has been called (written at every
    call: a process that ends with os._exit runs no exit handlers)."""

    def hook() -> None:
        real, calls = getattr(os, call), [0]

        def counting(*args, **kwargs):
            value = real(*args, **kwargs)
            calls[0] += 1
            Path(path).write_text(str(calls[0]))
            return value

        setattr(os, call, counting)

    return hook


def outcome_of_run(out: Path, ran: Ran) -> tuple[dict | None, dict[str, np.ndarray]]:
    from rnnkit.io.checkpoint import load_checkpoint

    arrays = {}
    for name in ("", "best"):
        if (out / name / "checkpoint.safetensors").is_file():
            arrays |= {f"{name or 'main'}:{key}": value for key, value in load_checkpoint(out / name)[0].items()}
    return result_of(ran), arrays


def same_outcome(a, b) -> bool:
    return a[0] == b[0] and a[1].keys() == b[1].keys() and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


def kill_cases(ws: Workspace) -> list[Result]:
    """A run killed before, inside or after each file write (every os.fsync and os.replace of
    the run), then resumed (or started again, if it died before its first checkpoint): the end
    must equal the uninterrupted run's, result and every array."""
    from rnnkit.train.trainer import has_checkpoint

    results = []
    setups = {"digits": ("--save-every", "0", "--layers", "2", "--dropout", "0.2", "--epochs", "3"),
              "charlm": ("--save-every", "1e-9", "--epochs", "1")}  # charlm: a checkpoint after every batch
    for task, extra in setups.items():
        reference = []
        for attempt in range(2):  # reproducible first, or no comparison means anything
            out = ws.root / "kills" / f"{task}-reference-{attempt}"
            ran = run(train_argv(task, out, ws.data, *extra), ws.timeout * 4)
            reference.append(outcome_of_run(out, ran))
        if not same_outcome(*reference):
            results.append(Result("kills at writes", f"{task}: uninterrupted run reproducible", "silent",
                                  "two uninterrupted runs differ"))
            continue
        for call in ("fsync", "replace"):
            run(train_argv(task, ws.root / "kills" / f"{task}-count-{call}", ws.data, *extra), ws.timeout * 4,
                hook=count_calls(call, ws.root / "count"))
            total = int((ws.root / "count").read_text())
            numbers = range(1, total + 1) if total <= 30 else np.linspace(1, total, 30).astype(int)
            for number in numbers:
                for after in ((False, True) if call == "replace" else (False,)):
                    name = f"{task}: killed {'after' if after else 'before'} {call} {number}/{total}"
                    out = ws.root / "kills" / f"{task}-{call}-{number}-{after}"
                    argv = train_argv(task, out, ws.data, *extra)
                    run(argv, ws.timeout * 4, hook=die_at(call, int(number), after))
                    again = run(argv + (["--resume"] if has_checkpoint(out) else []), ws.timeout * 4)
                    outcome, detail = classify(again, lambda ran: same_outcome(outcome_of_run(out, ran), reference[0]))
                    results.append(Result("kills at writes", name, outcome, detail))
                    shutil.rmtree(out, ignore_errors=True)
    return results


# -- damaged checkpoints -----------------------------------------------------------------------

def write_raw(directory: Path, arrays: dict[str, np.ndarray], meta: Any) -> None:
    """A checkpoint file as a hostile editor would write it: any arrays (NaN included), any
    metadata, with a valid checksum of the arrays (only the schema can tell)."""
    from safetensors import numpy as safetensors_numpy

    from rnnkit.io import checkpoint as ck

    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    text = json.dumps(meta) if not isinstance(meta, str) else meta
    safetensors_numpy.save_file(contiguous, str(directory / ck.CHECKPOINT_FILE), metadata=ck.header(contiguous, text))


def rewrite(directory: Path, mutate_meta=None, mutate_arrays=None, where=("", "best")) -> None:
    from rnnkit.io.checkpoint import load_checkpoint

    for name in where:
        if not (directory / name / "checkpoint.safetensors").is_file():
            continue
        arrays, meta = load_checkpoint(directory / name)
        if mutate_meta:
            meta = mutate_meta(meta)
        if mutate_arrays:
            arrays = mutate_arrays(arrays)
        write_raw(directory / name, arrays, meta)


def leaves(meta: dict, prefix: tuple = ()) -> list[tuple]:
    """Every key path of the metadata, dictionaries included (lists are leaves)."""
    paths = []
    for key, value in meta.items():
        paths.append(prefix + (key,))
        if isinstance(value, dict) and key != "history":
            paths += leaves(value, prefix + (key,))
    return paths


def wrong_values(value: Any) -> list[tuple[str, Any]]:
    """Values of another type, and out-of-range ones of the same type."""
    if isinstance(value, bool):
        return [("null", None), ("a string", "yes"), ("a dict", {})]
    if isinstance(value, int):
        return [("null", None), ("a string", "x"), ("-5", -5), ("1e12", 10**12), ("a list", [1])]
    if isinstance(value, float):
        return [("null", None), ("a string", "x"), ("-5.0", -5.0), ("NaN", math.nan), ("1e300", 1e300)]
    if isinstance(value, str):
        return [("null", None), ("an int", 5), ("another string", "nonsense")]
    if isinstance(value, list):
        return [("an int", 5), ("a string", "x"), ("a list of strings", ["x"]), ("empty", [])]
    if isinstance(value, dict):
        return [("an int", 5), ("a list", []), ("a string", "x"), ("empty", {})]
    return [("an int", 5), ("a string", "x"), ("a dict", {})]


def mutated(meta: dict, path: tuple, value: Any, delete: bool = False) -> dict:
    import copy

    meta = copy.deepcopy(meta)
    node = meta
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return meta


#: keys whose value only describes the run (a log, a clock): any value of the right shape is fine
INFORMATIONAL = {("position", "seconds"), ("position", "history"), ("format",), ("train_config", "progress"),
                 ("train_config", "log_every"), ("train_config", "save_every_seconds"), ("train_config", "max_seconds")}
#: keys for which null is a valid value (a setting that is off, a default): the run may change with it
NULLABLE = {("data",), ("carry",), ("position", "best"), ("position", "best_scores"), ("position", "partial_scores"),
            ("train_config", "clip_norm"), ("train_config", "patience"), ("model_options", "vocab_size"),
            ("model_options", "min_freq"), ("model_options", "max_len"), ("model_options", "source_tokens"),
            ("model_options", "target_tokens"), ("task_meta", "majority")}


def valid_edit(path: tuple, label: str) -> bool:
    """An edit that leaves a valid checkpoint, which may well give another result: null where
    null is allowed, another mean of a series, one word fewer in tag's table of word tags."""
    return (label == "null" and path in NULLABLE or path == ("task_meta", "mean") and label == "-5.0"
            or path[:2] == ("task_meta", "word_tag") and len(path) == 3 and label == "deleted")


def checkpoint_cases(ws: Workspace) -> list[Result]:
    from rnnkit.io.checkpoint import load_checkpoint

    references = References(ws)
    return (_byte_damage(ws, references) + _schema_damage(ws, references, load_checkpoint)
            + _array_damage(ws, references) + _foreign_checkpoints(ws))


#: the command of each kind on a run directory
COMMANDS = {
    "eval": lambda task, run_dir: ["eval", str(run_dir)],
    "resume": lambda task, run_dir: ["train", task, "--out", str(run_dir), "--hidden", "8", "--epochs", "3", "--resume",
                                     "--no-progress"],
    "sample": lambda task, run_dir: ["sample", str(run_dir), "--length", "20"],
    "predict": lambda task, run_dir: ["predict", str(run_dir), "0" if task == "caption" else "the red cat"],
}


def output_of(kind: str, ran: Ran) -> Any:
    """What must not change: the result line less clocks and paths, or everything printed."""
    return result_of(ran) if kind in ("eval", "resume") else ran.stdout


class References:
    """The output of each command on an undamaged copy of each task's run (computed once)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws, self.cache = ws, {}

    def __call__(self, task: str, kind: str) -> Any:
        if (task, kind) not in self.cache:
            run_dir = self.ws.copy_run(task, f"reference-{kind}")
            ran = run(COMMANDS[kind](task, run_dir), self.ws.timeout * 2)
            self.cache[task, kind] = output_of(kind, ran) if ran.code == 0 else None
        return self.cache[task, kind]

    def unchanged(self, task: str, kind: str) -> Callable[[Ran], bool]:
        """Exit 0 is right if the output is the undamaged run's: the damage changed nothing."""
        reference = self(task, kind)
        return lambda ran: reference is not None and output_of(kind, ran) == reference


def _byte_damage(ws: Workspace, references: References) -> list[Result]:
    """Truncations and bit flips of best/'s file (eval) and of the main one (--resume): a clean
    error, or (a flip in padding or JSON whitespace) exactly the undamaged run's output."""
    results = []
    rng = np.random.default_rng(16)
    for target, kind in (("best", "eval"), ("", "resume")):
        original = (ws.runs["digits"] / target / "checkpoint.safetensors").read_bytes()
        header_end = 8 + int.from_bytes(original[:8], "little")
        cuts = sorted({0, 1, 7, 8, 9, header_end - 1, header_end, header_end + 1, len(original) - 1,
                       *map(int, rng.integers(1, len(original), 6))})
        damages = [("truncated at", cut) for cut in cuts] + [("bit flip at", int(at)) for at in
                                                             rng.integers(0, len(original), 20)]
        for damage, at in damages:
            run_dir = ws.copy_run("digits", "bytes")
            damaged = bytearray(original[:at] if damage.startswith("trunc") else original)
            if damage.startswith("bit"):
                damaged[at] ^= 1 << int(rng.integers(8))
            (run_dir / target / "checkpoint.safetensors").write_bytes(bytes(damaged))
            ran = run(COMMANDS[kind]("digits", run_dir), ws.timeout * 2)
            results.append(Result("damaged checkpoints", f"{kind}: {target or 'main'} {damage} {at}",
                                  *classify(ran, references.unchanged("digits", kind))))
    for name, content in (("empty file", b""), ("text", b"not a checkpoint"), ("8 bytes of header size", b"\xff" * 8)):
        run_dir = ws.copy_run("digits", "bytes")
        (run_dir / "best" / "checkpoint.safetensors").write_bytes(content)
        results.append(Result("damaged checkpoints", f"eval: best/ is {name}",
                              *classify(run(["eval", str(run_dir)], ws.timeout))))
    run_dir = ws.copy_run("digits", "bytes")
    (run_dir / "best" / "checkpoint.safetensors").unlink()
    (run_dir / "best" / "checkpoint.safetensors").mkdir()
    # no checkpoint file in best/ (a kill before its first write): the main checkpoint is scored
    results.append(Result("damaged checkpoints", "eval: best/checkpoint.safetensors is a directory",
                          *classify(run(["eval", str(run_dir)], ws.timeout), lambda ran: result_of(ran) is not None)))
    return results


def _schema_damage(ws: Workspace, references: References, load_checkpoint) -> list[Result]:
    """Every metadata key deleted, or given a value of another type or out of range, in a file
    whose checksums are valid (only the schema can tell): eval, predict or sample, and for
    digits --resume. Exit 0 is right only if the output is the undamaged run's."""
    results = []
    common = set(leaves(load_checkpoint(ws.runs["digits"] / "best")[1]))
    for task in ("digits", "charlm", "classify", "translate", "tag", "forecast", "caption"):
        _, meta = load_checkpoint(ws.runs[task] / "best")
        paths = leaves(meta)
        if task != "digits":  # the training state and the common options are digits' too: covered there
            paths = [p for p in paths if p[0] in ("task_meta", "data") or p[0] == "model_options" and p not in common]
        for path in paths:
            value = meta
            for key in path:
                value = value[key]
            for label, wrong, delete in [("deleted", None, True)] + [(lbl, v, False) for lbl, v in wrong_values(value)]:
                run_dir = ws.copy_run(task, "schema")
                rewrite(run_dir, lambda m: mutated(m, path, wrong, delete))
                for kind in _kinds_for(task, path):
                    ran = run(COMMANDS[kind](task, run_dir), ws.timeout * 2)
                    expected = (lambda ran: True) if path[:2] in INFORMATIONAL or path[:1] in INFORMATIONAL \
                        or valid_edit(path, label) else references.unchanged(task, kind)
                    results.append(Result("damaged checkpoints", f"{kind} {task}: {'.'.join(path)} {label}",
                                          *classify(ran, expected)))
    return results


def _kinds_for(task: str, path: tuple) -> list[str]:
    kinds = ["eval"]
    if task == "digits" and path[0] in ("position", "optimizer", "rng", "train_config", "carry", "model_options", "task",
                                        "dtype"):
        kinds.append("resume")
    if task == "charlm":
        kinds.append("sample")
    if task in ("classify", "translate", "tag", "caption"):
        kinds.append("predict")
    return kinds


def _array_damage(ws: Workspace, references: References) -> list[Result]:
    """Arrays of another dtype or shape, beyond float32's range, NaN, missing or extra."""
    results = []

    def first_model_key(arrays):
        return next(k for k in sorted(arrays) if k.startswith("model.") and arrays[k].ndim == 2)

    def replace(transform):
        def mutate(arrays):
            arrays = dict(arrays)
            key = first_model_key(arrays)
            value = transform(arrays[key])
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
            return arrays
        return mutate

    cases = {
        "int32": lambda a: a.astype(np.int32), "uint8": lambda a: a.astype(np.uint8),
        "bool": lambda a: a > 0, "complex64": lambda a: a.astype(np.complex64),
        "float16 zeros": lambda a: np.zeros(a.shape, np.float16), "float64 (exact)": lambda a: a.astype(np.float64),
        "float64 1e300": lambda a: np.full(a.shape, 1e300), "float32 NaN": lambda a: np.full(a.shape, np.nan, a.dtype),
        "float32 inf": lambda a: np.full(a.shape, np.inf, a.dtype), "transposed": lambda a: a.T.copy(),
        "one more row": lambda a: np.vstack([a, a[:1]]), "flattened": lambda a: a.ravel(),
        "a scalar": lambda a: np.array(1.0, a.dtype), "missing": lambda a: None,
    }
    for label, transform in cases.items():
        for kind in ("eval", "resume"):
            run_dir = ws.copy_run("digits", "arrays")
            rewrite(run_dir, mutate_arrays=replace(transform))
            ran = run(COMMANDS[kind]("digits", run_dir), ws.timeout * 2)
            # a float array of valid values is a valid checkpoint: another width is cast
            expected = {"float64 (exact)": references.unchanged("digits", kind),
                        "float16 zeros": lambda ran: result_of(ran) is not None}.get(label)
            results.append(Result("damaged checkpoints", f"{kind}: a weight {label}", *classify(ran, expected)))
    extras = {"an unknown array": lambda arrays: {**arrays, "model.surprise": np.zeros(3, np.float32)},
              "optimizer state missing": lambda arrays: {k: v for k, v in arrays.items() if not k.startswith("optimizer.")},
              "optimizer state transposed": lambda arrays: {k: (v.T.copy() if k.startswith("optimizer.") and v.ndim == 2
                                                                else v) for k, v in arrays.items()},
              "optimizer state int32": lambda arrays: {k: (v.astype(np.int32) if k.startswith("optimizer.") else v)
                                                       for k, v in arrays.items()}}
    for label, mutate in extras.items():
        run_dir = ws.copy_run("digits", "arrays")
        rewrite(run_dir, mutate_arrays=mutate, where=("",))
        ran = run(COMMANDS["resume"]("digits", run_dir), ws.timeout * 2)
        results.append(Result("damaged checkpoints", f"resume: {label}", *classify(ran)))
    # charlm carries its hidden state across batches: a checkpoint taken mid-epoch holds it
    run_dir = ws.root / "cases" / "carry"
    shutil.rmtree(run_dir, ignore_errors=True)
    run(train_argv("charlm", run_dir, ws.data, "--max-seconds", "0.05", "--epochs", "1"), ws.timeout * 2)
    for label, mutate in {"carry transposed": lambda a: {k: (v.T.copy() if k.startswith("carry.") else v) for k, v in a.items()},
                          "carry missing": lambda a: {k: v for k, v in a.items() if not k.startswith("carry.")},
                          "carry int32": lambda a: {k: (v.astype(np.int32) if k.startswith("carry.") else v) for k,
                                                    v in a.items()},
                          "carry float64 1e300": lambda a: {k: (np.full(v.shape, 1e300) if k.startswith("carry.") else v)
                                                            for k, v in a.items()}}.items():
        case_dir = ws.root / "cases" / "carry-case"
        shutil.rmtree(case_dir, ignore_errors=True)
        shutil.copytree(run_dir, case_dir)
        rewrite(case_dir, mutate_arrays=mutate, where=("",))
        ran = run(train_argv("charlm", case_dir, ws.data, "--resume", "--epochs", "1"), ws.timeout * 2)
        results.append(Result("damaged checkpoints", f"resume charlm: {label}", *classify(ran)))
    return results


def _foreign_checkpoints(ws: Workspace) -> list[Result]:
    """Another task's run, or another task's arrays under this task's description."""
    from rnnkit.io.checkpoint import load_checkpoint

    results = []
    ran = run(["train", "digits", "--out", str(ws.runs["charlm"]), "--epochs", "3", "--resume"], ws.timeout)
    results.append(Result("damaged checkpoints", "resume digits on a charlm run", *classify(ran)))
    for mine, other in (("digits", "charlm"), ("charlm", "digits"), ("classify", "tag"), ("translate", "classify"),
                        ("digits", "caption"), ("forecast", "digits")):
        run_dir = ws.copy_run(mine, "foreign")
        foreign, _ = load_checkpoint(ws.runs[other] / "best")
        rewrite(run_dir, mutate_arrays=lambda arrays: foreign)
        results.append(Result("damaged checkpoints", f"eval {mine} with {other}'s arrays",
                              *classify(run(["eval", str(run_dir)], ws.timeout))))
        run_dir = ws.copy_run(mine, "foreign")
        shutil.rmtree(run_dir / "best")
        shutil.copytree(ws.runs[other] / "best", run_dir / "best")
        ran = run(["eval", str(run_dir)], ws.timeout)
        # best/ of another run in this one: scoring it as what it is, is fine (it says so)
        results.append(Result("damaged checkpoints", f"eval {mine} run holding {other}'s best/",
                              *classify(ran, lambda ran: (result_of(ran) or {}).get("task") == other)))
    return results


# -- bad data files ------------------------------------------------------------------------------

def bad_files(directory: Path) -> dict[str, Path]:
    """Files no task can train on, or that need care: each a case for every task's --data."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"/dev/zero": Path("/dev/zero"), "/dev/null": Path("/dev/null"), "/dev/urandom": Path("/dev/urandom"),
             "a directory": directory, "a missing file": directory / "missing.txt"}
    fifo = directory / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    files["a FIFO"] = fifo
    contents = {
        "empty": b"", "whitespace only": b" \n\t\n\n", "one line": b"hello\tworld\n",
        "a line of 60,000 characters": b"a\t" + b"x" * 60_000 + b"\n",
        "a line of 49,000 characters": b"a\t" + b"x y " * 12_250 + b"\n" + b"b\tshort\n" * 50,
        "random bytes": bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8)),
        "NUL bytes": b"\x00" * 10_000, "UTF-16 text": "label\ttext\n".encode("utf-16") * 100,
        "Latin-1 text": "caf\xe9\tna\xefve\n".encode("latin-1") * 100,
        "tabs only": b"\t\t\t\n" * 100, "CRLF lines": b"1\tone two\r\n2\tthree four\r\n" * 100,
        "one label": b"same\tsome words here\n" * 300, "every label different": b"".join(
            f"l{i}\tword{i} other\n".encode() for i in range(300)),
        "numbers with NaN": b"1\n2\nnan\n3\n" * 50, "numbers with 1e300": b"1\n2\n1e300\n3\n" * 50,
        "one number": b"1.5\n", "numbers with commas": b"1,5\n2,5\n" * 50,
        "three columns": b"a\tb\tc\n" * 200, "a word of 40,000 characters": b"a\t" + b"x" * 40_000 + b"\n" + b"b\ty z\n" * 300,
    }
    for name, content in contents.items():
        path = directory / (re.sub(r"\W+", "-", name) + ".txt")
        path.write_bytes(content)
        files[name] = path
    corrupt = directory / "corrupt.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    files["a corrupt .gz"] = corrupt
    bomb = directory / "bomb.txt.gz"
    if not bomb.exists():  # 2.1 GiB of zeros in about 2 MB: a file that is small until read
        with gzip.open(bomb, "wb", compresslevel=1) as handle:
            block = b"0" * (1 << 24)
            for _ in range(2150 // 16):
                handle.write(block)
    files["a gzip bomb (2.1 GiB unpacked)"] = bomb
    return files


def data_cases(ws: Workspace) -> list[Result]:
    results = []
    files = bad_files(ws.root / "bad")
    for task in TASK_DATA:
        for name, path in files.items():
            out = ws.root / "cases" / "data"
            shutil.rmtree(out, ignore_errors=True)
            argv = ["train", task, "--data", str(path), "--out", str(out), "--hidden", "8", "--epochs", "1",
                    "--max-seconds", "5", "--no-progress"]
            ran = run(argv, ws.timeout * 2)
            results.append(Result("bad data files", f"train {task} --data {name}",
                                  *classify(ran, lambda ran: result_of(ran) is not None)))
    for task in TASK_DATA:  # scoring a trained run on a bad file
        for name in ("/dev/zero", "a FIFO", "empty", "random bytes", "a line of 60,000 characters", "a directory",
                     "a missing file", "three columns", "UTF-16 text", "a gzip bomb (2.1 GiB unpacked)"):
            ran = run(["eval", str(ws.runs[task]), "--data", str(files[name])], ws.timeout)
            results.append(Result("bad data files", f"eval {task} --data {name}",
                                  *classify(ran, lambda ran: result_of(ran) is not None)))
    return results


# -- bad arguments ---------------------------------------------------------------------------

INT_OPTIONS = ["--epochs", "--hidden", "--layers", "--batch-size", "--patience", "--seed", "--min-freq", "--vocab-size"]
FLOAT_OPTIONS = ["--max-seconds", "--dropout", "--lr", "--clip", "--save-every"]
INT_VALUES = ["0", "-1", "1000000000", "10" * 15, "nan", "1.5", ""]
FLOAT_VALUES = ["0", "-1", "nan", "inf", "-inf", "1e-300", "1e300", "x"]


def argument_cases(ws: Workspace) -> list[Result]:
    results = []
    for option in INT_OPTIONS + FLOAT_OPTIONS:
        for value in INT_VALUES if option in INT_OPTIONS else FLOAT_VALUES:
            task = "classify" if option in ("--min-freq", "--vocab-size") else "digits"
            out = ws.root / "cases" / "args"
            shutil.rmtree(out, ignore_errors=True)
            base = ["--hidden", "4", "--epochs", "1", "--max-seconds", "3"]
            base = [b for i, b in enumerate(base) if option not in (base[i - (i % 2)],)]
            data = ["--data", str(ws.data / TASK_DATA[task])] if task in TASK_DATA else []
            argv = ["train", task, *data, "--out", str(out), "--no-progress", *base, option, value]
            ran = run(argv, ws.timeout * 2)
            results.append(Result("bad arguments", f"train {task} {option} {value!r}",
                                  *classify(ran, lambda ran: _valid_json(ran))))
    for option, values in (("--length", INT_VALUES), ("--temperature", FLOAT_VALUES), ("--seed", INT_VALUES)):
        for value in values:
            ran = run(["sample", str(ws.runs["charlm"]), option, value, *(["--length", "50"] if option != "--length" else [])],
                      ws.timeout)
            results.append(Result("bad arguments", f"sample {option} {value!r}",
                                  *classify(ran, lambda ran: bool(ran.stdout.rstrip("\n")))))
    primes = {"unknown characters": "\u2603\u2603 snow", "empty": "", "10,000 characters": "the " * 2_500,
              "NUL": "\x00", "a lone surrogate": "\udcff"}
    for name, prime in primes.items():
        ran = run(["sample", str(ws.runs["charlm"]), "--prime", prime, "--length", "20"], ws.timeout)
        results.append(Result("bad arguments", f"sample --prime {name}", *classify(ran, lambda ran: True)))
    inputs = {"empty": "", "unknown words": "zebra quokka", "10,000 characters": "the cat " * 1_250, "NUL": "\x00",
              "a tab": "a\tb", "a newline": "a\nb", "60,000 characters": "x" * 60_000}
    for task in ("classify", "translate", "tag", "charlm", "forecast"):
        for name, text in inputs.items():
            ran = run(["predict", str(ws.runs[task]), text], ws.timeout)
            results.append(Result("bad arguments", f"predict {task} input {name}",
                                  *classify(ran, lambda ran: ran.stdout.strip() != "" or text == "")))
    for value in ("-1", "100000", "1e9", "x", "1.5", "0"):
        ran = run(["predict", str(ws.runs["caption"]), value], ws.timeout)
        results.append(Result("bad arguments", f"predict caption image {value}",
                              *classify(ran, lambda ran: value == "0" and bool(ran.stdout.strip()))))
    for value in ("-1", "0", "x"):
        ran = run(["predict", str(ws.runs["digits"]), value], ws.timeout)
        results.append(Result("bad arguments", f"predict digits input {value}", *classify(ran,
                                                                                          lambda ran: bool(ran.stdout.strip()))))
    for argv in (["predict", str(ws.runs["classify"]), "x", "--plot", str(ws.root / "a.png")],
                 ["predict", str(ws.runs["translate"]), "red cat", "--plot", str(ws.root / "missing" / "dir" / "a.png")],
                 ["predict", str(ws.runs["translate"]), "red cat", "--plot", "/dev/full"],
                 ["eval", str(ws.root / "nowhere")], ["eval", "/dev/null"], ["sample", str(ws.runs["classify"])],
                 ["train", "digits", "--data", str(ws.data / "labels.tsv"), "--out", str(ws.root / "x")],
                 ["train", "charlm", "--attention", "dot", "--out", str(ws.root / "x")],
                 ["train", "charlm", "--bidirectional", "--data", str(ws.data / "text.txt"), "--out", str(ws.root / "x")],
                 ["train", "onetoone", "--layers", "2", "--out", str(ws.root / "x")],
                 ["train", "digits", "--nonlinearity", "relu", "--cell", "gru", "--out", str(ws.root / "x")],
                 ["train", "digits", "--out", "/proc/version"], ["train", "digits", "--out", "/proc/x/y"]):
        ran = run(argv, ws.timeout)
        results.append(Result("bad arguments", " ".join(a if len(a) < 40 else "..." for a in argv[:4]) + " " +
                              " ".join(argv[4:]), *classify(ran)))
    return results


def _valid_json(ran: Ran) -> bool:
    try:
        json.loads(_last_line(ran.stdout), parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        return True
    except ValueError:
        return False


# -- misuse of the library ------------------------------------------------------------------------

def api_cases(ws: Workspace) -> list[Result]:
    """Calls with wrong shapes, dtypes, lengths, values: each must raise rnnkit's ValueError or
    TypeError that names the argument and says what was expected."""
    results = []
    for name, call in _api_calls().items():
        outcome, detail = _classify_call(call, ws.timeout)
        if name.endswith(VALID_CALL):  # a call that must work
            outcome = "ok" if outcome == "silent" else outcome
        results.append(Result("API misuse", name, outcome, detail))
    return results


#: the mark of a case that is no misuse: it must work (and an error is the problem)
VALID_CALL = " (valid)"


def _classify_call(call: Callable[[], Any], timeout: float) -> tuple[str, str]:
    def alarm(signum, frame):  # noqa: ARG001
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(timeout))
    try:
        with np.errstate(all="ignore"), contextlib.redirect_stderr(io.StringIO()):
            call()
    except TimeoutError:
        return "hang", ""
    except Exception as error:  # noqa: BLE001
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        frames = traceback.extract_tb(error.__traceback__)
        # rnnkit's own raise statement, or an error from inside NumPy or Python
        raised_by_rnnkit = frames and "/rnnkit/" in frames[-1].filename
        if not raised_by_rnnkit:
            return "traceback", message
        if CRYPTIC.search(str(error)) or type(error) is KeyError:
            return "cryptic", message
        return "clean", message
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return "silent", "no error"


def _api_calls() -> dict[str, Callable[[], Any]]:
    from rnnkit import functional as F
    from rnnkit.data import Vocab, pad_batch
    from rnnkit.models import ManyToMany, ManyToOne, OneToMany, Seq2Seq
    from rnnkit.nn import GRU, LSTM, RNN, Embedding, Linear
    from rnnkit.optim import SGD, Adam, clip_grad_norm, make_optimizer

    x = np.zeros((5, 3, 4), np.float32)
    calls: dict[str, Callable[[], Any]] = {}

    def add(name, call):
        calls[name] = call

    for layer_name, layer in (("RNN", RNN), ("LSTM", LSTM), ("GRU", GRU)):
        add(f"{layer_name}(input_size=0)", lambda layer=layer: layer(0, 3))
        add(f"{layer_name}(hidden_size=-1)", lambda layer=layer: layer(4, -1))
        add(f"{layer_name}(hidden_size=2.5)", lambda layer=layer: layer(4, 2.5))
        add(f"{layer_name}(num_layers=0)", lambda layer=layer: layer(4, 3, num_layers=0))
        add(f"{layer_name}(dropout=1.5)", lambda layer=layer: layer(4, 3, dropout=1.5))
        add(f"{layer_name}(dropout=nan)", lambda layer=layer: layer(4, 3, dropout=math.nan))
        add(f"{layer_name}(dtype=int32)", lambda layer=layer: layer(4, 3, dtype=np.int32))
        add(f"{layer_name}(dtype=float16)", lambda layer=layer: layer(4, 3, dtype=np.float16))
        add(f"{layer_name}(seed='x')", lambda layer=layer: layer(4, 3, seed="x"))
        add(f"{layer_name}(merge_mode='multiply')", lambda layer=layer: layer(4, 3, bidirectional=True, merge_mode="multiply"))
        module = lambda layer=layer: layer(4, 3, seed=0)  # noqa: E731
        add(f"{layer_name}.forward(x 2-D)", lambda m=module: m().forward(x[0]))
        add(f"{layer_name}.forward(x 4-D)", lambda m=module: m().forward(x[None]))
        add(f"{layer_name}.forward(6 features, not 4)", lambda m=module: m().forward(np.zeros((5, 3, 6))))
        add(f"{layer_name}.forward(x complex)", lambda m=module: m().forward(x.astype(np.complex64)))
        add(f"{layer_name}.forward(x of strings)", lambda m=module: m().forward(np.full((5, 3, 4), "a")))
        add(f"{layer_name}.forward(x NaN)", lambda m=module: m().forward(np.full((5, 3, 4), np.nan)))
        add(f"{layer_name}.forward(x 1e300 into float32)", lambda m=module: m().forward(np.full((5, 3, 4), 1e300)))
        add(f"{layer_name}.forward(T=0)", lambda m=module: m().forward(np.zeros((0, 3, 4))))
        add(f"{layer_name}.forward(lengths of 2 for 3)", lambda m=module: m().forward(x, lengths=[5, 5]))
        add(f"{layer_name}.forward(lengths 0)", lambda m=module: m().forward(x, lengths=[5, 0, 5]))
        add(f"{layer_name}.forward(lengths > T)", lambda m=module: m().forward(x, lengths=[5, 6, 5]))
        add(f"{layer_name}.forward(lengths -1)", lambda m=module: m().forward(x, lengths=[5, -1, 5]))
        add(f"{layer_name}.forward(lengths 2.5)", lambda m=module: m().forward(x, lengths=[5, 2.5, 5]))
        add(f"{layer_name}.forward(lengths an int)", lambda m=module: m().forward(x, lengths=5))
        add(f"{layer_name}.forward(lengths strings)", lambda m=module: m().forward(x, lengths=["5", "5", "5"]))
        add(f"{layer_name}.backward before forward", lambda m=module: m().backward(np.zeros((5, 3, 3))))

        def wrong_dout(m=module):
            instance = m()
            instance.forward(x)
            instance.backward(np.zeros((5, 3, 7)))

        add(f"{layer_name}.backward(dout of the wrong shape)", wrong_dout)

        def twice(m=module):
            instance = m()
            instance.forward(x)
            instance.backward(np.zeros((5, 3, 3)))
            instance.backward(np.zeros((5, 3, 3)))

        add(f"{layer_name}.backward twice after one forward", twice)
        add(f"{layer_name}.load_state_dict(missing key)", lambda m=module: m().load_state_dict({}))
        add(f"{layer_name}.load_state_dict(a list)", lambda m=module: m().load_state_dict([1, 2]))
        add(f"{layer_name}.load_state_dict(wrong shape)",
            lambda m=module: (lambda i: i.load_state_dict({k: np.zeros(3) for k in i.state_dict()}))(m()))
        add(f"{layer_name}.load_state_dict(1e300 float64)",
            lambda m=module: (lambda i: i.load_state_dict({k: np.full(v.shape, 1e300) for k, v in i.state_dict().items()}))(m()))
        add(f"{layer_name}.load_state_dict(int32)",
            lambda m=module: (lambda i: i.load_state_dict({k: v.astype(np.int32) for k, v in i.state_dict().items()}))(m()))
        add(f"{layer_name}.load_state_dict(nested lists) (valid)",
            lambda m=module: (lambda i: i.load_state_dict({k: v.tolist() for k, v in i.state_dict().items()}))(m()))
    h0 = np.zeros((1, 3, 3), np.float32)
    add("RNN.forward(h0 wrong shape)", lambda: RNN(4, 3).forward(x, h0=np.zeros((2, 3, 3))))
    add("RNN.forward(h0 an int)", lambda: RNN(4, 3).forward(x, h0=5))
    add("RNN.forward(h0 a tuple)", lambda: RNN(4, 3).forward(x, h0=(h0,)))
    add("RNN(nonlinearity='gelu')", lambda: RNN(4, 3, nonlinearity="gelu"))
    add("LSTM.forward(hx an array, not a pair)", lambda: LSTM(4, 3).forward(x, hx=h0))
    add("LSTM.forward(hx a 1-tuple)", lambda: LSTM(4, 3).forward(x, hx=(h0,)))
    add("LSTM.forward(hx an int)", lambda: LSTM(4, 3).forward(x, hx=5))
    add("LSTM.forward(c0 wrong shape)", lambda: LSTM(4, 3).forward(x, hx=(h0, np.zeros((1, 2, 3)))))
    add("GRU.forward(h0 an int)", lambda: GRU(4, 3).forward(x, h0=5))
    add("Linear(0, 3)", lambda: Linear(0, 3))
    add("Linear.forward(wrong features)", lambda: Linear(4, 3).forward(np.zeros((2, 5))))
    add("Linear.forward(a scalar)", lambda: Linear(4, 3).forward(1.0))
    add("Embedding.forward(id out of range)", lambda: Embedding(5, 3).forward(np.array([[7]])))
    add("Embedding.forward(negative id)", lambda: Embedding(5, 3).forward(np.array([[-1]])))
    add("Embedding.forward(float ids)", lambda: Embedding(5, 3).forward(np.array([[1.5]])))
    add("Embedding(padding_idx=9)", lambda: Embedding(5, 3, padding_idx=9))
    logits, targets = np.zeros((5, 3, 4)), np.zeros((5, 3), int)
    add("softmax_cross_entropy(target out of range)", lambda: F.losses.softmax_cross_entropy(logits, targets + 9))
    add("softmax_cross_entropy(negative target)", lambda: F.losses.softmax_cross_entropy(logits, targets - 1))
    add("softmax_cross_entropy(float targets)", lambda: F.losses.softmax_cross_entropy(logits, targets + 0.5))
    add("softmax_cross_entropy(targets of another shape)", lambda: F.losses.softmax_cross_entropy(logits, targets[:4]))
    add("softmax_cross_entropy(lengths > T)", lambda: F.losses.softmax_cross_entropy(logits, targets, lengths=[9, 1, 1]))
    add("softmax_cross_entropy(reduction='avg')", lambda: F.losses.softmax_cross_entropy(logits, targets, reduction="avg"))
    add("softmax_cross_entropy(NaN logits) (valid)", lambda: F.losses.softmax_cross_entropy(logits + np.nan, targets))
    add("mse(shapes differ)", lambda: F.losses.mse(np.zeros((5, 3, 1)), np.zeros((5, 3, 2))))
    add("mse(NaN targets) (valid)", lambda: F.losses.mse(np.zeros((5, 3, 1)), np.full((5, 3, 1), np.nan)))
    model = lambda: ManyToOne(3, 4, input_size=4, seed=0)  # noqa: E731
    add("make_optimizer('adamm')", lambda: make_optimizer("adamm", model()))
    add("SGD(lr=-1)", lambda: SGD(model(), lr=-1))
    add("SGD(lr=nan)", lambda: SGD(model(), lr=math.nan))
    add("SGD(momentum=-1)", lambda: SGD(model(), momentum=-1))
    add("SGD(nesterov without momentum)", lambda: SGD(model(), nesterov=True))
    add("Adam(betas=(1.5, 0.9))", lambda: Adam(model(), betas=(1.5, 0.9)))
    add("Adam(betas=0.9)", lambda: Adam(model(), betas=0.9))
    add("Adam(eps=-1)", lambda: Adam(model(), eps=-1))
    add("Adam.load_state_dict(5)", lambda: Adam(model()).load_state_dict(5))
    add("Adam.load_state_dict({})", lambda: Adam(model()).load_state_dict({}))
    add("Adam.load_state_dict(step 'x')", lambda: (lambda o: o.load_state_dict({**o.state_dict(), "step": "x"}))(Adam(model())))
    add("clip_grad_norm(max_norm=-1)", lambda: clip_grad_norm(model(), -1))
    add("clip_grad_norm(max_norm=nan)", lambda: clip_grad_norm(model(), math.nan))
    add("clip_grad_norm(norm_type=0)", lambda: clip_grad_norm(model(), 1.0, norm_type=0))
    add("ManyToOne(pooling='median')", lambda: ManyToOne(3, 4, input_size=4, pooling="median"))
    add("ManyToOne with neither input_size nor vocab_size", lambda: ManyToOne(3, 4))
    add("ManyToOne.forward(x 2-D)", lambda: model().forward(x[0]))
    add("ManyToMany(cell='transformer')", lambda: ManyToMany(3, 4, input_size=4, cell="transformer"))
    add("ManyToMany(vocab_size=0)", lambda: ManyToMany(3, 4, vocab_size=0))
    add("ManyToMany.forward(ids beyond the vocabulary)", lambda: ManyToMany(3, 4, vocab_size=5).forward(np.full((2, 2), 9)))
    add("ManyToMany.forward(float ids)", lambda: ManyToMany(3, 4, vocab_size=5).forward(np.full((2, 2), 1.5)))
    gen = lambda: OneToMany(4, 6, 5, seed=0)  # noqa: E731
    features = np.zeros((2, 4), np.float32)
    add("OneToMany.generate(max_len=0) (valid)", lambda: gen().generate(features, 1, 2, max_len=0))
    add("OneToMany.generate(max_len=-1)", lambda: gen().generate(features, 1, 2, max_len=-1))
    add("OneToMany.generate(method='top-k')", lambda: gen().generate(features, 1, 2, max_len=3, method="top-k"))
    add("OneToMany.generate(beam_size=0)", lambda: gen().generate(features, 1, 2, max_len=3, method="beam", beam_size=0))
    add("OneToMany.generate(temperature=0)",
        lambda: gen().generate(features, 1, 2, max_len=3, method="sample", temperature=0, rng=np.random.default_rng(0)))
    add("OneToMany.generate(temperature=nan)",
        lambda: gen().generate(features, 1, 2, max_len=3, method="sample", temperature=math.nan, rng=np.random.default_rng(0)))
    add("OneToMany.generate(bos beyond the vocabulary)", lambda: gen().generate(features, 99, 2, max_len=3))
    add("OneToMany.generate(features of 3, not 4)", lambda: gen().generate(np.zeros((2, 3)), 1, 2, max_len=3))
    add("Seq2Seq(attention='luong')", lambda: Seq2Seq(5, 6, 4, attention="luong"))
    add("Seq2Seq(source_vocab_size=0)", lambda: Seq2Seq(0, 6, 4))
    add("pad_batch([])", lambda: pad_batch([]))
    add("pad_batch(ragged 2-D)", lambda: pad_batch([np.zeros((2, 3)), np.zeros((2, 4))]))
    add("pad_batch(an empty sequence)", lambda: pad_batch([[1, 2], []]))
    add("Vocab(level='sentence')", lambda: Vocab("abc", level="sentence"))
    add("Vocab.decode(id beyond it)", lambda: Vocab("abc").decode([99]))
    h = np.zeros((3, 3))
    add("rnn_forward(W_hh of another size)", lambda: F.rnn_forward(x, h, np.zeros((3, 4)), np.zeros((4, 4)), np.zeros(3)))
    add("rnn_forward(b_h of another size)", lambda: F.rnn_forward(x, h, np.zeros((3, 4)), np.zeros((3, 3)), np.zeros(5)))
    add("rnn_forward(h0 of another batch)", lambda: F.rnn_forward(x, h[:2], np.zeros((3, 4)), np.zeros((3, 3)), np.zeros(3)))
    add("rnn_forward(nonlinearity='softplus')",
        lambda: F.rnn_forward(x, h, np.zeros((3, 4)), np.zeros((3, 3)), np.zeros(3), nonlinearity="softplus"))
    return calls


# -- the table -----------------------------------------------------------------------------------

CATEGORIES = {"kills at writes": kill_cases, "damaged checkpoints": checkpoint_cases, "bad data files": data_cases,
              "bad arguments": argument_cases, "API misuse": api_cases}


def print_table(results: list[Result], seconds: float, verbose: bool) -> None:
    counts: dict[str, Counter] = defaultdict(Counter)
    for result in results:
        counts[result.category][result.outcome] += 1
    header = f"| {'category':<20} | cases | " + " | ".join(f"{o:>9}" for o in OUTCOMES) + " |"
    print(header)
    print("|" + "|".join("-" * (len(cell) + 0) for cell in header.split("|")[1:-1]) + "|")
    for category in CATEGORIES:
        if category in counts:
            row = counts[category]
            print(f"| {category:<20} | {sum(row.values()):>5} | " + " | ".join(f"{row[o]:>9}" for o in OUTCOMES) + " |")
    total = Counter()
    for row in counts.values():
        total.update(row)
    print(f"| {'all':<20} | {sum(total.values()):>5} | " + " | ".join(f"{total[o]:>9}" for o in OUTCOMES) + " |")
    print(f"\n{len(results)} cases in {seconds:.0f} s; the slowest commands:")
    for took, command in sorted(TIMES, reverse=True)[:5]:
        print(f"  {took:5.1f} s  rnnkit {command}")
    shown = [r for r in results if verbose or r.outcome not in ("clean", "ok")]
    if shown:
        print("\ncases that did not end clean or ok:" if not verbose else "\nevery case:")
        for r in shown:
            print(f"  [{r.outcome}] {r.category}: {r.name}\n      {r.detail[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(CATEGORIES), help="these categories only")
    parser.add_argument("--verbose", action="store_true", help="list every case, not only the problems")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a command may run (training: a multiple)")
    parser.add_argument("--keep", action="store_true", help="keep the workspace (its path is printed)")
    args = parser.parse_args(argv)
    from rnnkit.viz.plots import _pyplot

    _pyplot()  # imported once here, not in every forked command
    root = Path(tempfile.mkdtemp(prefix="rnnkit-probes-"))
    started = time.perf_counter()
    results: list[Result] = []
    try:
        workspace = prepare(root, args.timeout)
        for category, cases in CATEGORIES.items():
            if args.only and category not in args.only:
                continue
            began = time.perf_counter()
            found = cases(workspace)
            print(f"{category}: {len(found)} cases, {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
            results += found
    finally:
        if args.keep:
            print(f"workspace: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(results, time.perf_counter() - started, args.verbose)
    bad = sum(r.outcome not in ("clean", "ok") for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
