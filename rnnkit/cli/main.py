"""The ``rnnkit`` command: train, eval, sample, predict.

``train`` and ``eval`` print their metrics as one JSON object on the last line of standard
output; progress and logs go to standard error. Errors are one line on standard error with
exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from rnnkit import openblas

openblas.configure()  # before NumPy loads: OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded
openblas.share_threads()  # likewise its thread count: under mpiexec, the cores shared between processes

from rnnkit.cli.export import add_export_parser, cmd_export  # noqa: E402
from rnnkit.cli.output import result_line  # noqa: E402

if TYPE_CHECKING:
    from rnnkit.tasks.base import Task

EXIT_ERROR = 2
#: a file could not be written (a full disk, a quota, a read-only file system, no permission)
EXIT_WRITE = 3


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # a prefix is not an option: "--embed 256" would otherwise set --embed-dropout to 256
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(EXIT_ERROR, f"rnnkit: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from rnnkit.tasks import TASKS

    parser = _Parser(prog="rnnkit", description="Recurrent neural networks from first principles on NumPy.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model on a task", description=(
        "Train TASK on its default real data (or --data), checkpointing into --out. "
        "Prints the test metrics as one JSON object on the last line."))
    train.add_argument("task", choices=sorted(TASKS), metavar="TASK", help=f"one of: {', '.join(TASKS)}")
    train.add_argument("--data", help="your own data file in the task's format (see README)")
    train.add_argument("--valid", metavar="FILE", help=(
        "validation data in --data's format (default: a seeded share carved from the data, which then trains)"))
    train.add_argument("--test", metavar="FILE", help="test data in --data's format (default: a seeded share)")
    train.add_argument("--out", help="checkpoint directory (default: runs/TASK)")
    train.add_argument("--epochs", type=int, help=(
        "number of epochs (default: per task, more for classify and tag on a small training set so that a run makes "
        "2,000 updates; with --max-seconds and no --epochs, training goes on past the default while validation "
        "improves, until early stopping or the time budget)"))
    train.add_argument("--max-seconds", type=float, help="stop cleanly, with a checkpoint, after this much training time")
    train.add_argument("--hidden", type=int, help="hidden units per direction")
    train.add_argument("--layers", type=int, help="stacked RNN layers")
    train.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                       help="add a reverse direction (default: per task)")
    train.add_argument("--cell", choices=["rnn", "lstm", "gru", "mingru", "minlstm"], help=(
        "recurrent cell: Elman rnn, lstm, gru, or the minimal mingru and minlstm whose gates read the input "
        "alone (default: per task, see README)"))
    train.add_argument("--nonlinearity", choices=["tanh", "relu", "sigmoid"], help="of the Elman cell (--cell rnn)")
    train.add_argument("--dropout", type=float, help="dropout between stacked layers")
    train.add_argument("--recurrent-dropout", type=float, metavar="P", help=(
        "drop each unit of the state entering the recurrent product, one mask per sequence (variational; "
        "not for mingru/minlstm, which have none); the NumPy loops run"))
    train.add_argument("--embed-dropout", type=float, metavar="P", help=(
        "charlm, classify, tag: drop each element of the embedded tokens in training"))
    train.add_argument("--pooling", choices=["last", "mean", "max", "attention"], help=(
        "classify: how the states of all steps become one vector: the last state, their mean or maximum, or "
        "attention (a softmax over steps of their scores against a learned query) (default: max)"))
    train.add_argument("--ensemble", type=int, metavar="K", help=(
        "classify: train K models side by side, each on its own loss from its own initial weights, and "
        "predict with the mean of their class probabilities (default: 3; 1 = a single model)"))
    train.add_argument("--layer-norm", action="store_true", default=None, help=(
        "lstm and gru: normalise the input and recurrent products apart, and the LSTM's cell state (Ba et al. "
        "2016); the NumPy loops run"))
    train.add_argument("--zoneout", type=float, metavar="P", help=(
        "each unit of each state keeps its previous value with probability P in training (the expectation "
        "at evaluation); the scan runs a step at a time"))
    train.add_argument("--stack", type=int, help="speech: frames read as one step (fewer steps, faster; default 3)")
    train.add_argument("--tokens", choices=["auto", "char", "word", "bpe"], help=(
        "text tasks: characters, words or subwords (byte-pair encoding); auto (the default) decides from "
        "the training data and says why"))
    train.add_argument("--source-tokens", choices=["auto", "char", "word", "bpe"],
                       help="translate: the source side's (default: --tokens)")
    train.add_argument("--target-tokens", choices=["auto", "char", "word", "bpe"],
                       help="translate: the target side's (default: --tokens)")
    train.add_argument("--attention", choices=["none", "dot", "general", "additive"], help=(
        "translate: the decoder attends over the encoder's outputs (Luong dot or general, Bahdanau additive); "
        "default additive, see README"))
    train.add_argument("--min-freq", type=int, help="word tokens: words seen fewer times in training are unknown (default 2)")
    train.add_argument("--vocab-size", type=int, help="text tasks: the most symbols in a vocabulary (bpe: its size)")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--bptt", type=int, metavar="K2", help=(
        "charlm: steps the gradients flow back through (truncated BPTT; default 64)"))
    train.add_argument("--bptt-stride", type=int, metavar="K1", help=(
        "charlm: update every K1 steps, each update backpropagating K2 = --bptt steps: TBPTT(k1, k2) "
        "(default: K1 = K2)"))
    train.add_argument("--documents", choices=["one", "lines", "paragraphs"], help=(
        "charlm: the text is one document (default), or documents one per line or between blank lines: each "
        "stream's state starts again where a document does"))
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop", "adagrad"])
    train.add_argument("--weight-decay", type=float, help=(
        "the optimizer's weight decay: decoupled for adamw (theta *= 1 - lr * wd each step), an L2 term for the "
        "others (default: the optimizer's own, 0 and adamw's 0.01; a task may choose by the data's size)"))
    train.add_argument("--clip", type=float, help="global gradient-norm clip (0 = off)")
    train.add_argument("--patience", type=int, help=(
        "early stopping on the task's primary validation metric: epochs without improvement (0 = off; "
        "default: per task, else sized by the training examples, 3 to 10)"))
    train.add_argument("--seed", type=int, help="of every random choice: initialisation, batches, dropout (default 0)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    train.add_argument("--save-every", type=float, metavar="SECONDS", help=(
        "also write a resumable checkpoint this often within an epoch (default 600; 0 = only at epoch ends)"))
    train.add_argument("--overwrite", action="store_true",
                       help="start over in an --out that holds another run, deleting it (default: refuse)")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar (default: when standard error is a terminal)")
    train.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None, help=(
        "TensorBoard event files in DIR/tensorboard (default: on where tensorboardX is installed)"))

    evaluate = commands.add_parser("eval", help="score a trained model", description=(
        "Score the model in DIR on its test split, or on --data (same format as training)."))
    evaluate.add_argument("dir", metavar="DIR")
    evaluate.add_argument("--data", help="a file in the task's format to score on")

    sample = commands.add_parser("sample", help="generate text from a character model")
    sample.add_argument("dir", metavar="DIR")
    sample.add_argument("--prime", default="", help="text to start from")
    sample.add_argument("--length", type=int, default=400)
    sample.add_argument("--temperature", type=float, default=0.8)
    sample.add_argument("--seed", type=int, default=0)

    predict = commands.add_parser("predict", help="labels, tags, translations or captions for inputs")
    predict.add_argument("dir", metavar="DIR")
    predict.add_argument("inputs", nargs="+", metavar="INPUT")
    predict.add_argument("--plot", metavar="FILE.png", help=(
        "translate with attention: draw what each output token attended to, one heatmap per input"))
    add_export_parser(commands)
    return parser


#: the most a sample may be asked for, in characters (a million: seconds to minutes of generation)
MAX_SAMPLE_LENGTH = 1_000_000
#: a model whose weights, gradients and optimizer state would take more than this share of the
#: machine's memory is refused before anything is allocated
MAX_MEMORY_SHARE = 0.5


def _check_train_arguments(args: argparse.Namespace) -> None:
    """Ranges of the training options, each a one-line error naming what was expected."""
    from rnnkit.train.schema import MAX_SIZE

    checks = [("--batch-size", args.batch_size, lambda v: v >= 1, "a positive integer"),
              ("--hidden", args.hidden, lambda v: v >= 1, "a positive integer"),
              ("--layers", args.layers, lambda v: v >= 1, "a positive integer"),
              # what a checkpoint may hold (rnnkit.train.schema), or the run could not be loaded
              *((flag, value, lambda v: v <= MAX_SIZE, f"at most {MAX_SIZE:,}") for flag, value in
                (("--batch-size", args.batch_size), ("--hidden", args.hidden), ("--layers", args.layers),
                 ("--bptt", args.bptt), ("--bptt-stride", args.bptt_stride))),
              ("--dropout", args.dropout, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
              ("--recurrent-dropout", args.recurrent_dropout, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
              ("--zoneout", args.zoneout, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
              ("--embed-dropout", args.embed_dropout, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
              ("--lr", args.lr, lambda v: math.isfinite(v) and v > 0, "a positive number"),
              ("--clip", args.clip, lambda v: math.isfinite(v) and v >= 0, "a number >= 0 (0 = off)"),
              ("--weight-decay", args.weight_decay, lambda v: math.isfinite(v) and v >= 0, "a number >= 0"),
              ("--patience", args.patience, lambda v: v >= 0, "an integer >= 0 (0 = off)"),
              ("--max-seconds", args.max_seconds, lambda v: math.isfinite(v) and v > 0, "a positive number of seconds"),
              ("--seed", args.seed, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)")]
    for flag, value, ok, expected in checks:
        if value is not None and not ok(value):
            raise ValueError(f"{flag}: expected {expected}, got {value}")
    for flag, given in (("--data", args.data), ("--valid", args.valid), ("--test", args.test)):
        if given is not None and Path(given).exists() and not Path(given).is_file():
            raise ValueError(f"{flag}: {given} is not a regular file (a directory, device or pipe); give a data file")


def _check_model_size(options: dict, dtype_bytes: int = 4) -> None:
    """Refuse, before allocating, a recurrent stack that would not fit: an upper bound on its
    weights (4 gates, the widest input, both directions), times 4 for gradients and Adam's two
    moments, against ``MAX_MEMORY_SHARE`` of physical memory."""
    hidden, layers = int(options.get("hidden") or 1), int(options.get("layers") or 1)
    directions = 2 if options.get("bidirectional") else 1
    widest_input = max(int(options.get("embed") or 0), directions * hidden)
    weights = layers * directions * 4 * hidden * (widest_input + hidden + 2)
    needed = 4 * weights * dtype_bytes
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform: no check
        return
    if needed > MAX_MEMORY_SHARE * memory:
        raise ValueError(f"the model would need about {needed / 2**30:,.1f} GiB for weights, gradients and optimizer "
                         f"state (--hidden {hidden}, --layers {layers}); this machine has {memory / 2**30:,.1f} GiB. "
                         f"Use a smaller --hidden or --layers")


def _train_config(args: argparse.Namespace, task_class: type[Task]) -> Any:
    """The training settings: the command line's, else the task's defaults, else TrainConfig's."""
    from rnnkit.train.trainer import TrainConfig

    config = TrainConfig(seed=args.seed if args.seed is not None else 0, progress=args.progress)
    if args.save_every is not None:
        if not (math.isfinite(args.save_every) and args.save_every >= 0):
            raise ValueError(f"--save-every: expected a number of seconds >= 0, got {args.save_every}")
        config.save_every_seconds = args.save_every or None
    for key, value in (("epochs", args.epochs), ("max_seconds", args.max_seconds), ("lr", args.lr),
                       ("optimizer", args.optimizer), ("weight_decay", args.weight_decay), ("clip_norm", args.clip),
                       ("patience", args.patience)):
        if value is not None:
            setattr(config, key, value)
    # Task defaults for the training settings, unless given on the command line.
    for key, value in (("epochs", args.epochs), ("lr", args.lr), ("patience", args.patience)):
        if value is None and key in task_class.defaults:
            setattr(config, key, task_class.defaults[key])
    config.clip_norm = config.clip_norm or None
    config.patience = config.patience or None
    config.until_stopped = args.epochs is None and args.max_seconds is not None
    if config.epochs < 1:
        raise ValueError(f"--epochs: expected a positive integer, got {config.epochs}")
    return config


