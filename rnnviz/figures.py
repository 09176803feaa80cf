"""Pure functions: tidy DataFrame (rnnviz.analysis) -> plotly.graph_objects.Figure. Fine in a notebook too.

    fig = grad_norm_vs_time(analysis.grad_flow_frames(runs), predicted=analysis.predicted_frames(runs))
    fig.show()

Made for a projector: template "plotly_white"; every chart text (titles, tick labels, axis titles, legends,
hover labels, colour bars, panel titles) has an explicit size >= 15 px and a dark colour (TEXT, luminance
0.01), so it also holds under Streamlit's chart theme, which otherwise draws ticks at 12 px in grey;
`presentation(fig)` enlarges all of it for a lecture hall. Log axes are labelled at decades only. Titles say
what is plotted, axis titles carry symbols and units. One colour per run in every figure (run_colors, Okabe &
Ito's colour-blind-safe palette); the layers and directions of one run differ by dash and marker symbol and
are named in the legend ("LSTM · layer 1, backward"). Colour-blind-safe colour scales (Viridis, Blues, RdBu).
Charts are HEIGHT px tall with tight margins, so the main chart of a page fits a 1280x800 screen. Heatmaps
are go.Heatmap strided to at most MAX_CELLS x MAX_CELLS. Every function returns a figure, with a "no data
yet" note on empty input.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
import zlib

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
RUN_COLORS = {"RNN (tanh)": "#D55E00", "RNN (relu)": "#E69F00", "LSTM": "#0072B2", "GRU": "#009E73"}
# other labels (compared variants of one cell, attention runs): dark enough for a thin line on a projector
# (no orange #E69F00 nor wine #882255: too near vermillion and reddish purple, CIELAB ΔE ~ 30)
FALLBACK_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000"]
GATE_COLORS = {"input": "#0072B2", "forget": "#D55E00", "cell": "#009E73", "output": "#CC79A7",
               "reset": "#E69F00", "update": "#56B4E9", "new": "#009E73"}
SIGMOID_GATES = ("input", "forget", "output", "reset", "update")  # [0, 1]; everything else is tanh-like
GATE_TITLES = {"input": "input gate i_t", "forget": "forget gate f_t", "cell": "candidate g_t",
               "output": "output gate o_t", "reset": "reset gate r_t", "update": "update gate z_t",
               "new": "new state n_t", "cell state": "cell state c_t", "hidden": "hidden state h_t"}
CELL_NAMES = {"rnn_tanh": "RNN (tanh)", "rnn_relu": "RNN (relu)", "lstm": "LSTM", "gru": "GRU"}
ATTENTION_NAMES = {"none": "no attention (fixed context vector)", "bahdanau": "Bahdanau (additive)",
                   "luong_dot": "Luong (dot)", "luong_general": "Luong (general)"}
ATTENTION_COLORS = {"none": "#D55E00", "bahdanau": "#009E73", "luong_dot": "#CC79A7", "luong_general": "#0072B2"}
LABEL_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255"]
DASHES = ["solid", "dot", "dashdot", "longdashdot", "2px,6px", "12px,4px,2px,4px", "8px,8px", "1px,3px"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "triangle-down", "pentagon"]
EMPTY = "no data yet — press Start or Step"
FONT_SIZE = 16  # tick labels, axis titles, legends, hover; titles FONT_SIZE + 6, notes FONT_SIZE - 1
PRESENTATION_FONT_SIZE = 20  # presentation(fig): the same texts, scaled by 20/16
DECADE_LABELS, PRESENTATION_DECADE_LABELS = 8, 5  # at most this many labels on a log axis (one every k decades)
TEXT = "#1a1a1a"  # every chart text: relative luminance 0.010 on white
HEIGHT = 400  # px: a page's main chart fits below its status on a 1280x800 screen
NOTE_CHARS = 50  # a subtitle line: the parts of a note (" · ") are packed into lines this long, for narrow columns
MARKERS_SHOWN = 14  # at most this many markers per line (plotly's marker.maxdisplayed): symbols stay legible
MAX_CELLS = 300  # heatmaps: at most this many cells along each axis
ZERO = "exactly 0 (cut by truncation)"


# ----------------------------------------------------------------------------------------------------------
# Shared pieces


def run_colors(labels) -> dict[str, str]:
    """label -> colour. The four cells get RUN_COLORS; any other label a FALLBACK_COLORS entry chosen by a
    hash of the label (the same in every figure and session), the next free one on a clash within `labels`."""
    labels = list(dict.fromkeys(str(v) for v in labels))
    out = {lab: RUN_COLORS[lab] for lab in labels if lab in RUN_COLORS}
    used = set(out.values())
    n = len(FALLBACK_COLORS)
    for lab in sorted(set(labels) - set(out)):
        i = zlib.crc32(lab.encode()) % n
        for j in range(n):
            if FALLBACK_COLORS[(i + j) % n] not in used:
                i = (i + j) % n
                break
        out[lab] = FALLBACK_COLORS[i]
        used.add(out[lab])
    return out


# plotly's own "plotly_white", as a plain dict: valid by construction, so it is not validated again per figure
_TEMPLATE = pio.templates["plotly_white"].to_plotly_json()


def _figure(*traces) -> go.Figure:
    """A figure on the plotly_white template. Validating the template took about three quarters of the time to
    build a small figure (a live page builds several per tick), so only the template skips validation:
    traces and layout added afterwards are validated as usual."""
    fig = go.Figure(layout={"template": _TEMPLATE}, _validate=False)
    fig._validate = True
    if traces:
        fig.add_traces(list(traces))
    return fig


_AXIS = re.compile(r"[xy]axis\d*")


def _font(size: float) -> dict:
    return {"size": size, "color": TEXT}


def _layout(fig: go.Figure, title: str, x: str | None = None, y: str | None = None, note: str | None = None,
            **kw) -> go.Figure:
    """Title (+ note as subtitle), projector-sized dark fonts on every text, axis titles, HEIGHT px and tight
    margins (axes, legend and colour bars push them as far as they need); `kw`: more layout, merged in.

    Every text gets its size and colour explicitly: Streamlit's chart theme writes its own (12 px, grey) into
    the template, which only explicit values override."""
    size = FONT_SIZE
    note = _wrap(note) if note else note
    # larger than log axes' 10^k labels (plotly draws them at 1.25x); at the top, the note below it, and a top
    # margin that holds both (plotly's title.automargin leaves a subtitle out)
    t = {"text": title, "font": _font(size + 6), "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 8}}
    if note:
        t["subtitle"] = {"text": note, "font": _font(size - 1)}
    base = {"title": t, "font": _font(size), "hoverlabel": {"font": _font(size), "bgcolor": "white"},
            "legend": {"font": _font(size), "orientation": "h", "x": 0, "xanchor": "left", "y": 0,
                       "yref": "container", "yanchor": "bottom"},
            "margin": {"t": _top_margin(note), "b": 10, "l": 10, "r": 10},
            "height": HEIGHT}
    for k, v in base.items():  # plain nested values: assignment gives what update_layout gives, at 1/7 of the cost
        fig.layout[k] = v
    if kw:  # anything else (colour scales by name, magic_underscores) needs update_layout's coercion
        fig.update_layout(**kw)
    # the rest is assigned too, each axis / colour axis once, merged with what it has (as update_layout would);
    # a new font dict each time: plotly keeps the dicts it is given, so a shared one would change in many places
    props = fig.layout._props
    for k in sorted({"xaxis", "yaxis"} | {k for k in props if _AXIS.fullmatch(k)}):
        cur = props.get(k, {})
        t = {**cur.get("title", {}), "font": _font(size)}
        if (x if k[0] == "x" else y) is not None:
            t["text"] = x if k[0] == "x" else y
        fig.layout[k] = {**cur, "tickfont": _font(size), "title": t, "automargin": True}
    for k in [k for k in props if k.startswith("coloraxis")]:
        cur = props[k]
        fig.layout[k] = {**cur, "colorbar": _bar_fonts(cur.get("colorbar", {}), size)}
    for tr in fig.data:
        if tr.type == "heatmap":
            tr.colorbar = _bar_fonts(tr.colorbar.to_plotly_json(), size)
    if props.get("annotations"):  # subplot titles
        fig.layout.annotations = [{**a, "font": {**a.get("font", {}), **_font(size)}} for a in props["annotations"]]
    return fig


def _top_margin(note: str | None, scale: float = 1.0) -> int:
    """px above the plot for the title (FONT_SIZE + 6 px, 8 px from the top) and each line of the note."""
    lines = note.count("<br>") + 1 if note else 0
    return round((50 + 21 * lines) * scale)


def _wrap(note: str, width: int = NOTE_CHARS) -> str:
    """A note's parts (separated by " · ") packed greedily into lines of at most NOTE_CHARS characters, joined
    by <br>: plotly does not wrap a subtitle, and a chart may be one of two columns. Lines already broken with
    <br> stay broken."""
    lines = []
    for given in note.split("<br>"):
        cur = ""
        for part in given.split(" · "):
            if cur and len(cur) + 3 + len(part) > width:
                lines.append(cur)
                cur = part
            else:
                cur = f"{cur} · {part}" if cur else part
        lines.append(cur)
    return "<br>".join(lines)


def _bar_fonts(cb: dict, size: float) -> dict:
    return {**cb, "tickfont": _font(size), "title": {**cb.get("title", {}), "font": _font(size)}}


def presentation(fig: go.Figure, size: float = PRESENTATION_FONT_SIZE) -> go.Figure:
    """For a projector: every text of a figure from this module (titles, notes, ticks, axis titles, legends,
    hover labels, colour bars, panel titles, text on lines) scaled by size / FONT_SIZE (20 / 16 by default), the
    note re-wrapped into shorter lines, and the top margin grown to hold them. The height stays what it was, so
    the chart still fits the screen (the plot area gives the room; in presentation mode the pages also hide
    their long explanations).

    Restyles `fig` itself and returns it: copying a figure costs more than building one, and every function
    here builds a new one. Calling it again on the same figure changes nothing (the scale is kept in
    layout.meta)."""
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    f = size / (FONT_SIZE * meta.get("rnnviz_text_scale", 1.0))
    if f == 1:
        return fig
    for k, v in list(fig.layout._props.items()):  # the properties that are set (not the 90 valid names)
        if k != "template" and isinstance(v, dict | list) and (new := _scale_fonts({k: v}, f)[k]) != v:
            fig.layout[k] = new
    sub = fig.layout.title.subtitle.text
    if sub:  # shorter lines for the larger letters
        lines = sub.count("<br>")
        fig.layout.title.subtitle.text = sub = _wrap(sub.replace("<br>", " · "), round(NOTE_CHARS * FONT_SIZE / size))
        if fig.layout.margin.t is not None:
            fig.layout.margin.t += 21 * (sub.count("<br>") - lines) * size / FONT_SIZE / f
    if fig.layout.margin.t is not None:
        fig.layout.margin.t = round(fig.layout.margin.t * f)
    for k, ax in list(fig.layout._props.items()):  # log axes: fewer decade labels, as each is taller now
        if _AXIS.fullmatch(k) and ax.get("type") == "log" and ax.get("range") and isinstance(ax.get("dtick"), int):
            lo, hi = ax["range"]
            fig.layout[k].dtick = max(ax["dtick"], math.ceil((hi - lo) / PRESENTATION_DECADE_LABELS))
    for tr in fig.data:
        for prop in ("textfont", "colorbar"):
            if prop in tr and (v := tr._props.get(prop)) and (new := _scale_fonts({prop: v}, f)[prop]) != v:
                tr[prop] = new
    fig.layout.meta = {**meta, "rnnviz_text_scale": size / FONT_SIZE}
    return fig


def _scale_fonts(d, f: float):
    """A copy of a plotly property value (nested dicts and lists) with the size of every font in it (a dict
    under a key that names a font: font, tickfont, textfont, ...) multiplied by f."""
    if isinstance(d, dict):
        return {k: {**v, "size": v["size"] * f} if "font" in k and isinstance(v, dict)
                and isinstance(v.get("size"), int | float) else _scale_fonts(v, f) for k, v in d.items()}
    if isinstance(d, list):
        return [_scale_fonts(v, f) for v in d]
    return d


def _decades(lo: float, hi: float) -> tuple[float, float]:
    """A log10 axis range around [lo, hi] (log10 units): padded by 5 % (at least 0.1 decade), and widened to
    the decades around it when fewer than two decade labels would fall inside."""
    pad = max(0.05 * (hi - lo), 0.1)
    lo, hi = lo - pad, hi + pad
    if math.floor(hi) - math.ceil(lo) < 1:
        lo, hi = math.floor(lo), math.ceil(hi)
        if hi - lo < 1:
            lo, hi = lo - 1, hi + 1
    return lo, hi


def _log_bounds(*arrays) -> tuple[float, float]:
    """log10 of the smallest and largest positive finite value in the arrays ((-1, 0) if there is none)."""
    v = np.concatenate([_positive(np.ravel(a)) for a in arrays]) if arrays else np.array([])
    v = v[np.isfinite(v)]
    return (math.log10(v.min()), math.log10(v.max())) if len(v) else (-1.0, 0.0)


def _log_axis(fig: go.Figure, rng: tuple[float, float], axis: str = "yaxis") -> None:
    """A log axis over rng (log10 units, from _decades) labelled at decades only (1, 10⁻³, ...): one label
    per decade, or per k decades when the range spans more than DECADE_LABELS."""
    lo, hi = rng
    fig.layout[axis] = {**fig.layout._props.get(axis, {}), "type": "log", "range": [lo, hi], "tick0": 0,
                        "dtick": max(1, math.ceil((hi - lo) / DECADE_LABELS)), "exponentformat": "power"}


def _whole_steps(fig: go.Figure, steps, axis: str = "xaxis") -> None:
    """Training steps are whole numbers: over a span of fewer than 10 steps plotly would label 1.5, 2.5, ...;
    there, one label per step (above that, plotly's own choice is whole)."""
    v = np.asarray(steps, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) and v.max() - v.min() < 10:
        fig.layout[axis] = {**fig.layout._props.get(axis, {}), "tick0": 0, "dtick": 1}


def _empty(title: str, x: str | None = None, y: str | None = None) -> go.Figure:
    fig = _layout(_figure(), title, x, y)
    fig.add_annotation(text=EMPTY, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": FONT_SIZE + 4, "color": "#555555"})
    fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False)
    return fig


def _is_empty(df) -> bool:
    return df is None or len(df) == 0


def _grid(df: pd.DataFrame, row: str, col: str, value: str):
    """Pivot to a matrix strided to <= MAX_CELLS per axis: (rows (R,), cols (C,), z (R, C)), rows and columns
    sorted, z the mean of each (row, col)'s non-NaN values, NaN where there is none: what
    df.pivot_table(index=row, columns=col, values=value, aggfunc="mean", dropna=False) gives, at a fraction
    of its cost (a live page pivots several frames per tick)."""
    rows, ri = np.unique(df[row].to_numpy(), return_inverse=True)
    cols, ci = np.unique(df[col].to_numpy(), return_inverse=True)
    v = df[value].to_numpy(dtype=np.float64)
    ok = ~np.isnan(v)
    total, count = np.zeros((len(rows), len(cols))), np.zeros((len(rows), len(cols)))
    np.add.at(total, (ri[ok], ci[ok]), v[ok])
    np.add.at(count, (ri[ok], ci[ok]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    sr, sc = max(1, math.ceil(len(rows) / MAX_CELLS)), max(1, math.ceil(len(cols) / MAX_CELLS))
    return rows[::sr], cols[::sc], z[::sr, ::sc]


def _axis_id(letter: str, i: int) -> str:
    """The axis a trace in panel i (0-based, row by row) refers to: "x", "x2", ... as make_subplots names them."""
    return letter if i == 0 else f"{letter}{i + 1}"


@functools.lru_cache(maxsize=32)
def _panel_layout(rows: int, cols: int, horizontal_spacing: float, vertical_spacing: float) -> str:
    """The layout make_subplots builds for a rows x cols grid with a title per panel (placeholders), as JSON:
    building it is a third of a small-multiples figure's cost, and it depends only on these four numbers."""
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"_panel{i}" for i in range(rows * cols)],
                        horizontal_spacing=horizontal_spacing, vertical_spacing=vertical_spacing,
                        figure=go.Figure(layout={"template": {}}))
    lay = fig.layout.to_plotly_json()
    lay.pop("template", None)
    return json.dumps(lay)


def _panels(rows: int, cols: int, titles: list[str], horizontal_spacing: float, vertical_spacing: float):
    """make_subplots(figure=_figure(), rows, cols, subplot_titles=titles, ...) from a cached layout: the same
    figure (tested), without row/col bookkeeping: traces name their axes (_axis_id)."""
    lay = json.loads(_panel_layout(rows, cols, horizontal_spacing, vertical_spacing))
    lay["annotations"] = [{**a, "text": t} for a, t in zip(lay["annotations"], titles, strict=False) if t]
    fig = _figure()
    for k, v in lay.items():
        fig.layout[k] = v
    return fig


def _positive(y) -> np.ndarray:
    """y as float64 with non-positive and non-finite values as NaN (they have no place on a log axis)."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(np.isfinite(y) & (y > 0), y, np.nan)


def _hline(fig: go.Figure, x, y: float, name: str, color: str = "#333333", dash: str = "dash") -> None:
    """A labelled horizontal line across x as a trace (shows in the legend, correct on log axes)."""
    x0, x1 = float(np.nanmin(x)), float(np.nanmax(x))
    fig.add_trace(go.Scatter(x=[x0, x1], y=[y, y], mode="lines+text", text=[name, ""], textposition="top right",
                             textfont=_font(FONT_SIZE), line={"color": color, "dash": dash, "width": 2}, name=name,
                             hovertemplate=f"{name}: {y:.4g}<extra></extra>"))


def _rolling(y: pd.Series) -> tuple[pd.Series, int]:
    w = int(min(50, max(1, len(y) // 25)))
    return y.rolling(w, min_periods=1).mean(), w


# ----------------------------------------------------------------------------------------------------------
# Gradient flow


def _direction_name(layer: int, d: int, L: int, D: int) -> str:
    """"layer 1, backward" for one line of a multi-layer / bidirectional module ("" for a single one).
    Layers count from 0, as PyTorch's weight names (weight_hh_l0) and the pages' layer pickers do."""
    parts = ([f"layer {layer}"] if L > 1 else []) + ([("forward", "backward")[d]] if D > 1 else [])
    return ", ".join(parts)


def grad_norm_vs_time(gf: pd.DataFrame, step: int | None = None, predicted: pd.DataFrame | None = None,
                      now: int | None = None) -> go.Figure:
    """||dL/dh_t|| against t on a log axis labelled at decades, one line per (run, layer, direction), for each
    run's snapshot at the largest step <= `step` (the latest if None; the earliest if all are later).

    gf: run, step, layer, direction, t, grad_norm (analysis.grad_flow_frames). Colour = run; the layers and
    directions of one run differ by dash and marker symbol, named in the legend ("LSTM · layer 1, backward").
    predicted: run, t, bound (analysis.predicted_frames), drawn dashed in the run's colour; the y range comes
    from the measured values only, so a prediction far above or below them is cut at the plot's edge (the
    note says so) instead of squeezing the measured lines. Exact zeros (no gradient path: a truncation cut)
    cannot sit on a log axis: the line breaks there and x markers sit in a row per line at a floor three
    decades below the smallest positive value (rows a quarter decade apart so runs do not hide each other),
    hover "exactly 0 (cut by truncation)". now: the training step the runs are at; when the snapshot shown is
    older, the note says so (snapshots are taken every few steps).
    """
    title, xt, yt = "‖∂L/∂h_t‖ at each time step", "time step t", "‖∂L/∂h_t‖ (log scale)"
    if _is_empty(gf):
        return _empty(title, xt, yt)
    parts, steps = [], {}
    for run, g in gf.groupby("run", sort=False):
        have = np.sort(g["step"].unique())
        sel = have[-1] if step is None else (have[have <= step][-1] if (have <= step).any() else have[0])
        steps[run] = int(sel)
        parts.append(g[g["step"] == sel])
    cur = pd.concat(parts)
    v = cur["grad_norm"].to_numpy(dtype=np.float64)
    pos = v[np.isfinite(v) & (v > 0)]
    floor = pos.min() / 1e3 if len(pos) else 1e-30
    colors = run_colors(steps)
    fig, n_zero = _figure(), 0
    for run, g in cur.groupby("run", sort=False):
        L, D = g["layer"].max() + 1, g["direction"].max() + 1
        for (layer, d), gg in g.groupby(["layer", "direction"]):
            gg = gg.sort_values("t")
            k = (layer * D + d) % len(DASHES)
            name = run + (f" · {_direction_name(layer, d, L, D)}" if L * D > 1 else "")
            t, y = gg["t"].to_numpy(), gg["grad_norm"].to_numpy(dtype=np.float64)
            fig.add_trace(go.Scatter(
                x=t, y=_positive(y), mode="lines+markers", name=name, legendgroup=name,
                line={"color": colors[run], "width": 3, "dash": DASHES[k]},
                marker={"symbol": SYMBOLS[k], "size": 9, "color": colors[run], "maxdisplayed": MARKERS_SHOWN},
                hovertemplate=f"{name}<br>t = %{{x}}<br>‖∂L/∂h_t‖ = %{{y:.3e}}<extra></extra>"))
            z = t[y == 0]
            if len(z):
                fig.add_trace(go.Scatter(
                    x=z, y=np.full(len(z), floor * 10 ** (-0.25 * n_zero)), mode="markers", name=f"{name}: {ZERO}",
                    legendgroup=name, showlegend=False, marker={"symbol": "x", "size": 9, "color": colors[run]},
                    hovertemplate=f"{name}<br>t = %{{x}}: {ZERO}<extra></extra>"))
                n_zero += 1
    lo = math.log10(floor) - 0.25 * max(n_zero - 1, 0) if n_zero or not len(pos) else math.log10(pos.min())
    hi = math.log10(pos.max() if len(pos) else 1.0)
    rng = _decades(lo, hi)  # from the measured values (and the zeros' row) only
    cut = False
    if not _is_empty(predicted):
        several = predicted["run"].nunique() > 1
        for run, p in predicted.groupby("run", sort=False):
            p = p.sort_values("t")
            y = _positive(p["bound"])
            fig.add_trace(go.Scatter(
                x=p["t"], y=y, mode="lines", name=f"{run}: predicted" if several else "predicted σ_max^(T−1−t)",
                line={"color": colors.get(run, run_colors([run])[run]), "dash": "dash", "width": 2},
                hovertemplate=f"{run}: predicted<br>t = %{{x}}<br>σ_max^(T−1−t)·‖∂L/∂h_{{T−1}}‖ = %{{y:.3e}}"
                              "<extra></extra>"))
            ok = y[np.isfinite(y)]
            cut |= bool(len(ok)) and (ok.min() < 10 ** rng[0] or ok.max() > 10 ** rng[1])
    at = set(steps.values())
    notes = ["the loss is at the last step: read right to left"]
    if len(at) == 1:
        title += f" · step {at.pop()}"  # the snapshot's step
    else:
        notes.insert(0, "snapshots at steps " + ", ".join(f"{r}: {s}" for r, s in steps.items()))
    if n_zero:
        notes.append("× at the bottom: exactly 0 (truncation)")
    if cut:
        notes.append("dashed prediction cut at the plot's edge")
    if now is not None and step is None and any(s < now for s in steps.values()):
        notes.append(f"training is at step {now}; snapshots are taken every few steps")
    fig = _layout(fig, title, xt, yt, note=" · ".join(notes))
    _log_axis(fig, rng)
    return fig


def grad_flow_heatmap(gf: pd.DataFrame, run: str | None = None, layer: int = 0, direction: int = 0) -> go.Figure:
    """Training step (y) x time step t (x), colour = log10 ||dL/dh_t|| of one run (the first if None),
    layer and direction. Exact zeros (truncation cuts) are left blank."""
    title, xt, yt = "log10 ‖∂L/∂h_t‖ over training", "time step t", "training step"
    if not _is_empty(gf):
        run = gf["run"].iloc[0] if run is None else run
        gf = gf[(gf["run"] == run) & (gf["layer"] == layer) & (gf["direction"] == direction)]
    if _is_empty(gf):
        return _empty(title, xt, yt)
    steps, ts, z = _grid(gf, "step", "t", "grad_norm")  # z (steps, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        logz = np.log10(_positive(z))
    fig = _figure(go.Heatmap(
        x=ts, y=steps, z=logz, customdata=z, colorscale="Viridis",
        colorbar={"title": {"text": "log10 ‖∂L/∂h_t‖", "side": "right"}},
        hovertemplate="step %{y}, t = %{x}<br>‖∂L/∂h_t‖ = %{customdata:.3e}<extra></extra>"))
    name = f"{run}" + (f", layer {layer}" if layer else "") + (", reverse" if direction else "")
    note = "blank cells: exactly 0 (cut by truncation)" if (z == 0).any() else None
    fig = _layout(fig, str(name), xt, yt, note=note or "log10 ‖∂L/∂h_t‖ per snapshot", height=HEIGHT - 60)
    _whole_steps(fig, steps, "yaxis")
    return fig


def global_grad_norm(hist: pd.DataFrame, clip: float | None = None) -> go.Figure:
    """Global gradient norm per step and run on a log axis: before clipping (solid) and, with a threshold,
    after clipping (dotted), with the threshold as a dashed line. hist: analysis.history_frames."""
    title, xt, yt = "Global gradient norm ‖∂L/∂θ‖", "training step", "‖∂L/∂θ‖ (log scale)"
    if _is_empty(hist):
        return _empty(title, xt, yt)
    colors = run_colors(hist["run"].unique())
    fig = _figure()
    for run, h in hist.groupby("run", sort=False):
        fig.add_trace(go.Scatter(x=h["step"], y=_positive(h["grad_norm"]), mode="lines", name=run,
                                 line={"color": colors[run], "width": 2}, legendgroup=run,
                                 hovertemplate=f"{run}<br>step %{{x}}<br>‖g‖ = %{{y:.3e}}<extra></extra>"))
        if clip:
            fig.add_trace(go.Scatter(x=h["step"], y=_positive(h["grad_norm_clipped"]), mode="lines",
                                     name=f"{run}, clipped", legendgroup=run,
                                     line={"color": colors[run], "width": 3, "dash": "dot"},
                                     hovertemplate=f"{run}<br>step %{{x}}<br>clipped ‖g‖ = %{{y:.3e}}<extra></extra>"))
    if clip:
        _hline(fig, hist["step"], float(clip), f"clip threshold {clip:g}")
    note = ("solid: before clipping · dotted: after · g ← threshold⋅g / ‖g‖ if ‖g‖ ≥ threshold · "
            "(Pascanu et al. 2013)") if clip else "no clipping"
    fig = _layout(fig, title, xt, yt, note=note)
    cols = ["grad_norm"] + (["grad_norm_clipped"] if clip else [])
    _log_axis(fig, _decades(*_log_bounds(hist[cols].to_numpy(dtype=np.float64), [clip or np.nan])))
    _whole_steps(fig, hist["step"])
    return fig


# ----------------------------------------------------------------------------------------------------------
# Training curves


def loss_curves(hist: pd.DataFrame, metric: bool = False) -> go.Figure:
    """Loss (or the task metric) per step and run: thin = every step, thick = a rolling mean, dashed = the
    task's trivial baseline (for the loss, and for an mse metric, which is the loss). Log axis except for
    accuracy. hist: analysis.history_frames."""
    name = "loss"
    if metric:
        names = hist["metric_name"].dropna().unique() if not _is_empty(hist) and "metric_name" in hist else []
        name = str(names[0]) if len(names) == 1 else "metric"
    log = name != "accuracy"
    title = f"Training {name} per step" if name != "metric" else "Training metric per step"
    xt, yt = "training step", name + (" (log scale)" if log else "")
    if _is_empty(hist):
        return _empty(title, xt, name)  # no axis yet: not said to be a log one
    col = "metric" if metric else "loss"
    colors = run_colors(hist["run"].unique())
    fig, w = _figure(), 1
    for run, h in hist.groupby("run", sort=False):
        y = h[col].astype(np.float64)
        smooth, w = _rolling(y)
        fig.add_trace(go.Scatter(x=h["step"], y=_positive(y) if log else y, mode="lines", name=f"{run} (each step)",
                                 line={"color": colors[run], "width": 1}, opacity=0.35, legendgroup=run,
                                 showlegend=False,
                                 hovertemplate=f"{run}<br>step %{{x}}<br>{name} = %{{y:.4g}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=h["step"], y=_positive(smooth) if log else smooth, mode="lines", name=run,
                                 line={"color": colors[run], "width": 3}, legendgroup=run,
                                 hovertemplate=f"{run}<br>step %{{x}}<br>{name} (mean of {w}) = %{{y:.4g}}"
                                               "<extra></extra>"))
    base = hist["baseline"].dropna() if "baseline" in hist else pd.Series(dtype=float)
    if (not metric or name == "mse") and len(base):
        _hline(fig, hist["step"], float(base.iloc[0]), "trivial baseline")
    fig = _layout(fig, title, xt, yt, note="thin: every step · thick: " + (f"rolling mean over {w} steps" if w > 1
                                                                             else "the same (too few steps to smooth)"))
    _whole_steps(fig, hist["step"])
    if log:
        _log_axis(fig, _decades(*_log_bounds(hist[col].to_numpy(dtype=np.float64),
                                             base.to_numpy(dtype=np.float64)[:1] if len(base) else [])))
    else:
        fig.update_yaxes(range=[0, 1.02])
    return fig


def layer_grad_norms(lg: pd.DataFrame) -> go.Figure:
    """||dL/dtheta|| per parameter group and step (before clipping), log axis. One run: a colour per group;
    several: the run's colour with a dash per group. lg: analysis.layer_grad_frames."""
    title, xt, yt = "‖∂L/∂θ‖ per parameter group", "training step", "‖∂L/∂θ_group‖ (log scale)"
    if _is_empty(lg):
        return _empty(title, xt, yt)
    runs = list(lg["run"].unique())
    groups = list(lg["group"].unique())
    colors = run_colors(runs)
    palette = list(RUN_COLORS.values()) + FALLBACK_COLORS
    fig = _figure()
    for (run, group), g in lg.groupby(["run", "group"], sort=False):
        i = groups.index(group)
        c = palette[i % len(palette)] if len(runs) == 1 else colors[run]
        line = {"color": c, "width": 3} if len(runs) == 1 else {"color": c, "width": 2, "dash": DASHES[i % len(DASHES)]}
        marker = {"symbol": SYMBOLS[i % len(SYMBOLS)], "size": 8, "color": c, "maxdisplayed": MARKERS_SHOWN}
        name = group if len(runs) == 1 else f"{run} · {group}"
        fig.add_trace(go.Scatter(x=g["step"], y=_positive(g["grad_norm"]), mode="lines+markers", name=name,
                                 line=line, marker=marker,
                                 hovertemplate=f"{name}<br>step %{{x}}<br>‖∂L/∂θ‖ = %{{y:.3e}}<extra></extra>"))
    fig = _layout(fig, title, xt, yt, note="before clipping")
    _log_axis(fig, _decades(*_log_bounds(lg["grad_norm"].to_numpy(dtype=np.float64))))
    _whole_steps(fig, lg["step"])
    return fig


