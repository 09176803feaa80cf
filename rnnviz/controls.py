"""The dashboard's control state: bounds, the compared runs, the URL round trip, and the cost budget.

Pure Python (no Streamlit): the pages read and write a `Controls`, `to_query`/`from_query` mirror it in
the URL so a link reproduces a demo, `variants()` says which runs are trained side by side (one per cell, or
one per value of any other compared setting), and `check_budget` refuses settings whose cost is too high before
any work starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from rnnviz.models import ModelConfig
from rnnviz.tasks import TASKS
from rnnviz.training import TrainConfig

CELL_LABELS = {"rnn_tanh": "RNN (tanh)", "rnn_relu": "RNN (relu)", "lstm": "LSTM", "gru": "GRU"}
ATTENTION_LABELS = {"none": "none (fixed context vector)", "bahdanau": "Bahdanau (additive)",
                    "luong_dot": "Luong (dot)", "luong_general": "Luong (general)"}

# name: (min, max) for numeric controls; the widgets use the same bounds
BOUNDS = {
    "weight_scale": (0.05, 3.0),
    "seq_len": (2, 1000),
    "truncation": (0, 1000),  # 0 = full BPTT
    "hidden_size": (1, 256),
    "num_layers": (1, 3),
    "lr": (1e-5, 1.0),
    "clip": (0.0, 100.0),  # 0 = off
    "seed": (0, 10_000),
    "batch_size": (1, 128),
    "forget_bias": (-5.0, 5.0),
    "snapshot_every": (1, 100),
    "dropout": (0.0, 0.9),
    "recall": (1, 50),
    "symbols": (2, 20),
}
MAX_RUNS = 4  # runs compared side by side

# The settings a comparison may vary (the runs share everything else, the seed and the data stream included).
COMPARABLE = {"cells": "cell type", "clip": "gradient clipping", "weight_scale": "recurrent weight scale",
              "init": "W_hh init", "forget_bias": "LSTM forget-gate bias", "truncation": "truncation window",
              "attention": "attention", "lr": "learning rate", "optimizer": "optimiser", "hidden_size": "hidden size"}
# Settings that change only how the optimiser steps: changing them while training continues from the current
# weights instead of building new models.
LIVE_FIELDS = ("lr", "clip", "optimizer", "snapshot_every")

# The cost budget (documented in the README). A training step of one run costs about
#   batch * time * layers * dirs * gates * H * (H + in)   multiply-adds forward (backward ~2x that);
# a traced snapshot holds about (gates + 4) float32 tensors of probe * time * layers * dirs * H.
STEP_BUDGET_MACS = 2_000_000_000  # all runs together: ~0.1-0.5 s per step on a 2-core machine
SNAPSHOT_BUDGET_BYTES = 64 * 2**20
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
SEQ2SEQ = ("reverse", "copy", "sort")


@dataclass
class Controls:
    """Everything the sidebar sets. Defaults are the "Vanishing gradients" demo."""

    task: str = "adding"
    cells: tuple[str, ...] = ("rnn_tanh", "lstm", "gru")
    seq_len: int = 50
    weight_scale: float = 1.0
    init: str = "default"
    truncation: int = 0  # 0 = off
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    optimizer: str = "adam"
    lr: float = 3e-3
    clip: float = 1.0  # 0 = off
    seed: int = 0
    batch_size: int = 32
    forget_bias: float = 1.0
    attention: str = "bahdanau"
    snapshot_every: int = 10
    dropout: float = 0.0  # between stacked layers (needs >= 2 layers)
    recall: int = 10  # copy_memory: symbols to remember (R)
    symbols: int = 8  # copy_memory: alphabet size (K)
    eos: bool = False  # seq2seq tasks: every target ends with an <eos> token; greedy decoding stops at it
    compare: str = "cells"  # the setting the runs differ in (COMPARABLE); "cells": one run per cell
    compare_values: tuple[str, ...] = ()  # its values, one run each (as text, as in the URL); unused for "cells"

    def validate(self) -> None:
        """ValueError naming the field that is out of bounds."""
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {self.task!r}")
        if not self.cells or any(c not in CELL_LABELS for c in self.cells) or len(set(self.cells)) < len(self.cells):
            raise ValueError(f"cells must be a non-empty subset of {list(CELL_LABELS)} without repeats, "
                             f"got {self.cells!r}")
        for name, (lo, hi) in BOUNDS.items():
            v = getattr(self, name)
            want_int = isinstance(getattr(Controls, name, None), int) and isinstance(lo, int)
            if isinstance(v, bool) or not isinstance(v, int if want_int else (int, float)) \
                    or not math.isfinite(v) or not lo <= v <= hi:
                kind = "an int" if want_int else "a number"
                raise ValueError(f"{name} must be {kind} in [{lo}, {hi}], got {v!r}")
        if self.weight_scale <= 0:
            raise ValueError("weight_scale must be > 0")
        lo, hi = TASKS[self.task].MIN_LEN, TASKS[self.task].MAX_LEN
        if not lo <= self.seq_len <= hi:
            raise ValueError(f"seq_len must be in [{lo}, {hi}] for task {self.task!r}, got {self.seq_len}")
        if self.init not in ("default", "orthogonal", "identity"):
            raise ValueError(f"init must be default, orthogonal or identity, got {self.init!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
        if self.attention not in ATTENTION_LABELS:
            raise ValueError(f"attention must be one of {list(ATTENTION_LABELS)}, got {self.attention!r}")
        if not isinstance(self.eos, bool):
            raise ValueError(f"eos must be true or false, got {self.eos!r}")
        if self.eos and "eos" not in TASKS[self.task].OPTIONS:
            with_eos = ", ".join(n for n, t in TASKS.items() if "eos" in t.OPTIONS)
            raise ValueError(f"eos (an <eos> token ending every target) is for the seq2seq tasks ({with_eos}), "
                             f"not for task {self.task!r}")
        if self.compare not in COMPARABLE:
            raise ValueError(f"compare must be one of {list(COMPARABLE)}, got {self.compare!r}")
        if not isinstance(self.compare_values, tuple) or not all(isinstance(v, str) for v in self.compare_values):
            raise ValueError(f"compare_values must be a tuple of strings, got {self.compare_values!r}")
        if self.compare == "cells":
            if self.compare_values:
                raise ValueError("compare_values is for a compared setting other than cells (cells lists the runs)")
            if len(self.cells) > MAX_RUNS:
                raise ValueError(f"at most {MAX_RUNS} cells are compared side by side, got {len(self.cells)}")
        else:
            vals = self.compare_values
            if not 2 <= len(vals) <= MAX_RUNS or len(set(vals)) < len(vals):
                raise ValueError(f"compare_values must be 2 to {MAX_RUNS} different values of {self.compare}, "
                                 f"got {vals!r}")
            for v in vals:
                self.varied(v).validate()  # each run's settings are valid on their own

    # -- to the engine ---------------------------------------------------------------------------------------
    def model_config(self, cell: str, attention: str | None = None) -> ModelConfig:
        return ModelConfig(cell=cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
                           bidirectional=self.bidirectional, init=self.init, weight_scale=self.weight_scale,
                           forget_bias=self.forget_bias if cell == "lstm" else None, dropout=self.dropout,
                           attention=self.attention if attention is None else attention, seed=self.seed)

    def train_config(self) -> TrainConfig:
        return TrainConfig(task=self.task, seq_len=self.seq_len, batch_size=self.batch_size,
                           optimizer=self.optimizer, lr=self.lr, clip=self.clip or None,
                           truncation=self.truncation or None, seed=self.seed, snapshot_every=self.snapshot_every,
                           task_options=self.task_options())

    def task_options(self) -> dict:
        """The task's own settings (copy memory: how many symbols, from how large an alphabet; seq2seq: whether the
        targets end with <eos>, passed only when on, so runs without it are configured exactly as before)."""
        if self.task == "copy_memory":
            return {"n_recall": self.recall, "n_symbols": self.symbols}
        return {"eos": True} if self.eos and "eos" in TASKS[self.task].OPTIONS else {}

    def varied(self, value: str) -> Controls:
        """These controls with the compared setting set to `value` (its text form), not compared any more."""
        if self.compare == "cells":
            return replace(self, cells=(value,), compare_values=())
        kind = type(getattr(Controls(), self.compare))
        try:
            v = parse_text(kind, value)
        except ValueError as exc:
            raise ValueError(f"compare_values: {self.compare} {exc}") from None
        return replace(self, compare="cells", compare_values=(), **{self.compare: v})

    def variants(self) -> dict[str, Controls]:
        """label -> the single-cell controls of each run trained side by side.

        compare="cells": one run per cell, except for a seq2seq task, whose runs are the first cell with attention
        (Bahdanau where "none" is set) and without (the context-vector bottleneck). Otherwise one run of the first
        cell per value of the compared setting."""
        if self.compare != "cells":
            cell = self.cells[0]
            return {f"{CELL_LABELS[cell]}, {value_label(self.compare, v)}": replace(self.varied(v), cells=(cell,))
                    for v in self.compare_values}
        if self.task in SEQ2SEQ:
            cell = self.cells[0]
            att = self.attention if self.attention != "none" else "bahdanau"
            return {f"{CELL_LABELS[cell]} + {ATTENTION_LABELS[att].split(' (')[0]} attention":
                    replace(self, cells=(cell,), attention=att),
                    f"{CELL_LABELS[cell]}, no attention": replace(self, cells=(cell,), attention="none")}
        return {CELL_LABELS[cell]: replace(self, cells=(cell,)) for cell in self.cells}

    def run_key(self) -> tuple:
        """What, when changed, needs new models: everything but LIVE_FIELDS (those change the optimiser only)."""
        return tuple(sorted((k, v) for k, v in asdict(self).items() if k not in LIVE_FIELDS))

    # -- the URL ---------------------------------------------------------------------------------------------
    def to_query(self) -> dict[str, str]:
        """Only the fields that differ from the defaults, as strings (short, readable links)."""
        default = Controls()
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v != getattr(default, f.name):
                out[f.name] = ",".join(v) if isinstance(v, tuple) else format_value(v)
        return out

    @classmethod
    def from_query(cls, q: dict[str, str]) -> tuple[Controls, list[str]]:
        """Parse query parameters leniently: bad or unknown values are skipped and reported (values shortened to
        60 characters in the report). compare and compare_values are taken together (one needs the other)."""
        c, problems = cls(), []
        names = [f.name for f in fields(cls)]
        for key in q:
            if key not in names:
                problems.append(f"ignored unknown URL parameter {_short(key)!r}")
        groups = [[n] for n in names if n not in ("compare", "compare_values")] + [["compare", "compare_values"]]
        for group in groups:
            given = [n for n in group if n in q]
            if not given:
                continue
            try:
                vals = {n: parse_text(type(getattr(c, n)), q[n]) for n in given}
                trial = replace(c, **vals)
                trial.validate()
                c = trial
            except (ValueError, TypeError) as exc:
                shown = ", ".join(f"{n}={_short(q[n])!r}" for n in given)
                problems.append(f"ignored URL parameter {shown}: {_short(str(exc), 200)}")
        return c, problems


def _short(s: str, n: int = 60) -> str:
    s = str(s)
    return s if len(s) <= n else s[:n] + f"… ({len(s)} characters)"


def parse_text(kind: type, raw) -> object:
    """A control value of type `kind` from its text form (URL, --set, compare_values); ValueError if it is not one."""
    s = str(raw).strip()
    if kind is tuple:
        return tuple(v.strip() for v in s.split(",") if v.strip())
    if kind is bool:
        if s.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"must be true or false, got {raw!r}")
        return s.lower() in ("true", "1", "yes")
    if kind is int:
        try:
            return int(s)
        except ValueError:
            raise ValueError(f"must be an integer, got {raw!r}") from None
    if kind is float:
        try:
            v = float(s)
        except ValueError:
            raise ValueError(f"must be a number, got {raw!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {raw!r}")
        return v
    return s


def value_label(name: str, raw: str) -> str:
    """How a compared value reads in a run's label: 'clip 1', 'no clipping', 'full BPTT', 'k = 10', ..."""
    v = parse_text(type(getattr(Controls(), name)), raw)
    if name == "clip":
        return f"clip at {format_value(v)}" if v else "no clipping"
    if name == "truncation":
        return f"truncated, k = {v}" if v else "full BPTT"
    if name == "attention":
        return f"{ATTENTION_LABELS[v].split(' (')[0]} attention" if v != "none" else "no attention"
    if name == "init":
        return f"{v} init"
    if name == "optimizer":
        return {"adam": "Adam", "sgd": "SGD"}.get(v, v)
    short = {"weight_scale": "scale", "forget_bias": "forget bias", "lr": "lr", "hidden_size": "H"}
    return f"{short.get(name, name)} {format_value(v)}"


