"""Home: what each page shows, presets for lecturers, and the shape explainer."""

import streamlit as st

from pages import _ui as ui
from rnnviz import theory
from rnnviz.models import ModelConfig
from rnnviz.presets import PRESETS
from rnnviz.tasks import make_task

ui.setup(home=True)
st.title("rnnviz — inside recurrent networks, live")
st.markdown(
    "Train small **RNN, LSTM and GRU** models right here and watch what happens inside them while they learn. "
    "Load a preset below, or press **▶ Start** in the sidebar: it opens the page the runs are shown on. Every "
    "control there is mirrored in the URL, so a link reproduces a demo."
)

st.subheader("Presets")
cols = st.columns(3)
for i, p in enumerate(PRESETS):
    with cols[i % 3].container(border=True):
        st.markdown(f"**{p.name}**")
        st.caption(p.blurb)
        st.caption(f"Checked after {p.steps} steps: " + "; ".join(cl.describe() for cl in p.claims))
        st.button("Load this demo", key=f"preset_{i}", on_click=ui.apply_preset, args=(p.name,), width="stretch")

st.subheader("Pages")
st.markdown(
    """
- **Gradient flow** — ‖∂L/∂h_t‖ at every time step on a log axis, how it changes while the model learns,
  RNN vs LSTM vs GRU on the same seed and data, the decay the recurrent matrix predicts, and clipping.
- **Gates** — LSTM input / forget / cell / output gates and the cell state, GRU reset / update / new,
  per time step and unit, and how saturated they get during training.
- **Hidden states** — PCA trajectories of h_t in a basis fixed across training, unit × time heatmaps,
  and for the character model the text coloured by a unit's activation.
- **Attention** — an encoder–decoder with attention learning a toy task: where each output looks,
  and how accuracy depends on length with and without attention.
- **Training & replay** — loss and metric against the trivial baseline, per-layer gradient norms,
  and a scrubber that replays the recorded snapshots on every page.
- **Connectivity** — how strongly each prediction depends on each earlier input, ‖∂f_t/∂e_s‖, per cell.
- **“hello” step by step** — the four-letter character RNN as taught: one-hot inputs, h_t, logits, softmax.
- **Unrolled network** — the network drawn over time with its shared weights and ‖∂L/∂h_t‖ flowing back.
- **Padding & packing** — a batch of different lengths, packed vs masked: pads get exactly zero gradient.
- **Decoding** — seq2seq output from <sos>, greedy vs teacher-forced, stopping at <eos>.
- **Phase diagram** — vanishing and exploding regions over weight scale × sequence length, at initialisation.
- **Your weights** — upload a `state_dict` of your own nn.RNN / LSTM / GRU and look inside it.
"""
)

st.subheader("Shapes of the current configuration")
c = ui.controls()
task = make_task(c.task, c.seq_len)
in_size = ModelConfig().embed_dim if task.vocab_size else task.input_dim  # token tasks read an embedding
bf = st.radio("Layout", [True, False], horizontal=True, key="home_bf",
              format_func=lambda b: "batch_first=True (as here)" if b else "batch_first=False (PyTorch's default)")
shapes = theory.shapes_frame(c.cells, c.batch_size, c.seq_len, c.hidden_size, c.num_layers, c.bidirectional,
                             batch_first=bf, input_size=in_size)
st.table(shapes, hide_index=True)  # a static table: the "why" column wraps instead of being cut off
st.caption("h_n (and c_n for an LSTM) stay layers·directions first whatever batch_first says. Run this to see "
           "the same shapes:")
st.code(theory.shapes_snippet(c.cells[0], c.batch_size, c.seq_len, in_size, c.hidden_size, c.num_layers,
                              c.bidirectional, bf, dropout=c.dropout), language="python")