# ----------------------------------------------------------------------------------------------------------
# Gates


def gate_heatmaps(gf_frame: pd.DataFrame, phases: list[tuple[str, int, int]] | None = None) -> go.Figure:
    """One heatmap per gate (t on x, unit on y) from analysis.gate_frame. Sigmoid gates share a [0, 1]
    white-to-blue scale; tanh quantities (candidate g / new n, cell state, hidden) share a diverging
    [-1, 1] red-white-blue scale (values beyond +-1, e.g. c_t, saturate the colour; hover shows them).
    phases: (name, start, end_exclusive) input positions of the task's phases (e.g. CopyMemory.phases()):
    a dashed line at each boundary in every panel, the names along the top."""
    title, xt, yt = "Gate activations per time step and unit", "time step t", "unit"
    if _is_empty(gf_frame):
        return _empty(title, xt, yt)
    gates = list(gf_frame["gate"].unique())
    cols = min(3, len(gates))
    rows = math.ceil(len(gates) / cols)
    parts = dict(list(gf_frame.groupby("gate", sort=False)))
    titles = [GATE_TITLES.get(g, g) + (" (±1 clipped)" if g not in SIGMOID_GATES
                                       and parts[g]["value"].abs().max() > 1 else "") for g in gates]
    fig = _panels(rows, cols, titles, horizontal_spacing=0.05, vertical_spacing=0.14 if rows > 1 else 0.1)
    for i, g in enumerate(gates):
        units, ts, z = _grid(parts[g], "unit", "t", "value")  # z (H, T)
        sig = g in SIGMOID_GATES
        fig.add_trace(go.Heatmap(x=ts, y=units, z=z, coloraxis="coloraxis" if sig else "coloraxis2",
                                 name=GATE_TITLES.get(g, g), xaxis=_axis_id("x", i), yaxis=_axis_id("y", i),
                                 hovertemplate=f"{GATE_TITLES.get(g, g)}<br>t = %{{x}}, unit %{{y}}<br>"
                                               "value = %{z:.3f}<extra></extra>"))
    has_sig = any(g in SIGMOID_GATES for g in gates)
    has_tanh = any(g not in SIGMOID_GATES for g in gates)
    both = has_sig and has_tanh
    fig = _layout(fig, title, height=HEIGHT if rows == 2 else 120 + 150 * rows,
                  coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": 1, "showscale": has_sig,
                             "colorbar": {"title": {"text": "sigmoid", "side": "right"}, "y": 0.8 if both else 0.5,
                                          "len": 0.4 if both else 0.9, "dtick": 0.5}},
                  coloraxis2={"colorscale": "RdBu", "cmin": -1, "cmax": 1, "showscale": has_tanh,
                              "colorbar": {"title": {"text": "tanh", "side": "right"}, "y": 0.2 if both else 0.5,
                                           "len": 0.4 if both else 0.9, "dtick": 1}},
                  margin={"t": 80})
    n = len(gates)
    for i in range(rows * cols):  # the panels share t and the units: labels only where no panel repeats them
        xa, ya = fig.layout[_axis_id("x", i).replace("x", "xaxis")], fig.layout[_axis_id("y", i).replace("y", "yaxis")]
        if i + cols < n:  # a panel below says it
            xa.showticklabels = False
        elif i < n:
            xa.title.text = xt
        if i % cols == 0:
            ya.title.text = yt
        else:
            ya.showticklabels = False
    for name, start, end in phases or []:
        if end <= start:
            continue
        for i in range(n):
            xref, yref = _axis_id("x", i), _axis_id("y", i)
            fig.add_shape(type="line", x0=start - 0.5, x1=start - 0.5, y0=0, y1=1, xref=xref,
                          yref=f"{yref} domain", line={"color": "#222222", "width": 1.5, "dash": "dash"})
            if i < cols:  # names above the top row only
                narrow = end - start < 3  # e.g. the one-step delimiter: its name runs down the column
                fig.add_annotation(x=(start + end - 1) / 2, y=1.0, xref=xref, yref=f"{yref} domain", text=name,
                                   showarrow=False, yanchor="top", bgcolor="rgba(255,255,255,0.75)",
                                   textangle=-90 if narrow else 0, font={"size": FONT_SIZE - 2, "color": "#222222"})
    return fig


