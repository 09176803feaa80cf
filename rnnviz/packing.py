"""Padding and packing: a batch of sequences of different lengths, run three ways through one recurrent core.

    task = make_task("sentiment", seq_len=12)                 # x (B, T) padded with pad_id 0, lengths (B,)
    model = PaddedClassifier(ModelConfig(cell="gru"), task)   # nn.Embedding(padding_idx=0) -> core -> Linear(h_n)
    logits = model(batch.x, batch.lengths, method="packed")   # (B, 2)
    run = PackingRun(ModelConfig(cell="gru"), "sentiment", 12) # packed and masked copies, trained in lockstep
    frames = inspect(run.models["packed"], task, batch)       # what the Padding page draws

The three ways (`METHODS`), for inputs e (B, T, E) and lengths L_b:

    packed  nn.utils.rnn.pack_padded_sequence(e, L, batch_first=True, enforce_sorted=False) -> core -> h_n.
            The kernel never reads a padded position: for every direction h_n is the state at the sequence's own
            last step (forward: t = L_b - 1; backward: t = 0 after starting at t = L_b - 1).
    masked  the padded batch, step by step, each step's new state kept only where the position is valid:
                h_t = where(t < L_b, cell(e_t, h_{t-1}), h_{t-1})        (LSTM: h and c alike)
            The forward direction carries h_{L_b - 1} through the pads to the end; the backward direction starts on
            the pads and carries its zero initial state through them. Equal to packed (tested).
    padded  the padded batch straight through the core, lengths ignored: h_n is the state after all T steps, so
            the pads change it (their embedding is 0, but the biases and W_hh still act) and receive gradient.

Why it matters: with packing (or the mask) a padded position gets exactly zero gradient, dL/de_{b,t} = 0 for
t >= L_b, and changing what is written there changes nothing. nn.Embedding's padding_idx row is all zeros and its
gradient is always exactly zero, so the pad vector never learns.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnviz.figures import TEXT, _empty, _figure, _font, _is_empty, _layout
from rnnviz.models import ModelConfig, apply_init, make_core
from rnnviz.tasks import make_task

PACK_TASKS = ("sentiment", "parity")  # the tasks with variable lengths (Batch.lengths) and a pad token
METHODS = ("packed", "masked", "padded")
METHOD_NAMES = {"packed": "packed (pack_padded_sequence)", "masked": "padded + mask",
                "padded": "padded, lengths ignored"}
PANEL_NAMES = {"packed": "packed", "masked": "padded + mask", "padded": "lengths ignored"}  # 3 fit side by side
TRAINED = ("packed", "masked")  # PackingRun trains these two; "padded" is only inspected


# ----------------------------------------------------------------------------------------------------------
# Running a core three ways


def run_packed(core: nn.Module, e: Tensor, lengths: Tensor):
    """pack -> core -> unpack. e (B, T, E) batch_first, lengths (B,). Returns out (B, T, D*H) with zeros at the
    pads, h_n (L*D, B, H), c_n (L*D, B, H) | None; h_n/c_n in the batch's own order (PyTorch un-sorts them)."""
    T = e.shape[1]
    packed = pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, hx = core(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D*H), 0 at pads
    h_n, c_n = hx if isinstance(hx, tuple) else (hx, None)
    return out, h_n, c_n


def run_padded(core: nn.Module, e: Tensor):
    """The padded batch through the core, lengths ignored: h_n is the state after all T steps."""
    out, hx = core(e)
    h_n, c_n = hx if isinstance(hx, tuple) else (hx, None)
    return out, h_n, c_n


def _cell_step(mode: str, gi: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor, b_hh: Tensor | None):
    """One step of PyTorch's cell equations; gi = W_ih x_t + b_ih (B, G*H) precomputed. Returns (h', c')."""
    gh = F.linear(h, w_hh, b_hh)  # (B, G*H)
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if mode == "GRU":
        ri, zi, ni = gi.chunk(3, dim=-1)
        rh, zh, nh = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(ri + rh), torch.sigmoid(zi + zh)
        n = torch.tanh(ni + r * nh)
        return (1 - z) * n + z * h, None
    a = gi + gh
    return (torch.tanh(a) if mode == "RNN_TANH" else torch.relu(a)), None


