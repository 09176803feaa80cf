"""Phase diagram of gradient flow at initialisation: where gradients vanish or explode.

    cfg = PhaseConfig()                       # 3 cells x 20 weight scales x 20 sequence lengths x 3 seeds
    df = sweep(cfg, progress=lambda f: ...)   # one row per (cell, scale, y)
    line = boundary(cfg)                      # the tanh RNN's theoretical boundary sigma_max(W_hh) = 1

What is measured (the definition every test and figure uses). For one freshly initialised single-layer core
(cell, weight scale, seed), a batch of B sequences x_b (standard normal noise, or zeros) of length T, zero
initial state, and the loss on the last step only

    L = sum_b v_b . h_{T-1, b}          v_b a fixed random unit vector per sequence (drawn from the seed),

so dL/dh_{T-1, b} = v_b exactly (norm 1). With ||.|| the 2-norm over hidden units and the batch mean taken
of the norms, exactly as rnnviz.trace's grad_norm does,

    ratio_seed = mean_b ||dL/dh_{0,b}|| / mean_b ||dL/dh_{T-1,b}||       (= trace(...).grad_norm[0, 0, 0]
                                                                            / grad_norm[0, 0, T-1])
    log_ratio  = mean over seeds of log10(ratio_seed)    (a geometric mean of the ratios)
    log_ratio_std = population std (ddof=0) of log10(ratio_seed) over seeds.

Negative: the gradient from the end has vanished by the start; positive: it exploded. Each seed's value is
clamped to [-LOG_RATIO_CLIP, +LOG_RATIO_CLIP] = [-300, 300] decades (about float64's range, so anything a
float64 rnnviz.trace could report is kept as is); `clipped` says a seed hit the clamp. An exactly zero
||dL/dh_0|| (e.g. every unit saturated) gives the floor, a non-finite one the ceiling: never NaN.

The networks are exactly `build_core(cfg, cell, scale, seed)`: rnnviz.models.make_core + apply_init under
torch.manual_seed(seed) with ModelConfig(cell, hidden_size, init, weight_scale=scale, forget_bias, seed),
float32 weights (PyTorch's default biases unless zero_bias=True). For float-input tasks this is also the core
build_model makes (it builds the core first); for token tasks the embedding draws from the RNG first.

How it is fast (exact, no autograd): every (scale, seed[, forget bias]) network of a cell is one slice of a
batched recurrence (torch.bmm over a networks dimension). One forward pass to T_max stores the per-step
Jacobian coefficients; one backward sweep from T_max-1 down to 0 carries a stack of vectors, one per
sequence length: the vector for length T starts as v at step T-1 and is multiplied by the transposed step
Jacobians J_t^T (exactly rnnviz.trace's recursions; the same prefix of the input gives the same forward
states) down to step 0:
    RNN   d_{t-1} = W_hh^T (d_t * phi'(a_t))
    LSTM  dc = dc_carry + d_t o_t (1 - tanh^2 c_t);  d_{t-1} = W_hh^T [dc g i(1-i) | dc c_{t-1} f(1-f) |
          dc i (1-g^2) | d_t tanh(c_t) o(1-o)];  dc_carry = f_t dc
    GRU   d_{t-1} = z_t d_t + W_hh^T [dr | dz | r dn]  with dn = d (1-z)(1-n^2), dz = d (h_{t-1} - n) z(1-z),
          dr = dn (W_hn h_{t-1} + b_hn) r(1-r)
Each vector is renormalised every step and its log-norm accumulated, so neither float32 nor float64 ever
under- or overflows (a float32 trace underflows below 1e-38; this does not).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from rnnviz.models import CELLS, INITS, ModelConfig, apply_init, make_core

Y_AXES = ("seq_len", "forget_bias", "hidden_size")
INPUTS = ("noise", "zero")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
LOG_RATIO_CLIP = 300.0  # decades; the floor / ceiling of a seed's log_ratio
MAX_GRID = 900  # len(scales) * len(y values)
MAX_SEQ_LEN = 2000
MAX_HIDDEN = 512
COLUMNS = ["cell", "scale", "y", "seq_len", "hidden_size", "log_ratio", "log_ratio_std", "n_seeds", "clipped"]
_MEM_BUDGET = 96 * 2**20  # bytes of stored per-step coefficients + weights per batched chunk of networks
_N_COEF = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 6, "GRU": 4}  # stored H-vectors per step and sequence
_N_BLOCKS = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _default_scales() -> tuple[float, ...]:
    return tuple(round(float(s), 4) for s in np.linspace(0.25, 2.0, 20))


def _default_seq_lens() -> tuple[int, ...]:
    return tuple(int(t) for t in np.unique(np.round(np.geomspace(5, 500, 20)).astype(int)))


def _default_hidden_sizes() -> tuple[int, ...]:
    return tuple(int(h) for h in np.unique(np.round(np.geomspace(4, 128, 11)).astype(int)))


@dataclass(frozen=True)
class PhaseConfig:
    """One phase-diagram sweep. Frozen and hashable: results can be cached by config."""

    cells: tuple[str, ...] = ("rnn_tanh", "lstm", "gru")  # rnnviz.models.CELLS keys
    scales: tuple[float, ...] = _default_scales()  # x axis: weight_scale, 20 values in [0.25, 2]
    seq_lens: tuple[int, ...] = _default_seq_lens()  # y axis "seq_len": 20 log-spaced in [5, 500]
    hidden_size: int = 64  # (ignored when y_axis = "hidden_size")
    input_size: int = 1
    input: str = "noise"  # "noise": x ~ N(0, 1) per seed | "zero": x = 0
    init: str = "orthogonal"  # "default" | "orthogonal" | "identity" (rnnviz.models.apply_init)
    seeds: tuple[int, ...] = (0, 1, 2)
    batch: int = 4  # sequences per network
    y_axis: str = "seq_len"  # "seq_len" | "forget_bias" (LSTM only) | "hidden_size"
    forget_biases: tuple[float, ...] = tuple(float(b) for b in np.arange(-4.0, 5.01, 0.5))  # y_axis "forget_bias"
    hidden_sizes: tuple[int, ...] = _default_hidden_sizes()  # y_axis "hidden_size": 11 log-spaced in [4, 128]
    seq_len: int = 100  # the sequence length when y_axis is not "seq_len"
    forget_bias: float | None = None  # LSTM b_if (b_hf = 0) when y_axis is not "forget_bias"; None: PyTorch's
    zero_bias: bool = False  # zero every bias after init (then forget_bias, if any, is set again)
    dtype: str = "float32"  # arithmetic of the sweep: "float32" (the models' own) | "float64"

    def __post_init__(self):
        for f in ("cells", "scales", "seq_lens", "seeds", "forget_biases", "hidden_sizes"):  # lists -> tuples
            v = getattr(self, f)
            if isinstance(v, (list, np.ndarray)):
                object.__setattr__(self, f, tuple(v.tolist() if isinstance(v, np.ndarray) else v))

    @property
    def y_values(self) -> tuple:
        return {"seq_len": self.seq_lens, "forget_bias": self.forget_biases, "hidden_size": self.hidden_sizes}[
            self.y_axis]

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""

        def is_int(v) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
                and math.isfinite(v)

        def check_tuple(name: str, ok: Callable[[object], bool], what: str, max_len: int = MAX_GRID) -> None:
            v = getattr(self, name)
            if not isinstance(v, tuple) or not 1 <= len(v) <= max_len:
                raise ValueError(f"{name} must be a non-empty tuple of at most {max_len} values, got {v!r}")
            bad = [e for e in v if not ok(e)]
            if bad:
                raise ValueError(f"{name} must hold {what}, got {bad[0]!r}")
            if len(set(v)) != len(v):
                raise ValueError(f"{name} must not repeat a value, got {v!r}")

        check_tuple("cells", lambda c: c in CELLS, f"cell names from {sorted(CELLS)}", len(CELLS))
        check_tuple("scales", lambda s: is_num(s) and 0 < s <= 10, "finite numbers in (0, 10]")
        check_tuple("seq_lens", lambda t: is_int(t) and 2 <= t <= MAX_SEQ_LEN, f"ints in [2, {MAX_SEQ_LEN}]")
        if not (is_int(self.hidden_size) and 1 <= self.hidden_size <= MAX_HIDDEN):
            raise ValueError(f"hidden_size must be an int in [1, {MAX_HIDDEN}], got {self.hidden_size!r}")
        if not (is_int(self.input_size) and 1 <= self.input_size <= 64):
            raise ValueError(f"input_size must be an int in [1, 64], got {self.input_size!r}")
        if self.input not in INPUTS:
            raise ValueError(f"input must be one of {list(INPUTS)}, got {self.input!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {self.init!r}")
        check_tuple("seeds", is_int, "ints", 16)
        if not (is_int(self.batch) and 1 <= self.batch <= 64):
            raise ValueError(f"batch must be an int in [1, 64], got {self.batch!r}")
        if self.y_axis not in Y_AXES:
            raise ValueError(f"y_axis must be one of {list(Y_AXES)}, got {self.y_axis!r}")
        check_tuple("forget_biases", lambda b: is_num(b) and abs(b) <= 20, "finite numbers in [-20, 20]")
        check_tuple("hidden_sizes", lambda h: is_int(h) and 1 <= h <= MAX_HIDDEN, f"ints in [1, {MAX_HIDDEN}]")
        if not (is_int(self.seq_len) and 2 <= self.seq_len <= MAX_SEQ_LEN):
            raise ValueError(f"seq_len must be an int in [2, {MAX_SEQ_LEN}], got {self.seq_len!r}")
        if self.forget_bias is not None and not (is_num(self.forget_bias) and abs(self.forget_bias) <= 20):
            raise ValueError(f"forget_bias must be None or a finite number in [-20, 20], got {self.forget_bias!r}")
        if not isinstance(self.zero_bias, bool):
            raise ValueError(f"zero_bias must be a bool, got {self.zero_bias!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.y_axis == "forget_bias" and any(c != "lstm" for c in self.cells):
            raise ValueError(f"cells must be ('lstm',) when y_axis is 'forget_bias', got {self.cells!r}")
        n = len(self.scales) * len(self.y_values)
        if n > MAX_GRID:
            y_field = {"seq_len": "seq_lens", "forget_bias": "forget_biases",
                       "hidden_size": "hidden_sizes"}[self.y_axis]
            raise ValueError(f"scales x {y_field} is a grid of {n} points; at most {MAX_GRID} are allowed")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ----------------------------------------------------------------------------------------------------------
# The networks and their inputs (public: the tests run rnnviz.trace on exactly these)


def build_core(cfg: PhaseConfig, cell: str, scale: float, seed: int, y=None) -> nn.Module:
    """The float32, batch_first nn.RNN / nn.LSTM / nn.GRU of grid point (cell, scale, seed[, y]): make_core +
    apply_init under torch.manual_seed(seed) (global RNG untouched), as ModelConfig(cell, hidden_size, init,
    weight_scale=scale, forget_bias, seed) builds it. y is the y-axis value when that changes the network
    (y_axis "forget_bias" or "hidden_size"). zero_bias zeroes all biases, then forget_bias is set again."""
    hidden, fb = cfg.hidden_size, cfg.forget_bias
    if cfg.y_axis == "hidden_size" and y is not None:
        hidden = int(y)
    if cfg.y_axis == "forget_bias" and y is not None:
        fb = float(y)
    mcfg = ModelConfig(cell=cell, hidden_size=hidden, init=cfg.init, weight_scale=float(scale),
                       forget_bias=fb if cell == "lstm" else None, seed=int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))  # = torch.manual_seed for CPU weights, minus lazy CUDA seeding
        core = make_core(mcfg, cfg.input_size, False)
        apply_init(core, mcfg)
    if cfg.zero_bias:
        with torch.no_grad():
            core.bias_ih_l0.zero_()
            core.bias_hh_l0.zero_()
            if cell == "lstm" and fb is not None:
                core.bias_ih_l0[hidden:2 * hidden] = fb
    return core.float()


def probe_inputs(cfg: PhaseConfig, seed: int, hidden_size: int | None = None, seq_len: int | None = None,
                 dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """(x (B, T, input_size), v (B, H)) of a seed: v_b unit vectors (the loss L = sum_b v_b . h_{T-1,b}), then
    x ~ N(0, 1) (zeros for input="zero"), both from torch.Generator().manual_seed(seed), drawn in float64.
    T defaults to the longest sequence of the sweep; a shorter sequence of length T is the prefix x[:, :T]."""
    H = cfg.hidden_size if hidden_size is None else int(hidden_size)
    T = (max(cfg.seq_lens) if cfg.y_axis == "seq_len" else cfg.seq_len) if seq_len is None else int(seq_len)
    g = torch.Generator().manual_seed(int(seed))
    v = torch.randn(cfg.batch, H, generator=g, dtype=torch.float64)
    v = v / v.norm(dim=-1, keepdim=True)
    x = torch.randn(cfg.batch, T, cfg.input_size, generator=g, dtype=torch.float64)
    if cfg.input == "zero":
        x.zero_()
    return x.to(dtype), v.to(dtype)


def loss_fn(v: Tensor) -> Callable[[Tensor], Tensor]:
    """The sweep's loss for rnnviz.trace: output (B, T, H) -> sum_b v_b . h_{T-1,b}."""
    return lambda out: (out[:, -1] * v).sum()


