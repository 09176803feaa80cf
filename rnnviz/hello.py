"""The "hello" character model as taught: one-hot inputs, the recurrence, logits, softmax, the next character,
step by step; and greedy generation one character at a time.

    table = step_table(model, task, "hell")        # one row per step: x_t, h_t, z_t, p_t, prediction
    s = greedy_step(model, task, None, "h")          # state in, next character + new state out
    s2 = greedy_step(model, task, s.state, s.char)   # feed the prediction back: one-to-many generation

For a vanilla RNN (PyTorch's convention, two bias vectors; W_xh is PyTorch's weight_ih, W_hy the head):

    x_t = one-hot(c_t)                        (V,)   with ModelConfig(one_hot=True): the core reads exactly this
    h_t = tanh(W_xh x_t + b_ih + W_hh h_{t-1} + b_hh)    (H,)   W_xh x_t is the column of W_xh for c_t
    z_t = W_hy h_t + b_y                      (V,)   the logits
    p_t = softmax(z_t)                        (V,)   p_t[k] = exp(z_t[k]) / sum_j exp(z_t[j])
    c_{t+1} predicted = argmax_k p_t[k]

LSTM and GRU replace the h_t line by their gated update; h_t is the top layer's state in every case, the
one the head reads. An embedding model (one_hot=False) reads E[c_t] instead of x_t; the table still shows
the character's one-hot vector. Everything runs under no_grad with the model in eval mode (restored after).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

State = Tensor | tuple[Tensor, Tensor] | None  # the core's (h, c) for an LSTM; None = the zero state


def show_char(c: str) -> str:
    """A character as it can be read in a table or on an axis: space -> ␣, newline -> ↵, tab -> ⇥."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(c, c)


def _check(model, task) -> None:
    if getattr(model, "kind", None) != "many_to_many" or getattr(model, "embed", None) is None:
        raise ValueError("needs a character model: many_to_many with token inputs (hello, char_lm)")
    if getattr(task, "stoi", None) is None:
        raise ValueError(f"{getattr(task, 'name', task)!r} has no character vocabulary")


def _ids(task, text: str) -> Tensor:
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string")
    return task.encode(text)  # (T,) raises ValueError naming characters outside the vocabulary


def columns(task, hidden: int) -> list[str]:
    """The table's columns: t, input, x[c]..., h[0..H-1], z[c]..., p[c]..., predicted, p_predicted, target."""
    chars = [show_char(c) for c in task.itos]
    return (["t", "input"] + [f"x[{c}]" for c in chars] + [f"h[{i}]" for i in range(hidden)]
            + [f"z[{c}]" for c in chars] + [f"p[{c}]" for c in chars] + ["predicted", "p_predicted", "target"])


def _rows(task, ids: Tensor, h: Tensor, z: Tensor, t0: int = 0, targets: list | None = None) -> list[dict]:
    """Rows for inputs ids (T,), top-layer states h (T, H) and logits z (T, V)."""
    chars = [show_char(c) for c in task.itos]
    p = torch.softmax(z.double(), dim=-1)  # (T, V)
    rows = []
    for t in range(len(ids)):
        k = int(p[t].argmax())
        row = {"t": t0 + t, "input": show_char(task.itos[int(ids[t])])}
        row.update({f"x[{c}]": float(int(ids[t]) == j) for j, c in enumerate(chars)})
        row.update({f"h[{i}]": float(v) for i, v in enumerate(h[t].tolist())})
        row.update({f"z[{c}]": float(z[t, j]) for j, c in enumerate(chars)})
        row.update({f"p[{c}]": float(p[t, j]) for j, c in enumerate(chars)})
        row.update({"predicted": chars[k], "p_predicted": float(p[t, k]),
                    "target": show_char(targets[t]) if targets is not None and t < len(targets) else ""})
        rows.append(row)
    return rows


