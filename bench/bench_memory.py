"""Memory of rnnviz sessions (not a test). Four measurements, each printed as a table:

    python bench/bench_memory.py bound                 # what one session may hold: every preset, the budget's worst
    python bench/bench_memory.py live [--minutes 10]   # RSS of the live loop over a long session
    python bench/bench_memory.py uploads               # rnnviz.weights' upload cost model vs measured peak RSS
    python bench/bench_memory.py session [--train 60]  # `streamlit run app.py` in Chromium: RSS after the tab closes

bound: one fresh process per configuration (the presets, rnnviz.presets.PRESETS, and the heaviest controls
  the cost budget accepts). Its Experiment is built as the dashboard builds it, trained a few steps, then its
  bounded buffers are filled to their caps: snapshots are taken until the per-run snapshot budget thins them,
  the per-step history and layer history get copies of their real rows up to max_history (memory only: these
  rows are never shown). Accounted: parameters, gradients and optimiser state, history, snapshots, the task's
  data, and the JSON of the gradient-flow page's figures; measured: RSS held and peak RSS.
live: the dashboard's tick emulated in one process (time-budgeted lockstep training, then the figures, and the
  session janitor's malloc_trim every SWEEP_SECONDS).
uploads: the page's pipeline (load, trace, frames, figures) on uploads of several shapes, one process each,
  next to Spec.weight_bytes / Spec.probe_bytes.
session: a real server and browser. A warm-up session trains a tiny model on the same page and closes (so that
  imports, kernels and figure code are counted before), then the measured session (a preset, or --worst: the
  budget's worst case through the URL) trains for --train seconds and closes; the server's RSS is sampled every
  5 s for --watch seconds after each close. Streamlit keeps a closed tab's session for
  server.disconnectedSessionTTL seconds (.streamlit/config.toml); pages/_janitor.py then releases it (without
  it, Streamlit drops an expired session only when another session disconnects, and keeps the last one it sent
  messages to referenced: --nudge opens and closes a blank tab after the TTL, as another visitor would).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import torch  # noqa: E402

from rnnviz import analysis, figures  # noqa: E402
from rnnviz.controls import (  # noqa: E402
    BOUNDS,
    MAX_RUNS,
    SNAPSHOT_BUDGET_BYTES,  # noqa: E402
    Controls,
    check_budget,
    snapshot_bytes,
    step_macs,
)
from rnnviz.presets import PRESETS, PRESETS_BY_NAME  # noqa: E402
from rnnviz.tasks import MAX_TEXT_BYTES  # noqa: E402
from rnnviz.weights import MAX_UPLOAD_BYTES, MAX_WEIGHT_BYTES, max_params  # noqa: E402

MB = 2**20
HEAVIEST = "Character language model"  # the preset the issue measured in the browser


def rss_mb(pid: str | int = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the heaviest configuration the budget accepts ---------------------------------------------------------------
def worst_case() -> tuple[Controls, str]:
    """Controls that hold the most within the budget: MAX_RUNS runs of the largest model (bidirectional LSTM,
    hidden and layers at their BOUNDS) on the character task with the largest text, the longest sequence whose
    snapshot fits SNAPSHOT_BUDGET_BYTES, then the largest batch within STEP_BUDGET_MACS."""
    lrs = tuple(f"{0.001 * (i + 1):g}" for i in range(MAX_RUNS))
    c = Controls(task="char_lm", cells=("lstm",), hidden_size=BOUNDS["hidden_size"][1],
                 num_layers=BOUNDS["num_layers"][1], bidirectional=True, compare="lr", compare_values=lrs,
                 batch_size=1, seq_len=BOUNDS["seq_len"][0], snapshot_every=BOUNDS["snapshot_every"][0])
    seq = max(t for t in range(BOUNDS["seq_len"][0], BOUNDS["seq_len"][1] + 1)
              if check_budget(replace(c, seq_len=t)) is None)
    c = replace(c, seq_len=seq)
    batch = max(b for b in range(BOUNDS["batch_size"][0], BOUNDS["batch_size"][1] + 1)
                if check_budget(replace(c, batch_size=b)) is None)
    return replace(c, batch_size=batch), "worst case of the budget"


def _big_text() -> str:
    from rnnviz.tasks import MAX_TEXT_BYTES, bundled_text

    text = bundled_text()
    return (text * (MAX_TEXT_BYTES // len(text) + 1))[:MAX_TEXT_BYTES]


# -- bound: one configuration, in a child process ----------------------------------------------------------------
def _deep_row_bytes(rows: list) -> int:
    if not rows:
        return 0
    r = rows[-1]
    one = sys.getsizeof(r) + sum(sys.getsizeof(v) for v in r.values() if not isinstance(v, str))
    return len(rows) * (one + 8)  # + the list's pointer


def _bound_child(name: str) -> dict:
    from rnnviz.experiment import Experiment

    torch.set_num_threads(1)
    if name == "worst":
        c, label = worst_case()
        text = _big_text()
    else:
        c, label, text = PRESETS_BY_NAME[name].controls(), name, None
    # warm up kernels, figure code and allocator pools on a tiny run of the same task
    tiny = Experiment(replace(Controls(), task=c.task, cells=("lstm",), compare="cells", compare_values=(),
                              hidden_size=4, seq_len=min(8, c.seq_len), batch_size=2))
    tiny.step(3)
    tiny.snapshot()
    _page_figures(tiny.runs, c)
    del tiny
    gc.collect()
    r0, t0 = rss_mb(), time.perf_counter()
    exp = Experiment(c, text=text)
    exp.step(3)
    exp.snapshot()
    for t in exp.runs.values():  # fill the bounded buffers to their caps
        cap = t.cfg.snapshot_budget_mb * MB
        for _ in range(5000):  # until thinned once, then up to the fullest it gets before the next thinning
            total, last = sum(s.nbytes for s in t.snapshots), t.snapshots[-1].nbytes
            if t.snapshots_thinned_before is not None and (total + last > cap or len(t.snapshots) <= 4):
                break
            t.take_snapshot()
        for buf in (t.history, t.layer_history):
            real = list(buf.rows)
            i = 0
            while len(buf.rows) < buf.limit:
                row = dict(real[i % len(real)])
                row["step"] = buf.rows[-1]["step"] + 1
                buf.rows.append(row)
                i += 1
    figs_json = _page_figures(exp.runs, c)
    gc.collect()
    held = rss_mb() - r0
    acc = {"params": 0, "model": 0, "history": 0, "snapshots": 0, "data": 0, "figures": figs_json}
    for t in exp.runs.values():
        params = list(t.model.parameters())
        acc["params"] += sum(p.numel() for p in params)
        acc["model"] += sum(p.numel() * p.element_size() for p in params)
        acc["model"] += sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
        acc["model"] += sum(v.numel() * v.element_size() for s in t.opt.state.values() for v in s.values()
                            if isinstance(v, torch.Tensor))
        acc["history"] += _deep_row_bytes(t.history.rows) + _deep_row_bytes(t.layer_history.rows)
        acc["snapshots"] += sum(s.nbytes + s.grad_norm.nbytes + 200 * len(s.gate_stats) for s in t.snapshots)
        data = getattr(t.task, "data", None)
        acc["data"] += (data.numel() * data.element_size()) if isinstance(data, torch.Tensor) else 0
    acc["data"] += len(text) if text else 0
    return {"label": label, "runs": len(exp.runs), "seq_len": c.seq_len, "batch": c.batch_size,
            "hidden": c.hidden_size, "layers": c.num_layers, "bidirectional": c.bidirectional,
            "macs": step_macs(c), "snapshot_est": snapshot_bytes(c), "snapshots_kept": [len(t.snapshots)
                                                                                     for t in exp.runs.values()],
            "acc": acc, "held": held, "peak": peak_mb() - r0, "seconds": time.perf_counter() - t0}


def _page_figures(runs: dict, c: Controls) -> int:
    """Bytes of JSON of the gradient-flow page's figures (what st.plotly_chart sends), plus the gates heatmaps."""
    gf = analysis.grad_flow_frames(runs)
    hist = analysis.history_frames(runs)
    figs = [figures.grad_norm_vs_time(gf, predicted=analysis.predicted_frames(runs)),
            figures.global_grad_norm(hist, clip=c.clip or None), figures.loss_curves(hist)]
    figs += [figures.grad_flow_heatmap(gf, run=label) for label in runs]
    figs += [figures.gate_heatmaps(analysis.gate_frame(t.latest)) for t in runs.values()
             if t.latest is not None and t.latest.gates]
    return sum(len(f.to_json()) for f in figs)


