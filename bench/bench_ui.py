"""How fast the dashboard feels in a real browser: server start, first page load, and Step -> redrawn chart.

    python bench/bench_ui.py [--repeats 10]

Starts `streamlit run app.py` on a free local port and drives Debian's Chromium (/usr/bin/chromium) with
Playwright, like tests/test_browser.py. Prints:

  server start -> /_stcore/health "ok"        (process launch until the server answers)
  first load of "/" -> idle, title visible     (the first session also imports torch and the app)   goal < 3 s
  warm load of "/" (a new session)
  Home -> Gradient flow -> charts drawn        (defaults; the first time in the server, then another session)
  Step -> status step count changes            (click in the page -> the status text shows step n+1)
  Step -> gradient chart redrawn               (click -> the first trace's svg path `d` changes)  goal < 300 ms

The two Step timings are taken in the page itself (performance.now() around a JS click, polled every
animation frame), so Playwright's round trips are not counted. Median and p90 over --repeats clicks.

Then where a cold start's seconds go (--no-breakdown skips it):
  browser: the JavaScript the first Home load fetched (count, size, when the last arrived), and on the first
           Gradient flow the plotly chunk (size, when it arrived after the click, until the first chart drew);
  server:  the same work a first visitor's script runs cause, timed in a fresh Python process, each step done
           twice (first = cold process, second = warm): importing torch, pandas + plotly, the app's modules,
           the first optimiser (torch.optim.Optimizer.__init__ imports torch._dynamo on its first call),
           building the default runs (3 models + their step-0 trace), the Gradient flow page's frames and
           figures, and their JSON; plus `python -X importtime` of the app's imports, by top-level package.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.browser import App, StreamlitServer, chromium_available, launch_browser, new_page  # noqa: E402

GOAL_FIRST_LOAD_S = 3.0
GOAL_STEP_MS = 300.0

# Click Step in the page and time, from the click, (1) the status line showing a new step count and
# (2) the first trace of the gradient-vs-time chart getting a new path. Resolves {status, chart} in ms
# (null for one that did not change within the timeout).
STEP_JS = """
async ({timeoutMs}) => {
  const statusText = () => Array.from(document.querySelectorAll('[data-testid="stMarkdownContainer"]'))
      .map(e => e.innerText).filter(t => t.includes('steps/s')).join('\\n');
  const firstPath = () => {
    const p = document.querySelector('.st-key-gf_curve .scatterlayer .trace path.js-line');
    return p ? p.getAttribute('d') : null;
  };
  const s0 = statusText(), d0 = firstPath();
  const button = document.querySelector('[data-testid="stSidebar"] .st-key-btn_step button');
  if (!button || button.disabled) return {error: 'Step button missing or disabled'};
  const t0 = performance.now();
  button.click();
  let status = null, chart = null;
  while (performance.now() - t0 < timeoutMs && (status === null || chart === null)) {
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now() - t0;
    if (status === null && statusText() !== s0) status = now;
    if (chart === null) { const d = firstPath(); if (d !== null && d !== d0) chart = now; }
  }
  return {status, chart};
}
"""

# Pause while training: click -> the sidebar shows ▶ Start again (the rerun that stops the live fragment has
# reached the page)
PAUSE_JS = """
async ({timeoutMs}) => {
  const button = document.querySelector('[data-testid="stSidebar"] .st-key-btn_pause button');
  if (!button) return {error: 'Pause button missing'};
  const t0 = performance.now();
  button.click();
  while (performance.now() - t0 < timeoutMs) {
    await new Promise(r => requestAnimationFrame(r));
    const start = document.querySelector('[data-testid="stSidebar"] .st-key-btn_start button');
    if (start) return {ms: performance.now() - t0};
  }
  return {ms: null};
}
"""


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# the JavaScript resources the page has fetched so far: [name, startTime, responseEnd, transferSize] (ms, bytes)
RESOURCES_JS = """() => performance.getEntriesByType('resource').filter(r => /\\.js(\\?|$)/.test(r.name))
    .map(r => [r.name.split('/').pop(), r.startTime, r.responseEnd, r.transferSize || r.encodedBodySize])"""

# the work behind a first visitor's script runs, in a fresh process; prints {step: [first s, second s]}
SERVER_SIDE = r"""
import json, sys, time
sys.path.insert(0, ".")
out = {}
def timed(name, f):
    t0 = time.perf_counter(); f(); t1 = time.perf_counter(); f(); t2 = time.perf_counter()
    out[name] = [t1 - t0, t2 - t1]
