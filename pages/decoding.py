"""Decoding: a seq2seq model's output for one example, greedy and teacher-forced side by side, from <sos> to the end,
with the attention row of each emitted token."""

import streamlit as st

from pages import _ui as ui
from rnnviz import decoding

ui.setup()
st.title("Decoding: from <sos>, one token at a time")
ui.intro(
    "A sequence-to-sequence model writes its answer one token at a time. The decoder starts from the encoder's "
    "summary s₀ and the token <sos>; at each step it outputs a distribution over the next token. **Greedy** "
    "decoding takes the most likely token (argmax) and feeds it back as the next input, until the model emits "
    "<eos>. **Teacher forcing**, how the model is trained, feeds the true previous token instead, whatever the "
    "model said: so one early mistake cannot derail the rest. The gap between the two is exposure bias."
)
c = ui.controls()
ui.require_seq2seq(c)


def _decode(t, example: int):
    """decoding.decode and the probe batch's accuracies, recomputed only when the run moved on or the example
    changed (the live loop redraws every tick)."""
    key = (id(t), t.steps, example)
    cached = st.session_state.get("dec_cache", {})
    if cached.get("key") != key:
        cached = {"key": key, "d": decoding.decode(t.model, t.task, t.probe, example),
                  "acc": decoding.accuracy_frame(t.model, t.task, t.probe)}
        st.session_state.dec_cache = cached
    return cached["d"], cached["acc"]


def render(rs):
    labels = list(rs)
    default = next((i for i, lab in enumerate(labels) if rs[lab].model.attention != "none"), 0)
    c1, c2, c3 = st.columns([2, 1, 1.4])
    label = c1.radio("Run", labels, index=default, horizontal=True, key="dec_run") if len(labels) > 1 else labels[0]
    t = rs[label]
    B = int(t.probe.x.shape[0])
    example = int(c2.number_input("Example of the probe batch", 0, B - 1, 0, key="dec_example"))
    d, acc = _decode(t, example)
    n = len(d.steps)
    top = max(n - 1, 1)
    if "dec_step" in st.session_state:  # kept within this decoding's steps; no default once the widget has a value
        st.session_state.dec_step = min(st.session_state.dec_step, top)
    hi = int(c3.slider("Highlight step i", 0, top, key="dec_step",
                       **({} if "dec_step" in st.session_state else {"value": 0})))
    ui.explain(f"Decoded with the current weights of {label} (step {t.steps}), not a replayed snapshot: decoding "
               "needs the weights.")
    src = " ".join(d.source)
    greedy = " ".join(tok for tok in d.steps["greedy"] if tok)
    target = " ".join(d.steps["target"])
    st.markdown(f"source **{src}** → target **{target}** · greedy wrote **{greedy}** — stopped at "
                f"{decoding.STOPS[d.stop]}")
    if t.task.eos_id is None:
        ui.explain("These targets have no <eos>: tick **End targets with <eos>** in the sidebar (eos=1 in the "
                   "URL) to train the model to say when it is done, and see greedy decoding stop there.")
    st.markdown("#### The decoded tokens, greedy and teacher-forced")
    ui.explain("Each column is one decoder step; step 0 is fed <sos>. Green: the token equals the target; orange: "
               "it does not. Greedy feeds each of its own tokens into the next step (so one mistake can derail "
               "the rest); teacher forcing feeds the target's token, as in training.")
    ui.chart(decoding.decoded_strip(d.steps, d.stop, highlight=hi), key="dec_strip")
    if d.attention.empty:
        st.caption("This run has no attention: every step reads only the decoder state started from s₀ (the "
                   "bottleneck). Pick a run with attention to see where each token looks.")
    else:
        st.markdown("#### Where each emitted token looked")
        ui.explain("One row per decoder step: the attention weights α_i over the source tokens (each row sums to "
                   "1). The outlined row is the highlighted step. Where greedy has gone wrong its rows can differ "
                   "from the teacher-forced ones: it is conditioned on its own tokens.")
        ui.chart(decoding.decoding_attention(d.attention, d.steps, highlight=hi), key="dec_attention")
    st.markdown("#### Step by step")
    fmt = {k: st.column_config.ProgressColumn(k, min_value=0.0, max_value=1.0, format="%.2f")
           for k in ("p_greedy", "p_tf")}
    st.dataframe(d.steps, hide_index=True, column_config=fmt, width="stretch")
    ui.explain("greedy_input / tf_input: the token fed at that step; p_*: the probability the model gave the token "
               "it chose.")
    g, tf = acc["greedy_accuracy"].mean(), acc["tf_accuracy"].mean()
    st.markdown(f"#### The whole probe batch: greedy {g:.0%} vs teacher-forced {tf:.0%} token accuracy")
    ui.explain("Teacher forcing scores every step given the true history; greedy must live with its own. A "
               "first_greedy_error of −1 means the example was decoded without a mistake.")
    st.dataframe(acc, hide_index=True, width="stretch")
    ui.downloads({"decoding_steps": d.steps, "decoding_attention": d.attention, "decoding_accuracy": acc},
                 key="dec")


ui.live(render)

with ui.details("The decoding loop"):
    st.latex(r"y_0 = \langle sos\rangle,\quad p_i = \operatorname{softmax}(W_{hy}\, s_{i+1}),\quad "
             r"s_{i+1} = \operatorname{cell}(E\,y_i,\ s_i\ [,\ c_i]),\quad "
             r"y_{i+1} = \begin{cases}\arg\max_k p_i[k] & \text{greedy}\\ y^{\ast}_i & \text{teacher forcing}"
             r"\end{cases}")
    st.markdown("c_i = Σ_j α_ij h_j is the attention context (if the model has attention); α_i, one row of the "
                "attention map, is where step i looked. Greedy decoding stops at <eos>. These tasks' targets have "
                "a fixed length T; with **End targets with <eos>** ticked in the sidebar (`eos=1` in the URL; "
                "`make_task('reverse', eos=True)` in a notebook) every target ends with <eos>, the model learns to "
                "emit it, and greedy decoding stops when it does (or at 2T tokens, marked *cut*). Without it "
                "greedy stops after T tokens, shown as <eos>* at the end.")
