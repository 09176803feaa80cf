"""Closed forms drawn over the measurements as teaching overlays.

    bound = tanh_rnn_bound(sigma_max, T, end_norm)      # (T,) Pascanu et al. 2013
    df = predicted_decay_frame(core, T, end_norm)       # t, bound_sigma, rate_rho (RNN cores only)
    slope = measured_slope(grad_norm)                   # log10 decay per step, to compare with log10 sigma_max
    shapes = output_shapes(32, 50, 64, 2, True, "lstm") # what nn.LSTM returns, with a one-line why each
    code = shapes_snippet("gru", 32, 50, 8, 64)         # runnable PyTorch that prints those shapes

Time steps are 0-based: the loss sits at the last step T-1, so the gradient has travelled T-1-t steps back
to reach h_t.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from torch import nn

from rnnviz.tracing import spectral_bound


def tanh_rnn_bound(sigma_max: float, T: int, end_norm: float = 1.0) -> np.ndarray:
    """(T,) upper bound on ||dL/dh_t|| for a tanh (or relu) RNN with the loss at the last step:

        ||dL/dh_t|| <= sigma_max(W_hh)^(T-1-t) * ||dL/dh_{T-1}||      (Pascanu, Mikolov & Bengio 2013)

    since each step back multiplies by W_hh^T diag(phi'(a)) and |phi'| <= 1. Exact equality for W_hh = s*Q,
    Q orthogonal, with zero input, bias and state (then h = 0, phi' = 1 and ||Q^T v|| = ||v||).
    """
    k = (T - 1 - np.arange(T)).astype(np.float64)  # steps back from the loss
    with np.errstate(over="ignore"):
        return end_norm * np.power(float(sigma_max), k)


def predicted_decay_frame(core: nn.Module, T: int, end_norm: float, layer: int = 0) -> pd.DataFrame:
    """t, bound_sigma, rate_rho for the first direction of `layer` of an nn.RNN core:

        bound_sigma = sigma_max(W_hh)^(T-1-t) * end_norm   the worst case, every step (tanh_rnn_bound)
        rate_rho    = rho(W_hh)^(T-1-t) * end_norm         the asymptotic rate (spectral radius rho)

    For a non-normal W_hh, ||(W^T)^k|| ~ rho^k only as k grows, while sigma_max bounds every step.
    LSTM and GRU: an empty frame. Their gradient also flows along a gated path (c_t = f_t c_{t-1} + ...,
    h_t = (1-z_t) n_t + z_t h_{t-1}) whose factor per step is an input-dependent gate, not W_hh, so no
    bound in sigma_max(W_hh) holds (see forget_gate_decay for the LSTM's idealised cell path).
    """
    cols = ["t", "bound_sigma", "rate_rho"]
    if not isinstance(core, nn.RNN):
        return pd.DataFrame(columns=cols)
    rho, sigma = spectral_bound(getattr(core, f"weight_hh_l{layer}"))
    k = T - 1 - np.arange(T)
    with np.errstate(over="ignore"):
        rate = end_norm * np.power(rho, k.astype(np.float64))
    return pd.DataFrame({"t": np.arange(T), "bound_sigma": tanh_rnn_bound(sigma, T, end_norm), "rate_rho": rate})


def measured_slope(grad_norm) -> float:
    """Least-squares slope of log10 ||dL/dh_t|| against the steps back from the loss, k = T-1-t, over the
    finite positive entries: the measured log10 factor per step back in time.

    Pure geometric decay ||dL/dh_t|| = s^(T-1-t) ||dL/dh_{T-1}|| gives exactly log10(s); for a tanh RNN
    with the loss at the end it is at most log10(sigma_max) (negative = vanishing, positive = exploding).
    NaN with fewer than two usable points. Zeros (truncation cuts) are skipped.
    """
    g = np.asarray(grad_norm, dtype=np.float64).reshape(-1)  # (T,)
    k = len(g) - 1 - np.arange(len(g))  # steps back from the last step
    ok = np.isfinite(g) & (g > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(k[ok], np.log10(g[ok]), 1)[0])


def forget_gate_decay(b_f: float, T: int) -> np.ndarray:
    """(T,) sigma(b_f)^(T-1-t): dL/dc_t / dL/dc_{T-1} along an LSTM's cell path with W_hh = 0 and x = 0
    (Jozefowicz et al. 2015). b_f = 0 gives 0.5 per step (0.5^50 = 8.9e-16); b_f = 1 gives 0.731
    (0.731^50 = 1.6e-7). In PyTorch the effective forget bias is b_if + b_hf."""
    f = 1.0 / (1.0 + math.exp(-b_f))
    return np.power(f, (T - 1 - np.arange(T)).astype(np.float64))


def clip(g_norm, threshold):
    """The gradient norm after global-norm clipping (scalar or array).

    Pascanu et al. 2013:   if ||g|| >= threshold:  g <- threshold * g / ||g||
    torch.nn.utils.clip_grad_norm_(params, max_norm) scales every gradient by
        min(1, max_norm / (||g|| + 1e-6))
    and returns the *pre-clip* norm ||g||. This returns ||g|| * min(1, threshold / (||g|| + 1e-6)):
    the direction is kept, only the length is capped (just under the threshold, by the 1e-6).
    """
    g = np.asarray(g_norm, dtype=np.float64)
    out = g * np.minimum(1.0, threshold / (g + 1e-6))
    return float(out) if out.ndim == 0 else out


_MODES = {"rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU", "lstm": "LSTM", "gru": "GRU",
          "rnn": "RNN_TANH", "RNN (tanh)": "RNN_TANH", "RNN (relu)": "RNN_RELU"}
_BLOCKS = {"RNN_TANH": (1, "W_hh"), "RNN_RELU": (1, "W_hh"), "LSTM": (4, "rows i | f | g | o"),
           "GRU": (3, "rows r | z | n")}


def _mode(cell) -> str:
    mode = _MODES.get(cell, cell.upper() if isinstance(cell, str) else cell)
    if mode not in _BLOCKS:
        raise ValueError(f"cell must be one of {sorted(_MODES)}, got {cell!r}")
    return mode


def output_shapes(batch: int, time: int, hidden: int, num_layers: int = 1, bidirectional: bool = False,
                  cell: str = "lstm", batch_first: bool = True,
                  input_size: int | None = None) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, one-line why) of what `output, h_n = core(x)` returns (for an LSTM:
    `output, (h_n, c_n)`), plus weight_hh_l0; with input_size also the input x and weight_ih_l0.
    cell: "rnn_tanh" | "rnn_relu" | "lstm" | "gru" (or the torch mode / a run label). D = 2 if bidirectional:

        input   (batch, time, input_size)          batch_first=True;  (time, batch, input_size) otherwise
        output  (batch, time, D*hidden)            batch_first=True;  (time, batch, D*hidden) otherwise:
                                                   top layer only, every step, directions concatenated
        h_n     (num_layers*D, batch, hidden)      every layer and direction, last step only; batch_first
                                                   does NOT apply to it (nor to h_0, c_0)
        c_n     (num_layers*D, batch, hidden)      LSTM only: the cell state at the last step
    """
    mode = _mode(cell)
    D = 2 if bidirectional else 1
    bt = (batch, time) if batch_first else (time, batch)
    layout = "batch_first=True: (batch, time, …)" if batch_first \
        else "batch_first=False (the default): (time, batch, …)"
    dirs = "forward and backward states concatenated on the last axis" if bidirectional else "one direction"
    last = "position T-1 for the forward direction, position 0 for the backward one" if bidirectional \
        else "the state after the last time step"
    out = {}
    if input_size is not None:
        out["input"] = ((*bt, input_size), f"the sequence x_t at every step; {layout}")
    out["output"] = ((*bt, D * hidden),
                     f"the top layer's h_t at every time step ({dirs}); lower layers' states are not in it; {layout}")
    out["h_n"] = ((num_layers * D, batch, hidden),
                  f"the final state of every layer{' and direction' if bidirectional else ''} ({last}); "
                  f"h_n[-{D}:] is the top layer; layers first whatever batch_first says")
    if mode == "LSTM":
        out["c_n"] = ((num_layers * D, batch, hidden),
                      "LSTM only: the final cell state c_T of every layer and direction, same layout as h_n")
    G, rows = _BLOCKS[mode]
    if input_size is not None:
        what = "W_xh, H x input" if G == 1 else f"{G} stacked H x input blocks ({rows})"
        deeper = f"; layers above read D*hidden = {D * hidden} inputs" if num_layers > 1 else ""
        out["weight_ih_l0"] = ((G * hidden, input_size), f"input weights of layer 0: {what}{deeper}")
    out["weight_hh_l0"] = ((G * hidden, hidden), "recurrent weights of layer 0: "
                           + ("W_hh, H x H" if G == 1 else f"{G} stacked H x H blocks ({rows})"))
    return out


def shapes_frame(cells, batch: int, time: int, hidden: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, input_size: int | None = None) -> pd.DataFrame:
    """cell, name, shape, why: output_shapes for every cell in `cells`, one row per returned tensor."""
    rows = [{"cell": c, "name": name, "shape": str(tuple(shape)), "why": why}
            for c in cells for name, (shape, why) in
            output_shapes(batch, time, hidden, num_layers, bidirectional, c, batch_first, input_size).items()]
    return pd.DataFrame(rows, columns=["cell", "name", "shape", "why"])


_CTOR = {"RNN_TANH": ("nn.RNN", ', nonlinearity="tanh"'), "RNN_RELU": ("nn.RNN", ', nonlinearity="relu"'),
         "LSTM": ("nn.LSTM", ""), "GRU": ("nn.GRU", "")}


def shapes_snippet(cell: str, batch: int, time: int, input_size: int, hidden: int, num_layers: int = 1,
                   bidirectional: bool = False, batch_first: bool = True, dropout: float = 0.0) -> str:
    """A short runnable PyTorch snippet that builds the module and prints the shape of everything
    output_shapes lists (same names, one `name (shape)` line each), with the expected shapes as comments."""
    for name, v in (("batch", batch), ("time", time), ("input_size", input_size), ("hidden", hidden),
                    ("num_layers", num_layers)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    mode = _mode(cell)
    shapes = output_shapes(batch, time, hidden, num_layers, bidirectional, cell, batch_first, input_size)
    ctor, extra = _CTOR[mode]
    kw = f"input_size={input_size}, hidden_size={hidden}, num_layers={num_layers}"
    if num_layers > 1 and dropout:
        kw += f", dropout={float(dropout):g}"  # between layers, training mode only: shapes are unchanged
    flags = f"bidirectional={bool(bidirectional)}, batch_first={bool(batch_first)}{extra}"
    ctor_line = f"rnn = {ctor}({kw}, {flags})"
    if len(ctor_line) > 80:  # two lines: the snippet must fit a projector's code block without scrolling
        ctor_line = f"rnn = {ctor}({kw},\n{' ' * len(f'rnn = {ctor}(')}{flags})"
    x_dims = "batch, time, input" if batch_first else "time, batch, input"
    state = "(h_n, c_n)" if mode == "LSTM" else "h_n"
    lines = ["import torch", "from torch import nn", "",
             ctor_line,
             f"x = torch.randn{shapes['input'][0]}  # ({x_dims})",
             f"output, {state} = rnn(x)"]
    values = {"input": "x", "output": "output", "h_n": "h_n", "c_n": "c_n",
              "weight_ih_l0": "rnn.weight_ih_l0", "weight_hh_l0": "rnn.weight_hh_l0"}
    for name, (shape, _) in shapes.items():
        lines.append(f'print("{name}", tuple({values[name]}.shape))  # {tuple(shape)}')
    return "\n".join(lines) + "\n"


__all__ = ["clip", "forget_gate_decay", "measured_slope", "output_shapes", "predicted_decay_frame", "shapes_frame",
           "shapes_snippet", "tanh_rnn_bound"]
