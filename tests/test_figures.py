"""rnnviz.figures on small hand-made tidy frames: trace counts and types, axes, empty inputs, downsampling;
projector legibility read off the figure objects (every text's size and colour, decade-only log axes, the
prediction cut at the measured range, heights, presentation mode) and the wrapping of text blocks."""

import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from rnnviz import figures as F

RUNS = ["RNN (tanh)", "LSTM"]


def _gf(T=6, steps=(0, 10)):
    rows = []
    for run in RUNS:
        for s in steps:
            for t in range(T):
                g = 0.5 ** (T - 1 - t)
                if run == "LSTM" and s == 10 and t < 2:
                    g = 0.0  # cut by truncation
                rows.append({"run": run, "step": s, "layer": 0, "direction": 0, "t": t, "grad_norm": g})
    return pd.DataFrame(rows)


def _hist(n=30, metric_name="mse"):
    rows = [{"run": r, "step": i + 1, "loss": 1.0 / (i + 1), "metric": 0.5 + i / (2 * n), "grad_norm": 3.0 / (i + 1),
             "grad_norm_clipped": min(1.0, 3.0 / (i + 1)), "baseline": 1 / 6, "metric_name": metric_name}
            for r in RUNS for i in range(n)]
    return pd.DataFrame(rows)


def _gates(T=5, H=3, gates=("input", "forget", "cell", "output", "cell state", "hidden")):
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"gate": g, "t": t, "unit": u, "value": float(rng.uniform(-1, 1))}
                         for g in gates for t in range(T) for u in range(H)])


def _pf(B=4, T=5):
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"sequence": b, "t": t, "pc1": rng.normal(), "pc2": rng.normal(), "pc3": rng.normal(),
                          "label": "odd" if b % 2 else "even"} for b in range(B) for t in range(T)])


def _phase():
    return pd.DataFrame([{"cell": c, "scale": s, "seq_len": T, "log_ratio": np.log10(s) * T}
                         for c in ("rnn_tanh", "lstm") for s in (0.5, 1.0, 1.5) for T in (10, 50, 100)])


def _att(T_out=4, T_in=5):
    w = np.full((T_out, T_in), 1 / T_in)
    return pd.DataFrame([{"dec": i, "enc": j, "weight": w[i, j]} for i in range(T_out) for j in range(T_in)])


