"""The network unrolled over its sequence: one column per time step, the same weights on every step, where the loss
enters, and (from a snapshot) the gradient ‖∂L/∂h_t‖ flowing back, cut where truncated BPTT detaches the state.

    nodes, edges = unrolled_frames(cell="lstm", num_layers=2, bidirectional=False, seq_len=50,
                                   shape="many_to_one", truncation=10, grad_norm=snap.grad_norm)
    unrolled_figure(nodes, edges).show()

The four sequence shapes (`SHAPES`), by where inputs go in and outputs (and losses) come out:

    many_to_one   x_0 .. x_{T-1} in, one output at the end: y = W_hy h_{T-1} (+ the backward state at t = 0)
    many_to_many  an output y_t = W_hy h_t and a loss term at every step
    one_to_many   one input x_0; each output is fed back as the next input (generation)
    seq2seq       an encoder reads x; s_0 = tanh(W_b h_enc) starts a decoder that reads <sos>, y_0, y_1, ...

The same three matrices at every step (per layer l and direction; PyTorch's names):
    W_xh^(l) = weight_ih_l{l-1}   input (layer 1) or the layer below (layers 2..L) -> h_t
    W_hh^(l) = weight_hh_l{l-1}   h_{t-1} -> h_t (the backward direction: h_{t+1} -> h_t, "_reverse")
    W_hy     = the head's Linear  top layer h_t -> y_t

Truncated BPTT with window k (rnnviz.tracing.truncated_forward) detaches the state every k steps of each
direction, counted from the first step that direction processes: forward cuts the link h_{t-1} -> h_t at
t = k, 2k, ...; backward cuts h_{t+1} -> h_t at t = T-1-k, T-1-2k, ... Nothing flows back across a cut.

Long sequences show the first and the last steps with an ellipsis (⋯) between (at most `max_steps` steps).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from rnnviz.figures import TEXT, _figure, _font, _layout

SHAPES = {
    "many_to_one": ("many-to-one",
                    "Reads the whole sequence and predicts once, at the end: the loss enters at the last step only, "
                    "so every earlier step is reached by the gradient only through W_hh, step by step."),
    "many_to_many": ("many-to-many",
                     "A prediction and a loss term at every step (the loss is their mean): each step gets gradient "
                     "from its own output and, through W_hh, from every later one."),
    "one_to_many": ("one-to-many",
                    "One input, then a sequence out: each output is fed back as the next input. Generating text "
                    "from the character model runs this way (the Hidden states page samples it)."),
    "seq2seq": ("sequence-to-sequence",
                "An encoder reads the source; its last state becomes the decoder's start (the context vector "
                "s₀); the decoder starts from <sos> and emits one token per step, each fed back as the next "
                "input; a loss term at every output."),
}
KIND_TO_SHAPE = {"many_to_one": "many_to_one", "many_to_many": "many_to_many", "seq2seq": "seq2seq"}
CELL_TITLES = {"rnn_tanh": "RNN (tanh)", "rnn_relu": "RNN (relu)", "lstm": "LSTM", "gru": "GRU"}
MAX_STEPS = 12
STAGGER = 0.28  # x offset of a backward-direction row, so edges into it do not run through the forward row
NODE_COLUMNS = ["id", "kind", "part", "x", "y", "t", "layer", "direction", "label", "grad_norm", "hover"]
EDGE_COLUMNS = ["kind", "part", "src", "dst", "x0", "y0", "x1", "y1", "t", "layer", "direction", "weight", "label",
                "cut", "grad_norm", "hover"]
COLORS = {"W_xh": "#0072B2", "W_hh": "#009E73", "W_hy": "#CC79A7", "loss": "#1a1a1a", "feedback": "#8c8c8c",
          "context": "#E69F00", "attention": "#56B4E9", "grad": "#D55E00", "cut": "#D55E00"}
NODE_STYLE = {  # kind: (symbol, fill, line colour, legend name)
    "input": ("square", "#dbe9f6", "#0072B2", "input x_t"),
    "hidden": ("circle", "#ffffff", "#009E73", "hidden state h_t"),
    "output": ("diamond", "#f4dcea", "#CC79A7", "output ŷ_t"),
    "loss": ("hexagon", "#fde0c5", "#D55E00", "loss term ℓ_t"),
    "context": ("star", "#fbe3b3", "#E69F00", "context s₀ = tanh(W_b h)"),
}


def sequence_shape(task) -> str:
    """The task's sequence shape: "many_to_one", "many_to_many" or "seq2seq" (from task.kind; a task object or
    its kind string). No task here trains one-to-many; generation from the char model runs that way."""
    kind = task if isinstance(task, str) else getattr(task, "kind", None)
    if kind not in KIND_TO_SHAPE:
        raise ValueError(f"unknown task kind {kind!r}")
    return KIND_TO_SHAPE[kind]


def cut_links(T: int, k: int | None, direction: int = 0) -> list[tuple[int, int]]:
    """Recurrent links (from_t, to_t) detached by truncation window k in a sequence of T steps.
    Forward (direction 0): (t-1, t) for t = k, 2k, ... < T. Backward: (t+1, t) for t = T-1-k, T-1-2k, ... >= 0."""
    if not k or k >= T:
        return []
    if direction == 0:
        return [(t - 1, t) for t in range(k, T, k)]
    return [(t + 1, t) for t in range(T - 1 - k, -1, -k)]


def shown_steps(T: int, max_steps: int = MAX_STEPS, truncation: int | None = None) -> list[int | None]:
    """The steps drawn: all of them when T <= max_steps, else the first few, None (an ellipsis), the last ones.
    With a truncation window the last cut (forward: the link into t = k * floor((T-1)/k)) is kept in view: the
    tail grows to reach it if it can, else the two steps around it are drawn between two ellipses."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if max_steps < 4:
        raise ValueError(f"max_steps must be >= 4, got {max_steps}")
    if T <= max_steps:
        return list(range(T))
    tail = max_steps - 1 - min(4, max_steps // 3)
    keep: set[int] = set()
    if truncation and truncation < T:
        cut = (T - 1) // truncation * truncation  # the last forward cut: the link (cut - 1, cut)
        need = T - cut + 1
        if need <= max_steps - 1:
            tail = max(tail, need)
        else:  # the two steps around it, between the head and the tail
            tail = max(2, tail - 2)
            keep = {cut - 1, cut}
    head = max_steps - tail - len(keep)
    keep |= set(range(head)) | set(range(T - tail, T))
    out: list[int | None] = []
    for t in sorted(keep):
        if out and out[-1] is not None and t != out[-1] + 1:
            out.append(None)
        out.append(t)
    return out


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    e = math.floor(math.log10(abs(v)))
    return f"{v:.2g}" if -2 <= e <= 2 else f"{v / 10 ** e:.1f}e{e}"


def _w(name: str, layer: int | None = None, L: int = 1, d: int = 0, part: str = "") -> str:
    """A weight's label in HTML: W<sub>hh</sub><sup>(2)</sup>, ← for the backward direction, dec for the decoder."""
    sup = []
    if layer is not None and L > 1:
        sup.append(f"({layer + 1})")
    if d:
        sup.append("←")
    w = "W′" if part == "decoder" else "W"  # the decoder's own matrices
    return f"{w}<sub>{name[2:]}</sub>" + (f"<sup>{' '.join(sup)}</sup>" if sup else "")


def _pname(name: str, layer: int, d: int, part: str) -> str:
    base = {"W_xh": "weight_ih", "W_hh": "weight_hh"}[name]
    return f"{'decoder.' if part == 'decoder' else ''}{base}_l{layer}{'_reverse' if d else ''}"


def unrolled_frames(cell: str = "rnn_tanh", num_layers: int = 1, bidirectional: bool = False, seq_len: int = 8,
                    shape: str = "many_to_one", truncation: int | None = None, grad_norm=None,
                    tokens: list[str] | None = None, out_len: int | None = None, attention: bool = False,
                    out_tokens: list[str] | None = None, max_steps: int = MAX_STEPS) -> tuple[pd.DataFrame,
                                                                                             pd.DataFrame]:
    """Nodes and edges of the unrolled network (columns NODE_COLUMNS, EDGE_COLUMNS), laid out for unrolled_figure.

    cell, num_layers, bidirectional: the core (many_to_many and one_to_many are drawn unidirectional, as the
    models run them; a seq2seq decoder is unidirectional with num_layers layers). seq_len: T (the encoder's for
    seq2seq; out_len: the decoder's, default T). truncation: window k (None or 0: full BPTT). grad_norm: an
    array (layers, directions, T) of ‖∂L/∂h_t‖ (a Snapshot's grad_norm; the encoder's for seq2seq), drawn on
    the hidden states and as backward arrows. tokens / out_tokens: labels of the input / decoder-output steps.
    Steps beyond max_steps (per part for seq2seq: half each) are elided."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {list(SHAPES)}, got {shape!r}")
    if not (isinstance(num_layers, int) and 1 <= num_layers <= 8):
        raise ValueError(f"num_layers must be an int in [1, 8], got {num_layers!r}")
    k = truncation or None
    L, T = num_layers, int(seq_len)
    D = 2 if bidirectional and shape in ("many_to_one", "seq2seq") else 1
    g = None
    if grad_norm is not None:
        g = np.asarray(grad_norm, dtype=np.float64)
        if g.shape != (L, D, T):
            raise ValueError(f"grad_norm must have shape (layers, directions, T) = {(L, D, T)}, got {g.shape}")
    nodes: list[dict] = []
    edges: list[dict] = []

    def node(kind, part, x, y, t=None, layer=None, d=None, label="", grad=np.nan, hover=""):
        nid = len(nodes)
        nodes.append({"id": nid, "kind": kind, "part": part, "x": float(x), "y": float(y), "t": t, "layer": layer,
                      "direction": d, "label": label, "grad_norm": grad, "hover": hover})
        return nid

    def edge(kind, part, a, b, t=None, layer=None, d=None, weight="", label="", cut=False, grad=np.nan, hover=""):
        na, nb = nodes[a], nodes[b]
        edges.append({"kind": kind, "part": part, "src": a, "dst": b, "x0": na["x"], "y0": na["y"], "x1": nb["x"],
                      "y1": nb["y"], "t": t, "layer": layer, "direction": d, "weight": weight, "label": label,
                      "cut": cut, "grad_norm": grad, "hover": hover})

    def chain(part: str, steps: list[int | None], x0: float, n_total: int, layers: int, dirs: int,
              grads, cuts: bool, in_label) -> tuple[dict, dict, dict]:
        """Input row, hidden rows and their edges for one recurrent stack. Returns column x of each step,
        input node of each step, hidden node of each (layer, direction, step)."""
        col = {}
        for i, t in enumerate(steps):
            if t is not None:
                col[t] = x0 + i
        shown = [t for t in steps if t is not None]
        inp, hid = {}, {}
        for t in shown:
            if in_label is not None:
                lab, hov = in_label(t)
                inp[t] = node("input", part, col[t], 0, t=t, label=lab, hover=hov)
        for layer in range(layers):
            for d in range(dirs):
                y = 1 + layer * dirs + d
                for t in shown:
                    gv = float(grads[layer, d, t]) if grads is not None else np.nan
                    x = col[t] + STAGGER * d  # the backward row sits a little to the right: its edges show
                    hov = (f"h<sub>{t}</sub>, layer {layer + 1}{', backward' if d else ''}"
                           + (f"<br>‖∂L/∂h<sub>t</sub>‖ = {gv:.3g}" if grads is not None else ""))
                    hid[layer, d, t] = node("hidden", part, x, y, t=t, layer=layer, d=d, grad=gv, hover=hov)
                # recurrent links, in processing order (forward: t -> t+1; backward: t+1 -> t)
                cut_set = set(cut_links(n_total, k, d)) if cuts else set()
                for a, b in zip(steps[:-1], steps[1:], strict=True):
                    if a is None or b is None:
                        continue
                    src, dst = (a, b) if d == 0 else (b, a)
                    cut = (src, dst) in cut_set
                    edge("W_hh", part, hid[layer, d, src], hid[layer, d, dst], t=dst, layer=layer, d=d,
                         weight=_pname("W_hh", layer, d, part), label=_w("W_hh", layer, layers, d, part), cut=cut,
                         hover=f"{_pname('W_hh', layer, d, part)}: the same matrix at every step"
                               + (" · detached here (truncated BPTT)" if cut else ""))
                    if grads is not None:  # the gradient arriving at the earlier-processed state, flowing back
                        gv = float(grads[layer, d, src])
                        edge("grad", part, hid[layer, d, dst], hid[layer, d, src], t=src, layer=layer, d=d,
                             label=_fmt(gv), cut=cut, grad=gv,
                             hover=f"‖∂L/∂h<sub>{src}</sub>‖ = {gv:.3g}" + (" (cut: nothing flows back across)"
                                                                              if cut else ""))
                # the elided part: one dotted link, with the number of hidden cuts
                for i in range(1, len(steps) - 1):
                    if steps[i] is not None:
                        continue
                    a, b = steps[i - 1], steps[i + 1]
                    src, dst = (a, b) if d == 0 else (b, a)
                    hidden_cuts = sum(1 for c in cut_set if min(c) >= a and max(c) <= b)
                    lab = f"{b - a - 1} steps" + (f"<br>{hidden_cuts} cut{'s' if hidden_cuts > 1 else ''}"
                                                   if hidden_cuts else "")  # two short lines: no overlap
                    edge("ellipsis", part, hid[layer, d, src], hid[layer, d, dst], layer=layer, d=d, label=lab,
                         hover=f"{b - a - 1} steps not drawn; W_hh applied at each")
        # into layer 0 from the inputs, between layers: W_xh of the layer above
        for t in shown:
            for d in range(dirs):
                if t in inp:
                    edge("W_xh", part, inp[t], hid[0, d, t], t=t, layer=0, d=d, weight=_pname("W_xh", 0, d, part),
                         label=_w("W_xh", 0, layers, d, part),
                         hover=f"{_pname('W_xh', 0, d, part)}: the same matrix at every step")
            for layer in range(1, layers):
                for d in range(dirs):
                    for d_in in range(dirs):
                        main = d_in == d
                        edge("W_xh", part, hid[layer - 1, d_in, t], hid[layer, d, t], t=t, layer=layer, d=d,
                             weight=_pname("W_xh", layer, d, part),
                             label=_w("W_xh", layer, layers, d, part) if main else "",
                             hover=f"{_pname('W_xh', layer, d, part)} reads the layer below"
                                   + (" (both directions, concatenated)" if dirs == 2 else ""))
        return col, inp, hid

    top = lambda layers, dirs: (layers - 1) * dirs  # noqa: E731  the first row index of the top layer
    if shape != "seq2seq":
        steps = shown_steps(T, max_steps, k)
        shown = [t for t in steps if t is not None]
        R = L * D

        def in_label(t):
            if shape == "one_to_many" and t > 0:
                return "ŷ", f"x<sub>{t}</sub> = ŷ<sub>{t - 1}</sub>: the previous output, fed back"
            tok = tokens[t] if tokens is not None and t < len(tokens) else ""
            return tok, f"x<sub>{t}</sub>" + (f" = {tok}" if tok else "")

        col, inp, hid = chain("", steps, 0, T, L, D, g, True, in_label)
        y_out, y_loss = R + 1, R + 2
        out_steps = [T - 1] if shape == "many_to_one" else shown
        for t in out_steps:
            o = node("output", "", col[t], y_out, t=t, label="", hover=f"ŷ<sub>{t}</sub> = W<sub>hy</sub> h<sub>{t}"
                     "</sub> + b<sub>y</sub>" + (" (both directions' final states)" if D == 2 else ""))
            for d in range(D):
                src_t = t if d == 0 else 0  # the backward direction ends at t = 0
                edge("W_hy", "", hid[L - 1, d, src_t], o, t=t, layer=L - 1, d=d, weight="out.weight",
                     label=_w("W_hy") if d == 0 else "", hover="the head: the same matrix at every output")
            lo = node("loss", "", col[t], y_loss, t=t, label="L" if shape == "many_to_one" else "",
                      hover="the loss enters here" + (" (once, at the end)" if shape == "many_to_one"
                                                      else f": ℓ<sub>{t}</sub>, L = mean of ℓ<sub>t</sub>"))
            edge("loss", "", o, lo, t=t, hover="ℓ(ŷ, y)")
        if shape == "one_to_many":
            for a, b in zip(steps[:-1], steps[1:], strict=True):
                if a is not None and b is not None:
                    outs = {n["t"]: n["id"] for n in nodes if n["kind"] == "output"}
                    edge("feedback", "", outs[a], inp[b], t=b, hover=f"ŷ<sub>{a}</sub> becomes x<sub>{b}</sub>")
        for row in range(R + 1):  # the ellipsis between the shown parts
            for i, t in enumerate(steps):
                if t is None:
                    node("ellipsis", "", i, row, label="⋯")
    else:
        T_out = int(out_len) if out_len is not None else T
        half = max(3, max_steps // 2)
        enc_steps, dec_steps = shown_steps(T, half, k), shown_steps(T_out, half)
        def in_label(t):
            tok = tokens[t] if tokens is not None and t < len(tokens) else ""
            return tok, f"x<sub>{t}</sub>" + (f" = {tok}" if tok else "")

        ecol, einp, ehid = chain("encoder", enc_steps, 0, T, L, D, g, True, in_label)
        x_ctx = len(enc_steps) + 0.5
        x_dec = len(enc_steps) + 2

        def dec_label(i):
            if i == 0:
                return "<sos>", "the decoder's first input: <sos>"
            prev = out_tokens[i - 1] if out_tokens is not None and i - 1 < len(out_tokens) else ""
            return prev, f"y<sub>{i - 1}</sub>{' = ' + prev if prev else ''} fed in (training: the true token; " \
                         "greedy decoding: the model's own output)"

        dcol, dinp, dhid = chain("decoder", dec_steps, x_dec, T_out, L, 1, None, False, dec_label)
        R = max(L * D, L)
        ctx = node("context", "", x_ctx, top(L, 1) + 1, label="s₀",
                   hover="s₀ = tanh(W_b [h_enc]): the encoder's last state, the decoder's start (every layer)")
        last = [t for t in enc_steps if t is not None]
        edge("context", "", ehid[L - 1, 0, last[-1]], ctx, layer=L - 1, d=0, weight="bridge.weight",
             label="W<sub>b</sub>", hover="the context vector from the forward direction's last state")
        if D == 2:
            edge("context", "", ehid[L - 1, 1, last[0]], ctx, layer=L - 1, d=1, weight="bridge.weight",
                 hover="and the backward direction's last state (at t = 0)")
        first = [t for t in dec_steps if t is not None][0]
        for layer in range(L):
            edge("context", "", ctx, dhid[layer, 0, first], layer=layer, d=0, hover="s₀ of decoder layer "
                                                                                   f"{layer + 1}")
        dshown = [t for t in dec_steps if t is not None]
        for i in dshown:
            o = node("output", "decoder", dcol[i], R + 1, t=i,
                     label=out_tokens[i] if out_tokens is not None and i < len(out_tokens) else "",
                     hover=f"ŷ<sub>{i}</sub> = W<sub>hy</sub> s<sub>{i}</sub>" + (" (with the attention context)"
                                                                                  if attention else ""))
            edge("W_hy", "decoder", dhid[L - 1, 0, i], o, t=i, layer=L - 1, d=0, weight="out.weight",
                 label=_w("W_hy"), hover="the head: the same matrix at every output")
            lo = node("loss", "decoder", dcol[i], R + 2, t=i, hover=f"ℓ<sub>{i}</sub>: the loss enters at every "
                                                                     "output (L = mean)")
            edge("loss", "decoder", o, lo, t=i, hover="ℓ(ŷ, y)")
            nxt = i + 1
            if nxt in dinp:
                edge("feedback", "decoder", o, dinp[nxt], t=nxt, hover=f"y<sub>{i}</sub> becomes the next input")
            if attention and i == first:  # drawn for the first step only; every step has its own weights
                for t in [t for t in enc_steps if t is not None]:
                    edge("attention", "", ehid[L - 1, D - 1, t], dhid[L - 1, 0, i], t=i,
                         hover=f"attention: α<sub>{i},{t}</sub> weighs encoder state h<sub>{t}</sub> "
                               "(c<sub>i</sub> = Σ<sub>j</sub> α<sub>ij</sub> h<sub>j</sub>; every decoder step has "
                               "its own weights, drawn here for the first)")
        node("part", "encoder", (len(enc_steps) - 1) / 2, R + 1.5, label="<b>encoder</b> (reads the source)")
        node("part", "decoder", x_dec + (len(dec_steps) - 1) / 2, R + 2.6, label="<b>decoder</b> (one token per step)")
        for part, steps, x0, rows in (("encoder", enc_steps, 0, L * D + 1), ("decoder", dec_steps, x_dec, L + 1)):
            for i, t in enumerate(steps):
                if t is None:
                    for row in range(rows):
                        node("ellipsis", part, x0 + i, row, label="⋯")
    return pd.DataFrame(nodes, columns=NODE_COLUMNS), pd.DataFrame(edges, columns=EDGE_COLUMNS)


# ----------------------------------------------------------------------------------------------------------
# The figure

ROW_PX = 92  # px per row of nodes
LABEL_DY = 0.17  # gradient arrows sit this far below their link
WEIGHT_DY = 0.3  # W_hh labels this far above it (clear of the nodes)


def _arrows(fig: go.Figure, e: pd.DataFrame, color: str, width: float | list, name: str, dash: str = "solid",
            shorten: float = 0.16, legend: bool = True, opacity: float = 1.0, dy: float = 0.0) -> None:
    """Edges as lines with an arrowhead at the destination (one trace; marker.angleref='previous')."""
    if e.empty:
        return
    xs, ys, sizes, hover = [], [], [], []
    for r in e.itertuples():
        x0, y0, x1, y1 = r.x0, r.y0 + dy, r.x1, r.y1 + dy
        n = math.hypot(x1 - x0, y1 - y0) or 1.0
        ux, uy = (x1 - x0) / n, (y1 - y0) / n
        xs += [x0 + ux * shorten, x1 - ux * shorten, None]
        ys += [y0 + uy * shorten, y1 - uy * shorten, None]
        sizes += [0, 11, 0]
        hover += [r.hover, r.hover, None]
    if isinstance(width, list):  # one trace per edge when widths differ
        for i, w in enumerate(width):
            fig.add_trace(go.Scatter(x=xs[3 * i:3 * i + 3], y=ys[3 * i:3 * i + 3], mode="lines+markers",
                                     line={"color": color, "width": w, "dash": dash}, opacity=opacity,
                                     marker={"symbol": "arrow", "angleref": "previous", "size": [0, 9 + w, 0],
                                             "color": color},
                                     hovertext=hover[3 * i:3 * i + 3], hoverinfo="text", name=name,
                                     legendgroup=name, showlegend=legend and i == 0))
        return
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", line={"color": color, "width": width, "dash": dash},
                             marker={"symbol": "arrow", "angleref": "previous", "size": sizes, "color": color},
                             opacity=opacity, hovertext=hover, hoverinfo="text", name=name, legendgroup=name,
                             showlegend=legend))


def unrolled_figure(nodes: pd.DataFrame, edges: pd.DataFrame, title: str = "The network unrolled in time",
                    note: str | None = None) -> go.Figure:
    """Draw unrolled_frames: nodes as symbols (inputs, hidden states, outputs, losses), forward edges as arrows
    coloured by their weight matrix and labelled with it on every step, truncation cuts as red bars across the
    link, and, when the hidden nodes carry grad_norm, the gradient flowing back as orange arrows whose width grows
    with log10 ‖∂L/∂h_t‖ (labelled with the value) and hidden states coloured by it."""
    fig = _figure()
    has_grad = (nodes["kind"] == "hidden").any() and nodes.loc[nodes["kind"] == "hidden", "grad_norm"].notna().any()
    lo_c, hi_c = _color_range(nodes)
    # forward edges
    styles = {"W_xh": ("W_xh: input", 2, "solid"), "W_hh": ("W_hh: recurrent", 2.5, "solid"),
              "W_hy": ("W_hy: output", 2, "solid"), "loss": ("loss", 1.5, "dot"),
              "feedback": ("output fed back", 1.5, "dash"), "context": ("context s₀", 2.5, "solid"),
              "ellipsis": ("steps not drawn", 2, "dot")}
    for kind, (name, width, dash) in styles.items():
        e = edges[edges["kind"] == kind]
        if kind == "W_hh":
            e = e[~e["cut"]]
        _arrows(fig, e, COLORS.get(kind, "#777777"), width, name, dash=dash)
    att = edges[edges["kind"] == "attention"]
    if not att.empty:  # arcs above the hidden row (a straight line would run along it)
        xs, ys, hover = [], [], []
        for r in att.itertuples():
            s = np.linspace(0.08, 0.92, 24)
            xs += [*(r.x0 + (r.x1 - r.x0) * s), None]
            ys += [*(r.y0 + 0.2 + (0.25 + 0.06 * abs(r.x1 - r.x0)) * 4 * s * (1 - s)), None]
            hover += [r.hover] * 24 + [None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": COLORS["attention"], "width": 1.5},
                                 hovertext=hover, hoverinfo="text", name="attention (drawn for step 0)"))
    cut = edges[(edges["kind"] == "W_hh") & edges["cut"]]
    if not cut.empty:
        _arrows(fig, cut, "#bbbbbb", 2.5, "recurrent link, detached by truncation", dash="dot", legend=False)
        fig.add_trace(go.Scatter(x=(cut["x0"] + cut["x1"]) / 2, y=(cut["y0"] + cut["y1"]) / 2, mode="markers",
                                 marker={"symbol": "line-ns", "size": 26, "line": {"width": 5, "color": COLORS["cut"]}},
                                 name="cut (state detached)", hovertext=cut["hover"],
                                 hoverinfo="text"))
    # the gradient flowing back
    grad = edges[edges["kind"] == "grad"]
    if has_grad and not grad.empty:
        flow = grad[~grad["cut"] & (grad["grad_norm"] > 0)]  # exactly 0: nothing flows back there
        pos = nodes.loc[(nodes["kind"] == "hidden") & (nodes["grad_norm"] > 0), "grad_norm"].to_numpy(np.float64)
        lo, hi = (math.log10(pos.min()), math.log10(pos.max())) if len(pos) else (0.0, 1.0)
        span = max(hi - lo, 1e-9)
        widths = [1.0 + 7.0 * (math.log10(v) - lo) / span if v > 0 else 0.5 for v in flow["grad_norm"]]
        _arrows(fig, flow, COLORS["grad"], widths, "‖∂L/∂h_t‖ flowing back", dy=-LABEL_DY,
                shorten=0.22)
    # weight labels: the same symbol on every step
    lab = edges[edges["label"].astype(bool) & edges["kind"].isin(["W_xh", "W_hh", "W_hy", "context"])]
    horiz = lab[lab["y0"] == lab["y1"]]
    vert = lab[lab["y0"] != lab["y1"]]
    if not horiz.empty:
        fig.add_trace(go.Scatter(x=(horiz["x0"] + horiz["x1"]) / 2, y=horiz["y0"] + WEIGHT_DY, mode="text",
                                 text=horiz["label"], textfont=_font(16), hoverinfo="skip", showlegend=False,
                                 name="weight labels"))
    for side, sel in (("left", vert["direction"].fillna(0) == 0), ("right", vert["direction"].fillna(0) == 1)):
        v = vert[sel]
        if v.empty:
            continue
        # half a row from the source (forward); half a row below the destination (backward: its edges are diagonal)
        f = 0.5 / (v["y1"] - v["y0"]).abs()
        if side == "right":
            f = 1 - f
        xm = v["x0"] + f * (v["x1"] - v["x0"]) + (-0.04 if side == "left" else 0.04)
        fig.add_trace(go.Scatter(x=xm, y=v["y0"] + f * (v["y1"] - v["y0"]), mode="text", text=v["label"],
                                 textposition=f"middle {side}", textfont=_font(16), hoverinfo="skip",
                                 showlegend=False, name="weight labels"))
    ell = edges[edges["kind"] == "ellipsis"]
    if not ell.empty:
        fig.add_trace(go.Scatter(x=(ell["x0"] + ell["x1"]) / 2, y=ell["y0"] - 2 * LABEL_DY, mode="text",
                                 text=ell["label"], textfont=_font(15), hoverinfo="skip", showlegend=False))
    # nodes
    for kind, (symbol, fill, line, name) in NODE_STYLE.items():
        n = nodes[nodes["kind"] == kind]
        if kind == "hidden":  # states with a gradient are drawn below, coloured and labelled with it
            n = n[n["grad_norm"].isna()]
        if n.empty:
            continue
        marker = {"symbol": symbol, "size": 34 if kind != "context" else 40, "color": fill,
                  "line": {"color": line, "width": 2.5}}
        fig.add_trace(go.Scatter(x=n["x"], y=n["y"], mode="markers+text", text=n["label"], textfont=_font(15),
                                 marker=marker, hovertext=n["hover"], hoverinfo="text", name=name,
                                 showlegend=False))
    hid = nodes[(nodes["kind"] == "hidden") & nodes["grad_norm"].notna()]
    symbol, _, line, name = NODE_STYLE["hidden"]
    zero = hid[hid["grad_norm"] == 0]
    if not zero.empty:  # exactly zero: nothing reached it (cut off by truncation)
        fig.add_trace(go.Scatter(x=zero["x"], y=zero["y"], mode="markers+text", text=["0"] * len(zero),
                                 textfont=_font(15), marker={"symbol": symbol, "size": 34, "color": "#e0e0e0",
                                                             "line": {"color": line, "width": 2.5}},
                                 hovertext=zero["hover"], hoverinfo="text", name="‖∂L/∂h_t‖ = 0 exactly",
                                 showlegend=False))
    pos = hid[hid["grad_norm"] != 0]
    if not pos.empty:  # the value in the state; colour log10 of it, white text on the dark end of the scale
        gv = pos["grad_norm"].to_numpy(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(gv)
        dark = (z - lo_c) / max(hi_c - lo_c, 1e-9) < 0.55
        fig.add_trace(go.Scatter(x=pos["x"], y=pos["y"], mode="markers+text", text=[_short(v) for v in gv],
                                 textfont={"size": 15, "color": np.where(dark, "white", TEXT).tolist()},
                                 marker={"symbol": symbol, "size": 40, "color": z, "coloraxis": "coloraxis",
                                         "line": {"color": line, "width": 2.5}},
                                 hovertext=pos["hover"], hoverinfo="text", name=name, showlegend=False))
    parts = nodes[nodes["kind"] == "part"]
    if not parts.empty:
        fig.add_trace(go.Scatter(x=parts["x"], y=parts["y"], mode="text", text=parts["label"], textfont=_font(17),
                                 hoverinfo="skip", showlegend=False))
    ell_nodes = nodes[nodes["kind"] == "ellipsis"]
    if not ell_nodes.empty:
        fig.add_trace(go.Scatter(x=ell_nodes["x"], y=ell_nodes["y"], mode="text", text=ell_nodes["label"],
                                 textfont=_font(30), hoverinfo="skip", showlegend=False))
    # axes: step numbers along x, row names along y
    steps = nodes[nodes["kind"].isin(["input", "hidden"]) & (nodes["direction"].fillna(0) == 0)]
    steps = steps.drop_duplicates("x").sort_values("x")
    tickx = steps["x"].tolist() + ell_nodes.drop_duplicates("x")["x"].tolist()
    tickt = [f"t={int(t)}" if p != "decoder" else f"i={int(t)}" for t, p in zip(steps["t"], steps["part"],
                                                                               strict=True)]
    tickt += ["⋯"] * (len(tickx) - len(tickt))
    rows = _row_names(nodes)
    kw = {}
    if has_grad:
        # no colour bar: each state shows its value; the colour (log10, Viridis) only repeats it
        kw["coloraxis"] = {"colorscale": "Viridis", "cmin": lo_c, "cmax": hi_c, "showscale": False}
    top_y = float(nodes["y"].max())
    fig = _layout(fig, title, None, None, note=note, height=int(120 + ROW_PX * (top_y + 1.1)), **kw)
    x_lo, x_hi = float(nodes["x"].min()) - 0.6, float(nodes["x"].max()) + 0.6
    fig.update_xaxes(tickvals=tickx, ticktext=tickt, range=[x_lo, x_hi], showgrid=False, zeroline=False)
    fig.update_yaxes(tickvals=list(rows), ticktext=list(rows.values()), range=[-0.6, top_y + 0.5], showgrid=False,
                     zeroline=False)
    fig.update_layout(plot_bgcolor="white", hovermode="closest")
    return fig


def _color_range(nodes: pd.DataFrame) -> tuple[float, float]:
    """log10 range of the positive ‖∂L/∂h_t‖ on the hidden nodes (0, 1 when there are none)."""
    pos = nodes.loc[(nodes["kind"] == "hidden") & (nodes["grad_norm"] > 0), "grad_norm"].to_numpy(np.float64)
    if not len(pos):
        return 0.0, 1.0
    lo, hi = math.log10(pos.min()), math.log10(pos.max())
    return lo, max(hi, lo + 1e-6)


def _short(v: float) -> str:
    """At most 4-5 characters, to fit in a node: 0.56, 3.2, 12, 3e-4."""
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return "inf" if v > 0 else "nan"
    if 0.01 <= v < 10:
        return f"{v:.2f}".rstrip("0").rstrip(".") if v < 1 else f"{v:.1f}"
    if 10 <= v < 1000:
        return f"{v:.0f}"
    e = math.floor(math.log10(v))
    m = round(v / 10 ** e)
    if m == 10:
        m, e = 1, e + 1
    return f"{m}e{e}"


def _row_names(nodes: pd.DataFrame) -> dict[int, str]:
    """y -> the name of the row (inputs, each layer/direction, outputs, losses)."""
    names = {}
    for r in nodes.itertuples():
        y = int(r.y)
        if y in names or r.kind == "ellipsis":
            continue
        if r.kind == "input":
            names[y] = "input x_t"
        elif r.kind == "hidden":
            L = int(nodes.loc[nodes["kind"] == "hidden", "layer"].max()) + 1
            both = (nodes.loc[nodes["kind"] == "hidden", "direction"] == 1).any()
            names[y] = "h_t" + (f" layer {int(r.layer) + 1}" if L > 1 else "") + \
                       ((" ←" if r.direction else " →") if both else "")
        elif r.kind == "output":
            names[y] = "output ŷ_t"
        elif r.kind == "loss":
            names[y] = "loss"
    return dict(sorted(names.items()))


def unrolled_note(shape: str, cell: str, T: int, truncation: int | None, has_grad: bool) -> str:
    """The figure's subtitle: the shape, the cell, T, truncation, what the colours mean."""
    parts = [f"{SHAPES[shape][0]} · {CELL_TITLES.get(cell, cell)} · T = {T}"]
    parts.append(f"truncated BPTT: cut every {truncation} steps" if truncation and truncation < T else "full BPTT")
    if has_grad:
        parts.append("in each state and as the orange arrows' width: ‖∂L/∂h_t‖ flowing back")
    return " · ".join(parts)


__all__ = ["MAX_STEPS", "SHAPES", "cut_links", "sequence_shape", "shown_steps", "unrolled_figure", "unrolled_frames",
           "unrolled_note"]
