"""Every page under streamlit.testing.v1.AppTest: defaults, each preset, controls change the picture, ticks train."""

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from rnnviz.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # importing torch and building models is slow on a loaded 2-core machine
PAGES = ["pages/home.py", "pages/gradient_flow.py", "pages/gates.py", "pages/hidden_states.py",
         "pages/attention.py", "pages/training.py", "pages/phase.py", "pages/your_model.py", "pages/connectivity.py",
         "pages/hello.py", "pages/unrolled.py", "pages/padding.py", "pages/decoding.py"]


def app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(v) -> list:
    """A trace's x/y as a list (plotly encodes numpy arrays as base64 'bdata')."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v or [])


def status_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown if "steps/s" in m.value)


def step_counts(at: AppTest) -> list[int]:
    return [int(n) for n in re.findall(r"step (\d+) ·", status_text(at))]


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_at_defaults(page):
    at = app().run()
    no_exception(at)
    at.switch_page(page).run()
    no_exception(at)
    assert at.title, f"{page} has no title"


def test_home_lists_presets_and_shapes():
    at = app().run()
    buttons = [b for b in at.button if b.label == "Load this demo"]
    assert len(buttons) == len(PRESETS)
    df = at.table[0].value
    shapes = dict(zip(df["cell"] + " " + df["name"], df["shape"], strict=True))
    # defaults: RNN, LSTM, GRU; batch 32, T 50, hidden 32, one layer, unidirectional, batch_first
    assert shapes["lstm output"] == "(32, 50, 32)" and shapes["gru h_n"] == "(1, 32, 32)"
    assert shapes["lstm c_n"] == "(1, 32, 32)" and "rnn_tanh c_n" not in shapes
    assert "nn.LSTM" in at.code[0].value or "nn.RNN" in at.code[0].value
    at.radio(key="home_bf").set_value(False).run()
    df = at.table[0].value
    assert dict(zip(df["cell"] + " " + df["name"], df["shape"], strict=True))["gru output"] == "(50, 32, 32)"


@pytest.mark.parametrize("preset", range(len(PRESETS)))
def test_each_preset_loads_and_renders(preset):
    at = app().run()
    at.button(key=f"preset_{preset}").click().run()
    no_exception(at)
    p = PRESETS[preset]
    c = p.apply()
    assert at.session_state["controls"] == c
    assert at.session_state["ctl_task"] == c.task
    # AppTest runs pages itself (legacy pages-folder mode), so the entrypoint's switch to the preset's page
    # is checked in the real browser (tests/test_browser.py); here: it was requested, then open that page
    assert at.session_state["goto"] == p.page
    at.switch_page(f"pages/{p.page}.py").run()
    no_exception(at)
    at.button(key="btn_step").click().run()
    no_exception(at)
    assert all(n == 1 for n in step_counts(at)), status_text(at)


def test_step_start_and_ticks_advance_the_counter():
    at = app().run()
    at.switch_page("pages/gradient_flow.py").run()
    assert step_counts(at) == [0, 0, 0]
    at.button(key="btn_step").click().run()
    no_exception(at)
    assert step_counts(at) == [1, 1, 1]
    at.button(key="btn_start").click().run()  # a run_every fragment runs once per .run()
    at.run()
    no_exception(at)
    after = step_counts(at)
    assert all(n > 1 for n in after), after
    at.button(key="btn_pause").click().run()
    paused = step_counts(at)
    at.run()
    assert step_counts(at) == paused


def test_controls_change_what_is_drawn():
    at = app().run()
    at.switch_page("pages/gradient_flow.py").run()
    at.button(key="btn_step").click().run()
    before = figures(at)[0]
    xs_before = max(len(values(tr.get("x"))) for tr in before["data"])
    at.number_input(key="ctl_seq_len").set_value(30).run()
    at.button(key="btn_step").click().run()
    no_exception(at)
    after = figures(at)[0]
    xs_after = max(len(values(tr.get("x"))) for tr in after["data"])
    assert xs_before == 50 and xs_after == 30
    assert at.query_params["seq_len"] == "30"
    # cells: one run only
    at.multiselect(key="ctl_cells").set_value(["lstm"]).run()
    no_exception(at)
    assert len(step_counts(at)) == 1


def test_url_reproduces_a_demo():
    at = app({"task": "reverse", "cells": "gru", "seq_len": "10", "attention": "luong_general"}).run()
    no_exception(at)
    c = at.session_state["controls"]
    assert (c.task, c.cells, c.seq_len, c.attention) == ("reverse", ("gru",), 10, "luong_general")
    at.switch_page("pages/attention.py").run()
    at.button(key="btn_step").click().run()
    no_exception(at)
    heat = [f for f in figures(at) if any(tr["type"] == "heatmap" for tr in f["data"])]
    assert heat, "no attention heatmap"


def test_bad_url_values_are_reported_not_fatal():
    at = app({"seq_len": "banana", "weight_scale": "99"}).run()
    no_exception(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "seq_len" in warnings and "weight_scale" in warnings
    assert at.session_state["controls"].seq_len == 50


def test_over_budget_is_refused_with_a_message():
    at = app({"seq_len": "1000", "hidden_size": "256", "num_layers": "3", "bidirectional": "true"}).run()
    at.switch_page("pages/gradient_flow.py").run()
    no_exception(at)
    assert any("Lower the" in e.value for e in at.error), [e.value for e in at.error]
    assert "experiment" not in at.session_state


@pytest.mark.parametrize("button", ["btn_step", "btn_start"])
def test_over_budget_step_or_start_on_home_says_why(button):
    """On Home, Step or Start with a refused configuration opens the runs page, which says what to lower."""
    at = app({"seq_len": "1000", "hidden_size": "256", "num_layers": "3", "bidirectional": "true"}).run()
    assert not at.error  # Home itself shows no runs
    at.button(key=button).click().run()
    no_exception(at)
    # app.py switches to the page in session_state.goto (AppTest does not follow st.switch_page: done here)
    assert at.session_state["goto"] == "gradient_flow"
    at.switch_page("pages/gradient_flow.py").run()
    assert any("Lower the" in e.value for e in at.error), [e.value for e in at.error]
    assert "experiment" not in at.session_state and not at.session_state["running"]


def test_divergence_is_a_status_not_an_exception():
    at = app({"cells": "rnn_tanh", "init": "orthogonal", "weight_scale": "3", "clip": "0", "optimizer": "sgd",
              "lr": "1", "seq_len": "100"}).run()
    at.switch_page("pages/gradient_flow.py").run()
    at.button(key="btn_start").click().run()
    for _ in range(6):
        at.run()
    no_exception(at)
    assert "diverged at step" in status_text(at), status_text(at)
    # the history before divergence is still drawn and downloadable
    assert figures(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert any(label.startswith("⬇ history") for label in labels), labels


def test_char_lm_user_text_bad_then_good():
    at = app({"task": "char_lm", "cells": "lstm", "seq_len": "16", "hidden_size": "16"}).run()
    at.switch_page("pages/hidden_states.py").run()
    no_exception(at)
    at.button(key="btn_step").click().run()
    before = at.session_state["experiment"].runs["LSTM"]
    at.text_area(key="lm_paste").set_value("too short").run()
    at.button(key="lm_use").click().run()
    no_exception(at)
    assert any("Not used" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["lm_text"] is None
    assert at.session_state["experiment"].runs["LSTM"] is before  # the previous model is kept
    at.text_area(key="lm_paste").set_value("abc abd " * 40).run()
    at.button(key="lm_use").click().run()
    no_exception(at)
    assert at.session_state["lm_text"] == "abc abd " * 40
    at.button(key="btn_step").click().run()
    t = at.session_state["experiment"].runs["LSTM"]
    assert t is not before and t.task.vocab_size == 5 and t.steps == 1


def test_sampling_from_the_char_model():
    at = app({"task": "hello", "cells": "gru", "seq_len": "4", "hidden_size": "8"}).run()
    at.switch_page("pages/hidden_states.py").run()
    at.button(key="hs_sample").click().run()
    no_exception(at)
    sample = [c.value for c in at.code]
    assert sample and len(sample[0]) == 300 and set(sample[0]) <= set("helo")


EXTREMES = {
    "max weight scale, no clipping": {"cells": "rnn_tanh,lstm", "init": "orthogonal", "weight_scale": "3",
                                      "clip": "0", "lr": "1", "optimizer": "sgd"},
    "max sequence length, hidden 1": {"seq_len": "1000", "hidden_size": "1", "cells": "rnn_tanh,gru"},
    "truncation window 1": {"truncation": "1", "cells": "lstm,gru", "seq_len": "30"},
    "identity relu RNN at scale 3": {"cells": "rnn_relu", "init": "identity", "weight_scale": "3", "clip": "0",
                                     "lr": "1", "optimizer": "sgd", "seq_len": "100"},
}


@pytest.mark.parametrize("name", list(EXTREMES))
def test_extreme_settings_give_a_picture_or_a_status(name):
    at = app(EXTREMES[name]).run()
    for page in ["pages/gradient_flow.py", "pages/gates.py", "pages/hidden_states.py", "pages/training.py"]:
        at.switch_page(page).run()
        at.button(key="btn_step").click().run()
        no_exception(at)
    at.switch_page("pages/gradient_flow.py").run()
    at.button(key="btn_start").click().run()
    for _ in range(3):
        at.run()
    no_exception(at)
    text = status_text(at)
    assert "step" in text and ("diverged at step" in text or all(n > 1 for n in step_counts(at))), text
    assert figures(at)


def test_reset_frees_the_models():
    import gc
    import weakref

    at = app({"cells": "lstm"}).run()
    at.switch_page("pages/gradient_flow.py").run()
    at.button(key="btn_step").click().run()
    old = weakref.ref(at.session_state["experiment"].runs["LSTM"])
    assert old().steps == 1
    at.button(key="btn_reset").click().run()
    no_exception(at)
    gc.collect()
    assert old() is None, "the old model is still referenced after Reset"
    assert step_counts(at) == [0]


def test_replay_scrubber_sets_the_snapshot_every_page_shows():
    at = app({"cells": "gru", "snapshot_every": "2", "seq_len": "12"}).run()
    at.switch_page("pages/training.py").run()
    for _ in range(3):
        at.button(key="btn_step").click().run()
    assert at.session_state["replay"] is None  # nothing replayed until the user scrubs
    for _ in range(4):
        at.button(key="btn_step").click().run()
    no_exception(at)
    assert at.session_state["replay"] is None
    slider = at.select_slider(key="replay_slider")
    assert slider.value == 7 or slider.value == 6, slider.value  # the latest snapshot (every 2 steps + Step's own)
    slider.set_value(2).run()
    assert at.session_state["replay"] == 2
    at.switch_page("pages/gradient_flow.py").run()
    no_exception(at)
    title = figures(at)[0]["layout"]["title"]["text"]
    assert "step 2" in title, title
    assert any("Replaying" in m.value for m in at.markdown)
    at.switch_page("pages/training.py").run()
    at.button(key="replay_live").click().run()
    assert at.session_state["replay"] is None


@pytest.mark.parametrize("page", ["pages/phase.py", "pages/your_model.py"])
def test_pages_that_train_nothing_show_no_training_controls(page):
    at = app().run()
    at.switch_page(page).run()
    no_exception(at)
    assert not [b for b in at.sidebar.button if b.label in ("▶ Start", "Step", "Reset")]
    assert not at.sidebar.slider and not at.sidebar.number_input
    assert any("training pages" in c.value for c in at.sidebar.caption)
    at.switch_page("pages/gradient_flow.py").run()  # back on a training page: the controls and the runs are there
    no_exception(at)
    assert [b.label for b in at.sidebar.button][:1] == ["▶ Start"]
    assert at.sidebar.slider(key="ctl_weight_scale").value == at.session_state["controls"].weight_scale


def test_phase_data_can_be_downloaded_while_training_runs():
    at = app().run()
    at.switch_page("pages/gradient_flow.py").run()
    at.sidebar.button(key="btn_start").click().run()
    at.switch_page("pages/phase.py").run()
    no_exception(at)
    assert at.session_state["running"]
    assert not [c for c in at.caption if "Pause training to download" in c.value]
    assert len(at.get("download_button")) == 2  # phase.csv, config.json


def test_presentation_mode_from_the_url_and_the_toggle():
    at = app({"present": "1"}).run()
    at.switch_page("pages/gradient_flow.py").run()
    no_exception(at)
    assert at.toggle(key="present_toggle").value is True
    assert at.query_params.get("present") in ("1", ["1"])
    captions = " ".join(c.value for c in at.caption)
    assert "Read it right to left" not in captions  # long explanations hidden
    big = figures(at)[0]["layout"]["xaxis"]["tickfont"]["size"]
    at.toggle(key="present_toggle").set_value(False).run()
    assert "Read it right to left" in " ".join(c.value for c in at.caption)
    assert figures(at)[0]["layout"]["xaxis"]["tickfont"]["size"] < big
    assert "present" not in at.query_params


def tick_until_paused(at, ticks: int) -> None:
    """Press Start, then let the live fragment tick (one AppTest run each) until training stops, at most `ticks`."""
    at.button(key="btn_start").click().run()
    for _ in range(ticks):
        if not at.session_state["running"]:
            break
        at.run()


def test_when_every_run_diverged_training_stops_and_start_comes_back():
    q = {"cells": "rnn_relu", "init": "identity", "weight_scale": "1.5", "optimizer": "sgd", "lr": "1", "clip": "0",
         "seq_len": "40"}
    at = app(q).run()
    at.switch_page("pages/gradient_flow.py").run()
    tick_until_paused(at, ticks=5)
    no_exception(at)
    assert at.session_state["running"] is False  # no more ticks: the fragment stops, nothing burns CPU
    assert [b.key for b in at.button if b.key in ("btn_start", "btn_pause")] == ["btn_start"]
    assert "Every run has diverged" in status_text(at)
    assert at.session_state["experiment"].finished


def test_a_preset_pauses_at_its_n_with_its_claims_open(monkeypatch):
    from dataclasses import replace as dc_replace

    from rnnviz.presets import PRESETS_BY_NAME

    p = PRESETS_BY_NAME["Truncated BPTT"]
    monkeypatch.setitem(PRESETS_BY_NAME, p.name, dc_replace(p, steps=3))  # the same claims, checked at step 3
    at = app().run()
    at.button(key=f"preset_{PRESETS.index(p)}").click().run()
    at.switch_page(f"pages/{p.page}.py").run()
    tick_until_paused(at, ticks=10)
    no_exception(at)
    assert at.session_state["running"] is False and step_counts(at) == [3, 3], status_text(at)
    labels = [e.label for e in at.expander]
    assert any("paused at N = 3" in lab and "hold at step 3" in lab for lab in labels), labels
    at.button(key="btn_start").click().run()  # Start trains on past N
    at.run()
    assert min(step_counts(at)) > 3


def chart_specs(at: AppTest) -> dict[str, str]:
    """Each plotly chart's figure JSON by its key (the element id ends with the key)."""
    return {c.proto.id.rsplit("-", 1)[-1]: c.proto.spec for c in at.get("plotly_chart")}


