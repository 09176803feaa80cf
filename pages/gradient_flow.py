"""Gradient flow: per-timestep ||dL/dh_t||, its history over training, the predicted decay, clipping."""

import streamlit as st

from pages import _ui as ui
from rnnviz import analysis, figures

ui.setup()
st.title("Gradient flow through time")
ui.intro(
    "How much does the loss at the end care about the hidden state at step *t*? That is ‖∂L/∂h_t‖. "
    "Backpropagation through time multiplies one Jacobian per step, so the norm changes geometrically: "
    "it **vanishes** when the recurrent Jacobian's norm is below 1 and **explodes** above it."
)
with ui.details("The formula"):
    st.latex(r"\frac{\partial L}{\partial h_{t-1}} = \frac{\partial \ell_{t-1}}{\partial h_{t-1}}"
             r" + W_{hh}^\top \operatorname{diag}(1-h_t^2)\,\frac{\partial L}{\partial h_t}"
             r"\qquad\Rightarrow\qquad \Big\|\frac{\partial L}{\partial h_t}\Big\| \le "
             r"\sigma_{\max}(W_{hh})^{\,T-1-t}\,\Big\|\frac{\partial L}{\partial h_{T-1}}\Big\|")
    st.markdown("The bound is for a tanh RNN (tanh' ≤ 1); it is exact for W_hh = s·Q with Q orthogonal and "
                "saturation-free states. LSTM and GRU add a gated, additive path (c_t = f_t ⊙ c_{t-1} + …) "
                "whose factor per step is the forget/update gate, not W_hh. With a truncation window k, the "
                "terms crossing a window boundary are exactly zero.")


def render(rs):
    step = ui.snapshot_step()
    gf = analysis.grad_flow_frames(rs)
    pred = analysis.predicted_frames(rs, step)
    st.markdown("#### ‖∂L/∂h_t‖ at each time step (probe batch, loss at the end of the sequence)")
    if st.session_state.get("gf_step0", True) and (step is None or step > 0) and not ui.presenting():
        now, then = st.columns(2)
        with now:
            ui.chart(figures.grad_norm_vs_time(gf, step=step, predicted=pred), key="gf_curve")
        with then:  # step 0 does not change while training
            ui.chart(lambda: figures.grad_norm_vs_time(gf, step=0, predicted=analysis.predicted_frames(rs, 0)),
                     key="gf_curve0", every=3600)
    else:
        ui.chart(figures.grad_norm_vs_time(gf, step=step, predicted=pred), key="gf_curve")
    ui.explain("Read it right to left: the loss sits at the last step; each step back multiplies by one "
               "Jacobian. A straight line on this log axis is geometric decay or growth. Dashed: the decay "
               "σ_max(W_hh)^(T−1−t) the recurrent matrix predicts for a tanh RNN.")
    if not ui.presenting():  # at half width the larger text leaves no room for the plot
        st.toggle("Beside it: the same at step 0 (initialisation)", key="gf_step0", value=True,
                  help="Gated cells vanish at initialisation too; training teaches their gates to keep the additive "
                       "path open. Compare the two.")

    table = analysis.decay_table(rs, step)
    if len(table):
        ui.explain("Measured: least-squares slope of log10 ‖∂L/∂h_t‖ per step (layer 0). For a tanh RNN it sits "
                   "at or below log10 σ_max; the spectral radius ρ sets the long-run rate.")
        ui.table(table)  # "–" where a rate does not apply (gated cells, a replayed snapshot)

    st.markdown("#### How gradient flow changes while the model learns")
    ui.explain("Each row is one snapshot (training step), each column a time step; colour is log10 ‖∂L/∂h_t‖.")
    cols = st.columns(len(rs))
    for col, label in zip(cols, rs, strict=True):
        with col:
            ui.chart(lambda label=label: figures.grad_flow_heatmap(gf, run=label), key=f"gf_heat_{label}",
                     every=ui.LIVE_EVERY)

    st.markdown("#### Global gradient norm, before and after clipping")
    ui.explain("Clipping (Pascanu et al. 2013): if ‖g‖ ≥ threshold, g ← threshold · g / ‖g‖. The dashed line "
               "is the threshold; points above it were rescaled.")
    clip = ui.controls().clip or None
    ui.chart(lambda: figures.global_grad_norm(analysis.history_frames(rs), clip=clip), key="gf_global",
             every=ui.LIVE_EVERY, deps=(clip,))
    ui.downloads({"grad_flow": gf, "history": lambda: analysis.history_frames(rs)}, key="gf")


ui.live(render)
