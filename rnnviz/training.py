"""A step-wise trainer that records gradient dynamics, for a UI that trains a few steps between redraws.

    tr = Trainer(ModelConfig(cell="lstm"), TrainConfig(task="adding", seq_len=50))
    tr.step(20)                      # or tr.step(1000, time_budget=0.2): at most 0.2 s of work
    tr.history_frame()               # per step: loss, metric, grad norm before/after clipping
    tr.grad_flow_frame()             # per snapshot: ||dL/dh_t|| per layer, direction, t

All state lives in the object. A divergence (non-finite loss or gradient) stops training with a status
message and keeps the history; `step` never raises for it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnnviz.models import ModelConfig, build_model, config_from_dict, generate, param_groups, spectral_stats
from rnnviz.tasks import TASKS, make_task
from rnnviz.tracing import GATE_STATS_COLUMNS, spectral_bound, trace

OPTIMIZERS = ("adam", "sgd")
RETUNABLE = ("optimizer", "lr", "momentum", "clip", "snapshot_every")  # change without new weights (Trainer.retune)


@dataclass
class TrainConfig:
    task: str = "adding"
    seq_len: int | None = None  # None: the task's default
    batch_size: int = 32
    optimizer: str = "adam"  # "adam" | "sgd"
    lr: float = 3e-3
    momentum: float = 0.0  # sgd only
    clip: float | None = 1.0  # global-norm clipping threshold (Pascanu et al. 2013); None = off
    truncation: int | None = None  # truncated BPTT window k; None = full BPTT
    seed: int = 0  # data order
    task_options: dict = field(default_factory=dict)  # the task's own options, e.g. copy_memory's n_recall
    snapshot_every: int = 10  # trace the probe batch every N steps (0 = never)
    probe_size: int = 8
    max_history: int = 4000  # per-step rows kept; older rows are thinned beyond this
    snapshot_budget_mb: float = 12.0  # memory for stored snapshots per run; older ones are thinned beyond this

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {self.task!r}")
        _int_in("batch_size", self.batch_size, 1, 512)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        _num_in("lr", self.lr, 1e-6, 10.0)
        _num_in("momentum", self.momentum, 0.0, 0.999)
        if self.clip is not None:
            _num_in("clip", self.clip, 1e-3, 1e6)
        if self.truncation is not None:
            _int_in("truncation", self.truncation, 1, 100_000)
        _int_in("seed", self.seed, 0, 2**31 - 1)
        if not isinstance(self.task_options, dict) or "text" in self.task_options:
            raise ValueError(f"task_options must be a dict of the task's options (text comes apart), "
                             f"got {self.task_options!r}")
        _int_in("snapshot_every", self.snapshot_every, 0, 100_000)
        _int_in("probe_size", self.probe_size, 1, 64)
        _int_in("max_history", self.max_history, 100, 1_000_000)
        _num_in("snapshot_budget_mb", self.snapshot_budget_mb, 1.0, 4096.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of to_dict; unknown keys are a ValueError, and the result is validated (as ModelConfig's)."""
        return config_from_dict(cls, d)