def luminance(color: str) -> float:
    """WCAG relative luminance of "#rrggbb" / "#rgb" / "rgb(r, g, b)" (0 black, 1 white)."""
    if color.startswith("#"):
        h = color[1:]
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        rgb = [int(h[i:i + 2], 16) for i in (0, 2, 4)]
    else:
        rgb = [int(v) for v in re.findall(r"\d+", color)[:3]]
    lin = [(c / 255) / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def cielab(color: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of "#rrggbb": Euclidean distances are ΔE76, about 2.3 for a just noticeable difference."""
    lin = [(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
           for c in (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))]
    x, y, z = (sum(m * c for m, c in zip(row, lin, strict=True)) for row in
               ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505)))

    def f(t):
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = f(x / 0.95047), f(y), f(z / 1.08883)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def fonts(fig):
    """(path, font dict) of every font a figure sets: the layout (not the template) and the traces' text and
    colour bars."""
    out = []

    def walk(d, path):
        if isinstance(d, dict):
            for k, v in d.items():
                if "font" in k and isinstance(v, dict):
                    out.append((f"{path}.{k}", v))
                else:
                    walk(v, f"{path}.{k}")
        elif isinstance(d, list | tuple):
            for i, v in enumerate(d):
                walk(v, f"{path}[{i}]")

    lay = fig.layout.to_plotly_json()
    lay.pop("template", None)
    walk(lay, "layout")
    for i, tr in enumerate(fig.to_plotly_json()["data"]):
        walk({k: v for k, v in tr.items() if k in ("textfont", "colorbar")}, f"data[{i}]")
    return out


def axes(fig):
    lay = fig.layout.to_plotly_json()
    return {k: v for k, v in lay.items() if re.fullmatch(r"[xy]axis\d*", k)}


def _projector_ready(fig, min_px=14):
    """What a lecture hall needs, read off the figure: every text has an explicit size >= min_px and a dark
    colour (luminance <= 0.45), also under Streamlit's chart theme (which fills in 12 px grey wherever the
    figure leaves a text unset): each axis's tick labels and title, colour bars, panel titles, legend, hover.
    The title is larger than the tick labels."""
    assert isinstance(fig, go.Figure)
    assert fig.layout.font.size >= 16
    assert fig.layout.title.text
    assert fig.layout.template.layout.paper_bgcolor == "white"  # plotly_white
    for path, f in fonts(fig):
        assert f.get("size", 0) >= min_px, f"{path}: {f}"
        assert "color" in f and luminance(f["color"]) <= 0.45, f"{path}: {f}"
    for name, ax in axes(fig).items():
        for key in ("tickfont", "title"):
            f = ax[key] if key == "tickfont" else ax["title"]["font"]
            assert f["size"] >= min_px and luminance(f["color"]) <= 0.45, (name, key, f)
    for k in ("legend", "hoverlabel"):
        f = fig.layout[k].font
        assert f.size >= min_px and luminance(f.color) <= 0.45, k
    for i, tr in enumerate(fig.data):
        if tr.type == "heatmap":
            assert tr.colorbar.tickfont.size >= min_px and tr.colorbar.title.font.size >= min_px, i
    # larger than any tick label, also a log axis's 10^k, which plotly draws at 1.25x the tick font
    assert fig.layout.title.font.size > 1.25 * max(fig.layout[a].tickfont.size for a in axes(fig))
    fig.to_json()  # serialisable, as Streamlit needs


def decade_only(fig, axis="yaxis"):
    """A log axis that plotly labels at whole decades only, with at least two labels in its range."""
    ax = fig.layout[axis]
    assert ax.type == "log"
    assert ax.tick0 == 0 and isinstance(ax.dtick, int) and ax.dtick >= 1, (ax.tick0, ax.dtick)
    lo, hi = ax.range
    decades = [k for k in range(math.ceil(lo), math.floor(hi) + 1) if k % ax.dtick == 0]
    assert len(decades) >= 2, (lo, hi, ax.dtick)
    assert ax.exponentformat == "power"
    return lo, hi


def test_grad_norm_vs_time():
    gf = _gf()
    pred = pd.DataFrame({"run": "RNN (tanh)", "t": range(6), "bound": 0.6 ** (5 - np.arange(6))})
    fig = F.grad_norm_vs_time(gf, predicted=pred)
    _projector_ready(fig)
    names = [d.name for d in fig.data]
    assert len(fig.data) == 4  # 2 lines + the zeros of the LSTM + 1 prediction
    assert fig.layout.yaxis.type == "log" and "log scale" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.title.text == "time step t"
    assert fig.layout.title.text == "‖∂L/∂h_t‖ at each time step · step 10"
    line = fig.data[names.index("RNN (tanh)")]
    assert line.line.color == F.RUN_COLORS["RNN (tanh)"]
    zeros = next(d for d in fig.data if "exactly 0" in (d.name or ""))
    assert list(zeros.x) == [0, 1] and "exactly 0 (cut by truncation)" in zeros.hovertemplate
    assert max(zeros.y) < gf.loc[gf.grad_norm > 0, "grad_norm"].min()  # drawn below every real value
    lstm = fig.data[names.index("LSTM")]
    assert np.isnan(lstm.y[0]) and np.isnan(lstm.y[1])  # the line breaks at the cut
    p = next(d for d in fig.data if d.name == "predicted σ_max^(T−1−t)")  # one prediction: no run in its name
    assert p.line.dash == "dash" and p.line.color == F.RUN_COLORS["RNN (tanh)"]

    lo, hi = decade_only(fig)
    assert lo < math.log10(min(zeros.y)) and hi > 0  # the zeros' row and the largest value (1) are inside
    assert "prediction cut" not in fig.layout.title.subtitle.text  # this prediction lies inside the range

    old = F.grad_norm_vs_time(gf, step=5)  # the snapshot at the largest step <= 5
    assert old.layout.title.text.endswith("· step 0") and len(old.data) == 2


def test_grad_norm_prediction_is_cut_at_the_measured_range():
    """A prediction decades away from the measured values does not set the axis: the range is the one without
    it, the dashed line is cut at the plot's edge, and the note says so."""
    gf = _gf()
    plain = F.grad_norm_vs_time(gf)
    for bound in (1e12 * 0.5 ** (5 - np.arange(6)), 1e-40 * np.ones(6)):  # far above, far below
        pred = pd.DataFrame({"run": "RNN (tanh)", "t": range(6), "bound": bound})
        fig = F.grad_norm_vs_time(gf, predicted=pred)
        assert list(fig.layout.yaxis.range) == list(plain.layout.yaxis.range)
        lo, hi = decade_only(fig)
        p = next(d for d in fig.data if "predicted" in d.name)
        assert (np.asarray(p.y) > 10 ** hi).any() or (np.asarray(p.y) < 10 ** lo).any()  # drawn, cut by the axis
        assert "dashed prediction cut at the plot's edge" in fig.layout.title.subtitle.text
    assert hi < math.log10(1e12 * 0.5 ** 5)


def test_grad_norm_layers_and_directions_are_told_apart():
    """One run, 2 layers x 2 directions: one colour (the run's), four distinct (dash, marker symbol) pairs,
    legend names that say layer and direction; two runs keep two colours."""
    rows = [{"run": r, "step": 0, "layer": layer, "direction": d, "t": t, "grad_norm": 2.0 ** -(t + layer + d)}
            for r in ("LSTM", "GRU") for layer in (0, 1) for d in (0, 1) for t in range(80)]
    fig = F.grad_norm_vs_time(pd.DataFrame(rows))
    _projector_ready(fig)
    lstm = [d for d in fig.data if d.name.startswith("LSTM")]
    assert [d.name for d in lstm] == ["LSTM · layer 0, forward", "LSTM · layer 0, backward",
                                      "LSTM · layer 1, forward", "LSTM · layer 1, backward"]
    assert {d.line.color for d in lstm} == {F.RUN_COLORS["LSTM"]}
    assert len({(d.line.dash, d.marker.symbol) for d in lstm}) == 4
    assert len({d.marker.symbol for d in lstm}) == 4 and len({d.line.dash for d in lstm}) == 4
    assert all("markers" in d.mode and 0 < d.marker.maxdisplayed <= 20 for d in lstm)  # 80 steps: few symbols
    assert {d.line.color for d in fig.data} == {F.RUN_COLORS["LSTM"], F.RUN_COLORS["GRU"]}
    one = F.grad_norm_vs_time(pd.DataFrame([r for r in rows if r["layer"] == 0 and r["direction"] == 0]))
    assert [d.name for d in one.data] == ["LSTM", "GRU"]


def test_grad_norm_says_when_the_snapshot_lags_training():
    gf = _gf()  # snapshots at steps 0 and 10
    assert "training is at step 14" in F.grad_norm_vs_time(gf, now=14).layout.title.subtitle.text
    assert F.grad_norm_vs_time(gf, now=14).layout.title.text.endswith("· step 10")
    assert "training is at" not in F.grad_norm_vs_time(gf, now=10).layout.title.subtitle.text
    assert "training is at" not in F.grad_norm_vs_time(gf).layout.title.subtitle.text


def test_grad_flow_heatmap_and_downsampling():
    fig = F.grad_flow_heatmap(_gf(), run="LSTM")
    _projector_ready(fig)
    (hm,) = fig.data
    assert isinstance(hm, go.Heatmap) and np.asarray(hm.z).shape == (2, 6)
    assert hm.colorbar.title.text == "log10 ‖∂L/∂h_t‖"
    assert fig.layout.yaxis.title.text == "training step" and fig.layout.xaxis.title.text == "time step t"
    assert np.isnan(np.asarray(hm.z, dtype=float)[1, 0])  # exact zero -> blank
    np.testing.assert_allclose(np.asarray(hm.z, dtype=float)[0], np.log10(0.5) * (5 - np.arange(6)))
    S, T = np.meshgrid(np.arange(0, 5000, 5), np.arange(700), indexing="ij")  # 1000 snapshots x 700 steps
    big = pd.DataFrame({"run": "LSTM", "step": S.ravel(), "layer": 0, "direction": 0, "t": T.ravel(),
                        "grad_norm": 1.0})
    z = np.asarray(F.grad_flow_heatmap(big).data[0].z)
    assert z.shape[0] <= F.MAX_CELLS and z.shape[1] <= F.MAX_CELLS


def test_global_grad_norm_and_loss_curves():
    h = _hist()
    fig = F.global_grad_norm(h, clip=1.0)
    _projector_ready(fig)
    assert len(fig.data) == 2 * 2 + 1 and fig.layout.yaxis.type == "log"
    assert fig.data[-1].name == "clip threshold 1" and list(fig.data[-1].y) == [1.0, 1.0]
    assert [d.name for d in fig.data[:2]] == ["RNN (tanh)", "RNN (tanh), clipped"]
    assert len(F.global_grad_norm(h).data) == 2

    loss = F.loss_curves(h)
    _projector_ready(loss)
    assert len(loss.data) == 2 * 2 + 1 and loss.data[-1].name == "trivial baseline"
    assert loss.data[-1].line.dash == "dash" and loss.layout.yaxis.type == "log"
    assert loss.layout.xaxis.title.text == "training step"
    for f in (fig, loss):
        decade_only(f)
    acc = F.loss_curves(_hist(metric_name="accuracy"), metric=True)
    assert len(acc.data) == 4 and acc.layout.yaxis.type != "log" and acc.layout.yaxis.title.text == "accuracy"
    assert len(F.loss_curves(h, metric=True).data) == 5  # mse metric = the loss: baseline applies


@pytest.mark.parametrize("values, want", [
    ((0.15, 0.2), (-1, 0)),            # within one decade: widened to the decades around it
    ((0.9, 1.2), (-1, 1)),             # across 1: both neighbours
    ((1.0, 1.0), (-1, 1)),             # constant
    ((1e-3, 1e5), None),               # wide: padded, labelled every decade (8 decades + padding -> dtick 2)
])
def test_log_axes_label_decades_only(values, want):
    """No "2" or "5" between decades: dtick is a whole number of decades and the range always holds two decade
    labels, also when the values stay within one decade (where plotly would label 2, 3, 5 by itself)."""
    lo, hi = values
    h = pd.DataFrame([{"run": "GRU", "step": i, "loss": lo + (hi - lo) * i / 9, "metric": 0.5, "grad_norm": lo,
                       "grad_norm_clipped": lo, "baseline": np.nan, "metric_name": "mse"} for i in range(10)])
    decade_only(F.global_grad_norm(h))  # constant: grad_norm = lo
    loss = F.loss_curves(h)
    r = decade_only(loss)
    assert 10 ** r[0] <= lo and 10 ** r[1] >= hi
    if want is not None:
        assert tuple(r) == want
    else:
        assert loss.layout.yaxis.dtick == 2


def test_layer_grad_norms():
    lg = pd.DataFrame([{"run": r, "step": s, "group": g, "grad_norm": 1.0 + s}
                       for r in RUNS for g in ("core.l0", "head") for s in range(1, 4)])
    fig = F.layer_grad_norms(lg)
    _projector_ready(fig)
    assert len(fig.data) == 4 and fig.layout.yaxis.type == "log"
    one = F.layer_grad_norms(lg[lg.run == "LSTM"])
    assert [d.name for d in one.data] == ["core.l0", "head"]
    decade_only(fig)
    two = [d for d in fig.data if d.name.startswith("LSTM")]
    assert len({(d.line.dash, d.marker.symbol) for d in two}) == 2 and len({d.line.color for d in two}) == 1


def test_gate_heatmaps():
    fig = F.gate_heatmaps(_gates())
    _projector_ready(fig)
    assert len(fig.data) == 6 and all(isinstance(d, go.Heatmap) for d in fig.data)
    assert [d.coloraxis for d in fig.data] == ["coloraxis"] * 2 + ["coloraxis2"] + ["coloraxis"] + ["coloraxis2"] * 2
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    assert (fig.layout.coloraxis2.cmin, fig.layout.coloraxis2.cmax) == (-1, 1)
    # axis titles and tick labels on the bottom row and the first column only: none between the panels
    assert fig.layout.xaxis4.title.text == "time step t" and fig.layout.yaxis.title.text == "unit"
    assert fig.layout.xaxis.title.text is None and fig.layout.yaxis2.title.text is None
    assert fig.layout.xaxis.showticklabels is False and fig.layout.xaxis4.showticklabels is not False
    assert fig.layout.yaxis2.showticklabels is False and fig.layout.yaxis4.showticklabels is not False
    assert (fig.layout.coloraxis.colorbar.dtick, fig.layout.coloraxis2.colorbar.dtick) == (0.5, 1)
    assert fig.layout.height <= F.HEIGHT + 40
    assert all(a.font.size >= 14 and luminance(a.font.color) <= 0.45 for a in fig.layout.annotations)
    gru = F.gate_heatmaps(_gates(gates=("reset", "update", "new", "hidden")))
    assert len(gru.data) == 4
    # 4 panels in 2 x 3: the top row's 2nd and 3rd have no panel below, so they keep their t labels and title
    assert gru.layout.xaxis.showticklabels is False and gru.layout.xaxis2.showticklabels is not False
    assert gru.layout.xaxis2.title.text == "time step t" and gru.layout.xaxis4.title.text == "time step t"
    t, u = np.meshgrid(np.arange(900), np.arange(400), indexing="ij")
    big = F.gate_heatmaps(pd.DataFrame({"gate": "forget", "t": t.ravel(), "unit": u.ravel(), "value": 0.5}))
    assert all(s <= F.MAX_CELLS for s in np.asarray(big.data[0].z).shape)


def test_gate_saturation():
    gs = pd.DataFrame([{"run": "LSTM", "step": s, "layer": 0, "direction": 0, "gate": g, "mean": 0.5,
                        "frac_low": 0.1, "frac_high": 0.2} for g in ("input", "forget") for s in (0, 10)])
    fig = F.gate_saturation(gs)
    _projector_ready(fig)
    assert len(fig.data) == 4 and list(fig.layout.yaxis.range) == [0, 1]


def test_pca_trajectories():
    pf = _pf()
    fig = F.pca_trajectories(pf)
    _projector_ready(fig)
    # one trace: the 4 paths of 5 steps each, a gap (NaN) between paths; t = 0 drawn as a diamond
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Scatter) and not fig.data[0].connectgaps
    x = np.asarray(fig.data[0].x, dtype=float)
    assert len(x) == 4 * 5 + 3 and np.isnan(x[5::6]).all() and np.isfinite(np.delete(x, [5, 11, 17])).all()
    first = pf[pf.sequence == 0].sort_values("t")
    np.testing.assert_allclose(x[:5], first["pc1"]) and np.testing.assert_allclose(fig.data[0].y[:5], first["pc2"])
    assert list(fig.data[0].marker.symbol[:6]) == ["diamond"] + ["circle"] * 5
    assert fig.data[0].mode == "lines+markers" and fig.layout.coloraxis.showscale
    assert fig.layout.xaxis.title.text.startswith("PC1")
    f3 = F.pca_trajectories(pf, dims=3, color="label", explained=[0.5, 0.3, 0.1])
    assert all(isinstance(d, go.Scatter3d) for d in f3.data)
    assert sorted(d.name for d in f3.data if d.showlegend) == ["even", "odd"]
    assert f3.layout.scene.xaxis.title.text == "PC1 of h_t (50% of variance)"
    with pytest.raises(ValueError):
        F.pca_trajectories(pf, dims=4)


