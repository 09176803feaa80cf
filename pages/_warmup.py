"""Warm the server once, off every visitor's path: one thread per process that does, in the background, the slow
first-time work a training page would otherwise do inside the first visitor's request.

    from pages import _warmup
    _warmup.start()          # in app.py (st.cache_resource makes it one thread per process)

What the first training page paid before (bench/bench_ui.py's breakdown, cold process):
1. the first optimiser: torch.optim.Optimizer.__init__ imports torch._dynamo on its first call (about 1.1 s);
2. the first model build, forward and backward: kernels and lazy imports of torch.nn (a few hundred ms);
3. the first trace and the first frames and figures (pandas and plotly's lazy imports and validators).
The thread waits DELAY_SECONDS (so the visitor's own first page, usually Home, is drawn first), then builds the
default runs (rnnviz.controls.Controls()), trains one step, takes a snapshot and builds the Gradient flow page's
frames and figures with their JSON, and drops them. Nothing is shared with sessions: each builds its own runs.
A failure is printed and otherwise ignored (the pages then just do this work themselves).
"""

from __future__ import annotations

import sys
import threading
import time

import streamlit as st

DELAY_SECONDS = 0.5


def _warm() -> None:
    time.sleep(DELAY_SECONDS)
    t0 = time.perf_counter()
    try:
        import plotly.io as pio

        from rnnviz import analysis, figures
        from rnnviz.controls import Controls
        from rnnviz.experiment import Experiment

        exp = Experiment(Controls())  # the default runs: models, optimisers (torch._dynamo), the step-0 trace
        exp.step(1)
        exp.snapshot()
        rs = exp.runs
        gf = analysis.grad_flow_frames(rs)
        figs = [figures.grad_norm_vs_time(gf, step=None, predicted=analysis.predicted_frames(rs, None)),
                figures.global_grad_norm(analysis.history_frames(rs), clip=None),
                *(figures.grad_flow_heatmap(gf, run=label) for label in rs)]
        for fig in figs:
            pio.to_json(fig, validate=False)
    except Exception as exc:  # noqa: BLE001 - a warm-up must never take the server down
        print(f"rnnviz: warm-up failed ({exc!r}); the first page does this work itself", file=sys.stderr, flush=True)
        return
    print(f"rnnviz: warmed up in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


@st.cache_resource(show_spinner=False)
def start() -> threading.Thread:
    """Start the warm-up once per server process."""
    t = threading.Thread(target=_warm, name="rnnviz-warmup", daemon=True)
    t.start()
    return t


__all__ = ["DELAY_SECONDS", "start"]
