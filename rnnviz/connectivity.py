"""Connectivity: how far back each prediction reaches (the view of Madsen, "Visualizing memorization in RNNs",
Distill 2019), computed exactly for a model with a prediction at every step (char_lm, hello, copy_memory).

For one sequence, with the model read as  e = core_input(x),  h = core(e),  z_t = head(h_t)  (rnnviz.models):

    C[t, s] = || d f_t / d e_s ||_2        0 <= s <= t < T
    C[t, s] = 0                            s > t  (the core is causal: exactly zero, not small)

    e_s   the vector the recurrent core reads at step s, (E,): the embedding row of token x_s (nn.Embedding),
          the one-hot vector of x_s (ModelConfig(one_hot=True)), or the float input x_s.
    z_t   the logits at step t, (V,): z_t = W_hy h_t + b_y for the top layer's h_t.
    f_t   one number read from z_t:
              output="logit"     f_t = z_t[k_t]                     (default)
              output="log_prob"  f_t = log softmax(z_t)[k_t]        (= minus the cross-entropy at t, for the target)
          with the character k_t = y_t (token="target", the true next token: the default) or
          k_t = argmax z_t (token="predicted", the model's own choice; held fixed, not differentiated).
    ||.||_2  the Euclidean norm over the E components of e_s.

Row t of C says how strongly the prediction at t depends on each input it has read so far; the fall-off
along a row is the model's memory. Distill plots rows of this kind for an autocomplete GRU, LSTM and
Nested LSTM. C is a property of the model at its current weights, not of training: truncated BPTT or
dropout do not enter (the core runs in eval mode here).

How it is computed (exact): row t needs a backward pass from f_t alone, so the sequence is copied once per
row; copy (b, t) reads x_b, and one backward pass of the sum over copies of f_t (each copy's own t) yields
every row at once, the copies running as one batch through PyTorch's own fused kernel. Copies whose t lies
in [lo, hi) run only the first hi steps (4 ranges: 5/8 of the work; auto_groups says when it pays). Packing each
copy to exactly t + 1 steps (pack_padded_sequence) does the least arithmetic but measured 1.2-3.7x slower
than no cut at all on the CPU. Memory is bounded by processing the copies in chunks.
Cost relative to a probe snapshot: bench/bench_connectivity.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnviz.tasks import Batch

OUTPUTS = ("logit", "log_prob")
TOKENS = ("target", "predicted")
MAX_LEN = 128  # connectivity_frames: the first MAX_LEN steps of a longer sequence (exact, by causality)
LSTM_GROUPS, LSTM_GROUPS_FROM = 4, 64  # auto groups: 4 for an LSTM over >= 64 steps, else 1 (measured, below)
CHUNK_FLOATS = 16_000_000  # bound on copies x T x hidden x gates kept for the backward (~64 MB of float32)
FRAME_COLUMNS = ["run", "step", "t", "s", "lag", "connectivity", "input", "target"]


def _check(model, output: str, token: str) -> None:
    if getattr(model, "kind", None) != "many_to_many" or not all(hasattr(model, a) for a in ("core", "head")):
        raise ValueError("connectivity needs a model with a prediction at every step (many_to_many: "
                         "char_lm, hello, copy_memory)")
    if getattr(model.core, "bidirectional", False):
        raise ValueError("connectivity needs a unidirectional core (a bidirectional one sees the future)")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {list(OUTPUTS)}, got {output!r}")
    if token not in TOKENS:
        raise ValueError(f"token must be one of {list(TOKENS)}, got {token!r}")


def connectivity(model, batch: Batch, output: str = "logit", token: str = "target", groups: int | None = None,
                 chunk_floats: int = CHUNK_FLOATS) -> Tensor:
    """C (B, T, T): C[b, t, s] = ||d f_t / d e_s||_2 for sequence b (module docstring), zero for s > t.

    groups: the rows t are split into this many ranges [lo, hi), and the copies of a range run only the first
    hi steps (a causal core never needs more). groups=1 runs every copy over the whole sequence; the zeros
    above the diagonal then all come out of the backward pass itself. None: auto_groups. The model is only read."""
    _check(model, output, token)
    if groups is None:
        groups = auto_groups(model.core.mode, batch.x.shape[1])
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be an int >= 1, got {groups!r}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            e = model.core_input(batch)  # (B, T, E)
            logits = model.head(model.core(e)[0], batch)  # (B, T, V)
        B, T, _ = e.shape
        k = (batch.y if token == "target" else logits.argmax(-1)).long()  # (B, T) the character read from z_t
        C = torch.zeros(B, T, T, dtype=e.dtype)
        gates = {"LSTM": 4, "GRU": 3}.get(model.core.mode, 1)
        per_step = model.core.hidden_size * model.core.num_layers * (gates + 2)  # floats kept per copy and step
        bounds = torch.linspace(0, T, min(groups, T) + 1).round().long().unique().tolist()
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            # copy r reads sequence b_idx[r] up to step hi - 1 and is read out at its own step t_idx[r]
            rows = (torch.arange(B)[:, None] * T + torch.arange(lo, hi)[None, :]).reshape(-1)
            for chunk in rows.split(max(1, chunk_floats // (hi * per_step))):
                b_idx, t_idx = chunk // T, chunk % T
                rep = e[b_idx, :hi].detach().clone().requires_grad_(True)  # (R, hi, E)
                out = model.core(rep)[0]  # (R, hi, H)
                h = out[torch.arange(len(chunk)), t_idx]  # (R, H)
                z = model.head(h[:, None], None)[:, 0]  # (R, V)
                if output == "log_prob":
                    z = torch.log_softmax(z, dim=-1)
                f = z.gather(1, k[b_idx, t_idx][:, None])  # (R, 1)
                (grad,) = torch.autograd.grad(f.sum(), rep)  # (R, hi, E): d f_t / d e_s of each copy's own t
                C[b_idx, t_idx, :hi] = torch.linalg.vector_norm(grad, dim=-1)  # (R, hi)
        return C
    finally:
        model.train(was_training)


def auto_groups(mode: str, T: int) -> int:
    """The number of row ranges that measured fastest (bench/bench_connectivity.py, one thread): the LSTM's
    fused kernel gains from shorter copies once T >= 64 (4 ranges: 1.3-2.3x faster at hidden >= 64, about even
    at hidden 32); nn.RNN and nn.GRU run step by step on the CPU, where every range adds up to T steps of
    per-step overhead, so they run one range (4 ranges measured 1.4-1.6x slower)."""
    return LSTM_GROUPS if mode == "LSTM" and T >= LSTM_GROUPS_FROM else 1


def window(batch: Batch, example: int, max_len: int | None = MAX_LEN) -> Batch:
    """One sequence of `batch` (as a batch of 1), cut to its first max_len steps. For a causal model the
    connectivity of the cut sequence equals the top-left corner of the full one exactly."""
    B = batch.x.shape[0]
    if not 0 <= example < B:
        raise ValueError(f"example must be in [0, {B}), got {example}")
    T = batch.x.shape[1] if max_len is None else min(batch.x.shape[1], max_len)
    sl = slice(example, example + 1)
    return Batch(x=batch.x[sl, :T], y=batch.y[sl, :T],
                 lengths=None if batch.lengths is None else batch.lengths[sl].clamp(max=T))


def _tokens(task, ids) -> list[str]:
    itos = getattr(task, "itos", None)
    return [itos[i] if itos is not None and 0 <= i < len(itos) else str(i) for i in ids.tolist()]


def connectivity_frame(model, task, batch: Batch, example: int = 0, output: str = "logit", token: str = "target",
                       max_len: int | None = MAX_LEN) -> pd.DataFrame:
    """Tidy rows for one sequence: t, s, lag = t - s, connectivity, input (the token x_s), target (y_t);
    only s <= t (the rest is exactly zero). The first max_len steps of a longer sequence."""
    b = window(batch, example, max_len)
    C = connectivity(model, b, output=output, token=token)[0].double().numpy()  # (T, T)
    T = C.shape[0]
    t, s = np.tril_indices(T)
    x_tok, y_tok = _tokens(task, b.x[0]), _tokens(task, b.y[0])
    return pd.DataFrame({"t": t, "s": s, "lag": t - s, "connectivity": C[t, s],
                         "input": [x_tok[i] for i in s], "target": [y_tok[i] for i in t]})


def connectivity_frames(runs: dict, example: int = 0, output: str = "logit", token: str = "target",
                        max_len: int | None = MAX_LEN) -> pd.DataFrame:
    """run, step, t, s, lag, connectivity, input, target for every run {label: Trainer} on its probe batch
    (the same sequences for every run of a session: they share the task and seed)."""
    parts = [connectivity_frame(tr.model, tr.task, tr.probe, example, output, token, max_len)
             .assign(run=label, step=tr.steps) for label, tr in runs.items()]
    return pd.concat(parts, ignore_index=True)[FRAME_COLUMNS] if parts else pd.DataFrame(columns=FRAME_COLUMNS)


def reach_frame(cf: pd.DataFrame) -> pd.DataFrame:
    """run, lag, connectivity, n: the mean of C[t, t - lag] over the rows t that reach that far back (n of
    them), from connectivity_frame(s). How strongly a prediction depends on the input `lag` steps back."""
    cols = ["run", "lag", "connectivity", "n"]
    if len(cf) == 0:
        return pd.DataFrame(columns=cols)
    cf = cf if "run" in cf else cf.assign(run="model")
    out = cf.groupby(["run", "lag"], sort=False)["connectivity"].agg(["mean", "size"]).reset_index()
    return out.rename(columns={"mean": "connectivity", "size": "n"})[cols]


__all__ = ["MAX_LEN", "OUTPUTS", "TOKENS", "auto_groups", "connectivity", "connectivity_frame", "connectivity_frames",
           "reach_frame", "window"]