def run_masked(core: nn.Module, e: Tensor, lengths: Tensor):
    """The padded batch step by step with the state held where t >= L_b (see the module docstring), written
    out with the core's own parameters (autograd flows into them and into e). e (B, T, E).
    Returns out (B, T, D*H) with zeros at the pads, h_n (L*D, B, H), c_n (L*D, B, H) | None."""
    B, T, _ = e.shape
    mode, H, L = core.mode, core.hidden_size, core.num_layers
    D = 2 if core.bidirectional else 1
    valid = torch.arange(T, device=e.device)[None, :] < lengths.to(e.device)[:, None]  # (B, T) bool
    inp, h_n, c_n = e, [], []
    for layer in range(L):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(core, "weight_ih" + sfx), getattr(core, "weight_hh" + sfx)
            b_ih = getattr(core, "bias_ih" + sfx) if core.bias else None
            b_hh = getattr(core, "bias_hh" + sfx) if core.bias else None
            gi = F.linear(inp, w_ih, b_ih)  # (B, T, G*H): the input part of every step at once
            h = e.new_zeros(B, H)
            c = e.new_zeros(B, H) if mode == "LSTM" else None
            out = [None] * T
            for t in (range(T) if d == 0 else range(T - 1, -1, -1)):
                h_new, c_new = _cell_step(mode, gi[:, t], h, c, w_hh, b_hh)
                m = valid[:, t:t + 1]  # (B, 1)
                h = torch.where(m, h_new, h)  # a pad keeps the state exactly; no gradient reaches h_new there
                if c is not None:
                    c = torch.where(m, c_new, c)
                out[t] = torch.where(m, h_new, torch.zeros_like(h_new))  # (B, H), 0 at pads as pad_packed gives
            outs.append(torch.stack(out, dim=1))  # (B, T, H)
            h_n.append(h)
            c_n.append(c)
        inp = torch.cat(outs, dim=-1)  # (B, T, D*H): the next layer's input
    return inp, torch.stack(h_n), (torch.stack(c_n) if mode == "LSTM" else None)


def run_core(core: nn.Module, e: Tensor, lengths: Tensor, method: str):
    """(out (B, T, D*H), h_n (L*D, B, H), c_n | None) by one of METHODS."""
    if method == "packed":
        return run_packed(core, e, lengths)
    if method == "masked":
        return run_masked(core, e, lengths)
    if method == "padded":
        return run_padded(core, e)
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def top_state(h_n: Tensor, num_layers: int, directions: int) -> Tensor:
    """h_n (L*D, B, H) -> the top layer's final states, directions concatenated (B, D*H)."""
    top = h_n.view(num_layers, directions, *h_n.shape[1:])[-1]  # (D, B, H)
    return torch.cat(list(top), dim=-1)


# ----------------------------------------------------------------------------------------------------------
# The model and its training


class PaddedClassifier(nn.Module):
    """Many-to-one on padded token sequences: nn.Embedding(V, E, padding_idx=pad_id) -> nn.RNN/LSTM/GRU (batch_first,
    no dropout: the packed and masked copies must see the same network) -> Linear(top-layer h_n of each
    direction) -> class logits (B, C)."""

    def __init__(self, cfg: ModelConfig, task):
        super().__init__()
        if task.pad_id is None or task.vocab_size is None:
            raise ValueError(f"{task.name!r} has no pad token: padding needs a token task with pad_id")
        cfg.validate()
        self.cfg, self.pad_id = cfg, task.pad_id
        self.directions = 2 if cfg.bidirectional else 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.embed = nn.Embedding(task.vocab_size, cfg.embed_dim, padding_idx=task.pad_id)
            self.core = make_core(ModelConfig(**{**cfg.to_dict(), "dropout": 0.0}), cfg.embed_dim, cfg.bidirectional)
            apply_init(self.core, cfg)
            self.out = nn.Linear(self.directions * cfg.hidden_size, task.output_dim)

    def features(self, e: Tensor, lengths: Tensor, method: str = "packed"):
        """e (B, T, E) -> (top-layer final state (B, D*H), h_n (L*D, B, H), out (B, T, D*H))."""
        out, h_n, _ = run_core(self.core, e, lengths, method)
        return top_state(h_n, self.cfg.num_layers, self.directions), h_n, out

    def forward(self, x: Tensor, lengths: Tensor, method: str = "packed") -> Tensor:
        """x (B, T) token ids padded with pad_id, lengths (B,) -> logits (B, C)."""
        return self.out(self.features(self.embed(x), lengths, method)[0])