def test_while_training_secondary_charts_are_sent_unchanged_and_rebuilt_when_paused(monkeypatch):
    import pages._ui as ui

    monkeypatch.setattr(ui, "LIVE_EVERY", 3600.0)  # no rebuild by the clock during the test
    at = app().run()
    at.switch_page("pages/gradient_flow.py").run()
    at.button(key="btn_start").click().run()
    first, snap1 = chart_specs(at), at.session_state["experiment"].runs["RNN (tanh)"].latest.step
    at.run()  # the next tick
    no_exception(at)
    second, snap2 = chart_specs(at), at.session_state["experiment"].runs["RNN (tanh)"].latest.step
    secondary = ["gf_heat_RNN (tanh)", "gf_heat_LSTM", "gf_heat_GRU", "gf_global", "gf_curve0"]
    assert set(secondary + ["gf_curve"]) <= set(first), sorted(first)
    assert snap2 > snap1, (snap1, snap2)  # a new snapshot: the main chart follows it
    assert second["gf_curve"] != first["gf_curve"]
    assert {k: second[k] for k in secondary} == {k: first[k] for k in secondary}  # sent again, unchanged
    at.button(key="btn_pause").click().run()
    paused = chart_specs(at)
    assert all(paused[k] != first[k] for k in secondary if k != "gf_curve0"), "paused: every chart is current"
    assert paused["gf_curve0"] == first["gf_curve0"]  # step 0 does not change


