"""In a real browser: the syllabus pages used, not just opened.

Hello steps its greedy generation one character at a time; Padding & packing switches the masked run on and off
and states the exact zero gradients; Decoding shows greedy and teacher-forced tokens from <sos> (and, with eos=1 in
the URL, stopping at <eos>); Connectivity and Unrolled redraw their charts after Steps; every one of these pages
delivers its CSV/JSON downloads, which parse and hold its numbers.

Uses the fixtures of tests/test_browser.py (its own `streamlit run app.py` for this module). Every wait is bounded;
nothing is timed.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from tests.browser import App, PlaywrightTimeout
from tests.test_browser import app_server, browser, open_app  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
MAIN = '[data-testid="stMain"]'


# -- helpers ----------------------------------------------------------------------------------------------------
def click(app: App, name: str) -> None:
    """Click the main area's button `name` and wait for the rerun it triggers."""
    with app.rerun():
        app.page.locator(MAIN).get_by_role("button", name=name, exact=True).click()


def set_main_number(app: App, label: str, value) -> None:
    box = app.page.locator(MAIN).locator(f'input[aria-label="{label}"]').first
    with app.rerun():
        box.fill(str(value))
        box.press("Enter")


def download(app: App, label: str, folder) -> tuple[str, object]:
    """Click the download button `label` ("hello_steps.csv"); returns (suggested file name, parsed content):
    a DataFrame for CSV, the decoded object for JSON. Asserts the file is non-empty and parses."""
    app.wait_idle()
    try:
        with app.page.expect_download(timeout=20_000) as dl:
            app.page.get_by_role("button", name=f"⬇ {label}", exact=True).click()
    except PlaywrightTimeout():  # a rerun retired the button's file just as it was clicked: once more, settled
        app.wait_idle()
        with app.page.expect_download(timeout=20_000) as dl:
            app.page.get_by_role("button", name=f"⬇ {label}", exact=True).click()
    path = folder / label
    dl.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert text.strip(), f"{label}: the downloaded file is empty"
    if label.endswith(".csv"):
        df = pd.read_csv(path)
        assert len(df.columns) >= 2, f"{label}: {list(df.columns)}"
        return dl.value.suggested_filename, df
    return dl.value.suggested_filename, json.loads(text)


def svg_texts(app: App, key: str) -> list[str]:
    """Every text drawn in the svg of the chart with widget key `key` (axis ticks, titles, heatmap cells)."""
    return app.page.locator(f".st-key-{key} .main-svg text").evaluate_all("es => es.map(e => e.textContent)")


def chart_signature(app: App, key: str) -> list[str]:
    """What a chart draws: its texts, heatmap images and line paths (changes when its data changes)."""
    return app.page.evaluate(
        """key => [...document.querySelectorAll(`.st-key-${key} .main-svg :is(text, image, path.js-line)`)]
                  .map(e => e.tagName === 'image' ? e.getAttribute('href') :
                            e.tagName === 'path' ? e.getAttribute('d') : e.textContent)""", key)


def wait_chart(app: App, key: str, timeout_ms: float = 60_000) -> None:
    app.page.wait_for_selector(f".st-key-{key} .js-plotly-plot .main-svg", timeout=timeout_ms)


def wait_grid_rows(app: App, index: int, n: int, timeout_ms: float = 15_000) -> None:
    """Until the index-th st.dataframe of the main area shows n data rows (its accessible table's aria-rowcount
    counts the header too; the grid redraws a moment after the script run)."""
    app.page.wait_for_function(
        """([i, n]) => {
            const grids = document.querySelectorAll('[data-testid="stMain"] [data-testid="stDataFrame"]');
            const t = grids[i] && grids[i].querySelector('table[aria-rowcount]');
            return t && Number(t.getAttribute('aria-rowcount')) === n + 1;
        }""", arg=[index, n], timeout=timeout_ms)


def markdown_with(app: App, text: str) -> str:
    """The main area's markdown or caption blocks that contain `text`, joined."""
    blocks = app.page.locator(f'{MAIN} :is([data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"])',
                              has_text=text)
    return "\n".join(blocks.all_inner_texts())