def gate_saturation(gs: pd.DataFrame) -> go.Figure:
    """Fraction of gate values above 0.95 (solid) and below 0.05 (dotted) per gate over training; tanh
    gates judged on (a + 1) / 2. Averaged over layers and directions. gs: analysis.gate_stats_frames."""
    title, xt, yt = "Gate saturation over training", "training step", "fraction of (unit, step) values"
    if _is_empty(gs):
        return _empty(title, xt, yt)
    runs = list(gs["run"].unique()) if "run" in gs else [None]
    gs = gs.assign(run=gs["run"] if "run" in gs else "")
    m = gs.groupby(["run", "gate", "step"], sort=False)[["frac_low", "frac_high"]].mean().reset_index()
    fig = _figure()
    for (run, gate), g in m.groupby(["run", "gate"], sort=False):
        g = g.sort_values("step")
        pre = f"{run} · " if len(runs) > 1 else ""
        color = GATE_COLORS.get(gate, "#000000")
        fig.add_trace(go.Scatter(x=g["step"], y=g["frac_high"], mode="lines+markers", name=f"{pre}{gate}: > 0.95",
                                 line={"color": color, "width": 3}, legendgroup=f"{run}{gate}",
                                 hovertemplate=f"{pre}{gate}<br>step %{{x}}<br>> 0.95: %{{y:.1%}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=g["step"], y=g["frac_low"], mode="lines+markers", name=f"{pre}{gate}: < 0.05",
                                 line={"color": color, "width": 2, "dash": "dot"}, legendgroup=f"{run}{gate}",
                                 marker={"symbol": "circle-open"},
                                 hovertemplate=f"{pre}{gate}<br>step %{{x}}<br>< 0.05: %{{y:.1%}}<extra></extra>"))
    fig = _layout(fig, title, xt, yt, note="solid: > 0.95 (open) · dotted: < 0.05 (shut) · tanh gates as (a + 1) / 2")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    _whole_steps(fig, gs["step"])
    return fig