class PackingRun:
    """Two copies of one PaddedClassifier (same initial weights), one trained on packed batches and one on
    padded + masked batches, in lockstep on the same batches with Adam and gradient clipping at 1. The two
    compute the same function, so their losses agree to float rounding (float32: about 1e-7 per step; Adam can
    grow that over many steps)."""

    def __init__(self, model_cfg: ModelConfig, task: str = "sentiment", seq_len: int = 12, batch_size: int = 32,
                 lr: float = 1e-2, seed: int = 0):
        if task not in PACK_TASKS:
            raise ValueError(f"task must be one of {list(PACK_TASKS)}, got {task!r}")
        self.task = make_task(task, seq_len)
        self.model_cfg, self.batch_size, self.lr, self.seed = model_cfg, batch_size, lr, seed
        first = PaddedClassifier(model_cfg, self.task)
        second = PaddedClassifier(model_cfg, self.task)
        second.load_state_dict(first.state_dict())
        self.models = {"packed": first, "masked": second}
        self.opts = {m: torch.optim.Adam(self.models[m].parameters(), lr=lr) for m in TRAINED}
        self.gen = torch.Generator().manual_seed(seed)
        self.probe = self.task.probe(8, seed=1234 + seed)
        self.steps = 0
        self.rows: list[dict] = []

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            b = self.task.sample(self.batch_size, self.gen)
            self.steps += 1
            for m in TRAINED:
                model, opt = self.models[m], self.opts[m]
                opt.zero_grad(set_to_none=True)
                logits = model(b.x, b.lengths, m)
                loss = F.cross_entropy(logits, b.y)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                self.rows.append({"run": METHOD_NAMES[m], "step": self.steps, "loss": float(loss.detach()),
                                  "metric": float((logits.argmax(-1) == b.y).float().mean())})

    def history_frame(self) -> pd.DataFrame:
        """run, step, loss, metric, baseline, metric_name (figures.loss_curves reads it)."""
        df = pd.DataFrame(self.rows, columns=["run", "step", "loss", "metric"])
        return df.assign(baseline=self.task.baseline, metric_name="accuracy")

    def max_loss_gap(self) -> float:
        """max over steps of |loss(packed) - loss(masked)|: 0 up to float rounding."""
        df = self.history_frame()
        if df.empty:
            return 0.0
        w = df.pivot(index="step", columns="run", values="loss")
        return float((w[METHOD_NAMES["packed"]] - w[METHOD_NAMES["masked"]]).abs().max())


# ----------------------------------------------------------------------------------------------------------
# What the page shows: tidy frames


def token_strings(task, x: Tensor) -> list[list[str]]:
    return [[task.itos[i] for i in row] for row in x.tolist()]


def _pads_replaced(task, batch, generator: torch.Generator) -> Tensor:
    """x with every padded position overwritten by a random non-pad token."""
    x = batch.x.clone()
    valid = torch.arange(x.shape[1])[None, :] < batch.lengths[:, None]
    lo = 1 if task.pad_id == 0 else 0
    noise = torch.randint(lo, task.vocab_size, x.shape, generator=generator)
    noise = torch.where(noise == task.pad_id, torch.full_like(noise, lo), noise)
    return torch.where(valid, x, noise)