def _data_options(args: argparse.Namespace) -> tuple[tuple[str, Any], ...]:
    """The options that shape the data (tokens and vocabularies), as given."""
    return (("tokens", args.tokens), ("source_tokens", args.source_tokens), ("target_tokens", args.target_tokens),
            ("min_freq", args.min_freq), ("vocab_size", args.vocab_size))


def _model_options(args: argparse.Namespace, task_class: type[Task]) -> dict[str, Any]:
    """The model and data options: the command line's over the task's defaults, checked."""
    options = {key: value for key, value in task_class.defaults.items() if key not in ("epochs", "lr", "patience")}
    data_options = _data_options(args)
    for key, value in (("cell", args.cell), ("hidden", args.hidden), ("layers", args.layers),
                       ("bidirectional", args.bidirectional), ("nonlinearity", args.nonlinearity),
                       ("dropout", args.dropout), ("recurrent_dropout", args.recurrent_dropout),
                       ("zoneout", args.zoneout), ("layer_norm", args.layer_norm), ("embed_dropout", args.embed_dropout),
                       ("pooling", args.pooling), ("ensemble", args.ensemble),
                       ("batch_size", args.batch_size),
                       ("attention", args.attention),
                       ("stack", args.stack), ("bptt", args.bptt), ("bptt_stride", args.bptt_stride),
                       ("documents", args.documents), *data_options):
        if value is None:
            continue
        task_specific = ("attention", "stack", "bptt", "bptt_stride", "documents", "recurrent_dropout", "zoneout",
                         "layer_norm", "embed_dropout", "pooling", "ensemble")
        if (key in dict(data_options) or key in task_specific) and key not in task_class.defaults:
            raise ValueError(f"--{key.replace('_', '-')} does not apply to the {args.task} task")
        options[key] = value
    for key in ("min_freq", "vocab_size", "stack", "bptt", "bptt_stride", "ensemble"):
        if options.get(key) is not None and options[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')}: expected a positive integer, got {options[key]}")
    if options.get("cell", "rnn") != "rnn" and options.get("nonlinearity", "tanh") != "tanh":
        raise ValueError(f"--nonlinearity {options['nonlinearity']} applies only to --cell rnn; "
                         f"the {options['cell']} cell has its own gate nonlinearities")
    return options


def _resumed(args: argparse.Namespace, out: Path, config: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """``--resume``: the saved run's options, task metadata and settings, after checking that the
    command line changes nothing but how long to go on (``args.data`` is filled in)."""
    from rnnkit.io.checkpoint import load_checkpoint
    from rnnkit.train.runs import upgrade
    from rnnkit.train.schema import validate_run_meta
    from rnnkit.train.trainer import TrainConfig

    _, meta = load_checkpoint(out)
    upgrade(validate_run_meta(meta, out))
    if meta["task"] != args.task:
        raise ValueError(f"--resume: {out} holds a {meta['task']!r} run, not {args.task!r}")
    options, task_meta = meta["model_options"], meta["task_meta"]
    for key, value in (("cell", args.cell), ("nonlinearity", args.nonlinearity), ("attention", args.attention),
                       *_data_options(args)):
        if value is not None and value != options.get(key):
            raise ValueError(f"--resume: {out} was trained with --{key.replace('_', '-')} {options.get(key)}, "
                             f"not {value}")
    if args.data is None:
        args.data = meta["data"]
    elif str(Path(args.data).resolve()) != meta["data"]:
        raise ValueError(f"--resume: {out} was trained on {meta['data'] or 'the default data'}, not {args.data}")
    for flag, key, default in (("valid", "valid_data", "a share of the data"), ("test", "test_data", "a share of the data")):
        given, saved = getattr(args, flag), meta.get(key)
        if given is None:
            setattr(args, flag, saved)
        elif str(Path(given).resolve()) != saved:
            raise ValueError(f"--resume: {out} was trained with --{flag} {saved or '(none: ' + default + ')'}, "
                             f"not {given}")
    saved = meta["train_config"]
    # What shapes the run so far cannot change on resume; epochs, the time budget and the
    # progress bar can (they only say how long to go on).
    fixed = {"--hidden": ("hidden", args.hidden, options), "--layers": ("layers", args.layers, options),
             "--bidirectional": ("bidirectional", args.bidirectional, options),
             "--dropout": ("dropout", args.dropout, options), "--batch-size": ("batch_size", args.batch_size, options),
             "--recurrent-dropout": ("recurrent_dropout", args.recurrent_dropout, options),
             "--zoneout": ("zoneout", args.zoneout, options),
             "--layer-norm": ("layer_norm", args.layer_norm, options),
             "--embed-dropout": ("embed_dropout", args.embed_dropout, options),
             "--pooling": ("pooling", args.pooling, options),
             "--ensemble": ("ensemble", args.ensemble, options),
             "--stack": ("stack", args.stack, options), "--bptt": ("bptt", args.bptt, options),
             "--bptt-stride": ("bptt_stride", args.bptt_stride, options),
             "--documents": ("documents", args.documents, options),
             "--lr": ("lr", args.lr, saved), "--optimizer": ("optimizer", args.optimizer, saved),
             "--weight-decay": ("weight_decay", args.weight_decay, saved),
             "--clip": ("clip_norm", (args.clip or None) if args.clip is not None else None, saved),
             "--patience": ("patience", (args.patience or None) if args.patience is not None else None, saved),
             "--seed": ("seed", args.seed, saved)}
    changed = [f"{flag} {value} (was {where.get(key)})" for flag, (key, value, where) in fixed.items()
               if value is not None and value != where.get(key)]
    if changed:
        raise ValueError(f"--resume: {out} continues a run as it was set up; these options differ: "
                         f"{'; '.join(changed)} (only --epochs and --max-seconds may change; start a new run "
                         f"with another --out, or --overwrite)")
    config = TrainConfig(**{**saved, "epochs": config.epochs, "max_seconds": args.max_seconds,
                            "until_stopped": config.until_stopped, "save_every_seconds": config.save_every_seconds,
                            "progress": args.progress})
    return options, task_meta, config


def _check_fresh_out(args: argparse.Namespace, out: Path) -> None:
    """A fresh run may replace only the default ``runs/TASK`` or, with ``--overwrite``, another."""
    from rnnkit.io.checkpoint import load_checkpoint
    from rnnkit.train.runs import has_checkpoint

    if has_checkpoint(out) and args.out is not None and not args.overwrite:
        _, old = load_checkpoint(out)
        raise ValueError(f"--out: {out} already holds a run ({old.get('task', '?')}, epoch "
                         f"{old.get('position', {}).get('epoch', '?')}); continue it with --resume, or start over "
                         f"with --overwrite (which deletes it)")


def cmd_train(args: argparse.Namespace) -> int:
    from rnnkit.tasks import get_task
    from rnnkit.train.distributed import current_world
    from rnnkit.train.runs import has_checkpoint, writer_lock

    out = Path(args.out or f"runs/{args.task}")
    task_class = get_task(args.task)
    config = _train_config(args, task_class)
    _check_train_arguments(args)
    options = _model_options(args, task_class)
    # before the lock, which creates the directory
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is a file, not a directory")
    if args.resume and not has_checkpoint(out):
        raise ValueError(f"--resume: no checkpoint in {out}; train without --resume first")
    root = current_world().is_root  # the root alone writes the run directory
    with writer_lock(out) if root else contextlib.nullcontext():
        return _train(args, out, task_class, config, options, root)


def _train(args: argparse.Namespace, out: Path, task_class: type[Task], config: Any, options: dict[str, Any],
           root: bool) -> int:
    """``train`` once the run directory is this process's alone."""
    from rnnkit.io.checkpoint import atomic_write
    from rnnkit.train.runs import log_data_notes, replace_earlier_run
    from rnnkit.train.tensorboard import for_command
    from rnnkit.train.trainer import Trainer, patience_for

    board = for_command(args.tensorboard, out)  # first: --tensorboard without tensorboardX fails at once
    task_meta = None
    if args.resume:
        options, task_meta, config = _resumed(args, out, config)
    else:
        _check_fresh_out(args, out)

    start = time.perf_counter()
    data, valid, test = (str(Path(given).resolve()) if given is not None else None
                         for given in (args.data, args.valid, args.test))
    _check_model_size(options)
    task = task_class(data=data, seed=config.seed, meta=task_meta, options=options, valid_file=valid, test_file=test)
    if not args.resume and args.patience is None and "patience" not in task_class.defaults:
        config.patience = patience_for(task.num_train_examples())
    if not args.resume:  # a resumed run keeps what its first command decided
        options = task.sized_options(options, {key for key, value in vars(args).items() if value is not None})
    if args.epochs is None:  # the same decision on resume: the same data and defaults give it again
        config.epochs = task.sized_epochs(config.epochs)
    model = task.build_model(options)
    if not args.resume and root:  # only now: a command that fails on its data or options keeps the earlier run
        replace_earlier_run(out, args.task, task_class.split_file)
        log_data_notes(out, task)
        if (data is not None or test is not None) and task.split_file is not None:
            # eval scores the run's own copy of the test split: no need of the training file later
            atomic_write(out / task.split_file, lambda temporary: task.write_split("test", Path(temporary)))
    trainer = Trainer(task, model, options, config, out, callbacks=[board] if board else [])
    if args.resume:
        trainer.resume()
    _announce(args.task, task, model, out)
    reason = trainer.fit()
    if reason == "interrupted":
        assert trainer.interrupted_by is not None  # "interrupted" is the reason only with a signal's number
        name = signal.Signals(trainer.interrupted_by).name
        position = trainer.position
        print(f"rnnkit: stopped by {name} at epoch {position.epoch + 1}, step {position.step}; saved a resumable "
              f"checkpoint in {out} (continue with: rnnkit train {args.task} --out {out} --resume)", file=sys.stderr)
        return 128 + trainer.interrupted_by
    if not root:  # the root scores the model and reports
        return 0
    result = _report(args.task, task, trainer, reason, out, start)
    if board is not None:  # the test figures beside the options, in TensorBoard's HPARAMS tab
        board.add_result(result)
    return 0


def _announce(name: str, task: Any, model: Any, out: Path) -> None:
    """What training is about to do, on standard error: the data, its notes and warnings, the model."""
    print(f"[{name}] {task.describe()}", file=sys.stderr)
    for line in task.notes:
        print(line, file=sys.stderr)
    for warning in task.warnings:
        print(f"[{name}] warning: {warning}", file=sys.stderr)
    if openblas.decision:
        print(f"[{name}] BLAS: {openblas.decision}", file=sys.stderr)
    from rnnkit.models import Ensemble  # the models load NumPy: not before the command runs

    members = f" (an ensemble of {model.size} models, each trained on its own loss)" if isinstance(model, Ensemble) else ""
    print(f"[{name}] model: {model.num_parameters():,} parameters{members}; checkpoints in {out}", file=sys.stderr,
          flush=True)


def _report(name: str, trained_task: Any, trainer: Any, reason: str, out: Path,
            start: float) -> dict[str, Any]:
    """Score the run's best state on the test split and print what it learned, write the model card,
    then the result line."""
    from rnnkit.tasks import Task as BaseTask
    from rnnkit.train.card import RunFacts, write_card
    from rnnkit.train.runs import load_trained

    best = trainer.best_record()
    primary = trained_task.primary_metric
    if best is not None:
        print(f"[{name}] scoring the best checkpoint: epoch {best['epoch']:.2f}, valid {primary} "
              f"{best['valid_' + primary]:.4f} (stopped by {reason.replace('_', ' ')})", file=sys.stderr)
    task, model, meta = load_trained(str(out))
    metrics = task.evaluate(model, "test")
    baseline = task.baseline("test")
    shown = task.show(model)
    if shown:
        print(shown)
    for picture in trained_task.pictures(model, out):  # it has the validation split; the scoring task may not
        print(f"[{name}] wrote {picture}", file=sys.stderr)
    print(f"[{name}] test " + ", ".join(
        f"{k} {metrics[k]:.4f} (baseline {baseline[k]:.4f})" if k in baseline else f"{k} {metrics[k]:.4f}"
        for k in task.metric_keys))
    verdict = judge(metrics, baseline, task.metric_keys)
    print(f"[{name}] {verdict.sentence}" + ("" if verdict.better or not trained_task.warnings
                                            else " (see the warnings above for likely causes)"))
    result = {"task": name, **{k: metrics[k] for k in task.metric_keys},
              **{f"baseline_{k}": v for k, v in baseline.items()}, **_bag_of_words(name, trained_task, metrics),
              "test_loss": metrics["loss"], "epochs": round(trainer.epochs_done(), 3),
              "better_than_baseline": verdict.better, **({"tokens": task.token_kinds()} if task.token_kinds() else {}),
              "steps": trainer.position.step, "seconds": round(time.perf_counter() - start, 1), "stopped_by": reason,
              "checkpoint": str(out)}
    # before the result line: a card that cannot be written fails the command as any write does (exit 3)
    write_card(out, RunFacts(
        result=result, metric_keys=task.metric_keys, data=trained_task.data_path,
        data_description=trained_task.describe(), model_class=type(model).__name__,
        parameters=model.num_parameters(), dtype=meta["dtype"], options=meta["model_options"],
        train_config=meta["train_config"], train_seconds=trainer.position.seconds,
        predicts=task.predict_inputs, samples=type(task).sample is not BaseTask.sample,
        processes=trainer.world.size, verdict=verdict.sentence))
    print(result_line(result))
    return result


def _bag_of_words(name: str, task: Any, metrics: dict[str, float]) -> dict[str, float]:
    """``baseline_tfidf_*``: the bag-of-words figures of a task that has them (classify), said
    beside the model's, so that a user sees whether the RNN earns its cost."""
    if not hasattr(task, "bag_of_words"):
        return {}
    figures = task.bag_of_words("test")
    if figures is None:
        print(f"[{name}] no bag-of-words baseline (it needs scikit-learn, in the data extra, and the training "
              f"split)", file=sys.stderr)
        return {}
    key = task.primary_metric
    beaten = "beats" if metrics[key] > figures[key] else "does NOT beat"
    print(f"[{name}] the model {beaten} bag-of-words (TF-IDF of words and pairs + logistic regression): "
          + ", ".join(f"{k} {metrics[k]:.4f} vs {v:.4f}" for k, v in figures.items()))
    return {f"baseline_tfidf_{k}": v for k, v in figures.items()}


@dataclass
class Verdict:
    better: bool  # clearly better than the baseline on at least one metric
    sentence: str


#: a model "clearly" beats its baseline when it closes at least this share of the gap between
#: the baseline and a perfect score (accuracy 1, CER 0, ...), on at least one metric
CLEAR_MARGIN = 0.05


#: a mean loss no trained model reaches (cross-entropy: probability e^-1e6 for the right class;
#: squared error: a million variances): a run that scores it diverged
DIVERGED_LOSS = 1e6


def judge(metrics: dict[str, float], baseline: dict[str, float], keys: Sequence[str]) -> Verdict:
    """Whether the model beat the trivial predictor, in words."""
    from rnnkit.tasks.metrics import LOWER_IS_BETTER

    loss = metrics.get("loss", 0.0)
    if not (math.isfinite(loss) and loss <= DIVERGED_LOSS):
        return Verdict(False, f"the test loss is {loss:.3g}: training diverged, and no figure of this model can be "
                              f"trusted (try a lower --lr, or --clip)")
    compared = [k for k in keys if k in baseline]
    if not compared:
        return Verdict(True, "no baseline to compare with")
    gains = {}
    for key in compared:
        model, base = metrics[key], baseline[key]
        if key in LOWER_IS_BETTER:  # perfect is 0
            gains[key] = (base - model) / base if base > 0 else -math.inf
        else:  # perfect is 1
            gains[key] = (model - base) / (1 - base) if base < 1 else -math.inf
    better = [k for k in compared if gains[k] >= CLEAR_MARGIN]
    if better:
        return Verdict(True, "better than the baseline on " + ", ".join(
            f"{k} ({metrics[k]:.4f} vs {baseline[k]:.4f})" for k in better))
    return Verdict(False, "NOT better than the baseline on the test split: " + ", ".join(
        f"{k} {metrics[k]:.4f} vs {baseline[k]:.4f}" for k in compared) + "; the model learned little that the "
        "trivial predictor does not know")


def cmd_eval(args: argparse.Namespace) -> int:
    from rnnkit.train.runs import load_trained

    task, model, meta = load_trained(args.dir, args.data)
    metrics, baseline = task.evaluate(model, "test"), task.baseline("test")
    verdict = judge(metrics, baseline, task.metric_keys)
    if not verdict.better:
        print(f"[{meta['task']}] {verdict.sentence}", file=sys.stderr)
    result = {"task": meta["task"], **{k: metrics[k] for k in task.metric_keys}, "loss": metrics["loss"],
              **{f"baseline_{k}": v for k, v in baseline.items()}, "better_than_baseline": verdict.better,
              "data": args.data or "the test split of the training data"}
    print(result_line(result))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from rnnkit.train.runs import load_trained

    if not 1 <= args.length <= MAX_SAMPLE_LENGTH:
        raise ValueError(f"--length: expected an integer from 1 to {MAX_SAMPLE_LENGTH:,}, got {args.length}")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ValueError(f"--temperature: expected a positive number, got {args.temperature}")
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed: expected an integer in [0, 2**32), got {args.seed}")
    task, model, _ = load_trained(args.dir, need_data=False)
    print(task.sample(model, args.prime, args.length, args.temperature, args.seed))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from rnnkit.train.runs import load_trained

    task, model, _ = load_trained(args.dir, need_data=False)
    task.check_predict_inputs(args.inputs)
    for source, prediction in zip(args.inputs, task.predict(model, args.inputs)):
        print(f"{source}\t{prediction}")
    if args.plot:
        if hasattr(task, "plot"):  # speech: the spectrogram and the label posteriors of each file
            path = task.plot(model, list(args.inputs), Path(args.plot))
        elif hasattr(task, "attention_maps"):
            from rnnkit.viz import plot_attention

            path = plot_attention(task.attention_maps(model, args.inputs), args.plot, titles=list(args.inputs))
        else:
            raise ValueError(f"--plot: the {task.name} task has nothing to draw (translate draws attention, speech "
                             "its alignment)")
        print(f"[{task.name}] wrote {path}", file=sys.stderr)
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample, "predict": cmd_predict, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rnnkit.train.distributed import current_world

    # Under mpiexec -n N, train runs on every process and the root alone speaks; the other
    # commands run on the root only. A process that fails ends the whole job, so that none
    # waits forever for it in a collective.
    world = current_world()
    if not world.is_root and args.command != "train":
        return 0
    with _silenced(not world.is_root):
        code = _run_command(args, world)
    if code in (EXIT_ERROR, EXIT_WRITE) and world.size > 1:
        world.abort(code)
    return code


@contextlib.contextmanager
def _silenced(silent: bool):
    """Standard output and error to nowhere (the processes other than the root); errors are
    still printed, on the real standard error, by ``_error``."""
    if not silent:
        yield
        return
    with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere), contextlib.redirect_stderr(nowhere):
        yield


def _error(message: str, world) -> None:
    where = f" (process {world.rank} of {world.size})" if world.size > 1 else ""
    print(f"rnnkit: error{where}: {message}", file=sys.stderr if world.is_root else sys.__stderr__, flush=True)


def _run_command(args: argparse.Namespace, world) -> int:
    from rnnkit.io.checkpoint import CheckpointError, WriteError
    from rnnkit.tasks.base import TaskError
    from rnnkit.train.runs import RunLocked
    from rnnkit.train.trainer import DivergenceError

    try:
        with _signals_stop():
            return COMMANDS[args.command](args)
    except WriteError as error:
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        _error(f"{(error.strerror or 'write failed').lower()} writing {error.filename}; {_what_is_intact(args, error)}",
               world)
        return EXIT_WRITE
    except (TaskError, CheckpointError, DivergenceError, RunLocked, ValueError, TypeError, ImportError,
            OSError) as error:  # OSError: a missing file, a full disk, a directory that is a file, ...
        if os.environ.get("RNNKIT_DEBUG"):  # the full traceback, for bug reports
            raise
        _error(str(error).splitlines()[0] if str(error) else type(error).__name__, world)
        return EXIT_ERROR
    except MemoryError:
        _error("out of memory (try a smaller --hidden, --layers or --batch-size, or less data)", world)
        return EXIT_ERROR
    except KeyboardInterrupt as stop:  # outside the training loop, which stops with a checkpoint
        signum = getattr(stop, "signum", signal.SIGINT)
        print(f"rnnkit: stopped by {signal.Signals(signum).name}{_what_was_saved(args)}", file=sys.stderr)
        return 128 + signum


@contextlib.contextmanager
def _signals_stop():
    """SIGTERM, like SIGINT, raises ``Interrupted`` (a KeyboardInterrupt) wherever the command
    is, so that it exits with a message rather than silently; the training loop replaces both
    while it runs, to stop at a batch boundary with a checkpoint. Restored on the way out."""
    from rnnkit.train.trainer import Interrupted

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):  # noqa: ARG001
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _what_was_saved(args: argparse.Namespace) -> str:
    """For a stopped ``train``: whether a checkpoint stands to resume from."""
    if args.command != "train":
        return ""
    from rnnkit.train.runs import has_checkpoint

    out = Path(args.out or f"runs/{args.task}")
    if has_checkpoint(out):
        return (f"; the last checkpoint in {out} stands (continue with: rnnkit train {args.task} --out {out} "
                f"--resume)")
    return "; nothing was saved"


def _what_is_intact(args: argparse.Namespace, error: OSError) -> str:
    """After a failed write: what stands, and what to do."""
    remedy = {errno.ENOSPC: "free space", errno.EDQUOT: "free space under your quota", errno.EROFS: "make it writable",
              errno.EACCES: "make it writable", errno.EPERM: "make it writable"}.get(error.errno or 0, "check the path")
    if args.command != "train":
        return f"nothing half-written was left ({remedy} and run the command again)"
    from rnnkit.io.checkpoint import CheckpointError, read_meta

    out = Path(args.out or f"runs/{args.task}")
    try:
        position = read_meta(out)["position"]
        when = f"after epoch {position['epoch']}" if position["batch"] == 0 else f"in epoch {position['epoch'] + 1}"
        return (f"the checkpoint of step {position['step']} ({when}) in {out} is intact ({remedy} and resume "
                f"with: rnnkit train {args.task} --out {out} --resume)")
    except (CheckpointError, KeyError, TypeError):
        return f"no checkpoint was saved in {out} ({remedy} and train again)"


if __name__ == "__main__":
    raise SystemExit(main())
