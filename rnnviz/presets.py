"""Presets: verified experiments for a lecture. Each declares its settings, its runs, its N and its claims.

    p = find_preset("vanishing")          # by name, slug or a unique start of the slug
    exp = Experiment(p.controls())
    exp.step(p.steps)
    [r.holds for r in p.check(exp)]       # tests/test_presets.py asserts every claim after N steps

The text a page shows for a preset is `blurb` (what to look at) plus the claims' own sentences, so the screen
says nothing the test does not check. N is chosen so that a 2-core machine reaches it within a minute of
live training (README: the measured time per preset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from rnnviz.claims import Claim, ClaimResult
from rnnviz.config import ConfigError
from rnnviz.controls import Controls


@dataclass(frozen=True)
class Preset:
    name: str
    page: str  # which page opens
    blurb: str  # what to look at (no claim beyond the claims below)
    settings: dict = field(default_factory=dict)  # Controls fields
    steps: int = 300  # N: the claims are checked after this many steps
    claims: tuple[Claim, ...] = ()
    step0: str = ""  # what is true at initialisation, said plainly

    def controls(self) -> Controls:
        c = replace(Controls(), **self.settings)
        c.validate()
        return c

    apply = controls  # the dashboard's word: apply a preset

    def check(self, exp) -> list[ClaimResult]:
        return [c.check(exp, self.steps) for c in self.claims]


def preset_slug(name: str) -> str:
    """'Truncated BPTT' -> 'truncated-bptt'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