def boundary(cfg: PhaseConfig) -> pd.DataFrame:
    """The tanh RNN's theoretical vanishing/exploding boundary (Pascanu et al. 2013): the weight scale at which
    the largest singular value of W_hh is 1, i.e. critical_scale = 1 / sigma_max(W_hh at scale 1), mean over
    seeds. One row per y value: y, hidden_size, critical_scale (exactly 1 up to rounding for orthogonal and
    identity init; ~0.87 for PyTorch's default uniform init at large H). Below it gradients must vanish (with a
    loss at the end); above it they can explode."""
    cfg.validate()
    rows = []
    for y in cfg.y_values:
        H = int(y) if cfg.y_axis == "hidden_size" else cfg.hidden_size
        sig = [float(torch.linalg.matrix_norm(build_core(cfg, "rnn_tanh", 1.0, s, y).weight_hh_l0.detach().double(), 2))
               for s in cfg.seeds]
        rows.append({"y": y, "hidden_size": H, "critical_scale": 1.0 / float(np.mean(sig))})
    return pd.DataFrame(rows, columns=["y", "hidden_size", "critical_scale"])


# ----------------------------------------------------------------------------------------------------------
# The batched recurrence


class _Progress:
    """Monotone fraction in [0, 1] to a callback, throttled to steps of >= 1%."""

    def __init__(self, fn: Callable[[float], None] | None, total: float):
        self.fn, self.total, self.done, self.last = fn, max(total, 1e-12), 0.0, -1.0

    def emit(self, frac: float) -> None:
        if self.fn is not None:
            self.last = frac
            self.fn(frac)

    def add(self, work: float) -> None:
        self.done += work
        frac = min(self.done / self.total, 1.0)
        if frac - self.last >= 0.01:
            self.emit(frac)


