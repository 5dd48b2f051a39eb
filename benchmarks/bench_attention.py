"""Time one training step of rnnkit's encoder-decoder with attention against the same model in
PyTorch, on the CPU, in one process, float32.

What is compared. A training step is forward + loss + backward producing every weight gradient,
no optimizer. rnnkit's is::

    logits = model.forward(source, source_lengths, inputs, lengths)
    loss, dlogits = model.loss(logits, targets, lengths)   # cross-entropy summed over valid steps
    model.zero_grad()
    model.backward(dlogits)

for ``rnnkit.models.Seq2Seq(V, V, H, embed_dim=E, cell=cell, bidirectional=..., attention=kind,
dtype=np.float32, seed=0)``. torch's (``TorchSeq2Seq`` below) is ``zero_grad(set_to_none=False)``,
the same forward, the same loss and ``loss.backward()``, computing the same function with the same
shapes:

- ``nn.Embedding(V, E, padding_idx=0)`` -> encoder ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN``
  (time-major, bidirectional except for ``dot``);
- bidirectional: per layer and per state (``h``, and ``c`` for an LSTM) ``tanh(nn.Linear(2H, H)
  ([s_fwd; s_rev]))`` starts the decoder; unidirectional: the final states pass straight through;
- decoder: ``nn.Embedding(V, E, padding_idx=0)`` -> the same cell (unidirectional) -> attention
  over the encoder's outputs -> ``nn.Linear(H, V)``;
- attention (Luong-style, on all decoder outputs at once): scores ``dot`` ``q.m``, ``general``
  ``q.(W m)`` (``W (H, M)``, no bias), ``additive`` ``v.tanh(W_q q + W_m m)`` (``A = H``, no
  biases); ``masked_fill(-inf)`` at source padding, softmax over the source, context ``sum w m``,
  then ``tanh(nn.Linear(M + H, H)([context; query]))`` before the head;
- loss: cross-entropy summed over the valid target steps (mask from the same lengths).

Before timing, the torch model's weights are copied from the rnnkit model (recurrent layers with
``rnnkit.interop.torch.to_torch``, the rest by name) and one step of each is run on the batch: the
losses must agree to ``--tolerance`` (relative, 1e-4 by default) and every parameter's gradient to
``--grad-tolerance`` (``|g_rnnkit - g_torch| / |g_torch|``, 1e-3 by default), or the script stops;
both figures are printed beside each row. So the timings are of the same computation. The
gradients are the sharper test: at initialisation the loss is close to ``N log V`` whatever the
model does (torch ignoring the source lengths moved it by only 1e-4 to 2e-3 relative in a tiny
trial, but its gradients by 0.46 to 0.65, against 4e-7 to 3e-5 when right).

Lengths and padding. Source and target lengths are drawn per sequence between half and full
length (seeded; one sequence of each is full length, so the padded shapes are the real ones).
rnnkit takes the lengths itself and runs every sequence for the padded number of steps, masked.
torch runs the encoder on a ``pack_padded_sequence(..., enforce_sorted=False)`` (so that its final
states are those of each sequence's last valid step and the reverse direction starts there: torch's
standard way, without which its loss differs) and ``pad_packed_sequence``s the outputs back to
``(S, B, M)`` for the attention; the packed encoder computes only the valid steps, the sort, pack
and unpack are part of its timed step. The decoder runs unpacked in both libraries: all T steps,
padding masked out of the loss (its final state is not used).

Attention cost. For each library, (step time with attention) - (step time of the same model
without attention, same encoder). ``dot`` needs the encoder's outputs (``2H`` when bidirectional)
the size of the decoder's (``H``), so ``dot`` runs a unidirectional encoder in both libraries (the
``encoder`` column), and a ``none`` row with a unidirectional encoder is timed as its baseline;
``general`` and ``additive`` are measured against the bidirectional ``none`` row. A cost is the
difference of two medians, so at these sizes it is noisier than the step times (a negative cost is
noise); its ratio (rnnkit's cost / torch's) is shown only where both costs are positive, else
``n/a``.

Timing (as ``benchmarks/bench_rnn.py``): rnnkit and torch take turns; in each repetition every
model of a (cell, H) configuration gets one turn, rnnkit's models then torch's, so that the
costs (differences) are taken within one rotation; a turn makes one untimed call, then times
three in a row (``bench_rnn.turn_time``); the median over ``--repeats`` repetitions is reported.
``torch.set_num_threads`` and the BLAS threads are ``RNNKIT_BENCH_THREADS`` (default 2).

Not like for like, by design (each library's natural way): torch's packed encoder skips padding
steps that rnnkit computes masked; without attention nothing reads the encoder's outputs, and
rnnkit passes an explicit zero array as their gradient where torch's autograd has none (both still
backpropagate through every step for the final states); torch's ``nn.RNN``/``nn.LSTM`` keep
two biases (``b_ih``, ``b_hh``; the copy puts rnnkit's one bias in ``b_ih`` and zeros in ``b_hh``,
same function, one extra bias gradient).

    python benchmarks/bench_attention.py                       # GRU, H = 128 and 256, 11 repetitions
    python benchmarks/bench_attention.py --cells rnn,lstm,gru --repeats 21
    python benchmarks/bench_attention.py --hidden 16 --repeats 1   # a smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
# bench_rnn sets the BLAS thread variables and OPENBLAS_CORETYPE before NumPy loads, and puts the
# repository on sys.path: import it first.
from bench_rnn import THREADS, TURN_CALLS, cpu_description, turn_time  # noqa: E402

import numpy as np  # noqa: E402

from rnnkit import _native  # noqa: E402
from rnnkit import openblas  # noqa: E402
from rnnkit.models import Seq2Seq  # noqa: E402

CELLS = ("rnn", "lstm", "gru")
ATTENTIONS = ("none", "dot", "general", "additive")


# -- the torch model ------------------------------------------------------------------------------
def torch_classes():
    """``TorchAttention`` and ``TorchSeq2Seq``, defined once torch is imported (``--help`` needs
    no torch)."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class TorchAttention(nn.Module):
        """``forward(query (T, B, H), memory (S, B, M), mask (S, B)) -> attended (T, B, H)``, the
        computation of ``rnnkit.nn.Attention``."""

        def __init__(self, kind: str, query_size: int, memory_size: int) -> None:
            super().__init__()
            self.kind = kind
            if kind == "general":
                self.W = nn.Linear(memory_size, query_size, bias=False)  # weight (H, M)
            elif kind == "additive":
                size = query_size
                self.W_q = nn.Linear(query_size, size, bias=False)
                self.W_m = nn.Linear(memory_size, size, bias=False)
                self.v = nn.Parameter(torch.empty(size).uniform_(-size**-0.5, size**-0.5))
            self.combine = nn.Linear(memory_size + query_size, query_size)

        def forward(self, query, memory, mask):
            q = query.transpose(0, 1)  # (B, T, H)
            m = memory.transpose(0, 1)  # (B, S, M)
            if self.kind == "dot":
                scores = torch.bmm(q, m.transpose(1, 2))
            elif self.kind == "general":
                scores = torch.bmm(q, self.W(m).transpose(1, 2))
            else:
                projected_query = self.W_q(q)  # (B, T, A)
                projected_memory = self.W_m(m)  # (B, S, A)
                z = torch.tanh(projected_query[:, :, None, :] + projected_memory[:, None, :, :])  # (B, T, S, A)
                scores = z @ self.v
            scores = scores.masked_fill(~mask.T[:, None, :], float("-inf"))  # (B, T, S)
            weights = torch.softmax(scores, dim=-1)
            context = torch.bmm(weights, m).transpose(0, 1)  # (T, B, M)
            return torch.tanh(self.combine(torch.cat([context, query], dim=-1)))

    class TorchSeq2Seq(nn.Module):
        """rnnkit's ``Seq2Seq`` in torch: ``forward(source (S, B), source_lengths (B,) int64,
        inputs (T, B)) -> logits (T, B, V)``; the encoder reads a packed sequence."""

        def __init__(self, cell: str, source_vocab: int, target_vocab: int, hidden: int, embed: int,
                     layers: int, bidirectional: bool, attention: str) -> None:
            super().__init__()
            recurrent = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
            self.cell, self.layers, self.bidirectional = cell, layers, bidirectional
            self.source_embedding = nn.Embedding(source_vocab, embed, padding_idx=0)
            self.encoder = recurrent(embed, hidden, layers, bidirectional=bidirectional)
            self.bridges = nn.ModuleList(
                [nn.Linear(2 * hidden, hidden) for _ in range(2 if cell == "lstm" else 1)] if bidirectional else [])
            self.embedding = nn.Embedding(target_vocab, embed, padding_idx=0)
            self.decoder = recurrent(embed, hidden, layers)
            memory_size = hidden * (2 if bidirectional else 1)
            self.attention = None if attention == "none" else TorchAttention(attention, hidden, memory_size)
            self.head = nn.Linear(hidden, target_vocab)

        def forward(self, source, source_lengths, inputs):
            steps = source.shape[0]
            packed = pack_padded_sequence(self.source_embedding(source), source_lengths, enforce_sorted=False)
            memory, final = self.encoder(packed)
            states = final if self.cell == "lstm" else (final,)
            if self.bidirectional:  # (L * 2, B, H), fwd before rev per layer -> (L, B, 2H) -> (L, B, H)
                states = tuple(
                    torch.tanh(bridge(s.view(self.layers, 2, *s.shape[1:]).permute(0, 2, 1, 3).flatten(2)))
                    for bridge, s in zip(self.bridges, states))
            query, _ = self.decoder(self.embedding(inputs), states if self.cell == "lstm" else states[0])
            if self.attention is not None:
                memory, _ = pad_packed_sequence(memory, total_length=steps)  # (S, B, M), zeros at padding
                mask = torch.arange(steps)[:, None] < source_lengths[None, :]
                query = self.attention(query, memory, mask)
            return self.head(query)

    return TorchAttention, TorchSeq2Seq


