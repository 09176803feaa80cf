"""Training & replay: loss and metric against the trivial baseline, per-layer gradients, the replay scrubber."""

import streamlit as st

from pages import _ui as ui
from rnnviz import analysis, figures

ui.setup()
st.title("Training curves and replay")


def _go_live():
    st.session_state.replay = None


def _scrub():
    """Slider moved by the user: replay that snapshot (the last one is live)."""
    v, steps = st.session_state.replay_slider, st.session_state.replay_steps
    st.session_state.replay = None if v == steps[-1] else v


def render(rs):
    hist = analysis.history_frames(rs)
    t0 = next(iter(rs.values()))
    st.markdown(f"#### Loss — {t0.task.name}, trivial baseline {t0.task.baseline:.4g}")
    ui.explain(f"Dashed: {t0.task.baseline_note}. A model that does not beat it has learned nothing useful.")
    ui.chart(figures.loss_curves(hist), key="tr_loss")
    st.markdown(f"#### Task metric: {t0.task.metric_name}")
    ui.chart(lambda: figures.loss_curves(hist, metric=True), key="tr_metric", every=ui.LIVE_EVERY)
    st.markdown("#### Gradient norm per layer")
    ui.explain("‖∂L/∂θ‖ of each group of parameters per step (before clipping).")
    ui.chart(lambda: figures.layer_grad_norms(analysis.layer_grad_frames(rs)), key="tr_layers", every=ui.LIVE_EVERY)
    ui.downloads({"history": hist, "layer_grads": lambda: analysis.layer_grad_frames(rs),
                  "grad_flow": lambda: analysis.grad_flow_frames(rs),
                  "gate_stats": lambda: analysis.gate_stats_frames(rs)}, key="tr")
    replay(rs)


def replay(rs):
    """The scrubber, in the live area: a Step (which reruns only that area) adds its snapshot here too."""
    st.divider()
    st.markdown("#### Replay recorded snapshots on every page")
    steps = analysis.snapshot_steps(rs)
    if len(steps) < 2:
        st.caption("Train for a while first: snapshots are taken every few steps (sidebar → Snapshot every N steps).")
        return
    current = st.session_state.replay if st.session_state.replay is not None else steps[-1]
    current = max(s for s in steps if s <= current) if any(s <= current for s in steps) else steps[0]
    st.session_state.replay_steps = steps
    st.session_state.replay_slider = current  # the slider shows what the pages show
    st.select_slider("Snapshot step", steps, key="replay_slider", on_change=_scrub,
                     disabled=st.session_state.running,
                     help="Pause training to scrub. Every page then shows this snapshot.")
    st.button("Back to live", on_click=_go_live, key="replay_live")


ui.live(render)
