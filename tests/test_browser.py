"""The dashboard in a real browser: `streamlit run app.py` driven by Debian's Chromium through Playwright.

Every page renders without an exception; Start / Pause / Step train; the URL carries the settings across pages;
a preset opens its page; four sessions train different configurations at once on one server, each with its own
numbers, while the server stays responsive and goes idle when their tabs close.

On failure: screenshots of every page the test opened and the server's log go to /tmp/rnnviz-fail-*.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.browser import (
    APP_IDLE,
    NAV_LINK,
    App,
    StreamlitServer,
    chromium_available,
    counts_against_app,
    health,
    launch_browser,
    new_page,
    tracebacks,
)

pytestmark = pytest.mark.browser

TITLES = {  # url path -> text in the page's st.title
    "/": "rnnviz — inside recurrent networks, live",
    "/gradient_flow": "Gradient flow through time",
    "/gates": "Gates at work",
    "/hidden_states": "Hidden-state trajectories",
    "/attention": "Attention vs the bottleneck",
    "/connectivity": "Connectivity: how far back do the predictions reach?",
    "/hello": "a character RNN, one step at a time",
    "/unrolled": "The network unrolled in time",
    "/padding": "Padding and packing: a batch of different lengths",
    "/decoding": "Decoding: from <sos>, one token at a time",
    "/training": "Training curves and replay",
    "/phase": "Gradient-flow phase diagram",
    "/your_model": "Look inside your own weights",
}
NAV_TEXT = {"/": "Home", "/gradient_flow": "Gradient flow", "/gates": "Gates", "/hidden_states": "Hidden states",
            "/attention": "Attention", "/connectivity": "Connectivity", "/hello": "“hello” step by step",
            "/unrolled": "Unrolled network", "/padding": "Padding & packing", "/decoding": "Decoding",
            "/training": "Training & replay", "/phase": "Phase diagram",
            "/your_model": "Your weights"}
# pages that draw charts at default settings (the trainers take a snapshot at step 0), and the key of one of them
CHART_AT_DEFAULTS = {"/gradient_flow": "gf_curve", "/gates": "gates_heat", "/hidden_states": "hs_pca",
                     "/training": "tr_loss", "/phase": "ph_chart"}
LABEL_RE = re.compile(r"^(.+?): step \d+ ·", re.M)


def _require_chromium() -> None:
    if chromium_available():
        return
    msg = "/usr/bin/chromium not found (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + ": required in CI")
    pytest.skip(msg)


# -- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_server():
    """`streamlit run app.py` on 127.0.0.1:<free port> for this module; killed (process group) afterwards."""
    _require_chromium()
    server = StreamlitServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(app_server):
    with launch_browser() as b:
        yield b


@pytest.fixture
def open_app(request, browser, app_server):
    """open_app(path=None) -> App in a fresh browser context (its own Streamlit session), opened at `path`.

    Closes every context afterwards; if the test failed, first saves a full-page screenshot of each and the
    server's log to /tmp and prints their paths.
    """
    apps: list[App] = []
    failed_before = request.session.testsfailed

    def _open(path: str | None = None) -> App:
        app = App(new_page(browser), app_server.url)
        apps.append(app)
        if path is not None:
            app.goto(path)
        return app

    yield _open

    if request.session.testsfailed > failed_before:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        paths = [a.screenshot(f"rnnviz-fail-{name}-{i}") for i, a in enumerate(apps) if not a.page.is_closed()]
        log = Path(f"/tmp/rnnviz-fail-{name}-server.log")
        log.write_text(app_server.output(tail=200_000))
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\n[browser] {request.node.name} failed; saved: {', '.join(paths + [str(log)])}")
    for a in apps:
        try:
            a.page.context.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


def labels(app: App) -> list[str]:
    """Run labels in the status line, in order ("RNN (tanh)", "GRU + Bahdanau attention", ...)."""
    return [s.strip().strip("*") for s in LABEL_RE.findall(app.status_text())]


def record_frames(app: App) -> list[bytes]:
    """The binary frames the server sends this page's Streamlit websocket from now on (ForwardMsg protobufs)."""
    frames: list[bytes] = []
    app.page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f) if isinstance(f, bytes)
                                              else None) if "_stcore/stream" in ws.url else None)
    return frames