def _stack(cores: list[nn.Module], dtype) -> dict[str, Tensor]:
    """Stack single-layer cores' weights along a networks dimension N."""
    def st(name: str) -> Tensor:
        return torch.stack([getattr(c, name).detach() for c in cores]).to(dtype)

    W_ih, W_hh, b_ih, b_hh = st("weight_ih_l0"), st("weight_hh_l0"), st("bias_ih_l0"), st("bias_hh_l0")
    return {"W_ihT": W_ih.transpose(1, 2).contiguous(), "W_hh": W_hh, "W_hhT": W_hh.transpose(1, 2).contiguous(),
            "b_ih": b_ih, "b_hh": b_hh}


@torch.no_grad()
def _log_norms(mode: str, net: dict[str, Tensor], x: Tensor, v: Tensor, seq_lens: list[int],
               progress: _Progress) -> Tensor:
    """ln ||dL/dh_{0,b}|| for every network n, sequence length k and sequence b: (N, K, B) float64.

    x (N, B, T_max, I) inputs, v (N, B, H) unit loss vectors, seq_lens the K lengths (T_max = max)."""
    N, B, T, _ = x.shape
    H = net["W_hh"].shape[-1]
    G = _N_BLOCKS[mode] * H
    dtype = x.dtype
    h = torch.zeros(N, B, H, dtype=dtype)
    c = torch.zeros(N, B, H, dtype=dtype)
    C = torch.empty(T, N, B, _N_COEF[mode], H, dtype=dtype)  # per-step Jacobian coefficients
    W_ihT, W_hhT, W_hh = net["W_ihT"], net["W_hhT"], net["W_hh"]
    b_in = (net["b_ih"] + net["b_hh"]).unsqueeze(1) if mode != "GRU" else net["b_ih"].unsqueeze(1)  # (N, 1, G)
    b_hh = net["b_hh"].unsqueeze(1)
    step_work = N * B * G * H

    # forward, storing what the backward needs
    block = 64
    for t0 in range(0, T, block):
        t1 = min(T, t0 + block)
        xb = x[:, :, t0:t1].reshape(N, B * (t1 - t0), -1)
        gi_blk = torch.baddbmm(b_in, xb, W_ihT).view(N, B, t1 - t0, G)  # input side (+ biases)
        for t in range(t0, t1):
            gi = gi_blk[:, :, t - t0]
            Ct = C[t]
            if mode in ("RNN_TANH", "RNN_RELU"):
                a = torch.baddbmm(gi, h, W_hhT)
                if mode == "RNN_TANH":
                    h = a.tanh_()
                    torch.addcmul(torch.ones((), dtype=dtype), h, h, value=-1, out=Ct[:, :, 0])
                else:
                    h = a.relu_()
                    Ct[:, :, 0].copy_(h > 0)
            elif mode == "LSTM":
                a = torch.baddbmm(gi, h, W_hhT)  # (N, B, 4H) i|f|g|o
                s = a.sigmoid()
                i, f, o = s[..., :H], s[..., H:2 * H], s[..., 3 * H:]
                g = a[..., 2 * H:3 * H].tanh()
                c_prev = c
                c = torch.addcmul(i * g, f, c_prev)
                tc = c.tanh()
                h = o * tc
                torch.mul(g, i * (1 - i), out=Ct[:, :, 0])  # Ci
                torch.mul(c_prev, f * (1 - f), out=Ct[:, :, 1])  # Cf
                torch.mul(i, 1 - g * g, out=Ct[:, :, 2])  # Cg
                torch.mul(tc, o * (1 - o), out=Ct[:, :, 3])  # Co
                torch.mul(o, 1 - tc * tc, out=Ct[:, :, 4])  # dh -> dc
                Ct[:, :, 5].copy_(f)
            else:  # GRU, r|z|n
                gh = torch.baddbmm(b_hh, h, W_hhT)  # (N, B, 3H) hidden side
                rz = (gi[..., :2 * H] + gh[..., :2 * H]).sigmoid_()
                r, z = rz[..., :H], rz[..., H:]
                gh_n = gh[..., 2 * H:]
                n = torch.addcmul(gi[..., 2 * H:], r, gh_n).tanh_()
                Cn = (1 - z) * (1 - n * n)
                torch.mul(Cn * gh_n, r * (1 - r), out=Ct[:, :, 0])  # Cr
                torch.mul(h - n, z * (1 - z), out=Ct[:, :, 1])  # Cz
                torch.mul(Cn, r, out=Ct[:, :, 2])  # r Cn
                Ct[:, :, 3].copy_(z)
                h = torch.addcmul(n, h - n, z)  # PyTorch: (h - n) * z + n
        progress.add(step_work * (t1 - t0))

    # backward: one sweep, a stack of vectors (one per sequence length), each injected at its own end
    order = sorted(range(len(seq_lens)), key=lambda k: -seq_lens[k])  # longest first: active slots = a prefix
    ends = [seq_lens[k] - 1 for k in order]
    K = len(order)
    logs = torch.zeros(N, K, B, dtype=torch.float64)
    d = v.new_empty(N, 0, B, H)
    dc = v.new_empty(N, 0, B, H)
    tiny = torch.finfo(dtype).tiny
    m = 0
    for t in range(T - 1, 0, -1):
        while m < K and ends[m] == t:  # the vector for length T starts as v at step T-1
            d = torch.cat([d, v.unsqueeze(1)], dim=1)
            dc = torch.cat([dc, torch.zeros_like(v).unsqueeze(1)], dim=1)
            m += 1
        if m == 0:
            continue
        Ct = C[t].unsqueeze(1)  # (N, 1, B, k, H)
        rows = N, m * B
        if mode in ("RNN_TANH", "RNN_RELU"):
            pre = d * Ct[:, :, :, 0]
            d = torch.bmm(pre.view(*rows, H), W_hh).view(N, m, B, H)
        elif mode == "LSTM":
            dct = torch.addcmul(dc, d, Ct[:, :, :, 4])
            pre = torch.empty(N, m, B, 4, H, dtype=dtype)
            torch.mul(dct.unsqueeze(3), Ct[:, :, :, :3], out=pre[:, :, :, :3])
            torch.mul(d, Ct[:, :, :, 3], out=pre[:, :, :, 3])
            d = torch.bmm(pre.view(*rows, G), W_hh).view(N, m, B, H)
            dc = dct.mul_(Ct[:, :, :, 5])
        else:
            pre = d.unsqueeze(3) * Ct[:, :, :, :3]
            d = torch.baddbmm((d * Ct[:, :, :, 3]).view(*rows, H), pre.view(*rows, G), W_hh).view(N, m, B, H)
        # renormalise: keep the direction, move the size into logs (no under- or overflow, exact in exact maths)
        sq = d.pow(2).sum(-1) if mode != "LSTM" else d.pow(2).sum(-1) + dc.pow(2).sum(-1)
        nrm = sq.sqrt_().clamp_min_(tiny)  # (N, m, B); an exact 0 stays 0 (then ln ||d_0|| = -inf)
        d = d.div_(nrm.unsqueeze(-1))
        if mode == "LSTM":
            dc = dc.div_(nrm.unsqueeze(-1))
        logs[:, :m] += nrm.log().double()
        if t % 32 == 0:
            progress.add(step_work * m * 32)
    final = logs + d.double().norm(dim=-1).log()  # (N, K, B) in slot order (every length >= 2 is injected)
    out = torch.empty_like(final)
    out[:, order] = final
    return out


