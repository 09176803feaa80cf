"""Seq2seq decoding, one token at a time: greedy (each argmax fed back) and teacher-forced (the true previous token
fed), side by side, with the attention row of every emitted token.

    d = decode(model, task, batch, example=0)          # model: rnnviz.models.Seq2SeqModel
    d.steps                                            # one row per decoder step: inputs, tokens, probabilities
    d.attention                                        # mode, step, enc, weight (empty without attention)
    decoded_strip(d.steps, d.stop).show(); decoding_attention(d.attention, d.steps).show()

Both modes run the same step loop over the model's own decoder (Seq2SeqModel._start / _decode), in eval mode:

    s_0 = tanh(W_b last_state(encoder(x)))            the context vector, every decoder layer
    y_0 = <sos>  (task.bos_id)
    step i:  logits_i, s_{i+1}, alpha_i = decoder(y_i, s_i, encoder states)      alpha_i (T_in,) with attention
             greedy:          y_{i+1} = argmax_k logits_i[k]       (the model's own output fed back)
             teacher-forced:  y_{i+1} = target_i                    (the true token fed, whatever the model said)
    greedy stops after emitting <eos> (tasks built with eos=True) or after max_len steps.

The reverse / copy / sort tasks have targets of a fixed length T and, unless built with eos=True, no <eos>
token: greedy decoding then stops after T steps, and `stop` says so ("length") instead of pretending the model
chose to stop. Teacher forcing always runs the target's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from rnnviz.figures import TEXT, _empty, _figure, _is_empty, _layout
from rnnviz.tasks import Batch

MODES = ("greedy", "teacher_forced")
MODE_NAMES = {"greedy": "greedy (own output fed back)", "teacher_forced": "teacher-forced (true token fed)"}
STOPS = {"eos": "the model emitted <eos>", "length": "the target length T (this task has no <eos> token)",
         "max_len": "the maximum length, without an <eos>"}
STEP_COLUMNS = ["step", "target", "greedy_input", "greedy", "p_greedy", "greedy_correct", "tf_input",
                "teacher_forced", "p_tf", "tf_correct"]


@dataclass
class Run:
    """One decoded sequence: tokens[i] is the token chosen at step i (the input of step i+1)."""

    inputs: list[int]  # (n,) the token fed at each step; inputs[0] = <sos>
    tokens: list[int]  # (n,) argmax at each step
    logits: Tensor  # (n, V)
    attention: Tensor | None  # (n, T_in), rows sum to 1; None without attention
    stop: str  # "eos" | "length" | "max_len" (greedy); "length" (teacher-forced)


def example_batch(batch: Batch, example: int) -> Batch:
    """The example-th sequence of a batch as a batch of one."""
    sl = slice(example, example + 1)
    return Batch(x=batch.x[sl], y=batch.y[sl], lengths=None if batch.lengths is None else batch.lengths[sl],
                 y_in=None if batch.y_in is None else batch.y_in[sl])


@torch.no_grad()
def _loop(model, batch: Batch, feed: Tensor | None, max_len: int, eos_id: int | None):
    """The decoder one token at a time over a batch. feed (B, max_len) = the tokens to feed after <sos> (teacher
    forcing) or None (greedy: the argmax fed back; an example stops at eos_id, the loop when all have).
    Returns inputs (B, n), tokens (B, n), logits (B, n, V), attention (B, n, T_in) | None, steps (B,) run by each
    example (n = the longest)."""
    was_training = model.training
    model.eval()
    try:
        enc = model.core(model.core_input(batch))[0]  # (B, T_in, D*H)
        B = enc.shape[0]
        state, mem = model._start(enc, batch.lengths)
        tok = torch.full((B, 1), model.bos_id, dtype=torch.long)
        steps = torch.full((B,), max_len, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        inputs, tokens, logits, attns = [], [], [], []
        for i in range(max_len):
            inputs.append(tok[:, 0])
            lg, state, a = model._decode(tok, state, mem)  # (B, 1, V), state, (B, 1, T_in) | None
            k = lg[:, -1].argmax(-1)  # (B,)
            tokens.append(k)
            logits.append(lg[:, -1])
            if a is not None:
                attns.append(a[:, -1])
            if feed is None:
                tok = k[:, None]
                if eos_id is not None:
                    new = (k == eos_id) & ~done
                    steps[new] = i + 1
                    done |= new
                    if done.all():
                        break
            else:
                tok = feed[:, i:i + 1]
        V = model.out.out_features
        stack = (lambda xs, *shape: torch.stack(xs, 1) if xs else torch.zeros(B, 0, *shape))  # noqa: E731
        return (stack(inputs).long(), stack(tokens).long(), stack(logits, V),
                torch.stack(attns, 1) if attns else None, steps.clamp(max=len(tokens)))
    finally:
        model.train(was_training)


def _run(out, b: int, stop: str) -> Run:
    inputs, tokens, logits, attn, steps = out
    n = int(steps[b])
    return Run(inputs=inputs[b, :n].tolist(), tokens=tokens[b, :n].tolist(), logits=logits[b, :n],
               attention=None if attn is None else attn[b, :n], stop=stop)


def _stops(out, eos_id: int | None, max_len: int, default: bool) -> list[str]:
    tokens, steps = out[1], out[4]
    return ["eos" if eos_id is not None and int(n) > 0 and int(tokens[b, int(n) - 1]) == eos_id
            else ("length" if default and eos_id is None else "max_len") for b, n in enumerate(steps)]


def _greedy_all(model, task, batch: Batch, max_len: int | None = None):
    eos = getattr(task, "eos_id", None)
    T = batch.y.shape[1] if batch.y is not None else batch.x.shape[1]
    n = max_len if max_len is not None else (2 * T if eos is not None else T)
    out = _loop(model, batch, None, n, eos)
    return out, _stops(out, eos, n, max_len is None)


def greedy(model, task, batch: Batch, max_len: int | None = None) -> Run:
    """Greedy decoding of a batch of one: <sos>, then each argmax fed back, until <eos> (if task.eos_id) or
    max_len steps (default: the target's length; twice it when the task has an <eos>, so that stopping is the
    model's own doing)."""
    out, stops = _greedy_all(model, task, batch, max_len)
    return _run(out, 0, stops[0])


def teacher_forced(model, batch: Batch) -> Run:
    """Teacher forcing on a batch of one, step by step: <sos>, then the true previous token each step."""
    return _run(_loop(model, batch, batch.y, batch.y.shape[1], None), 0, "length")


@dataclass
class Decoding:
    steps: pd.DataFrame
    attention: pd.DataFrame
    stop: str
    source: list[str]
    greedy: Run
    teacher: Run


def _name(task, i: int) -> str:
    return task.itos[i] if 0 <= i < len(task.itos) else str(i)


def decode(model, task, batch: Batch, example: int = 0, max_len: int | None = None) -> Decoding:
    """Greedy and teacher-forced decoding of one example, as tidy frames.

    steps      step, target, greedy_input, greedy, p_greedy, greedy_correct, tf_input, teacher_forced, p_tf,
               tf_correct (p_*: the softmax probability of the chosen token); one row per step of the longer of
               the two runs, blanks (NaN / "") where a run has no such step
    attention  mode, step, token (the token emitted at that step), enc, source (the source token), weight
    """
    b = example_batch(batch, example)
    g, tf = greedy(model, task, b, max_len), teacher_forced(model, b)
    target = b.y[0].tolist()
    n = max(len(g.tokens), len(tf.tokens))
    pg = torch.softmax(g.logits.double(), -1) if len(g.tokens) else None
    pt = torch.softmax(tf.logits.double(), -1)
    rows = []
    for i in range(n):
        r = {"step": i, "target": _name(task, target[i]) if i < len(target) else ""}
        if i < len(g.tokens):
            r.update(greedy_input=_name(task, g.inputs[i]), greedy=_name(task, g.tokens[i]),
                     p_greedy=float(pg[i, g.tokens[i]]),
                     greedy_correct=bool(i < len(target) and g.tokens[i] == target[i]))
        else:
            r.update(greedy_input="", greedy="", p_greedy=np.nan, greedy_correct=False)
        if i < len(tf.tokens):
            r.update(tf_input=_name(task, tf.inputs[i]), teacher_forced=_name(task, tf.tokens[i]),
                     p_tf=float(pt[i, tf.tokens[i]]), tf_correct=bool(tf.tokens[i] == target[i]))
        else:
            r.update(tf_input="", teacher_forced="", p_tf=np.nan, tf_correct=False)
        rows.append(r)
    steps = pd.DataFrame(rows, columns=STEP_COLUMNS)
    source = [_name(task, i) for i in b.x[0].tolist()]
    parts = []
    for mode, run in (("greedy", g), ("teacher_forced", tf)):
        if run.attention is None:
            continue
        a = run.attention.double().numpy()  # (n, T_in)
        n_out, T_in = a.shape
        parts.append(pd.DataFrame({"mode": mode, "step": np.repeat(np.arange(n_out), T_in),
                                   "token": np.repeat([_name(task, k) for k in run.tokens], T_in),
                                   "enc": np.tile(np.arange(T_in), n_out), "source": np.tile(source, n_out),
                                   "weight": a.reshape(-1)}))
    att = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["mode", "step", "token", "enc", "source", "weight"])
    return Decoding(steps=steps, attention=att, stop=g.stop, source=source, greedy=g, teacher=tf)


