"""Speed of rnnviz.trace vs the native module's forward+backward, measured side by side.

    python bench/bench_trace.py [--repeats 15]

Prints, for RNN/LSTM/GRU at two sizes, the median time of each and their ratio (trace / native).
Both run in this process, interleaved, so machine noise hits both alike. Goal: ratio <= 1.5.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rnnviz  # noqa: E402

SIZES = [(32, 100, 8, 64), (8, 1000, 8, 256)]  # (batch, time, input, hidden)
CELLS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def native(m, x):
    m.zero_grad(set_to_none=True)
    out, _ = m(x)
    out[:, -1].pow(2).mean().backward()


def traced(m, x):
    rnnviz.trace(m, x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    print(f"{'cell':5} {'(B, T, in, H)':>18} {'native ms':>10} {'trace ms':>10} {'ratio':>6}")
    rows = []
    for B, T, I, H in SIZES:
        x = torch.randn(B, T, I)
        for name, cls in CELLS.items():
            m = cls(I, H, batch_first=True)
            for f in (native, traced):  # warm-up
                f(m, x)
            tn, tt = [], []
            for _ in range(args.repeats):  # interleaved
                t0 = time.perf_counter()
                native(m, x)
                t1 = time.perf_counter()
                traced(m, x)
                t2 = time.perf_counter()
                tn.append(t1 - t0)
                tt.append(t2 - t1)
            n, t = statistics.median(tn) * 1e3, statistics.median(tt) * 1e3
            rows.append((name, (B, T, I, H), n, t, t / n))
            print(f"{name:5} {str((B, T, I, H)):>18} {n:10.2f} {t:10.2f} {t / n:6.2f}", flush=True)
    worst = max(r[4] for r in rows)
    print(f"worst ratio {worst:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