def run_bound(args) -> None:
    names = [p.name for p in PRESETS] + ["worst"]
    print("Per-session memory, one fresh process per configuration; buffers filled to their caps (MB).")
    print(f"{'configuration':44s} {'runs':>4s} {'params':>7s} {'model':>6s} {'hist':>5s} {'snaps':>6s} "
          f"{'data':>5s} {'figs':>5s} {'total':>6s} | {'held':>6s} {'peak':>6s}")
    for name in names:
        out = subprocess.run([sys.executable, __file__, "_bound_child", name], capture_output=True, text=True,
                             timeout=3600)
        if out.returncode:
            print(f"{name}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        a = r["acc"]
        total = sum(v for k, v in a.items() if k != "params")
        print(f"{r['label'][:44]:44s} {r['runs']:4d} {a['params'] / 1e6:6.2f}M {a['model'] / MB:6.1f} "
              f"{a['history'] / MB:5.1f} {a['snapshots'] / MB:6.1f} {a['data'] / MB:5.1f} {a['figures'] / MB:5.1f} "
              f"{total / MB:6.1f} | {r['held']:6.1f} {r['peak']:6.1f}", flush=True)
        if name == "worst":
            print(f"  worst case: {r['runs']} x bidirectional LSTM, hidden {r['hidden']}, {r['layers']} layers, "
                  f"char_lm on a {MAX_TEXT_BYTES:,}-byte text, seq_len {r['seq_len']}, "
                  f"batch {r['batch']}: {r['macs'] / 1e9:.2f} G MACs per step, snapshot estimate "
                  f"{r['snapshot_est'] / MB:.0f} MB, snapshots kept per run {r['snapshots_kept']}")

    most = max(max_params(k) for k in ("lstm", "gru", "rnn_tanh"))
    print(f"plus, on 'Your weights': the loaded model, at most {most * 4 / MB:.0f} MB held "
          f"({most:,} float32 parameters), {MAX_WEIGHT_BYTES / MB:.0f} MB + "
          f"{SNAPSHOT_BUDGET_BYTES / MB:.0f} MB (probe) while it is traced; Streamlit keeps each uploaded file "
          f"in memory (at most {MAX_UPLOAD_BYTES / MB:.0f} MB per uploader)")


# -- live: the tick loop over a long session ---------------------------------------------------------------------
def run_live(args) -> None:
    from rnnviz.experiment import Experiment

    torch.set_num_threads(1)
    c = PRESETS_BY_NAME[args.preset].controls()
    exp = Experiment(c)
    runs = exp.runs
    t_start = time.perf_counter()
    marks, next_mark = [], 0.0
    print(f"preset: {args.preset}; {len(runs)} runs; RSS at start {rss_mb():.1f} MB", flush=True)
    from pages._janitor import SWEEP_SECONDS, _trim

    next_trim = SWEEP_SECONDS
    samples: list[tuple[float, float]] = []  # (seconds, RSS MB) after every tick: the level and its spikes
    while (elapsed := time.perf_counter() - t_start) < args.minutes * 60:
        exp.step(1_000_000, time_budget=0.6 * args.tick)  # train, lockstep
        _page_figures(runs, c)  # draw, as the pages do
        samples.append((elapsed, rss_mb()))
        if elapsed >= next_trim:  # what the server's session janitor does every sweep
            _trim()
            next_trim += SWEEP_SECONDS
        if elapsed >= next_mark:
            gc.collect()
            marks.append((elapsed / 60, rss_mb()))
            steps = {k: t.steps for k, t in runs.items()}
            snaps = {k: len(t.snapshots) for k, t in runs.items()}
            print(f"{elapsed / 60:5.1f} min  RSS {marks[-1][1]:7.1f} MB  steps {steps}  snapshots {snaps}", flush=True)
            next_mark += 60
    gc.collect()
    end = rss_mb()
    one = next((m for t, m in marks if t >= 1.0), marks[0][1])
    # (the per-minute marks above are taken right after a gc.collect(), about 20-30 MB below the tick samples:
    # the goal is judged on the tick samples, like with like)
    print(f"end: RSS {end:.1f} MB (mark at minute 1: {one:.1f} MB)")
    first = [m for t, m in samples if 50 <= t < 70]  # around the end of minute 1
    last = [m for t, m in samples if t >= samples[-1][0] - 60]
    if first and last:
        import statistics

        print(f"after every tick: around minute 1 median {statistics.median(first):.1f} MB; last minute median "
              f"{statistics.median(last):.1f} MB (max {max(last):.1f} MB): level grew by "
              f"{statistics.median(last) - statistics.median(first):+.1f} MB, highest sample "
              f"{max(last) - statistics.median(first):+.1f} MB above minute 1 (goal < 50 MB)")
    for label, t in runs.items():
        print(f"  {label}: {t.steps} steps, {len(t.history.rows)} history rows, {len(t.snapshots)} snapshots, "
              f"notes: {t.notes()}")


# -- uploads: the cost model of rnnviz.weights -------------------------------------------------------------------
UPLOADS = [  # (kind, input, hidden, layers, bidirectional, sequences, steps)
    ("lstm", 256, 256, 3, True, 1, 2), ("gru", 16, 1000, 1, False, 1, 2), ("rnn", 16, 1550, 1, False, 1, 2),
    ("lstm", 8, 64, 2, True, 32, 1000), ("gru", 8, 64, 2, True, 32, 1000), ("rnn", 8, 64, 2, True, 32, 1000),
    ("lstm", 8, 512, 1, False, 4, 1000), ("rnn", 20000, 4, 1, False, 32, 200), ("gru", 8, 16, 3, False, 32, 1000),
]


def _upload_child(cfg: list) -> dict:
    import io

    from torch import nn

    from rnnviz import trace
    from rnnviz.training import Snapshot
    from rnnviz.weights import Spec, example_input, load_recurrent_state_dict

    torch.set_num_threads(1)
    kind, n_in, H, L, bi, B, T = cfg
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]

    def save(m) -> bytes:
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)
        return buf.getvalue()

    def page(module, B, T):  # what pages/your_model.py does
        tr = trace(module, example_input("sine", B, T, module.input_size))
        snap = Snapshot.from_trace(tr)
        figures.grad_norm_vs_time(analysis.grad_flow_frames_from({"m": [snap]})).to_json()
        if tr.gates:
            figures.gate_heatmaps(analysis.gate_frame(snap, layer=0, direction=0, example=0)).to_json()
        basis = analysis.pca_basis([snap], layer=0, direction=0)
        figures.pca_trajectories(analysis.pca_frame(snap, basis, layer=0, direction=0)).to_json()

    data = save(cls(n_in, H, num_layers=L, bidirectional=bi))
    warm, _ = load_recurrent_state_dict(save(cls(3, 4)))
    page(warm, 2, 5)
    del warm
    gc.collect()
    r0, p0 = rss_mb(), peak_mb()
    module, _ = load_recurrent_state_dict(data)
    load_peak = peak_mb() - r0 if peak_mb() > p0 else 0.0
    r1, p1 = rss_mb(), peak_mb()
    page(module, B, T)
    trace_peak = peak_mb() - r1 if peak_mb() > p1 else 0.0
    spec = Spec.of(module)
    return {"cfg": cfg, "params": spec.params, "file": len(data), "load": load_peak, "trace": trace_peak,
            "module": (r1 - r0), "w_est": spec.weight_bytes() / MB, "p_est": spec.probe_bytes(B, T) / MB}