def test_unit_heatmap():
    uf = _gates(gates=("hidden",)).drop(columns="gate")
    fig = F.unit_heatmap(uf)
    _projector_ready(fig)
    (hm,) = fig.data
    assert np.asarray(hm.z).shape == (3, 5) and (hm.zmin, hm.zmax) == (-1, 1)


def _style(html_text: str) -> dict[str, str]:
    """The CSS of the outer div as a dict."""
    css = re.match(r'<div style="([^"]*)">', html_text).group(1)
    return dict(tuple(x.strip() for x in d.split(":", 1)) for d in css.split(";") if d.strip())


def test_text_activation_html_escapes_and_wraps():
    out = F.text_activation_html(list("<script>") + ["\n", "&"], [1.0] * 8 + [0.0, -1.0])
    assert "<script>" not in out and "&lt;" in out and "&gt;" in out and "&amp;" in out
    assert "↵" in out and out.count("<span") == 10
    assert "rgb(33,102,172)" in out and "rgb(178,24,43)" in out  # +1 blue, -1 red
    css = _style(out)  # a long line wraps at the container's width, at any character
    assert css["white-space"] == "pre-wrap" and css["word-break"] == "break-all"
    assert css["overflow-wrap"] == "anywhere" and css["max-width"] == "100%"
    assert int(css["font-size"].removesuffix("px")) >= 14