def _int_in(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {v!r}")


def _num_in(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")


@dataclass
class Snapshot:
    """The probe batch traced at one training step (float16 copies of the big tensors)."""

    step: int
    loss: float
    grad_norm: np.ndarray  # (layers, dirs, T)
    hidden: torch.Tensor  # (layers, dirs, B, T, H) float16
    gates: dict[str, torch.Tensor]  # each (layers, dirs, B, T, H) float16
    cell: torch.Tensor | None  # LSTM c_t
    gate_stats: list[dict]  # rows: layer, direction, gate, mean, frac_low, frac_high
    attention: torch.Tensor | None = None  # (B, T_out, T_in) seq2seq with attention
    sigma_max: float | None = None  # plain RNN: sigma_max of the top layer's forward W_hh at this step
    nbytes: int = 0

    @classmethod
    def from_trace(cls, tr, step: int = 0, attention: torch.Tensor | None = None) -> Snapshot:
        """Keep what the pages draw from a Trace; big tensors as float16."""
        gates = {k: v.half() for k, v in tr.gates.items()}
        snap = cls(step=step, loss=tr.loss, grad_norm=tr.grad_norm.double().numpy(), hidden=tr.hidden.half(),
                   gates=gates, cell=None if tr.cell is None else tr.cell.half(),
                   gate_stats=tr.gate_stats(), attention=attention)
        snap.nbytes = sum(t.numel() * 2 for t in [snap.hidden, snap.cell, *gates.values()] if t is not None)
        return snap


def grad_flow_frame(snapshots: list[Snapshot]) -> pd.DataFrame:
    """step, layer, direction, t, grad_norm: ||dL/dh_t|| of each snapshot, one row per (snapshot, layer, dir, t)."""
    cols = ["step", "layer", "direction", "t", "grad_norm"]
    if not snapshots:
        return pd.DataFrame(columns=cols)
    shapes = {s.grad_norm.shape for s in snapshots}
    if len(shapes) > 1:  # snapshots of different lengths (not from one trainer): one block each
        return pd.concat([grad_flow_frame([s]) for s in snapshots], ignore_index=True)
    L, D, T = shapes.pop()
    n = len(snapshots)
    idx = np.indices((L, D, T)).reshape(3, -1)  # (3, L*D*T): layer, direction, t of each row of one snapshot
    norms = np.stack([np.asarray(s.grad_norm, dtype=np.float64) for s in snapshots])  # (n, L, D, T)
    return pd.DataFrame({"step": np.repeat([s.step for s in snapshots], L * D * T),
                         "layer": np.tile(idx[0], n), "direction": np.tile(idx[1], n), "t": np.tile(idx[2], n),
                         "grad_norm": norms.reshape(-1)}, columns=cols)


@dataclass
class _Bounded:
    """Rows kept with geometric thinning: when over `limit`, every other row of the older half goes."""

    limit: int
    rows: list = field(default_factory=list)
    thinned_before: int | None = None  # steps before this were thinned (None: nothing thinned)

    def append(self, row) -> None:
        self.rows.append(row)
        if len(self.rows) > self.limit:
            half = len(self.rows) // 2
            old = self.rows[:half]
            self.rows = old[::2] + self.rows[half:]
            step = self.rows[len(old[::2])]
            self.thinned_before = step["step"] if isinstance(step, dict) else step.step


class Trainer:
    """Trains one model on one task, a few steps at a time. See the module docstring."""

    def __init__(self, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None, *,
                 text: str | None = None):
        self.model_cfg = model_cfg or ModelConfig()
        self.cfg = train_cfg or TrainConfig()
        self.model_cfg.validate()
        self.cfg.validate()
        opts = {**self.cfg.task_options, **({"text": text} if text is not None and self.cfg.task == "char_lm" else {})}
        self.task = make_task(self.cfg.task, self.cfg.seq_len, **opts)
        self.model = build_model(self.model_cfg, self.task)
        self.opt = self._optimizer()
        self.gen = torch.Generator().manual_seed(self.cfg.seed)
        self.probe = self.task.probe(self.cfg.probe_size, seed=1234 + self.cfg.seed)
        self.groups = param_groups(self.model)
        self.steps = 0
        self.status = "ready"  # "ready" | "training" | "diverged"
        self.message = ""
        self.train_seconds = 0.0
        self.history = _Bounded(self.cfg.max_history)
        self.layer_history = _Bounded(self.cfg.max_history)
        self.snapshots: list[Snapshot] = []
        self.snapshots_thinned_before: int | None = None
        self._grad_flow_cache: tuple | None = None  # (snapshots' identity, grad_flow_frame)
        self.changes: list[dict] = []  # rows: step, setting, old, new (retune while training)
        if self.cfg.snapshot_every:
            self.take_snapshot()

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.cfg.lr)
        return torch.optim.SGD(params, lr=self.cfg.lr, momentum=self.cfg.momentum)

    def retune(self, cfg: TrainConfig) -> list[str]:
        """Go on training the same weights with new optimiser settings (RETUNABLE fields only; anything else
        needs a new Trainer: ValueError). The optimiser's state (Adam's moments, SGD's momentum) is kept unless
        the optimiser itself changes. Returns the changed fields; each is recorded in `changes`."""
        cfg.validate()
        old, new = self.cfg.to_dict(), cfg.to_dict()
        fixed = [k for k in old if k not in RETUNABLE and old[k] != new[k]]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change while training: it needs new models")
        changed = [k for k in RETUNABLE if old[k] != new[k]]
        self.cfg = cfg
        if "optimizer" in changed:
            self.opt = self._optimizer()
        else:
            for group in self.opt.param_groups:
                group["lr"] = cfg.lr
                if cfg.optimizer == "sgd":
                    group["momentum"] = cfg.momentum
        self.changes += [{"step": self.steps, "setting": k, "old": old[k], "new": new[k]} for k in changed]
        return changed

    # -- training --------------------------------------------------------------------------------------------
    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def step(self, n: int = 1, time_budget: float | None = None) -> int:
        """Run up to n optimisation steps (fewer if time_budget seconds run out or training diverges).
        Returns the number of steps done."""
        done = 0
        t0 = time.perf_counter()
        self.model.train()
        while done < n and not self.diverged:
            if time_budget is not None and done > 0 and time.perf_counter() - t0 >= time_budget:
                break
            self._one_step()
            done += 1
            if self.cfg.snapshot_every and self.steps % self.cfg.snapshot_every == 0 and not self.diverged:
                self.take_snapshot()
        self.train_seconds += time.perf_counter() - t0
        return done

    def loss_and_grads(self, batch):
        """Forward (truncated BPTT if configured) and backward on `batch`; grads are left in .grad."""
        self.opt.zero_grad(set_to_none=True)
        pred = self.model(batch, truncation=self.cfg.truncation)
        loss = self.task.loss(pred, batch)
        if torch.isfinite(loss):
            loss.backward()
        return loss.detach(), pred.detach()

    def _one_step(self) -> None:
        batch = self.task.sample(self.cfg.batch_size, self.gen)
        loss, pred = self.loss_and_grads(batch)
        step = self.steps + 1
        row = {"step": step, "loss": float(loss.detach()), "metric": math.nan,
               "grad_norm": math.nan, "grad_norm_clipped": math.nan}
        if not math.isfinite(row["loss"]):
            return self._diverge(row, f"diverged at step {step}: loss {row['loss']}")
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.cfg.clip if self.cfg.clip is not None else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))  # pre-clip global norm
        row["grad_norm"] = norm
        row["grad_norm_clipped"] = min(norm, max_norm) if math.isfinite(norm) else norm
        row["metric"] = self.task.metric(pred, batch)
        for name, ps in self.groups.items():
            gs = [p.grad for _, p in ps if p.grad is not None]
            g = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in gs]))) \
                if gs else 0.0
            self.layer_history.append({"step": step, "group": name, "grad_norm": g})
        if not math.isfinite(norm):
            return self._diverge(row, f"diverged at step {step}: gradient norm {norm}")
        self.opt.step()
        self.steps = step
        self.status = "training"
        self.history.append(row)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            self._diverge(None, f"diverged at step {step}: weights became non-finite")

    def _diverge(self, row: dict | None, message: str) -> None:
        if row is not None:
            self.steps = row["step"]
            self.history.append(row)
        self.status = "diverged"
        self.message = message

    # -- snapshots -------------------------------------------------------------------------------------------
    def take_snapshot(self) -> Snapshot | None:
        """Trace the fixed probe batch through the core at the current weights."""
        b, model = self.probe, self.model
        model.eval()
        try:
            with torch.no_grad():
                x = model.core_input(b)  # (B, T, in)
            tr = trace(model.core, x, lambda out: self.task.loss(model.head(out, b), b),
                       truncation=self.cfg.truncation)
            attn = None
            if getattr(model, "attention", "none") != "none":
                with torch.no_grad():
                    attn = model.attention_weights(b).float()
        except (ValueError, RuntimeError) as exc:  # e.g. non-finite weights
            self.message = self.message or f"snapshot failed at step {self.steps}: {exc}"
            return None
        finally:
            model.train()
        snap = Snapshot.from_trace(tr, self.steps, attn)
        if isinstance(model.core, torch.nn.RNN):  # the prediction drawn beside this snapshot needs its own W_hh
            snap.sigma_max = spectral_bound(getattr(model.core, f"weight_hh_l{model.core.num_layers - 1}"))[1]
        self.snapshots.append(snap)
        self._bound_snapshots()
        return snap

    def _bound_snapshots(self) -> None:
        budget = self.cfg.snapshot_budget_mb * 2**20
        while len(self.snapshots) > 4 and sum(s.nbytes for s in self.snapshots) > budget:
            half = len(self.snapshots) // 2
            kept = self.snapshots[:half:2]
            self.snapshots = kept + self.snapshots[half:]
            self.snapshots_thinned_before = self.snapshots[len(kept)].step

    @property
    def latest(self) -> Snapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    def snapshot_at(self, step: int) -> Snapshot | None:
        """The last snapshot taken at or before `step` (the replay scrubber)."""
        best = None
        for s in self.snapshots:
            if s.step <= step:
                best = s
        return best or self.latest

    # -- tidy frames -----------------------------------------------------------------------------------------
    def history_frame(self) -> pd.DataFrame:
        cols = ["step", "loss", "metric", "grad_norm", "grad_norm_clipped"]
        df = pd.DataFrame(self.history.rows, columns=cols)
        df["baseline"] = self.task.baseline
        return df

    def layer_grad_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.layer_history.rows, columns=["step", "group", "grad_norm"])

    def grad_flow_frame(self) -> pd.DataFrame:
        """step, layer, direction, t, grad_norm for every stored snapshot. Built again only when the snapshots
        changed (a live tick without a new snapshot reuses it); callers must not modify it."""
        key = (len(self.snapshots), id(self.snapshots[0]) if self.snapshots else None,
               id(self.snapshots[-1]) if self.snapshots else None)
        if self._grad_flow_cache is None or self._grad_flow_cache[0] != key:
            self._grad_flow_cache = (key, grad_flow_frame(self.snapshots))
        return self._grad_flow_cache[1]

    def gate_stats_frame(self) -> pd.DataFrame:
        rows = [{"step": s.step, **r} for s in self.snapshots for r in s.gate_stats]
        return pd.DataFrame(rows, columns=["step", *GATE_STATS_COLUMNS])

    def spectral_frame(self) -> pd.DataFrame:
        return spectral_stats(self.model.core)

    def config_dict(self) -> dict:
        return {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()}

    def notes(self) -> list[str]:
        """What was thinned, said plainly (shown next to exports)."""
        out = []
        if self.history.thinned_before is not None:
            out.append(f"per-step history before step {self.history.thinned_before} is thinned "
                       f"(every 2nd, 4th, ... step kept) to bound memory")
        if self.snapshots_thinned_before is not None:
            out.append(f"snapshots before step {self.snapshots_thinned_before} are thinned to bound memory")
        out += [f"{c['setting']} changed from {c['old']} to {c['new']} at step {c['step']} (same weights)"
                for c in self.changes]
        return out

    def export(self, folder: str | Path) -> list[Path]:
        """Write every frame as CSV plus config.json into `folder`; returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        frames = {"history": self.history_frame(), "layer_grads": self.layer_grad_frame(),
                  "grad_flow": self.grad_flow_frame(), "gate_stats": self.gate_stats_frame(),
                  "spectral": self.spectral_frame()}
        paths = []
        for name, df in frames.items():
            p = folder / f"{name}.csv"
            df.to_csv(p, index=False)
            paths.append(p)
        p = folder / "config.json"
        p.write_text(json.dumps({**self.config_dict(), "notes": self.notes(), "status": self.status,
                                 "message": self.message, "steps": self.steps}, indent=2))
        paths.append(p)
        return paths


def sample_text(trainer: Trainer, prefix: str, n: int, temperature: float = 1.0, greedy: bool = False,
                seed: int = 0) -> str:
    """n characters generated by a char-LM trainer's model after `prefix` (seeded, so repeatable)."""
    return generate(trainer.model, trainer.task, prefix, n, temperature=temperature, greedy=greedy,
                    generator=torch.Generator().manual_seed(seed))


