"""Does every preset prove its point within a minute of live training? And how close is the live loop to the engine?

    python bench/bench_presets_live.py [--only SLUG] [--rounds 3] [--window 8] [--limit 90]

For each preset, in one process, side by side:
  to N     headless: `Experiment(preset.controls())` on 1 torch thread, as the dashboard, timed to the preset's N.
           Live: a fresh session of `streamlit run app.py` in Debian's Chromium, Home -> "Load this demo" ->
           ▶ Start, the status line polled until every run reached N (or diverged): the seconds from Start to N
           (the click, the first tick and the last redraw included) and the claims expander's verdict at N.
  rates    then --rounds rounds, alternating, so a change in the machine's load falls on both sides:
           engine     the headless Experiment trains on for 4 s (lockstep rounds, snapshots included);
           dashboard  ▶ Start, 1.5 s to settle, then the steps between two redraws --window seconds apart over
                      the seconds between them (the status line), then ❚❚ Pause.
           ratio = dashboard / engine, per round; the preset's figure is the median over its rounds.
  split    the server logs every training tick (RNNVIZ_TICK_LOG: start, steps, seconds training, seconds in all),
           so each round's ratio is split into the share of the dashboard's time spent training (the rest:
           drawing, sending, waiting for the next tick) and how fast it trains meanwhile, relative to the engine.

Prints one row per round and a table per preset: the minute goal (issue 9) and the ratio (goal >= 0.8, issue 10).
Bounded: each preset gives up on N after --limit seconds. Localhost only.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from rnnviz.experiment import Experiment  # noqa: E402
from rnnviz.presets import PRESETS, preset_slug  # noqa: E402
from tests.browser import App, StreamlitServer, chromium_available, launch_browser, new_page  # noqa: E402

GOAL_S = 60.0
GOAL_RATIO = 0.8
ENGINE_SECONDS = 4.0
SETTLE_MS = 1500


def engine_to_n(preset) -> tuple[Experiment, float]:
    """The preset's runs headless, trained to N: the Experiment and the seconds it took."""
    torch.set_num_threads(1)
    exp = Experiment(preset.controls())
    t0 = time.perf_counter()
    exp.step(preset.steps)
    return exp, time.perf_counter() - t0


def engine_rate(exp: Experiment, seconds: float = ENGINE_SECONDS) -> float:
    """Lockstep rounds per second of `exp` training on, as the dashboard's ticks call it (time-budgeted chunks)."""
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds and not exp.finished:
        n += exp.step(1_000_000, time_budget=0.25)
    return n / (time.perf_counter() - t0)


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


def live_to_n(app: App, preset, limit: float) -> dict:
    """Home -> the preset -> ▶ Start, until every run is at N (the preset pauses there): seconds, claims."""
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
    app.wait_idle()
    head = app.page.get_by_text(re.compile(r"^The preset's claims")).first.inner_text()
    return {"seconds": reached, "claims": head}


def dashboard_rate(app: App, window: float) -> tuple[float, float, float] | None:
    """▶ Start, settle, steps per second between two redraws `window` s apart, ❚❚ Pause: (rate, t_a, t_b).
    None when there is nothing left to train (every run diverged)."""
    if not app.sidebar_button("▶ Start").count() or all(div for _, div in _steps(app)):
        return None
    app.start()
    app.page.wait_for_timeout(SETTLE_MS)
    ta, sa = _next_redraw(app)
    app.page.wait_for_timeout(window * 1000)
    tb, sb = _next_redraw(app)
    app.pause()
    return (sb - sa) / (tb - ta), ta, tb


def server_split(log: Path, ta: float, tb: float) -> tuple[float, float]:
    """From the server's tick log, the ticks that started in [ta, tb]: (share of the time spent training,
    steps per second while training)."""
    ticks = []
    for line in log.read_text().splitlines():
        start, _sid, kind, steps, train_s, _tick_s = line.split("\t")
        if kind == "tick" and ta <= float(start) <= tb:
            ticks.append((float(start), int(steps), float(train_s)))
    if len(ticks) < 2:
        return float("nan"), float("nan")
    span = ticks[-1][0] - ticks[0][0]  # from the first tick's start to the last one's: every tick but the last
    share = sum(t[2] for t in ticks[:-1]) / span
    return share, sum(t[1] for t in ticks) / sum(t[2] for t in ticks)


def measure(browser, url: str, log: Path, preset, args) -> dict:
    exp, to_n = engine_to_n(preset)
    app = App(new_page(browser), url)
    try:
        res = live_to_n(app, preset, args.limit)
        res["to_n"], res["rounds"] = to_n, []
        for _ in range(args.rounds):
            eng = engine_rate(exp)
            dash = dashboard_rate(app, args.window)
            if dash is None:
                break
            rate, ta, tb = dash
            share, train_rate = server_split(log, ta, tb)
            res["rounds"].append({"engine": eng, "dashboard": rate, "share": share, "speed": train_rate / eng})
            r = res["rounds"][-1]
            print(f"  round {len(res['rounds'])}: engine {eng:.1f} steps/s, dashboard {rate:.1f} steps/s, ratio "
                  f"{rate / eng:.2f} = training {share:.0%} of the time x speed {r['speed']:.2f} of the engine's; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        return res
    finally:
        app.page.context.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="one preset (slug prefix)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating engine / dashboard rounds per preset")
    ap.add_argument("--window", type=float, default=8.0, help="seconds of dashboard training measured per round")
    ap.add_argument("--limit", type=float, default=90.0, help="seconds per preset before giving up on N")
    args = ap.parse_args()
    if not chromium_available():
        print("needs /usr/bin/chromium (apt-get install -y chromium)")
        return 2
    presets = [p for p in PRESETS if not args.only or preset_slug(p.name).startswith(args.only)]
    log = Path(tempfile.mkdtemp(prefix="rnnviz-ticks-")) / "ticks.tsv"
    os.environ["RNNVIZ_TICK_LOG"] = str(log)  # the server below inherits it
    log.touch()
    rows = []
    with StreamlitServer() as server, launch_browser() as browser:
        for p in presets:
            print(p.name, flush=True)
            res = measure(browser, server.url, log, p, args)
            rows.append((p, res))
            got = f"{res['seconds']:.1f} s" if res["seconds"] is not None else f"> {args.limit:.0f} s"
            print(f"  N = {p.steps}: headless {res['to_n']:.1f} s, live {got}; {res['claims']}", flush=True)
    print("\n| preset | N | N headless | Start -> N live | claims at N | engine steps/s | dashboard steps/s | "
          "ratio per round | median ratio | time training | training speed / engine |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for p, res in rows:
        got = f"{res['seconds']:.1f} s" if res["seconds"] is not None else f"> {args.limit:.0f} s"
        rs = res["rounds"]
        if not rs:
            print(f"| {p.name} | {p.steps} | {res['to_n']:.1f} s | {got} | {res['claims']} | – | – | – | – | – | – |")
            continue
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        ratios = [r["dashboard"] / r["engine"] for r in rs]
        print(f"| {p.name} | {p.steps} | {res['to_n']:.1f} s | {got} | {res['claims']} | {med['engine']:.1f} | "
              f"{med['dashboard']:.1f} | {' '.join(f'{x:.2f}' for x in ratios)} | "
              f"**{statistics.median(ratios):.2f}** | {med['share']:.0%} | {med['speed']:.2f} |")
    print(f"\ngoals: Start -> N <= {GOAL_S:.0f} s; dashboard / engine >= {GOAL_RATIO} (median of {args.rounds} "
          f"alternating rounds); load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
