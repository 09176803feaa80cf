"""The instrumented recurrent core: every internal quantity of an nn.RNN / nn.LSTM / nn.GRU, per time step.

    tr = trace(module, x, loss_fn=None, h0=None, truncation=None)

How it works (exact, no per-step autograd graph):
1. Forward, layer by layer, with PyTorch's own fused kernel (so `output` is PyTorch's). LSTM once the compiled
   extension is loaded (built in the background on first use, rnnviz/_lstm_ext.py): its own loop instead, which
   records the gates and c_t as it goes (`output` equal to PyTorch's to rounding: tested to 1e-5 in float32).
2. Gates for all steps at once from the recorded states: one matmul per weight matrix. The LSTM cell state is
   the one recursion left: c_t = f_t * c_{t-1} + i_t * g_t (T small ops; the compiled loop has it from step 1).
3. dL/d(output) by autograd through `loss_fn` only.
4. The total derivative dL/dh_t, top layer first:
       RNN   explicit recursion  d_{t-1} = e_{t-1} + W_hh^T (d_t * phi'(a_t))
       GRU   explicit recursion  d_{t-1} = e_{t-1} + z_t * d_t + W_hh^T [dr_t | dz_t | r_t * dn_t]
       LSTM  explicit recursion  dc_t = d_t o_t (1 - tc_t^2) + f_{t+1} dc_{t+1}   (tc = tanh c),
                     d_{t-1} = e_{t-1} + W_hh^T [dc g i(1-i) | dc c_{t-1} f(1-f) | dc i(1-g^2) | d tc o(1-o)]_t
             as one C++ loop once the extension is loaded (`_trace_lstm_compiled`); until then the fused
             kernel's own backward on the input augmented with zeros Z_t whose input weights are W_hh:
             dL/dZ_t = W_hh^T dL/da_t, the recurrent part of d_{t-1}
   where e_t is the gradient arriving from the loss or the layer above at step t ("direct").
   Truncated BPTT with window k drops the recurrent term where the state was detached.
5. Parameter gradients and dL/dx: RNN, GRU and the explicit LSTM from the stored pre-activation gradients (one
   matmul each); the kernel-path LSTM from the kernel's backward.

Internally tensors are time-major and in *processing order* (the reverse direction flipped in time),
so both directions share one loop; the compiled LSTM keeps PyTorch's (T, B, D, X) layout instead, each direction's
loop walking its own time order. Everything returned is in input-position order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import torch
from torch import _VF, Tensor, nn

from rnnviz import _lstm_ext

GATE_NAMES = {
    "RNN_TANH": (),
    "RNN_RELU": (),
    "LSTM": ("input", "forget", "cell", "output"),
    "GRU": ("reset", "update", "new"),
}
GATE_STATS_COLUMNS = ["layer", "direction", "gate", "mean", "frac_low", "frac_high"]


@dataclass
class Trace:
    """What `trace` returns. Per-step tensors are (layers, directions, batch, time, hidden)."""

    mode: str  # "RNN_TANH" | "RNN_RELU" | "LSTM" | "GRU"
    output: Tensor  # module(x, h0)[0], in the module's layout (the compiled LSTM's own: equal to rounding)
    h_n: Tensor  # (layers*dirs, batch, hidden), torch's layout
    c_n: Tensor | None  # LSTM only
    loss: float
    hidden: Tensor  # h_t
    cell: Tensor | None  # LSTM c_t
    gates: dict[str, Tensor]  # LSTM input/forget/cell/output, GRU reset/update/new, RNN {}
    grad_hidden: Tensor  # total dL/dh_t under the truncation
    grad_norm: Tensor  # (layers, directions, time) float64: ||dL/dh_t||_2 over units, mean over batch
    grad_input: Tensor  # dL/dx in x's layout
    param_grads: dict[str, Tensor] = field(default_factory=dict)  # keyed like module.named_parameters()
    truncation: int | None = None

    @cached_property
    def grad_cell(self) -> Tensor | None:
        """LSTM total dL/dc_t (the additive cell path), derived on first access from the fields above."""
        if self.mode != "LSTM":
            return None

        def proc(t: Tensor) -> Tensor:  # (D, B, T, H) position <-> (T, D, B, H) processing order
            return _proc(t.permute(2, 0, 1, 3))

        out = []
        for layer in range(self.num_layers):
            g = {"c": proc(self.cell[layer]), "output": proc(self.gates["output"][layer]),
                 "forget": proc(self.gates["forget"][layer])}
            out.append(_proc(_lstm_cell_grad(proc(self.grad_hidden[layer]), g, self.truncation)).permute(1, 2, 0, 3))
        return torch.stack(out)

    @property
    def num_layers(self) -> int:
        return self.hidden.shape[0]

    @property
    def num_directions(self) -> int:
        return self.hidden.shape[1]

    @property
    def seq_len(self) -> int:
        return self.hidden.shape[3]

    def grad_norm_frame(self) -> pd.DataFrame:
        """Tidy: one row per (layer, direction, t) with grad_norm and log10 of it."""
        L, D, T = self.grad_norm.shape
        idx = pd.MultiIndex.from_product([range(L), range(D), range(T)], names=["layer", "direction", "t"])
        df = pd.DataFrame({"grad_norm": self.grad_norm.double().reshape(-1).numpy()}, index=idx).reset_index()
        with np.errstate(divide="ignore"):
            df["log10_grad_norm"] = np.log10(df["grad_norm"].to_numpy())
        return df

    def gate_stats(self, low: float = 0.05, high: float = 0.95) -> list[dict]:
        """Rows (layer, direction, gate, mean, frac_low, frac_high): mean activation and fraction saturated.

        Saturation is judged on the gate's own range: sigmoid gates in [0, 1], tanh ones mapped to [0, 1]
        by (a + 1) / 2. One reduction per statistic and gate over (batch, time, unit).
        """
        rows = []
        for name, g in self.gates.items():
            unit = (g + 1) / 2 if name in ("cell", "new") else g  # tanh gates -> [0, 1]
            stats = [g.mean(dim=(2, 3, 4)), (unit < low).float().mean(dim=(2, 3, 4)),
                     (unit > high).float().mean(dim=(2, 3, 4))]  # each (L, D)
            for (layer, d), (m, lo, hi) in zip(np.ndindex(*g.shape[:2]),
                                               zip(*(x.reshape(-1).tolist() for x in stats), strict=True),
                                               strict=True):
                rows.append({"layer": layer, "direction": d, "gate": name, "mean": m, "frac_low": lo,
                             "frac_high": hi})
        return rows

    def gate_stats_frame(self, low: float = 0.05, high: float = 0.95) -> pd.DataFrame:
        """gate_stats as a tidy DataFrame."""
        return pd.DataFrame(self.gate_stats(low, high), columns=GATE_STATS_COLUMNS)


# ----------------------------------------------------------------------------------------------------------
# Validation


def _mode_of(module) -> str:
    if not isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        raise TypeError(
            f"rnnviz.trace needs a torch.nn.RNN, nn.LSTM or nn.GRU module, got {type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise ValueError("LSTM with proj_size > 0 is not supported by rnnviz.trace")
    return module.mode


def _check_truncation(truncation) -> int | None:
    if truncation is None:
        return None
    if isinstance(truncation, bool) or not isinstance(truncation, int):
        raise TypeError(f"truncation must be a positive int or None, got {truncation!r}")
    if truncation < 1:
        raise ValueError(f"truncation must be >= 1 (a window of k steps), got {truncation}")
    return truncation


def _check_input(module, x) -> tuple[Tensor, bool]:
    """Return x as time-major (T, B, in) and whether it was batched."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor (embed tokens first), got dtype {x.dtype}")
    dtype = next(module.parameters()).dtype
    if x.dtype != dtype:
        raise TypeError(f"x has dtype {x.dtype} but the module's weights are {dtype}")
    if x.dim() not in (2, 3):
        raise ValueError(f"x must have rank 3 (batched) or 2 (unbatched), got shape {tuple(x.shape)}")
    if x.shape[-1] != module.input_size:
        raise ValueError(f"x has {x.shape[-1]} features but the module expects input_size={module.input_size}")
    batched = x.dim() == 3
    xt = x.unsqueeze(1) if not batched else (x.transpose(0, 1) if module.batch_first else x)
    if xt.shape[0] == 0 or xt.shape[1] == 0:
        raise ValueError(f"x must have at least one time step and one sequence, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    return xt.detach().cpu(), batched


def _check_h0(module, h0, B: int, batched: bool, dtype) -> tuple[Tensor, Tensor | None]:
    """Return (h0, c0) as (layers*dirs, B, H) tensors (zeros where not given)."""
    LD = module.num_layers * (2 if module.bidirectional else 1)
    H = module.hidden_size
    zeros = torch.zeros(LD, B, H, dtype=dtype)
    if h0 is None:
        return zeros, (zeros.clone() if module.mode == "LSTM" else None)
    if module.mode == "LSTM":
        if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
            raise TypeError("h0 for an LSTM must be a tuple (h0, c0)")
        parts = list(h0)
    else:
        if not isinstance(h0, Tensor):
            raise TypeError(f"h0 must be a tensor, got {type(h0).__name__}")
        parts = [h0]
    want = (LD, B, H) if batched else (LD, H)
    out = []
    for name, p in zip(("h0", "c0"), parts, strict=False):
        if not isinstance(p, Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(p).__name__}")
        if tuple(p.shape) != want:
            raise ValueError(f"{name} must have shape {want} (layers*directions, batch, hidden), got {tuple(p.shape)}")
        if not torch.isfinite(p).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        out.append((p if batched else p.unsqueeze(1)).detach().cpu().to(dtype))
    return out[0], (out[1] if len(out) > 1 else None)


# ----------------------------------------------------------------------------------------------------------
# Helpers


def _layer_params(module, layer: int, detach: bool) -> list[list[Tensor]]:
    """Per direction [w_ih (GH, in), w_hh (GH, H), b_ih (GH,), b_hh (GH,)]; zero biases if bias=False."""
    D = 2 if module.bidirectional else 1
    out = []
    for d in range(D):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        w_ih, w_hh = getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx)
        if module.bias:
            b_ih, b_hh = getattr(module, "bias_ih" + sfx), getattr(module, "bias_hh" + sfx)
        else:
            b_ih = b_hh = torch.zeros(w_ih.shape[0], dtype=w_ih.dtype)
        ps = [w_ih, w_hh, b_ih, b_hh]
        out.append([p.detach() for p in ps] if detach else ps)
    return out