# -- 1. every page ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", list(TITLES))
def test_page_renders(open_app, path):
    app = open_app(path)
    assert app.path() == path, f"opened {path}, landed on {app.page.url}"
    app.assert_no_exception(path)
    title = app.title()
    assert TITLES[path] in title, f"{path}: title {title!r}, expected it to contain {TITLES[path]!r}"
    assert app.page.locator("h1", has_text=TITLES[path]).first.is_visible(), f"{path}: title not visible"
    # a link straight to any page must get the app's own navigation and wide layout (app.py ran), not
    # Streamlit's automatic one built from the files in pages/ (with 'app' and 'ui' entries, narrow layout)
    nav = [t.split("\n")[-1].strip() for t in app.page.locator(NAV_LINK).all_inner_texts()]
    assert nav == list(NAV_TEXT.values()), f"{path}: sidebar navigation is {nav}, expected {list(NAV_TEXT.values())}"
    width = app.page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]
    assert width > 1000, f"{path}: main column is {width:.0f} px wide in a 1600 px window: not the wide layout"

    if path in CHART_AT_DEFAULTS:
        key = CHART_AT_DEFAULTS[path]
        timeout = 90_000 if path == "/phase" else 30_000  # the phase sweep computes a grid first
        app.page.wait_for_selector(f".st-key-{key} .js-plotly-plot .main-svg", timeout=timeout)
        assert app.drawn_plot_count() >= 1
        app.wait_idle(timeout)
        app.assert_no_exception(path + " after its charts drew")
    elif path == "/":
        n = app.page.get_by_role("button", name="Load this demo").count()
        assert n == 6, f"home shows {n} 'Load this demo' buttons, expected one per preset (6)"
    elif path == "/attention":  # the default task (adding) is not seq2seq: the page says so instead of a chart
        alert = app.page.locator('[data-testid="stAlert"]', has_text="sequence-to-sequence task")
        assert alert.count() == 1, "attention at defaults: expected the 'needs a sequence-to-sequence task' note"
        assert app.drawn_plot_count() == 0
    elif path == "/your_model":
        assert app.page.locator('[data-testid="stAlert"]', has_text="No weights loaded yet").count() == 1


def test_sidebar_navigation_visits_every_page(open_app):
    """One session clicks through the sidebar's page links; the URL path and title follow."""
    app = open_app("/?seq_len=30")
    for path, text in list(NAV_TEXT.items())[1:] + [("/", "Home")]:
        app.nav(text)
        assert app.path() == path, f"clicked {text!r}, URL is {app.page.url}"
        assert TITLES[path] in app.title(), f"clicked {text!r}, title is {app.title()!r}"
        assert app.query().get("seq_len") == "30", f"{path}: the URL lost seq_len=30: {app.page.url}"
        app.assert_no_exception(path)


def test_downloads_give_the_pages_data(open_app, tmp_path):
    """The CSV and JSON buttons (paused) deliver files that parse and hold this session's numbers."""
    import json

    import pandas as pd

    app = open_app("/gradient_flow?cells=lstm,gru&seq_len=20")
    for _ in range(2):
        app.step()
    files = {}
    for label in ("grad_flow.csv", "history.csv", "config.json"):
        with app.page.expect_download(timeout=30_000) as dl:
            app.page.get_by_role("button", name=f"⬇ {label}").click()
        path = tmp_path / label
        dl.value.save_as(path)
        assert dl.value.suggested_filename == ("rnnviz-config.json" if label == "config.json" else label)
        files[label] = path
    gf = pd.read_csv(files["grad_flow.csv"])
    assert {"run", "step", "t", "grad_norm"} <= set(gf.columns), list(gf.columns)
    assert set(gf["run"]) == {"LSTM", "GRU"} and gf["t"].max() == 19 and gf["step"].max() == 2
    hist = pd.read_csv(files["history.csv"])
    assert set(hist["run"]) == {"LSTM", "GRU"} and sorted(hist["step"].unique().tolist()) == [1, 2]
    cfg = json.loads(files["config.json"].read_text())
    assert cfg["controls"]["cells"] == ["lstm", "gru"] and cfg["controls"]["seq_len"] == 20
    assert set(cfg["runs"]) == {"LSTM", "GRU"}


