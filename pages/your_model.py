"""Your weights: upload a state_dict of an nn.RNN / LSTM / GRU and look inside it on a chosen input."""

import streamlit as st

from pages import _ui as ui
from rnnviz import analysis, figures, trace
from rnnviz.training import Snapshot
from rnnviz.weights import MAX_UPLOAD_BYTES, example_input, load_recurrent_state_dict

ui.setup(training_controls=False)
st.title("Look inside your own weights")
st.markdown(
    "Save the recurrent part of your model with `torch.save(model.rnn.state_dict(), 'rnn.pt')` (or the whole "
    "model's state_dict: the one recurrent module in it is found) and upload it. It is loaded with "
    "`torch.load(..., weights_only=True)`: tensors only, nothing in the file is executed. Limit: "
    f"{MAX_UPLOAD_BYTES // 2**20} MB."
)

c1, c2 = st.columns([2, 1])
up = c1.file_uploader("state_dict (.pt / .pth)", type=["pt", "pth", "bin"], key="yw_file")
claimed = c2.selectbox("It is a", ["auto", "rnn_tanh", "rnn_relu", "lstm", "gru"], key="yw_kind",
                       help="A vanilla RNN's weights don't say tanh or relu: pick it if needed")
if up is not None:
    data = up.getvalue()
    sig = (up.name, len(data), claimed)
    if st.session_state.get("yw_sig") != sig:
        try:
            module, notes = load_recurrent_state_dict(data, claimed)
            st.session_state.yw_module, st.session_state.yw_notes = module, notes
            st.session_state.yw_error = None
        except (ValueError, TypeError) as exc:
            st.session_state.yw_error = str(exc)  # the previous module (if any) is kept
        st.session_state.yw_sig = sig
if st.session_state.get("yw_error"):
    st.error(f"Not loaded: {st.session_state.yw_error}")
module = st.session_state.get("yw_module")
if module is None:
    st.info("No weights loaded yet.")
    st.stop()
st.success("Loaded " + " · ".join(st.session_state.yw_notes))

i1, i2, i3, i4 = st.columns(4)
kind = i1.selectbox("Input", ["sine", "noise", "zeros"], key="yw_input")
T = i2.number_input("Time steps", 2, 500, 50, key="yw_T")
B = i3.number_input("Sequences", 1, 32, 4, key="yw_B")
k = i4.number_input("Truncation window (0 = off)", 0, 500, 0, key="yw_k")
x = example_input(kind, int(B), int(T), module.input_size)
tr = trace(module, x, truncation=int(k) or None)  # default loss: mean square of the final states
snap = Snapshot.from_trace(tr)
runs_gf = analysis.grad_flow_frames_from({"your model": [snap]})

st.markdown("#### ‖∂L/∂h_t‖ (loss: mean square of the final hidden state of each direction)")
ui.chart(figures.grad_norm_vs_time(runs_gf), key="yw_gf")
layer = st.number_input("Layer", 0, module.num_layers - 1, 0, key="yw_layer")
if tr.gates:
    st.markdown("#### Gates, time × unit (first sequence)")
    ui.chart(figures.gate_heatmaps(analysis.gate_frame(snap, layer=layer, direction=0, example=0)), key="yw_gates")
st.markdown("#### Hidden-state trajectories (PCA)")
basis = analysis.pca_basis([snap], layer=layer, direction=0)
ui.chart(figures.pca_trajectories(analysis.pca_frame(snap, basis, layer=layer, direction=0)), key="yw_pca")