PRESETS = [
    Preset(
        "Vanishing gradients (RNN vs LSTM vs GRU)", "gradient_flow",
        "The adding problem: the answer needs a number seen up to 50 steps back. Watch ‖∂L/∂h_t‖ toward t = 0, now "
        "and (beside it) at step 0: the RNN's collapses by many decades and it never beats the baseline; the GRU "
        "vanishes at initialisation too and learns to keep its path open; the LSTM starts open (forget bias 3).",
        dict(task="adding", cells=("rnn_tanh", "lstm", "gru"), seq_len=50, lr=1e-2, batch_size=128, forget_bias=3.0),
        steps=600,
        claims=(Claim("GRU", "grad_log_ratio", "<=", -6, at_step=0, note="gated cells vanish at initialisation too"),
                Claim("LSTM", "grad_log_ratio", ">=", -2, at_step=0, note="forget-gate bias 3 opens the path"),
                Claim("RNN (tanh)", "grad_log_ratio", "<=", -6), Claim("LSTM", "grad_log_ratio", ">=", -2),
                Claim("GRU", "grad_log_ratio", ">=", -2), Claim("LSTM", "loss_ratio", "<=", 0.5),
                Claim("GRU", "loss_ratio", "<=", 0.5), Claim("RNN (tanh)", "loss_ratio", ">=", 0.8)),
        step0="At step 0 the GRU's gradient vanishes as fast as the RNN's: its gates start half shut, and training "
              "teaches the update gate to keep the additive path open. The LSTM starts with forget-gate bias 3 "
              "(σ(3) ≈ 0.95 per step), which opens its cell path from the start."),
    Preset(
        "Exploding gradients and clipping", "gradient_flow",
        "A ReLU RNN with W_hh = 1.2·I (IRNN scaled above 1): while units stay active the recurrent Jacobian is "
        "1.2·I, so at step 0 the gradient grows toward the start as 1.2^(T−1−t), the dashed line. (A tanh RNN "
        "at scale 1.5 saturates: diag(1 − h_t²) shrinks the Jacobian and caps the growth.) The same model with "
        "and without clipping: both start with exploding losses; unclipped, the loss spikes and stays far above "
        "the baseline; clipped, it trains below it.",
        dict(task="adding", cells=("rnn_relu",), seq_len=50, weight_scale=1.2, init="identity", lr=1e-2,
             compare="clip", compare_values=("0", "1")),
        steps=600,
        claims=(Claim("RNN (relu), no clipping", "grad_log_ratio", ">=", 3, at_step=0),
                Claim("RNN (relu), no clipping", "growth_gap", "<=", 1, at_step=0),
                Claim("RNN (relu), no clipping", "loss_spike", ">=", 10),
                Claim("RNN (relu), no clipping", "loss_ratio", ">=", 2),
                Claim("RNN (relu), clip at 1", "loss_ratio", "<=", 1)),
    ),
    Preset(
        "Truncated BPTT", "gradient_flow",
        "Window k = 10 on the adding problem at T = 50: the first marked number sits up to 50 steps before the "
        "loss. Gradient terms that cross a window boundary are exactly zero, not small (× marks on the curve). "
        "Full BPTT and truncated BPTT of the same LSTM side by side.",
        dict(task="adding", cells=("lstm",), seq_len=50, lr=1e-2, batch_size=128, forget_bias=3.0,
             compare="truncation", compare_values=("0", "10")),
        steps=600,
        claims=(Claim("LSTM, truncated, k = 10", "window_leak", "<=", 0),
                Claim("LSTM, full BPTT", "loss_ratio", "<=", 0.5),
                Claim("LSTM, truncated, k = 10", "loss_ratio", ">=", 3, versus="LSTM, full BPTT")),
    ),
    Preset(
        "LSTM gates at work", "gates",
        "Copy memory: remember five symbols (from an alphabet of four), wait 10 steps, see the delimiter, play "
        "them back. The heatmaps are marked with the phases (symbols, delay, delimiter, recall): look for units "
        "whose forget gate stays near 1 through the delay, and gates that switch at the delimiter.",
        dict(task="copy_memory", cells=("lstm",), seq_len=10, recall=5, symbols=4, hidden_size=128, lr=1e-2,
             forget_bias=1.0),
        steps=900,
        claims=(Claim("LSTM", "metric", ">=", 0.9, note="accuracy on the recalled symbols; chance is 1/4"),),
    ),
    Preset(
        "Attention vs the context-vector bottleneck", "attention",
        "Reverse twelve digits. Without attention one vector must hold them all; with attention each output "
        "looks back at its own source position: the anti-diagonal.",
        dict(task="reverse", cells=("gru",), seq_len=12, hidden_size=64, lr=5e-3, attention="bahdanau",
             bidirectional=True),
        steps=200,
        claims=(Claim("GRU + Bahdanau attention", "metric", ">=", 0.9),
                Claim("GRU, no attention", "metric", "<=", 0.75),
                Claim("GRU + Bahdanau attention", "attention_mass", ">=", 0.6)),
    ),
    Preset(
        "Character language model", "hidden_states",
        "An LSTM reads Shakespeare one character at a time; sample from it and colour the text by a unit.",
        dict(task="char_lm", cells=("lstm",), seq_len=32, hidden_size=128, lr=1e-2, batch_size=32),
        steps=500,
        claims=(Claim("LSTM", "loss_ratio", "<=", 0.75, note="the baseline is the unigram model"),
                Claim("LSTM", "word_share", ">=", 0.5)),
    ),
]
PRESETS_BY_NAME = {p.name: p for p in PRESETS}


def find_preset(key: str) -> Preset:
    """A preset by its name (any case), its slug, or a unique prefix of its slug; ConfigError otherwise."""
    k = preset_slug(key)
    for p in PRESETS:
        if key.strip().lower() == p.name.lower() or k == preset_slug(p.name):
            return p
    hits = [p for p in PRESETS if k and preset_slug(p.name).startswith(k)]
    if len(hits) == 1:
        return hits[0]
    slugs = ", ".join(preset_slug(p.name) for p in PRESETS)
    what = "ambiguous" if hits else "unknown"
    raise ConfigError(f"{what} preset {key!r}; choose one of: {slugs}")


__all__ = ["PRESETS", "PRESETS_BY_NAME", "Preset", "find_preset", "preset_slug"]
