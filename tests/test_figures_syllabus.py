"""rnnviz.figures_syllabus: the figures draw exactly the numbers of their frames."""

import math

import numpy as np
import pandas as pd
import pytest

from rnnviz import figures_syllabus as fs
from rnnviz.connectivity import connectivity_frames, reach_frame
from rnnviz.figures import EMPTY
from rnnviz.hello import step_table, weights_frame
from rnnviz.models import ModelConfig
from rnnviz.training import TrainConfig, Trainer


@pytest.fixture(scope="module")
def runs():
    out = {}
    for label, cell in [("RNN (tanh)", "rnn_tanh"), ("GRU", "gru")]:
        out[label] = Trainer(ModelConfig(cell=cell, hidden_size=8, one_hot=True),
                             TrainConfig(task="hello", seq_len=10, snapshot_every=0))
        out[label].step(3)
    return out


def _z(trace) -> np.ndarray:
    return np.array(trace.z, dtype=np.float64)


def test_connectivity_heatmaps_draw_the_frame(runs):
    cf = connectivity_frames(runs, example=1)
    fig = fs.connectivity_heatmaps(cf)
    heat = [tr for tr in fig.data if tr.type == "heatmap"]
    assert [fig.layout.annotations[i].text for i in range(2)] == ["RNN (tanh)", "GRU"]
    assert len(heat) == 2 and all(tr.coloraxis == "coloraxis" for tr in heat)  # one shared scale
    for tr, label in zip(heat, runs, strict=True):
        g = cf[cf.run == label]
        z = _z(tr)
        np.testing.assert_allclose(z[g.t, g.s], np.log10(g.connectivity), rtol=1e-6)
        assert np.isnan(z[np.triu_indices(10, 1)]).all()  # s > t: blank
        assert list(tr.x)[0].endswith("'h'") and list(tr.y)[0].endswith("'e'")  # read 'h', predict 'e'
    lo, hi = np.log10(cf.connectivity.min()), np.log10(cf.connectivity.max())
    assert fig.layout.coloraxis.cmin == pytest.approx(lo, rel=1e-6) and fig.layout.coloraxis.cmax == pytest.approx(hi)
    row = fs.connectivity_heatmaps(cf, scale="row")
    z = _z(row.data[0])
    np.testing.assert_allclose(np.nanmax(z, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="scale"):
        fs.connectivity_heatmaps(cf, scale="linear")
    assert fs.connectivity_heatmaps(cf.iloc[:0]).layout.annotations[0].text == EMPTY


def test_connectivity_reach_draws_one_line_per_run(runs):
    rf = reach_frame(connectivity_frames(runs))
    fig = fs.connectivity_reach(rf)
    assert [tr.name for tr in fig.data] == list(runs) and fig.layout.yaxis.type == "log"
    g = rf[rf.run == "GRU"].sort_values("lag")
    np.testing.assert_allclose(np.array(fig.data[1].y, dtype=float), g.connectivity)
    assert fs.connectivity_reach(pd.DataFrame()).layout.annotations[0].text == EMPTY


def test_softmax_steps_and_weight_heatmaps(runs):
    tr = runs["GRU"]
    table = step_table(tr.model, tr.task, "hell")
    fig = fs.softmax_steps(table)
    np.testing.assert_allclose(_z(fig.data[0]), table[[c for c in table if c.startswith("p[")]].to_numpy())
    assert list(fig.data[0].x) == ["e", "h", "l", "o"] and list(fig.data[1].x) == table.predicted.tolist()
    assert list(fig.data[2].x) == ["e", "l", "l"]  # targets where the text has a next character
    wf = weights_frame(tr.model, tr.task)
    fig = fs.weight_heatmaps(wf)
    assert len(fig.data) == 3
    np.testing.assert_allclose(_z(fig.data[1]), tr.model.core.weight_hh_l0.detach().double().numpy())
    assert math.isclose(fig.data[1].zmax, float(tr.model.core.weight_hh_l0.detach().abs().max()), rel_tol=1e-6)
