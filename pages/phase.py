"""Phase diagram: where gradients vanish or explode, over weight scale x sequence length, at initialisation."""

from dataclasses import replace

import streamlit as st

from pages import _ui as ui
from rnnviz import figures
from rnnviz.controls import CELL_LABELS
from rnnviz.phase import PhaseConfig, boundary, sweep

ui.setup(training_controls=False)
st.title("Gradient-flow phase diagram")
st.markdown(
    "Each cell is a freshly initialised network (no training): colour is "
    "log10(‖∂L/∂h_0‖ / ‖∂L/∂h_{T−1}‖) for a loss at the last step, averaged over seeds. **Blue**: the "
    "gradient from the end has vanished by the start; **red**: it exploded. For a tanh RNN with orthogonal "
    "W_hh = s·Q the boundary is s = 1 (σ_max = 1, Pascanu et al. 2013), drawn as a line; LSTM and GRU move "
    "it, because their gated additive paths are not multiplied by W_hh."
)


def _load(new):
    ui.load_config(new)
    st.session_state.goto = "gradient_flow"


c1, c2, c3, c4 = st.columns(4)
hidden = c1.select_slider("Hidden size", [8, 16, 32, 64, 128], value=64, key="ph_hidden")
init = c2.selectbox("W_hh init", ["orthogonal", "default"], key="ph_init")
y_axis = c3.selectbox("y axis", ["seq_len", "forget_bias", "hidden_size"], key="ph_y",
                      format_func={"seq_len": "sequence length", "forget_bias": "forget-gate bias (LSTM)",
                                   "hidden_size": "hidden size"}.get)
inp = c4.selectbox("Input", ["noise", "zero"], key="ph_input")
cells = ("lstm",) if y_axis == "forget_bias" else ("rnn_tanh", "lstm", "gru")
cfg = PhaseConfig(cells=cells, hidden_size=hidden, init=init, y_axis=y_axis, input=inp)

bar = st.progress(0.0, text="sweeping the grid…")
# rnnviz.phase caches results per configuration (immutable, shared by all sessions)
df = sweep(cfg, progress=lambda f: bar.progress(min(float(f), 1.0), text=f"sweeping… {f:.0%}"))
line = boundary(cfg)
bar.empty()
st.caption(f"{len(df)} grid cells: {len(cfg.scales)} weight scales × {df.y.nunique()} values of "
           f"{y_axis.replace('_', ' ')}, {len(cfg.seeds)} seeds each. Click a cell to load that configuration.")
event = st.plotly_chart(figures.phase_diagram(df, boundary=line), width="stretch", key="ph_chart",
                        config=ui.PLOTLY_CONFIG, on_select="rerun", selection_mode="points")
points = (event or {}).get("selection", {}).get("points", []) if event else []
if points:
    pt = points[0]
    custom = pt.get("customdata")
    if custom:
        scale, seq_len = float(custom[0]), int(custom[1])
        cell = custom[2] if len(custom) > 2 else "rnn_tanh"
        new = replace(ui.controls(), task="adding", weight_scale=round(scale, 2), seq_len=seq_len, init=init,
                      cells=(cell,) if cell in CELL_LABELS else ui.controls().cells, hidden_size=hidden, truncation=0)
        st.info(f"Selected: {CELL_LABELS.get(cell, cell)}, weight scale {scale:.2f}, T = {seq_len}.")
        try:
            new.validate()
            st.button("Open this configuration on the Gradient flow page", type="primary", key="ph_load",
                      on_click=_load, args=(new,))
        except ValueError as exc:
            st.warning(f"Cannot load it: {exc}")
ui.downloads({"phase": df}, key="ph", static=True)