def test_tick_log_records_every_training_run_with_its_steps(monkeypatch, tmp_path):
    """RNNVIZ_TICK_LOG (read by bench/bench_presets_live.py): one line per training run of the live area, whose
    steps add up to what the status line shows and whose training time is part of the run's time."""
    import time

    import pages._ui as ui

    log = tmp_path / "ticks.tsv"
    monkeypatch.setattr(ui, "TICK_LOG", str(log))
    at = app().run()
    at.switch_page("pages/gradient_flow.py").run()
    at.button(key="btn_step").click().run()  # paused: a Step trains but is not a training tick
    assert not log.exists()
    before, t0 = step_counts(at)[0], time.perf_counter()
    at.button(key="btn_start").click().run()
    at.run()
    at.run()
    no_exception(at)
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    assert len(rows) == 3, rows  # AppTest runs the whole script: each run is a "full" one
    assert all(len(r) == 6 and r[2] == "full" for r in rows), rows
    assert len({r[1] for r in rows}) == 1  # one session
    starts = [float(r[0]) for r in rows]
    assert t0 <= starts[0] < starts[1] < starts[2] <= time.perf_counter()  # the shared monotonic clock
    assert all(0 < float(r[4]) <= float(r[5]) for r in rows)  # training is part of the run
    assert sum(int(r[3]) for r in rows) == step_counts(at)[0] - before > 0
