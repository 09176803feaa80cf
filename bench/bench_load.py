"""Load test of the server alone: N students without N browsers (not a test).

    python bench/bench_load.py                       # 1, 4, 8 sessions on one process, then 1 vs 2 replicas
    python bench/bench_load.py --sessions 8 --seconds 30 --no-replicas
    python bench/bench_load.py --only-replicas --replica-sessions 4 --rounds 2

Each simulated session is a `tests/stream_client.StreamTab`: a small client of Streamlit's own websocket
protocol (the BackMsg / ForwardMsg protobufs the browser exchanges with /_stcore/stream), so the server does all
the work it does for a browser (script runs, figures, serialising and sending every delta) while nothing is
drawn. Each does what a student does: open Home, load a preset ("Load this demo": it opens the preset's page),
press ▶ Start and watch (the client answers the live fragment's run_every ticks like a browser's timer), then
❚❚ Pause and Step. Everything is on 127.0.0.1, bounded in count and time, and every process started is stopped.

Single process (`streamlit run app.py`), for each N in --sessions:
  sessions held          tabs still connected at the end / opened (a preset pauses at its N steps: the
                         student presses ▶ Start again, counted as "× Start at N"); beyond the admission's
                         capacity (8 per process) the others wait in the visible queue: "k trained, m in the
                         queue", and the per-session figures below are over the sessions that trained
  steps/s per session    the status line's step count over the measuring window (min / median / max)
  redraws/s per session  live-area reruns that reached the tab (status line + charts) per second (min/med/max)
  fairness               max / min of the sessions' steps in the window
  health p50 / p99 / max GET /_stcore/health every 0.25 s during the window
  new visitor → Home     a fresh tab during the window: page GET + websocket + Home's script run finished
  Step → new figure      half the tabs pause and press Step 3 times while the other half keep training:
                         click sent → first new plotly figure arrives (p50 / max), and → run finished
  server CPU, RSS        cores used in the window (CPU seconds / seconds) and resident memory at its end
  CPU per redraw         server CPU seconds per live redraw (all training and drawing, over all sessions' redraws)
Replicas (deploy/serve.py: HAProxy + `streamlit run` processes): a 1-replica and a 2-replica deployment up side by
side, --replica-sessions tabs on each through its proxy; the two sets train in turns (--rounds: 1, 2, 2, 1, 1, 2),
the other set paused: aggregate model steps/s of all sessions (summed over each session's runs), the ratio 2 / 1
(goal ≥ 1.6) and steps per server CPU-second (what the ratio would be with the cores free).

The machine's load average is printed with every measurement: on a shared machine the numbers move with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from deploy.serve import Deployment  # noqa: E402
from tests.browser import StreamlitServer, health  # noqa: E402
from tests.stream_client import StreamTab  # noqa: E402

TIMEOUT = 180.0  # any single wait (a page run on an overloaded machine)
PRESET_KEYS = [f"preset_{i}" for i in range(6)]  # Home's "Load this demo" buttons, in PRESETS order


# -- the server's processes ------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class HealthProbe:
    """GET /_stcore/health every `every` seconds in a thread; latencies in seconds (a failure counts its time)."""

    def __init__(self, url: str, every: float = 0.25):
        self.url, self.every = url, every
        self.times: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            ok, dt = health(self.url, timeout=5.0)
            self.times.append(dt)
            self.failures += not ok
            self._stop.wait(max(self.every - dt, 0.0))

    def __enter__(self) -> HealthProbe:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join(timeout=10)


class KeepTraining:
    """A preset pauses at its N steps (its claims are checked there); a student then presses ▶ Start to go on.
    This thread does that for every tab found paused, and counts it."""

    def __init__(self, tabs: list[StreamTab]):
        self.tabs, self.restarts = tabs, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for tab in self.tabs:
                if not tab.closed and "· paused" in tab.status_text and not tab.running:
                    tab.click("btn_start")
                    self.restarts += 1
                    tab.wait_for(lambda s: "· paused" not in s.status_text, what="training again")

    def __enter__(self) -> KeepTraining:
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=TIMEOUT)

    def __exit__(self, *exc) -> None:
        self.stop()


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(int(round(q * (len(xs) - 1))), len(xs) - 1)]


# -- students --------------------------------------------------------------------------------------------------
def open_student(url: str, preset_key: str) -> StreamTab:
    """Open Home, wait until it is idle, load a preset (its page opens), wait until that page is idle."""
    tab = StreamTab(url, "/", timeout=TIMEOUT).open()
    tab.wait_idle()
    tab.wait_done(tab.click(preset_key))
    if tab.exceptions:
        raise RuntimeError(f"the app raised: {tab.exceptions}")
    return tab


def start(tab: StreamTab) -> None:
    tab.wait_done(tab.click("btn_start"))
    tab.wait_for(lambda s: (("· running" in s.status_text or "waiting for a training slot" in s.status_text)
                            and s._auto) or ("· paused" in s.status_text and any(s.steps())),
                 what="training (or queued) and ticking, or already paused at the preset's N")


def pause(tab: StreamTab) -> None:
    if tab.training() or "waiting for a training slot" in tab.status_text:  # training, or queued for a slot
        tab.click("btn_pause")
        tab.wait_for(lambda s: ("· paused" in s.status_text or "· ready" in s.status_text) and not s.running
                     and not s._auto, what="paused")


def step_latencies(tab: StreamTab, n: int) -> list[tuple[float, float]]:
    """(click → first new figure, click → run finished) for n Steps of a paused tab."""
    out = []
    for _ in range(n):
        before = tab.steps()
        sent = tab.click("btn_step")
        run = tab.wait_done(sent, fragment=True)  # Step reruns only the live area
        if tab.steps() == before:
            raise AssertionError(f"Step did not change the steps: {before}")
        out.append((run.first_chart_at - sent, run.finished_at - sent))
    return out


def new_visitor(url: str) -> float:
    t0 = time.perf_counter()
    with StreamTab(url, "/", timeout=TIMEOUT) as tab:
        tab.wait_idle()
        if not any("inside recurrent networks" in t for t in tab.texts):
            raise AssertionError("Home's title never arrived")
    return time.perf_counter() - t0


def session_steps(tab: StreamTab) -> tuple[int, int]:
    """(lockstep step count, model steps = the sum over the session's runs) from its status line."""
    s = tab.steps()
    return (max(s) if s else 0, sum(s))


# -- one measurement -------------------------------------------------------------------------------------------
def measure(url: str, tabs: list[StreamTab], pids: list[int], window: float, visitors: int, probe_url: str,
            keeper: KeepTraining, steppers: int = 0, step_clicks: int = 3) -> dict:
    """Everyone trains for `window` seconds (health probed, `visitors` new visitors spread over it); then
    `steppers` of the tabs pause and press Step `step_clicks` times while the others keep training."""
    la0 = load_avg()
    c0 = {p: cpu_seconds(p) for p in pids}
    own0 = sum(os.times()[:2])
    s0 = [session_steps(t) for t in tabs]
    t0 = time.perf_counter()
    visitor_times: list[float] = []
    with HealthProbe(probe_url) as probe:
        for k in range(visitors):
            at = t0 + window * (k + 1) / (visitors + 1)
            time.sleep(max(at - time.perf_counter(), 0))
            visitor_times.append(new_visitor(url))
        time.sleep(max(t0 + window - time.perf_counter(), 0))
        t1 = time.perf_counter()
        s1 = [session_steps(t) for t in tabs]
        c1 = {p: cpu_seconds(p) for p in pids}
        rss = sum(rss_mb(p) for p in pids)
        own1 = sum(os.times()[:2])
    dt = t1 - t0
    keeper.stop()  # from here on pausing is on purpose
    redraws = [sum(1 for r in t.finished_runs(since=t0) if r.fragment and r.steps and r.finished_at <= t1)
               for t in tabs]
    steps = [b[0] - a[0] for a, b in zip(s0, s1, strict=True)]
    model_steps = sum(b[1] - a[1] for a, b in zip(s0, s1, strict=True))
    lat: list[tuple[float, float]] = []
    chosen = (tabs[1::2][:steppers] if len(tabs) > 1 else tabs) if steppers else []
    if chosen:
        with ThreadPoolExecutor(len(chosen)) as ex:
            list(ex.map(pause, chosen))
            for res in ex.map(lambda t: step_latencies(t, step_clicks), chosen):
                lat += res
    # beyond the admission's capacity (pages/_admission.py) a session waits in the queue: no steps, no redraws;
    # the per-session figures and the fairness are over the sessions that trained in the window
    trained = [i for i, n in enumerate(steps) if n > 0]
    waiting = sum("waiting for a training slot" in tabs[i].status_text for i in range(len(tabs)) if i not in trained)
    steps_t, redraws_t = [steps[i] for i in trained], [redraws[i] for i in trained]
    return {"sessions": len(tabs), "held": sum(not t.closed for t in tabs), "window": dt,
            "trained": len(trained), "waiting": waiting,
            "steps_per_s": [s / dt for s in steps_t], "redraws_per_s": [r / dt for r in redraws_t],
            "fairness": (max(steps_t) / min(steps_t)) if steps_t else float("inf"),
            "model_steps_per_s": model_steps / dt, "health": probe.times, "health_failures": probe.failures,
            "visitor": visitor_times, "step_fig": [a for a, _ in lat], "step_done": [b for _, b in lat],
            "cores": sum(c1[p] - c0[p] for p in pids) / dt, "rss_mb": rss, "client_cores": (own1 - own0) / dt,
            "load": f"{la0} → {load_avg()}", "restarts": keeper.restarts, "still_training": len(tabs) - len(chosen)}


def students(url: str, n: int, presets: str, press_start: bool = True) -> list[StreamTab]:
    keys = [PRESET_KEYS[i % len(PRESET_KEYS)] if presets == "mixed" else PRESET_KEYS[0] for i in range(n)]
    tabs: list[StreamTab] = []
    try:
        for k in keys:  # one after the other, as students arrive
            tabs.append(open_student(url, k))
        if press_start:
            everyone(start, tabs)  # then they all press Start
    except BaseException:
        for t in tabs:
            t.close()
        raise
    return tabs


def everyone(action, tabs: list[StreamTab]) -> None:
    """`action(tab)` for every tab at once (students clicking at the same time)."""
    with ThreadPoolExecutor(max(len(tabs), 1)) as ex:
        list(ex.map(action, tabs))


def close_all(tabs: list[StreamTab]) -> None:
    everyone(lambda t: t.close(), tabs)


def single_process(n: int, window: float, warmup: float, presets: str, visitors: int) -> dict:
    with StreamlitServer(timeout=TIMEOUT) as srv:
        tabs = students(srv.url, n, presets)
        try:
            with KeepTraining(tabs) as keeper:
                time.sleep(warmup)
                return measure(srv.url, tabs, [srv.proc.pid], window, visitors, srv.url, keeper,
                               steppers=max(n // 2, 1))
        finally:
            close_all(tabs)


def replica_ratio(n: int, window: float, warmup: float, presets: str, rounds: int) -> dict[int, list[dict]]:
    """1 replica and 2 replicas (each behind its own HAProxy) up side by side, n students on each; the two sets
    train in turns (1, 2, then 2, 1, ...: windows close in time see the same machine load); the set not
    measured is paused, so it costs nothing."""
    with Deployment(replicas=1, bind="127.0.0.1", timeout=TIMEOUT) as d1, \
            Deployment(replicas=2, bind="127.0.0.1", timeout=TIMEOUT) as d2:
        deps = {1: d1, 2: d2}
        tabs = {k: students(d.url, n, presets, press_start=False) for k, d in deps.items()}
        out: dict[int, list[dict]] = {1: [], 2: []}
        try:
            for r in range(rounds):
                for k in (1, 2) if r % 2 == 0 else (2, 1):
                    everyone(start, tabs[k])
                    with KeepTraining(tabs[k]) as keeper:
                        time.sleep(warmup)
                        res = measure(deps[k].url, tabs[k], [x.proc.pid for x in deps[k].replicas], window, 1,
                                      deps[k].url, keeper)
                    res["spread"] = sorted(t.cookies.get("rnnviz_replica", "?") for t in tabs[k])
                    out[k].append(res)
                    everyone(pause, tabs[k])
                    print(f"  {k} replica(s) {res['spread']}: {res['model_steps_per_s']:.0f} model steps/s "
                          f"(per session {mmm(res['steps_per_s'], '{:.1f}')}; {res['trained']} trained, "
                          f"{res['waiting']} in the queue), redraws/s per session {mmm(res['redraws_per_s'])}, "
                          f"fairness {res['fairness']:.2f}, health p99 {pct(res['health'], .99) * 1e3:.0f} ms, "
                          f"new visitor {mmm(res['visitor'], '{:.1f}')} s, server cores {res['cores']:.2f}, "
                          f"RSS {res['rss_mb']:.0f} MB, load {res['load']}, {res['restarts']}× Start at N", flush=True)
        finally:
            close_all(tabs[1] + tabs[2])
        return out


# -- printing --------------------------------------------------------------------------------------------------
def mmm(xs: list[float], fmt: str = "{:.2f}") -> str:
    if not xs:
        return "–"
    return " / ".join(fmt.format(v) for v in (min(xs), statistics.median(xs), max(xs)))


def print_single(rows: list[dict]) -> None:
    print("\n| sessions (held) | steps/s per session min/med/max | redraws/s per session min/med/max | fairness "
          "max/min steps | health p50 / p99 / max | new visitor → idle Home | Step → new figure p50 / max "
          "(→ run done p50) | server cores · RSS | CPU per redraw | load avg (this client's cores) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        h = r["health"]
        failed = f" ({r['health_failures']} failed)" if r["health_failures"] else ""
        health_s = f"{pct(h, .5) * 1e3:.0f} / {pct(h, .99) * 1e3:.0f} / {max(h) * 1e3:.0f} ms{failed}"
        fig = r["step_fig"] or [float("nan")]
        redraws = sum(r["redraws_per_s"])
        per_redraw = f"{r['cores'] / redraws * 1e3:.0f} ms" if redraws else "–"
        step_s = (f"{pct(fig, .5) * 1e3:.0f} / {max(fig) * 1e3:.0f} ms ({pct(r['step_done'], .5) * 1e3:.0f} ms; "
                  f"{r['still_training']} still training)")
        again = f"; {r['restarts']}× Start at N" if r["restarts"] else ""
        queue = f"; {r['trained']} trained, {r['waiting']} in the queue" if r["trained"] < r["sessions"] else ""
        print(f"| {r['sessions']} ({r['held']}{again}{queue}) | {mmm(r['steps_per_s'], '{:.1f}')} | "
              f"{mmm(r['redraws_per_s'])} | {r['fairness']:.2f} | {health_s} | {mmm(r['visitor'], '{:.1f}')} s | "
              f"{step_s} | "
              f"{r['cores']:.2f} · {r['rss_mb']:.0f} MB | {per_redraw} | {r['load']} ({r['client_cores']:.2f}) |",
              flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="1,4,8", help="comma-separated session counts for one process")
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring window per configuration")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of training before the window")
    ap.add_argument("--presets", choices=["same", "mixed"], default="same",
                    help="same: every student loads the first preset (a class following the lecturer); "
                         "mixed: the presets in turn")
    ap.add_argument("--visitors", type=int, default=2, help="new visitors during each window")
    ap.add_argument("--replica-sessions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="replica windows: 1 → (1, 2); 2 → (1, 2, 2, 1); ...")
    ap.add_argument("--no-replicas", action="store_true")
    ap.add_argument("--only-replicas", action="store_true")
    ap.add_argument("--max-minutes", type=float, default=20.0, help="stop starting new configurations after this")
    args = ap.parse_args()
    deadline = time.perf_counter() + args.max_minutes * 60
    counts = [int(x) for x in args.sessions.split(",") if x.strip()]
    if max(counts + [args.replica_sessions]) > 16:
        ap.error("at most 16 sessions: this is a bounded load test")
    print(f"{os.cpu_count()} cores; load average {load_avg()}; presets: {args.presets}; window {args.seconds:.0f} s "
          "(measured on whatever else this machine runs)", flush=True)

    rows = []
    if not args.only_replicas:
        for n in counts:
            if time.perf_counter() > deadline:
                print(f"(time limit: {n} sessions skipped)")
                continue
            r = single_process(n, args.seconds, args.warmup, args.presets, args.visitors)
            rows.append(r)
            print_single([r])
        print("\nOne process:")
        print_single(rows)

    if not args.no_replicas and time.perf_counter() < deadline:
        print(f"\n1 vs 2 replicas, {args.replica_sessions} sessions each, {args.rounds} rounds:", flush=True)
        out = replica_ratio(args.replica_sessions, args.seconds, args.warmup, args.presets, args.rounds)
        rate = {k: sum(r["model_steps_per_s"] * r["window"] for r in rs) / sum(r["window"] for r in rs)
                for k, rs in out.items()}
        cores = {k: statistics.mean(r["cores"] for r in rs) for k, rs in out.items()}
        per_cpu = {k: rate[k] / cores[k] if cores[k] > 0 else float("nan") for k in rate}
        print(f"\naggregate training: 1 replica {rate[1]:.0f} model steps/s on {cores[1]:.2f} cores, 2 replicas "
              f"{rate[2]:.0f} on {cores[2]:.2f} cores: ratio 2 / 1 = {rate[2] / rate[1]:.2f} (goal ≥ 1.6); "
              f"per server CPU-second {per_cpu[1]:.0f} vs {per_cpu[2]:.0f}; {os.cpu_count()} cores, load average "
              f"now {load_avg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