@torch.no_grad()
def accuracy_frame(model, task, batch: Batch) -> pd.DataFrame:
    """Per example of the batch (decoded all at once): token accuracy of greedy and of teacher-forced decoding
    against the target, the first step where greedy goes wrong (-1: none), and how greedy stopped.
    Columns: example, greedy_accuracy, tf_accuracy, first_greedy_error, stop."""
    (_, g, _, _, steps), stops = _greedy_all(model, task, batch)
    tf = _loop(model, batch, batch.y, batch.y.shape[1], None)[1]  # (B, T_out)
    y = batch.y
    n = min(g.shape[1], y.shape[1])
    hits = torch.zeros_like(y, dtype=torch.bool)
    hits[:, :n] = (g[:, :n] == y[:, :n]) & (torch.arange(n)[None, :] < steps[:, None])  # after a stop: a miss
    first = torch.where(hits.all(1), -1, (~hits).float().argmax(1))
    return pd.DataFrame({"example": range(y.shape[0]), "greedy_accuracy": hits.float().mean(1).double().numpy(),
                         "tf_accuracy": (tf == y).float().mean(1).double().numpy(), "first_greedy_error": first.numpy(),
                         "stop": stops})


# ----------------------------------------------------------------------------------------------------------
# Figures (drawn like rnnviz.figures: projector fonts, colour-blind-safe colours)

