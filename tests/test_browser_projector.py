"""The dashboard on a lecture-hall projector: Debian's Chromium at 1280x800 against `streamlit run app.py`.

On each training page (Gradient flow, Gates, Hidden states, Attention, Training & replay), after one Step,
as it is and in presentation mode (present=1): the status line and the whole main chart are inside the
viewport without scrolling; every text plotly draws in the charts (tick labels, axis titles, legend, chart
title, colour bars, panel titles, hover labels) is at least 14 px (18 px in presentation mode) and dark
(relative luminance <= 0.45), the chart title larger than the tick labels; log axes are labelled at decades
only. Nothing is fetched from a host other than the app's own (favicon included). Sampled text
wraps inside its column.

Geometry and styles are read from the live DOM (getBoundingClientRect, getComputedStyle of the SVG text), so
the checks hold whatever the Streamlit theme does to plotly's defaults. On failure the message lists what sits
above the chart, with its height.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from tests.browser import RUN_COUNTER_JS, App
from tests.test_browser import app_server, browser  # noqa: F401 - the module's server and Chromium (fixtures)

pytestmark = pytest.mark.browser

PROJECTOR = {"width": 1280, "height": 800}
MIN_PX, PRESENTATION_MIN_PX, MAX_LUMINANCE = 14.0, 18.0, 0.45
MODES = {"as it is": "", "presentation": "present=1"}
SEQ2SEQ = "task=reverse&cells=gru&seq_len=12"  # the attention page needs a sequence-to-sequence task
MAIN_CHART = {  # page -> (url, the key of its main chart)
    "Gradient flow": ("/gradient_flow", "gf_curve"),
    "Gates": ("/gates", "gates_heat"),
    "Hidden states": ("/hidden_states", "hs_pca"),
    "Attention": (f"/attention?{SEQ2SEQ}", "att_heat"),
    "Training": ("/training", "tr_loss"),
}
LOG_CHARTS = {"Gradient flow": ["gf_curve", "gf_global"], "Training": ["tr_loss", "tr_layers"]}
DECADE = re.compile(r"^(1|10|100|1000|0\.1|0\.01|0\.001|10\u200b?[−-]?\d+\u200b?)$")  # 10⁻³ reads "10​−3​"


@pytest.fixture
def projector(browser, app_server):  # noqa: F811 - pytest fixtures by name
    """projector(path) -> App in a fresh 1280x800 context (its own session), opened at `path`; every request
    URL the context makes is collected in app.requests."""
    contexts = []

    def _open(path: str) -> App:
        ctx = browser.new_context(viewport=PROJECTOR)
        ctx.set_default_timeout(60_000)
        ctx.add_init_script(RUN_COUNTER_JS)
        contexts.append(ctx)
        requests: list[str] = []
        ctx.on("request", lambda r: requests.append(r.url))
        app = App(ctx.new_page(), app_server.url)
        app.requests = requests
        app.goto(path)
        return app

    yield _open
    for ctx in contexts:
        try:
            ctx.close()
        except Exception:  # noqa: BLE001 - already closed
            pass


def with_query(path: str, query: str) -> str:
    return path + ("&" if "?" in path else "?") + query if query else path


def stepped(app: App, key: str) -> None:
    """Press Step once (charts then show a trained snapshot) and wait until the chart `key` is drawn."""
    app.step()
    app.page.wait_for_selector(f".st-key-{key} .js-plotly-plot .main-svg", timeout=60_000)
    app.wait_idle()
    app.page.wait_for_timeout(300)  # plotly's relayout after the container got its width
    app.page.evaluate("""() => { const m = document.querySelector('[data-testid="stMain"]');
                                  if (m) m.scrollTop = 0; window.scrollTo(0, 0); }""")


# every block of the main column from the top down to the chart: what takes the room above it
ABOVE_JS = """(key) => {
  const chart = document.querySelector('.st-key-' + key);
  const bottom = chart ? chart.getBoundingClientRect().top : innerHeight;
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  const out = [['top padding of the main column', 0, parseFloat(getComputedStyle(main).paddingTop)]];
  const seen = new Set();
  for (const e of main.querySelectorAll('[data-testid="stElementContainer"], [data-testid="stExpander"]')) {
    const r = e.getBoundingClientRect();
    if (r.height < 1 || r.top >= bottom || r.bottom > bottom + 1) continue;
    let clipped = false;  // inside a collapsed (1 px, overflow hidden) container: drawn nowhere
    for (let a = e.parentElement; a && a !== main; a = a.parentElement) {
      if (a.clientHeight < 4 && getComputedStyle(a).overflow !== 'visible') { clipped = true; break; }
    }
    if (clipped) continue;
    if ([...seen].some(s => s.contains(e) || e.contains(s))) continue;
    seen.add(e);
    out.push([(e.innerText || e.getAttribute('data-testid')).trim().split('\\n')[0].slice(0, 70),
              Math.round(r.top), Math.round(r.height)]);
  }
  return out;
}"""


def above(app: App, key: str) -> str:
    rows = app.page.evaluate(ABOVE_JS, key)
    return "\n".join(f"  {h:4.0f} px at y={top:4d}: {what}" for what, top, h in rows)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("page", list(MAIN_CHART))
def test_status_and_main_chart_fit_a_1280x800_screen(projector, page, mode):
    path, key = MAIN_CHART[page]
    app = projector(with_query(path, MODES[mode]))
    stepped(app, key)
    app.assert_no_exception(page)
    status = app.page.locator('[data-testid="stMarkdownContainer"]', has_text="steps/s").first.bounding_box()
    chart = app.page.locator(f".st-key-{key}").bounding_box()
    assert status is not None, f"{page}: no status line"
    h = PROJECTOR["height"]
    problems = []
    if status["y"] + status["height"] > h:
        problems.append(f"status ends at {status['y'] + status['height']:.0f} px")
    if chart["y"] + chart["height"] > h:
        problems.append(f"main chart ({key}, {chart['height']:.0f} px tall) ends at "
                        f"{chart['y'] + chart['height']:.0f} px")
    assert not problems, (f"{page} ({mode}) at 1280x800 (viewport {h} px): " + "; ".join(problems)
                          + ". Above the chart:\n" + above(app, key))


def test_attention_preset_at_n_fits_with_its_claims_open(projector):
    """The attention preset pauses at N with its claims expander open (normal mode): the heatmap, the proof the
    claims are about, must still be on a 1280x800 screen (it ended at 859 px before its caption moved under it)."""
    app = projector("/")
    app.load_preset("Attention vs the context-vector bottleneck")
    app.start()
    app.page.get_by_text("paused at N").first.wait_for(timeout=120_000)
    app.wait_idle()
    app.page.wait_for_selector(".st-key-att_heat .main-svg")
    app.assert_no_exception("attention preset at N")
    assert app.page.get_by_text("holds").count() >= 3, "the claims are not shown open at N"
    chart = app.page.locator(".st-key-att_heat").bounding_box()
    assert chart["y"] + chart["height"] <= PROJECTOR["height"], (
        f"the attention heatmap ends at {chart['y'] + chart['height']:.0f} px. Above it:\n" + above(app, "att_heat"))


# every text element plotly drew in the chart's SVG, with its computed size and fill
TEXTS_JS = """(key) => {
  const root = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
  const groups = {tick: '.xtick text, .ytick text', axis_title: '.g-xtitle text, .g-ytitle text',
                  legend: '.legendtext', title: '.gtitle', colorbar: '.colorbar text', panel_title: '.annotation-text'};
  const out = {};
  for (const [name, sel] of Object.entries(groups)) {
    out[name] = [...root.querySelectorAll(sel)].filter(e => e.textContent.trim())
      .map(e => { const s = getComputedStyle(e); return [e.textContent, parseFloat(s.fontSize), s.fill]; });
  }
  return out;
}"""


def luminance(css: str) -> float:
    """WCAG relative luminance of a computed colour "rgb(r, g, b)"."""
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def check_texts(texts: dict, where: str, min_px: float = MIN_PX) -> None:
    assert texts["tick"], f"{where}: no tick labels drawn"
    bad = [(group, t, px, fill) for group, items in texts.items() for t, px, fill in items
           if px < min_px or luminance(fill) > MAX_LUMINANCE]
    assert not bad, f"{where}: text smaller than {min_px:g} px or lighter than luminance {MAX_LUMINANCE}: {bad[:8]}"
    if texts["title"]:
        assert min(px for _, px, _ in texts["title"]) > max(px for _, px, _ in texts["tick"]), where


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("page", list(MAIN_CHART))
def test_chart_text_is_large_and_dark(projector, page, mode):
    path, key = MAIN_CHART[page]
    app = projector(with_query(path, MODES[mode]))
    stepped(app, key)
    keys = [key] + [k for k in LOG_CHARTS.get(page, []) if k != key]
    for k in keys:
        app.page.wait_for_selector(f".st-key-{k} .main-svg")
        check_texts(app.page.evaluate(TEXTS_JS, k), f"{page} ({mode}), chart {k}",
                    PRESENTATION_MIN_PX if MODES[mode] else MIN_PX)


def test_hover_label_is_large_and_dark(projector):
    app = projector("/gradient_flow")
    stepped(app, "gf_curve")
    app.page.locator(".st-key-gf_curve").scroll_into_view_if_needed()
    points = app.page.evaluate("""() => [...document.querySelectorAll('.st-key-gf_curve .scatterlayer .points path')]
        .map(p => { const r = p.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })""")
    assert points, "no markers drawn on the gradient chart"
    app.page.mouse.move(*points[len(points) // 2])
    app.page.wait_for_selector(".st-key-gf_curve .hoverlayer .hovertext text", timeout=5_000)
    texts = app.page.evaluate("""() => [...document.querySelectorAll('.st-key-gf_curve .hoverlayer .hovertext text')]
        .map(e => { const s = getComputedStyle(e); return [e.textContent, parseFloat(s.fontSize), s.fill]; })""")
    bad = [t for t in texts if t[1] < MIN_PX or luminance(t[2]) > MAX_LUMINANCE]
    assert not bad, f"hover label text too small or too light: {bad}"


@pytest.mark.parametrize("page", list(LOG_CHARTS))
def test_log_axes_are_labelled_at_decades_only(projector, page):
    path, key = MAIN_CHART[page]
    app = projector(path)
    stepped(app, key)
    app.step()  # two steps: the loss and gradient histories have more than one point
    for k in LOG_CHARTS[page]:
        app.page.wait_for_selector(f".st-key-{k} .main-svg")
        axes = app.page.evaluate("""(key) => {
            const gd = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
            const fl = gd._fullLayout, out = {};
            for (const name of Object.keys(fl).filter(n => /^[xy]axis\\d*$/.test(n))) {
              const ax = fl[name];
              if (ax.type !== 'log') continue;
              const id = ax._id;  // "y", "y2": its tick labels are g.<id>tick text
              out[name] = [...gd.querySelectorAll('.' + id + 'tick text')].map(e => e.textContent);
            }
            return out;
        }""", k)
        assert axes, f"{page}, chart {k}: no log axis found"
        for name, labels in axes.items():
            assert len(labels) >= 2, f"{page}, chart {k}, {name}: {labels}: fewer than two labels"
            odd = [t for t in labels if not DECADE.match(t)]
            assert not odd, f"{page}, chart {k}, {name}: labels between decades {odd} (all: {labels})"


def test_nothing_is_fetched_from_another_host(projector, app_server):  # noqa: F811
    """Every page, Step on the training pages: every request goes to the app's own host (or is a data:/blob:
    URL). The favicon is one of the app's own files and loads."""
    app = projector("/")
    own = urlparse(app_server.url).netloc
    for path, key in MAIN_CHART.values():
        app.goto(path)
        stepped(app, key)
    for path in ("/phase", "/your_model"):
        app.goto(path)
    app.page.wait_for_timeout(500)
    foreign = sorted({u for u in app.requests if urlparse(u).scheme not in ("data", "blob")
                      and urlparse(u).netloc != own})
    assert not foreign, f"requests to other hosts: {foreign}"
    icon = app.page.evaluate("() => [...document.querySelectorAll('link[rel*=icon]')].map(l => l.href)")
    assert icon and all(urlparse(h).netloc == own for h in icon), f"favicon links: {icon}"
    r = app.page.request.get(icon[-1])
    assert r.ok and r.headers.get("content-type", "").startswith("image/"), (icon[-1], r.status, r.headers)


def test_sampled_text_wraps_in_its_column(projector):
    """The character model: the text coloured by a unit and a sample of 300 characters stay inside the main
    column (no horizontal overflow), however long their lines."""
    app = projector("/hidden_states?task=char_lm&cells=lstm")
    stepped(app, "hs_pca")
    width = app.page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]
    with app.rerun():
        app.page.get_by_role("button", name="Sample 300 characters").click()
    blocks = app.page.evaluate("""() => [...document.querySelectorAll(
            '[data-testid="stMainBlockContainer"] [data-testid="stHtml"] > div, '
            + '[data-testid="stMainBlockContainer"] [data-testid="stCode"] pre')]
        .map(e => { const r = e.getBoundingClientRect();
                    return [e.textContent.length, e.scrollWidth, e.clientWidth, r.right - r.left]; })""")
    lengths = sorted(n for n, *_ in blocks)
    assert len(blocks) >= 2 and lengths[-1] >= 300, f"expected the coloured text and a sample, found {blocks}"
    for n, scroll, client, w in blocks:
        assert scroll <= client + 1, f"a text block of {n} characters overflows: {scroll} px in {client} px"
        assert w <= width + 1, f"a text block is {w:.0f} px wide in a {width:.0f} px column"
