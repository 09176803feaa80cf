"""Resident memory of the live loop over a long session (not a test).

    python bench/bench_memory.py [--minutes 10] [--preset "Vanishing gradients (RNN vs LSTM vs GRU)"]

Emulates what the dashboard does each tick, in one process: a time-budgeted lockstep training chunk for
every compared run, then the frames and figures of the gradient-flow, gates and training pages. Prints
RSS once a minute. Goal: growth under 50 MB between minute 1 and the end (history and snapshots are
bounded buffers; older entries are thinned).
"""

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from rnnviz import analysis, figures  # noqa: E402
from rnnviz.controls import CELL_LABELS  # noqa: E402
from rnnviz.presets import PRESETS_BY_NAME  # noqa: E402
from rnnviz.training import Trainer  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--preset", default="Vanishing gradients (RNN vs LSTM vs GRU)", choices=list(PRESETS_BY_NAME))
    ap.add_argument("--tick", type=float, default=0.4, help="seconds per tick, as the dashboard")
    args = ap.parse_args()
    torch.set_num_threads(1)
    c = PRESETS_BY_NAME[args.preset].apply()
    runs = {CELL_LABELS[cell]: Trainer(c.model_config(cell), c.train_config()) for cell in c.cells}
    t_start = time.perf_counter()
    marks, next_mark = [], 0.0
    print(f"preset: {args.preset}; {len(runs)} runs; RSS at start {rss_mb():.1f} MB", flush=True)
    while (elapsed := time.perf_counter() - t_start) < args.minutes * 60:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.6 * args.tick:  # train, lockstep
            for t in runs.values():
                if not t.diverged:
                    t.step(1)
        gf = analysis.grad_flow_frames(runs)  # draw, as the pages do
        hist = analysis.history_frames(runs)
        figs = [figures.grad_norm_vs_time(gf, predicted=analysis.predicted_frames(runs)),
                figures.global_grad_norm(hist, clip=c.clip or None), figures.loss_curves(hist)]
        figs += [figures.grad_flow_heatmap(gf, run=label) for label in runs]
        gated = {k: t for k, t in runs.items() if t.latest is not None and t.latest.gates}
        for t in gated.values():
            figs.append(figures.gate_heatmaps(analysis.gate_frame(t.latest)))
        _ = [f.to_json() for f in figs]  # what st.plotly_chart serialises
        del figs
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
    print(f"end: RSS {end:.1f} MB; growth after minute 1: {end - one:+.1f} MB (goal < 50 MB)")
    for label, t in runs.items():
        print(f"  {label}: {t.steps} steps, {len(t.history.rows)} history rows, {len(t.snapshots)} snapshots, "
              f"notes: {t.notes()}")


if __name__ == "__main__":
    main()
