"""Time to build the gradient-flow page's figures (what a live tick redraws), side by side in one process:

    python bench/bench_figures.py [--repeats 15] [--steps 400]

"fast": rnnviz.figures as shipped (the plotly_white template is not re-validated per figure, and the common
layout is assigned rather than passed through update_layout);
"before": the same functions with the previous figure set-up (go.Figure(), then one update_layout with the
template and everything else).
Prints the median of each and their ratio. Both run interleaved on the same runs, so machine noise hits both.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import plotly.graph_objects as go
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnnviz import analysis, figures  # noqa: E402
from rnnviz.controls import Controls  # noqa: E402
from rnnviz.experiment import Experiment  # noqa: E402


def figure_before(*traces):
    fig = go.Figure()
    if traces:
        fig.add_traces(list(traces))
    return fig


def layout_before(fig, title, x=None, y=None, note=None, **kw):
    size = figures.FONT_SIZE
    t = {"text": title, "font": {"size": size + 4}}
    if note:
        t["subtitle"] = {"text": note, "font": {"size": size - 1}}
    fig.update_layout(**{"template": "plotly_white", "title": t, "font": {"size": size},
                         "hoverlabel": {"font_size": size}, "legend": {"font": {"size": size}},
                         "margin": {"t": 100 if note else 70}, **kw})
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


def page_figures(rs):
    """The figures pages/gradient_flow.py builds per tick."""
    gf = analysis.grad_flow_frames(rs)
    pred = analysis.predicted_frames(rs, None)
    hist = analysis.history_frames(rs)
    return [figures.grad_norm_vs_time(gf, predicted=pred), *(figures.grad_flow_heatmap(gf, run=r) for r in rs),
            figures.global_grad_norm(hist, clip=1.0)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=400, help="training steps before timing (snapshots every 10)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rs = Experiment(Controls()).runs  # defaults: RNN, LSTM, GRU on the adding problem
    for t in rs.values():
        t.step(args.steps)
    fast = (figures._figure, figures._layout)
    variants = {"fast": fast, "before": (figure_before, layout_before)}
    times = {k: [] for k in variants}
    for k, make in variants.items():  # warm-up, and the two must draw the same thing
        figures._figure, figures._layout = make
        out = [f.to_dict() for f in page_figures(rs)]
        if k == "fast":
            ref = out
        assert out == ref, "the fast path changed a figure"
    for _ in range(args.repeats):
        for k, make in variants.items():
            figures._figure, figures._layout = make
            t0 = time.perf_counter()
            page_figures(rs)
            times[k].append(time.perf_counter() - t0)
    figures._figure, figures._layout = fast
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"gradient-flow page figures, 3 runs after {args.steps} steps, median of {args.repeats}:")
    for k, v in med.items():
        print(f"  {k:10s} {v:7.1f} ms")
    print(f"  ratio fast / before = {med['fast'] / med['before']:.2f}")


if __name__ == "__main__":
    main()
