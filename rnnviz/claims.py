"""Claims: what a preset says about its runs, as data that is checked on the runs themselves.

    claim = Claim("RNN (tanh)", "grad_log_ratio", "<=", -6)
    result = claim.check(exp)        # ClaimResult(value=-11.8, holds=True, ...) from the runs' own frames
    claim.describe()                 # "RNN (tanh): log10 ‖∂L/∂h_0‖/‖∂L/∂h_T−1‖ ≤ -6"

A claim is one comparison, `quantity(run) op threshold`, or with `versus` the ratio of two runs' quantities,
`quantity(run) / quantity(versus) op threshold` (e.g. the truncated run's loss over the full-BPTT run's).
Every quantity is read from what the dashboard draws and the CSVs export (history_frame, grad_flow_frame, the
snapshots), never from anything else:

    loss_ratio        mean training loss over the last WINDOW steps / the task's trivial baseline
    metric            mean task metric over the last WINDOW steps (accuracy, or MSE for regression tasks)
    grad_log_ratio    log10(||dL/dh_0|| / ||dL/dh_{T-1}||) of the top layer, forward direction, probe batch
    growth_gap        |log10 measured growth - log10 predicted growth| over the sequence, the prediction being
                      sigma_max(W_hh)^(T-1) (theory.tanh_rnn_bound, drawn dashed beside the measured curve)
    loss_spike        max training loss / loss at step 1 (inf once the run diverged)
    window_leak       largest ||dL/dh_t|| over the steps t before the last truncation window (exactly 0 when
                      every term crossing a window boundary is cut)
    attention_mass    share of the attention weight on the alignment the task defines (reverse: the exact
                      anti-diagonal, copy: the diagonal), mean over decoder steps and probe sequences
    word_share        share of a greedy sample's words (2+ letters) that occur in the training text

`at_step` picks the snapshot (0: at initialisation); None is the latest. A claim is checked only once the run
has reached `min_step` of training (the preset's N), so "not yet" is not "false".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

WINDOW = 50  # steps averaged for loss_ratio and metric
OPS = {"<=": "≤", ">=": "≥"}


def _tail(t, col: str) -> float:
    h = t.history_frame()
    return float(h[col].tail(WINDOW).mean()) if len(h) else math.nan


def _snap(t, at_step):
    return t.latest if at_step is None else t.snapshot_at(at_step)


def _top(snap) -> np.ndarray:
    return snap.grad_norm[-1, 0]  # (T,) top layer, forward direction


def loss_ratio(t, at_step=None) -> float:
    return _tail(t, "loss") / t.task.baseline


def metric(t, at_step=None) -> float:
    return _tail(t, "metric")


def grad_log_ratio(t, at_step=None) -> float:
    snap = _snap(t, at_step)
    if snap is None:
        return math.nan
    g = _top(snap)
    with np.errstate(divide="ignore"):
        return float(np.log10(g[0]) - np.log10(g[-1]))


def growth_gap(t, at_step=None) -> float:
    snap = _snap(t, at_step)
    if snap is None or snap.sigma_max is None:
        return math.nan
    T = snap.grad_norm.shape[-1]
    predicted = (T - 1) * math.log10(snap.sigma_max)
    return abs(grad_log_ratio(t, at_step) - predicted)


def loss_spike(t, at_step=None) -> float:
    if t.diverged:
        return math.inf
    h = t.history_frame()
    return float(h["loss"].max() / h["loss"].iloc[0]) if len(h) else math.nan


def window_leak(t, at_step=None) -> float:
    snap, k = _snap(t, at_step), t.cfg.truncation
    if snap is None or not k:
        return math.nan
    g = snap.grad_norm[:, :, :]  # (layers, dirs, T)
    T = g.shape[-1]
    last_window = (T - 1) // k * k  # loss at T-1: its window starts here
    return float(np.max(g[-1, 0, :last_window])) if last_window > 0 else 0.0


def attention_mass(t, at_step=None) -> float:
    snap = _snap(t, at_step)
    if snap is None or snap.attention is None:
        return math.nan
    a = snap.attention.float()  # (B, T_out, T_in)
    T_out, T_in = a.shape[1:]
    shape = getattr(t.task, "attention_shape", "")
    dec = np.arange(T_out)
    if shape == "anti-diagonal":
        enc = T_in - 1 - dec
    elif shape == "diagonal":
        enc = dec
    else:
        return math.nan
    ok = (enc >= 0) & (enc < T_in)
    return float(a[:, dec[ok], enc[ok]].sum(dim=1).mean() / T_out)


def word_share(t, at_step=None, n: int = 300) -> float:
    from rnnviz.training import sample_text

    sample = sample_text(t, "\n", n, greedy=False, temperature=0.8, seed=0)
    words = [w.lower() for w in re.findall(r"[A-Za-z]{2,}", sample)]
    if not words:
        return 0.0
    known = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", t.task.text)}
    return sum(w in known for w in words) / len(words)


QUANTITIES = {
    "loss_ratio": (loss_ratio, "loss / baseline"),
    "metric": (metric, "{metric}"),
    "grad_log_ratio": (grad_log_ratio, "log10 ‖∂L/∂h_0‖/‖∂L/∂h_T−1‖"),
    "growth_gap": (growth_gap, "|log10 measured − log10 predicted growth|"),
    "loss_spike": (loss_spike, "max loss / first loss"),
    "window_leak": (window_leak, "largest ‖∂L/∂h_t‖ before the last window"),
    "attention_mass": (attention_mass, "attention mass on the {shape}"),
    "word_share": (word_share, "share of sampled words found in the text"),
}


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    value: float
    holds: bool
    checked: bool  # False before the run reached the preset's N steps (then `holds` says nothing yet)


@dataclass(frozen=True)
class Claim:
    """`quantity(run) op threshold`, at snapshot `at_step` (None = latest). See the module docstring."""

    run: str  # the run's label (Controls.variants())
    quantity: str  # a key of QUANTITIES
    op: str  # "<=" or ">="
    threshold: float
    at_step: int | None = None
    note: str = ""  # why, in a few words, shown after the sentence
    versus: str = ""  # another run's label: the claim is about the ratio quantity(run) / quantity(versus)

    def __post_init__(self):
        if self.quantity not in QUANTITIES:
            raise ValueError(f"unknown quantity {self.quantity!r}; choose one of {list(QUANTITIES)}")
        if self.op not in OPS:
            raise ValueError(f"op must be <= or >=, got {self.op!r}")

    def describe(self, task=None) -> str:
        what = QUANTITIES[self.quantity][1]
        if task is not None:
            what = what.format(metric=getattr(task, "metric_name", "metric"),
                               shape=getattr(task, "attention_shape", "alignment"))
        when = " at step 0" if self.at_step == 0 else ""
        if self.versus:
            return f"{self.run}: {what}{when}, divided by {self.versus}'s, {OPS[self.op]} {self.threshold:g}"
        return f"{self.run}: {what}{when} {OPS[self.op]} {self.threshold:g}"

    def check(self, exp, min_step: int = 0) -> ClaimResult:
        for name in (self.run, self.versus or self.run):
            if name not in exp.runs:
                raise KeyError(f"claim about run {name!r}, but the runs are {list(exp.runs)}")
        t, q = exp.runs[self.run], QUANTITIES[self.quantity][0]
        value = q(t, self.at_step)
        if self.versus:
            value = value / q(exp.runs[self.versus], self.at_step)
        holds = value <= self.threshold if self.op == "<=" else value >= self.threshold
        checked = self.at_step == 0 or t.steps >= min_step or t.diverged
        return ClaimResult(self, float(value), bool(holds) and not math.isnan(value), checked)


__all__ = ["QUANTITIES", "WINDOW", "Claim", "ClaimResult"]
