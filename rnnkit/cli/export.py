"""``rnnkit export DIR [--out FILE]``: a trained run's model as ONNX, checked in onnxruntime.

The check scores the written graphs with the task's own ``evaluate`` on the test split, behind
:class:`rnnkit.interop.onnx.deployed.DeployedModel`, and compares every metric with rnnkit's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

from rnnkit.tasks.metrics import SHARES

#: the largest relative difference of a loss or error (loss, bpc, mse) between the graphs and
#: rnnkit that passes: float32 sums in another order, over thousands of steps, stay far below it
RELATIVE_TOLERANCE = 1e-4
#: metrics that are shares of the examples (accuracy, exact match, character error rate): a few
#: near-ties may flip, so they pass within this absolute difference
SHARE_TOLERANCE = 0.005


def add_export_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="write a trained model as ONNX and check it in onnxruntime",
                                 description=(
        "Write the model in DIR as ONNX (ids and lengths in, scores out; an encoder-decoder as an encoder graph "
        "and a decoder-step graph), then score the graphs in onnxruntime on the test split and compare with "
        "rnnkit. Needs the onnx extra: pip install \"rnnkit[onnx]\"."))
    export.add_argument("dir", metavar="DIR")
    export.add_argument("--out", metavar="FILE", help=(
        "the .onnx file to write (default DIR/model.onnx); an encoder-decoder writes FILE's name with "
        ".encoder and .decoder_step before the suffix"))
    export.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                        help="score the graphs in onnxruntime on the test split against rnnkit (default: on)")


def export_paths(out: Path, roles: list[str]) -> dict[str, Path]:
    """Where each graph goes: ``out`` itself for a single graph, else ``name.ROLE.onnx``."""
    if roles == ["model"]:
        return {"model": out}
    suffix = out.suffix or ".onnx"
    return {role: out.with_name(f"{out.stem if out.suffix else out.name}.{role}{suffix}") for role in roles}


def cmd_export(args: argparse.Namespace) -> int:
    from rnnkit.cli.output import result_line
    from rnnkit.interop.onnx.graph import save
    from rnnkit.interop.onnx.models import export_model
    from rnnkit.train.runs import load_trained

    task, model, meta = load_trained(args.dir, need_data=args.check)
    graphs = export_model(model)
    out = Path(args.out) if args.out else Path(args.dir) / "model.onnx"
    if out.is_dir():
        raise IsADirectoryError(f"--out: {out} is a directory; give a file name such as {out / 'model.onnx'}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out: the directory {out.parent} does not exist")
    paths = export_paths(out, list(graphs))
    for role, graph in graphs.items():
        save(graph, paths[role])
        print(f"[{meta['task']}] wrote {paths[role]} ({paths[role].stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    result = {"task": meta["task"], "files": [str(p) for p in paths.values()], "checked": False}
    if args.check:
        result.update(check_export(task, model, graphs))
    print(result_line(result))
    if args.check and not result["agree"]:
        raise ValueError(f"the exported graphs score differently from the model on the test split: "
                         f"{json.dumps(result['differences'])}")
    return 0


def check_export(task, model, graphs: dict) -> dict:
    """The task's test metrics from rnnkit and from the graphs (onnxruntime for float32, whose
    recurrent ops onnxruntime runs; rnnkit's own executor for float64), their differences and
    whether they agree."""
    from rnnkit.interop.onnx.deployed import DeployedModel

    backend = "onnxruntime" if model_dtype(model) == np.float32 else "rnnkit"
    if backend == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        raise ImportError('checking the export needs onnxruntime: pip install "rnnkit[onnx]" (or pass --no-check)')
    expected = task.evaluate(model, "test")
    got = task.evaluate(DeployedModel(graphs, backend), "test")
    keys = [*task.metric_keys, "loss"]
    differences = {key: abs(float(got[key]) - float(expected[key])) for key in keys}
    agree = all(math.isfinite(value) for value in differences.values()) and all(
        differences[key] <= (SHARE_TOLERANCE if key in SHARES else RELATIVE_TOLERANCE * max(1.0, abs(float(expected[key]))))
        for key in keys)
    print(f"[{task.name}] test split, rnnkit: " + ", ".join(f"{k} {expected[k]:.6g}" for k in keys)
          + f"; {backend}: " + ", ".join(f"{k} {got[k]:.6g}" for k in keys), file=sys.stderr)
    return {"checked": True, "backend": backend, "rnnkit": {k: expected[k] for k in keys},
            "graphs": {k: got[k] for k in keys}, "differences": differences, "agree": agree}


def model_dtype(model) -> np.dtype:
    return next(iter(model.state_dict().values())).dtype