def test_sample_html_wraps_and_escapes():
    long = "x" * 5000 + " <b>&"
    out = F.sample_html(long, prefix="To be<")
    assert out.startswith('<div style="') and out.endswith("</div>")
    assert "<b>To be&lt;</b>" in out and "&lt;b&gt;&amp;" in out and "<b>&" not in out
    css = _style(out)
    assert css["white-space"] == "pre-wrap" and css["overflow-wrap"] == "anywhere"  # no line runs off
    assert luminance(css["color"]) <= 0.45 and int(css["font-size"].removesuffix("px")) >= 14
    assert F.sample_html("a\nb") .count("\n") == 1  # newlines kept (pre-wrap shows them)


def test_attention_heatmap():
    src, tgt = list("12345"), list("5432")
    fig = F.attention_heatmap(_att(), src, tgt, ideal="anti-diagonal")
    _projector_ready(fig)
    assert isinstance(fig.data[0], go.Heatmap) and (fig.data[0].zmin, fig.data[0].zmax) == (0, 1)
    assert list(fig.layout.xaxis.ticktext) == src and list(fig.layout.yaxis.ticktext) == tgt
    assert fig.layout.yaxis.autorange == "reversed"
    ideal = fig.data[1]
    assert list(ideal.x) == [4, 3, 2, 1] and list(ideal.y) == [0, 1, 2, 3] and ideal.line.dash == "dot"
    assert len(F.attention_heatmap(_att(), src, tgt).data) == 1
    with pytest.raises(ValueError):
        F.attention_heatmap(_att(), src, tgt, ideal="circle")


