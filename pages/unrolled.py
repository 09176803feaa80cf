"""The unrolled network: one column per time step, the same weights on every step, where the loss enters, and the
gradient ‖∂L/∂h_t‖ of the latest snapshot flowing back, cut where truncated BPTT detaches the state."""

import pandas as pd
import streamlit as st

from pages import _ui as ui
from rnnviz.hello import show_char
from rnnviz.tasks import TASKS
from rnnviz.unrolled import SHAPES, sequence_shape, unrolled_figure, unrolled_frames, unrolled_note

SHOWN = 8  # steps drawn by default: room for the labels on a 1280 px projector

ui.setup()
st.title("The network unrolled in time")
ui.intro(
    "A recurrent network is one cell applied at every step: unrolled over the sequence it becomes a deep network "
    "whose layers all share the same weights W_xh, W_hh and W_hy. Backpropagation through time is ordinary "
    "backpropagation through this unrolled graph: the loss enters where the outputs are compared with the "
    "targets, and the gradient flows back along the W_hh links, one step at a time."
)

c = ui.controls()
task_shape = sequence_shape(TASKS[c.task])
name, what = SHAPES[task_shape]
st.markdown(f"**{c.task}** is a **{name}** task. {what}")
SHAPE_KEY = f"un_shape_{task_shape}"  # a new task starts on its own shape


def _tokens(t, example: int = 0) -> list[str]:
    """The probe sequence's inputs as short labels (adding: the value, bold where marked)."""
    x = t.probe.x[example]
    if t.task.itos is None:
        return [(f"<b>{u:.2f}</b>" if m > 0 else f"{u:.2f}") for u, m in x.tolist()]
    return [show_char(t.task.itos[i]) for i in x.tolist()]  # a space as ␣, a newline as ↵


def _matrix(pname: str, layers: int) -> str:
    """weight_hh_l1_reverse -> W_hh⁽²⁾ ←."""
    kind = "W_xh" if pname.startswith("weight_ih") else "W_hh"
    layer = int(pname.split("_l")[1].split("_")[0]) + 1
    sup = "⁽" + "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(ch)] for ch in str(layer)) + "⁾" if layers > 1 else ""
    return kind + sup + (" ←" if pname.endswith("_reverse") else "")


def render(rs):
    # the widgets sit under the chart (the chart comes first on a projector): read their values now
    ss = st.session_state
    labels = list(rs)
    label = ss.get("un_run") if ss.get("un_run") in rs else labels[0]
    draw = ss.get(SHAPE_KEY, task_shape)
    max_steps = int(ss.get("un_max", SHOWN))
    t = rs[label]
    snap = ui.current_snapshot(t)
    m, cfg = t.model, t.model_cfg
    T = int(t.probe.x.shape[1])
    on_shape = draw == task_shape
    grad = snap.grad_norm if (snap is not None and on_shape) else None
    kw = {}
    if draw == "seq2seq" and t.task.kind == "seq2seq":
        kw = {"out_len": int(t.probe.y.shape[1]), "attention": m.attention != "none",
              "out_tokens": [t.task.itos[i] for i in t.probe.y[0].tolist()]}
    bidirectional = bool(m.bidirectional) if on_shape else cfg.bidirectional
    nodes, edges = unrolled_frames(cfg.cell, cfg.num_layers, bidirectional, T, draw, truncation=t.cfg.truncation,
                                   grad_norm=grad, tokens=_tokens(t), max_steps=max_steps, **kw)
    step = f"‖∂L/∂h_t‖ at step {snap.step}" if grad is not None else "structure only"
    title = f"{label} unrolled over a probe sequence · {step}"
    ui.chart(unrolled_figure(nodes, edges, title=title,
                             note=unrolled_note(draw, cfg.cell, T, t.cfg.truncation, grad is not None)), key="un_fig")
    ui.explain("One column per time step of the first probe sequence; each arrow is labelled with the matrix it "
               "applies — the same matrix at every step. The loss enters at the loss nodes. "
               + ("Orange arrows run backwards in time: their width and the number in each state are ‖∂L/∂h_t‖ "
                  "(mean over the probe batch); a red bar is a link truncated BPTT detaches: nothing flows back "
                  "across it." if grad is not None else ""))
    c1, c2, c3 = st.columns([2.2, 1.3, 1])
    options = list(SHAPES)
    c1.radio("Draw the network as", options, index=options.index(task_shape), horizontal=True, key=SHAPE_KEY,
             format_func=lambda s: SHAPES[s][0] + (" (this task)" if s == task_shape else ""),
             help="The four sequence shapes. The gradient of your runs is drawn on the task's own shape only.")
    if len(labels) > 1:
        c2.radio("Run", labels, index=labels.index(label), horizontal=True, key="un_run")
    c3.slider("Steps drawn at most", 4, 16, SHOWN, key="un_max",
              help="Longer sequences show their first and last steps with ⋯ between")
    if not on_shape:
        st.caption(f"Drawn as {SHAPES[draw][0]}: {SHAPES[draw][1]} The runs train {name}, so no gradient is drawn "
                   "on this shape.")

    rows = [{"matrix": _matrix(n, cfg.num_layers), "PyTorch parameter": f"core.{n}", "shape": str(tuple(p.shape)),
             "used at": f"all {T} steps"} for n, p in m.core.named_parameters() if n.startswith("weight_")]
    if t.task.kind == "seq2seq":
        T_out = int(t.probe.y.shape[1])
        rows += [{"matrix": _matrix(n, cfg.num_layers).replace("W", "W′", 1), "PyTorch parameter": f"decoder.{n}",
                  "shape": str(tuple(p.shape)), "used at": f"all {T_out} decoder steps"}
                 for n, p in m.decoder.named_parameters() if n.startswith("weight_")]
    rows.append({"matrix": "W_hy", "PyTorch parameter": "out.weight", "shape": str(tuple(m.out.weight.shape)),
                 "used at": "the last step" if t.task.kind == "many_to_one" else "every output step"})
    st.markdown("#### One set of weights, shared by every step")
    ui.explain("This run's weight matrices. However long the sequence, there are only these; each step adds its "
               "own term to their gradient. Gate blocks are stacked (LSTM: i f g o, GRU: r z n), hence 4H or 3H rows.")
    wf = pd.DataFrame(rows, columns=["matrix", "PyTorch parameter", "shape", "used at"])
    st.dataframe(wf, hide_index=True, width="stretch")
    ui.downloads({"unrolled_nodes": nodes, "unrolled_edges": edges, "unrolled_weights": wf}, key="un")


ui.live(render)

with ui.details("The formulas"):
    st.latex(r"h_t = \tanh(W_{xh}\,x_t + W_{hh}\,h_{t-1} + b_h),\qquad \hat y_t = W_{hy}\,h_t + b_y,\qquad "
             r"\frac{\partial L}{\partial W_{hh}} = \sum_t \frac{\partial L}{\partial a_t}\,h_{t-1}^\top")
    st.markdown("Every step adds its own term to the gradient of the one shared W_hh (and of W_xh, W_hy). A stacked "
                "network has its own W_xh⁽ˡ⁾, W_hh⁽ˡ⁾ per layer (layer l reads the layer below); a bidirectional "
                "one a second set (←) that runs from the end to the start. LSTM and GRU keep the same picture: the "
                "cell inside each circle is gated, and an LSTM passes (h_t, c_t) along each link. A "
                "sequence-to-sequence decoder has its own matrices, W′.")