def test_your_weights_upload_renders_charts(open_app, tmp_path):
    import torch
    from torch import nn

    torch.manual_seed(0)
    f = tmp_path / "gru.pt"
    torch.save(nn.GRU(3, 8, num_layers=2, batch_first=True).state_dict(), f)
    app = open_app("/your_model")
    with app.rerun():
        app.page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(f))
    app.page.wait_for_selector(".st-key-yw_gf .js-plotly-plot .main-svg", timeout=30_000)
    app.wait_idle()
    app.assert_no_exception("your_model after the upload")
    ok = app.page.locator('[data-testid="stAlert"]', has_text="Loaded").first.inner_text()
    assert "gru" in ok.lower(), f"the success note does not name the GRU: {ok!r}"
    for key in ("yw_gf", "yw_gates", "yw_pca"):
        assert app.page.locator(f".st-key-{key} .main-svg").count() >= 1, f"chart {key} missing after upload"


# -- 2. Start / Pause / Step ------------------------------------------------------------------------------------
def test_gradient_flow_start_pause_step(open_app):
    app = open_app("/gradient_flow")
    app.page.wait_for_selector(".st-key-gf_curve .main-svg")
    assert labels(app) == ["RNN (tanh)", "LSTM", "GRU"], app.status_text()
    assert app.steps() == [0, 0, 0], app.status_text()
    charts = app.drawn_plot_count()

    app.start()
    first = app.wait_steps(lambda s: min(s) > 0, timeout_ms=30_000)
    app.wait_steps(lambda s: len(s) == 3 and all(b > a for a, b in zip(first, s, strict=True)),
                   timeout_ms=20_000)  # every run advances
    assert "running" in app.status_text()
    assert app.drawn_plot_count() >= charts, f"charts disappeared while training: {app.drawn_plot_count()} < {charts}"
    app.assert_no_exception("gradient_flow while training")

    app.pause()
    paused = app.steps()
    app.page.wait_for_timeout(1200)
    assert app.steps() == paused, f"steps kept changing after Pause: {paused} -> {app.steps()}"
    assert len(set(paused)) == 1, f"after Pause the runs are not at the same step (lockstep): {app.status_text()!r}"
    assert "paused" in app.status_text(), app.status_text()

    for _ in range(3):
        before = app.steps()
        after = app.step()
        assert after == [s + 1 for s in before], f"Step: {before} -> {after}, expected +1 for each run"
    app.page.wait_for_selector(".st-key-gf_curve .main-svg")
    app.assert_no_exception("gradient_flow after Step")


def test_step_reruns_only_the_live_area(open_app):
    """Step is drawn by the live fragment (into its place in the sidebar), so a click reruns that fragment alone:
    every delta the server sends belongs to it, the only ones in the sidebar are its Start and Step buttons, and the run
    ends as a fragment run. A whole-page run rebuilt and re-sent the sidebar and everything around the charts
    (bench/bench_ui.py: Step -> chart took twice as long)."""
    app = open_app()
    frames = record_frames(app)
    app.goto("/gradient_flow")
    line = app.page.locator(".st-key-gf_curve .scatterlayer .trace path.js-line").first
    line.wait_for()
    for _ in range(3):
        frames.clear()
        before, d0 = app.steps(), line.get_attribute("d")
        assert app.step() == [s + 1 for s in before], app.status_text()
        app.page.wait_for_function("([sel, d0]) => { const p = document.querySelector(sel); "
                                   "return p && p.getAttribute('d') !== d0; }",
                                   arg=[".st-key-gf_curve .scatterlayer .trace path.js-line", d0])
        msgs = [ForwardMsg.FromString(f) for f in frames]
        kinds = [m.WhichOneof("type") for m in msgs]
        assert "new_session" in kinds, f"no script run was seen: {kinds}"
        finished = [m.script_finished for m in msgs if m.WhichOneof("type") == "script_finished"]
        assert finished == [ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY], \
            f"Step ran {finished} (0 = the whole page, 3 = the live fragment)"
        deltas = [m for m in msgs if m.WhichOneof("type") == "delta"]
        assert len(deltas) > 5 and all(m.delta.fragment_id for m in deltas), "a delta from outside the live area"
        sidebar = [m.delta for m in deltas if m.metadata.delta_path[0] == 1]  # root 1 = the sidebar
        buttons = [d.new_element.button.id.rsplit("-", 1)[-1] for d in sidebar if d.WhichOneof("type") == "new_element"
                   and d.new_element.WhichOneof("type") == "button"]
        assert buttons == ["btn_start", "btn_step"] and len(buttons) == sum(d.WhichOneof("type") == "new_element"
                                                                          for d in sidebar), \
            f"the sidebar got more than its Start and Step buttons: {sidebar}"
        assert all(d.WhichOneof("type") == "add_block" and d.add_block.WhichOneof("type") == "transparent"
                   for d in sidebar if d.WhichOneof("type") != "new_element"), sidebar  # the slot's own wrapper
    app.assert_no_exception("gradient_flow after fragment Steps")


