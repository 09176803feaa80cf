"""Cost of the connectivity matrix (rnnviz.connectivity) against the cost of a probe snapshot.

    python bench/bench_connectivity.py [--repeats 9] [--threads 1]

For each configuration, measured interleaved in one process (median of the repeats), on the trainer's own
probe batch at initialisation:

  snapshot        Trainer.take_snapshot(): what the dashboard pays every `snapshot_every` steps
  1 seq, g=G      connectivity of one probe sequence (what the Connectivity page computes per run), with the
                  rows split into G ranges (g=1: every copy runs all T steps); * marks auto_groups' choice
  probe           connectivity of every probe sequence (auto_groups)

and prints each as a ratio to the snapshot. Times depend on the machine's load: compare the ratios.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnnviz.connectivity import auto_groups, connectivity, window  # noqa: E402
from rnnviz.models import ModelConfig  # noqa: E402
from rnnviz.training import TrainConfig, Trainer  # noqa: E402

CONFIGS = [  # (label, task, seq_len, cell, hidden, layers)
    ("char_lm preset", "char_lm", 64, "lstm", 128, 1),
    ("char_lm", "char_lm", 64, "rnn_tanh", 32, 1),
    ("char_lm", "char_lm", 64, "lstm", 32, 1),
    ("char_lm", "char_lm", 64, "gru", 32, 1),
    ("char_lm, 2 layers", "char_lm", 64, "gru", 64, 2),
    ("copy_memory T=20", "copy_memory", 20, "lstm", 64, 1),
    ("char_lm T=128", "char_lm", 128, "lstm", 64, 1),
    ("hello", "hello", 4, "rnn_tanh", 8, 1),
]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} interleaved repeats")
    groups = [1, 2, 4]
    head = f"{'configuration':<18} {'cell':<9} {'H':>4} {'T':>4} {'snapshot':>9}" \
        + "".join(f" {'1 seq, g=' + str(g):>17}" for g in groups) + f" {'probe':>19}"
    print(head)
    print("-" * len(head))
    for label, task, T, cell, H, layers in CONFIGS:
        tr = Trainer(ModelConfig(cell=cell, hidden_size=H, num_layers=layers),
                     TrainConfig(task=task, seq_len=T, snapshot_every=0))
        one = window(tr.probe, 0, None)
        jobs = {"snap": lambda tr=tr: (tr.take_snapshot(), tr.snapshots.clear())}
        for g in groups:
            jobs[g] = lambda tr=tr, one=one, g=g: connectivity(tr.model, one, groups=g)
        jobs["probe"] = lambda tr=tr: connectivity(tr.model, tr.probe)
        for fn in jobs.values():  # warm-up
            fn()
        times = {k: [] for k in jobs}
        for _ in range(args.repeats):
            for k, fn in jobs.items():
                times[k].append(timed(fn))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}

        auto = auto_groups(tr.model.core.mode, tr.probe.x.shape[1])

        def cell_text(k, med=med, auto=auto):
            return f"{med[k]:6.1f} ms ({med[k] / med['snap']:5.1f}x)" + ("*" if k == auto else " ")

        print(f"{label:<18} {cell:<9} {H:>4} {tr.probe.x.shape[1]:>4} {med['snap']:6.1f} ms"
              + "".join(f" {cell_text(g):>17}" for g in groups) + f" {cell_text('probe'):>19}", flush=True)


if __name__ == "__main__":
    main()