def torch_loss(logits, targets, lengths):
    """Cross-entropy summed over the valid steps ``t < lengths[b]`` of ``logits (T, B, V)``."""
    import torch

    steps, _, classes = logits.shape
    mask = torch.arange(steps)[:, None] < lengths[None, :]
    per_step = torch.nn.functional.cross_entropy(logits.reshape(-1, classes), targets.reshape(-1), reduction="none")
    return (per_step * mask.reshape(-1)).sum()


# -- weights: rnnkit -> torch, and the name map for comparing gradients ------------------------------
def recurrent_pairs(prefix: str, rk_layer, torch_layer) -> list[tuple[str, object]]:
    """``(rnnkit name, torch parameter)`` of a recurrent layer, by ``rnnkit.interop.torch``'s rules
    (rnnkit's one bias ``b_h`` of the Elman cell and the LSTM is torch's ``bias_ih``)."""
    pairs = []
    for layer in range(rk_layer.num_layers):
        for suffix in rk_layer.parameter_suffixes(layer):
            names = {"W_xh": "weight_ih", "W_hh": "weight_hh", "b_xh": "bias_ih", "b_hh": "bias_hh",
                     "b_h": "bias_ih"}
            for rk_name, torch_name in names.items():
                if f"{rk_name}{suffix}" in rk_layer.params:
                    pairs.append((f"{prefix}.{rk_name}{suffix}", getattr(torch_layer, f"{torch_name}{suffix}")))
    return pairs