timed("import streamlit (before the first visitor)", lambda: __import__("streamlit"))
timed("import torch", lambda: __import__("torch"))
import torch
torch.set_num_threads(1)
timed("import pandas, plotly.graph_objects", lambda: (__import__("pandas"), __import__("plotly.graph_objects")))
timed("import the app's modules (pages._ui -> rnnviz)", lambda: __import__("pages._ui"))
from rnnviz import analysis, figures
from rnnviz.controls import Controls
from rnnviz.experiment import Experiment
box = {}
timed("first optimiser (its __init__ imports torch._dynamo)",
      lambda: torch.optim.Adam([torch.zeros(1, requires_grad=True)]))
timed("build the default runs (3 models + step-0 trace)", lambda: box.update(rs=Experiment(Controls()).runs))
rs = box["rs"]
def frames():
    box["gf"] = analysis.grad_flow_frames(rs)
    box["pred"] = analysis.predicted_frames(rs, None)
    box["hist"] = analysis.history_frames(rs)
timed("Gradient flow frames (analysis)", frames)
def figs():
    box["figs"] = [figures.grad_norm_vs_time(box["gf"], predicted=box["pred"]),
                   *(figures.grad_flow_heatmap(box["gf"], run=r) for r in rs), figures.global_grad_norm(box["hist"])]
timed("Gradient flow figures", figs)
timed("their JSON (what st.plotly_chart sends)", lambda: [f.to_json() for f in box["figs"]])
print(json.dumps(out))
"""
IMPORTS = "import streamlit; import torch; from pages import _ui"


def server_side() -> dict:
    r = subprocess.run([sys.executable, "-c", SERVER_SIDE], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def import_times() -> dict:
    """`python -X importtime` of the app's imports: cumulative seconds per top-level module imported."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTS], cwd=REPO, capture_output=True, text=True,
                       check=True)
    out = {}
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
        if m and len(m[2]) <= 3:  # imported by the -c statement itself (depth 1), or by those (depth 2)
            out[("  " if len(m[2]) == 3 else "") + m[3]] = int(m[1]) / 1e6
    return out


def load_home(app: App) -> dict:
    """Open "/" in a new session; seconds to idle with the title visible, and the phases in the page."""
    t0 = time.perf_counter()
    app.goto("/")
    app.page.locator("h1", has_text="rnnviz").first.wait_for(state="visible")
    total = time.perf_counter() - t0
    return {"total": total, **app.load_phases()}


def open_gradient_flow(app: App) -> float:
    """Seconds from clicking Gradient flow in the sidebar to its charts drawn and the run over."""
    t0 = time.perf_counter()
    app.nav("Gradient flow")
    app.page.wait_for_selector(".st-key-gf_curve .scatterlayer .trace path.js-line")
    app.wait_idle()
    return time.perf_counter() - t0