def _native(mode: str, x: Tensor, hx, flat: list[Tensor], bias: bool, bidirectional: bool,
            dropout: float = 0.0, train: bool = False):
    """One layer of PyTorch's fused kernel, time-major. Returns (output (T, B, D*H), h_n, c_n|None)."""
    if mode == "LSTM":
        out, h, c = _VF.lstm(x, hx, flat, bias, 1, dropout, train, bidirectional, False)
        return out, h, c
    fn = {"RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu, "GRU": _VF.gru}[mode]
    out, h = fn(x, hx, flat, bias, 1, dropout, train, bidirectional, False)
    return out, h, None


def _proc(t: Tensor) -> Tensor:
    """(T, D, ...) position order <-> processing order: flip the reverse direction in time (an involution)."""
    if t.shape[1] == 1:
        return t
    return torch.stack([t[:, 0], t[:, 1].flip(0)], dim=1)


def _affine(x: Tensor, W: Tensor, b: Tensor, add: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """x (T, D, B, k) @ W[d]^T + b[d] (+ x2 @ W2[d]^T) per direction d -> (T, D, B, G); GEMMs into one buffer."""
    T, D, B, k = x.shape
    ys = []
    for d in range(D):
        y = torch.addmm(b[d], x[:, d].reshape(T * B, k), W[d].t())
        if add is not None:
            y.addmm_(add[0][:, d].reshape(T * B, -1), add[1][d].t())
        ys.append(y.view(T, B, -1))
    return ys[0].unsqueeze(1) if D == 1 else torch.stack(ys, dim=1)


def _onednn_ok() -> bool:
    """Whether oneDNN's matmul (the library behind PyTorch's fused CPU LSTM) can be called here."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        a = torch.ones(2, 3)
        return torch.backends.mkldnn.is_available() and torch.equal(op(a, a, None, "none", [], ""), a @ a.t())
    except (AttributeError, RuntimeError):
        return False


_ONEDNN = _onednn_ok()


def _mm_nt(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """a @ b^T (+ bias): a (M, K), b (N, K), bias (N,) -> (M, N).

    float32 through oneDNN's matmul where PyTorch has it: 2.2x MKL's sgemm at the trace's shapes on an AMD
    machine (bench_trace.py --part gemm; MKL takes a slower path on non-Intel CPUs), for dense operands only (a
    row-strided view sent oneDNN to a reference kernel, 11 ms instead of 0.05); else torch's addmm / mm."""
    if _onednn_takes(a, b):
        return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")
    return a @ b.t() if bias is None else torch.addmm(bias, a, b.t())


def _onednn_takes(a: Tensor, b: Tensor) -> bool:
    """Whether `_mm_nt(a, b)` goes to oneDNN: float32, both matrices stored row- or column-major without gaps,
    and at least 2^20 multiply-adds (below that oneDNN's fixed cost, ~10 us, loses)."""
    def dense(t: Tensor) -> bool:
        return t.is_contiguous() or t.t().is_contiguous()

    return (_ONEDNN and a.dtype == torch.float32 and a.shape[0] * a.shape[1] * b.shape[0] >= 1 << 20
            and dense(a) and dense(b))


def _weight_grad(dpre: Tensor, inp: Tensor) -> Tensor:
    """sum_{t,b} dpre^T inp per direction: (T, D, B, G), (T, D, B, k) -> (D, G, k).

    Computed as (inp^T dpre)^T: with a narrow inp (k = a few input features) MKL runs this orientation 5-10x
    faster than dpre^T inp (measured, one thread), and never slower."""
    T, D, B, G = dpre.shape
    return torch.stack([_mm_nt(inp[:, d].reshape(T * B, -1).t(), dpre[:, d].reshape(T * B, G).t()).t()
                        for d in range(D)])


def _bias_grad(dpre: Tensor) -> Tensor:
    """sum_{t,b} dpre per direction: (T, D, B, G) -> (D, G). Time first (whole rows), then the batch: 10x faster
    than one sum over the two non-adjacent dims (measured, 3 ms at (50, 2, 32, 256))."""
    return dpre.sum(dim=0).sum(dim=1)


def _input_grad(dpre: Tensor, W_ih: Tensor) -> Tensor:
    """dpre W_ih per direction, summed over directions, back in position order: (T, D, B, G), (D, G, in) -> (T, B, in).

    Computed as (W_ih^T dpre^T)^T, 3-4x faster than dpre W_ih for a narrow input (measured, as above)."""
    T, D, B, G = dpre.shape
    per_dir = [_input_grad_one(dpre[:, d].reshape(T * B, G), W_ih[d]).reshape(T, B, -1) for d in range(D)]
    return _proc(torch.stack(per_dir, dim=1)).sum(dim=1)


def _input_grad_one(dpre: Tensor, W_ih: Tensor) -> Tensor:  # (N, G), (G, in) -> (N, in)
    """dpre W_ih: oneDNN where `_mm_nt` would take it, else torch in the orientation MKL runs faster."""
    if _onednn_takes(dpre, W_ih.t()):
        return _mm_nt(dpre, W_ih.t())
    return (W_ih.t() @ dpre.t()).t()


def _default_loss(module, batched: bool) -> Callable[[Tensor], Tensor]:
    """Mean of squares of the top layer's final state in each direction (the last step for a
    unidirectional module; position 0 for the reverse direction, which ends there)."""
    H = module.hidden_size

    def loss_fn(output: Tensor) -> Tensor:
        o = output if batched else output.unsqueeze(1 if not module.batch_first else 0)
        o = o if module.batch_first else o.transpose(0, 1)  # (B, T, D*H)
        last = o[:, -1, :H]
        if module.bidirectional:
            last = torch.cat([last, o[:, 0, H:]], dim=-1)
        return last.pow(2).mean()

    return loss_fn


# ----------------------------------------------------------------------------------------------------------
# The trace


def _run_layer(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, flats: list[list[Tensor]], bias: bool,
               k: int | None, dropout: float = 0.0, train: bool = False):
    """One layer through the fused kernel, the state detached every k steps of each direction.

    x (T, B, in) position order; flats[d] = [w_ih, w_hh(, b_ih, b_hh)]. Autograd flows as usual.
    Returns output (T, B, D*H), h_n (D, B, H), c_n (D, B, H) | None.
    """
    D, T = len(flats), x.shape[0]
    if k is None or k >= T:  # one call, both directions
        hx = (h0, c0) if mode == "LSTM" else h0
        return _native(mode, x, hx, [w for f in flats for w in f], bias, D == 2, dropout, train)
    outs, hs, cs = [], [], []
    for d in range(D):
        xin = x if d == 0 else x.flip(0)
        h, c = h0[d:d + 1], (None if c0 is None else c0[d:d + 1])
        chunks = []
        for start in range(0, T, k):
            if start > 0:  # truncated BPTT: the state entering this chunk is a constant
                h, c = h.detach(), (None if c is None else c.detach())
            o, h, c = _native(mode, xin[start:start + k], (h, c) if mode == "LSTM" else h, flats[d], bias, False,
                              dropout, train)
            chunks.append(o)
        o = torch.cat(chunks, dim=0)
        outs.append(o if d == 0 else o.flip(0))
        hs.append(h)
        cs.append(c)
    return torch.cat(outs, dim=-1), torch.cat(hs), (torch.cat(cs) if mode == "LSTM" else None)


@torch.no_grad()
def _gates(mode: str, x: Tensor, h: Tensor, h0: Tensor, c0: Tensor | None, params) -> dict:
    """Gates of one layer for all steps at once from its recorded states (one GEMM per weight matrix).

    x (T, B, in) position order; h (T, D, B, H) processing order; h0, c0 (D, B, H).
    Returns processing-order (T, D, B, H) tensors: the gates, LSTM "c", and what the explicit RNN / GRU
    backward needs (RNN: no gates, only phi'(a_t)).
    """
    T, D, B, H = h.shape
    W_ih = torch.stack([p[0] for p in params])  # (D, GH, in)
    W_hh = torch.stack([p[1] for p in params])  # (D, GH, H)
    b_ih = torch.stack([p[2] for p in params])  # (D, GH)
    b_hh = torch.stack([p[3] for p in params])
    prev = torch.cat([h0.unsqueeze(0), h[:-1]], dim=0)  # (T, D, B, H): the state entering each step
    xp = _proc(x.unsqueeze(1).expand(T, D, B, x.shape[-1]))  # (T, D, B, in)
    if mode in ("RNN_TANH", "RNN_RELU"):  # no gates; phi'(a_t) from h_t alone, for the backward recursion
        dphi = 1 - h * h if mode == "RNN_TANH" else (h > 0).to(h.dtype)
        return {"dphi": dphi, "prev": prev, "xp": xp, "W_ih": W_ih, "W_hh": W_hh}
    if mode == "LSTM":  # x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh, then activated in place
        act = _affine(xp, W_ih, b_ih + b_hh, add=(prev, W_hh))  # (T, D, B, 4H)
        act[..., :2 * H].sigmoid_()  # i, f
        act[..., 2 * H:3 * H].tanh_()  # g
        act[..., 3 * H:].sigmoid_()  # o
        i, f, g, o = act.chunk(4, dim=-1)  # each (T, D, B, H), views into act
        c = torch.empty_like(h)
        ig = i * g
        c_prev = c0
        for s in range(T):  # c_s = f_s * c_{s-1} + i_s * g_s
            c_prev = torch.addcmul(ig[s], f[s], c_prev, out=c[s])
        return {"input": i, "forget": f, "cell": g, "output": o, "c": c, "tc": c.tanh(), "act": act, "c0": c0,
                "xp": xp, "prev": prev, "W_ih": W_ih, "W_hh": W_hh}
    # GRU: r gates the hidden side of n, so the two sides stay apart
    gi = _affine(xp, W_ih, b_ih)  # (T, D, B, 3H) input side
    gh = _affine(prev, W_hh, b_hh)  # (T, D, B, 3H) hidden side
    gi_r, gi_z, gi_n = gi.chunk(3, dim=-1)
    gh_r, gh_z, gh_n = gh.chunk(3, dim=-1)
    r, z = (gi_r + gh_r).sigmoid_(), (gi_z + gh_z).sigmoid_()
    n = (gi_n + r * gh_n).tanh_()
    return {"reset": r, "update": z, "new": n, "gh_n": gh_n, "prev": prev, "xp": xp, "W_ih": W_ih, "W_hh": W_hh}


@torch.no_grad()
def _rnn_backward(st: dict, e: Tensor, k: int | None):
    """Explicit backward recursion of a vanilla RNN layer, processing order:

        da_t = d_t * phi'(a_t),  d_{t-1} = e_{t-1} + W_hh^T da_t   (recurrent term dropped at a truncation cut)

    e (T, D, B, H) direct gradient. Returns d (total dL/dh), and da (T, D, B, H) twice (input and hidden side).
    """
    T = e.shape[0]
    dphi, W_hh = st["dphi"], st["W_hh"]
    d = torch.empty_like(e)
    d[T - 1] = e[T - 1]
    da = torch.empty_like(e)
    for s in range(T - 1, -1, -1):
        torch.mul(d[s], dphi[s], out=da[s])
        if s == 0:
            break
        if k is not None and s % k == 0:  # the state entering step s was detached
            d[s - 1] = e[s - 1]
        else:
            torch.baddbmm(e[s - 1], da[s], W_hh, out=d[s - 1])
    return d, da, da


@torch.no_grad()
def _gru_backward(st: dict, e: Tensor, k: int | None):
    """Explicit backward recursion of a GRU layer (PyTorch's r, z, n), processing order:

        dn = d (1-z)(1-n^2),  dz = d (h_{t-1} - n) z(1-z),  dr = dn (W_hn h_{t-1} + b_hn) r(1-r)
        d_{t-1} = e_{t-1} + z_t d_t + W_hh^T [dr | dz | r dn]   (recurrent term dropped at a truncation cut)

    e (T, D, B, H) direct gradient. Returns d (total dL/dh), dgi, dgh (T, D, B, 3H) pre-activation grads.
    """
    T, D, B, H = e.shape
    r, z, n, gh_n, prev, W_hh = st["reset"], st["update"], st["new"], st["gh_n"], st["prev"], st["W_hh"]
    Cn = (1 - z) * (1 - n * n)
    Cr = Cn * gh_n * r * (1 - r)
    coef_h = torch.stack([Cr, (prev - n) * z * (1 - z), Cn * r], dim=3)  # (T, D, B, 3, H)
    d = torch.empty_like(e)
    d[T - 1] = e[T - 1]
    dgh = torch.empty(T, D, B, 3 * H, dtype=e.dtype)
    for s in range(T - 1, -1, -1):
        torch.mul(d[s].unsqueeze(2), coef_h[s], out=dgh[s].view(D, B, 3, H))
        if s == 0:
            break
        if k is not None and s % k == 0:  # the state entering step s was detached
            d[s - 1] = e[s - 1]
        else:
            torch.baddbmm(torch.addcmul(e[s - 1], d[s], z[s]), dgh[s], W_hh, out=d[s - 1])
    coef_h[:, :, :, 2] = Cn  # input side: n's pre-activation is not gated by r
    dgi = (d.unsqueeze(3) * coef_h).view(T, D, B, 3 * H)
    return d, dgi, dgh


@torch.no_grad()
def _lstm_backward(st: dict, e: Tensor, k: int | None):
    """Explicit backward recursion of an LSTM layer (PyTorch's i, f, g, o), processing order:

        dc_t = d_t o_t (1 - tanh^2 c_t) + f_{t+1} dc_{t+1}
        da_t = [dc_t g_t i_t(1-i_t) | dc_t c_{t-1} f_t(1-f_t) | dc_t i_t(1-g_t^2) | d_t tanh(c_t) o_t(1-o_t)]
        d_{t-1} = e_{t-1} + W_hh^T da_t   (both recurrent terms dropped at a truncation cut)

    Every factor that does not depend on d is computed for all steps at once before the loop, so a step is
    four small ops: d_t * [o-factor | c-factor], + f dc, dc * [i|f|g-factors], one GEMM.
    e (T, D, B, H) direct gradient. Returns d (total dL/dh), da twice (T, D, B, 4H) (input and hidden side).
    """
    T, D, B, H = e.shape
    i, f, g, o, c, W_hh = st["input"], st["forget"], st["cell"], st["output"], st["c"], st["W_hh"]
    c_prev = torch.cat([st["c0"].unsqueeze(0), c[:-1]], dim=0)  # (T, D, B, H)
    tc = st["tc"]
    coef = torch.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o),
                        o * (1 - tc * tc)], dim=3)  # (T, D, B, 5, H): da_i, da_f, da_g per dc; da_o, dc per d
    buf = torch.empty(T, D, B, 5, H, dtype=e.dtype)  # (T, D, B, 5, H): da_i, da_f, da_g, da_o | dc
    d = e.clone()  # (T, D, B, H); the recurrent term is added below where not cut
    d_s, e_s, f_s = d.unbind(0), e.unbind(0), f.unbind(0)  # per-step views, made once: (D, B, H)
    c_od, c_ifg = coef[:, :, :, 3:].unbind(0), coef[:, :, :, :3].unbind(0)  # (D, B, 2, H), (D, B, 3, H)
    b_od, b_ifg = buf[:, :, :, 3:].unbind(0), buf[:, :, :, :3].unbind(0)
    dc, dc1 = buf[:, :, :, 4].unbind(0), buf[:, :, :, 4:].unbind(0)  # (D, B, H), (D, B, 1, H)
    da = buf[:, :, :, :4].view(T, D, B, 4 * H)  # (T, D, B, 4H) strided view into buf
    da_s = da.unbind(0)
    for s in range(T - 1, -1, -1):
        torch.mul(d_s[s].unsqueeze(2), c_od[s], out=b_od[s])  # [da_o | direct part of dc]
        if s < T - 1 and (k is None or (s + 1) % k):
            dc[s].addcmul_(f_s[s + 1], dc[s + 1])  # + f_{t+1} dc_{t+1}
        torch.mul(dc1[s], c_ifg[s], out=b_ifg[s])  # [da_i | da_f | da_g]
        if s > 0 and (k is None or s % k):
            torch.baddbmm(e_s[s - 1], da_s[s], W_hh, out=d_s[s - 1])
    return d, da, da


