"""One self-contained HTML report of an experiment: the document behind `python -m rnnviz`.

    c = find_preset("truncated-bptt").controls()       # rnnviz.presets; or rnnviz.config.load_config(path)
    path = build_report(c, steps=300, out_dir="report", progress=lambda stage, frac, detail: ...)

`build_report` trains the runs the dashboard would train for these controls (rnnviz.experiment.Experiment:
the compared runs in lockstep), checks a preset's claims on them, then writes into `out_dir`:

    report.html       one file, opens offline: plotly.js embedded once, then every figure of the pages
    history.csv       run, step, loss, metric, grad_norm, grad_norm_clipped, baseline, metric_name
    grad_flow.csv     run, step, layer, direction, t, grad_norm        (every stored snapshot)
    gate_stats.csv    run, step, layer, direction, gate, mean, frac_low, frac_high
    layer_grads.csv   run, step, group, grad_norm
    decay.csv         analysis.decay_table of the latest snapshots
    attention.csv     run, step, example, dec, enc, weight             (seq2seq tasks)
    phase.csv         rnnviz.phase.sweep columns                       (phase=True)
    accuracy_vs_length.csv  length, attention, accuracy                (length_sweep=True)
    config.json       {"controls": {...}, "runs": ..., "notes": ..., "report": ...}: loads back with --config

Every figure div has a stable id (REPORT_FIGURES) so scripts and tests can find it. Nothing here imports
Streamlit.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.offline
import torch

import rnnviz
from rnnviz import analysis, figures
from rnnviz.config import CONTROL_LABELS, ConfigError, check_controls, reproduce_command
from rnnviz.controls import SEQ2SEQ, Controls, format_value
from rnnviz.experiment import Experiment
from rnnviz.presets import Preset
from rnnviz.tasks import make_task
from rnnviz.training import Trainer, accuracy_vs_length, sample_text

DEFAULT_STEPS = 300
MAX_STEPS = 100_000
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}
OPTIONAL_FRAMES = ("attention", "phase", "accuracy_vs_length")
LENGTH_SWEEP = dict(lengths=(4, 8, 12, 16, 24), attentions=("none", "luong_general"), steps=300)

# Figure ids in report.html; "<run>" is run_slug(label) of each run the figure is drawn for.
REPORT_FIGURES = {
    "fig-loss": "training loss per step, every run, with the trivial baseline",
    "fig-metric": "the task metric per step",
    "fig-layer-grads": "gradient norm per parameter group",
    "fig-grad-norm": "||dL/dh_t|| against t at the latest snapshot, with the tanh-RNN prediction",
    "fig-grad-flow-heatmap-<run>": "log10 ||dL/dh_t|| over training, one per run",
    "fig-global-grad-norm": "global gradient norm before and after clipping",
    "fig-gates-<run>": "gate activations of the latest snapshot, one per LSTM/GRU run",
    "fig-gate-saturation-<run>": "gate saturation over training, one per LSTM/GRU run",
    "fig-pca-<run>": "hidden-state trajectories on PC1-PC2, one per run",
    "fig-units-<run>": "h_t per unit and time step, one per run",
    "fig-attention": "attention weights of the attention run (seq2seq tasks)",
    "fig-accuracy-vs-length": "greedy accuracy vs length with and without attention (length_sweep)",
    "fig-phase": "vanishing / exploding phase diagram at initialisation (phase)",
}

Progress = Callable[[str, float, str], None]  # (stage, fraction of that stage done in [0, 1], detail)


# ----------------------------------------------------------------------------------------------------------
# Run summaries


def run_slug(label: str) -> str:
    """'RNN (tanh)' -> 'rnn-tanh', 'GRU + Bahdanau attention' -> 'gru-bahdanau-attention'."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "run"


def _slugs(labels) -> dict[str, str]:
    out, used = {}, set()
    for lab in labels:
        s, i = run_slug(lab), 2
        while s in used:
            s, i = f"{run_slug(lab)}-{i}", i + 1
        used.add(s)
        out[lab] = s
    return out


_STATUS = {"ready": "at initialisation", "training": "trained"}


