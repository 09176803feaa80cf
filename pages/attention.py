"""Attention: an encoder-decoder learning a toy task live; where each output step looks; the bottleneck."""

import streamlit as st

from pages import _ui as ui
from rnnviz import analysis, figures
from rnnviz.training import accuracy_vs_length

ui.setup()
st.title("Attention vs the bottleneck")
ui.intro(
    "A plain encoder–decoder squeezes the whole source into **one vector** (the encoder's last state) and the "
    "decoder must unpack everything from it. Attention lets each decoder step take a weighted average of *all* "
    "encoder states: α_ij = softmax_j(score(s, h_j)), c_i = Σ_j α_ij h_j. Bahdanau scores with the previous "
    "decoder state s_{i−1} and the token just emitted y_{i−1} (additive: vᵀ tanh(W s_{i−1} + W_y y_{i−1} + U h_j)); "
    "Luong with the current state (dot or general sᵀ W h_j)."
)

c = ui.controls()
ui.require_seq2seq(c)


def render(rs):
    att = {label: t for label, t in rs.items() if t.model.attention != "none"}
    label, t = next(iter(att.items()))
    snap = ui.current_snapshot(t)
    if snap is None or snap.attention is None:
        return
    B = snap.attention.shape[0]
    example = st.session_state.get("att_example", 0)  # its input sits under the chart (the chart comes first)
    af = analysis.attention_frame(snap.attention, example)
    src = [t.task.itos[i] for i in t.probe.x[example].tolist()]
    tgt = [t.task.itos[i] for i in t.probe.y[example].tolist()]
    ideal = {"reverse": "anti-diagonal", "copy": "diagonal"}.get(t.task.name)
    st.markdown(f"#### Where each output looks — {label}, step {snap.step}")
    ui.chart(figures.attention_heatmap(af, src, tgt, ideal=ideal), key="att_heat")
    # how to read it, under the chart: with the claims open at N the heatmap still fits a 1280x800 screen
    ui.explain("Rows: decoder steps (the target token each should produce); columns: encoder steps (source "
               "tokens). Each row sums to 1. Dotted: the alignment the task calls for (reverse: output i reads "
               "source T−1−i). The preset's claim measures the share of the weight on it.")
    st.number_input("Example from the probe batch", 0, B - 1, key="att_example")
    st.markdown("#### Token accuracy (teacher forcing), with and without attention")
    ui.chart(lambda: figures.loss_curves(analysis.history_frames(rs), metric=True), key="att_acc",
             every=ui.LIVE_EVERY)
    ui.downloads({"attention": af, "history": lambda: analysis.history_frames(rs)}, key="att")


ui.live(render)

st.divider()
st.markdown("#### Accuracy vs sequence length (greedy decoding, fresh models per length)")
st.caption("Trains a small model per length with and without attention (300 steps each) and decodes without "
           "teacher forcing. Without attention accuracy falls as the sequence outgrows the one context vector.")
key = ("acc_len", c.run_key())
if st.button("Run the length sweep (about 15–30 s)", key="att_sweep"):
    bar = st.progress(0.0, text="training models at each length…")
    first = next(iter(ui.runs().values()))  # the attention run's settings, fresh models per length
    mc, tc = first.model_cfg, first.cfg
    df = accuracy_vs_length(mc, tc, lengths=[4, 8, 12, 16, 24], attentions=("none", "luong_general"),
                            steps=300, progress=lambda f: bar.progress(f, text=f"{f:.0%} done"))
    st.session_state[str(key)] = df
    bar.empty()
if str(key) in st.session_state:
    df = st.session_state[str(key)]
    ui.chart(figures.accuracy_vs_length(df), key="att_len")
    ui.downloads({"accuracy_vs_length": df}, key="att_len")