def test_accuracy_vs_length():
    df = pd.DataFrame({"length": [4, 8, 4, 8], "attention": ["none", "none", "luong_general", "luong_general"],
                       "accuracy": [0.9, 0.5, 1.0, 0.95]})
    fig = F.accuracy_vs_length(df)
    _projector_ready(fig)
    assert len(fig.data) == 2 and fig.layout.xaxis.title.text == "sequence length T"


def test_phase_diagram():
    fig = F.phase_diagram(_phase())
    _projector_ready(fig)
    heat = [d for d in fig.data if isinstance(d, go.Heatmap)]
    assert len(heat) == 2
    custom = np.asarray(heat[0].customdata)
    assert custom.shape == (3, 3, 3)
    assert custom[0, 2].tolist() == [1.5, 10, "rnn_tanh"] and custom[2, 0].tolist() == [0.5, 100, "rnn_tanh"]
    line = next(d for d in fig.data if isinstance(d, go.Scatter) and d.mode == "lines")
    assert list(line.x) == [1.0, 1.0]  # the tanh RNN's theoretical boundary
    # clickable (invisible) markers on every cell carry the same customdata
    marks = [d for d in fig.data if isinstance(d, go.Scatter) and d.mode == "markers"]
    assert len(marks) == 2 and len(marks[0].x) == 9
    assert [list(map(str, r)) for r in marks[0].customdata] == [list(map(str, r)) for r in custom.reshape(-1, 3)]
    assert fig.layout.coloraxis.cmid == 0 and fig.layout.coloraxis.colorscale[0][1] != "rgb(255,255,255)"
    assert list(fig.layout.yaxis.ticktext) == ["10", "50", "100"]
    assert fig.layout.yaxis.title.text == "sequence length T"
    assert "T = 50" in heat[0].text[1][0]
    only = F.phase_diagram(_phase(), cell="lstm")
    assert [d.type for d in only.data] == ["heatmap", "scatter"]  # cells + click markers, no boundary line
    z = np.asarray(F.phase_diagram(_phase().assign(log_ratio=99.0)).data[0].z)
    assert z.max() == 10  # clipped


def test_phase_diagram_of_a_real_sweep():
    from rnnviz.phase import PhaseConfig, boundary, sweep

    cfg = PhaseConfig(cells=("rnn_tanh", "gru"), scales=(0.5, 1.0, 1.5), seq_lens=(5, 10), hidden_size=4, seeds=(0,),
                      batch=2, init="default")
    df, b = sweep(cfg, cache=False), boundary(cfg)
    fig = F.phase_diagram(df, boundary=b)
    heat = [d for d in fig.data if isinstance(d, go.Heatmap)]
    assert len(heat) == 2 and np.asarray(heat[1].customdata)[1, 2].tolist() == [1.5, 10, "gru"]
    line = next(d for d in fig.data if isinstance(d, go.Scatter) and d.mode == "lines")
    np.testing.assert_allclose(line.x, b["critical_scale"])  # not 1 for the default init
    lstm = PhaseConfig(cells=("lstm",), scales=(0.5, 1.0), seq_len=20, y_axis="forget_bias",
                       forget_biases=(0.0, 1.0, 2.0), hidden_size=4, seeds=(0,), batch=2)
    fig = F.phase_diagram(sweep(lstm, cache=False))
    assert fig.layout.yaxis.title.text == "LSTM forget-gate bias b_f"
    assert list(fig.layout.yaxis.ticktext) == ["0", "1", "2"]
    assert np.asarray(fig.data[0].customdata)[2, 1].tolist() == [1.0, 20, "lstm"]  # seq_len to load