def run_summary(runs: dict[str, Trainer], last: int = 20) -> pd.DataFrame:
    """One row per run: cell, status, steps, mean loss and metric over the last `last` steps, the baseline."""
    rows = []
    for label, t in runs.items():
        h = t.history_frame().tail(last)
        rate = t.steps / t.train_seconds if t.train_seconds > 0 else math.nan
        rows.append({"run": label, "cell": t.model_cfg.cell, "attention": t.model_cfg.attention,
                     "steps": t.steps, "status": t.message or _STATUS.get(t.status, t.status),
                     f"loss (mean of last {last})": float(h["loss"].mean()) if len(h) else math.nan,
                     f"{t.task.metric_name} (mean of last {last})": float(h["metric"].mean()) if len(h) else math.nan,
                     "baseline loss": t.task.baseline, "train seconds": round(t.train_seconds, 2),
                     "steps / s": round(rate, 1) if math.isfinite(rate) else math.nan})
    df = pd.DataFrame(rows)
    if len(df) and all(t.task.kind != "seq2seq" for t in runs.values()):
        df = df.drop(columns="attention")
    return df


# ----------------------------------------------------------------------------------------------------------
# The HTML document


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1a1a1a;
       line-height: 1.5; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 2rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 2px solid #e5e5e5; }