def format_value(v) -> str:
    """A control value as it appears in a URL or a --set option."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


# -- cost budget -----------------------------------------------------------------------------------------------
def _steps(c: Controls) -> int:
    return c.seq_len + (2 * c.recall if c.task == "copy_memory" else 0) + (1 if c.eos else 0)  # eos: T + 1 out


def step_macs(c: Controls) -> int:
    """Forward multiply-adds of one training step of all runs (encoder + decoder for seq2seq)."""
    total = 0
    for v in c.variants().values():
        dirs = 2 if v.bidirectional else 1
        per_gate = v.batch_size * _steps(v) * v.num_layers * dirs * v.hidden_size * (2 * v.hidden_size)
        total += per_gate * GATES[v.cells[0]] * (2 if v.task in SEQ2SEQ else 1)  # seq2seq: + the decoder
    return total


def snapshot_bytes(c: Controls, probe: int = 8) -> int:
    """Bytes of one snapshot of the largest run (traced tensors of the probe batch, with their gradients)."""
    def one(v: Controls) -> int:
        dirs = 2 if v.bidirectional else 1
        return probe * _steps(v) * v.num_layers * dirs * v.hidden_size * (GATES[v.cells[0]] + 4) * 4 * 2
    return max(one(v) for v in c.variants().values())


def check_budget(c: Controls) -> str | None:
    """None if affordable; else a message saying which setting to lower (before any work starts)."""
    macs = step_macs(c)
    if macs > STEP_BUDGET_MACS:
        weights = {"sequence length": c.seq_len / 100, "hidden size": c.hidden_size / 64,
                   "batch size": c.batch_size / 32, "number of runs compared": len(c.variants()) / 2,
                   "number of layers": c.num_layers / 1.5}
        lower = max(weights, key=weights.get)
        return (f"Too expensive to train live: one step would take about {macs / 1e9:.1f} G multiply-adds "
                f"(budget {STEP_BUDGET_MACS / 1e9:.0f} G). Lower the {lower} first.")
    nbytes = snapshot_bytes(c)
    if nbytes > SNAPSHOT_BUDGET_BYTES:
        return (f"Too big to trace: a snapshot would need about {nbytes / 2**20:.0f} MB "
                f"(budget {SNAPSHOT_BUDGET_BYTES / 2**20:.0f} MB). Lower the sequence length or the hidden size.")
    return None


__all__ = ["ATTENTION_LABELS", "BOUNDS", "CELL_LABELS", "COMPARABLE", "LIVE_FIELDS", "Controls", "check_budget",
           "format_value", "snapshot_bytes", "step_macs"]