def _lstm_cell_grad(d: Tensor, gates: dict, k: int | None) -> Tensor:
    """Total dL/dc_t from the total dL/dh_t: dc_t = d_t o_t (1 - tanh^2 c_t) + f_{t+1} dc_{t+1}."""
    T = d.shape[0]
    tc = gates["c"].tanh()
    direct = d * gates["output"] * (1 - tc * tc)
    f = gates["forget"]
    dc = torch.empty_like(d)
    dc[T - 1] = direct[T - 1]
    for s in range(T - 2, -1, -1):
        if k is not None and (s + 1) % k == 0:
            dc[s] = direct[s]
        else:
            torch.addcmul(direct[s], f[s + 1], dc[s + 1], out=dc[s])
    return dc


def trace(module: nn.Module, x: Tensor, loss_fn: Callable[[Tensor], Tensor] | None = None, *,
          h0=None, truncation: int | None = None, _lstm_path: str = "auto") -> Trace:
    """Trace `module` (nn.RNN / nn.LSTM / nn.GRU) on input `x` (the module's own layout).

    loss_fn(output) -> scalar, where output is exactly module(x, h0)[0]; default: mean of squares of the
    top layer's final state of each direction. truncation=k detaches the recurrent state every k steps,
    counted from the first step each direction processes (PyTorch-style truncated BPTT).
    The module is only read. Inter-layer dropout is not applied (the deterministic network, as in eval).

    LSTM, once rnnviz/_lstm_ext.py has loaded its compiled loops (the first LSTM trace starts the build in a
    background thread and does not wait): `_trace_lstm_compiled`, forward and backward as C++ loops.
    Until then (and if the build fails): the fused kernel runs forward and backward once, on the input
    augmented with zeros Z_t whose input weights are W_hh. Z changes nothing forward, and dL/dZ_t =
    W_hh^T dL/da_t (a_t the pre-activation), the recurrent part of the total derivative:
    dL/dh_{t-1} = e_{t-1} + dL/dZ_t, with e the gradient arriving from the layer above or the loss.
    RNN and GRU: an explicit backward recursion under no_grad (`_rnn_backward`, `_gru_backward`), measured
    faster than PyTorch's own backward for these two (no fused CPU kernel for them).
    _lstm_path (benches, tests): "auto" as above, or force "kernel", "explicit" (the eager recursion) or "ext".
    """
    mode = _mode_of(module)
    k = _check_truncation(truncation)
    xt, batched = _check_input(module, x)  # (T, B, in)
    T, B, _ = xt.shape
    L, D, H = module.num_layers, (2 if module.bidirectional else 1), module.hidden_size
    h0_all, c0_all = _check_h0(module, h0, B, batched, xt.dtype)
    if loss_fn is None:
        loss_fn = _default_loss(module, batched)
    elif not callable(loss_fn):
        raise TypeError("loss_fn must be callable: output -> scalar tensor")
    # LSTM: the compiled loops where loaded (bench_trace.py: fastest on all 10 shapes, 0.8-1.4x native), else the
    # fused kernel's backward on zero-augmented input; the eager explicit recursion (many small ops per step) is
    # never the default. RNN, GRU: explicit (<= 1.4x).
    ext = None
    if mode == "LSTM" and _lstm_path in ("auto", "ext"):
        ext = _lstm_ext.lstm_ext() if _lstm_path == "auto" else _lstm_ext.build()
        if ext is None and _lstm_path == "ext":
            raise RuntimeError(f"the LSTM extension is not available: {_lstm_ext._state['error']!r}")
    if ext is not None:
        return _trace_lstm_compiled(ext, module, xt, batched, h0_all, c0_all, loss_fn, k)
    native_grad = mode == "LSTM" and _lstm_path != "explicit"

    # 1. forward, layer by layer, with autograd where the kernel's backward will be used
    x_leaf = xt.clone().requires_grad_(native_grad)
    leaves, zs, outs, records, h_ns, c_ns = [], [], [], [], [], []
    inp = x_leaf
    with torch.set_grad_enabled(native_grad):
        for layer in range(L):
            sl = slice(layer * D, (layer + 1) * D)
            h0_l, c0_l = h0_all[sl], (None if c0_all is None else c0_all[sl])
            params = _layer_params(module, layer, detach=True)
            if native_grad:
                params = [[p.clone().requires_grad_() for p in ps] for ps in params]
                leaves.append(params)
                z = torch.zeros(T, B, D * H, dtype=xt.dtype, requires_grad=True)  # (T, B, D*H)
                zs.append(z)
                flats = []
                for d, (w_ih, w_hh, b_ih, b_hh) in enumerate(params):
                    w_z = torch.zeros(w_hh.shape[0], D * H, dtype=xt.dtype)  # Z's input weights: W_hh
                    w_z[:, d * H:(d + 1) * H] = w_hh.detach()
                    flats.append([torch.cat([w_ih, w_z], dim=1), w_hh] + ([b_ih, b_hh] if module.bias else []))
                out, h_n, c_n = _run_layer(mode, torch.cat([inp, z], dim=-1), h0_l, c0_l, flats, module.bias, k)
            else:
                flats = [ps if module.bias else ps[:2] for ps in params]
                out, h_n, c_n = _run_layer(mode, inp, h0_l, c0_l, flats, module.bias, k)
            h = _proc(out.detach().view(T, B, D, H).transpose(1, 2))  # (T, D, B, H) processing order
            records.append({"h": h, **_gates(mode, inp.detach(), h, h0_l, c0_l,
                                             [[p.detach() for p in ps] for ps in params])})
            outs.append(out)
            h_ns.append(h_n.detach())
            c_ns.append(None if c_n is None else c_n.detach())
            inp = out
        output = _to_module(out, module, batched)


    # 2. the loss, and the gradients the kernel's backward gives
    with torch.enable_grad():
        leaf = output if native_grad else output.detach().clone().requires_grad_(True)
        loss = loss_fn(leaf)
        _check_loss(loss)
        wrt = [leaf] if not native_grad else (outs + zs + [x_leaf] + [p for lp in leaves for ps in lp for p in ps])
        grads = torch.autograd.grad(loss.reshape(()), wrt, allow_unused=True)
    if grads[L - 1 if native_grad else 0] is None:
        raise ValueError("loss_fn's result does not depend on the output it was given")

    def tm(t: Tensor) -> Tensor:  # (T, B, D*H) -> (T, D, B, H) processing order
        return _proc(t.reshape(T, B, D, H).transpose(1, 2).contiguous())

    def cut_mask(shift: int) -> Tensor:  # (T,) 1 where the recurrence at step s + shift was not cut
        s = torch.arange(T) + shift
        keep = torch.ones(T, dtype=xt.dtype) if k is None else (s % k != 0).to(xt.dtype)
        return keep.view(T, 1, 1, 1)

    param_grads, d_all = {}, [None] * L
    if native_grad:
        g_outs = [torch.zeros(T, B, D * H, dtype=xt.dtype) if g is None else g for g in grads[:L]]
        g_zs = grads[L:2 * L]
        grad_input = grads[2 * L]
        flat_grads = list(grads[2 * L + 1:])
        for layer in range(L):
            e = tm(g_outs[layer])  # direct gradient at each step
            rec = tm(g_zs[layer])  # W_hh^T dL/da_s: recurrent part entering step s
            d = e.clone()
            d[:-1] += rec[1:] * cut_mask(1)[:-1]  # dL/dh_{s-1} = e_{s-1} + W_hh^T dL/da_s
            d_all[layer] = d
            for dd in range(D):
                w_ih, w_hh, b_ih, b_hh = (flat_grads.pop(0) for _ in range(4))
                sfx = f"_l{layer}" + ("_reverse" if dd else "")
                param_grads["weight_ih" + sfx], param_grads["weight_hh" + sfx] = w_ih, w_hh
                if module.bias:
                    param_grads["bias_ih" + sfx], param_grads["bias_hh" + sfx] = b_ih, b_hh
    else:
        e = tm(_from_module(grads[0], module, batched))
        for layer in range(L - 1, -1, -1):
            st = records[layer]
            if mode == "LSTM":
                d, dgi, dgh = _lstm_backward(st, e, k)
            else:
                d, dgi, dgh = (_gru_backward if mode == "GRU" else _rnn_backward)(st, e, k)
            d_all[layer] = d
            dW_ih, dW_hh, db_ih = _weight_grad(dgi, st["xp"]), _weight_grad(dgh, st["prev"]), _bias_grad(dgi)
            db_hh = db_ih.clone() if dgh is dgi else _bias_grad(dgh)  # RNN, LSTM: one pre-activation
            for dd in range(D):
                sfx = f"_l{layer}" + ("_reverse" if dd else "")
                param_grads["weight_ih" + sfx], param_grads["weight_hh" + sfx] = dW_ih[dd], dW_hh[dd]
                if module.bias:
                    param_grads["bias_ih" + sfx], param_grads["bias_hh" + sfx] = db_ih[dd], db_hh[dd]
            dx = _input_grad(dgi, st["W_ih"])  # (T, B, in)
            if layer > 0:
                e = tm(dx)
            else:
                grad_input = dx  # (T, B, in)

    def per_step(ts: list[Tensor]) -> Tensor:  # L x (T, D, B, X) processing -> (L, D, B, T, X) position
        # a view where it can be (one layer, one direction); else one copy in the processing layout, rows whole
        # (copying into the permuted layout gathered single floats: 3.6 ms at L = D = 2, T = 50, B = 32, H = 64)
        if L == 1 and D == 1:
            return ts[0].unsqueeze(0).permute(0, 2, 3, 1, 4)
        out = torch.empty(L, T, D, B, ts[0].shape[-1], dtype=ts[0].dtype)  # (L, T, D, B, X)
        for layer, t in enumerate(ts):
            out[layer, :, 0] = t[:, 0]
            if D == 2:
                out[layer, :, 1] = t[:, 1].flip(0)
        return out.permute(0, 2, 3, 1, 4)

    grad_hidden = per_step(d_all)
    grad_norm = grad_hidden.double().norm(dim=-1).mean(dim=2)  # (L, D, T) float64: no underflow of squares
    grad_input = _to_module(grad_input, module, batched)
    lstm = mode == "LSTM"
    return Trace(
        mode=mode,
        output=output.detach().contiguous(),
        h_n=torch.cat(h_ns, dim=0),
        c_n=torch.cat(c_ns, dim=0) if lstm else None,
        loss=float(loss.detach()),
        hidden=per_step([r["h"] for r in records]),
        cell=per_step([r["c"] for r in records]) if lstm else None,
        gates={name: per_step([r[name] for r in records]) for name in GATE_NAMES[mode]},
        grad_hidden=grad_hidden,
        grad_norm=grad_norm,
        grad_input=grad_input.detach().contiguous(),
        param_grads={n: param_grads[n].detach().contiguous() for n, _ in module.named_parameters()},
        truncation=k,
    )