# ----------------------------------------------------------------------------------------------------------
# Hidden states


def _paths(pf: pd.DataFrame, cols: list[str]) -> dict[str, np.ndarray]:
    """The rows of several sequences as one trace: each sequence in t order, a NaN row between two sequences (a
    gap in the line). pf has columns sequence, t and `cols`; returns each column as an array with the gaps."""
    pf = pf.sort_values(["sequence", "t"], kind="stable")
    seq = pf["sequence"].to_numpy()
    cuts = np.flatnonzero(seq[1:] != seq[:-1]) + 1  # first row of each sequence after the first
    out = {}
    for c in ["sequence", "t", *cols]:
        v = pf[c].to_numpy()
        numeric = v.dtype.kind in "fiub"  # numbers get NaN in the gaps, text (labels) ""
        out[c] = np.insert(v.astype(np.float64 if numeric else object), cuts, np.nan if numeric else "")
    return out


def pca_trajectories(pf: pd.DataFrame, dims: int = 2, color: str = "t", explained=None) -> go.Figure:
    """One lines+markers path per probe sequence in PCA space (analysis.pca_frame), coloured by time step t
    (one continuous scale) or by label. A diamond marks t = 0. dims=3 draws go.Scatter3d. The paths of one
    colour group share a trace (gaps between sequences): one trace by time, one per label, however many sequences.
    explained: optional (k,) variance fractions (analysis.explained_variance) for the axis titles."""
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")
    if color not in ("t", "label"):
        raise ValueError(f"color must be 't' or 'label', got {color!r}")
    axes = [f"PC{i + 1} of h_t" + (f" ({explained[i]:.0%} of variance)" if explained is not None
                                   and i < len(explained) else "") for i in range(dims)]
    title = f"Hidden-state trajectories h_t on PC1–PC{dims}"
    if _is_empty(pf):
        return _empty(title, axes[0], axes[1])
    pcs = [pf[f"pc{i + 1}"] if f"pc{i + 1}" in pf else pd.Series(0.0, index=pf.index) for i in range(dims)]
    pf = pf.assign(**{f"_p{i}": p.astype(np.float64) for i, p in enumerate(pcs)})
    labels = pf["label"].astype(str) if "label" in pf else "seq " + pf["sequence"].astype(str)
    pf = pf.assign(label=labels)
    lab_colors = {lab: LABEL_COLORS[i % len(LABEL_COLORS)] for i, lab in enumerate(sorted(pf["label"].unique()))}
    T = int(pf["t"].max())
    tr = go.Scatter3d if dims == 3 else go.Scatter
    size = 8 if dims == 2 else 4
    hover = "seq %{customdata[0]} (%{customdata[1]})<br>t = %{customdata[2]}<extra></extra>"
    fig = _figure()
    groups = [("all", pf)] if color == "t" else list(pf.groupby("label", sort=True))
    for lab, g in groups:
        g = g.assign(label=g["label"].map(html.escape))
        p = _paths(g, [f"_p{i}" for i in range(dims)] + ["label"])
        xyz = {k: p[f"_p{i}"] for i, k in enumerate("xyz"[:dims])}
        custom = np.stack([p["sequence"], p["label"], p["t"]], axis=1)
        symbols = np.where(p["t"] == 0, "diamond", "circle")
        if color == "t":
            marker = {"color": p["t"], "coloraxis": "coloraxis", "symbol": symbols, "size": size}
            line = {"color": "rgba(110, 110, 110, 0.45)", "width": 2}
            kw = {"name": "probe sequences", "showlegend": False}
        else:
            c = lab_colors[lab]
            marker = {"color": c, "symbol": symbols, "size": size}
            line = {"color": c, "width": 2}
            kw = {"name": str(lab), "legendgroup": str(lab), "showlegend": True}
        fig.add_trace(tr(**xyz, mode="lines+markers", marker=marker, line=line, customdata=custom,
                         hovertemplate=hover, connectgaps=False, **kw))
    fig = _layout(fig, title, note="one path per probe sequence · diamond: t = 0",
                  coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": max(T, 1), "showscale": color == "t",
                             "colorbar": {"title": {"text": "time step t"}}})
    if dims == 3:
        fig.update_layout(scene={f"{c}axis": {"tickfont": _font(FONT_SIZE),
                                              "title": {"text": axes[i], "font": _font(FONT_SIZE)}}
                                 for i, c in enumerate("xyz")},
                          height=HEIGHT + 60, margin={"b": 0, "l": 0, "r": 0})
    else:
        fig.update_xaxes(title_text=axes[0])
        fig.update_yaxes(title_text=axes[1])
    return fig


