"""Figures for the syllabus views: connectivity (rnnviz.connectivity) and the "hello" model (rnnviz.hello).
Pure functions, tidy DataFrame -> plotly Figure, drawn like rnnviz.figures (projector fonts, the same run
colours, colour-blind-safe scales); fine in a notebook:

    cf = connectivity.connectivity_frames(runs, example=0)
    connectivity_heatmaps(cf).show()                       # one panel per run, text on both axes
    connectivity_reach(connectivity.reach_frame(cf)).show()
    softmax_steps(hello.step_table(model, task, "hell")).show()
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rnnviz.figures import FONT_SIZE, PRESENTATION_FONT_SIZE, _empty, _figure, _is_empty, _layout, run_colors
from rnnviz.hello import show_char

SCALES = ("log", "row")
MAX_TICKS = 130  # characters labelled along the width of a figure (all panels); beyond, every k-th one


def _ticks(n: int, panels: int = 1) -> int:
    """Label every k-th character: every one while n * panels fits in MAX_TICKS (strided text is hard to read)."""
    return max(1, math.ceil(n * panels / MAX_TICKS))


def connectivity_heatmaps(cf: pd.DataFrame, scale: str = "log") -> go.Figure:
    """C[t, s] = ||d f_t / d e_s|| (rnnviz.connectivity) as a heatmap per run, side by side: x = input step s
    labelled with the input character, y = output step t labelled with its target character, s > t blank.

    scale "log": colour = log10 C on one colour scale shared by every panel (runs compare directly);
    "row": each row divided by its maximum, so 1 marks the input that prediction depends on most."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    title = "‖∂f_t/∂e_s‖: how much prediction t depends on input s"  # fits presentation mode
    xt, yt = "input step s (the character read)", "output step t (the character to predict)"
    if _is_empty(cf):
        return _empty(title, xt, yt)
    cf = cf if "run" in cf else cf.assign(run="model")
    runs = list(dict.fromkeys(cf["run"]))
    n = int(cf["t"].max()) + 1
    fig = make_subplots(rows=1, cols=len(runs), shared_yaxes=True, horizontal_spacing=0.02 + 0.04 / len(runs),
                        subplot_titles=runs, figure=_figure())
    pos = cf["connectivity"].to_numpy(dtype=np.float64)
    pos = pos[np.isfinite(pos) & (pos > 0)]
    lo, hi = (math.log10(pos.min()), math.log10(pos.max())) if len(pos) else (0.0, 1.0)
    step = _ticks(n, len(runs))
    height = max(460, min(1100, 240 + 12 * n))
    for i, run in enumerate(runs, start=1):
        g = cf[cf["run"] == run]
        C = np.full((n, n), np.nan)
        C[g["t"].to_numpy(), g["s"].to_numpy()] = g["connectivity"].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(np.where(C > 0, C, np.nan)) if scale == "log" else C / np.nanmax(C, axis=1, keepdims=True)
        x_chars, y_chars = [""] * n, [""] * n
        for s, c in zip(g["s"], g["input"], strict=True):
            x_chars[s] = show_char(str(c))
        for t, c in zip(g["t"], g["target"], strict=True):
            y_chars[t] = show_char(str(c))
        fig.add_trace(go.Heatmap(  # float32: half the bytes sent to the browser
            z=z.astype(np.float32), x=[f"{s} '{c}'" for s, c in enumerate(x_chars)],
            y=[f"{t} '{c}'" for t, c in enumerate(y_chars)], customdata=C.astype(np.float32), coloraxis="coloraxis",
            hovertemplate=f"{run}<br>prediction at t = %{{y}} ← input at s = %{{x}}"
                          "<br>‖∂f_t/∂e_s‖ = %{customdata:.3e}<extra></extra>"),
            row=1, col=i)
        ticks = [f"{s} '{c}'" for s, c in enumerate(x_chars)][::step]
        fig.update_xaxes(type="category", tickvals=ticks, ticktext=x_chars[::step], row=1, col=i, showgrid=False,
                         tickangle=0, title_text=xt if i == (len(runs) + 1) // 2 else None)
        if i == 1:  # rows are thinner than the labels are tall (at presentation size too): every k-th row
            y_step = max(step, math.ceil(1.05 * PRESENTATION_FONT_SIZE / ((height - 230) / n)))
            fig.update_yaxes(type="category", tickvals=[f"{t} '{c}'" for t, c in enumerate(y_chars)][::y_step],
                             ticktext=y_chars[::y_step], row=1, col=1, title_text=yt)
    if scale == "log":
        coloraxis = {"colorscale": "Viridis", "cmin": lo, "cmax": hi,
                     "colorbar": {"title": {"text": "log10 ‖∂f_t/∂e_s‖", "side": "right"}}}
        note = "colour: log10, one scale for all panels; blank: s > t (exactly 0: the future is not read)"
    else:
        coloraxis = {"colorscale": "Viridis", "cmin": 0, "cmax": 1,
                     "colorbar": {"title": {"text": "÷ row max", "side": "right"}}}
        note = "each row divided by its maximum; blank: s > t (exactly 0: the future is not read)"
    fig.update_yaxes(autorange="reversed", showgrid=False)
    tick_font = {"size": FONT_SIZE - (4 if n * len(runs) > 60 else 0), "family": "monospace"}
    fig.update_xaxes(tickfont=tick_font)
    fig.update_yaxes(tickfont=tick_font)
    fig.update_annotations(font_size=FONT_SIZE + 1)
    fig = _layout(fig, title, note=note, coloraxis=coloraxis, height=height)
    fig.layout.margin.t = 130  # title, note, then the panels' titles
    return fig


def connectivity_reach(rf: pd.DataFrame) -> go.Figure:
    """Mean connectivity against how many steps back the input is (rnnviz.connectivity.reach_frame), one
    line per run on a log axis: a fast fall-off is a short memory."""
    title, xt, yt = "How far back the predictions reach", "steps back, t − s", "mean ‖∂f_t/∂e_s‖ (log scale)"
    if _is_empty(rf):
        return _empty(title, xt, yt)
    colors = run_colors(rf["run"].unique())
    fig = _figure()
    for run, g in rf.groupby("run", sort=False):
        g = g.sort_values("lag")
        y = g["connectivity"].to_numpy(dtype=np.float64)
        fig.add_trace(go.Scatter(
            x=g["lag"], y=np.where(y > 0, y, np.nan), mode="lines+markers" if len(g) <= 60 else "lines", name=str(run),
            line={"color": colors[run], "width": 3}, customdata=g["n"],
            hovertemplate=f"{run}<br>%{{x}} steps back<br>mean ‖∂f_t/∂e_s‖ = %{{y:.3e}}"
                          "<br>over %{customdata} predictions<extra></extra>"))
    fig = _layout(fig, title, xt, yt, note="mean over the predictions t that reach that far back")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def softmax_steps(table: pd.DataFrame) -> go.Figure:
    """The softmax p_t over the vocabulary at each step of rnnviz.hello.step_table (or greedy_steps): rows =
    steps (labelled with the input character), columns = next characters, the value printed in each cell;
    ○ marks the predicted character (the argmax), □ the target when the table has one."""
    title, xt, yt = "Softmax over the next character, step by step", "next character", "step t: input character"
    if _is_empty(table):
        return _empty(title, xt, yt)
    pcols = [c for c in table.columns if c.startswith("p[")]
    chars = [c[2:-1] for c in pcols]
    p = table[pcols].to_numpy(dtype=np.float64)  # (T, V)
    rows = [f"t={t}: {c}" for t, c in zip(table["t"], table["input"], strict=True)]
    fig = _figure(go.Heatmap(
        z=p, x=chars, y=rows, zmin=0, zmax=1, colorscale="Blues", colorbar={"title": {"text": "p"}},
        text=np.vectorize(lambda v: f"{v:.2f}")(p), texttemplate="%{text}", textfont={"size": FONT_SIZE},
        hovertemplate="%{y} → next '%{x}'<br>p = %{z:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=table["predicted"], y=rows, mode="markers", name="predicted (argmax)",
                             marker={"symbol": "circle-open", "size": 34, "line": {"width": 3, "color": "#D55E00"}},
                             hoverinfo="skip"))
    if "target" in table and (table["target"] != "").any():
        has = table["target"] != ""
        fig.add_trace(go.Scatter(x=table["target"][has], y=np.array(rows)[has.to_numpy()], mode="markers",
                                 name="target (the next character)",
                                 marker={"symbol": "square-open", "size": 42,
                                         "line": {"width": 2, "color": "#009E73"}}, hoverinfo="skip"))
    fig = _layout(fig, title, xt, yt, note="each row sums to 1", height=max(360, 220 + 48 * len(rows)),
                  legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    fig.update_yaxes(autorange="reversed", showgrid=False, type="category")
    fig.update_xaxes(showgrid=False, type="category", categoryorder="array", categoryarray=chars)
    fig.layout.margin.t = 130
    return fig


def weight_heatmaps(wf: pd.DataFrame) -> go.Figure:
    """The model's matrices side by side (rnnviz.hello.weights_frame: matrix, row, col, row_label, col_label,
    value), each on a red-white-blue scale centred at 0 over its own largest |value|."""
    title = "The weights, shared by every time step"
    if _is_empty(wf):
        return _empty(title)
    mats = list(dict.fromkeys(wf["matrix"]))
    fig = make_subplots(rows=1, cols=len(mats), subplot_titles=mats, horizontal_spacing=0.08, figure=_figure())
    for i, m in enumerate(mats, start=1):
        g = wf[wf["matrix"] == m]
        R, K = int(g["row"].max()) + 1, int(g["col"].max()) + 1
        z = np.full((R, K), np.nan)
        z[g["row"], g["col"]] = g["value"]
        rl = g.drop_duplicates("row").sort_values("row")["row_label"].tolist()
        cl = g.drop_duplicates("col").sort_values("col")["col_label"].tolist()
        mx = float(np.nanmax(np.abs(z))) or 1.0
        fig.add_trace(go.Heatmap(z=z, x=cl, y=rl, colorscale="RdBu", zmid=0, zmin=-mx, zmax=mx, showscale=False,
                                 text=np.vectorize(lambda v: f"{v:.2f}")(z), texttemplate="%{text}" if R * K <= 150
                                 else None, hovertemplate=f"{m}<br>row %{{y}}, column %{{x}}<br>%{{z:.4f}}"
                                                          "<extra></extra>"), row=1, col=i)
        fig.update_yaxes(autorange="reversed", type="category", row=1, col=i, showgrid=False)
        fig.update_xaxes(type="category", side="bottom", row=1, col=i, showgrid=False)
    fig.update_annotations(font_size=FONT_SIZE + 1)
    H = int(wf["row"].max()) + 1
    fig = _layout(fig, title, note="red < 0 < blue, each matrix on its own scale",
                  height=max(330, min(800, 180 + 32 * H)))
    fig.layout.margin.t = 130
    return fig


__all__ = ["SCALES", "connectivity_heatmaps", "connectivity_reach", "softmax_steps", "weight_heatmaps"]
