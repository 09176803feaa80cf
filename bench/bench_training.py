"""Training throughput with probe snapshots every 10 steps vs none, measured side by side.

    python bench/bench_training.py [--steps 200] [--rounds 5]

For each cell type, two trainers with identical settings (adding problem, T=50, hidden 32, batch 32) are
stepped in alternating chunks in this process; prints steps/s of each and the cost of snapshots as a share of
throughput. Goal: <= 15 %.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from rnnviz import _lstm_ext  # noqa: E402
from rnnviz.models import ModelConfig  # noqa: E402
from rnnviz.training import TrainConfig, Trainer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100, help="steps per chunk")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    _lstm_ext.build()  # loaded before timing, as a running server has it after its background build
    print(f"adding problem T={args.seq_len}, hidden 32, batch 32; {args.rounds} rounds x {args.steps} steps each")
    print(f"{'cell':9} {'no snapshots':>14} {'every 10':>10} {'cost':>6}")
    for cell in ("rnn_tanh", "lstm", "gru"):
        off, on = (Trainer(ModelConfig(cell=cell, hidden_size=32),
                           TrainConfig(task="adding", seq_len=args.seq_len, snapshot_every=every)) for every in (0, 10))
        off.step(20)
        on.step(20)  # warm-up
        t_off = t_on = 0.0
        for _ in range(args.rounds):  # interleaved
            t0 = time.perf_counter()
            off.step(args.steps)
            t1 = time.perf_counter()
            on.step(args.steps)
            t2 = time.perf_counter()
            t_off += t1 - t0
            t_on += t2 - t1
        n = args.rounds * args.steps
        r_off, r_on = n / t_off, n / t_on
        print(f"{cell:9} {r_off:11.0f}/s {r_on:8.0f}/s {1 - r_on / r_off:6.1%}", flush=True)
    print("cost = 1 - (steps/s with snapshots every 10 steps) / (steps/s without); goal <= 15%")


if __name__ == "__main__":
    main()