def _to_module(t: Tensor, module, batched: bool) -> Tensor:
    """(T, B, X) time-major -> the module's layout (batch_first, unbatched)."""
    t = t.transpose(0, 1) if module.batch_first else t
    return t if batched else t.squeeze(0 if module.batch_first else 1)


def _from_module(t: Tensor, module, batched: bool) -> Tensor:
    """The module's layout -> (T, B, X) time-major (a view)."""
    t = t if batched else t.unsqueeze(0 if module.batch_first else 1)
    return t.transpose(0, 1) if module.batch_first else t


def _trace_lstm_compiled(ext, module, xt: Tensor, batched: bool, h0_all: Tensor, c0_all: Tensor,
                         loss_fn: Callable[[Tensor], Tensor], k: int | None) -> Trace:
    """`trace` for an LSTM by the compiled loops of rnnviz/_lstm_ext.py.

    Every tensor stays in PyTorch's output layout (T, B, D, X), input-position order (each direction's loop walks
    its own time order), so a layer's h is the next layer's input as it is, the returned fields are views, and the
    two directions share each GEMM:
    1. Forward, per layer: act = x W_ih^T + b for all steps and both directions (one GEMM), then one loop:
       per step the recurrent product h_{t-1} W_hh^T, the gate activations, c_t, tanh c_t and h_t.
    2. dL/d(output) by autograd through `loss_fn` only.
    3. Backward, top layer first: one loop, the recursion of `_lstm_backward` and ||dL/dh_t|| as it goes;
       then dW_ih, dW_hh, db and dL/dx from the pre-activation gradients da, one GEMM each.
    """
    T, B, _ = xt.shape
    L, D, H = module.num_layers, (2 if module.bidirectional else 1), module.hidden_size
    recs, inp = [], xt  # inp (T, B, in)
    with torch.no_grad():
        for layer in range(L):
            sl = slice(layer * D, (layer + 1) * D)
            params = _layer_params(module, layer, detach=True)
            W_ih = torch.cat([p[0] for p in params])  # (D*4H, in)
            W_hh = torch.stack([p[1] for p in params])  # (D, 4H, H)
            b = torch.cat([p[2] + p[3] for p in params])  # (D*4H,)
            act = _mm_nt(inp.reshape(T * B, -1), W_ih, b).view(T, B, D, 4 * H)  # activated by the loop
            h0, c0 = h0_all[sl].contiguous(), c0_all[sl].contiguous()  # (D, B, H)
            h, c, tc = ext.lstm_forward(act, W_hh.transpose(1, 2).contiguous(), h0, c0)  # each (T, B, D, H)
            recs.append({"x": inp, "act": act, "h": h, "c": c, "tc": tc, "h0": h0, "c0": c0, "W_ih": W_ih,
                         "W_hh": W_hh})
            inp = h.view(T, B, D * H)
    output = _to_module(inp, module, batched)
    with torch.enable_grad():
        leaf = output.detach().clone().requires_grad_(True)
        loss = loss_fn(leaf)
        _check_loss(loss)
        (g,) = torch.autograd.grad(loss.reshape(()), [leaf], allow_unused=True)
    if g is None:
        raise ValueError("loss_fn's result does not depend on the output it was given")

    param_grads, ds, norms = {}, [None] * L, [None] * L
    e = _from_module(g, module, batched)  # (T, B, D*H) direct gradient of the top layer
    with torch.no_grad():
        for layer in range(L - 1, -1, -1):
            r = recs[layer]
            d = e.reshape(T, B, D, H).contiguous()  # e in, the total dL/dh out (in place)
            da, norms[layer] = ext.lstm_backward(d, r["act"], r["c"], r["tc"], r["c0"], r["W_hh"], k or 0)
            ds[layer] = d
            x2 = r["x"].reshape(T * B, -1)  # (T*B, in)
            prev = torch.empty(D, T, B, H, dtype=d.dtype)  # the state each direction's step started from
            prev[0, 1:], prev[0, 0] = r["h"][:-1, :, 0], r["h0"][0]
            if D == 2:
                prev[1, :-1], prev[1, -1] = r["h"][1:, :, 1], r["h0"][1]
            dx = None
            for j in range(D):
                da_j = da[j].view(T * B, 4 * H)
                sfx = f"_l{layer}" + ("_reverse" if j else "")
                param_grads["weight_ih" + sfx] = _mm_nt(x2.t(), da_j.t()).t()  # (4H, in)
                param_grads["weight_hh" + sfx] = _mm_nt(prev[j].view(T * B, H).t(), da_j.t()).t()  # (4H, H)
                if module.bias:
                    param_grads["bias_ih" + sfx] = da_j.sum(dim=0)
                    param_grads["bias_hh" + sfx] = param_grads["bias_ih" + sfx].clone()
                dx_j = _input_grad_one(da_j, r["W_ih"][j * 4 * H:(j + 1) * 4 * H])  # (T*B, in)
                dx = dx_j if dx is None else dx.add_(dx_j)
            e = dx.view(T, B, -1)  # dL/d(layer input): (T, B, in)

    def per_step(ts: list[Tensor]) -> Tensor:  # L x (T, B, D, X) -> (L, D, B, T, X): a view for one layer
        t = ts[0].unsqueeze(0) if L == 1 else torch.stack(ts)
        return t.permute(0, 3, 2, 1, 4)

    def last(t: Tensor) -> Tensor:  # (T, B, D, H) -> (D, B, H): each direction's last processed step
        return torch.stack([t[-1, :, 0]] + ([t[0, :, 1]] if D == 2 else []))

    acts = [r["act"] for r in recs]
    return Trace(
        mode="LSTM",
        output=output.contiguous(),
        h_n=torch.cat([last(r["h"]) for r in recs]),
        c_n=torch.cat([last(r["c"]) for r in recs]),
        loss=float(loss.detach()),
        hidden=per_step([r["h"] for r in recs]),
        cell=per_step([r["c"] for r in recs]),
        gates={name: per_step([a[..., n * H:(n + 1) * H] for a in acts]) for n, name in enumerate(GATE_NAMES["LSTM"])},
        grad_hidden=per_step(ds),
        grad_norm=torch.stack([n.t() for n in norms]),  # (L, D, T) float64
        grad_input=_to_module(e, module, batched).contiguous(),
        param_grads={n: param_grads[n].contiguous() for n, _ in module.named_parameters()},
        truncation=k,
    )