def _chunks(n: int, per_item: int) -> list[slice]:
    size = max(1, min(n, _MEM_BUDGET // max(per_item, 1)))
    k = math.ceil(n / size)
    size = math.ceil(n / k)  # balanced
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def _work(mode: str, H: int, T: int, seq_lens: list[int], n_nets: int, B: int) -> float:
    return float(n_nets * B * _N_BLOCKS[mode] * H * H * (T + sum(t - 1 for t in seq_lens)))


_CACHE: OrderedDict[PhaseConfig, pd.DataFrame] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def sweep(cfg: PhaseConfig, progress: Callable[[float], None] | None = None, *, cache: bool = True) -> pd.DataFrame:
    """The phase diagram of `cfg`: one row per (cell, scale, y), columns

        cell, scale, y (the y-axis value), seq_len, hidden_size, log_ratio (mean over seeds),
        log_ratio_std (population std over seeds), n_seeds, clipped (a seed hit +-LOG_RATIO_CLIP)

    ordered by cell (cfg.cells order), y, scale (cfg order). log_ratio is never NaN (see the module doc).
    progress(fraction) is called with a non-decreasing fraction in [0, 1], starting at 0.0 and ending at 1.0.
    Deterministic for a config (and a torch thread count). Results are kept in a small process-wide LRU cache
    keyed by the config (cache=False bypasses it); a copy is returned. df.attrs["y_axis"] = cfg.y_axis.
    """
    cfg.validate()
    prog = _Progress(progress, 1.0)
    prog.emit(0.0)
    if cache:
        with _CACHE_LOCK:
            hit = _CACHE.get(cfg)
            if hit is not None:
                _CACHE.move_to_end(cfg)
        if hit is not None:
            prog.emit(1.0)
            return _copy(hit)
    df = _sweep(cfg, prog)
    if cache:
        with _CACHE_LOCK:
            _CACHE[cfg] = df
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    if prog.last < 1.0:
        prog.emit(1.0)
    return _copy(df)


def _copy(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.attrs = dict(df.attrs)
    return out


def _sweep(cfg: PhaseConfig, prog: _Progress) -> pd.DataFrame:
    dtype = DTYPES[cfg.dtype]
    B = cfg.batch
    # jobs: (cell, H, seq_lens, [(scale, seed, y)]) each run as batched chunks of networks
    if cfg.y_axis == "seq_len":
        lens = sorted(cfg.seq_lens)
        jobs = [(cell, cfg.hidden_size, lens, [(s, seed, None) for s in cfg.scales for seed in cfg.seeds])
                for cell in cfg.cells]
    elif cfg.y_axis == "forget_bias":
        jobs = [(cell, cfg.hidden_size, [cfg.seq_len],
                 [(s, seed, fb) for fb in cfg.forget_biases for s in cfg.scales for seed in cfg.seeds])
                for cell in cfg.cells]
    else:
        jobs = [(cell, H, [cfg.seq_len], [(s, seed, H) for s in cfg.scales for seed in cfg.seeds])
                for cell in cfg.cells for H in cfg.hidden_sizes]
    prog.total = sum(_work(CELLS[c], H, max(lens), lens, len(items), B) for c, H, lens, items in jobs) * 1.0001

    results: dict[tuple, list[float]] = {}  # (cell, scale, y) -> per-seed log10 ratios (unclamped)
    for cell, H, lens, items in jobs:
        mode = CELLS[cell]
        T = max(lens)
        nbytes = torch.finfo(dtype).bits // 8
        per_item = nbytes * (T * B * _N_COEF[mode] * H + 3 * _N_BLOCKS[mode] * H * H + 2 * B * H * len(lens))
        probes = {seed: probe_inputs(cfg, seed, H, T, dtype) for seed in cfg.seeds}
        for sl in _chunks(len(items), per_item):
            chunk = items[sl]
            net = _stack([build_core(cfg, cell, s, seed, y) for s, seed, y in chunk], dtype)
            x = torch.stack([probes[seed][0] for _, seed, _ in chunk])  # (N, B, T, I)
            v = torch.stack([probes[seed][1] for _, seed, _ in chunk])  # (N, B, H)
            ln = _log_norms(mode, net, x, v, lens, prog)  # (N, K, B) ln ||dL/dh_0||
            # batch mean of the norms, in logs; ||dL/dh_{T-1}|| = ||v_b|| = 1 exactly
            lr = (torch.logsumexp(ln, dim=-1) - math.log(B)) / math.log(10)  # (N, K)
            for j, (s, _, y) in enumerate(chunk):
                for k, L in enumerate(lens):
                    yv = L if cfg.y_axis == "seq_len" else y
                    results.setdefault((cell, s, yv), []).append(float(lr[j, k]))

    rows = []
    for cell in cfg.cells:
        for y in cfg.y_values:
            for s in cfg.scales:
                vals = np.array(results[(cell, s, y)], dtype=np.float64)
                clamped = np.where(np.isnan(vals), LOG_RATIO_CLIP, np.clip(vals, -LOG_RATIO_CLIP, LOG_RATIO_CLIP))
                rows.append({
                    "cell": cell, "scale": float(s), "y": y,
                    "seq_len": int(y) if cfg.y_axis == "seq_len" else cfg.seq_len,
                    "hidden_size": int(y) if cfg.y_axis == "hidden_size" else cfg.hidden_size,
                    "log_ratio": float(clamped.mean()), "log_ratio_std": float(clamped.std()),
                    "n_seeds": len(vals), "clipped": bool((clamped != vals).any()),
                })
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["y_axis"] = cfg.y_axis
    return df


__all__ = ["COLUMNS", "LOG_RATIO_CLIP", "PhaseConfig", "boundary", "build_core", "clear_cache", "loss_fn",
           "probe_inputs", "sweep"]