def inspect(model: PaddedClassifier, task, batch, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Run `batch` through `model` by every method and return tidy frames:

    batch      seq, t, token, valid, length, label, grad_<method>: ||dL/de_{b,t}|| of the batch's mean
               cross-entropy L with respect to the embedded input at (b, t) (exactly 0 where nothing reads it)
    states     seq, length, label, p_label (packed), and max |difference| of h_n (all layers, directions):
               masked_vs_packed, <method>_pads_replaced (the same method with random tokens written into the
               pads), padded_vs_packed
    embedding  token_id, token, is_pad, count (in the batch), grad_norm (||dL/dE[v]||, packed), weight_norm
    """
    model.eval()
    B, T = batch.x.shape
    valid = (torch.arange(T)[None, :] < batch.lengths[:, None])  # (B, T)
    grads, h_ns = {}, {}
    emb_grad = None
    for m in METHODS:
        model.zero_grad(set_to_none=True)
        e = model.embed(batch.x)  # (B, T, E)
        e.retain_grad()
        feats, h_n, _ = model.features(e, batch.lengths, m)
        loss = F.cross_entropy(model.out(feats), batch.y)
        loss.backward()
        grads[m] = e.grad.norm(dim=-1)  # (B, T)
        h_ns[m] = h_n.detach()  # (L*D, B, H)
        if m == "packed":
            emb_grad = model.embed.weight.grad.detach().clone()  # (V, E)
            with torch.no_grad():
                p_label = torch.softmax(model.out(feats), -1)[torch.arange(B), batch.y]
    model.zero_grad(set_to_none=True)
    g = torch.Generator().manual_seed(seed)
    x2 = _pads_replaced(task, batch, g)
    with torch.no_grad():
        replaced = {m: model.features(model.embed(x2), batch.lengths, m)[1] for m in METHODS}
    toks = token_strings(task, batch.x)

    bt = np.indices((B, T)).reshape(2, -1)
    bf = pd.DataFrame({"seq": bt[0], "t": bt[1], "token": [toks[b][t] for b, t in zip(*bt, strict=True)],
                       "valid": valid.reshape(-1).numpy(), "length": batch.lengths[bt[0]].numpy(),
                       "label": batch.y[bt[0]].numpy()})
    for m in METHODS:
        bf[f"grad_{m}"] = grads[m].reshape(-1).double().numpy()

    def gap(a: Tensor, b: Tensor) -> np.ndarray:
        return (a - b).abs().amax(dim=(0, 2)).double().numpy()  # (B,): max over layers*dirs and units

    sf = pd.DataFrame({"seq": np.arange(B), "length": batch.lengths.numpy(), "label": batch.y.numpy(),
                       "p_label": p_label.double().numpy(),
                       "masked_vs_packed": gap(h_ns["masked"], h_ns["packed"])})
    for m in METHODS:
        sf[f"{m}_pads_replaced"] = gap(replaced[m], h_ns[m])
    sf["padded_vs_packed"] = gap(h_ns["padded"], h_ns["packed"])
    sf = sf[["seq", "length", "label", "masked_vs_packed", "padded_vs_packed", "packed_pads_replaced",
             "masked_pads_replaced", "padded_pads_replaced", "p_label"]]

    V = model.embed.num_embeddings
    counts = torch.bincount(batch.x.reshape(-1), minlength=V)
    ef = pd.DataFrame({"token_id": np.arange(V), "token": task.itos[:V], "is_pad": np.arange(V) == task.pad_id,
                       "count": counts.numpy(), "grad_norm": emb_grad.norm(dim=-1).double().numpy(),
                       "weight_norm": model.embed.weight.detach().norm(dim=-1).double().numpy()})
    model.train()
    return {"batch": bf, "states": sf, "embedding": ef}


def padded_batch_frame(task, batch) -> pd.DataFrame:
    """The padded batch as a table: one row per sequence, columns length, label, t0 .. t{T-1} (tokens; pads as
    the pad token)."""
    toks = token_strings(task, batch.x)
    df = pd.DataFrame(toks, columns=[f"t{t}" for t in range(batch.x.shape[1])])
    df.insert(0, "label", batch.y.numpy())
    df.insert(0, "length", batch.lengths.numpy())
    df.insert(0, "seq", np.arange(len(df)))
    return df


# ----------------------------------------------------------------------------------------------------------
# Figures (drawn like rnnviz.figures: projector fonts, colour-blind-safe scales)

PAD_GREY = "#d9d9d9"


def input_grad_figure(bf: pd.DataFrame, methods=("packed", "padded"), pad_token: str = "") -> go.Figure:
    """||dL/de_{b,t}|| per sequence (rows) and position (columns), one panel per method, on one log colour scale.
    Cells read a token; the black bar after the last valid token marks the length; a pad that gets exactly zero
    gradient is grey and reads 0."""
    title = "‖∂L/∂e_t‖: the gradient reaching each input position"
    xt, yt = "position t", "sequence (length L)"
    if _is_empty(bf):
        return _empty(title, xt, yt)
    B, T = int(bf["seq"].max()) + 1, int(bf["t"].max()) + 1
    cols = [f"grad_{m}" for m in methods]
    pos = bf[cols].to_numpy(dtype=np.float64)
    pos = pos[np.isfinite(pos) & (pos > 0)]
    lo, hi = (math.log10(pos.min()), math.log10(pos.max())) if len(pos) else (-8.0, 0.0)
    lo = min(lo, hi - 1)
    fig = make_subplots(rows=1, cols=len(methods), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[PANEL_NAMES[m] for m in methods], figure=_figure())
    lengths = bf.groupby("seq")["length"].first().reindex(range(B)).to_numpy()
    for i, m in enumerate(methods, start=1):
        g = np.full((B, T), np.nan)
        g[bf["seq"].to_numpy(), bf["t"].to_numpy()] = bf[f"grad_{m}"].to_numpy(dtype=np.float64)
        tok = np.full((B, T), "", dtype=object)
        tok[bf["seq"].to_numpy(), bf["t"].to_numpy()] = bf["token"].astype(str).to_numpy()
        zero = g == 0
        with np.errstate(divide="ignore"):
            z = np.where(g > 0, np.log10(np.where(g > 0, g, 1.0)), np.nan)
        text = np.where(zero, "0", "")  # the tokens are in the hover (and the batch table): cells are narrow
        hover = np.vectorize(lambda s, v: f"{s}: {v:.3g}")(tok, np.nan_to_num(g))
        fig.add_trace(go.Heatmap(z=np.where(zero, 1.0, np.nan), x=list(range(T)), y=list(range(B)),
                                 colorscale=[[0, PAD_GREY], [1, PAD_GREY]], showscale=False, hoverinfo="skip",
                                 xgap=1, ygap=1), row=1, col=i)
        fig.add_trace(go.Heatmap(z=z, x=list(range(T)), y=list(range(B)), coloraxis="coloraxis",
                                 customdata=hover, xgap=1, ygap=1,
                                 hovertemplate="sequence %{y}, t = %{x}<br>%{customdata}<extra>" + m + "</extra>"),
                      row=1, col=i)
        fig.add_trace(go.Heatmap(z=np.where(zero, 0.0, np.nan), x=list(range(T)), y=list(range(B)),
                                 colorscale=[[0, PAD_GREY], [1, PAD_GREY]], showscale=False, text=text,
                                 texttemplate="%{text}", textfont={"size": 15, "color": TEXT}, xgap=1, ygap=1,
                                 customdata=hover,
                                 hovertemplate="sequence %{y}, t = %{x}<br>pad: gradient exactly 0<extra></extra>"),
                      row=1, col=i)
        xs, ys = [], []
        for b, L in enumerate(lengths):  # the end of each sequence
            if L < T:
                xs += [L - 0.5, L - 0.5, None]
                ys += [b - 0.5, b + 0.5, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "black", "width": 4}, hoverinfo="skip",
                                 name="end of the sequence (length L)", showlegend=i == 1), row=1, col=i)
    note = (f"grey 0: exactly zero gradient (a pad{(' ' + pad_token) if pad_token else ''} nothing reads)"
            " · black bar: end of the sequence")
    fig = _layout(fig, title, None, None, note=note, height=max(400, 170 + 34 * B),
                  coloraxis={"colorscale": "Viridis", "cmin": lo, "cmax": hi,
                             "colorbar": {"title": {"text": "log10 ‖∂L/∂e‖"}}})
    # upright tick labels that fit a panel on a 1280 px screen (about 700 px for all panels, 26 px a label)
    fits = max(int(700 / len(methods) / 26), 2)
    fig.update_xaxes(title_text=xt, dtick=math.ceil(T / fits), tick0=0, tickangle=0, showgrid=False, zeroline=False)
    ticks = [f"#{b} · L={int(L)}" for b, L in enumerate(lengths)]
    fig.update_yaxes(tickvals=list(range(B)), ticktext=ticks, autorange="reversed", showgrid=False, zeroline=False)
    fig.update_yaxes(title_text=yt, row=1, col=1)
    fig.layout.margin.t += 30  # the panel titles sit between the note and the plots
    return fig


def embedding_grad_figure(ef: pd.DataFrame) -> go.Figure:
    """||dL/dE[v]|| per vocabulary row (bars), the padding_idx row marked: its gradient is exactly zero."""
    title = "‖∂L/∂E[v]‖: the gradient of each embedding row"
    xt, yt = "token v", "‖∂L/∂E[v]‖"
    if _is_empty(ef):
        return _empty(title, xt, yt)
    colors = np.where(ef["is_pad"], "#D55E00", "#0072B2")
    fig = _figure(go.Bar(x=ef["token"].astype(str), y=ef["grad_norm"], marker_color=colors,
                         customdata=np.stack([ef["count"], ef["weight_norm"]], axis=-1),
                         hovertemplate="%{x}<br>‖∂L/∂E[v]‖ = %{y:.3g}<br>in the batch %{customdata[0]} times"
                                       "<br>‖E[v]‖ = %{customdata[1]:.3g}<extra></extra>"))
    for r in ef[ef["is_pad"]].itertuples():  # a zero-height bar draws nothing: say it
        fig.add_annotation(x=str(r.token), y=r.grad_norm, text="exactly 0 (padding_idx)" if r.grad_norm == 0
                           else f"{r.grad_norm:.2g}: not 0!", showarrow=True, arrowhead=2, arrowcolor="#D55E00",
                           ax=0, ay=-45, xanchor="left", font=_font(15))
    fig = _layout(fig, title, xt, yt, note="orange: the padding_idx row (all zeros, never updated) · "
                                           "rows not in the batch get 0 too")
    fig.update_xaxes(tickangle=-45 if len(ef) > 12 else 0)
    return fig


def packing_snippet(cell: str = "gru") -> str:
    """A runnable PyTorch snippet: padding_idx, pack_padded_sequence, h_n, and the checks the page shows."""
    mod = {"lstm": "LSTM", "gru": "GRU"}.get(cell, "RNN")
    hn = "out, (h_n, c_n) = rnn(packed)" if mod == "LSTM" else "out, h_n = rnn(packed)"
    return f"""import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

x = torch.tensor([[5, 7, 2, 0, 0],        # two sequences padded with 0 to T = 5
                  [3, 4, 6, 8, 1]])
lengths = torch.tensor([3, 5])
emb = nn.Embedding(10, 4, padding_idx=0)   # row 0 is all zeros and never gets a gradient
rnn = nn.{mod}(4, 8, batch_first=True)

e = emb(x)                                 # (B, T, E) = (2, 5, 4)
e.retain_grad()
packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
{hn}                 # h_n: (layers*directions, B, H), the state at each sequence's own last step
out, _ = pad_packed_sequence(out, batch_first=True, total_length=5)   # (B, T, H), zeros at the pads
assert torch.equal(out[0, 2], h_n[0, 0])   # the last valid step of sequence 0 is its h_n

h_n[-1].sum().backward()
print(e.grad[0, 3:].abs().max())           # tensor(0.): padded positions get exactly zero gradient
print(emb.weight.grad[0].abs().max())      # tensor(0.): nor does the padding_idx row
"""


__all__ = ["METHODS", "METHOD_NAMES", "PACK_TASKS", "PackingRun", "PaddedClassifier", "embedding_grad_figure",
           "input_grad_figure", "inspect", "packing_snippet", "padded_batch_frame", "run_core", "run_masked",
           "run_packed", "run_padded", "top_state"]
