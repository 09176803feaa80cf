"""rnnviz.analysis on real small trainers: documented columns, row counts, values equal to the snapshots."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from rnnviz import analysis
from rnnviz.models import ModelConfig, build_model
from rnnviz.tasks import make_task
from rnnviz.training import Snapshot, TrainConfig, Trainer

T = 12


@pytest.fixture(scope="module")
def runs():
    rs = {label: Trainer(ModelConfig(cell=cell, hidden_size=8), TrainConfig(task="adding", seq_len=T, snapshot_every=2))
          for label, cell in [("LSTM", "lstm"), ("RNN (tanh)", "rnn_tanh")]}
    for t in rs.values():
        t.step(5)  # snapshots at steps 0, 2, 4
    return rs


def test_frames_over_runs(runs):
    gf = analysis.grad_flow_frames(runs)
    assert list(gf.columns) == ["run", "step", "layer", "direction", "t", "grad_norm"]
    assert len(gf) == 2 * 3 * T and set(gf["run"]) == set(runs)
    lstm = gf[gf["run"] == "LSTM"]
    np.testing.assert_array_equal(lstm[lstm["step"] == 4]["grad_norm"], runs["LSTM"].latest.grad_norm[0, 0])

    h = analysis.history_frames(runs)
    assert list(h.columns) == ["run", "step", "loss", "metric", "grad_norm", "grad_norm_clipped", "baseline",
                               "metric_name"]
    assert len(h) == 10 and (h["baseline"] == 1 / 6).all() and (h["metric_name"] == "mse").all()

    gs = analysis.gate_stats_frames(runs)
    assert list(gs.columns) == ["run", "step", "layer", "direction", "gate", "mean", "frac_low", "frac_high"]
    assert len(gs) == 3 * 4 and set(gs["run"]) == {"LSTM"}  # the plain RNN has no gates

    lg = analysis.layer_grad_frames(runs)
    assert list(lg.columns) == ["run", "step", "group", "grad_norm"]
    assert len(lg) == sum(5 * len(t.groups) for t in runs.values())

    assert analysis.snapshot_steps(runs) == [0, 2, 4]
    pd.testing.assert_frame_equal(analysis.grad_flow_frames_from({k: t.snapshots for k, t in runs.items()}), gf)


def test_empty_runs_give_empty_frames_with_columns():
    for fn in (analysis.grad_flow_frames, analysis.history_frames, analysis.gate_stats_frames,
               analysis.layer_grad_frames, analysis.predicted_frames, analysis.decay_table):
        df = fn({})
        assert df.empty and "run" in df.columns
    assert analysis.snapshot_steps({}) == []


def test_gate_frame_equals_snapshot_tensors(runs):
    snap = runs["LSTM"].latest
    df = analysis.gate_frame(snap, layer=0, direction=0, example=3)
    assert list(df.columns) == ["gate", "t", "unit", "value"]
    assert list(dict.fromkeys(df["gate"])) == ["input", "forget", "cell", "output", "cell state", "hidden"]
    assert len(df) == 6 * T * 8
    src = {**snap.gates, "cell state": snap.cell, "hidden": snap.hidden}
    for gate, g in df.groupby("gate"):
        m = g.pivot(index="t", columns="unit", values="value").to_numpy()
        np.testing.assert_array_equal(m, src[gate][0, 0, 3].float().numpy())
    rnn = analysis.gate_frame(runs["RNN (tanh)"].latest)
    assert set(rnn["gate"]) == {"hidden"}


def test_unit_and_attention_frames(runs):
    snap = runs["LSTM"].latest
    uf = analysis.unit_frame(snap, 0, 0, 1)
    assert list(uf.columns) == ["t", "unit", "value"] and len(uf) == T * 8
    np.testing.assert_array_equal(uf.pivot(index="t", columns="unit", values="value").to_numpy(),
                                  snap.hidden[0, 0, 1].float().numpy())
    attn = torch.softmax(torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0)), dim=-1)
    af = analysis.attention_frame(attn, example=1)
    assert list(af.columns) == ["dec", "enc", "weight"] and len(af) == 35
    np.testing.assert_allclose(af.groupby("dec")["weight"].sum(), 1.0, rtol=1e-6)
    assert af[(af.dec == 2) & (af.enc == 4)]["weight"].item() == pytest.approx(float(attn[1, 2, 4]))


def test_pca_basis_is_fixed_orthonormal_and_projects(runs):
    t = runs["LSTM"]
    mean, comps = analysis.pca_basis(t.snapshots, layer=0, direction=0)
    assert mean.shape == (8,) and comps.shape == (3, 8)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-12)
    mean2, comps2 = analysis.pca_basis(t.snapshots, 0, 0)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(comps, comps2)
    X = torch.cat([s.hidden[0, 0].reshape(-1, 8) for s in t.snapshots]).double().numpy()
    np.testing.assert_allclose(mean, X.mean(0), atol=1e-12)

    snap = t.snapshots[1]
    labels = analysis.probe_labels(t)
    pf = analysis.pca_frame(snap, (mean, comps), 0, 0, labels=labels)
    assert list(pf.columns) == ["sequence", "t", "pc1", "pc2", "pc3", "label"] and len(pf) == 8 * T
    manual = (snap.hidden[0, 0].double().numpy() - mean) @ comps.T  # (B, T, 3)
    np.testing.assert_allclose(pf[["pc1", "pc2", "pc3"]].to_numpy(), manual.reshape(-1, 3), atol=1e-12)
    assert pf.groupby("sequence")["label"].first().tolist() == labels

    ev = analysis.explained_variance(t.snapshots, (mean, comps))
    assert ev.shape == (3,) and (np.diff(ev) <= 1e-12).all() and 0 < ev.sum() <= 1 + 1e-12
    full = analysis.pca_basis(t.snapshots, 0, 0, k=8)
    assert analysis.explained_variance(t.snapshots, full).sum() == pytest.approx(1.0)


def _snap(hidden: torch.Tensor) -> Snapshot:
    L, D, B, T_, H = hidden.shape
    return Snapshot(step=0, loss=0.0, grad_norm=np.ones((L, D, T_)), hidden=hidden.half(), gates={}, cell=None,
                    gate_stats=[])


def test_pca_basis_small_hidden_and_constant_states():
    h = torch.randn(1, 1, 4, 6, 2, generator=torch.Generator().manual_seed(0))  # H = 2 < k = 3
    mean, comps = analysis.pca_basis([_snap(h)])
    assert comps.shape == (3, 2) and not comps[2].any()
    np.testing.assert_allclose(comps[:2] @ comps[:2].T, np.eye(2), atol=1e-12)
    const = _snap(torch.full((1, 1, 3, 5, 4), 0.25))
    mean, comps = analysis.pca_basis([const])
    assert not comps.any() and np.allclose(mean, 0.25)
    pf = analysis.pca_frame(const, (mean, comps))
    assert (pf[["pc1", "pc2", "pc3"]].to_numpy() == 0).all() and pf["label"].iloc[0] == "seq 0"
    assert not analysis.explained_variance(const, (mean, comps)).any()
    with pytest.raises(ValueError):
        analysis.pca_basis([])


def test_pca_pooling_is_capped(monkeypatch):
    monkeypatch.setattr(analysis, "MAX_PCA_ROWS", 50)
    snaps = [_snap(torch.randn(1, 1, 4, 20, 3, generator=torch.Generator().manual_seed(i))) for i in range(3)]
    assert analysis._pooled(snaps, 0, 0).shape == (50, 3)
    a, b = analysis.pca_basis(snaps), analysis.pca_basis(snaps)
    np.testing.assert_array_equal(a[1], b[1])


def test_predicted_frames_and_decay_table(runs):
    pred = analysis.predicted_frames(runs)
    assert list(pred.columns) == ["run", "layer", "t", "bound"]
    assert set(pred["run"]) == {"RNN (tanh)"} and len(pred) == T  # no sigma_max bound for an LSTM
    rnn = runs["RNN (tanh)"]
    assert pred["bound"].iloc[-1] == pytest.approx(rnn.latest.grad_norm[0, 0, -1])
    # replaying step 0: the prediction uses the weights that snapshot was taken with (the initial W_hh)
    w0 = build_model(ModelConfig(cell="rnn_tanh", hidden_size=8), rnn.task).core.weight_hh_l0.detach().double()
    sigma0 = float(torch.linalg.svdvals(w0)[0])
    old = analysis.predicted_frames(runs, step=0)
    g0 = rnn.snapshot_at(0).grad_norm[0, 0]
    assert old["bound"].to_numpy() == pytest.approx(sigma0 ** (T - 1 - np.arange(T)) * g0[-1], rel=1e-9)
    assert sigma0 != pytest.approx(float(torch.linalg.svdvals(rnn.model.core.weight_hh_l0.detach().double())[0]))

    table = analysis.decay_table(runs)
    assert list(table["run"]) == ["LSTM", "RNN (tanh)"] and (table["step"] == 4).all()
    row = table.set_index("run").loc["RNN (tanh)"]
    assert math.isfinite(row["log10 σ_max(W_hh)"]) and row["log10 ρ(W_hh)"] <= row["log10 σ_max(W_hh)"] + 1e-12
    assert math.isnan(table.set_index("run").loc["LSTM", "log10 σ_max(W_hh)"])
    assert math.isfinite(row["measured log10 factor / step"])
    assert math.isnan(analysis.decay_table(runs, step=2).set_index("run").loc["RNN (tanh)", "log10 σ_max(W_hh)"])


def test_probe_labels():
    def fake(name, y):
        return SimpleNamespace(task=make_task(name), probe=SimpleNamespace(y=y))

    assert analysis.probe_labels(fake("parity", torch.tensor([0, 1]))) == ["even", "odd"]
    assert analysis.probe_labels(fake("sentiment", torch.tensor([1, 0]))) == ["positive", "negative"]
    assert analysis.probe_labels(fake("adding", torch.tensor([0.5, 1.5]))) == ["target < 1", "target ≥ 1"]
    assert analysis.probe_labels(fake("reverse", torch.zeros(2, 8, dtype=torch.long))) is None