def test_pause_is_answered_by_the_live_area_then_ticking_stops(open_app):
    """Pause is drawn by the live fragment too: the run that answers the click is that fragment's (▶ Start back
    without rebuilding the page), the next tick reruns the whole page, which stops the ticking (no run after it),
    and a Step pressed at once after Pause, before that tick, is not lost."""
    app = open_app()
    frames = record_frames(app)
    app.goto("/gradient_flow")
    app.page.wait_for_selector(".st-key-gf_curve .main-svg")
    for k in range(3):
        app.start()
        app.wait_steps(lambda s: min(s) > 0)
        app.page.wait_for_timeout(700 + 300 * k)
        frames.clear()
        if k == 2:  # Pause, then Step at once (before the next tick)
            app.click_sidebar_button("❚❚ Pause")
            app.sidebar_button("▶ Start").wait_for(state="visible")
            app.page.wait_for_function("() => Array.from(document.querySelectorAll("
                                       "'[data-testid=\"stMarkdownContainer\"]'))"
                                       ".some(e => e.innerText.includes('· paused'))")
            before = app.steps()
            after = app.step()
            assert after == [max(before) + 1] * 3, f"Step right after Pause: {before} -> {after}"
        else:
            app.pause()
        app.page.wait_for_timeout(1500)  # the tick that reruns the page, then several tick periods
        ends = [m.script_finished for m in map(ForwardMsg.FromString, frames)
                if m.WhichOneof("type") == "script_finished"]
        ends = [e for e in ends if e != ForwardMsg.FINISHED_EARLY_FOR_RERUN]  # runs not cut short for another
        assert ends and ends[0] == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY, \
            f"Pause was not answered by the live area: {ends} (0 = whole page, 3 = fragment)"
        assert ForwardMsg.FINISHED_SUCCESSFULLY in ends, f"the page never reran after Pause: {ends}"
        after_full = ends[len(ends) - ends[::-1].index(ForwardMsg.FINISHED_SUCCESSFULLY):]
        assert len(after_full) <= (1 if k == 2 else 0), f"ticks went on after the page reran: {ends}"  # 1: the Step
        assert "paused" in app.status_text(), app.status_text()
    app.assert_no_exception("gradient_flow after Pause")