RIGHT, WRONG, NEUTRAL = "#b9e3d3", "#f5c6a5", "#e8e8e8"  # light green / orange / grey fills; text stays dark
HIGHLIGHT = "#D55E00"


def decoded_strip(steps: pd.DataFrame, stop: str = "length", highlight: int | None = None) -> go.Figure:
    """The decoded sequences as rows of tokens: target, teacher-forced, greedy; columns <sos>, step 0, 1, ..., and
    where greedy stopped. Green: the token equals the target; orange: it does not. highlight: outline a step."""
    title = "Decoded tokens, step by step"
    if _is_empty(steps):
        return _empty(title, "decoder step", None)
    n = len(steps)
    rows = [("greedy", "greedy", "greedy_correct"), ("teacher-forced", "teacher_forced", "tf_correct"),
            ("target", "target", None)]
    x = ["<sos>"] + [str(i) for i in range(n)] + ["end"]
    z, text = [], []
    for _label, col, ok in rows:
        zr, tr = [0.5], ["<sos>"]
        for i in range(n):
            tok = str(steps[col].iloc[i])
            tr.append(tok)
            zr.append(0.5 if ok is None or tok == "" else float(bool(steps[ok].iloc[i])))
        if col == "greedy":
            tr.append({"eos": "stop", "length": "<eos>*", "max_len": "cut"}.get(stop, ""))
        else:
            tr.append("")
        zr.append(0.5)
        z.append(zr)
        text.append(tr)
    fig = _figure(go.Heatmap(z=z, x=list(range(n + 2)), y=[r[0] for r in rows], text=text, texttemplate="%{text}",
                             textfont={"size": 18, "color": TEXT},
                             colorscale=[[0, WRONG], [0.5, NEUTRAL], [1, RIGHT]], zmin=0, zmax=1, showscale=False,
                             xgap=3, ygap=3, hovertemplate="%{y}, %{text}<extra></extra>"))
    if highlight is not None and 0 <= highlight < n:
        fig.add_shape(type="rect", x0=highlight + 0.5, x1=highlight + 1.5, y0=-0.5, y1=2.5,
                      line={"color": HIGHLIGHT, "width": 4})
    note = {"eos": "greedy stopped: the model emitted <eos>",
            "length": "<eos>*: stopped at the target length T (no <eos> token in this task)",
            "max_len": "cut: the maximum length, no <eos> emitted"}.get(stop, "")
    fig = _layout(fig, title, "decoder step (step 0 is fed <sos>)", None,
                  note="green: = target · orange: ≠ target · " + note, height=300)
    fig.update_xaxes(tickvals=list(range(n + 2)), ticktext=x, showgrid=False, zeroline=False)
    fig.update_yaxes(autorange="reversed", showgrid=False, zeroline=False)
    return fig


