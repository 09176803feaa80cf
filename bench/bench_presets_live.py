"""Does every preset prove its point within a minute of live training? And how close is the live loop to the engine?

    python bench/bench_presets_live.py [--only SLUG] [--limit 90]

For each preset, in one process, side by side:
  engine   `Experiment(preset.controls()).step(...)` headless for a few seconds: lockstep rounds per second
           (1 torch thread, as the dashboard), and the seconds N steps take headless
  browser  a fresh session of `streamlit run app.py` in Debian's Chromium: Home -> "Load this demo" -> ▶ Start,
           then the status line is polled until every run reached the preset's N (or diverged): the seconds
           from Start to N, the dashboard's rounds per second, and the claims expander's verdict at N

Prints one row per preset and the ratio dashboard / engine (goal >= 0.8, issue 10) next to the minute goal
(issue 9). Bounded: each preset gives up after --limit seconds. Localhost only.
"""

import argparse
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


def engine_rate(preset, seconds: float = 4.0) -> float:
    """Lockstep rounds per second of the preset's runs, headless (snapshots included, as in the dashboard)."""
    torch.set_num_threads(1)
    exp = Experiment(preset.controls())
    exp.step(3)  # warm-up: first calls allocate
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds and not exp.finished:
        n += exp.step(1_000_000, time_budget=0.25)
    return n / (time.perf_counter() - t0)


def live(browser, url: str, preset, limit: float) -> dict:
    app = App(new_page(browser), url)
    try:
        app.goto("/")
        app.load_preset(preset.name)
        app.start()
        t0 = time.perf_counter()
        reached = None
        while time.perf_counter() - t0 < limit:
            runs = [(int(m.group(1)), "diverged" in m.group(0))
                    for m in re.finditer(r": step (\d+) · .*", app.status_text())]
            if runs and all(div or n >= preset.steps for n, div in runs):
                reached = time.perf_counter() - t0
                break
            app.page.wait_for_timeout(200)
        steps_now = max(int(s) for s in re.findall(r": step (\d+) ·", app.status_text()))
        elapsed = time.perf_counter() - t0
        if app.sidebar_button("❚❚ Pause").count():
            app.pause()
        head = app.page.get_by_text(re.compile(r"^The preset's claims")).first.inner_text()
        return {"seconds": reached, "rate": steps_now / elapsed, "claims": head}
    finally:
        app.page.context.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="one preset (slug prefix)")
    ap.add_argument("--limit", type=float, default=90.0, help="seconds per preset before giving up")
    args = ap.parse_args()
    if not chromium_available():
        print("needs /usr/bin/chromium (apt-get install -y chromium)")
        return 2
    presets = [p for p in PRESETS if not args.only or preset_slug(p.name).startswith(args.only)]
    rows = []
    with StreamlitServer() as server, launch_browser() as browser:
        for p in presets:
            eng = engine_rate(p)
            res = live(browser, server.url, p, args.limit)
            rows.append((p, eng, res))
            got = f"{res['seconds']:.1f} s" if res["seconds"] is not None else f"> {args.limit:.0f} s"
            print(f"{p.name}: N = {p.steps}; engine {eng:.1f} steps/s ({p.steps / eng:.1f} s for N); "
                  f"dashboard {res['rate']:.1f} steps/s, N reached in {got}; ratio {res['rate'] / eng:.2f}; "
                  f"{res['claims']}", flush=True)
    print("\n| preset | N | engine steps/s | N headless | dashboard steps/s | Start -> N live | ratio | claims |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for p, eng, res in rows:
        got = f"{res['seconds']:.1f} s" if res["seconds"] is not None else f"> {args.limit:.0f} s"
        print(f"| {p.name} | {p.steps} | {eng:.1f} | {p.steps / eng:.1f} s | {res['rate']:.1f} | {got} | "
              f"{res['rate'] / eng:.2f} | {res['claims']} |")
    print(f"\ngoals: Start -> N <= {GOAL_S:.0f} s; dashboard / engine >= {GOAL_RATIO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
