"""Padding and packing: sequences of different lengths in one batch, run packed (pack_padded_sequence), padded with
a mask, and padded with the lengths ignored; exact zero gradient at the pads and for the padding_idx row."""

import json

import streamlit as st

from pages import _ui as ui
from rnnviz import figures, packing
from rnnviz.models import ModelConfig

CELLS = {"rnn_tanh": "RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}
TASKS = {"sentiment": "sentiment (words)", "parity": "parity (bits)"}

ui.setup(training_controls=False)
st.title("Padding and packing: a batch of different lengths")
ui.explain_md(
    "Sequences in a batch rarely have the same length. They are **padded** with a pad token to the longest one, "
    "so they fit in one (batch, time) tensor, and the model is told each sequence's **length**. PyTorch's "
    "`pack_padded_sequence` then runs each sequence only over its own steps: the pads are never read, so they "
    "get **exactly zero gradient** and cannot change h_n, the final state. Masking the padded batch step by "
    "step does the same. Ignoring the lengths does not. Train a small classifier both ways here."
)

# -- this page's model: its own settings, two copies trained in lockstep ------------------------------------------
c1, c2, c3, c4, c5, c6 = st.columns([1.4, 1, 1.1, 0.8, 1.1, 0.8])
task = c1.selectbox("Task", list(TASKS), format_func=TASKS.get, key="pad_task",
                    help="Both draw each sequence's length uniformly from T/2 to T and pad the rest with token 0")
T = int(c2.number_input("Padded length T", 4, 24, 12, key="pad_T"))
cell = c3.selectbox("Cell", list(CELLS), index=2, format_func=CELLS.get, key="pad_cell")
layers = int(c4.number_input("Layers", 1, 2, 1, key="pad_layers"))
bi = c5.toggle("Bidirectional", key="pad_bi", help="The backward direction starts at the end of the batch: "
               "without packing it reads the pads first")
seed = int(c6.number_input("Seed", 0, 1000, 0, key="pad_seed"))
settings = (task, T, cell, layers, bi, seed)
if st.session_state.get("pad_settings") != settings or "pad_run" not in st.session_state:
    st.session_state.pad_run = packing.PackingRun(
        ModelConfig(cell=cell, hidden_size=16, num_layers=layers, bidirectional=bi, embed_dim=8, seed=seed),
        task, T, batch_size=32, lr=1e-2, seed=seed)
    st.session_state.pad_settings = settings
run: packing.PackingRun = st.session_state.pad_run

b1, b2, b3, b4 = st.columns([1, 1, 1, 3])
if b1.button("Train 20 steps", key="pad_train20", width="stretch"):
    run.step(20)
if b2.button("Train 100 steps", key="pad_train100", type="primary", width="stretch"):
    run.step(100)
if b3.button("New model", key="pad_reset", width="stretch", help="Fresh random weights, same settings"):
    st.session_state.pop("pad_run")
    st.rerun()
hist = run.history_frame()
if len(hist):
    last = hist.groupby("run").tail(1)
    b4.markdown(f"**step {run.steps}** · " + " · ".join(f"{r.run}: loss {r.loss:.3f}, accuracy {r.metric:.0%}"
                                                         for r in last.itertuples()))
else:
    b4.markdown(f"**step 0**: random weights (loss baseline ln 2 = {run.task.baseline:.3f}). Press Train.")

probe = run.probe
frames = packing.inspect(run.models["packed"], run.task, probe)
bf, sf, ef = frames["batch"], frames["states"], frames["embedding"]
pad_tok = run.task.itos[run.task.pad_id]

# -- the padded batch --------------------------------------------------------------------------------------------
st.markdown("#### The padded batch and its lengths")
ui.explain(f"Eight sequences of the probe batch: row = sequence, column = time step. Each is padded with "
           f"{pad_tok} up to T = {T}; `lengths` is what tells the model where each one ends.")
pf = packing.padded_batch_frame(run.task, probe)
st.dataframe(pf.style.map(lambda v: "color: #9a9a9a; background-color: #eeeeee" if v == pad_tok else ""),
             hide_index=True, width="stretch")
st.code(f"x.shape = {tuple(probe.x.shape)}   # (batch, T), padded with {run.task.pad_id}\n"
        f"lengths = {probe.lengths.tolist()}", language="python")

# -- the gradient reaching each input -------------------------------------------------------------------------------
st.markdown("#### Which positions the loss reaches: ‖∂L/∂e_t‖")
show_masked = st.toggle("Also show the padded + masked run", key="pad_show_masked",
                        help="It equals the packed one: the same numbers, pads at exactly 0")
methods = ("packed", "masked", "padded") if show_masked else ("packed", "padded")
ui.explain("The size of the gradient of the batch's loss with respect to each embedded input e_t. Packed: every "
           "pad is exactly 0 (grey), nothing reads it. With the lengths ignored the pads are read like words: "
           "they get gradient and shift the final state.")
ui.chart(packing.input_grad_figure(bf, methods=methods, pad_token=pad_tok), key="pad_grads")
n_pad = int((~bf["valid"]).sum())
zeros = {m: int((bf.loc[~bf["valid"], f"grad_{m}"] == 0).sum()) for m in packing.METHODS}
st.markdown(f"Pads with exactly zero gradient: packed **{zeros['packed']} of {n_pad}**, masked "
            f"**{zeros['masked']} of {n_pad}**, lengths ignored **{zeros['padded']} of {n_pad}**.")

# -- h_n -------------------------------------------------------------------------------------------------------------
st.markdown("#### h_n is the state at each sequence's own last step")
ui.explain("Largest difference in h_n (every layer and direction) per sequence. masked_vs_packed: the masked loop "
           "against pack_padded_sequence (float rounding only). *_pads_replaced: the same run after writing random "
           "words into the pads (0: the pads do not change h_n). padded_vs_packed: ignoring the lengths changes h_n "
           "of every sequence shorter than T.")
num = {k: st.column_config.NumberColumn(k, format="%.2e") for k in sf.columns if k not in ("seq", "length", "label")}
num["p_label"] = st.column_config.ProgressColumn("p_label", min_value=0.0, max_value=1.0, format="%.2f",
                                                 help="The packed model's probability of the right label")
st.dataframe(sf, hide_index=True, column_config=num, width="stretch")

# -- the embedding's padding_idx ----------------------------------------------------------------------------------
st.markdown("#### The embedding's pad row never learns")
ui.explain(f"nn.Embedding(..., padding_idx={run.task.pad_id}): the {pad_tok} row is all zeros and its gradient is "
           "exactly zero, however often the pad appears; the other rows get gradient from the sequences they are "
           "in (packed run, this batch).")
ui.chart(packing.embedding_grad_figure(ef), key="pad_embed")

# -- training --------------------------------------------------------------------------------------------------------
st.markdown("#### Packed and masked: two ways to the same function")
ui.explain(f"Two copies with the same initial weights, trained on the same batches, one packed and one masked. The "
           f"curves lie on top of each other: largest loss difference so far {run.max_loss_gap():.1e} (float32 "
           f"rounding: the masked loop and the fused kernel add in different orders).")
ui.chart(figures.loss_curves(hist), key="pad_loss")

with st.expander("The same in PyTorch", expanded=False):
    st.caption("Runs as is: pads and lengths, the packed call, h_n, and the two zero gradients this page shows.")
    st.code(packing.packing_snippet(cell), language="python")

ui.downloads({"padded_batch": pf, "input_gradients": bf, "final_states": sf, "embedding_gradients": ef,
              "padding_history": hist}, key="pad", static=True)
st.download_button("⬇ padding_model.json", lambda: json.dumps(
    {"model": run.model_cfg.to_dict(), "task": task, "seq_len": T, "batch_size": run.batch_size, "lr": run.lr,
     "seed": run.seed, "steps": run.steps}, indent=2).encode(), file_name="padding_model.json",
    mime="application/json", key="dl_pad_model", on_click="ignore",
    help="The settings of this page's models (the config.json beside it holds the training pages' settings)")