def decoding_attention(att: pd.DataFrame, steps: pd.DataFrame, highlight: int | None = None) -> go.Figure:
    """The attention row alpha_i of every decoder step: greedy and teacher-forced side by side; x = source tokens,
    y = step i with the token emitted there; the highlighted step is outlined. Rows sum to 1."""
    title = "Where each emitted token looked: attention α_i over the source"
    xt, yt = "encoder step j (source token)", "decoder step i → token emitted"
    if _is_empty(att):
        return _empty(title, xt, yt)
    modes = [m for m in MODES if (att["mode"] == m).any()]
    fig = make_subplots(rows=1, cols=len(modes), horizontal_spacing=0.12,
                        subplot_titles=[MODE_NAMES[m] for m in modes], figure=_figure())
    col_of = {"greedy": ("greedy", "greedy_correct"), "teacher_forced": ("teacher_forced", "tf_correct")}
    for c, mode in enumerate(modes, start=1):
        g = att[att["mode"] == mode]
        n, T_in = int(g["step"].max()) + 1, int(g["enc"].max()) + 1
        z = np.zeros((n, T_in))
        z[g["step"].to_numpy(), g["enc"].to_numpy()] = g["weight"].to_numpy(dtype=np.float64)
        src = g.drop_duplicates("enc").sort_values("enc")["source"].astype(str).tolist()
        tok, ok = col_of[mode]
        labels = []
        for i in range(n):
            t = str(steps[tok].iloc[i]) if i < len(steps) else ""
            mark = "" if i >= len(steps) or t == "" else ("" if bool(steps[ok].iloc[i]) else " ✗")
            labels.append(f"{i} → {t}{mark}")
        fig.add_trace(go.Heatmap(z=z, x=list(range(T_in)), y=list(range(n)), coloraxis="coloraxis",
                                 customdata=np.array([[f"{labels[i]} ← {src[j]}" for j in range(T_in)]
                                                      for i in range(n)]),
                                 hovertemplate="%{customdata}<br>α = %{z:.3f}<extra></extra>", xgap=1, ygap=1),
                      row=1, col=c)
        fig.update_xaxes(tickvals=list(range(T_in)), ticktext=src, row=1, col=c)
        fig.update_yaxes(tickvals=list(range(n)), ticktext=labels, autorange="reversed", row=1, col=c)
        if highlight is not None and 0 <= highlight < n:
            fig.add_shape(type="rect", x0=-0.5, x1=T_in - 0.5, y0=highlight - 0.5, y1=highlight + 0.5,
                          line={"color": HIGHLIGHT, "width": 4}, row=1, col=c)
    fig = _layout(fig, title, None, None, note="each row sums to 1 · ✗: the emitted token is not the target",
                  coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": 1,
                             "colorbar": {"title": {"text": "α_ij"}, "dtick": 0.5}})
    fig.update_xaxes(title_text=xt, showgrid=False)
    fig.update_yaxes(showgrid=False)
    fig.update_yaxes(title_text=yt, row=1, col=1)
    fig.layout.margin.t += 30  # the panel titles sit between the note and the plots
    return fig


__all__ = ["MODES", "STOPS", "Decoding", "Run", "accuracy_frame", "decode", "decoded_strip", "decoding_attention",
           "example_batch", "greedy", "teacher_forced"]
