"""Your weights: upload a state_dict of an nn.RNN / LSTM / GRU and look inside it on a chosen input."""

import streamlit as st

from pages import _ui as ui
from rnnviz import analysis, figures, trace
from rnnviz.training import Snapshot
from rnnviz.weights import (
    MAX_PROBE_BATCH,
    MAX_PROBE_STEPS,
    MAX_UPLOAD_BYTES,
    Spec,
    example_input,
    fit_probe,
    load_recurrent_state_dict,
    max_params,
    upload_key,
)

ui.setup(training_controls=False)
st.title("Look inside your own weights")
st.markdown(
    "Save the recurrent part of your model with `torch.save(model.rnn.state_dict(), 'rnn.pt')` (or the whole "
    "model's state_dict: the one recurrent module in it is found) and upload it. It is loaded with "
    "`torch.load(..., weights_only=True)`: tensors only, nothing in the file is executed. Limits: "
    f"{MAX_UPLOAD_BYTES // 2**20} MB per file, and a model no costlier to trace than the largest one the sidebar "
    f"trains (about {max_params('lstm') / 1e6:.1f} M parameters for an LSTM, {max_params('gru') / 1e6:.1f} M for "
    f"a GRU, {max_params('rnn_tanh') / 1e6:.1f} M for an RNN), checked on the shapes the file declares before "
    "anything is built."
)


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:.1f} MB"


c1, c2 = st.columns([2, 1])
up = c1.file_uploader("state_dict (.pt / .pth)", type=["pt", "pth", "bin"], key="yw_file")
c1.caption(f"A file over {MAX_UPLOAD_BYTES // 2**20} MB is refused by the uploader itself, which says so under "
           "the file name; it is never sent to the server.")
claimed = c2.selectbox("It is a", ["auto", "rnn_tanh", "rnn_relu", "lstm", "gru"], key="yw_kind",
                       help="A vanilla RNN's weights don't say tanh or relu: pick it if needed")
if up is None:  # removed: the same file uploaded again is read again; the loaded model stays
    st.session_state.yw_key = st.session_state.yw_error = None
else:
    data = up.getvalue()
    key = upload_key(data, claimed)  # the content decides, not the name or size: a re-upload is never ignored
    if st.session_state.get("yw_key") != key:
        try:
            module, notes = load_recurrent_state_dict(data, claimed)
            st.session_state.yw_module, st.session_state.yw_notes = module, notes
            st.session_state.yw_name, st.session_state.yw_error = up.name, None
        except (ValueError, TypeError) as exc:
            st.session_state.yw_error = f"{up.name} ({_size(len(data))}): {exc}"  # the previous model is kept
        st.session_state.yw_key = key
module = st.session_state.get("yw_module")
if st.session_state.get("yw_error"):
    kept = f" Still showing the previous file, {st.session_state.yw_name}." if module is not None else ""
    st.error(f"Not loaded: {st.session_state.yw_error}.{kept}")
if module is None:
    st.info("No weights loaded yet.")
    st.stop()
st.success(f"Loaded {st.session_state.yw_name}: " + " · ".join(st.session_state.yw_notes))

i1, i2, i3, i4 = st.columns(4)
kind = i1.selectbox("Input", ["sine", "noise", "zeros"], key="yw_input")
T = i2.number_input("Time steps", 2, MAX_PROBE_STEPS, 50, key="yw_T")
B = i3.number_input("Sequences", 1, MAX_PROBE_BATCH, 4, key="yw_B")
k = i4.number_input("Truncation window (0 = off)", 0, MAX_PROBE_STEPS, 0, key="yw_k")
probe = fit_probe(Spec.of(module), int(B), int(T))  # the upload budget: fewer sequences, then fewer steps
if probe.note:
    st.warning(f"Limited by the upload budget: {probe.note}.")
x = example_input(kind, probe.batch, probe.steps, module.input_size)  # (B, T, in)
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