def breakdown(m: dict) -> list:
    """Rows for the phases of a page load (seconds since navigation start, in the page's clock)."""
    rows = []
    if m["dom"] is not None:
        rows.append(("  . HTML + JS loaded (DOMContentLoaded)", m["dom"], "s", ""))
    if m["run"] is not None:
        rows.append(("  . script run starts (websocket up)", m["run"], "s", ""))
        if m["idle"] is not None and m["idle"] > m["run"]:
            rows.append(("  . script run ends (server: app + page)", m["idle"], "s", ""))
    rows.append(("  . widgets drawn (no skeletons left)", m["now"], "s", ""))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10, help="Step clicks to time")
    ap.add_argument("--no-breakdown", action="store_true", help="skip where the cold start's seconds go")
    args = ap.parse_args()
    if not chromium_available():
        sys.exit("bench_ui: /usr/bin/chromium not found (apt-get install -y chromium)")

    rows = []  # (what, value, unit, goal)
    with launch_browser() as browser, StreamlitServer() as server:
        rows.append(("server start -> health ok", server.ready_seconds, "s", ""))

        app = App(new_page(browser), server.url)
        first = load_home(app)
        rows.append(('first load of "/" -> idle, title', first["total"], "s", f"< {GOAL_FIRST_LOAD_S:g} s"))
        rows += breakdown(first)
        home_js = app.page.evaluate(RESOURCES_JS)

        warm = App(new_page(browser), server.url)
        again = load_home(warm)
        rows.append(('warm load of "/" (new session)', again["total"], "s", ""))
        rows += breakdown(again)

        t_click = app.page.evaluate("performance.now()")
        rows.append(("Home -> Gradient flow, charts (1st time)", open_gradient_flow(app), "s", ""))
        plotly_js = [r for r in app.page.evaluate(RESOURCES_JS) if r[0].startswith("PlotlyChart")]
        drawn = app.page.evaluate("performance.now()")
        rows.append(("Home -> Gradient flow, charts (2nd session)", open_gradient_flow(warm), "s", ""))
        warm.page.context.close()
        app.assert_no_exception("gradient_flow")

        app.step()  # warm-up: the first step builds optimiser state
        status_ms, chart_ms, missed = [], [], 0
        for _ in range(args.repeats):
            r = app.page.evaluate(STEP_JS, {"timeoutMs": 10_000})
            if r.get("error"):
                sys.exit(f"bench_ui: {r['error']}")
            if r["status"] is None or r["chart"] is None:
                missed += 1
            if r["status"] is not None:
                status_ms.append(r["status"])
            if r["chart"] is not None:
                chart_ms.append(r["chart"])
            app.wait_idle()
            app.page.wait_for_timeout(150)
        app.assert_no_exception("gradient_flow after the Step clicks")
        pause_ms = []
        for _ in range(args.repeats):  # Start, let it train a random part of a tick, Pause
            app.start()
            app.page.wait_for_timeout(1500 + 137 * len(pause_ms))
            r = app.page.evaluate(PAUSE_JS, {"timeoutMs": 10_000})
            if r.get("error"):
                sys.exit(f"bench_ui: {r['error']}")
            if r["ms"] is not None:
                pause_ms.append(r["ms"])
            app.wait_idle()
        steps = app.steps()

    print(f"rnnviz UI benchmark — streamlit run app.py + Chromium, {args.repeats} Step clicks on Gradient flow "
          f"(defaults: adding, T=50, RNN/LSTM/GRU, H=32)")
    print(f"{'measure':42s} {'value':>10s}   goal")
    for what, v, unit, goal in rows:
        print(f"{what:42s} {v:9.2f} {unit:2s} {goal}")
    for what, xs in (("Step -> status shows the new step", status_ms), ("Step -> gradient chart redrawn", chart_ms)):
        goal = f"< {GOAL_STEP_MS:g} ms" if "chart" in what else ""
        print(f"{what + ' (median)':42s} {statistics.median(xs) if xs else float('nan'):9.0f} ms {goal}")
        print(f"{what + ' (p90)':42s} {pct(xs, 0.9):9.0f} ms")
    med = statistics.median(pause_ms) if pause_ms else float("nan")
    print(f"{'Pause while training -> Start back (median)':42s} {med:9.0f} ms < {GOAL_STEP_MS:g} ms")
    print(f"{'Pause while training -> Start back (p90)':42s} {pct(pause_ms, 0.9):9.0f} ms")
    if missed:
        print(f"warning: {missed} of {args.repeats} clicks did not change the status and the chart within 10 s")
    print(f"(step counts at the end: {steps})")
    if args.no_breakdown:
        return
    print("\nwhere a cold start's seconds go (this run; file caches of the machine were warm)")
    print(f"  browser, first Home: {len(home_js)} JavaScript files, {sum(r[3] for r in home_js) / 1e6:.1f} MB, "
          f"the last one arrived {max(r[2] for r in home_js) / 1e3:.2f} s after navigation start")
    for name, start, end, size in plotly_js:
        print(f"  browser, first Gradient flow: {name} {size / 1e6:.1f} MB requested "
              f"{(start - t_click) / 1e3:.2f} s after the click, arrived after {(end - start) / 1e3:.2f} s; "
              f"charts drawn and run over {(drawn - end) / 1e3:.2f} s later")
    print("  server side, timed in a fresh process (first = cold process, second = warm):")
    for what, (a, b) in server_side().items():
        print(f"    {what:55s} {a:6.2f} s   {b:6.2f} s")
    print(f"  python -X importtime -c '{IMPORTS}' (cumulative, depth <= 2, >= 50 ms):")
    for what, v in import_times().items():
        if v >= 0.05:
            print(f"    {what:55s} {v:6.2f} s")


if __name__ == "__main__":
    main()