def unit_heatmap(uf: pd.DataFrame) -> go.Figure:
    """h_t per unit (y) and time step (x) for one sequence (analysis.unit_frame), diverging red-white-blue
    centred at 0 over [-1, 1] (wider if the states are, e.g. a relu RNN)."""
    title, xt, yt = "Hidden state h_t per unit over time", "time step t", "unit"
    if _is_empty(uf):
        return _empty(title, xt, yt)
    units, ts, z = _grid(uf, "unit", "t", "value")
    m = max(1.0, float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0)
    fig = _figure(go.Heatmap(x=ts, y=units, z=z, colorscale="RdBu", zmin=-m, zmax=m, zmid=0,
                               colorbar={"title": {"text": "h_t"}},
                               hovertemplate="t = %{x}, unit %{y}<br>h = %{z:.3f}<extra></extra>"))
    return _layout(fig, title, xt, yt)


def _rdbu(v: float) -> tuple[str, str]:
    """value in [-1, 1] -> (background, text colour): -1 red #B2182B, 0 white, +1 blue #2166AC."""
    if not math.isfinite(v):
        return "rgb(255,255,255)", "#000"
    v = max(-1.0, min(1.0, v))
    end = (178, 24, 43) if v < 0 else (33, 102, 172)
    a = abs(v)
    r, g, b = (round(255 + (e - 255) * a) for e in end)
    return f"rgb({r},{g},{b})", ("#fff" if a > 0.6 else "#000")


