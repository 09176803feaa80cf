"""Connectivity: how far back each prediction reaches (Distill's memorization view), per cell side by side."""

from dataclasses import replace

import streamlit as st

from pages import _ui as ui
from rnnviz import figures, figures_syllabus
from rnnviz.connectivity import MAX_LEN, connectivity_frames, reach_frame
from rnnviz.hello import show_char
from rnnviz.tasks import TASKS

ui.setup()
st.title("Connectivity: how far back do the predictions reach?")
INTRO = (
    "A language model predicts a character at every step *t*. How much does that prediction depend on the "
    "character it read *s* steps earlier? The size of the gradient ‖∂f_t/∂e_s‖ answers it exactly: a "
    "model with a short memory has its colour fall off fast away from the diagonal (after Madsen, "
    "*Visualizing memorization in RNNs*, Distill 2019). Train the cells side by side and watch the reach grow."
)


def _load_char_model() -> None:
    c = ui.controls()
    ui.load_config(replace(c, task="char_lm", seq_len=64, bidirectional=False))


c = ui.controls()
if TASKS[c.task].kind != "many_to_many":
    st.info(f"Connectivity needs a prediction at every step (a many-to-many task: char_lm, hello, copy_memory). "
            f"The current task, **{c.task}**, is {TASKS[c.task].kind.replace('_', '-')}.")
    st.button("Use the character model (char_lm, T = 64) with the current cells", type="primary",
              on_click=_load_char_model, key="cn_load")
    st.markdown(INTRO)
    ui.stop_page()
ui.intro(INTRO)  # under the charts (ui.live draws it), so on a projector the heatmaps come first


def _default(key: str, value: int, hi: int) -> dict:
    """The value= argument of a widget whose maximum changes: the remembered value is kept within it, and no
    default is passed once the widget has a value (Streamlit warns when both are given)."""
    if key not in st.session_state:
        return {"value": value}
    st.session_state[key] = min(st.session_state[key], hi)
    return {}


def _frames(rs, example: int, output: str, token: str, n: int):
    """connectivity_frames, recomputed only when a run has moved on or a setting changed."""
    key = (tuple((label, id(t), t.steps) for label, t in rs.items()), example, output, token, n)
    cached = st.session_state.get("cn_cache")
    if cached is None or cached[0] != key:
        cached = (key, connectivity_frames(rs, example=example, output=output, token=token, max_len=n))
        st.session_state.cn_cache = cached
    return cached[1]


def render(rs):
    first = next(iter(rs.values()))
    B, T = first.probe.x.shape
    slot = st.container()  # the heatmaps, drawn first (above their settings) so they fit a projector's screen
    c1, c2, c3, c4, c5 = st.columns([1, 1, 1.2, 1.2, 1])
    example = c1.number_input("Sequence of the probe batch", 0, B - 1, 0, key="cn_example")
    n_max = min(T, MAX_LEN)
    n = c2.number_input("Steps shown", 2, n_max, key="cn_steps", **_default("cn_steps", min(n_max, 24), n_max),
                        help=f"The first steps of the sequence (at most {MAX_LEN}); exact, since the model is causal")
    output = c3.radio("f_t", ["logit", "log_prob"], horizontal=True, key="cn_output",
                      format_func={"logit": "logit z_t[k]", "log_prob": "log-probability"}.get)
    token = c4.radio("character k", ["target", "predicted"], horizontal=True, key="cn_token",
                     format_func={"target": "target y_t", "predicted": "prediction (argmax)"}.get)
    scale = c5.radio("Colour", ["log", "row"], horizontal=True, key="cn_scale",
                     format_func={"log": "log10", "row": "÷ row max"}.get)
    cf = _frames(rs, int(example), output, token, int(n))
    rf = reach_frame(cf)
    steps = sorted({t.steps for t in rs.values()})
    note = f"Computed from the current weights (step {', '.join(map(str, steps))})"
    if ui.snapshot_step() is not None:
        note += ", not from the replayed snapshot: connectivity needs the weights, which snapshots do not keep"
    with slot:
        ui.chart(figures_syllabus.connectivity_heatmaps(cf, scale=scale), key="cn_heat")
    ui.explain(note + ". C[t, s] for every pair of an output step t and an earlier input step s: each row is one "
               "prediction; left of the diagonal are the characters it has read, the diagonal itself is the "
               "character just read. Log colour: one scale for every cell, so the cells compare directly; ÷ row "
               "max: where each prediction looks, whatever its size.")

    st.markdown("#### The memory of each cell as one curve")
    st.caption("The mean of C[t, t − lag] over the predictions that reach lag steps back: a fast fall-off is a "
               "short memory. Geometric decay is a straight line on this log axis.")
    ui.chart(figures_syllabus.connectivity_reach(rf), key="cn_reach")

    st.markdown("#### One prediction, the text coloured by what it depends on")
    t_sel = st.slider("Prediction at step t", 0, int(n) - 1, key="cn_t", **_default("cn_t", int(n) - 1, int(n) - 1))
    st.caption("Each character read so far, shaded by C[t, s] divided by its largest value in the row "
               "(white: no influence, blue: the most). The character after the arrow is the one to predict.")
    for label in rs:
        row = cf[(cf.run == label) & (cf.t == t_sel)].sort_values("s")
        if row.empty:
            continue
        vals = (row.connectivity / row.connectivity.max()).fillna(0).tolist()
        target = show_char(str(row.target.iloc[0]))
        st.markdown(f"**{label}** → the next character, to predict: **“{target}”**")
        st.html(figures.text_activation_html(list(row.input.astype(str)), vals))
    ui.downloads({"connectivity": cf, "connectivity_reach": rf}, key="cn")


ui.live(render)

with ui.details("The definition"):
    st.latex(r"C[t,s] = \Big\|\frac{\partial f_t}{\partial e_s}\Big\|_2 \quad (s \le t), \qquad "
             r"C[t,s] = 0 \quad (s > t)")
    st.markdown(
        "- **e_s**: the vector the recurrent core reads at step *s*: the embedding of the character x_s "
        "(or its one-hot vector for a one-hot model); the norm is over its components.\n"
        "- **f_t**: one number read from the logits z_t = W_hy h_t + b_y at step *t*: the logit z_t[k] of a "
        "character *k*, or its log-probability log softmax(z_t)[k] (minus the loss at *t* when *k* is the "
        "target). *k* is the target (the true next character) or the model's own prediction (argmax).\n"
        "- Exact, computed from the current weights: one backward pass over copies of the sequence, one copy per "
        "row *t*. Above the diagonal it is exactly zero: the model never reads the future.")