h3 { margin-top: 1.8rem; } .caption { color: #555; font-size: 0.95rem; max-width: 70rem; }
.meta { color: #555; } code, pre { background: #f4f4f4; border-radius: 4px; padding: 0.1rem 0.3rem; }
pre { padding: 0.6rem; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } .warn { background: #fff4e5; border-left: 4px solid #e69f00; padding: 0.5rem 1rem; }
.bad { background: #fdecea; border-left: 4px solid #d55e00; padding: 0.5rem 1rem; }
.ok { background: #eaf5ee; border-left: 4px solid #009e73; padding: 0.5rem 1rem; }
nav ul { columns: 2; } .figure { margin: 0.5rem 0 1.5rem; }
"""


@dataclass
class _Doc:
    """Collects sections of report.html; figures get plotly.js from the single <script> in <head>."""

    title: str
    parts: list[str] = field(default_factory=list)
    toc: list[tuple[str, str]] = field(default_factory=list)
    figure_ids: list[str] = field(default_factory=list)

    def section(self, sid: str, heading: str) -> None:
        if self.toc:
            self.parts.append("</section>")
        self.toc.append((sid, heading))
        self.parts.append(f'<section id="{sid}"><h2>{html.escape(heading)}</h2>')

    def h3(self, text: str) -> None:
        self.parts.append(f"<h3>{html.escape(text)}</h3>")

    def p(self, text: str, cls: str | None = None, raw: bool = False) -> None:
        body = text if raw else html.escape(text)
        self.parts.append(f'<p class="{cls}">{body}</p>' if cls else f"<p>{body}</p>")

    def caption(self, text: str) -> None:
        self.p(text, "caption")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def table(self, df: pd.DataFrame, floatfmt: str = "{:.4g}") -> None:
        self.parts.append(df.to_html(index=False, escape=True, na_rep="–", border=0,
                                     float_format=lambda v: floatfmt.format(v)))

    def figure(self, fid: str, fig) -> None:
        if fid in self.figure_ids:
            raise ValueError(f"duplicate figure id {fid!r}")
        self.figure_ids.append(fid)
        height = fig.layout.height or 520
        self.parts.append('<div class="figure">' + fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=fid, config=PLOTLY_CONFIG,
            default_height=f"{height}px", default_width="100%") + "</div>")

    def render(self, header: str) -> str:
        body = "\n".join(self.parts) + ("</section>" if self.toc else "")
        toc = "".join(f'<li><a href="#{sid}">{html.escape(h)}</a></li>' for sid, h in self.toc)
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{html.escape(self.title)}</title>\n<style>{CSS}</style>\n"
                f'<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: "local"}};</script>\n'
                f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>\n'
                f"</head>\n<body><main>\n{header}\n<nav><strong>Contents</strong><ul>{toc}</ul></nav>\n"
                f"{body}\n</main></body>\n</html>\n")


# ----------------------------------------------------------------------------------------------------------
# The report


def build_report(controls: Controls, steps: int = DEFAULT_STEPS, out_dir: str | Path = "rnnviz-report",
                 progress: Progress | None = None, *, phase: bool = False, length_sweep: bool = False,
                 text: str | None = None, title: str | None = None, preset: Preset | None = None,
                 command: str | None = None) -> Path:
    """Train the runs of `controls` for `steps` steps and write report.html plus the CSVs and config.json into
    out_dir (created if needed; our files in it are overwritten). Returns the path of report.html.

    progress(stage, fraction, detail) is called while working (stages "training", "length sweep",
    "phase diagram", "writing"). phase: add a phase diagram on a small grid around these settings.
    length_sweep: seq2seq only, train fresh models per length with and without attention (slow: ~10 models).
    text: char_lm training text. title / preset / command: shown in the report's header.
    Raises ConfigError for settings that cannot run (checked before any training).
    """
    check_controls(controls)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be an integer in [0, {MAX_STEPS}], got {steps!r}")
    if length_sweep and controls.task not in SEQ2SEQ:
        raise ConfigError(f"the length sweep needs a seq2seq task ({', '.join(SEQ2SEQ)}), got {controls.task!r}")
    if text is not None:
        if controls.task != "char_lm":
            raise ConfigError(f"a training text is for the char_lm task, got task {controls.task!r}")
        try:
            make_task("char_lm", controls.seq_len, text=text)
        except ValueError as exc:
            raise ConfigError(f"training text: {exc}") from None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    started = _dt.datetime.now().astimezone()
    reproduce = reproduce_command(controls, steps, ["--text", "YOUR_TEXT_FILE"] if text is not None else None)
    exp = Experiment(controls, text=text)
    t0 = time.perf_counter()
    exp.step(steps, progress=progress)
    exp.snapshot()
    train_seconds = time.perf_counter() - t0
    if progress is not None:
        progress("training", 1.0, f"step {exp.steps}/{steps} · {train_seconds:.1f} s")
    runs = exp.runs
    claims = preset.check(exp) if preset is not None and controls == preset.controls() else None

    frames = {"history": analysis.history_frames(runs), "grad_flow": analysis.grad_flow_frames(runs),
              "gate_stats": analysis.gate_stats_frames(runs), "layer_grads": analysis.layer_grad_frames(runs),
              "decay": analysis.decay_table(runs)}
    if controls.task in SEQ2SEQ:
        frames["attention"] = _attention_all(runs)
    acc = None
    if length_sweep:
        first = next(iter(runs.values()))
        mc, tc = first.model_cfg, first.cfg
        acc = accuracy_vs_length(mc, tc, progress=(lambda f: progress("length sweep", float(f), "")) if progress
                                 else None, **LENGTH_SWEEP)
        frames["accuracy_vs_length"] = acc
    phase_df = phase_line = phase_cfg = None
    if phase:
        from rnnviz.phase import boundary, sweep

        phase_cfg = phase_config(controls)
        phase_df = sweep(phase_cfg, progress=(lambda f: progress("phase diagram", min(float(f), 1.0), ""))
                         if progress else None)
        phase_line = boundary(phase_cfg)
        frames["phase"] = phase_df

    if progress is not None:
        progress("writing", 0.0, str(out))
    for name, df in frames.items():
        df.to_csv(out / f"{name}.csv", index=False)
    for name in OPTIONAL_FRAMES:  # an older report's files in the same folder would not match this one
        if name not in frames:
            (out / f"{name}.csv").unlink(missing_ok=True)
    meta = {"rnnviz_version": rnnviz.__version__, "steps": steps, "created": started.isoformat(timespec="seconds"),
            "train_seconds": round(train_seconds, 3), "preset": preset.name if preset else None,
            "command": command, "reproduce": reproduce,
            "phase": phase_cfg.to_dict() if phase_cfg else None, "files": sorted(f"{n}.csv" for n in frames)}
    cfg = {"controls": {f.name: getattr(controls, f.name) for f in fields(Controls)},
           "runs": {label: t.config_dict() for label, t in runs.items()},
           "notes": {label: t.notes() for label, t in runs.items()},
           "status": {label: {"status": t.status, "message": t.message, "steps": t.steps} for label, t in runs.items()},
           "report": meta}
    (out / "config.json").write_text(json.dumps(cfg, indent=2, default=list), encoding="utf-8")

    doc = _Doc(title or (f"rnnviz report — {preset.name}" if preset else "rnnviz report"))
    header = _header(doc.title, controls, runs, steps, preset, command, started, train_seconds, reproduce, claims)
    _training_section(doc, runs, frames)
    _gradient_section(doc, runs, frames, controls)
    _gates_section(doc, runs)
    _hidden_section(doc, runs)
    if controls.task in SEQ2SEQ:
        _attention_section(doc, runs, acc)
    if phase_df is not None:
        _phase_section(doc, phase_cfg, phase_df, phase_line)
    _config_section(doc, controls, runs, steps)
    _files_section(doc, frames)
    path = out / "report.html"
    path.write_text(doc.render(header), encoding="utf-8")
    if progress is not None:
        progress("writing", 1.0, str(path))
    return path


def phase_config(c: Controls):
    """The small phase-diagram grid of a report: c's cells, hidden size and init; 16 weight scales in
    [0.25, 2] x 12 sequence lengths in [5, 500], 2 seeds."""
    from rnnviz.phase import PhaseConfig

    return PhaseConfig(cells=tuple(c.cells), hidden_size=c.hidden_size, init=c.init,
                       scales=tuple(round(float(s), 4) for s in np.linspace(0.25, 2.0, 16)),
                       seq_lens=tuple(int(t) for t in np.unique(np.round(np.geomspace(5, 500, 12)).astype(int))),
                       seeds=(0, 1))


def _attention_all(runs: dict[str, Trainer]) -> pd.DataFrame:
    """run, step, example, dec, enc, weight: the latest snapshot's attention of every probe sequence."""
    parts = []
    for label, t in runs.items():
        s = t.latest
        if s is None or s.attention is None:
            continue
        for b in range(s.attention.shape[0]):
            parts.append(analysis.attention_frame(s.attention, b).assign(run=label, step=s.step, example=b))
    cols = ["run", "step", "example", "dec", "enc", "weight"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def _header(title, c, runs, steps, preset, command, started, seconds, reproduce, claims) -> str:
    e = html.escape
    t0 = next(iter(runs.values()))
    lines = [f"<h1>{e(title)}</h1>"]
    if preset is not None:
        lines.append(f"<p><strong>Preset: {e(preset.name)}.</strong> {e(preset.blurb)} {e(preset.step0)}</p>")
    if preset is not None and claims is None:
        lines.append('<p class="warn">The preset\'s settings were changed, so its claims (about its own settings) '
                     "are not checked here.</p>")
    if claims:
        rows = [{"claim": r.claim.describe(t0.task), "measured": r.value,
                 "holds": ("yes" if r.holds else "NO") if r.checked else f"not yet (needs {preset.steps} steps)"}
                for r in claims]
        lines.append(f"<p><strong>The preset's claims</strong>, checked on these runs after {steps} steps "
                     f"(the preset's N is {preset.steps}):</p>")
        lines.append(pd.DataFrame(rows).to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.3g}"))
    lines.append(f'<p class="meta">rnnviz {e(rnnviz.__version__)} · {e(started.strftime("%Y-%m-%d %H:%M %Z"))} · '
                 f"task <code>{e(c.task)}</code> ({e(t0.task.kind.replace('_', '-'))}, T = {c.seq_len}) · "
                 f"{steps} training steps requested · {seconds:.1f} s of training</p>")
    diverged = [(lab, t) for lab, t in runs.items() if t.diverged]
    if diverged:
        msgs = "<br>".join(f"<strong>{e(lab)}</strong>: {e(t.message)}" for lab, t in diverged)
        lines.append(f'<div class="bad"><p>{msgs}<br>The report shows everything up to the divergence.</p></div>')
    else:
        lines.append(f'<div class="ok"><p>All runs trained {steps} steps without diverging.</p></div>')
    other = [(lab, t.message) for lab, t in runs.items() if t.message and not t.diverged]
    for lab, msg in other:
        lines.append(f'<p class="warn"><strong>{e(lab)}</strong>: {e(msg)}</p>')
    notes = sorted({n for t in runs.values() for n in t.notes()})
    if notes:
        lines.append('<p class="warn">Note: ' + e("; ".join(notes)) + ".</p>")
    if (c.task in SEQ2SEQ or c.compare != "cells") and len(c.cells) > 1:
        lines.append(f'<p class="warn">These runs compare {"attention" if c.compare == "cells" else e(c.compare)}, '
                     f"so they train the first cell only ({e(t0.model_cfg.cell)}).</p>")
    summary = run_summary(runs)
    lines.append(summary.to_html(index=False, escape=True, na_rep="–", border=0, float_format=lambda v: f"{v:.4g}"))
    if command:
        lines.append(f"<p class=\"meta\">Made with <code>{e(command)}</code></p>")
    lines.append(f"<p class=\"meta\">Same runs again: <code>{e(reproduce)}</code> "
                 "(seeded: the same numbers on the same machine and PyTorch version).</p>")
    return "\n".join(lines)


def _training_section(doc: _Doc, runs, frames) -> None:
    t0 = next(iter(runs.values()))
    hist = frames["history"]
    doc.section("sec-training", "Training curves")
    doc.h3(f"Loss — {t0.task.name}, trivial baseline {t0.task.baseline:.4g}")
    note = t0.task.baseline_note.strip()
    note += "" if note.endswith((".", "!", "?")) else "."
    doc.caption(f"Dashed: {note} A model that does not beat it has learned nothing useful.")
    doc.figure("fig-loss", figures.loss_curves(hist))
    doc.h3(t0.task.metric_name)
    if t0.task.kind == "seq2seq":
        doc.caption("Token accuracy under teacher forcing, with and without attention.")
    doc.figure("fig-metric", figures.loss_curves(hist, metric=True))
    doc.h3("Gradient norm per layer")
    doc.caption("‖∂L/∂θ‖ of each group of parameters per step (before clipping).")
    doc.figure("fig-layer-grads", figures.layer_grad_norms(frames["layer_grads"]))


def _gradient_section(doc: _Doc, runs, frames, c: Controls) -> None:
    gf = frames["grad_flow"]
    doc.section("sec-gradient-flow", "Gradient flow through time")
    doc.p("How much does the loss at the end care about the hidden state at step t? That is ‖∂L/∂h_t‖. "
          "Backpropagation through time multiplies one Jacobian per step, so the norm changes geometrically: it "
          "vanishes when the recurrent Jacobian's norm is below 1 and explodes above it. For a tanh RNN, "
          "‖∂L/∂h_t‖ ≤ σ_max(W_hh)^(T−1−t) ‖∂L/∂h_{T−1}‖; LSTM and GRU add a gated, additive path whose factor per "
          "step is the forget/update gate, not W_hh. With a truncation window k, the terms crossing a window "
          "boundary are exactly zero.")
    doc.h3("‖∂L/∂h_t‖ at each time step (probe batch, loss at the end of the sequence)")
    doc.caption("Read it right to left: the loss sits at the last step; each step back multiplies by one Jacobian. "
                "A straight line on this log axis is geometric decay or growth. Dashed: the decay σ_max(W_hh)^(T−1−t) "
                "the recurrent matrix predicts for a tanh RNN.")
    doc.figure("fig-grad-norm", figures.grad_norm_vs_time(gf, predicted=analysis.predicted_frames(runs)))
    table = frames["decay"]
    if len(table):
        doc.caption("Measured: least-squares slope of log10 ‖∂L/∂h_t‖ per step (layer 0). For a tanh RNN it sits at "
                    "or below log10 σ_max; the spectral radius ρ sets the long-run rate.")
        doc.table(table)
    doc.h3("How gradient flow changes while the model learns")
    doc.caption("Each row is one snapshot (training step), each column a time step; colour is log10 ‖∂L/∂h_t‖.")
    for label, slug in _slugs(runs).items():
        doc.figure(f"fig-grad-flow-heatmap-{slug}", figures.grad_flow_heatmap(gf, run=label))
    doc.h3("Global gradient norm, before and after clipping")
    doc.caption("Clipping (Pascanu et al. 2013): if ‖g‖ ≥ threshold, g ← threshold · g / ‖g‖. The dashed line is "
                "the threshold; points above it were rescaled.")
    doc.figure("fig-global-grad-norm", figures.global_grad_norm(frames["history"], clip=c.clip or None))


def _gates_section(doc: _Doc, runs) -> None:
    doc.section("sec-gates", "Gates at work")
    doc.p("Gated cells decide, per unit and per step, what to keep. LSTM: input i, forget f, output o (sigmoids in "
          "[0, 1]) and the candidate g (tanh): c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t, h_t = o_t ⊙ tanh(c_t). The cell "
          "path is additive: while f ≈ 1, information and gradient pass through unchanged. GRU: reset r, update z, "
          "new n: h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}.")
    slugs = _slugs(runs)
    gated = {label: t for label, t in runs.items() if t.model_cfg.cell in ("lstm", "gru")}
    if not gated:
        doc.p("The selected cells have no gates (choose LSTM or GRU).", "warn")
        return
    gs = analysis.gate_stats_frames(gated)
    for label, t in gated.items():
        snap = t.latest
        doc.h3(f"{label}: gate activations, time × unit" + (f" (snapshot at step {snap.step})" if snap else ""))
        if snap is None:
            doc.p("No snapshot (training diverged before one was taken).", "warn")
            continue
        doc.caption("First probe sequence, layer 0. Sigmoid gates on a 0–1 scale (white → dark); tanh quantities "
                    "(candidate, cell state, hidden) on a diverging −1…1 scale. A forget-gate row that stays near 1 "
                    "is a unit holding its memory.")
        doc.figure(f"fig-gates-{slugs[label]}", figures.gate_heatmaps(analysis.gate_frame(snap, 0, 0, 0)))
        doc.h3(f"{label}: saturation over training")
        doc.caption("Fraction of (unit, step) values below 0.05 or above 0.95 on the probe batch. Saturated gates "
                    "pass almost no gradient through their own derivative σ'(a) = σ(a)(1 − σ(a)).")
        doc.figure(f"fig-gate-saturation-{slugs[label]}", figures.gate_saturation(gs[gs.run == label]))


def _hidden_section(doc: _Doc, runs) -> None:
    doc.section("sec-hidden-states", "Hidden-state trajectories")
    doc.p("Each sequence traces a path through hidden-state space as the RNN reads it. h_t is projected onto its "
          "first principal components, with the basis fitted once over all stored snapshots of the run, so motion "
          "between snapshots is the model changing, not the axes.")
    slugs = _slugs(runs)
    for label, t in runs.items():
        snap = t.latest
        if snap is None:
            doc.p(f"{label}: no snapshot (training diverged before one was taken).", "warn")
            continue
        L, _, _, _, H = snap.hidden.shape
        layer = L - 1
        if not bool(torch.isfinite(snap.hidden[layer, 0].float()).all()):
            doc.p(f"{label}: the hidden states of the snapshot at step {snap.step} are not finite (they overflowed), "
                  "so there is no PCA or unit heatmap.", "warn")
            continue
        finite = [s for s in t.snapshots if bool(torch.isfinite(s.hidden[layer, 0].float()).all())]
        basis = analysis.pca_basis(finite, layer=layer, direction=0)  # the overflowed ones cannot join the fit
        pf = analysis.pca_frame(snap, basis, layer=layer, direction=0, labels=analysis.probe_labels(t))
        ev = analysis.explained_variance(snap, basis, layer=layer, direction=0)
        doc.h3(f"{label}: PCA of h_t (snapshot at step {snap.step}, layer {layer})")
        doc.figure(f"fig-pca-{slugs[label]}", figures.pca_trajectories(pf, dims=2, color="t", explained=ev))
        uf = analysis.unit_frame(snap, layer=layer, direction=0, example=0)
        doc.h3(f"{label}: units × time")
        doc.caption("h_t of every unit for the first probe sequence: rows are units, columns time steps.")
        doc.figure(f"fig-units-{slugs[label]}", figures.unit_heatmap(uf))
        if t.task.name in ("char_lm", "hello"):
            _char_text(doc, t, uf, H)


def _char_text(doc: _Doc, t: Trainer, uf: pd.DataFrame, H: int) -> None:
    """The probe text coloured by its most active unit, and a sample from the model."""
    stds = uf.groupby("unit")["value"].std().reindex(range(H)).fillna(0.0)
    unit = int(stds.to_numpy().argmax())
    chars = list(t.task.decode(t.probe.x[0]))
    vals = uf[uf.unit == unit].sort_values("t").value.tolist()
    doc.h3(f"The text, coloured by unit {unit}'s activation (red −1 … blue +1)")
    doc.caption("The unit whose activation varies most along this sequence.")
    doc.raw(figures.text_activation_html(chars, vals))
    try:
        sample = sample_text(t, "", 300, temperature=0.8, seed=0)
    except ValueError as exc:
        doc.p(f"No sample: {exc}", "warn")
        return
    doc.h3("A sample from the character model (temperature 0.8, seed 0)")
    doc.raw(f"<pre>{html.escape(sample)}</pre>")


def _attention_section(doc: _Doc, runs, acc: pd.DataFrame | None) -> None:
    doc.section("sec-attention", "Attention vs the context-vector bottleneck")
    doc.p("A plain encoder–decoder squeezes the whole source into one vector (the encoder's last state) and the "
          "decoder must unpack everything from it. Attention lets each decoder step take a weighted average of all "
          "encoder states: α_ij = softmax_j(score(s, h_j)), c_i = Σ_j α_ij h_j. Bahdanau scores with the previous "
          "decoder state s_{i−1} (additive: vᵀ tanh(W s + U h_j)); Luong with the current one (dot or general "
          "sᵀ W h_j). The training curves above compare the two runs.")
    att = {label: t for label, t in runs.items() if t.model.attention != "none"}
    label, t = next(iter(att.items()))
    snap = t.latest
    if snap is None or snap.attention is None:
        doc.p("No attention snapshot (training diverged before one was taken).", "warn")
    else:
        src = [t.task.itos[i] for i in t.probe.x[0].tolist()]
        tgt = [t.task.itos[i] for i in t.probe.y[0].tolist()]
        ideal = {"reverse": "anti-diagonal", "copy": "diagonal"}.get(t.task.name)
        doc.h3(f"Where each output step looks — {label}, snapshot at step {snap.step}")
        doc.caption("Rows: decoder steps (the target token each should produce); columns: encoder steps (source "
                    "tokens). Each row sums to 1. Dotted: the alignment the task calls for. A decoder that knows the "
                    "token it just emitted may look one step late, at the previous target, whose encoder state still "
                    "remembers this one. attention.csv has every probe sequence.")
        doc.figure("fig-attention", figures.attention_heatmap(analysis.attention_frame(snap.attention, 0), src, tgt,
                                                              ideal=ideal))
    if acc is not None:
        doc.h3("Accuracy vs sequence length (greedy decoding, fresh models per length)")
        doc.caption(f"A small model per length with and without attention ({LENGTH_SWEEP['steps']} steps each), "
                    "decoded without teacher forcing. Without attention accuracy falls as the sequence outgrows the "
                    "one context vector.")
        doc.figure("fig-accuracy-vs-length", figures.accuracy_vs_length(acc))


def _phase_section(doc: _Doc, cfg, df: pd.DataFrame, line: pd.DataFrame) -> None:
    doc.section("sec-phase", "Gradient-flow phase diagram (at initialisation)")
    doc.p("Each cell is a freshly initialised network (no training): colour is log10(‖∂L/∂h_0‖ / ‖∂L/∂h_{T−1}‖) for "
          "a loss at the last step, averaged over seeds. Blue: the gradient from the end has vanished by the start; "
          "red: it exploded. For a tanh RNN with orthogonal W_hh = s·Q the boundary is s = 1 (σ_max = 1, Pascanu et "
          "al. 2013), drawn as a line; LSTM and GRU move it, because their gated additive paths are not multiplied "
          "by W_hh.")
    doc.caption(f"{len(df)} grid cells: {len(cfg.scales)} weight scales × {len(cfg.seq_lens)} sequence lengths, "
                f"{len(cfg.seeds)} seeds each; hidden size {cfg.hidden_size}, {cfg.init} init, noise input.")
    doc.figure("fig-phase", figures.phase_diagram(df, boundary=line))


def _config_section(doc: _Doc, c: Controls, runs, steps: int) -> None:
    doc.section("sec-config", "Configuration")
    default = Controls()
    rows = []
    for f in fields(Controls):
        v = getattr(c, f.name)
        rows.append({"setting": CONTROL_LABELS.get(f.name, f.name), "key": f.name,
                     "value": ",".join(v) if isinstance(v, tuple) else format_value(v),
                     "default": "" if v == getattr(default, f.name) else "changed"})
    doc.caption(f"The dashboard's controls (config.json loads back with --config), {steps} training steps.")
    doc.table(pd.DataFrame(rows))
    doc.h3("Per run: model and training configuration")
    for label, t in runs.items():
        cfg = t.config_dict()
        doc.raw(f"<p><strong>{html.escape(label)}</strong></p><pre>"
                f"{html.escape(json.dumps(cfg, default=list))}</pre>")


def _files_section(doc: _Doc, frames: dict[str, pd.DataFrame]) -> None:
    doc.section("sec-data", "Data files")
    doc.caption("Next to this report, one tidy CSV per frame (one row per observation) and config.json.")
    rows = [{"file": f"{name}.csv", "rows": len(df), "columns": ", ".join(map(str, df.columns))}
            for name, df in frames.items()]
    rows.append({"file": "config.json", "rows": "", "columns": "controls, runs, notes, status, report"})
    doc.table(pd.DataFrame(rows))


__all__ = ["DEFAULT_STEPS", "MAX_STEPS", "REPORT_FIGURES", "build_report", "phase_config", "run_slug", "run_summary"]