@pytest.mark.parametrize("call", [
    lambda e: F.grad_norm_vs_time(e), lambda e: F.grad_flow_heatmap(e, run="LSTM"), lambda e: F.global_grad_norm(e),
    lambda e: F.loss_curves(e), lambda e: F.loss_curves(e, metric=True), lambda e: F.layer_grad_norms(e),
    lambda e: F.gate_heatmaps(e), lambda e: F.gate_saturation(e), lambda e: F.pca_trajectories(e),
    lambda e: F.unit_heatmap(e), lambda e: F.attention_heatmap(e, [], []), lambda e: F.accuracy_vs_length(e),
    lambda e: F.phase_diagram(e)])
@pytest.mark.parametrize("empty", [None, pd.DataFrame()])
def test_empty_inputs_say_so(call, empty):
    fig = call(empty)
    _projector_ready(fig)
    assert len(fig.data) == 0
    assert any(a.text == F.EMPTY for a in fig.layout.annotations)


def test_empty_frames_with_columns():
    gf = _gf().iloc[:0]
    assert F.grad_norm_vs_time(gf).layout.annotations[0].text == F.EMPTY
    assert F.grad_flow_heatmap(_gf(), run="GRU").layout.annotations[0].text == F.EMPTY  # no such run


def test_run_colors_are_stable_and_distinct():
    labels = ["LSTM + Bahdanau attention", "LSTM, no attention", "GRU"]
    a = F.run_colors(labels)
    assert a["GRU"] == F.RUN_COLORS["GRU"] and len(set(a.values())) == 3
    assert F.run_colors(list(reversed(labels))) == a
    # every preset's compared runs: one colour each, dark enough for a line on a projector
    from rnnviz.presets import PRESETS

    for p in PRESETS:
        runs = list(p.controls().variants())
        c = F.run_colors(runs)
        assert len(set(c.values())) == len(runs), (p.name, c)
        lab = [cielab(v) for v in c.values()]
        for i in range(len(lab)):  # no two alike: vermillion #D55E00 and orange #E69F00 are ΔE 33 apart
            for j in range(i):
                assert math.dist(lab[i], lab[j]) >= 45, (p.name, c)
    for color in [*F.RUN_COLORS.values(), *F.FALLBACK_COLORS]:
        assert luminance(color) <= 0.45, color
    many = F.run_colors([f"run {i}" for i in range(len(F.FALLBACK_COLORS))])
    assert len(set(many.values())) == len(F.FALLBACK_COLORS)
    lab = [cielab(v) for v in F.FALLBACK_COLORS]
    assert min(math.dist(a, b) for i, a in enumerate(lab) for b in lab[:i]) >= 45


MAIN_CHARTS = {  # a training page's main chart: it must fit below the status on a 1280x800 screen
    "grad_norm_vs_time": lambda: F.grad_norm_vs_time(_gf()),
    "gate_heatmaps": lambda: F.gate_heatmaps(_gates()),
    "pca_trajectories": lambda: F.pca_trajectories(_pf()),
    "attention_heatmap": lambda: F.attention_heatmap(_att(), list("12345"), list("5432")),
    "loss_curves": lambda: F.loss_curves(_hist()),
}


@pytest.mark.parametrize("name", list(MAIN_CHARTS))
def test_main_charts_are_short_with_tight_margins(name):
    fig = MAIN_CHARTS[name]()
    assert fig.layout.height <= F.HEIGHT + 40, fig.layout.height
    m = fig.layout.margin
    sub = fig.layout.title.subtitle.text
    lines = sub.count("<br>") + 1 if sub else 0
    panels = 30 if fig.layout.annotations else 0  # panel titles below the title
    assert m.t <= 50 + 21 * lines + panels and m.b <= 20 and m.l <= 20 and m.r <= 20  # axes, legend push them as needed
    assert all(len(line) <= F.NOTE_CHARS for line in (sub or "").split("<br>"))  # fits half a 1280 px screen
    lg = fig.layout.legend  # below the plot, across its width: a narrow chart keeps its plot area
    assert (lg.orientation, lg.yref, lg.y, lg.yanchor) == ("h", "container", 0, "bottom")
    assert all(fig.layout[a].automargin for a in axes(fig))


ALL_FIGURES = {**MAIN_CHARTS,
               "grad_flow_heatmap": lambda: F.grad_flow_heatmap(_gf(), run="LSTM"),
               "global_grad_norm": lambda: F.global_grad_norm(_hist(), clip=1.0),
               "metric": lambda: F.loss_curves(_hist(metric_name="accuracy"), metric=True),
               "gate_saturation": lambda: F.gate_saturation(pd.DataFrame(
                   [{"run": "LSTM", "step": s, "layer": 0, "direction": 0, "gate": "forget", "mean": 0.5,
                     "frac_low": 0.1, "frac_high": 0.2} for s in (0, 10)])),
               "pca_3d": lambda: F.pca_trajectories(_pf(), dims=3),
               "unit_heatmap": lambda: F.unit_heatmap(_gates(gates=("hidden",)).drop(columns="gate")),
               "accuracy_vs_length": lambda: F.accuracy_vs_length(pd.DataFrame(
                   {"length": [4, 8], "attention": ["none", "none"], "accuracy": [0.9, 0.5]})),
               "phase_diagram": lambda: F.phase_diagram(_phase()),
               "empty": lambda: F.grad_norm_vs_time(None)}