def copy_weights(model: Seq2Seq, torch_model) -> list[tuple[str, object]]:
    """Load ``model``'s weights into ``torch_model``; returns the ``(rnnkit name, torch parameter)``
    pairs (every rnnkit parameter once)."""
    import torch

    from rnnkit.interop.torch import to_torch

    torch_model.encoder.load_state_dict(to_torch(model.encoder).state_dict())
    torch_model.decoder.load_state_dict(to_torch(model.decoder.rnn).state_dict())
    pairs = [("source_embedding.W", torch_model.source_embedding.weight),
             ("decoder.embedding.W", torch_model.embedding.weight),
             ("decoder.head.W", torch_model.head.weight), ("decoder.head.b", torch_model.head.bias)]
    pairs += recurrent_pairs("encoder", model.encoder, torch_model.encoder)
    pairs += recurrent_pairs("decoder.rnn", model.decoder.rnn, torch_model.decoder)
    for name, bridge in zip(model.bridge_names, torch_model.bridges):
        pairs += [(f"{name}.W", bridge.weight), (f"{name}.b", bridge.bias)]
    attention = torch_model.attention
    if attention is not None:
        prefix = "decoder.attention"
        pairs += [(f"{prefix}.combine.W", attention.combine.weight), (f"{prefix}.combine.b", attention.combine.bias)]
        if attention.kind == "general":
            pairs.append((f"{prefix}.W", attention.W.weight))
        elif attention.kind == "additive":
            pairs += [(f"{prefix}.W_q", attention.W_q.weight), (f"{prefix}.W_m", attention.W_m.weight),
                      (f"{prefix}.v", attention.v)]
    params = model.state_dict()
    missing = set(params) - {name for name, _ in pairs}
    if missing or len(pairs) != len(params):
        raise RuntimeError(f"weight map incomplete: rnnkit parameters without a torch counterpart {sorted(missing)}")
    with torch.no_grad():
        for name, parameter in pairs:
            if parameter.shape != params[name].shape:
                raise RuntimeError(f"{name}: rnnkit {params[name].shape} against torch {tuple(parameter.shape)}")
            parameter.copy_(torch.from_numpy(params[name]))
    return pairs