def _run(model, x: Tensor, state: State):
    """(1, T) ids -> top-layer h (T, H), logits (T, V), new state. no_grad, eval mode, restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out, new_state = model.core(model.embed(x), state)  # (1, T, H)
            z = model.head(out, None)  # (1, T, V)
        return out[0], z[0], new_state
    finally:
        model.train(was_training)


def step_table(model, task, text: str) -> pd.DataFrame:
    """One row per character of `text` read from the zero state (columns: `columns`):
    t, the input character, its one-hot vector x[c], the top layer's h_t, the logits z[c], the softmax p[c],
    the predicted next character (argmax) with its probability, and the target: the next character of
    `text` ("" after the last one)."""
    _check(model, task)
    ids = _ids(task, text)
    h, z, _ = _run(model, ids[None], None)
    return pd.DataFrame(_rows(task, ids, h, z, targets=list(text[1:])), columns=columns(task, h.shape[-1]))


@dataclass(frozen=True)
class GreedyStep:
    char: str  # the predicted next character (argmax of the softmax), raw (not show_char)
    state: State  # the core's state after reading the input character
    row: dict  # the step's numbers, as a step_table row (t counts from 0 at each call: set it yourself)


def greedy_step(model, task, state: State, char: str) -> GreedyStep:
    """Read one character from `state` (None = the zero state) and predict the next one greedily.
    Pure: the state passed in is not changed; feed .char and .state back in for the next step."""
    _check(model, task)
    ids = _ids(task, char)
    if len(ids) != 1:
        raise ValueError(f"greedy_step reads one character at a time, got {char!r}")
    h, z, new_state = _run(model, ids[None], state)
    row = _rows(task, ids, h, z)[0]
    return GreedyStep(char=task.itos[int(z[0].argmax())], state=new_state, row=row)


def greedy_steps(model, task, start: str, n: int) -> pd.DataFrame:
    """n greedy steps from the zero state, starting by reading `start` and then each prediction: one row per
    step (step_table's columns; `target` empty). The generated text is start followed by the `predicted`
    column (characters as show_char writes them)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    state, char, rows = None, start, []
    for t in range(n):
        s = greedy_step(model, task, state, char)
        rows.append({**s.row, "t": t})
        state, char = s.state, s.char
    hidden = model.core.hidden_size
    return pd.DataFrame(rows, columns=columns(task, hidden))


def weights_frame(model, task) -> pd.DataFrame:
    """matrix, row, col, row_label, col_label, value: the three matrices of the lecture's picture, layer 0
    (every time step uses these same numbers):

        W_xh  core.weight_ih_l0  (G*H, in)   columns = characters for a one-hot model, embedding units otherwise
        W_hh  core.weight_hh_l0  (G*H, H)
        W_hy  head (out.weight)  (V, D*H)    rows = the characters it scores

    G = 1 (RNN), 4 (LSTM: rows i|f|g|o), 3 (GRU: rows r|z|n); row labels say which gate, e.g. "f[2]"."""
    _check(model, task)
    core = model.core
    H = core.hidden_size
    gates = {"LSTM": "ifgo", "GRU": "rzn"}.get(core.mode, "h")
    gate_rows = [f"{g}[{i}]" for g in gates for i in range(H)]
    chars = [show_char(c) for c in task.itos]
    W_ih = core.weight_ih_l0.detach()
    in_labels = chars if W_ih.shape[1] == len(chars) and not isinstance(model.embed, torch.nn.Embedding) \
        else [f"e[{j}]" for j in range(W_ih.shape[1])]
    mats = [("W_xh (weight_ih_l0)", W_ih, gate_rows, in_labels),
            ("W_hh (weight_hh_l0)", core.weight_hh_l0.detach(), gate_rows, [f"h[{j}]" for j in range(H)]),
            ("W_hy (the head)", model.out.weight.detach(), chars, [f"h[{j}]" for j in range(model.out.in_features)])]
    parts = []
    for name, W, rl, cl in mats:
        r, c = np.indices(W.shape).reshape(2, -1)
        parts.append(pd.DataFrame({"matrix": name, "row": r, "col": c, "row_label": [rl[i] for i in r],
                                   "col_label": [cl[j] for j in c], "value": W.double().numpy().reshape(-1)}))
    return pd.concat(parts, ignore_index=True)


__all__ = ["GreedyStep", "columns", "greedy_step", "greedy_steps", "show_char", "step_table", "weights_frame"]