@pytest.mark.parametrize("name", list(ALL_FIGURES))
def test_presentation_enlarges_every_text(name):
    """presentation(fig): every font size scaled by PRESENTATION_FONT_SIZE / FONT_SIZE (>= 18 px for what was
    16), colours kept, the note re-wrapped into shorter lines, the top margin scaled with the text, the height
    kept; a second call changes nothing; the same object is returned."""
    fig = ALL_FIGURES[name]()
    _projector_ready(fig)
    before = {p: dict(f) for p, f in fonts(fig)}
    t0, h0 = fig.layout.margin.t, fig.layout.height
    fig_lines = (fig.layout.title.subtitle.text or "").count("<br>")
    big = F.presentation(fig)
    assert big is fig
    after = dict(fonts(big))
    assert after.keys() == before.keys()
    k = F.PRESENTATION_FONT_SIZE / F.FONT_SIZE
    for p, f in before.items():
        assert after[p]["size"] == pytest.approx(f["size"] * k), p
        assert after[p].get("color") == f.get("color"), p
    assert min(f["size"] for f in after.values()) >= 18
    sub = big.layout.title.subtitle.text
    extra = (sub.count("<br>") - fig_lines) if sub else 0  # the note re-wrapped into shorter lines
    assert big.layout.margin.t == round((t0 + 21 * extra) * k)
    assert big.layout.height == h0  # the page's room: the chart still fits the screen
    assert all(len(line) <= round(F.NOTE_CHARS / k) or " · " not in line for line in (sub or "").split("<br>"))
    _projector_ready(big, min_px=18)
    again = {p: dict(f) for p, f in fonts(F.presentation(big))}
    assert again == {p: dict(f) for p, f in after.items()}


def test_figures_carry_plotly_white_and_still_validate():
    """figures._figure skips re-validating plotly's own template only: the result is plotly_white, and a bad
    property added afterwards is still an error (as with a plain go.Figure)."""
    fast = F._figure(go.Scatter(x=[0, 1], y=[1, 2]))
    plain = go.Figure(go.Scatter(x=[0, 1], y=[1, 2]), layout={"template": "plotly_white"})
    assert fast.to_dict() == plain.to_dict()
    with pytest.raises(ValueError, match="Invalid property"):
        fast.update_layout(not_a_layout_property=1)
    with pytest.raises(ValueError):
        fast.add_trace(go.Scatter(x=[0], y=[0], mode="not-a-mode"))


@pytest.mark.parametrize("kw", [{}, {"height": 500, "coloraxis": {"colorscale": "RdBu_r", "cmin": -1, "cmax": 1}},
                                {"legend": {"orientation": "h", "y": -0.25}, "margin": {"t": 130, "b": 120}}])
def test_layout_matches_plotlys_own_update_layout(kw):
    """_layout assigns the common properties directly (fast); the figure is what update_layout would build."""
    fast = F._layout(F._figure(go.Scatter(x=[0, 1], y=[1, 2])), "title", "x", "y", note="note", **kw)
    plain = go.Figure(go.Scatter(x=[0, 1], y=[1, 2]))
    font = {"size": F.FONT_SIZE, "color": F.TEXT}
    t = {"text": "title", "font": {"size": F.FONT_SIZE + 6, "color": F.TEXT}, "yref": "container", "y": 1,
         "yanchor": "top", "pad": {"t": 8},
         "subtitle": {"text": "note", "font": {"size": F.FONT_SIZE - 1, "color": F.TEXT}}}
    plain.update_layout(**{"template": "plotly_white", "title": t, "font": font,
                           "hoverlabel": {"font": font, "bgcolor": "white"},
                           "legend": {"font": font, "orientation": "h", "x": 0, "xanchor": "left", "y": 0,
                                      "yref": "container", "yanchor": "bottom"},
                           "margin": {"t": 71, "b": 10, "l": 10, "r": 10}, "height": F.HEIGHT})
    plain.update_layout(**kw)  # extra properties merge into the common ones (a legend keeps its font size)
    axis = {"tickfont": font, "title_font": font, "automargin": True}
    plain.update_xaxes(**axis, title_text="x").update_yaxes(**axis, title_text="y")
    if "coloraxis" in kw:
        plain.update_coloraxes(colorbar={"tickfont": font, "title_font": font})
    assert fast.to_dict() == plain.to_dict()


@pytest.mark.parametrize("seed", range(4))
def test_grid_is_pandas_pivot_table(seed):
    """figures._grid against pandas' own pivot_table(aggfunc="mean", dropna=False) with its strided rows and
    columns: duplicates averaged, NaN values skipped, missing cells NaN, unsorted input, float keys, infinities."""
    rng = np.random.default_rng(seed)
    n = 2000
    df = pd.DataFrame({"r": rng.integers(0, 40, n) * 0.5, "c": rng.integers(-5, 700, n),
                       "v": rng.normal(size=n)})
    df.loc[rng.random(n) < 0.1, "v"] = np.nan
    df.loc[rng.random(n) < 0.01, "v"] = np.inf
    rows, cols, z = F._grid(df, "r", "c", "v")
    m = df.pivot_table(index="r", columns="c", values="v", aggfunc="mean", dropna=False).sort_index()
    m = m[sorted(m.columns)]
    sr, sc = max(1, math.ceil(m.shape[0] / F.MAX_CELLS)), max(1, math.ceil(m.shape[1] / F.MAX_CELLS))
    m = m.iloc[::sr, ::sc]
    assert sc > 1 and z.shape[1] <= F.MAX_CELLS
    np.testing.assert_array_equal(rows, m.index.to_numpy())
    np.testing.assert_array_equal(cols, m.columns.to_numpy())
    np.testing.assert_allclose(z, m.to_numpy(dtype=np.float64), rtol=1e-12, atol=0)  # NaN where NaN