def test_no_tooltip_covers_start(open_app):
    """Hovering Step or Reset must not cover ▶ Start: Streamlit draws a button's help tooltip above it, which hid
    Start (issue 10); what they do is said in a caption under them instead."""
    app = open_app("/gradient_flow")
    start = app.sidebar_button("▶ Start").bounding_box()
    for key in ("btn_step", "btn_reset"):
        app.page.locator(f'[data-testid="stSidebar"] .st-key-{key} button').first.hover()
        app.page.wait_for_timeout(800)  # a tooltip opens after a short delay
        tips = app.page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stTooltipContent"]'))
            .map(e => e.getBoundingClientRect()).filter(r => r.width > 0)
            .map(r => [r.left, r.top, r.right, r.bottom])""")
        over = [t for t in tips if t[0] < start["x"] + start["width"] and t[2] > start["x"]
                and t[1] < start["y"] + start["height"] and t[3] > start["y"]]
        assert not over, f"hovering {key} covers ▶ Start with a tooltip at {over}"
    assert "Step: one optimisation step" in app.sidebar_text()


def test_start_after_steps_keeps_the_page(open_app):
    """Start runs the whole page with the live fragment in it; when that run trained longer than a tick, the
    browser's tick timer fired during it and Streamlit's client failed on the next deltas ("Bad delta path index
    9"), leaving a blank page (3 of 5 tries). A full run now trains at most FULL_RUN_BUDGET."""
    app = open_app()
    errors: list[str] = []
    app.page.on("pageerror", lambda e: errors.append(str(e)))
    app.page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    app.goto("/gradient_flow")
    app.page.wait_for_selector(".st-key-gf_curve .main-svg")
    for _ in range(3):
        app.step()
        app.step()
        app.start()
        app.page.wait_for_timeout(2500)  # several ticks
        assert app.page.locator('[data-testid="stSidebar"]').count() == 1, f"the page went blank: {errors}"
        app.pause()
    assert not [e for e in errors if "delta path" in e], errors
    app.assert_no_exception("gradient_flow after Start")


# -- 3. URL state -----------------------------------------------------------------------------------------------
def test_url_settings_carry_over_and_controls_update_the_url(open_app):
    app = open_app("/?task=reverse&cells=gru&seq_len=12")
    assert app.widget_value("Task").startswith("reverse"), app.widget_value("Task")
    app.nav("Attention")
    assert app.path() == "/attention", app.page.url
    q = app.query()
    assert (q.get("task"), q.get("cells"), q.get("seq_len")) == ("reverse", "gru", "12"), f"URL lost settings: {q}"
    assert app.widget_value("Task").startswith("reverse"), f"sidebar task: {app.widget_value('Task')!r}"
    assert app.widget_value("Sequence length T") == "12"
    assert labels(app) == ["GRU + Bahdanau attention", "GRU, no attention"], app.status_text()
    app.page.wait_for_selector(".st-key-att_heat .js-plotly-plot .main-svg", timeout=30_000)
    # 12 source tokens on the heatmap's x axis
    ticks = app.page.locator(".st-key-att_heat .xtick").count()
    assert ticks >= 12, f"attention heatmap has {ticks} x ticks, expected one per source token (12)"
    app.assert_no_exception("attention")

    assert app.step() == [1, 1]
    app.set_number("Sequence length T", 16)
    q = app.query()
    assert q.get("seq_len") == "16" and q.get("task") == "reverse", f"URL after changing T: {app.page.url}"
    assert app.path() == "/attention"
    assert app.steps() == [0, 0], f"new T should mean new models (step 0): {app.status_text()!r}"

    app.select_option("W_hh init", "orthogonal")
    assert app.query().get("init") == "orthogonal", f"URL after choosing orthogonal init: {app.page.url}"
    app.assert_no_exception("attention after changing controls")


# -- 4. presets -------------------------------------------------------------------------------------------------
def test_truncated_bptt_preset_opens_gradient_flow(open_app):
    app = open_app("/")
    app.load_preset("Truncated BPTT")
    assert app.path() == "/gradient_flow", f"the preset opened {app.page.url}"
    q = app.query()
    assert q.get("compare") == "truncation" and q.get("compare_values") == "0,10", f"URL: {app.page.url}"
    assert q.get("cells") == "lstm", app.page.url
    assert "Gradient flow through time" in app.title()
    assert labels(app) == ["LSTM, full BPTT", "LSTM, truncated, k = 10"], app.status_text()
    app.page.wait_for_selector(".st-key-gf_curve .main-svg")
    app.assert_no_exception("gradient_flow after the preset")


def test_clicking_a_phase_cell_loads_it_on_gradient_flow(open_app, tmp_path):
    import pandas as pd

    app = open_app()
    app.goto("/phase", timeout_ms=180_000)  # the sweep computes its grid first
    app.page.wait_for_selector(".st-key-ph_chart .main-svg", timeout=120_000)
    with app.page.expect_download(timeout=30_000) as dl:  # the grid's data, as drawn
        app.page.get_by_role("button", name="⬇ phase.csv").click()
    dl.value.save_as(tmp_path / "phase.csv")
    grid = pd.read_csv(tmp_path / "phase.csv")
    assert len(grid) == 1200, len(grid)  # 3 cells x 20 scales x 20 lengths
    assert {"cell", "scale", "seq_len", "log_ratio"} <= set(grid.columns), list(grid.columns)
    cells = app.page.locator(".st-key-ph_chart .scatterlayer .trace .points path")
    assert cells.count() >= 1200, f"{cells.count()} clickable phase cells"  # 3 cells x 20 scales x 20 lengths
    cells.nth(150).click(force=True)  # RNN (tanh) panel
    app.page.get_by_role("button", name="Open this configuration on the Gradient flow page").wait_for(timeout=60_000)
    selected = app.page.locator('[data-testid="stAlert"]').first.inner_text()
    assert selected.startswith("Selected: RNN (tanh), weight scale"), selected
    app.page.get_by_role("button", name="Open this configuration on the Gradient flow page").click()
    app.page.wait_for_url("**/gradient_flow?**", timeout=60_000)
    app.wait_idle()
    q = app.query()
    assert q.get("cells") == "rnn_tanh" and q.get("init") == "orthogonal" and "weight_scale" in q, app.page.url
    assert f"T = {q.get('seq_len')}." in selected, (selected, app.page.url)
    assert "Gradient flow through time" in app.title()
    app.assert_no_exception("gradient_flow loaded from the phase diagram")


# -- 5. four sessions at once -----------------------------------------------------------------------------------
SESSIONS = [  # (url, run labels, query values the URL must keep)
    ("/gradient_flow?cells=rnn_tanh&seq_len=20", ["RNN (tanh)"], {"cells": "rnn_tanh", "seq_len": "20"}),
    ("/gates?task=copy_memory&cells=lstm&seq_len=10&hidden_size=16", ["LSTM"],
     {"task": "copy_memory", "cells": "lstm", "seq_len": "10", "hidden_size": "16"}),
    ("/attention?task=reverse&cells=gru&seq_len=8", ["GRU + Bahdanau attention", "GRU, no attention"],
     {"task": "reverse", "cells": "gru", "seq_len": "8"}),
    ("/hidden_states?task=parity&cells=rnn_relu,gru&seq_len=30", ["RNN (relu)", "GRU"],
     {"task": "parity", "cells": "rnn_relu,gru", "seq_len": "30"}),
]


def test_four_sessions_train_in_isolation(open_app, app_server):
    t_start = time.perf_counter()

    def lap(what):
        print(f"{time.perf_counter() - t_start:6.1f} s  {what}")

    apps = [open_app() for _ in SESSIONS]
    for app, (url, _, _) in zip(apps, SESSIONS, strict=True):  # load all four at once
        app.goto(url, wait_idle=False)
    for app in apps:
        app.wait_idle()
    lap("4 sessions open")
    for app, (url, want, _) in zip(apps, SESSIONS, strict=True):
        assert labels(app) == want, f"{url}: status {app.status_text()!r}"
        assert app.steps() == [0] * len(want), f"{url}: a fresh session should start at step 0: {app.steps()}"

    for app in apps:
        app.start()
    lap("4 sessions started")
    cpu0, t0 = app_server.cpu_seconds(), time.perf_counter()
    first = [app.wait_steps(lambda s: min(s) > 0, timeout_ms=30_000) for app in apps]
    worst = 0.0
    while time.perf_counter() - t0 < 4.0:  # the server answers while four sessions train
        ok, took = health(app_server.url, timeout=5.0)
        assert ok, "/_stcore/health did not answer 'ok' while four sessions trained"
        worst = max(worst, took)
        time.sleep(0.25)
    assert worst < 2.0, f"/_stcore/health took {worst:.2f} s while four sessions trained"
    busy = (app_server.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    lap(f"trained; health answered in <= {worst:.2f} s; server used {busy:.2f} cores")
    for (url, _, _), app, a in zip(SESSIONS, apps, first, strict=True):
        # every session keeps advancing (a tick can take seconds while four share the GIL: wait, not sample)
        try:
            app.wait_steps(lambda s, a=a: all(y > x for x, y in zip(a, s, strict=True)), timeout_ms=30_000)
        except AssertionError as exc:
            raise AssertionError(f"{url}: steps did not advance past {a}: {exc}") from None

    # a fifth visitor still gets a page while the four train
    t = time.perf_counter()
    ph = open_app("/").load_phases()
    fifth = time.perf_counter() - t
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in ph.items() if v is not None)
    # measured 13-18 s on 2 cores: mostly this test's own Chromium drawing four live tabs (server: <= 1 core,
    # /_stcore/health < 1 s). The bound catches a server that stops serving new visitors, not slowness.
    assert fifth < 40, f"a new session took {fifth:.1f} s to load Home while four sessions trained ({phases})"
    lap(f"a fifth session loaded Home in {fifth:.1f} s ({phases})")

    # pausing one session stops only that one: the others keep advancing while its count holds
    apps[0].pause()
    held = apps[0].steps()
    others = [app.steps() for app in apps[1:]]
    for (url, _, _), app, before in zip(SESSIONS[1:], apps[1:], others, strict=True):
        try:
            app.wait_steps(lambda s, b=before: all(y > x for x, y in zip(b, s, strict=True)), timeout_ms=20_000)
        except AssertionError as exc:
            raise AssertionError(f"{url} stopped training when another session paused: {exc}") from None
    assert apps[0].steps() == held, f"the paused session kept training: {held} -> {apps[0].steps()}"
    lap("one paused, the other three kept training")

    # each session shows its own configuration: run labels, URL, sidebar
    for app, (url, want, query) in zip(apps, SESSIONS, strict=True):
        assert labels(app) == want, f"{url}: status shows {labels(app)}, expected {want}"
        q = app.query()
        assert {k: q.get(k) for k in query} == query, f"{url}: URL is now {app.page.url}"
        assert app.widget_value("Sequence length T") == query["seq_len"], f"{url}: sidebar T differs"
        assert app.widget_value("Task").startswith(query.get("task", "adding")), f"{url}: sidebar task differs"
        app.assert_no_exception(url)

    lap("each session shows its own configuration")
    # closing the tabs (three still training) stops their training: the server goes idle
    for app in apps:
        app.page.context.close()
    closed, idle = time.perf_counter(), float("inf")
    while idle >= 0.2 and time.perf_counter() - closed < 20:  # ticks in progress finish, then nothing runs
        cpu1, t1 = app_server.cpu_seconds(), time.perf_counter()
        time.sleep(2.0)
        idle = (app_server.cpu_seconds() - cpu1) / (time.perf_counter() - t1)
    lap(f"tabs closed; {time.perf_counter() - closed:.1f} s later the server uses {idle:.2f} cores")
    # "Is anything training?" is answered by the step counts above (every session advanced, twice), not by the
    # server's share of the 2 cores: that share depends on what else runs (this test's own Chromium draws four
    # live tabs), and a fixed bound on it failed by chance in full-suite runs. Going idle after the tabs close is
    # a property of the server alone (nothing else it runs), polled above for up to 20 s.
    assert idle < 0.2, f"the server still uses {idle:.2f} cores after the training tabs closed (was {busy:.2f})"
    ok, took = health(app_server.url)
    assert ok and took < 2.0, f"health after closing the tabs: ok={ok}, {took:.2f} s"
    assert app_server.alive()


def test_direct_link_on_a_fresh_server(browser):
    """The first visitor of a just-started server arrives by a shared link to a page, not by Home.

    Until some session has run app.py's st.navigation, Streamlit treats an app with a pages/ folder as an old
    style multipage app and runs pages/<name>.py on its own: app.py (page config, navigation) is skipped.
    """
    with StreamlitServer() as server:
        app = App(new_page(browser), server.url)
        try:
            app.goto("/attention?task=reverse&cells=gru&seq_len=12")
            app.assert_no_exception("attention by direct link")
            assert TITLES["/attention"] in app.title()
            assert labels(app) == ["GRU + Bahdanau attention", "GRU, no attention"], app.status_text()
            nav = [t.split("\n")[-1].strip() for t in app.page.locator(NAV_LINK).all_inner_texts()]
            assert nav == list(NAV_TEXT.values()), f"first visit by a page link: navigation is {nav}"
            width = app.page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]
            assert width > 1000, f"first visit by a page link: main column {width:.0f} px, not the wide layout"
        except BaseException:
            print("screenshot:", app.screenshot("rnnviz-fail-direct-link"))
            raise
        finally:
            app.page.context.close()


def test_server_log_has_no_tracebacks(open_app, app_server):
    """Runs last in this module: nothing the browser did made the server log a Python traceback."""
    app = open_app("/")
    assert app.page.locator(APP_IDLE).count() == 1
    log = app_server.output(tail=1_000_000)
    reports = tracebacks(log)
    found = [r for r in reports if counts_against_app(r)]  # Streamlit's client-disconnect race excepted
    print(f"server log: {len(reports) - len(found)} client-disconnect traceback(s) of Streamlit's excepted")
    assert not found, "\n\n".join(found)[-6000:]