# text blocks: newlines kept, lines wrap at the container's width, at spaces or inside a word longer than a line
WRAP_STYLE = ("font-family:monospace;font-size:18px;line-height:1.9;white-space:pre-wrap;overflow-wrap:anywhere;"
              "max-width:100%;color:" + TEXT)


def text_activation_html(chars: list[str], values: list[float]) -> str:
    """HTML: each character on a background coloured by its value in [-1, 1] (red -1, white 0, blue +1),
    the value in its tooltip. Characters are escaped (html.escape); a newline shows as ↵ and breaks the line;
    a long line wraps at the container's width, at any character (each one is its own span)."""
    spans = []
    for ch, v in zip(chars, values, strict=False):
        bg, fg = _rdbu(float(v))
        s = "↵" if ch == "\n" else html.escape(ch)
        spans.append(f'<span title="{float(v):.3f}" style="background-color:{bg};color:{fg}">{s}</span>'
                     + ("\n" if ch == "\n" else ""))
    return f'<div style="{WRAP_STYLE};word-break:break-all">' + "".join(spans) + "</div>"


def sample_html(sampled: str, prefix: str = "") -> str:
    """HTML for text a model generated: the prefix it was given in bold, then its sample; escaped, monospace,
    newlines kept, wrapping at the container's width (WRAP_STYLE) however long its lines or words."""
    head = f"<b>{html.escape(prefix)}</b>" if prefix else ""
    return f'<div style="{WRAP_STYLE}">' + head + html.escape(sampled) + "</div>"


