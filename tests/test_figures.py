"""rnnviz.figures on small hand-made tidy frames: trace counts and types, axes, empty inputs, downsampling."""

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


def _projector_ready(fig):
    assert isinstance(fig, go.Figure)
    assert fig.layout.font.size >= 16
    assert fig.layout.title.text
    assert fig.layout.template.layout.paper_bgcolor == "white"  # plotly_white
    fig.to_json()  # serialisable, as Streamlit needs


def test_grad_norm_vs_time():
    gf = _gf()
    pred = pd.DataFrame({"run": "RNN (tanh)", "t": range(6), "bound": 0.6 ** (5 - np.arange(6))})
    fig = F.grad_norm_vs_time(gf, predicted=pred)
    _projector_ready(fig)
    names = [d.name for d in fig.data]
    assert len(fig.data) == 4  # 2 lines + the zeros of the LSTM + 1 prediction
    assert fig.layout.yaxis.type == "log" and "log scale" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.title.text == "time step t"
    assert "step 10" in fig.layout.title.text
    line = fig.data[names.index("RNN (tanh)")]
    assert line.line.color == F.RUN_COLORS["RNN (tanh)"]
    zeros = next(d for d in fig.data if "exactly 0" in (d.name or ""))
    assert list(zeros.x) == [0, 1] and "exactly 0 (cut by truncation)" in zeros.hovertemplate
    assert max(zeros.y) < gf.loc[gf.grad_norm > 0, "grad_norm"].min()  # drawn below every real value
    lstm = fig.data[names.index("LSTM")]
    assert np.isnan(lstm.y[0]) and np.isnan(lstm.y[1])  # the line breaks at the cut
    p = next(d for d in fig.data if "predicted σ_max^(T−1−t)" in d.name)
    assert p.line.dash == "dash" and p.line.color == F.RUN_COLORS["RNN (tanh)"]

    old = F.grad_norm_vs_time(gf, step=5)  # the snapshot at the largest step <= 5
    assert "step 0" in old.layout.title.text and len(old.data) == 2


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
    assert len(F.global_grad_norm(h).data) == 2

    loss = F.loss_curves(h)
    _projector_ready(loss)
    assert len(loss.data) == 2 * 2 + 1 and loss.data[-1].name == "trivial baseline"
    assert loss.data[-1].line.dash == "dash" and loss.layout.yaxis.type == "log"
    assert loss.layout.xaxis.title.text == "training step"
    acc = F.loss_curves(_hist(metric_name="accuracy"), metric=True)
    assert len(acc.data) == 4 and acc.layout.yaxis.type != "log" and acc.layout.yaxis.title.text == "accuracy"
    assert len(F.loss_curves(h, metric=True).data) == 5  # mse metric = the loss: baseline applies


def test_layer_grad_norms():
    lg = pd.DataFrame([{"run": r, "step": s, "group": g, "grad_norm": 1.0 + s}
                       for r in RUNS for g in ("core.l0", "head") for s in range(1, 4)])
    fig = F.layer_grad_norms(lg)
    _projector_ready(fig)
    assert len(fig.data) == 4 and fig.layout.yaxis.type == "log"
    one = F.layer_grad_norms(lg[lg.run == "LSTM"])
    assert [d.name for d in one.data] == ["core.l0", "head"]


def test_gate_heatmaps():
    fig = F.gate_heatmaps(_gates())
    _projector_ready(fig)
    assert len(fig.data) == 6 and all(isinstance(d, go.Heatmap) for d in fig.data)
    assert [d.coloraxis for d in fig.data] == ["coloraxis"] * 2 + ["coloraxis2"] + ["coloraxis"] + ["coloraxis2"] * 2
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    assert (fig.layout.coloraxis2.cmin, fig.layout.coloraxis2.cmax) == (-1, 1)
    assert fig.layout.xaxis.title.text == "time step t" and fig.layout.yaxis.title.text == "unit"
    gru = F.gate_heatmaps(_gates(gates=("reset", "update", "new", "hidden")))
    assert len(gru.data) == 4
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
    assert len(fig.data) == 4 and all(isinstance(d, go.Scatter) for d in fig.data)
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


def test_text_activation_html_escapes():
    out = F.text_activation_html(list("<script>") + ["\n", "&"], [1.0] * 8 + [0.0, -1.0])
    assert "<script>" not in out and "&lt;" in out and "&gt;" in out and "&amp;" in out
    assert "↵" in out and out.count("<span") == 10
    assert "rgb(33,102,172)" in out and "rgb(178,24,43)" in out  # +1 blue, -1 red


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
    t = {"text": "title", "font": {"size": F.FONT_SIZE + 4},
         "subtitle": {"text": "note", "font": {"size": F.FONT_SIZE - 1}}}
    plain.update_layout(**{"template": "plotly_white", "title": t, "font": {"size": F.FONT_SIZE},
                           "hoverlabel": {"font_size": F.FONT_SIZE}, "legend": {"font": {"size": F.FONT_SIZE}},
                           "margin": {"t": 100}})
    plain.update_layout(**kw)  # extra properties merge into the common ones (a legend keeps its font size)
    plain.update_xaxes(title_text="x").update_yaxes(title_text="y")
    assert fast.to_dict() == plain.to_dict()