# -- Hello ------------------------------------------------------------------------------------------------------
def test_hello_greedy_generation_steps_one_character_at_a_time(open_app, tmp_path):  # noqa: F811
    app = open_app("/hello")
    app.assert_no_exception()
    click(app, "Train 100 steps")
    assert "step 100" in markdown_with(app, "step 100")
    generated = app.page.locator(f"{MAIN} h3").first
    assert generated.inner_text().strip() == "h"  # the start character, nothing generated yet
    assert app.page.locator(".st-key-hello_gen_softmax").count() == 0
    texts, charts = [], []
    for k in range(1, 6):
        click(app, "Next character ▶")
        app.assert_no_exception(f"hello, Next character #{k}")
        text = generated.inner_text().strip()
        assert len(text) == k + 1 and text.startswith("h") and set(text) <= set("ehlo"), text
        if texts:
            assert text.startswith(texts[-1]), f"{texts[-1]!r} -> {text!r}: the earlier characters changed"
        texts.append(text)
        wait_grid_rows(app, 1, k)  # the generation table (after the step table): one row per character
        wait_chart(app, "hello_gen_softmax")
        charts.append(chart_signature(app, "hello_gen_softmax"))
    assert all(a != b for a, b in zip(charts, charts[1:], strict=False)), "the softmax chart did not advance"

    name, gen = download(app, "hello_generation.csv", tmp_path)
    assert name == "hello_generation.csv" and len(gen) == 5 and gen["t"].tolist() == list(range(5))
    assert "h" + "".join(gen["predicted"].astype(str)) == texts[-1]
    _, steps = download(app, "hello_steps.csv", tmp_path)
    assert steps["input"].astype(str).tolist() == list("hell") and {"predicted", "target"} <= set(steps.columns)
    _, weights = download(app, "hello_weights.csv", tmp_path)
    assert len(weights) > 0
    _, model = download(app, "hello_model.json", tmp_path)
    assert model["steps"] == 100 and model["train"]["task"] == "hello"
    _, cfg = download(app, "config.json", tmp_path)
    assert "controls" in cfg

    click(app, "Start over")
    assert generated.inner_text().strip() == "h" and app.page.locator(".st-key-hello_gen_softmax").count() == 0


# -- Padding & packing --------------------------------------------------------------------------------------------
ZEROS_RE = re.compile(r"packed (\d+) of (\d+), masked (\d+) of (\d+), lengths ignored (\d+) of (\d+)")


def test_padding_packed_and_masked_runs_and_the_zero_gradient_statement(open_app, tmp_path):  # noqa: F811
    app = open_app("/padding")
    app.assert_no_exception()
    click(app, "Train 20 steps")
    wait_chart(app, "pad_grads")
    m = ZEROS_RE.search(markdown_with(app, "Pads with exactly zero gradient"))
    assert m, markdown_with(app, "Pads with exactly zero gradient")
    packed, n, masked, n2, ignored, n3 = map(int, m.groups())
    assert n == n2 == n3 > 0 and packed == masked == n, "every pad gets exactly zero gradient, packed or masked"
    assert ignored < n, "with the lengths ignored the pads are read and get gradient"

    def panels() -> list[str]:  # the panel titles of the gradient chart, one per run shown
        return [t for t in svg_texts(app, "pad_grads") if t in ("packed", "padded + mask", "lengths ignored")]

    assert panels() == ["packed", "lengths ignored"], panels()
    toggle = app.page.locator(MAIN).get_by_role("switch", name="Also show the padded + masked run")
    with app.rerun():
        app.page.locator(MAIN).get_by_text("Also show the padded + masked run").click()
    assert toggle.is_checked()
    wait_chart(app, "pad_grads")
    assert panels() == ["packed", "padded + mask", "lengths ignored"], panels()
    assert ZEROS_RE.search(markdown_with(app, "Pads with exactly zero gradient")).groups() == m.groups()
    with app.rerun():
        app.page.locator(MAIN).get_by_text("Also show the padded + masked run").click()
    assert not toggle.is_checked() and "padded + mask" not in panels()
    app.assert_no_exception()

    _, grads = download(app, "input_gradients.csv", tmp_path)
    pads = grads[~grads["valid"].astype(bool)]
    assert len(pads) == n and (pads["grad_packed"] == 0).all() and (pads["grad_masked"] == 0).all()
    assert (pads["grad_padded"] != 0).sum() == n - ignored
    _, batch = download(app, "padded_batch.csv", tmp_path)
    assert len(batch) == 8
    _, model = download(app, "padding_model.json", tmp_path)
    assert model["steps"] == 20 and model["seq_len"] == 12


# -- Decoding ------------------------------------------------------------------------------------------------------
def strip_rows(app: App) -> list[str]:
    """The strip's cell texts, in drawing order (rows greedy, teacher-forced, target; each from <sos>)."""
    wait_chart(app, "dec_strip")
    return svg_texts(app, "dec_strip")


def test_decoding_greedy_and_teacher_forced_from_sos(open_app, tmp_path):  # noqa: F811
    app = open_app("/decoding?task=reverse&cells=gru&seq_len=5")
    app.step()
    app.assert_no_exception()
    texts = strip_rows(app)
    assert {"greedy", "teacher-forced", "target"} <= set(texts), texts  # the rows, as y tick labels
    assert texts.count("<sos>") >= 3, "each row (greedy, teacher-forced, target) starts at <sos>"
    assert "<eos>*" in texts  # no <eos> in this task: greedy stops at the target length
    assert "stopped at the target length T" in markdown_with(app, "greedy wrote")
    before = markdown_with(app, "greedy wrote")
    set_main_number(app, "Example of the probe batch", 3)
    app.assert_no_exception()
    after = markdown_with(app, "greedy wrote")
    assert after != before, "another example: another source sequence"
    assert strip_rows(app).count("<sos>") >= 3

    _, steps = download(app, "decoding_steps.csv", tmp_path)
    assert steps["greedy_input"].iloc[0] == "<sos>" and steps["tf_input"].iloc[0] == "<sos>" and len(steps) == 5
    src = re.search(r"source (.+?) → target", after).group(1).split()
    assert steps["target"].astype(str).tolist() == src[::-1], "reverse: the target is the source backwards"
    _, att = download(app, "decoding_attention.csv", tmp_path)
    assert set(att["mode"]) == {"greedy", "teacher_forced"}
    _, acc = download(app, "decoding_accuracy.csv", tmp_path)
    assert len(acc) == 8 and set(acc["stop"]) == {"length"}
    _, cfg = download(app, "config.json", tmp_path)
    assert cfg["controls"]["task"] == "reverse" and cfg["controls"]["eos"] is False