# ----------------------------------------------------------------------------------------------------------
# Attention


def attention_heatmap(af: pd.DataFrame, src_tokens: list[str], tgt_tokens: list[str],
                      ideal: str | None = None) -> go.Figure:
    """Attention weights alpha_ij in [0, 1]: decoder step i (y, labelled with the target tokens) x encoder
    step j (x, labelled with the source tokens), from analysis.attention_frame. ideal: "diagonal" or
    "anti-diagonal" draws the alignment the task calls for as a dotted line."""
    if ideal not in (None, "diagonal", "anti-diagonal"):
        raise ValueError(f"ideal must be None, 'diagonal' or 'anti-diagonal', got {ideal!r}")
    title, xt, yt = "Attention weights α_ij", "encoder step j (source)", "decoder step i (target)"
    if _is_empty(af):
        return _empty(title, xt, yt)
    dec, enc, z = _grid(af, "dec", "enc", "weight")  # z (T_out, T_in)

    def tok(tokens, i):
        return str(tokens[i]) if i < len(tokens) else str(i)

    text = [[f"{tok(tgt_tokens, i)} ← {tok(src_tokens, j)}" for j in enc] for i in dec]
    fig = _figure(go.Heatmap(x=enc, y=dec, z=z, text=text, colorscale="Blues", zmin=0, zmax=1,
                               colorbar={"title": {"text": "α_ij"}, "dtick": 0.5},
                               hovertemplate="decoder %{y} → encoder %{x}<br>%{text}<br>α = %{z:.3f}<extra></extra>"))
    if ideal:
        n_in, n_out = int(af["enc"].max()) + 1, int(af["dec"].max()) + 1
        i = np.arange(min(n_in, n_out))
        fig.add_trace(go.Scatter(x=i if ideal == "diagonal" else n_in - 1 - i, y=i, mode="lines",
                                 name=f"ideal {ideal}", line={"color": "#D55E00", "dash": "dot", "width": 3},
                                 hoverinfo="skip"))
    tick = max(1, math.ceil(max(len(enc), len(dec)) / 40))
    fig = _layout(fig, title, xt, yt, note="each row sums to 1")
    fig.update_xaxes(tickvals=enc[::tick], ticktext=[tok(src_tokens, j) for j in enc[::tick]], showgrid=False)
    fig.update_yaxes(tickvals=dec[::tick], ticktext=[tok(tgt_tokens, i) for i in dec[::tick]], showgrid=False,
                     autorange="reversed")
    return fig


def accuracy_vs_length(df: pd.DataFrame) -> go.Figure:
    """Greedy-decoding token accuracy against sequence length, one line per attention type
    (columns length, attention, accuracy: rnnviz.training.accuracy_vs_length)."""
    title, xt, yt = "Accuracy vs sequence length", "sequence length T", \
        "token accuracy (greedy decoding)"
    if _is_empty(df):
        return _empty(title, xt, yt)
    fig = _figure()
    fallback = run_colors([a for a in df["attention"].unique() if a not in ATTENTION_COLORS])
    for att, g in df.groupby("attention", sort=False):
        g = g.sort_values("length")
        name = ATTENTION_NAMES.get(att, str(att))
        fig.add_trace(go.Scatter(x=g["length"], y=g["accuracy"], mode="lines+markers", name=name,
                                 line={"color": ATTENTION_COLORS.get(att, fallback.get(att)), "width": 3},
                                 marker={"size": 10},
                                 hovertemplate=f"{name}<br>T = %{{x}}<br>accuracy = %{{y:.1%}}<extra></extra>"))
    fig = _layout(fig, title, xt, yt)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


