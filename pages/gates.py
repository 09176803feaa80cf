"""Gates: LSTM input/forget/cell/output and the cell state, GRU reset/update/new; saturation over training."""

import streamlit as st

from pages import _ui as ui
from rnnviz import analysis, figures

ui.setup()
st.title("Gates at work")
ui.intro(
    "Gated cells decide, per unit and per step, what to keep. **LSTM**: input *i*, forget *f*, output *o* "
    "(sigmoids in [0, 1]) and the candidate *g* (tanh): c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t, h_t = o_t ⊙ tanh(c_t). "
    "The cell path is additive: while f ≈ 1, information and gradient pass through unchanged. "
    "**GRU**: reset *r*, update *z*, new *n*: h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}, a **weighted average** per "
    "unit of the old state and the candidate, with z as the weight: z ≈ 1 keeps the old state and passes the "
    "gradient straight back, as an LSTM's forget gate near 1 does. The GRU is the **lighter gating**: 3 weight "
    "blocks instead of the LSTM's 4, no separate cell state, no output gate."
)


def render(rs):
    gated = {label: t for label, t in rs.items() if t.model_cfg.cell in ("lstm", "gru")}
    if not gated:
        st.info("The selected cells have no gates: pick LSTM or GRU in the sidebar (Cells).")
        return
    c1, c2, c3 = st.columns(3)
    label = c1.selectbox("Run", list(gated), key="gates_run")
    t = gated[label]
    snap = ui.current_snapshot(t)
    if snap is None:
        return
    L, D, B = snap.hidden.shape[:3]
    example = c2.number_input("Sequence of the probe batch", 0, B - 1, 0, key="gates_example")
    layer = c3.number_input("Layer", 0, L - 1, 0, key="gates_layer")
    gf = analysis.gate_frame(snap, layer=layer, direction=0, example=example)
    st.markdown(f"#### Gate activations, time × unit (snapshot at step {snap.step})")
    phases = t.task.phases() if hasattr(t.task, "phases") else None
    ui.chart(figures.gate_heatmaps(gf, phases=phases), key="gates_heat")
    ui.explain("Sigmoid gates on a 0–1 scale (white → dark); tanh quantities (candidate, cell state, hidden) on a "
               "diverging −1…1 scale. A forget-gate row that stays near 1 is a unit holding its memory.")
    st.markdown("#### Saturation over training")
    ui.explain("Fraction of (unit, step) values below 0.05 or above 0.95 on the probe batch. Saturated gates pass "
               "almost no gradient through their own derivative σ'(a) = σ(a)(1 − σ(a)).")
    ui.chart(lambda: figures.gate_saturation(analysis.gate_stats_frames({label: t})), key="gates_sat",
             every=ui.LIVE_EVERY, deps=(label,))
    ui.downloads({"gates": gf, "gate_stats": lambda: analysis.gate_stats_frames(gated)}, key="gates")


ui.live(render)