@pytest.mark.parametrize("rows, cols, n", [(2, 3, 6), (2, 3, 4), (1, 3, 3), (1, 2, 2), (3, 3, 7)])
def test_panels_are_make_subplots(rows, cols, n):
    """figures._panels (a cached grid layout, traces naming their axes) builds the figure plotly's own
    make_subplots + add_trace(row=, col=) builds."""
    from plotly.subplots import make_subplots

    titles = [f"panel {i} ±" for i in range(n)]
    ours = F._panels(rows, cols, titles, horizontal_spacing=0.07, vertical_spacing=0.22)
    ref = make_subplots(figure=F._figure(), rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07,
                        vertical_spacing=0.22)
    for i in range(n):
        ours.add_trace(go.Heatmap(z=[[i]], xaxis=F._axis_id("x", i), yaxis=F._axis_id("y", i)))
        ref.add_trace(go.Heatmap(z=[[i]]), row=i // cols + 1, col=i % cols + 1)
    assert ours.to_dict() == ref.to_dict()


def test_notes_wrap_into_short_lines():
    """A subtitle is packed into lines of at most NOTE_CHARS at its " · " separators (plotly never wraps one);
    the top margin grows by a line's height per line."""
    parts = ["the loss is at the last step: read right to left", "× at the bottom: exactly 0 (truncation)",
             "dashed prediction cut at the plot's edge"]
    assert F._wrap(" · ".join(parts)) == "<br>".join(parts)
    assert F._wrap("a · b · c") == "a · b · c" and F._wrap("x<br>y") == "x<br>y"
    fig = F._layout(F._figure(), "t", note=" · ".join(parts))
    assert fig.layout.title.subtitle.text == "<br>".join(parts) and fig.layout.margin.t == 50 + 3 * 21
    assert F._layout(F._figure(), "t").layout.margin.t == 50


def test_training_step_axes_are_labelled_with_whole_steps():
    """A few steps: one label per step (plotly would label 1.5, 2.5); many: plotly's own (whole) choice."""
    short, long = _hist(n=4), _hist(n=30)
    for f in (F.loss_curves(short), F.loss_curves(short, metric=True), F.global_grad_norm(short, clip=1.0)):
        assert (f.layout.xaxis.dtick, f.layout.xaxis.tick0) == (1, 0)
    assert F.loss_curves(long).layout.xaxis.dtick is None
    heat = F.grad_flow_heatmap(_gf(steps=(0, 1, 2)), run="LSTM")
    assert heat.layout.yaxis.dtick == 1


def test_grad_norm_names_each_runs_snapshot_when_they_differ():
    gf = _gf()
    gf = gf[~((gf.run == "LSTM") & (gf.step == 10))]  # LSTM's latest snapshot is at step 0
    fig = F.grad_norm_vs_time(gf)
    assert fig.layout.title.text == "‖∂L/∂h_t‖ at each time step"
    assert fig.layout.title.subtitle.text.startswith("snapshots at steps RNN (tanh): 10, LSTM: 0")


def test_presentation_labels_fewer_decades():
    """Taller labels in presentation mode: a log axis over 16.5 decades (15 measured, the padding) gets one label
    every 4th decade (PRESENTATION_DECADE_LABELS) instead of every 3rd (DECADE_LABELS), still whole decades."""
    gf = pd.DataFrame({"run": "RNN (tanh)", "step": 0, "layer": 0, "direction": 0, "t": range(16),
                       "grad_norm": 10.0 ** -(15 - np.arange(16.0))})
    fig = F.grad_norm_vs_time(gf)
    lo, hi = decade_only(fig)
    assert fig.layout.yaxis.dtick == math.ceil((hi - lo) / F.DECADE_LABELS) == 3
    F.presentation(fig)
    decade_only(fig)
    assert fig.layout.yaxis.dtick == math.ceil((hi - lo) / F.PRESENTATION_DECADE_LABELS) == 4


def test_gate_heatmaps_mark_the_task_phases():
    from rnnviz.tasks import make_task

    task = make_task("copy_memory", 6, n_recall=3, n_symbols=4)
    phases = task.phases()  # symbols [0,3), delay [3,8), delimiter [8,9), recall [9,12)
    T, H = 12, 4
    gf = pd.DataFrame([{"gate": g, "t": t, "unit": u, "value": 0.5} for g in ("input", "forget") for t in range(T)
                       for u in range(H)])
    fig = F.gate_heatmaps(gf, phases=phases)
    lines = [sh for sh in fig.layout.shapes if sh.type == "line"]
    assert sorted({sh.x0 for sh in lines}) == [-0.5, 2.5, 7.5, 8.5]  # one boundary per phase start
    assert len(lines) == 4 * 2  # in both panels
    names = [a.text for a in fig.layout.annotations if a.text in ("symbols", "delay", "delimiter", "recall")]
    assert sorted(names) == sorted(["delay", "delimiter", "recall", "symbols"] * 2)  # both panels are the top row
    assert not [sh for sh in F.gate_heatmaps(gf).layout.shapes if sh.type == "line"]