def run_uploads(args) -> None:
    print("Uploads: peak RSS of loading and of the page's trace + frames + figures, vs rnnviz.weights' estimates "
          "(MB); the weights estimate covers the module held while the trace runs on it")
    print(f"{'kind':5s} {'in':>6s} {'H':>5s} {'L':>2s} {'bi':>3s} {'B':>3s} {'T':>5s} {'params':>8s} {'file':>6s} | "
          f"{'load':>6s} {'trace':>6s} {'est w+p':>8s}")
    for cfg in UPLOADS:
        out = subprocess.run([sys.executable, __file__, "_upload_child", json.dumps(cfg)], capture_output=True,
                             text=True, timeout=1800)
        if out.returncode:
            print(f"{cfg}: failed\n{out.stderr[-1500:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        kind, n_in, H, L, bi, B, T = r["cfg"]
        print(f"{kind:5s} {n_in:6d} {H:5d} {L:2d} {'y' if bi else 'n':>3s} {B:3d} {T:5d} {r['params']:8,d} "
              f"{r['file'] / MB:6.1f} | {r['load']:6.1f} {r['module'] + r['trace']:6.1f} "
              f"{r['w_est'] + r['p_est']:8.1f}", flush=True)


# -- session: a real server, a real browser ----------------------------------------------------------------------
def run_session(args) -> None:
    from tests.browser import App, StreamlitServer, health, launch_browser, new_page

    extra = ("--server.disconnectedSessionTTL", str(args.ttl)) if args.ttl is not None else ()
    app_kw = {"app": args.app, "cwd": args.cwd} if args.app else {}
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - t0:7.1f} s  {msg}", flush=True)

    def session(b, seconds: float, tiny: bool = False) -> None:
        app = App(new_page(b), server.url)
        if tiny:  # the same task and page at the smallest size: imports, kernels, figure code
            app.goto("/gradient_flow?task=char_lm&cells=lstm&hidden_size=4&seq_len=8&batch_size=2")
        elif args.worst:  # the budget's worst case, through the URL (the URL is the demo)
            from urllib.parse import urlencode

            app.goto("/gradient_flow?" + urlencode(worst_case()[0].to_query()))
        else:
            app.goto("/")
            app.load_preset(args.preset)
        app.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            time.sleep(min(10.0, max(end - time.perf_counter(), 0.1)))
            log(f"training: RSS {rss_mb(pid):6.0f} MB, steps {app.steps()}")
        app.page.context.close()
        log(f"tab closed: RSS {rss_mb(pid):6.0f} MB")

    def blank_tab(b) -> None:
        app = App(new_page(b), server.url)
        app.goto("/")
        app.page.context.close()

    def settle(seconds: float, label: str, nudge_at: float | None) -> list[tuple[float, float]]:
        samples, start, nudged = [], time.perf_counter(), False
        while (waited := time.perf_counter() - start) < seconds:
            if nudge_at is not None and not nudged and waited >= nudge_at:
                blank_tab(b)
                nudged = True
                log("a blank tab opened and closed (another visitor)")
            time.sleep(5)
            ok, dt = health(server.url)
            samples.append((time.perf_counter() - start, rss_mb(pid)))
            log(f"{label}: RSS {samples[-1][1]:6.0f} MB (health {'ok' if ok else 'FAILED'} in {dt * 1000:.0f} ms)")
        return samples

    with StreamlitServer(extra_args=extra, **app_kw) as server, launch_browser() as b:
        pid = server.proc.pid
        ttl = args.ttl if args.ttl is not None else _config_ttl()
        nudge_at = ttl + 5 if args.nudge else None
        what = "the budget's worst case" if args.worst else f"preset {args.preset!r}"
        log(f"server up: RSS {rss_mb(pid):.0f} MB; disconnectedSessionTTL {ttl} s; {what}")
        session(b, args.warmup, tiny=True)
        base = settle(args.watch, "after the warm-up session", nudge_at)
        before = min(r for _, r in base[-3:])
        log(f"level before the measured session: {before:.0f} MB")
        session(b, args.train)
        peak = rss_mb(pid)
        after = settle(args.watch, "after the measured session", nudge_at)
        back = next((t for t, r in after if r <= before + 50), None)
        print(f"\nbefore {before:.0f} MB, at close {peak:.0f} MB, end {after[-1][1]:.0f} MB "
              f"({after[-1][1] - before:+.0f} MB); " + (f"within 50 MB of before {back:.0f} s after the tab closed"
                                                       if back is not None else
                                                       f"NOT back within 50 MB in {args.watch:.0f} s"))


