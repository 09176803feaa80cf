"""Hello: the classic character RNN as taught: one-hot inputs, h_t, logits, softmax and the next character."""

import json

import pandas as pd
import streamlit as st

from pages import _ui as ui
from rnnviz import figures_syllabus, hello, theory
from rnnviz.models import ModelConfig
from rnnviz.training import TrainConfig, Trainer

CELLS = {"rnn_tanh": "RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}
HIDDEN = [2, 3, 4, 8, 16]
MAX_TEXT = 12

ui.setup(training_controls=False)
st.title("“hello”: a character RNN, one step at a time")
ui.explain_md(
    "The smallest language model: the vocabulary is **e, h, l, o**, each character a **one-hot** vector x_t, "
    "and the network reads “hell” and should answer “ello”, one character per step. After an *l* the answer "
    "is *l* or *o*, so the hidden state must remember how many *l*s it has seen. The same weights are used at "
    "every step. Train it here (a few hundred steps take a second), then read the numbers."
)
st.latex(r"x_t = \text{one-hot}(c_t),\qquad h_t = \tanh(W_{xh}\,x_t + W_{hh}\,h_{t-1} + b_h)")  # two lines: no
st.latex(r"z_t = W_{hy}\,h_t + b_y,\qquad p_t = \operatorname{softmax}(z_t),\qquad "  # cut-off on a projector
         r"\hat c_{t+1} = \arg\max_k p_t[k]")


# -- the model: settings of this page, its own small trainer in this session -----------------------------------
c1, c2, c3, c4, c5 = st.columns([1.2, 1.3, 1.4, 1, 1])
cell = c1.selectbox("Cell", list(CELLS), format_func=CELLS.get, key="hello_cell",
                    help="LSTM and GRU replace the tanh line of the formula by their gated update")
hidden = c2.select_slider("Hidden size H", HIDDEN, value=4, key="hello_hidden")
encoding = c3.radio("Input x_t", ["one-hot", "embedding"], horizontal=True, key="hello_input",
                    help="one-hot: the core reads the one-hot vector itself, as taught; embedding: a learned "
                         "vector per character (nn.Embedding), as the other pages' models do")
seq_len = c4.number_input("Window T", 4, 10, 4, key="hello_T", help="4: read “hell”, predict “ello”")
seed = c5.number_input("Seed", 0, 1000, 0, key="hello_seed")
settings = (cell, int(hidden), encoding, int(seq_len), int(seed))
if st.session_state.get("hello_settings") != settings or "hello_trainer" not in st.session_state:
    st.session_state.hello_trainer = Trainer(
        ModelConfig(cell=cell, hidden_size=int(hidden), one_hot=encoding == "one-hot", embed_dim=4, seed=int(seed)),
        TrainConfig(task="hello", seq_len=int(seq_len), batch_size=16, lr=3e-2, seed=int(seed), snapshot_every=0))
    st.session_state.hello_settings = settings
tr: Trainer = st.session_state.hello_trainer

b1, b2, b3, b4 = st.columns([1, 1, 1, 3])
if b1.button("Train 10 steps", key="hello_train10", width="stretch"):
    tr.step(10)
if b2.button("Train 100 steps", key="hello_train100", type="primary", width="stretch"):
    tr.step(100)
if b3.button("New model", key="hello_reset", width="stretch", help="Fresh random weights, same settings"):
    st.session_state.pop("hello_trainer")
    st.rerun()
hist = tr.history_frame()
if len(hist):
    last = hist.iloc[-1]
    b4.markdown(f"**step {tr.steps}** · loss {last.loss:.3f} (baseline {tr.task.baseline:.3f}: the letter "
                f"frequencies) · accuracy {last.metric:.0%}")
else:
    b4.markdown(f"**step 0**: random weights. Loss baseline {tr.task.baseline:.3f} (predicting the letter "
                "frequencies). Press Train.")
if tr.diverged:
    st.error(tr.message)

# -- reading a word, step by step ----------------------------------------------------------------------------
st.markdown("#### Reading a word, step by step")
text = st.text_input("Characters to read (e, h, l, o)", "hell", max_chars=MAX_TEXT, key="hello_text")
try:
    table = hello.step_table(tr.model, tr.task, text)
except ValueError as exc:
    st.error(f"Cannot read {text!r}: {exc}")
    st.stop()
st.caption("One row per step. x: the input's one-hot vector; h: the hidden state after reading it (top layer); "
           "z: the logits W_hy h_t + b_y; p: their softmax, which sums to 1; predicted: the character with the "
           "largest p; target: the next character of the text.")
fmt = {c: st.column_config.NumberColumn(c, format="%.3f") for c in table.columns if c[:2] in ("h[", "z[", "p[")}
fmt.update({c: st.column_config.NumberColumn(c, format="%d") for c in table.columns if c.startswith("x[")})
fmt["p_predicted"] = st.column_config.ProgressColumn("p_predicted", min_value=0.0, max_value=1.0, format="%.2f")
# the answer first (a wide table scrolls sideways), then the vectors in the order they are computed
order = ["t", "input", "predicted", "p_predicted", "target"] + [c for c in table.columns if c[:2] in ("x[", "h[")] \
    + [c for c in table.columns if c[:2] in ("z[", "p[")]
st.dataframe(table, hide_index=True, column_config=fmt, column_order=order, width="stretch")
ui.chart(figures_syllabus.softmax_steps(table), key="hello_softmax")

st.markdown("#### The weights: one set for every step")
st.caption("With one-hot inputs W_xh x_t is just the column of W_xh for the character read: that column is "
           "all the input contributes. W_hh carries the state from step to step; W_hy scores each next "
           "character. LSTM/GRU: rows are grouped by gate (i f g o, or r z n).")
wf = hello.weights_frame(tr.model, tr.task)
ui.chart(figures_syllabus.weight_heatmaps(wf), key="hello_weights")

# -- greedy generation, one character at a time ----------------------------------------------------------------
st.markdown("#### Generate greedily, one character at a time")
st.caption("One-to-many: read a character, take the argmax of the softmax as the next character, feed it back "
           "in with the new state. Press Next to take one step."
           + (" With window T = 4 the model only ever reads “hell”: what it says after an o is a guess it was "
              "never trained for. With a window of 6 or more it learns to go round: hellohello…"
              if int(seq_len) == 4 else ""))
g1, g2, g3 = st.columns([1, 1, 1])
start = g1.selectbox("Start with", tr.task.itos, index=tr.task.itos.index("h"), key="hello_start")
gen_key = (id(tr), tr.steps, start)
gen = st.session_state.get("hello_gen")
if gen is None or gen["key"] != gen_key:
    gen = st.session_state.hello_gen = {"key": gen_key, "state": None, "char": start, "rows": []}


def _next_char() -> None:
    g = st.session_state.hello_gen
    s = hello.greedy_step(tr.model, tr.task, g["state"], g["char"])
    g["rows"].append({**s.row, "t": len(g["rows"])})
    g["state"], g["char"] = s.state, s.char


def _start_over() -> None:
    st.session_state.pop("hello_gen", None)


g2.button("Next character ▶", on_click=_next_char, type="primary", key="hello_next", width="stretch",
          disabled=len(gen["rows"]) >= 40)
g3.button("Start over", on_click=_start_over, key="hello_restart", width="stretch")
gen_df = pd.DataFrame(gen["rows"], columns=hello.columns(tr.task, tr.model.core.hidden_size))
generated = start + "".join(gen_df["predicted"])
st.markdown(f"### `{generated}`")
if len(gen_df):  # no target column: generation has no text to compare with
    st.dataframe(gen_df, hide_index=True, column_config=fmt, column_order=[c for c in order if c != "target"],
                 width="stretch")
    ui.chart(figures_syllabus.softmax_steps(gen_df), key="hello_gen_softmax")

with st.expander("The same model in PyTorch: shapes", expanded=False):
    T, V, H = len(text), tr.task.vocab_size, tr.model.core.hidden_size
    st.caption(f"Reading the {T} characters above as one batch of 1: x is (batch, time, vocabulary) with one-hot "
               "rows. The snippet runs as is and prints these shapes.")
    shapes = theory.output_shapes(1, T, H, 1, False, cell, batch_first=True, input_size=V)
    st.dataframe([{"tensor": k, "shape": str(v[0]), "why": v[1]} for k, v in shapes.items()], hide_index=True,
                 width="stretch")
    st.code(theory.shapes_snippet(cell, 1, T, V, H), language="python")

ui.downloads({"hello_steps": table, "hello_generation": gen_df, "hello_weights": wf}, key="hello", static=True)
st.download_button("⬇ hello_model.json", lambda: json.dumps({**tr.config_dict(), "steps": tr.steps}, indent=2).encode(),
                   file_name="hello_model.json", mime="application/json", key="dl_hello_model", on_click="ignore",
                   help="The settings of this page's model (the config.json beside it holds the training pages' "
                        "settings)")