def test_decoding_with_eos_in_the_url_stops_at_eos(open_app, tmp_path):  # noqa: F811
    app = open_app("/decoding?task=reverse&cells=gru&seq_len=4&eos=1&lr=0.01")
    app.assert_no_exception()
    assert app.page.locator('[data-testid="stSidebar"]').get_by_role("checkbox", name="End targets with <eos>") \
        .is_checked()
    for _ in range(25):  # seeded: it learns where <eos> goes within about 10 steps
        app.step()
        if "stopped at the model emitted <eos>" in markdown_with(app, "greedy wrote"):
            break
    app.assert_no_exception()
    assert app.query().get("eos") == "true"
    line = markdown_with(app, "greedy wrote")
    assert "stopped at the model emitted <eos>" in line, line
    texts = strip_rows(app)
    assert texts.count("<sos>") >= 3 and "stop" in texts and "<eos>" in texts, texts

    _, steps = download(app, "decoding_steps.csv", tmp_path)
    greedy = [t for t in steps["greedy"].fillna("").astype(str) if t]
    assert steps["greedy_input"].iloc[0] == "<sos>" and greedy[-1] == "<eos>" and "<eos>" not in greedy[:-1]
    assert steps["target"].astype(str).tolist()[-1] == "<eos>" and len(steps) >= 5
    _, acc = download(app, "decoding_accuracy.csv", tmp_path)
    assert (acc["stop"] == "eos").mean() >= 0.75
    _, cfg = download(app, "config.json", tmp_path)
    assert cfg["controls"]["eos"] is True
    assert all(r["train"]["task_options"] == {"eos": True} for r in cfg["runs"].values())


# -- Connectivity and Unrolled: Steps redraw the charts ----------------------------------------------------------
def test_connectivity_steps_update_the_heatmaps(open_app, tmp_path):  # noqa: F811
    app = open_app("/connectivity?task=char_lm&cells=lstm,gru&seq_len=32&hidden_size=16")
    app.step()
    wait_chart(app, "cn_heat")
    wait_chart(app, "cn_reach")
    heat, reach = chart_signature(app, "cn_heat"), chart_signature(app, "cn_reach")
    assert any(s.startswith("data:image") for s in heat), "the heatmaps are drawn"
    for _ in range(3):
        app.step()
    app.assert_no_exception()
    assert chart_signature(app, "cn_heat") != heat, "the heatmaps did not change after 3 more Steps"
    assert chart_signature(app, "cn_reach") != reach, "the reach curves did not change after 3 more Steps"
    assert "step 4" in markdown_with(app, "Computed from the current weights")

    _, cf = download(app, "connectivity.csv", tmp_path)
    assert set(cf["run"]) == {"LSTM", "GRU"} and (cf["connectivity"] >= 0).all()
    assert (cf.loc[cf["s"] > cf["t"], "connectivity"] == 0).all(), "nothing reaches into the future"
    _, rf = download(app, "connectivity_reach.csv", tmp_path)
    assert len(rf) > 0
    _, cfg = download(app, "config.json", tmp_path)
    assert cfg["controls"]["task"] == "char_lm"


def test_unrolled_steps_update_the_gradient_drawn(open_app, tmp_path):  # noqa: F811
    app = open_app("/unrolled?cells=rnn_tanh,gru&seq_len=20")
    app.step()
    wait_chart(app, "un_fig")
    first = chart_signature(app, "un_fig")
    assert any("at step 1" in t for t in first), first[:10]
    for _ in range(2):
        app.step()
    app.assert_no_exception()
    now = chart_signature(app, "un_fig")
    assert any("at step 3" in t for t in now) and now != first
    assert [t for t in now if re.fullmatch(r"[\d.e−+-]+", t or "")] != \
        [t for t in first if re.fullmatch(r"[\d.e−+-]+", t or "")], "the ‖∂L/∂h_t‖ numbers did not change"

    _, nodes = download(app, "unrolled_nodes.csv", tmp_path)
    assert len(nodes) > 0
    _, edges = download(app, "unrolled_edges.csv", tmp_path)
    assert len(edges) > 0
    _, weights = download(app, "unrolled_weights.csv", tmp_path)
    assert "core.weight_hh_l0" in weights["PyTorch parameter"].tolist()
    _, cfg = download(app, "config.json", tmp_path)
    assert cfg["controls"]["cells"] == ["rnn_tanh", "gru"]
