"""Does every preset prove its point within a minute of live training? And how close is the live loop to the engine?

    python bench/bench_presets_live.py [--only SLUG] [--limit 90] [--window 8]

For each preset, in one process, side by side:
  engine   `Experiment(preset.controls())` headless, 1 torch thread as the dashboard: the seconds its N steps take,
           then lockstep rounds per second over the next few seconds (snapshots included, as in the dashboard)
  browser  a fresh session of `streamlit run app.py` in Debian's Chromium: Home -> "Load this demo" -> ▶ Start,
           then the status line is polled until every run reached the preset's N (or diverged): the seconds
           from Start to N (the click, the first tick and the last redraw included), and the claims expander's
           verdict at N. Then ▶ Start again (the preset trains on) and the dashboard's steady training rate:
           steps between two redraws --window seconds apart, over the seconds between them

Prints one row per preset: the minute goal (issue 9), and the ratio dashboard / engine of the steady rates
(goal >= 0.8, issue 10), with the rate Start -> N for reference. Bounded: each preset gives up after --limit
seconds. Localhost only.
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from rnnviz.experiment import Experiment  # noqa: E402
from rnnviz.presets import PRESETS, preset_slug  # noqa: E402
from tests.browser import App, StreamlitServer, chromium_available, launch_browser, new_page  # noqa: E402

GOAL_S = 60.0
GOAL_RATIO = 0.8


def engine(preset, seconds: float = 4.0) -> tuple[float, float]:
    """Seconds for the preset's N steps headless, then lockstep rounds per second over the next `seconds`."""
    torch.set_num_threads(1)
    exp = Experiment(preset.controls())
    t0 = time.perf_counter()
    exp.step(preset.steps)
    to_n = time.perf_counter() - t0
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds and not exp.finished:
        n += exp.step(1_000_000, time_budget=0.25)
    return to_n, n / (time.perf_counter() - t0)


def _steps(app: App) -> list[tuple[int, bool]]:
    return [(int(m.group(1)), "diverged" in m.group(0)) for m in re.finditer(r": step (\d+) · .*", app.status_text())]


def _next_redraw(app: App, timeout: float = 10.0) -> tuple[float, int]:
    """Wait for the status line to change (a redraw); its time and the furthest run's step."""
    before, end = app.status_text(), time.perf_counter() + timeout
    while time.perf_counter() < end:
        now = app.status_text()
        if now != before:
            return time.perf_counter(), max(n for n, _ in _steps(app))
        app.page.wait_for_timeout(20)
    raise TimeoutError("no redraw")


def live(browser, url: str, preset, limit: float, window: float) -> dict:
    app = App(new_page(browser), url)
    try:
        app.goto("/")
        app.load_preset(preset.name)
        app.start()
        t0 = time.perf_counter()
        reached = None
        while time.perf_counter() - t0 < limit:
            runs = _steps(app)
            if runs and all(div or n >= preset.steps for n, div in runs):
                reached = time.perf_counter() - t0
                break
            app.page.wait_for_timeout(100)
        steps_now = max(n for n, _ in _steps(app))
        elapsed = time.perf_counter() - t0
        app.wait_idle()
        head = app.page.get_by_text(re.compile(r"^The preset's claims")).first.inner_text()
        steady = float("nan")
        if app.sidebar_button("▶ Start").count() and not any(div for _, div in _steps(app)):
            app.start()  # the preset paused at N; it trains on
            app.page.wait_for_timeout(1500)
            ta, sa = _next_redraw(app)
            app.page.wait_for_timeout(window * 1000)
            tb, sb = _next_redraw(app)
            steady = (sb - sa) / (tb - ta)
        if app.sidebar_button("❚❚ Pause").count():
            app.pause()
        return {"seconds": reached, "rate": steps_now / elapsed, "steady": steady, "claims": head}
    finally:
        app.page.context.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="one preset (slug prefix)")
    ap.add_argument("--limit", type=float, default=90.0, help="seconds per preset before giving up")
    ap.add_argument("--window", type=float, default=8.0, help="seconds of steady training measured after N")
    args = ap.parse_args()
    if not chromium_available():
        print("needs /usr/bin/chromium (apt-get install -y chromium)")
        return 2
    presets = [p for p in PRESETS if not args.only or preset_slug(p.name).startswith(args.only)]
    rows = []
    with StreamlitServer() as server, launch_browser() as browser:
        for p in presets:
            to_n, eng = engine(p)
            res = live(browser, server.url, p, args.limit, args.window)
            rows.append((p, to_n, eng, res))
            got = f"{res['seconds']:.1f} s" if res["seconds"] is not None else f"> {args.limit:.0f} s"
            print(f"{p.name}: N = {p.steps} headless in {to_n:.1f} s, live in {got}; steady: engine {eng:.1f} "
                  f"steps/s, dashboard {res['steady']:.1f} steps/s, ratio {res['steady'] / eng:.2f}; "
                  f"{res['claims']}", flush=True)
    print("\n| preset | N | N headless | Start -> N live | engine steps/s | dashboard steps/s | ratio | "
          "Start -> N rate / engine | claims at N |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for p, to_n, eng, res in rows:
        got = f"{res['seconds']:.1f} s" if res["seconds"] is not None else f"> {args.limit:.0f} s"
        print(f"| {p.name} | {p.steps} | {to_n:.1f} s | {got} | {eng:.1f} | {res['steady']:.1f} | "
              f"{res['steady'] / eng:.2f} | {res['rate'] * to_n / p.steps:.2f} | {res['claims']} |")
    print(f"\ngoals: Start -> N <= {GOAL_S:.0f} s; dashboard / engine (steady) >= {GOAL_RATIO}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