# -- one (cell, hidden) configuration -------------------------------------------------------------------
def make_batch(batch: int, source_len: int, target_len: int, source_vocab: int, target_vocab: int, seed: int):
    """Token ids ``1..V-1`` at valid steps and 0 (padding) after; lengths between half and full,
    one sequence of each full length."""
    rng = np.random.default_rng(seed)

    def lengths(steps: int) -> np.ndarray:
        drawn = rng.integers((steps + 1) // 2, steps + 1, size=batch)
        drawn[rng.integers(batch)] = steps
        return drawn

    def ids(steps: int, vocab: int, valid: np.ndarray) -> np.ndarray:
        tokens = rng.integers(1, vocab, size=(steps, batch))
        return np.where(np.arange(steps)[:, None] < valid[None, :], tokens, 0)

    source_lengths, target_lengths = lengths(source_len), lengths(target_len)
    return (ids(source_len, source_vocab, source_lengths), source_lengths,
            ids(target_len, target_vocab, target_lengths), ids(target_len, target_vocab, target_lengths),
            target_lengths)


def variants(attentions: list[str]) -> list[tuple[str, bool]]:
    """``(attention, bidirectional)`` to time: ``dot`` unidirectional, with a unidirectional
    ``none`` as its baseline; the rest bidirectional against a bidirectional ``none``."""
    out = []
    if any(a != "dot" for a in attentions):
        out.append(("none", True))
    if "dot" in attentions:
        out.append(("none", False))
    out += [(a, a != "dot") for a in attentions if a != "none"]
    return out


def bench_config(cell: str, hidden: int, args, attentions: list[str]) -> list[dict]:
    import torch

    _, TorchSeq2Seq = torch_classes()
    source, source_lengths, inputs, targets, lengths = make_batch(
        args.batch, args.source_len, args.target_len, args.source_vocab, args.target_vocab, args.seed)
    t_source, t_inputs, t_targets = (torch.from_numpy(a.astype(np.int64)) for a in (source, inputs, targets))
    t_source_lengths, t_lengths = torch.from_numpy(source_lengths.astype(np.int64)), torch.from_numpy(
        lengths.astype(np.int64))

    rows = []
    for attention, bidirectional in variants(attentions):
        model = Seq2Seq(args.source_vocab, args.target_vocab, hidden, embed_dim=args.embed, cell=cell,
                        num_layers=args.layers, bidirectional=bidirectional, attention=attention,
                        dtype=np.float32, seed=0)
        model.train()
        torch_model = TorchSeq2Seq(cell, args.source_vocab, args.target_vocab, hidden, args.embed, args.layers,
                                   bidirectional, attention).train()
        pairs = copy_weights(model, torch_model)

        def rnnkit_step(model=model):
            logits = model.forward(source, source_lengths, inputs, lengths)
            loss, dlogits = model.loss(logits, targets, lengths)
            model.zero_grad()
            model.backward(dlogits)
            return loss

        def torch_step(torch_model=torch_model):
            torch_model.zero_grad(set_to_none=False)
            loss = torch_loss(torch_model(t_source, t_source_lengths, t_inputs), t_targets, t_lengths)
            loss.backward()
            return loss

        # The check: one step of each from the same weights.
        rk_loss, pt_loss = float(rnnkit_step()), torch_step().item()
        loss_diff = abs(rk_loss - pt_loss) / abs(pt_loss)
        label = f"{cell} H={hidden} {attention} ({'bi' if bidirectional else 'uni'})"
        if not loss_diff <= args.tolerance:
            raise SystemExit(f"{label}: losses differ, rnnkit {rk_loss!r} against torch {pt_loss!r} "
                             f"(relative {loss_diff:.2e} > --tolerance {args.tolerance:g}): not the same computation")
        grads = {name: grad for name, _, grad in model.named_parameters()}
        grad_diff, worst = 0.0, ""
        for name, parameter in pairs:
            reference = parameter.grad.numpy()
            scale = max(float(np.linalg.norm(reference)), 1e-12)
            diff = float(np.linalg.norm(grads[name] - reference)) / scale
            if not diff <= grad_diff:
                grad_diff, worst = diff, name
        if not grad_diff <= args.grad_tolerance:
            raise SystemExit(f"{label}: gradients differ, {worst} by {grad_diff:.2e} relative > --grad-tolerance "
                             f"{args.grad_tolerance:g}: not the same computation")
        rows.append({"cell": cell, "hidden": hidden, "attention": attention, "bidirectional": bidirectional,
                     "rnnkit_loss": rk_loss, "torch_loss": pt_loss, "loss_diff": loss_diff, "grad_diff": grad_diff,
                     "steps": (rnnkit_step, torch_step), "times": ([], [])})

    for row in rows:  # warm-up: allocations, thread pools
        for step in row["steps"]:
            step()
    for _ in range(args.repeats):
        for library in (0, 1):  # every rnnkit model, then every torch model
            for row in rows:
                row["times"][library].append(turn_time(row["steps"][library]))
    for row in rows:
        row["rnnkit"], row["torch"] = (statistics.median(t) for t in row.pop("times"))
        del row["steps"]
    baselines = {row["bidirectional"]: row for row in rows if row["attention"] == "none"}
    for row in rows:
        base = baselines[row["bidirectional"]]
        row["rnnkit_cost"] = None if row is base else row["rnnkit"] - base["rnnkit"]
        row["torch_cost"] = None if row is base else row["torch"] - base["torch"]
    return [row for row in rows if row["attention"] in attentions or row["bidirectional"] is False]


# -- output ----------------------------------------------------------------------------------------
HEADER = ("| cell | H | attention | encoder | rnnkit ms/step | torch ms/step | ratio "
          "| rnnkit attn ms | torch attn ms | attn ratio | loss rel. diff | max grad rel. diff |")
RULE = "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"


def format_row(row: dict) -> str:
    def ms(seconds):
        return "-" if seconds is None else f"{seconds * 1e3:+.2f}"

    cost_rk, cost_pt = row["rnnkit_cost"], row["torch_cost"]
    if cost_rk is None:
        cost_ratio = "-"
    elif cost_pt > 0 and cost_rk > 0:
        cost_ratio = f"{cost_rk / cost_pt:.2f}"
    else:
        cost_ratio = "n/a"
    encoder = "bi" if row["bidirectional"] else "uni"
    return (f"| {row['cell']} | {row['hidden']} | {row['attention']} | {encoder} | {row['rnnkit'] * 1e3:.2f} "
            f"| {row['torch'] * 1e3:.2f} | {row['rnnkit'] / row['torch']:.2f} | {ms(cost_rk)} | {ms(cost_pt)} "
            f"| {cost_ratio} | {row['loss_diff']:.1e} | {row['grad_diff']:.1e} |")


def parse_list(parser, option: str, text: str, convert, allowed=None) -> list:
    try:
        values = [convert(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        parser.error(f"{option}: expected a comma-separated list, got {text!r}")
    if not values or (allowed is not None and set(values) - set(allowed)):
        parser.error(f"{option}: expected names among {', '.join(allowed)}, got {text!r}" if allowed else
                     f"{option}: expected at least one value, got {text!r}")
    return list(dict.fromkeys(values))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default="gru", help="comma-separated cells among rnn, lstm, gru (torch "
                        "nn.RNN, nn.LSTM, nn.GRU; an LSTM bridges both h and c); default gru")
    parser.add_argument("--hidden", default="128,256", help="comma-separated hidden sizes H; default 128,256")
    parser.add_argument("--attentions", default=",".join(ATTENTIONS),
                        help="comma-separated attentions among none, dot, general, additive; default all "
                        "(the baselines their costs need are timed anyway)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch B; default 32")
    parser.add_argument("--source-len", type=int, default=12, help="padded source length S; default 12")
    parser.add_argument("--target-len", type=int, default=14, help="padded target length T; default 14")
    parser.add_argument("--source-vocab", type=int, default=40, help="source vocabulary (0 = padding); default 40")
    parser.add_argument("--target-vocab", type=int, default=40, help="target vocabulary (0 = padding); default 40")
    parser.add_argument("--embed", type=int, default=64, help="embedding size E of both embeddings; default 64")
    parser.add_argument("--layers", type=int, default=1, help="recurrent layers of encoder and decoder; default 1")
    parser.add_argument("--repeats", type=int, default=11, help=f"repetitions (turns of 1 untimed + {TURN_CALLS} "
                        "timed calls per model); the median is reported; default 11")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch (tokens and lengths); default 0")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative difference of the two "
                        "losses accepted before timing; default 1e-4")
    parser.add_argument("--grad-tolerance", type=float, default=1e-3, help="largest relative difference "
                        "|g_rnnkit - g_torch| / |g_torch| of any parameter's gradient accepted before timing; "
                        "default 1e-3")
    args = parser.parse_args(argv)
    cells = parse_list(parser, "--cells", args.cells, str, CELLS)
    hiddens = parse_list(parser, "--hidden", args.hidden, int)
    attentions = parse_list(parser, "--attentions", args.attentions, str, ATTENTIONS)
    for option in ("batch", "source_len", "target_len", "embed", "layers", "repeats", "hidden"):
        values = hiddens if option == "hidden" else [getattr(args, option)]
        if min(values) < 1:
            parser.error(f"--{option.replace('_', '-')}: expected positive integers, got {values}")
    if min(args.source_vocab, args.target_vocab) < 2:
        parser.error("--source-vocab, --target-vocab: expected at least 2 (0 is padding)")

    import torch

    torch.set_num_threads(THREADS)
    print(f"# one training step (forward + summed cross-entropy + backward, no optimizer), float32: "
          f"B={args.batch} S={args.source_len} T={args.target_len} V={args.source_vocab}/{args.target_vocab} "
          f"E={args.embed} L={args.layers}; lengths between half and full (seed {args.seed}); "
          f"median of {args.repeats} turns of {TURN_CALLS} calls, libraries alternating")
    print("# ratio = rnnkit / torch (< 1: rnnkit faster); attn ms = step - step of 'none' with the same "
          "encoder; dot runs a unidirectional encoder (its baseline: 'none', uni)")
    print(HEADER)
    print(RULE)
    for cell in cells:
        for hidden in hiddens:
            for row in bench_config(cell, hidden, args, attentions):
                print(format_row(row), flush=True)
    print()
    print(f"# {cpu_description()}")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, {THREADS} threads; Python {platform.python_version()}, "
          f"numpy {np.__version__}, torch {torch.__version__}")
    print("# rnnkit's compiled per-step loops: " + ("on" if _native.available() else f"off ({_native.why_not()})"))
    print(f"# NumPy's OpenBLAS kernels: {_native.openblas_core() or 'unknown'}; "
          f"{openblas.VARIABLE}={os.environ.get(openblas.VARIABLE, '(unset)')}"
          + (f"; {openblas.decision}" if openblas.decision else ""))


if __name__ == "__main__":
    main()
