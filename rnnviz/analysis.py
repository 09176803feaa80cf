"""Tidy frames from trainers and snapshots: what the figures and the CSV downloads read.

    runs = {"RNN (tanh)": Trainer(...), "LSTM": Trainer(...)}
    gf = grad_flow_frames(runs)                     # run, step, layer, direction, t, grad_norm
    basis = pca_basis(runs["LSTM"].snapshots, 0, 0) # one PCA basis for every snapshot of a run
    pf = pca_frame(runs["LSTM"].latest, basis, 0, 0)  # sequence, t, pc1, pc2, pc3, label

Pure functions of their inputs (numpy / pandas / torch). Every frame built from a dict of runs carries a
`run` column with the dict's key. Snapshot tensors are (layers, dirs, batch, time, hidden) float16.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from rnnviz import theory
from rnnviz.tracing import spectral_bound
from rnnviz.training import grad_flow_frame

MAX_PCA_ROWS = 20_000  # h_t vectors pooled for the PCA fit (an even subsample beyond this)


# ----------------------------------------------------------------------------------------------------------
# Frames over runs


def _with_run(frames: dict[str, pd.DataFrame], cols: list[str]) -> pd.DataFrame:
    parts = [df.assign(run=label)[["run", *cols]] for label, df in frames.items() if len(df)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run", *cols])


def history_frames(runs: dict) -> pd.DataFrame:
    """run, step, loss, metric, grad_norm, grad_norm_clipped, baseline, metric_name (one row per step)."""
    cols = ["step", "loss", "metric", "grad_norm", "grad_norm_clipped", "baseline", "metric_name"]
    return _with_run({k: t.history_frame().assign(metric_name=t.task.metric_name) for k, t in runs.items()}, cols)


def grad_flow_frames(runs: dict) -> pd.DataFrame:
    """run, step, layer, direction, t, grad_norm: ||dL/dh_t|| of every stored snapshot of every run."""
    return _with_run({k: t.grad_flow_frame() for k, t in runs.items()},
                     ["step", "layer", "direction", "t", "grad_norm"])


def grad_flow_frames_from(snaps: dict[str, list]) -> pd.DataFrame:
    """grad_flow_frames for bare snapshots: {label: [Snapshot, ...]} (e.g. an uploaded module's trace)."""
    frames = {label: grad_flow_frame(ss) for label, ss in snaps.items()}
    return _with_run(frames, ["step", "layer", "direction", "t", "grad_norm"])


def gate_stats_frames(runs: dict) -> pd.DataFrame:
    """run, step, layer, direction, gate, mean, frac_low, frac_high (gated cells only have rows)."""
    return _with_run({k: t.gate_stats_frame() for k, t in runs.items()},
                     ["step", "layer", "direction", "gate", "mean", "frac_low", "frac_high"])


def layer_grad_frames(runs: dict) -> pd.DataFrame:
    """run, step, group, grad_norm: ||dL/dtheta|| per parameter group per step, before clipping."""
    return _with_run({k: t.layer_grad_frame() for k, t in runs.items()}, ["step", "group", "grad_norm"])


def snapshot_steps(runs: dict) -> list[int]:
    """Sorted union of the snapshot steps of all runs (the replay scrubber's stops)."""
    return sorted({int(s.step) for t in runs.values() for s in t.snapshots})


def _snap_at(trainer, step: int | None):
    return trainer.latest if step is None else trainer.snapshot_at(step)


# ----------------------------------------------------------------------------------------------------------
# Theory next to measurement


def _bound_applies(trainer) -> bool:
    """sigma_max(W_hh)^(T-1-t) bounds the top layer's forward ||dL/dh_t|| when the core is a plain RNN and
    the loss reads only the last step of every sequence (many_to_one, no padding)."""
    return (isinstance(trainer.model.core, nn.RNN) and trainer.task.kind == "many_to_one"
            and trainer.probe.lengths is None)


def predicted_frames(runs: dict, step: int | None = None) -> pd.DataFrame:
    """run, layer, t, bound: sigma_max(W_hh)^(T-1-t) * ||dL/dh_{T-1}|| (theory.tanh_rnn_bound) for the top
    layer, forward direction, of each plain-RNN run, anchored at the measured last-step norm.

    Only where the bound is a statement about the curve (see _bound_applies). sigma_max is the one the snapshot
    recorded from its own weights, so a replayed snapshot (step 0 included) gets its own prediction.
    """
    parts = {}
    for label, t in runs.items():
        snap = _snap_at(t, step)
        if snap is None or not _bound_applies(t):
            continue
        L, _, T = snap.grad_norm.shape
        sigma = snap.sigma_max
        if sigma is None:
            continue
        bound = theory.tanh_rnn_bound(sigma, T, float(snap.grad_norm[L - 1, 0, -1]))
        parts[label] = pd.DataFrame({"layer": L - 1, "t": np.arange(T), "bound": bound})
    return _with_run(parts, ["layer", "t", "bound"])


def decay_table(runs: dict, step: int | None = None) -> pd.DataFrame:
    """One row per run: the measured log10 factor per step back (theory.measured_slope of layer 0, forward
    direction) next to log10 sigma_max and log10 rho of layer 0's W_hh (plain RNNs, from the current weights
    so only next to the latest snapshot: NaN when replaying an older one, and for gated cells, where W_hh
    does not set the rate)."""
    cols = ["run", "step", "measured log10 factor / step", "measured factor / step",
            "log10 σ_max(W_hh)", "log10 ρ(W_hh)"]
    rows = []
    for label, t in runs.items():
        snap = _snap_at(t, step)
        if snap is None:
            continue
        slope = theory.measured_slope(snap.grad_norm[0, 0])
        ls = lr = math.nan
        if isinstance(t.model.core, nn.RNN) and snap is t.latest:
            rho, sigma = spectral_bound(t.model.core.weight_hh_l0)
            with np.errstate(divide="ignore"):
                ls, lr = float(np.log10(sigma)), float(np.log10(rho))
        rows.append([label, snap.step, slope, 10.0 ** slope if math.isfinite(slope) else math.nan, ls, lr])
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------------------------------------------
# One snapshot


def _long(a: np.ndarray, names: tuple[str, str]) -> dict:
    """(T, H) array -> columns t, <names[1]>, value (row-major: t slowest)."""
    T, H = a.shape
    return {names[0]: np.repeat(np.arange(T), H), names[1]: np.tile(np.arange(H), T),
            "value": a.astype(np.float64).reshape(-1)}


def gate_frame(snap, layer: int = 0, direction: int = 0, example: int = 0) -> pd.DataFrame:
    """gate, t, unit, value for every gate (LSTM input/forget/cell/output, GRU reset/update/new), then
    "cell state" (LSTM c_t) and "hidden" (h_t), of one probe sequence."""
    qs = dict(snap.gates)
    if snap.cell is not None:
        qs["cell state"] = snap.cell
    qs["hidden"] = snap.hidden
    parts = [pd.DataFrame({"gate": name, **_long(v[layer, direction, example].float().numpy(), ("t", "unit"))})
             for name, v in qs.items()]
    return pd.concat(parts, ignore_index=True)


def unit_frame(snap, layer: int = 0, direction: int = 0, example: int = 0) -> pd.DataFrame:
    """t, unit, value: h_t of every unit for one probe sequence."""
    return pd.DataFrame(_long(snap.hidden[layer, direction, example].float().numpy(), ("t", "unit")))


def attention_frame(attn: Tensor, example: int = 0) -> pd.DataFrame:
    """dec, enc, weight from (B, T_out, T_in) attention weights (rows sum to 1)."""
    a = attn[example].double().numpy()  # (T_out, T_in)
    T_out, T_in = a.shape
    return pd.DataFrame({"dec": np.repeat(np.arange(T_out), T_in), "enc": np.tile(np.arange(T_in), T_out),
                         "weight": a.reshape(-1)})


def probe_labels(trainer) -> list[str] | None:
    """A short label per probe sequence for colouring trajectories (many_to_one tasks), else None."""
    task, y = trainer.task, trainer.probe.y
    if task.kind != "many_to_one":
        return None
    if task.name == "parity":
        return ["odd" if int(v) else "even" for v in y]
    if task.name == "sentiment":
        return ["positive" if int(v) else "negative" for v in y]
    if y.is_floating_point():
        return ["target < 1" if float(v) < 1 else "target ≥ 1" for v in y]
    return [f"class {int(v)}" for v in y]


# ----------------------------------------------------------------------------------------------------------
# PCA of hidden states in a basis fixed across snapshots


def _pooled(snaps, layer: int, direction: int) -> Tensor:
    """(N, H) float64 h_t vectors of all sequences and steps of all snapshots, evenly subsampled to
    MAX_PCA_ROWS (deterministic)."""
    X = torch.cat([s.hidden[layer, direction].reshape(-1, s.hidden.shape[-1]) for s in snaps])  # (S*B*T, H)
    X = X[torch.isfinite(X).all(dim=1)]  # an overflowed (relu) state has no place in a PCA fit
    if len(X) > MAX_PCA_ROWS:
        X = X[torch.linspace(0, len(X) - 1, MAX_PCA_ROWS, dtype=torch.float64).round().long()]
    return X.double()


def pca_basis(snaps, layer: int = 0, direction: int = 0, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(mean (H,), components (k, H)): PCA of h_t pooled over all given snapshots, probe sequences and steps.

        C = (X - mean)^T (X - mean) / (N - 1),   components = top-k eigenvectors of C (float64)

    One basis for every snapshot, so motion between snapshots is the model changing, not the axes. Each
    component's largest entry is made positive (no sign flips between calls). Directions with no variance
    (H < k, or constant states) are zero rows, so projections onto them are 0.
    """
    if not snaps:
        raise ValueError("pca_basis needs at least one snapshot")
    X = _pooled(snaps, layer, direction)  # (N, H)
    N, H = X.shape
    if N == 0:  # every state overflowed: no basis to fit
        return np.zeros(H), np.zeros((k, H))
    mean = X.mean(0)  # (H,)
    Xc = X - mean
    evals, evecs = torch.linalg.eigh(Xc.T @ Xc / max(N - 1, 1))  # ascending; evecs (H, H) columns
    evals, evecs = evals.flip(0), evecs.flip(1)
    comps = torch.zeros(k, H, dtype=torch.float64)
    m = min(k, H)
    comps[:m] = evecs[:, :m].T
    big = comps.abs().argmax(dim=1, keepdim=True)  # (k, 1)
    comps *= torch.sign(comps.gather(1, big))
    keep = torch.zeros(k, dtype=torch.bool)
    keep[:m] = (evals[:m] > 1e-9 * evals[0]) & (evals[:m] > 1e-20)
    comps[~keep] = 0.0
    return mean.numpy(), comps.numpy()


def pca_frame(snap, basis, layer: int = 0, direction: int = 0, labels=None) -> pd.DataFrame:
    """sequence, t, pc1 .. pck, label: (h_t - mean) @ components^T for every probe sequence and step.
    label: labels[sequence] (e.g. probe_labels), or "seq <i>" without labels."""
    mean, comps = basis
    h = snap.hidden[layer, direction].double().numpy()  # (B, T, H)
    with np.errstate(invalid="ignore", over="ignore"):  # an overflowed (inf) state projects to NaN: not drawn
        p = (h - mean) @ np.asarray(comps).T  # (B, T, k)
    B, T, k = p.shape
    labels = [f"seq {b}" for b in range(B)] if labels is None else [str(v) for v in labels]
    return pd.DataFrame({"sequence": np.repeat(np.arange(B), T), "t": np.tile(np.arange(T), B),
                         **{f"pc{i + 1}": p[..., i].reshape(-1) for i in range(k)},
                         "label": np.repeat(labels[:B], T)})


def explained_variance(snaps, basis, layer: int = 0, direction: int = 0) -> np.ndarray:
    """(k,) fraction of the total variance of h_t (pooled like pca_basis over `snaps`, a Snapshot or a
    list) along each component: var((h - mean) . c_i) / sum_j var(h_j)."""
    snaps = snaps if isinstance(snaps, (list, tuple)) else [snaps]
    X = _pooled(snaps, layer, direction).numpy()  # (N, H)
    mean, comps = basis
    total = X.var(axis=0).sum()
    if not total > 0:
        return np.zeros(len(comps))
    return ((X - mean) @ np.asarray(comps).T).var(axis=0) / total


__all__ = [
    "attention_frame", "decay_table", "explained_variance", "gate_frame", "gate_stats_frames",
    "grad_flow_frames", "grad_flow_frames_from", "history_frames", "layer_grad_frames", "pca_basis", "pca_frame",
    "predicted_frames", "probe_labels", "snapshot_steps", "unit_frame",
]