# ----------------------------------------------------------------------------------------------------------
# Phase diagram


Y_AXES = {"seq_len": ("sequence length T", "T"), "forget_bias": ("LSTM forget-gate bias b_f", "b_f"),
          "hidden_size": ("hidden size H", "H")}


def phase_diagram(df: pd.DataFrame, cell: str | None = None, clip: float = 10.0,
                  boundary: pd.DataFrame | None = None) -> go.Figure:
    """Vanishing (blue) vs exploding (red) at initialisation: one heatmap per cell side by side, x = weight
    scale, y = sequence length T (or what df.attrs["y_axis"] names: "forget_bias", "hidden_size"), rows
    evenly spaced, colour = log10 ||dL/dh_0|| / ||dL/dh_{T-1}|| clipped to +-clip decades, centred at 0.

    df: cell, scale, log_ratio and the y value: column "y" (rnnviz.phase.sweep, optional log_ratio_std and
    n_seeds for the hover) or seq_len. Each heatmap cell's customdata is [scale, seq_len, cell], for a click to
    load that configuration. The tanh RNN panel marks the theoretical boundary sigma_max(W_hh) = 1: at
    scale = 1 (right for orthogonal and identity init), or along boundary (columns y, critical_scale:
    rnnviz.phase.boundary) when given.
    """
    y_axis = df.attrs.get("y_axis", "seq_len") if df is not None else "seq_len"
    yt, ysym = Y_AXES.get(y_axis, (y_axis, y_axis))
    title, xt = "Vanishing and exploding gradients at initialisation", "recurrent weight scale"
    if not _is_empty(df) and cell is not None:
        df = df[df["cell"] == cell]
    if _is_empty(df):
        return _empty(title, xt, yt)
    ycol = "y" if "y" in df else "seq_len"
    cells = list(df["cell"].unique())
    ys = np.sort(df[ycol].unique())
    fig = make_subplots(figure=_figure(), rows=1, cols=len(cells), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[CELL_NAMES.get(c, str(c)) for c in cells])
    any_nan = False
    for k, c in enumerate(cells):
        g = df[df["cell"] == c]
        yv, scales, z = _grid(g, ycol, "scale", "log_ratio")  # z (ys, scales)
        T = np.broadcast_to(yv[:, None], z.shape) if ycol == "seq_len" or y_axis == "seq_len" else \
            _grid(g, ycol, "scale", "seq_len")[2]  # (ys, scales)
        std = _grid(g, ycol, "scale", "log_ratio_std")[2] if "log_ratio_std" in g else None
        n = _grid(g, ycol, "scale", "n_seeds")[2] if "n_seeds" in g else None
        custom = np.empty(z.shape + (3,), dtype=object)  # [scale, seq_len, cell] per heatmap cell
        custom[..., 0] = np.broadcast_to(scales[None, :], z.shape)
        custom[..., 1] = np.where(np.isfinite(T), np.nan_to_num(T), 0).astype(int)
        custom[..., 2] = c
        text = [[f"{ysym} = {yv[i]:g}" + ("" if y_axis == "seq_len" else f", T = {custom[i, j, 1]}")
                 + "<br>log10 ratio = " + ("n/a" if np.isnan(v) else f"{v:.2f}")
                 + ("" if std is None or np.isnan(std[i, j]) else f" ± {std[i, j]:.2f}")
                 + ("" if n is None else f" ({n[i, j]:.0f} seeds)") for j, v in enumerate(r)] for i, r in enumerate(z)]
        any_nan |= bool(np.isnan(z).any())
        fig.add_trace(go.Heatmap(x=scales, y=np.searchsorted(ys, yv), z=np.clip(z, -clip, clip), customdata=custom,
                                 text=text, coloraxis="coloraxis", name=CELL_NAMES.get(c, str(c)),
                                 hoverinfo="skip"),
                      row=1, col=k + 1)
        # invisible markers on every cell: plotly reports clicks/selections on points, not heatmap cells
        gx, gy = np.meshgrid(scales, np.searchsorted(ys, yv))
        fig.add_trace(go.Scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", customdata=custom.reshape(-1, 3),
                                 text=np.asarray(text, dtype=object).ravel(), showlegend=False,
                                 marker={"size": 14, "symbol": "square", "opacity": 0.01, "color": "#000000"},
                                 hovertemplate=f"{CELL_NAMES.get(c, c)}<br>scale = %{{customdata[0]:.3g}}<br>"
                                               "%{text}<extra></extra>", name=f"{c} cells"),
                      row=1, col=k + 1)
        if c in ("rnn_tanh", "RNN (tanh)"):
            if _is_empty(boundary):
                bx, by = [1.0, 1.0], [-0.5, len(ys) - 0.5]
            else:
                b = boundary.sort_values("y")
                bx, by = b["critical_scale"].to_numpy(), np.searchsorted(ys, b["y"].to_numpy())
            fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", name="theory: σ_max(W_hh) = 1 (tanh RNN)",
                                     hoverinfo="skip", showlegend=True,
                                     line={"color": "#000000", "dash": "dot", "width": 3}), row=1, col=k + 1)
        half = (np.diff(scales) / 2) if len(scales) > 1 else np.array([0.5])
        fig.update_xaxes(title_text=xt, range=[scales[0] - half[0], scales[-1] + half[-1]], row=1, col=k + 1)
    note = f"blue: vanishing · red: exploding · colour clipped at ±{clip:g} decades" + \
        (" · blank: the forward pass overflowed" if any_nan else "")
    fig = _layout(fig, title, note=note,
                  coloraxis={"colorscale": "RdBu_r", "cmin": -clip, "cmax": clip, "cmid": 0,
                             "colorbar": {"title": {"text": "log10 ‖∂L/∂h_0‖ / ‖∂L/∂h_{T−1}‖", "side": "right"}}},
                  showlegend=True)
    fig.layout.margin.t += 30  # the panel titles
    every = max(1, len(ys) // 10)  # at most ~10 labels: readable from the back of a lecture hall
    fig.update_yaxes(tickvals=np.arange(len(ys))[::every], ticktext=[f"{v:g}" for v in ys][::every])
    fig.update_yaxes(title_text=yt, row=1, col=1)
    fig.update_yaxes(range=[-0.5, len(ys) - 0.5])  # the cells' edges: no padding for the invisible click markers
    fig.update_layout(height=HEIGHT + 160)
    fig.update_annotations(font=_font(FONT_SIZE))
    return fig


__all__ = [
    "FALLBACK_COLORS", "GATE_COLORS", "RUN_COLORS", "accuracy_vs_length", "attention_heatmap", "gate_heatmaps",
    "gate_saturation", "global_grad_norm", "grad_flow_heatmap", "grad_norm_vs_time", "layer_grad_norms",
    "loss_curves", "pca_trajectories", "phase_diagram", "presentation", "run_colors", "sample_html",
    "text_activation_html", "unit_heatmap",
]