def _config_ttl() -> int:
    import tomllib

    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    return int(cfg.get("server", {}).get("disconnectedSessionTTL", 120))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] in ("_bound_child", "_upload_child"):
        arg = sys.argv[2] if sys.argv[1] == "_bound_child" else json.loads(sys.argv[2])
        fn = _bound_child if sys.argv[1] == "_bound_child" else _upload_child
        print(json.dumps(fn(arg)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="live", choices=["bound", "live", "uploads", "session"])
    ap.add_argument("--minutes", type=float, default=10.0, help="live: how long")
    ap.add_argument("--tick", type=float, default=0.4, help="live: seconds per tick, as the dashboard")
    ap.add_argument("--preset", default=None, choices=list(PRESETS_BY_NAME),
                    help="live: default 'Vanishing gradients'; session: default the character model")
    ap.add_argument("--warmup", type=float, default=20.0,
                    help="session: seconds the warm-up session (the same page, a tiny model) trains")
    ap.add_argument("--train", type=float, default=60.0, help="session: seconds the measured session trains")
    ap.add_argument("--watch", type=float, default=180.0, help="session: seconds of sampling after each close")
    ap.add_argument("--ttl", type=int, default=None, help="session: override server.disconnectedSessionTTL")
    ap.add_argument("--nudge", action=argparse.BooleanOptionalAction, default=True,
                    help="session: a blank tab opens and closes after the TTL (Streamlit reaps then)")
    ap.add_argument("--worst", action="store_true", help="session: the budget's worst case instead of a preset")
    ap.add_argument("--app", default=None, help="session: another main script (e.g. a patched copy of app.py)")
    ap.add_argument("--cwd", default=str(REPO), help="session: the folder to run it in")
    args = ap.parse_args()
    if args.mode == "live":
        args.preset = args.preset or "Vanishing gradients (RNN vs LSTM vs GRU)"
    else:
        args.preset = args.preset or HEAVIEST
    {"bound": run_bound, "live": run_live, "uploads": run_uploads, "session": run_session}[args.mode](args)


if __name__ == "__main__":
    main()