def _check_loss(loss) -> None:
    if not isinstance(loss, Tensor):
        raise TypeError(f"loss_fn must return a torch.Tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar, got a tensor of shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ValueError("loss_fn's result does not depend on the output it was given")


# ----------------------------------------------------------------------------------------------------------
# Truncated BPTT forward with autograd (used for training; the reference semantics of `truncation`)


def truncated_forward(module: nn.Module, x: Tensor, hx=None, truncation: int | None = None):
    """module(x, hx) with the recurrent state detached every `truncation` steps of each direction.

    Autograd flows into the module's parameters (and x) as usual, but never across a chunk boundary
    along the recurrence; layers above still get gradients from layers below within a chunk.
    truncation=None (or >= T) is the plain module call. Returns (output, h_n) like the module.
    """
    mode = _mode_of(module)
    k = _check_truncation(truncation)
    if x.dim() != 3:
        raise ValueError(f"truncated_forward needs a batched (rank-3) input, got shape {tuple(x.shape)}")
    T = x.shape[1] if module.batch_first else x.shape[0]
    if k is None or k >= T:
        return module(x, hx)
    xt = x.transpose(0, 1) if module.batch_first else x  # (T, B, in)
    L, D, H = module.num_layers, (2 if module.bidirectional else 1), module.hidden_size
    if hx is None:
        z = torch.zeros(L * D, xt.shape[1], H, dtype=xt.dtype, device=xt.device)
        hx = (z, z) if mode == "LSTM" else z
    h0_all, c0_all = hx if mode == "LSTM" else (hx, None)
    inp, h_ns, c_ns = xt, [], []
    for layer in range(L):
        sl = slice(layer * D, (layer + 1) * D)
        flats = [ps if module.bias else ps[:2] for ps in _layer_params(module, layer, detach=False)]
        drop = module.dropout if layer < L - 1 else 0.0
        inp, h_n, c_n = _run_layer(mode, inp, h0_all[sl], None if c0_all is None else c0_all[sl], flats,
                                   module.bias, k)
        if module.training and drop > 0:
            inp = nn.functional.dropout(inp, drop, training=True)
        h_ns.append(h_n)
        c_ns.append(c_n)
    output = inp.transpose(0, 1) if module.batch_first else inp
    h_n = torch.cat(h_ns, dim=0)
    return output, ((h_n, torch.cat(c_ns, dim=0)) if mode == "LSTM" else h_n)


def spectral_bound(W_hh: Tensor) -> tuple[float, float]:
    """(spectral radius, largest singular value) of a square recurrent matrix, in float64."""
    W = W_hh.detach().double()
    return float(torch.linalg.eigvals(W).abs().max()), float(torch.linalg.svdvals(W)[0])


__all__ = ["Trace", "trace", "truncated_forward", "spectral_bound", "GATE_NAMES"]
