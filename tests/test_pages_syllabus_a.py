"""The Connectivity and "hello" pages under AppTest: they run, draw what rnnviz computes, and react to their widgets."""

from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from rnnviz.connectivity import connectivity, window
from rnnviz.hello import show_char, step_table
from rnnviz.models import generate
from tests.test_pages import app, figures, no_exception  # the AppTest helpers

ROOT = Path(__file__).resolve().parents[1]


def heatmaps(at: AppTest) -> list[dict]:
    return [f for f in figures(at) if any(tr["type"] == "heatmap" for tr in f["data"])]


def test_connectivity_page_offers_the_char_model_for_other_tasks():
    at = app().run()  # the default task, adding, is many-to-one
    at.switch_page("pages/connectivity.py").run()
    no_exception(at)
    assert any("prediction at every step" in i.value for i in at.info)
    assert not figures(at)
    at.button(key="cn_load").click().run()
    no_exception(at)
    c = at.session_state["controls"]
    assert c.task == "char_lm" and c.seq_len == 64
    at.switch_page("pages/connectivity.py").run()
    no_exception(at)
    assert heatmaps(at)


def test_connectivity_page_draws_the_exact_matrix_per_cell():
    at = app({"task": "char_lm", "cells": "rnn_tanh,lstm,gru", "seq_len": "24", "hidden_size": "16"}).run()
    at.switch_page("pages/connectivity.py").run()
    at.button(key="btn_step").click().run()
    no_exception(at)
    assert at.title[0].value.startswith("Connectivity")
    runs = at.session_state["experiment"].runs
    assert list(runs) == ["RNN (tanh)", "LSTM", "GRU"] and all(t.steps == 1 for t in runs.values())
    (heat,) = heatmaps(at)
    traces = [tr for tr in heat["data"] if tr["type"] == "heatmap"]
    assert len(traces) == 3  # one panel per cell, side by side
    # the drawn numbers are rnnviz.connectivity's, for probe sequence 0 and the first 24 steps
    cf = at.session_state["cn_cache"][1]
    for label, t in runs.items():
        C = connectivity(t.model, window(t.probe, 0, 24))[0].double().numpy()
        got = cf[cf.run == label]
        np.testing.assert_allclose(got.connectivity, C[got.t, got.s], rtol=1e-6)
        assert len(got) == 24 * 25 // 2
    # the text on both axes: the probe's characters (x: read, y: to predict)
    text_x = [show_char(c) for c in runs["LSTM"].task.decode(runs["LSTM"].probe.x[0])]
    ticks = heat["layout"]["xaxis"]["ticktext"]
    assert ticks == text_x[::len(text_x) // len(ticks) or 1][:len(ticks)]
    assert heat["layout"]["coloraxis"]["colorbar"]["title"]["text"].startswith("log10")
    # widgets change what is drawn
    at.radio(key="cn_scale").set_value("row").run()
    no_exception(at)
    (heat,) = heatmaps(at)
    assert heat["layout"]["coloraxis"]["cmax"] == 1
    at.number_input(key="cn_example").set_value(3).run()
    at.number_input(key="cn_steps").set_value(10).run()
    no_exception(at)
    cf = at.session_state["cn_cache"][1]
    assert cf.t.max() == 9 and len(cf) == 3 * 55
    C = connectivity(runs["GRU"].model, window(runs["GRU"].probe, 3, 10))[0].double().numpy()
    got = cf[cf.run == "GRU"]
    np.testing.assert_allclose(got.connectivity, C[got.t, got.s], rtol=1e-6)
    # the reach curve, one line per cell; the coloured text, one per cell; downloads
    reach = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("How far back")]
    assert reach and len(reach[0]["data"]) == 3
    assert sum(m.value.startswith("**") and "to predict" in m.value for m in at.markdown) == 3
    labels = [b.proto.label for b in at.get("download_button")]
    assert "⬇ connectivity.csv" in labels and "⬇ connectivity_reach.csv" in labels and "⬇ config.json" in labels


def test_connectivity_page_trains_live_and_says_which_weights():
    at = app({"task": "hello", "cells": "gru", "seq_len": "8", "hidden_size": "8"}).run()
    at.switch_page("pages/connectivity.py").run()
    at.button(key="btn_start").click().run()
    at.run()  # a run_every fragment runs once per .run()
    no_exception(at)
    steps = at.session_state["experiment"].runs["GRU"].steps
    assert steps > 1
    assert at.session_state["cn_cache"][0][0][0][2] == steps  # computed at the step shown
    assert any(f"step {steps}" in c.value for c in at.caption)
    at.button(key="btn_pause").click().run()
    no_exception(at)


def _hello_table(at) -> pd.DataFrame:
    return at.dataframe[0].value


def test_hello_page_table_is_the_models_own_numbers():
    at = app().run()
    at.switch_page("pages/hello.py").run()
    no_exception(at)
    assert not [b for b in at.sidebar.button if b.label in ("▶ Start", "Step", "Reset")]  # its own settings
    for _ in range(2):
        at.button(key="hello_train100").click().run()
    no_exception(at)
    tr = at.session_state["hello_trainer"]
    assert tr.steps == 200 and tr.model_cfg.one_hot and tr.model_cfg.cell == "rnn_tanh"
    shown = _hello_table(at)
    want = step_table(tr.model, tr.task, "hell")
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), want, check_dtype=False)
    p = shown[[c for c in shown.columns if c.startswith("p[")]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    assert shown.predicted.tolist() == ["e", "l", "l", "o"]  # trained 200 steps: "hell" -> "ello"
    figs = figures(at)
    soft = [f for f in figs if f["layout"]["title"]["text"].startswith("Softmax")]
    assert soft and soft[0]["data"][0]["y"] == ["t=0: h", "t=1: e", "t=2: l", "t=3: l"]
    assert any(f["layout"]["title"]["text"].startswith("The weights") for f in figs)
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"⬇ hello_steps.csv", "⬇ hello_generation.csv", "⬇ hello_weights.csv", "⬇ hello_model.json"} <= set(labels)


def test_hello_page_steps_through_greedy_generation():
    at = app().run()
    at.switch_page("pages/hello.py").run()
    at.button(key="hello_train100").click().run()
    tr = at.session_state["hello_trainer"]
    for _ in range(5):
        at.button(key="hello_next").click().run()
    no_exception(at)
    gen = at.session_state["hello_gen"]
    assert len(gen["rows"]) == 5
    text = "h" + "".join(r["predicted"] for r in gen["rows"])
    assert text == "h" + generate(tr.model, tr.task, "h", 5, greedy=True)
    assert any(f"`{text}`" in m.value for m in at.markdown)
    at.button(key="hello_restart").click().run()
    no_exception(at)
    assert at.session_state["hello_gen"]["rows"] == []


def test_hello_page_settings_and_bad_text():
    at = app().run()
    at.switch_page("pages/hello.py").run()
    at.selectbox(key="hello_cell").set_value("lstm").run()
    at.radio(key="hello_input").set_value("embedding").run()
    no_exception(at)
    tr = at.session_state["hello_trainer"]
    assert tr.model_cfg.cell == "lstm" and not tr.model_cfg.one_hot and tr.steps == 0
    assert any("nn.LSTM(" in c.value for c in at.code)  # the runnable shapes snippet for this model
    at.text_input(key="hello_text").set_value("help").run()
    no_exception(at)
    assert any("Cannot read" in e.value for e in at.error)
