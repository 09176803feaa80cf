"""The instrumented recurrent core: every internal quantity of an nn.RNN / nn.LSTM / nn.GRU, per time step.

    tr = trace(module, x, loss_fn=None, h0=None, truncation=None)

How it works (exact, no per-step autograd graph):
1. Forward, layer by layer, with PyTorch's own fused kernel (so `output` is PyTorch's).
2. Gates for all steps at once from the recorded states: one matmul per weight matrix.
   The LSTM cell state is the one recursion left: c_t = f_t * c_{t-1} + i_t * g_t.
3. dL/d(output) by autograd through `loss_fn` only.
4. The total derivative dL/dh_t by the explicit backward recursion, top layer first:
       RNN   d_{t-1} = e_{t-1} + W_hh^T (d_t * phi'(a_t))
       LSTM  dc_t = d_t * o_t * (1 - tanh^2 c_t) + f_{t+1} * dc_{t+1}
             d_{t-1} = e_{t-1} + W_hh^T [dc_t g_t i_t(1-i_t) | dc_t c_{t-1} f_t(1-f_t) | dc_t i_t (1-g_t^2)
                                         | d_t tanh(c_t) o_t(1-o_t)]
       GRU   d_{t-1} = e_{t-1} + z_t * d_t + W_hh^T [dr_t | dz_t | r_t * dn_t]
   where e_t is the gradient arriving from the loss or the layer above at step t ("direct").
   Truncated BPTT with window k drops the recurrent term where the state was detached.
5. Parameter gradients and dL/dx from the stored pre-activation gradients: one matmul each.

Internally tensors are time-major and in *processing order* (the reverse direction flipped in time),
so both directions share one loop. Everything returned is in input-position order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor, _VF, nn

GATE_NAMES = {
    "RNN_TANH": (),
    "RNN_RELU": (),
    "LSTM": ("input", "forget", "cell", "output"),
    "GRU": ("reset", "update", "new"),
}
N_BLOCKS = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


@dataclass
class Trace:
    """What `trace` returns. Per-step tensors are (layers, directions, batch, time, hidden)."""

    mode: str  # "RNN_TANH" | "RNN_RELU" | "LSTM" | "GRU"
    output: Tensor  # exactly module(x, h0)[0], in the module's layout
    h_n: Tensor  # (layers*dirs, batch, hidden), torch's layout
    c_n: Tensor | None  # LSTM only
    loss: float
    hidden: Tensor  # h_t
    cell: Tensor | None  # LSTM c_t
    gates: dict[str, Tensor]  # LSTM input/forget/cell/output, GRU reset/update/new, RNN {}
    grad_hidden: Tensor  # total dL/dh_t under the truncation
    grad_cell: Tensor | None  # LSTM total dL/dc_t
    grad_norm: Tensor  # (layers, directions, time): ||dL/dh_t||_2 over units, mean over batch
    grad_input: Tensor  # dL/dx in x's layout
    param_grads: dict[str, Tensor] = field(default_factory=dict)  # keyed like module.named_parameters()
    truncation: int | None = None

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

    def gate_stats_frame(self, low: float = 0.05, high: float = 0.95) -> pd.DataFrame:
        """Tidy gate statistics per (layer, direction, gate): mean and fraction saturated.

        Saturation is judged on the gate's own range: sigmoid gates in [0, 1], tanh ones mapped to [0, 1]
        by (a + 1) / 2.
        """
        rows = []
        for name, g in self.gates.items():
            unit = (g + 1) / 2 if name in ("cell", "new") else g  # tanh gates -> [0, 1]
            for layer in range(g.shape[0]):
                for d in range(g.shape[1]):
                    u = unit[layer, d]
                    rows.append({"layer": layer, "direction": d, "gate": name,
                                 "mean": float(g[layer, d].mean()),
                                 "frac_low": float((u < low).float().mean()),
                                 "frac_high": float((u > high).float().mean())})
        return pd.DataFrame(rows, columns=["layer", "direction", "gate", "mean", "frac_low", "frac_high"])


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


def _flat(params: list[list[Tensor]], bias: bool) -> list[Tensor]:
    return [p for ps in params for p in (ps if bias else ps[:2])]


def _proc(t: Tensor) -> Tensor:
    """(T, D, ...) position order <-> processing order: flip the reverse direction in time (an involution)."""
    if t.shape[1] == 1:
        return t
    return torch.stack([t[:, 0], t[:, 1].flip(0)], dim=1)


def _affine(x: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """x (T, D, B, k) @ W[d]^T + b[d] for each direction d -> (T, D, B, G); one GEMM per direction."""
    T, D, B, k = x.shape
    return torch.stack([torch.addmm(b[d], x[:, d].reshape(T * B, k), W[d].t()).view(T, B, -1)
                        for d in range(D)], dim=1)


def _weight_grad(dpre: Tensor, inp: Tensor) -> Tensor:
    """sum_{t,b} dpre^T inp per direction: (T, D, B, G), (T, D, B, k) -> (D, G, k)."""
    T, D, B, G = dpre.shape
    return torch.stack([dpre[:, d].reshape(T * B, G).t() @ inp[:, d].reshape(T * B, -1) for d in range(D)])


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


@torch.no_grad()
def _forward_layer(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, params, bias: bool):
    """Run one layer natively and recompute its gates. x (T, B, in) position order.

    Returns out (T, B, D*H), h_n, c_n and a dict of time-major processing-order tensors for the backward.
    """
    D = len(params)
    T, B, _ = x.shape
    H = params[0][1].shape[1]
    hx = (h0, c0) if mode == "LSTM" else h0
    out, h_n, c_n = _native(mode, x, hx, _flat(params, bias), bias, D == 2)

    W_ih = torch.stack([p[0] for p in params])  # (D, GH, in)
    W_hh = torch.stack([p[1] for p in params])  # (D, GH, H)
    b_ih = torch.stack([p[2] for p in params])  # (D, GH)
    b_hh = torch.stack([p[3] for p in params])

    h = _proc(out.view(T, B, D, H).transpose(1, 2))  # (T, D, B, H) processing order
    prev = torch.cat([h0.unsqueeze(0), h[:-1]], dim=0)  # (T, D, B, H): state entering each step
    xp = _proc(x.unsqueeze(1).expand(T, D, B, x.shape[-1]))  # (T, D, B, in)
    gi = _affine(xp, W_ih, b_ih)  # (T, D, B, GH) input side
    gh = _affine(prev, W_hh, b_hh)  # (T, D, B, GH) hidden side
    st = {"h": h, "prev": prev, "xp": xp, "W_ih": W_ih, "W_hh": W_hh}

    if mode == "RNN_TANH":
        st["A"] = 1 - h * h  # tanh'(a) = 1 - h^2
    elif mode == "RNN_RELU":
        st["A"] = ((gi + gh) > 0).to(h.dtype)
    elif mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        ig = i * g
        c = torch.empty_like(h)  # (T, D, B, H)
        c_prev = c0.view(D, B, H)
        for s in range(T):  # c_s = f_s * c_{s-1} + i_s * g_s
            c_prev = torch.addcmul(ig[s], f[s], c_prev, out=c[s])
        c_prev_all = torch.cat([c0.unsqueeze(0), c[:-1]], dim=0)
        tc = c.tanh()
        st.update(c=c, gates={"input": i, "forget": f, "cell": g, "output": o}, f=f,
                  Ac=o * (1 - tc * tc),  # dh/dc
                  # coefficients turning (dc, dc, dc, dh) into the four pre-activation gradients
                  coef=torch.stack([g * i * (1 - i), c_prev_all * f * (1 - f), i * (1 - g * g),
                                    tc * o * (1 - o)], dim=3))  # (T, D, B, 4, H)
    else:  # GRU
        gi_r, gi_z, gi_n = gi.chunk(3, dim=-1)
        gh_r, gh_z, gh_n = gh.chunk(3, dim=-1)
        r, z = (gi_r + gh_r).sigmoid(), (gi_z + gh_z).sigmoid()
        n = (gi_n + r * gh_n).tanh()
        Cn = (1 - z) * (1 - n * n)  # dL/dn_pre = d * Cn
        Cr = Cn * gh_n * r * (1 - r)  # dL/dr_pre = d * Cr
        Cz = (prev - n) * z * (1 - z)  # dL/dz_pre = d * Cz
        st.update(gates={"reset": r, "update": z, "new": n}, z=z,
                  coef_h=torch.stack([Cr, Cz, Cn * r], dim=3),  # hidden-side pre-activation grads
                  coef_i=torch.stack([Cr, Cz, Cn], dim=3))  # input-side
    return out, h_n, c_n, st


@torch.no_grad()
def _backward_layer(mode: str, st: dict, e: Tensor, k: int | None):
    """Backward recursion for one layer. e (T, D, B, H): direct gradient, processing order.

    Returns d (T, D, B, H) total dL/dh, dc (LSTM) , dgi, dgh (T, D, B, GH) pre-activation gradients.
    """
    T, D, B, H = e.shape
    W_hh = st["W_hh"]  # (D, GH, H)
    d = torch.empty_like(e)
    d[T - 1] = e[T - 1]

    def cut(s: int) -> bool:  # the state entering step s was detached
        return k is not None and s % k == 0

    if mode in ("RNN_TANH", "RNN_RELU"):
        A = st["A"]
        dpre = torch.empty_like(e)
        for s in range(T - 1, -1, -1):
            torch.mul(d[s], A[s], out=dpre[s])
            if s == 0:
                break
            if cut(s):
                d[s - 1] = e[s - 1]
            else:
                torch.baddbmm(e[s - 1], dpre[s], W_hh, out=d[s - 1])  # e + dpre @ W_hh
        return d, None, dpre, dpre

    if mode == "LSTM":
        Ac, f, coef = st["Ac"], st["f"], st["coef"]
        dc = torch.empty_like(e)
        dpre = torch.empty(T, D, B, 4 * H, dtype=e.dtype)
        carry = torch.zeros(D, B, H, dtype=e.dtype)
        for s in range(T - 1, -1, -1):
            gc = torch.addcmul(carry, d[s], Ac[s], out=dc[s])  # total dL/dc_s
            torch.mul(torch.stack((gc, gc, gc, d[s]), dim=2), coef[s], out=dpre[s].view(D, B, 4, H))
            if s == 0:
                break
            if cut(s):
                d[s - 1] = e[s - 1]
                carry = torch.zeros_like(carry)
            else:
                torch.baddbmm(e[s - 1], dpre[s], W_hh, out=d[s - 1])
                carry = gc * f[s]
        return d, dc, dpre, dpre

    # GRU
    z, coef_h = st["z"], st["coef_h"]
    dgh = torch.empty(T, D, B, 3 * H, dtype=e.dtype)
    for s in range(T - 1, -1, -1):
        torch.mul(d[s].unsqueeze(2), coef_h[s], out=dgh[s].view(D, B, 3, H))
        if s == 0:
            break
        if cut(s):
            d[s - 1] = e[s - 1]
        else:
            torch.baddbmm(torch.addcmul(e[s - 1], d[s], z[s]), dgh[s], W_hh, out=d[s - 1])
    dgi = (d.unsqueeze(3) * st["coef_i"]).view(T, D, B, 3 * H)
    return d, None, dgi, dgh


def trace(module: nn.Module, x: Tensor, loss_fn: Callable[[Tensor], Tensor] | None = None, *,
          h0=None, truncation: int | None = None) -> Trace:
    """Trace `module` (nn.RNN / nn.LSTM / nn.GRU) on input `x` (the module's own layout).

    loss_fn(output) -> scalar, where output is exactly module(x, h0)[0]; default: mean of squares of the
    top layer's final state of each direction. truncation=k detaches the recurrent state every k steps,
    counted from the first step each direction processes (PyTorch-style truncated BPTT).
    The module is only read. Inter-layer dropout is not applied (the deterministic network, as in eval).
    """
    mode = _mode_of(module)
    k = _check_truncation(truncation)
    xt, batched = _check_input(module, x)  # (T, B, in)
    T, B, _ = xt.shape
    L, D, H = module.num_layers, (2 if module.bidirectional else 1), module.hidden_size
    dtype = xt.dtype
    h0_all, c0_all = _check_h0(module, h0, B, batched, dtype)
    if loss_fn is None:
        loss_fn = _default_loss(module, batched)
    elif not callable(loss_fn):
        raise TypeError("loss_fn must be callable: output -> scalar tensor")

    # 1-2. forward, layer by layer
    states, h_ns, c_ns = [], [], []
    inp = xt
    for layer in range(L):
        sl = slice(layer * D, (layer + 1) * D)
        params = _layer_params(module, layer, detach=True)
        inp, h_n, c_n, st = _forward_layer(mode, inp, h0_all[sl], None if c0_all is None else c0_all[sl],
                                           params, module.bias)
        states.append(st)
        h_ns.append(h_n)
        c_ns.append(c_n)
    out_tm = inp  # (T, B, D*H)
    output = out_tm.transpose(0, 1) if module.batch_first else out_tm
    if not batched:
        output = output.squeeze(0 if module.batch_first else 1)
    output = output.contiguous()

    # 3. dL/d(output) through loss_fn only
    leaf = output.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(leaf)
    if not isinstance(loss, Tensor):
        raise TypeError(f"loss_fn must return a torch.Tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar, got a tensor of shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ValueError("loss_fn's result does not depend on the output it was given")
    (g_out,) = torch.autograd.grad(loss.reshape(()), leaf, allow_unused=True)
    if g_out is None:
        raise ValueError("loss_fn's result does not depend on the output it was given")
    if not batched:
        g_out = g_out.unsqueeze(0 if module.batch_first else 1)
    g_out = g_out.transpose(0, 1) if module.batch_first else g_out  # (T, B, D*H)

    # 4-5. backward recursion, top layer first
    e = _proc(g_out.reshape(T, B, D, H).transpose(1, 2).contiguous())  # (T, D, B, H) processing order
    grads_h, grads_c, param_grads = [None] * L, [None] * L, {}
    grad_input = None
    for layer in range(L - 1, -1, -1):
        st = states[layer]
        d, dc, dgi, dgh = _backward_layer(mode, st, e, k)
        grads_h[layer], grads_c[layer] = d, dc
        sfx = f"_l{layer}"
        dW_ih, dW_hh = _weight_grad(dgi, st["xp"]), _weight_grad(dgh, st["prev"])
        db_ih, db_hh = dgi.sum(dim=(0, 2)), dgh.sum(dim=(0, 2))
        for dd in range(D):
            s = sfx + ("_reverse" if dd else "")
            param_grads["weight_ih" + s] = dW_ih[dd]
            param_grads["weight_hh" + s] = dW_hh[dd]
            if module.bias:
                param_grads["bias_ih" + s] = db_ih[dd]
                param_grads["bias_hh" + s] = db_hh[dd]
        # dL/d(layer input): sum over directions, back to position order
        W_ih = st["W_ih"]
        dx = _proc(torch.stack([dgi[:, dd] @ W_ih[dd] for dd in range(D)], dim=1)).sum(dim=1)  # (T, B, in)
        if layer > 0:
            e = _proc(dx.view(T, B, D, H).transpose(1, 2).contiguous())
        else:
            grad_input = dx

    def per_step(ts: list[Tensor]) -> Tensor:  # L x (T, D, B, H) processing -> (L, D, B, T, H) position
        return torch.stack([_proc(t).permute(1, 2, 0, 3) for t in ts]).contiguous()

    hidden = per_step([s["h"] for s in states])
    grad_hidden = per_step(grads_h)
    gates = {name: per_step([s["gates"][name] for s in states]) for name in GATE_NAMES[mode]}
    grad_input = grad_input.transpose(0, 1) if module.batch_first else grad_input
    if not batched:
        grad_input = grad_input.squeeze(0 if module.batch_first else 1)
    # ensure parameter-name order matches the module
    param_grads = {n: param_grads[n] for n, _ in module.named_parameters()}

    return Trace(
        mode=mode,
        output=output,
        h_n=torch.cat(h_ns, dim=0),
        c_n=torch.cat(c_ns, dim=0) if mode == "LSTM" else None,
        loss=float(loss.detach()),
        hidden=hidden,
        cell=per_step([s["c"] for s in states]) if mode == "LSTM" else None,
        gates=gates,
        grad_hidden=grad_hidden,
        grad_cell=per_step(grads_c) if mode == "LSTM" else None,
        grad_norm=grad_hidden.norm(dim=-1).mean(dim=2),  # (L, D, T)
        grad_input=grad_input.contiguous(),
        param_grads=param_grads,
        truncation=k,
    )


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
    B = xt.shape[1]
    L, D, H = module.num_layers, (2 if module.bidirectional else 1), module.hidden_size
    if hx is None:
        z = torch.zeros(L * D, B, H, dtype=xt.dtype, device=xt.device)
        hx = (z, z) if mode == "LSTM" else z
    h0_all, c0_all = (hx if mode == "LSTM" else (hx, None))
    inp, h_ns, c_ns = xt, [], []
    for layer in range(L):
        params = _layer_params(module, layer, detach=False)
        outs = []
        for d in range(D):
            xin = inp if d == 0 else inp.flip(0)
            i = layer * D + d
            state = (h0_all[i:i + 1], c0_all[i:i + 1]) if mode == "LSTM" else h0_all[i:i + 1]
            chunks = []
            for start in range(0, T, k):
                if start > 0:  # detach the state entering this chunk
                    state = tuple(s.detach() for s in state) if mode == "LSTM" else state.detach()
                o, h, c = _native(mode, xin[start:start + k], state, _flat([params[d]], module.bias),
                                  module.bias, False)
                state = (h, c) if mode == "LSTM" else h
                chunks.append(o)
            o = torch.cat(chunks, dim=0)
            outs.append(o if d == 0 else o.flip(0))
            h_ns.append(state[0] if mode == "LSTM" else state)
            if mode == "LSTM":
                c_ns.append(state[1])
        inp = torch.cat(outs, dim=-1)
        if module.training and module.dropout > 0 and layer < L - 1:
            inp = nn.functional.dropout(inp, module.dropout, training=True)
    output = inp.transpose(0, 1) if module.batch_first else inp
    h_n = torch.cat(h_ns, dim=0)
    return output, ((h_n, torch.cat(c_ns, dim=0)) if mode == "LSTM" else h_n)


def spectral_bound(W_hh: Tensor) -> tuple[float, float]:
    """(spectral radius, largest singular value) of a square recurrent matrix, in float64."""
    W = W_hh.detach().double()
    return float(torch.linalg.eigvals(W).abs().max()), float(torch.linalg.svdvals(W)[0])


__all__ = ["Trace", "trace", "truncated_forward", "spectral_bound", "GATE_NAMES"]