def accuracy_vs_length(model_cfg: ModelConfig, train_cfg: TrainConfig, lengths, attentions=("none", "luong_general"),
                       steps: int = 300, eval_batches: int = 4, progress=None) -> pd.DataFrame:
    """Train a fresh seq2seq model per (length, attention) and measure greedy-decoding token accuracy.

    The fixed-context-vector bottleneck: without attention one vector must hold the whole source, so accuracy
    falls as the sequence grows; with attention each output step looks back at the encoder states.
    Returns columns length, attention, accuracy.
    """
    rows, jobs = [], [(L, a) for L in lengths for a in attentions]
    for i, (length, att) in enumerate(jobs):
        mc = ModelConfig(**{**model_cfg.to_dict(), "attention": att})
        tc = TrainConfig(**{**train_cfg.to_dict(), "seq_len": int(length), "snapshot_every": 0})
        tr = Trainer(mc, tc)
        tr.step(steps)
        gen = torch.Generator().manual_seed(10_000 + tc.seed)
        tr.model.eval()
        with torch.no_grad():
            hits = []
            for _ in range(eval_batches):
                b = tr.task.sample(64, gen)
                hits.append((tr.model.greedy_decode(b) == b.y).float().mean().item())
        rows.append({"length": int(length), "attention": att, "accuracy": float(np.mean(hits))})
        if progress is not None:
            progress((i + 1) / len(jobs))
    return pd.DataFrame(rows, columns=["length", "attention", "accuracy"])


__all__ = ["OPTIMIZERS", "RETUNABLE", "Snapshot", "TrainConfig", "Trainer", "accuracy_vs_length", "grad_flow_frame",
           "sample_text"]
