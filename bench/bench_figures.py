"""Time to build each training page's figures (what a live tick redraws), side by side in one process:

    python bench/bench_figures.py [--repeats 15] [--steps 400] [--before REV]

For each page (Gradient flow, Gates, Hidden states, Attention, Training) it builds the figures the page draws
per tick from the same runs with
  "now":          rnnviz/figures.py as it is in the working tree,
  "presentation": the same, each figure then passed through figures.presentation (projector mode),
  "before":       rnnviz/figures.py at git revision REV (default: the commit before the projector-layout
                  change of issue 10), loaded as a separate module,
interleaved (machine noise hits all three alike), and prints the median of each and the ratios.
The frames (rnnviz.analysis) are built once per page and shared: only the figures are timed.
"""

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from rnnviz import analysis, figures  # noqa: E402
from rnnviz.controls import Controls  # noqa: E402
from rnnviz.experiment import Experiment  # noqa: E402

BEFORE = "583d2b4397f2f1b97ca0e461d8f824d2f881d0eb"  # figures.py before issue 10's projector layout


def load_revision(rev: str):
    """rnnviz/figures.py at git revision `rev` as a module of its own (it imports rnnviz.* as usual)."""
    src = subprocess.run(["git", "show", f"{rev}:rnnviz/figures.py"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    path = Path(tempfile.mkdtemp()) / "figures_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("figures_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def trained(steps: int, **settings):
    exp = Experiment(replace(Controls(), **settings))
    exp.step(steps)
    exp.snapshot()
    return exp.runs


def page_frames(steps: int) -> dict:
    """Per page: a function F -> [figures] drawing what the page draws per tick, on frames built here once."""
    rs = trained(steps)  # defaults: RNN, LSTM, GRU on the adding problem
    gf, hist = analysis.grad_flow_frames(rs), analysis.history_frames(rs)
    pred, lg = analysis.predicted_frames(rs, None), analysis.layer_grad_frames(rs)
    gated = {k: t for k, t in rs.items() if t.model_cfg.cell in ("lstm", "gru")}
    lstm = rs["LSTM"]
    gates, gs = analysis.gate_frame(lstm.latest), analysis.gate_stats_frames(gated)
    gs = gs[gs.run == "LSTM"]
    basis = analysis.pca_basis(lstm.snapshots)
    pf = analysis.pca_frame(lstm.latest, basis, labels=analysis.probe_labels(lstm))
    uf = analysis.unit_frame(lstm.latest)
    att_runs = trained(min(steps, 100), task="reverse", seq_len=12, cells=("gru",))
    a = next(t for t in att_runs.values() if t.model.attention != "none")
    af = analysis.attention_frame(a.latest.attention, 0)
    src = [a.task.itos[i] for i in a.probe.x[0].tolist()]
    tgt = [a.task.itos[i] for i in a.probe.y[0].tolist()]
    ahist = analysis.history_frames(att_runs)
    return {
        "Gradient flow": lambda F: [F.grad_norm_vs_time(gf, predicted=pred),
                                    *(F.grad_flow_heatmap(gf, run=r) for r in rs), F.global_grad_norm(hist, clip=1.0)],
        "Gates": lambda F: [F.gate_heatmaps(gates), F.gate_saturation(gs)],
        "Hidden states": lambda F: [F.pca_trajectories(pf), F.unit_heatmap(uf)],
        "Attention": lambda F: [F.attention_heatmap(af, src, tgt, ideal="anti-diagonal"),
                                F.loss_curves(ahist, metric=True)],
        "Training": lambda F: [F.loss_curves(hist), F.loss_curves(hist, metric=True), F.layer_grad_norms(lg)],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=400, help="training steps before timing (snapshots every 10)")
    ap.add_argument("--before", default=BEFORE, help="git revision of rnnviz/figures.py to compare with")
    args = ap.parse_args()
    torch.set_num_threads(1)
    before = load_revision(args.before)
    pages = page_frames(args.steps)

    def present(F):
        return lambda draw: [figures.presentation(f) for f in draw(F)]

    variants = {"before": lambda draw: draw(before), "now": lambda draw: draw(figures),
                "presentation": present(figures)}
    times = {p: {v: [] for v in variants} for p in pages}
    for draw in pages.values():  # warm-up
        for run in variants.values():
            run(draw)
    for _ in range(args.repeats):
        for page, draw in pages.items():
            for v, run in variants.items():
                t0 = time.perf_counter()
                run(draw)
                times[page][v].append(time.perf_counter() - t0)
    print(f"figures per tick of each training page (3 runs after {args.steps} steps; attention: 100 steps), "
          f"median of {args.repeats}, one thread; before = figures.py at {args.before[:9]}")
    print(f"{'page':15s} {'before':>9s} {'now':>9s} {'present.':>9s} {'now/before':>11s} {'present./now':>13s}")
    for page, t in times.items():
        m = {v: statistics.median(x) * 1e3 for v, x in t.items()}
        print(f"{page:15s} {m['before']:7.1f}ms {m['now']:7.1f}ms {m['presentation']:7.1f}ms "
              f"{m['now'] / m['before']:11.2f} {m['presentation'] / m['now']:13.2f}")


if __name__ == "__main__":
    main()
