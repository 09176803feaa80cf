"""The dashboard's control state: bounds, presets, the URL round trip, and the cost budget.

Pure Python (no Streamlit): the pages read and write a `Controls`, `to_query`/`from_query` mirror it in
the URL so a link reproduces a demo, and `check_budget` refuses settings whose cost is too high before
any work starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

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
}

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

    # -- to the engine ---------------------------------------------------------------------------------------
    def model_config(self, cell: str, attention: str | None = None) -> ModelConfig:
        return ModelConfig(cell=cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
                           bidirectional=self.bidirectional, init=self.init, weight_scale=self.weight_scale,
                           forget_bias=self.forget_bias if cell == "lstm" else None,
                           attention=self.attention if attention is None else attention, seed=self.seed)

    def train_config(self) -> TrainConfig:
        return TrainConfig(task=self.task, seq_len=self.seq_len, batch_size=self.batch_size,
                           optimizer=self.optimizer, lr=self.lr, clip=self.clip or None,
                           truncation=self.truncation or None, seed=self.seed, snapshot_every=self.snapshot_every)

    def run_key(self) -> tuple:
        """Everything that, when changed, needs new models (so a reset)."""
        return tuple(sorted(asdict(self).items()))

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
        """Parse query parameters leniently: bad or unknown values are skipped and reported."""
        c, problems = cls(), []
        for f in fields(cls):
            if f.name not in q:
                continue
            raw = q[f.name]
            try:
                cur = getattr(c, f.name)
                if isinstance(cur, tuple):
                    val = tuple(s for s in str(raw).split(",") if s)
                elif isinstance(cur, bool):
                    if str(raw).lower() not in ("true", "false", "1", "0"):
                        raise ValueError(raw)
                    val = str(raw).lower() in ("true", "1")
                elif isinstance(cur, int):
                    val = int(raw)
                elif isinstance(cur, float):
                    val = float(raw)
                else:
                    val = str(raw)
                trial = replace(c, **{f.name: val})
                trial.validate()
                c = trial
            except (ValueError, TypeError) as exc:
                problems.append(f"ignored URL parameter {f.name}={raw!r}: {exc}")
        return c, problems


def format_value(v) -> str:
    """A control value as it appears in a URL or a --set option."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


# -- cost budget -----------------------------------------------------------------------------------------------
def _steps(c: Controls) -> int:
    return c.seq_len + (20 if c.task == "copy_memory" else 0)


def step_macs(c: Controls) -> int:
    """Forward multiply-adds of one training step of all runs (encoder + decoder for seq2seq)."""
    dirs = 2 if c.bidirectional else 1
    per_gate = c.batch_size * _steps(c) * c.num_layers * dirs * c.hidden_size * (2 * c.hidden_size)
    runs = 2 if c.task in SEQ2SEQ else 1  # seq2seq pages train with and without attention
    decoder = 2 if c.task in SEQ2SEQ else 1
    return per_gate * sum(GATES[cell] for cell in c.cells) * runs * decoder


def snapshot_bytes(c: Controls, probe: int = 8) -> int:
    dirs = 2 if c.bidirectional else 1
    gates = max(GATES[cell] for cell in c.cells)
    return probe * _steps(c) * c.num_layers * dirs * c.hidden_size * (gates + 4) * 4 * 2


def check_budget(c: Controls) -> str | None:
    """None if affordable; else a message saying which setting to lower (before any work starts)."""
    macs = step_macs(c)
    if macs > STEP_BUDGET_MACS:
        weights = {"sequence length": c.seq_len / 100, "hidden size": c.hidden_size / 64,
                   "batch size": c.batch_size / 32, "number of cells compared": len(c.cells) / 2,
                   "number of layers": c.num_layers / 1.5}
        lower = max(weights, key=weights.get)
        return (f"Too expensive to train live: one step would take about {macs / 1e9:.1f} G multiply-adds "
                f"(budget {STEP_BUDGET_MACS / 1e9:.0f} G). Lower the {lower} first.")
    nbytes = snapshot_bytes(c)
    if nbytes > SNAPSHOT_BUDGET_BYTES:
        return (f"Too big to trace: a snapshot would need about {nbytes / 2**20:.0f} MB "
                f"(budget {SNAPSHOT_BUDGET_BYTES / 2**20:.0f} MB). Lower the sequence length or the hidden size.")
    return None


# -- presets -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    name: str
    page: str  # which page to open
    blurb: str
    controls: dict = field(default_factory=dict)

    def apply(self) -> Controls:
        c = replace(Controls(), **self.controls)
        c.validate()
        return c


PRESETS = [
    Preset("Vanishing gradients (RNN vs LSTM vs GRU)", "gradient_flow",
           "Adding problem at T=100: the RNN's ||dL/dh_t|| collapses toward the start; LSTM's and GRU's stay up.",
           dict(task="adding", cells=("rnn_tanh", "lstm", "gru"), seq_len=100, weight_scale=1.0, init="default")),
    Preset("Exploding gradients and clipping", "gradient_flow",
           "Orthogonal W_hh scaled by 1.5: the gradient grows as 1.5^(T-1-t). Clipping keeps training alive.",
           dict(task="adding", cells=("rnn_tanh",), seq_len=40, weight_scale=1.5, init="orthogonal", clip=1.0,
                lr=1e-3)),
    Preset("Truncated BPTT", "gradient_flow",
           "Window k=10: gradient terms that cross a window boundary are exactly zero, not small.",
           dict(task="adding", cells=("rnn_tanh", "lstm"), seq_len=60, truncation=10)),
    Preset("LSTM gates at work", "gates",
           "Copy-memory: watch the forget gate hold the symbols through the delay and the input gate open.",
           dict(task="copy_memory", cells=("lstm",), seq_len=20, hidden_size=64, lr=5e-3, forget_bias=1.0)),
    Preset("Attention vs the context-vector bottleneck", "attention",
           "Reverse a sequence: with attention the weights form the anti-diagonal; without, one vector must "
           "hold it all.",
           dict(task="reverse", cells=("gru",), seq_len=12, hidden_size=64, lr=5e-3, attention="bahdanau")),
    Preset("Character language model", "hidden_states",
           "An LSTM reads Shakespeare one character at a time; sample from it and colour the text by a unit.",
           dict(task="char_lm", cells=("lstm",), seq_len=64, hidden_size=128, lr=5e-3, batch_size=32)),
]
PRESETS_BY_NAME = {p.name: p for p in PRESETS}

__all__ = ["ATTENTION_LABELS", "BOUNDS", "CELL_LABELS", "Controls", "PRESETS", "PRESETS_BY_NAME", "Preset",
           "check_budget", "format_value", "snapshot_bytes", "step_macs"]
