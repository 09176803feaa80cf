"""Speed of rnnviz.phase.sweep on the page's default grid vs rnnviz.trace run cell by cell.

    python bench/bench_phase.py [--repeats 5] [--threads 1,2] [--naive-scales 2]

sweep: PhaseConfig() = 3 cells (tanh RNN, LSTM, GRU) x 20 weight scales x 20 sequence lengths (5..500)
x 3 seeds, hidden 64, batch 4, float32. Goal: median < 5 s on 2 cores.
naive: build_core + rnnviz.trace on every sequence length for --naive-scales scales x 1 seed per cell (every
length, since cost grows with T and not with the scale), extrapolated to the full grid by
(20 / naive_scales) x (3 seeds / 1). Measured in the same process, at each thread count; the naive points'
values are checked against the sweep's (where a float32 trace's grad_norm has not under- or overflowed).
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rnnviz  # noqa: E402
from rnnviz.phase import PhaseConfig, build_core, loss_fn, probe_inputs, sweep  # noqa: E402

GOAL_S = 5.0


def time_sweep(cfg: PhaseConfig, repeats: int):
    sweep(cfg, cache=False)  # warm-up
    ts, df = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        df = sweep(cfg, cache=False)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), df


def time_naive(cfg: PhaseConfig, n_scales: int):
    """Seconds for build_core + trace cell by cell on a subset, the factor to the full grid, and the values."""
    idx = [round(i * (len(cfg.scales) - 1) / max(n_scales - 1, 1)) for i in range(n_scales)]
    scales = [cfg.scales[i] for i in sorted(set(idx))]
    seed = cfg.seeds[0]
    x, v = probe_inputs(cfg, seed)
    values = {}
    t0 = time.perf_counter()
    for cell in cfg.cells:
        for s in scales:
            core = build_core(cfg, cell, s, seed)
            for T in cfg.seq_lens:
                gn = rnnviz.trace(core, x[:, :T], loss_fn(v)).grad_norm[0, 0]
                values[(cell, s, T)] = (float(gn[0]), float(gn[T - 1]))
    elapsed = time.perf_counter() - t0
    factor = len(cfg.scales) / len(scales) * len(cfg.seeds)
    return elapsed, factor, values


def check(cfg: PhaseConfig, values) -> tuple[float, float]:
    """Max |sweep - trace| in log10 over the naive points (seed 0: a one-seed sweep of those points), for
    scale <= 1 and scale > 1 apart: above 1 the tanh RNN is chaotic, so float32 rounding differences between
    the fused kernel and the batched recurrence grow into different (equally valid) trajectories."""
    one = sweep(PhaseConfig(**{**cfg.to_dict(), "seeds": cfg.seeds[:1]}), cache=False)
    worst = [0.0, 0.0]
    for (cell, s, T), (g0, gT) in values.items():
        if 1e-18 < g0 < 1e30:  # a float32 trace's norm underflows below ~1e-19 and overflows above ~1e38
            r = one[(one.cell == cell) & (one.scale == s) & (one.y == T)].log_ratio.iloc[0]
            worst[s > 1] = max(worst[s > 1], abs(r - math.log10(g0 / gT)))
    return worst[0], worst[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (app.py uses 1)")
    ap.add_argument("--naive-scales", type=int, default=2)
    args = ap.parse_args()
    cfg = PhaseConfig()
    n_cells = len(cfg.cells) * len(cfg.scales) * len(cfg.seq_lens)
    print(f"torch {torch.__version__}; grid {len(cfg.cells)} cells x {len(cfg.scales)} scales x "
          f"{len(cfg.seq_lens)} lengths ({min(cfg.seq_lens)}..{max(cfg.seq_lens)}) x {len(cfg.seeds)} seeds, "
          f"hidden {cfg.hidden_size}, batch {cfg.batch}, {cfg.dtype}: {n_cells} heatmap cells")
    for th in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(th)
        med, best, _ = time_sweep(cfg, args.repeats)
        naive, factor, values = time_naive(cfg, args.naive_scales)
        full = naive * factor
        print(f"threads {th}: sweep median {med:.2f} s (best {best:.2f}, {args.repeats} runs; goal < {GOAL_S:g} s: "
              f"{'OK' if med < GOAL_S else 'MISSED'}) | naive trace cell by cell {naive:.2f} s for "
              f"{len(values)} traces -> {full:.1f} s extrapolated (x{factor:g}) | speed-up x{full / med:.1f}",
              flush=True)
    calm, chaotic = check(cfg, values)
    print(f"max |sweep - trace| on the naive points: {calm:.1e} decades at scale <= 1, {chaotic:.2f} at scale > 1 "
          "(chaotic tanh RNN: float32 rounding differences grow)")


if __name__ == "__main__":
    main()
