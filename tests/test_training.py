"""The trainer: learning where theory says it should, truncation, divergence, bounded history, exports."""

import json
import math

import pandas as pd
import pytest
import torch

from rnnviz.models import ModelConfig
from rnnviz.training import TrainConfig, Trainer


def train_until(tr: Trainer, max_steps: int, below: float, window: int = 50) -> float:
    """Train in chunks until the mean loss of the last `window` steps is below `below`."""
    while tr.steps < max_steps:
        tr.step(50)
        mse = tr.history_frame().loss.tail(window).mean()
        if mse < below:
            break
    return tr.history_frame().loss.tail(window).mean()


def test_lstm_solves_adding_T50_well_below_baseline():
    tr = Trainer(ModelConfig(cell="lstm", hidden_size=32),
                 TrainConfig(task="adding", seq_len=50, lr=1e-2, snapshot_every=0))
    mse = train_until(tr, 1500, below=0.02)
    assert tr.task.baseline == pytest.approx(1 / 6)
    assert mse < 0.02, f"LSTM at T=50 reached MSE {mse:.4f} in {tr.steps} steps (baseline 0.167)"


def test_vanilla_rnn_fails_adding_T200():
    tr = Trainer(ModelConfig(cell="rnn_tanh", hidden_size=32),
                 TrainConfig(task="adding", seq_len=200, lr=1e-2, snapshot_every=0))
    tr.step(600)
    mse = tr.history_frame().loss.tail(100).mean()
    assert mse > 0.14, f"vanilla RNN at T=200 unexpectedly learned: MSE {mse:.4f}"


def test_seeded_runs_are_identical_and_seeds_differ():
    def run(seed):
        tr = Trainer(ModelConfig(cell="gru", hidden_size=8, seed=seed),
                     TrainConfig(task="adding", seq_len=10, seed=seed, snapshot_every=5))
        tr.step(15)
        return tr.history_frame(), tr.grad_flow_frame()

    (a, ga), (b, gb), (c, _) = run(0), run(0), run(1)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ga, gb)
    assert not a.loss.equals(c.loss)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("k", [1, 4])
def test_training_truncation_equals_chunked_native_run(cell, k):
    """The trainer's gradient under truncation k equals the native module run chunk by chunk with the
    state detached: no parameter-gradient contribution crosses a window boundary."""
    tr = Trainer(ModelConfig(cell=cell, hidden_size=6, num_layers=2),
                 TrainConfig(task="adding", seq_len=11, truncation=k, snapshot_every=0))
    batch = tr.task.sample(4, torch.Generator().manual_seed(3))
    tr.loss_and_grads(batch)
    got = {n: p.grad.clone() for n, p in tr.model.core.named_parameters()}

    model = tr.model
    model.zero_grad(set_to_none=True)
    x = model.core_input(batch)
    hx, outs = None, []
    for s in range(0, x.shape[1], k):
        if hx is not None:
            hx = tuple(h.detach() for h in hx) if isinstance(hx, tuple) else hx.detach()
        o, hx = model.core(x[:, s:s + k], hx)
        outs.append(o)
    tr.task.loss(model.head(torch.cat(outs, dim=1), batch), batch).backward()
    for n, p in model.core.named_parameters():
        assert torch.allclose(got[n], p.grad, rtol=1e-5, atol=1e-7), n

    # and it differs from full BPTT (the cut is real)
    tr_full = Trainer(ModelConfig(cell=cell, hidden_size=6, num_layers=2),
                      TrainConfig(task="adding", seq_len=11, snapshot_every=0))
    tr_full.loss_and_grads(batch)
    full = tr_full.model.core.weight_hh_l0.grad
    assert not torch.allclose(full, got["weight_hh_l0"])


def test_snapshot_truncation_shows_the_cut():
    """Many-to-one task: the snapshot's ||dL/dh_t|| is exactly zero before the last window."""
    tr = Trainer(ModelConfig(cell="lstm", hidden_size=8),
                 TrainConfig(task="adding", seq_len=30, truncation=7, snapshot_every=1))
    g = tr.latest.grad_norm[0, 0]
    start = (29 // 7) * 7
    assert (g[:start] == 0).all() and (g[start:] > 0).all()


def test_divergence_stops_cleanly_and_keeps_history():
    tr = Trainer(ModelConfig(cell="rnn_tanh", hidden_size=32, init="orthogonal", weight_scale=3.0),
                 TrainConfig(task="adding", seq_len=100, clip=None, optimizer="sgd", lr=1.0, snapshot_every=5))
    done = tr.step(500)
    assert tr.status == "diverged"
    assert tr.message.startswith(f"diverged at step {tr.steps}:"), tr.message
    assert done == tr.steps < 500
    h = tr.history_frame()
    assert len(h) == tr.steps and h.step.iloc[-1] == tr.steps
    assert not math.isfinite(h.loss.iloc[-1]) or not math.isfinite(h.grad_norm.iloc[-1])
    assert h.loss.iloc[:-1].map(math.isfinite).all()
    assert tr.step(10) == 0  # stays stopped, no exception
    assert len(tr.snapshots) >= 1


def test_clipping_records_pre_clip_norm():
    tr = Trainer(ModelConfig(cell="rnn_tanh", hidden_size=16, init="orthogonal", weight_scale=1.5),
                 TrainConfig(task="adding", seq_len=40, clip=0.01, snapshot_every=0))
    tr.step(5)
    h = tr.history_frame()
    assert (h.grad_norm > 0.01).all()
    assert (h.grad_norm_clipped == 0.01).all()


def test_seq2seq_attention_learns_reversal_with_anti_diagonal_attention():
    tr = Trainer(ModelConfig(cell="gru", hidden_size=32, attention="luong_general"),
                 TrainConfig(task="reverse", seq_len=8, lr=1e-2, snapshot_every=100))
    tr.step(500)
    acc = tr.history_frame().metric.tail(50).mean()
    assert acc > 0.9, f"teacher-forced token accuracy {acc:.3f}"
    A = tr.model.attention_weights(tr.probe)  # (B, T_out, T_in)
    assert torch.allclose(A.sum(-1), torch.ones(A.shape[:2]), atol=1e-5)
    T = A.shape[-1]
    i = torch.arange(T)
    anti = (T - 1 - i)
    # mass in the band |j - (T-1-i)| <= 1 (a decoder that knows the token it just emitted often looks
    # one step late, at the previous target, whose encoder state still remembers this one)
    band = (torch.arange(T).view(1, -1) - anti.view(-1, 1)).abs() <= 1  # (T_out, T_in)
    assert (A * band).sum(-1).mean() > 0.8
    argmax = A.argmax(-1)
    assert ((argmax - anti).abs() <= 1).float().mean() > 0.9
    assert tr.latest.attention is not None and tr.latest.attention.shape == A.shape


def test_time_budget_bounds_a_chunk():
    tr = Trainer(ModelConfig(cell="lstm", hidden_size=16), TrainConfig(task="adding", seq_len=20))
    done = tr.step(100_000, time_budget=0.05)
    assert 1 <= done < 100_000


def test_history_is_bounded_and_thinning_is_reported():
    tr = Trainer(ModelConfig(cell="gru", hidden_size=4),
                 TrainConfig(task="adding", seq_len=5, max_history=100, snapshot_every=1, snapshot_budget_mb=1.0))
    tr.step(260)
    h = tr.history_frame()
    assert len(h) <= 100
    assert h.step.iloc[-1] == 260 and h.step.is_monotonic_increasing
    assert tr.history.thinned_before is not None
    assert any("thinned" in n for n in tr.notes())
    # the most recent rows are all there
    assert list(h.step.tail(40)) == list(range(221, 261))


def test_snapshots_are_bounded_by_memory_budget():
    tr = Trainer(ModelConfig(cell="lstm", hidden_size=64),
                 TrainConfig(task="adding", seq_len=200, snapshot_every=1, snapshot_budget_mb=1.0, probe_size=8))
    tr.step(40)
    total = sum(s.nbytes for s in tr.snapshots)
    assert total <= 1.0 * 2**20 or len(tr.snapshots) <= 4
    assert tr.snapshots[-1].step == 40 and tr.snapshots[0].step == 0
    assert tr.snapshots_thinned_before is not None


def test_frames_and_export(tmp_path):
    tr = Trainer(ModelConfig(cell="lstm", hidden_size=8, num_layers=2),
                 TrainConfig(task="adding", seq_len=12, snapshot_every=5))
    tr.step(10)
    gf = tr.grad_flow_frame()
    assert set(gf.step) == {0, 5, 10} and len(gf) == 3 * 2 * 12
    gs = tr.gate_stats_frame()
    assert set(gs.gate) == {"input", "forget", "cell", "output"}
    lg = tr.layer_grad_frame()
    assert {"core.l0", "core.l1", "head"} <= set(lg.group)
    paths = tr.export(tmp_path)
    names = {p.name for p in paths}
    assert {"history.csv", "grad_flow.csv", "gate_stats.csv", "layer_grads.csv", "config.json"} <= names
    back = pd.read_csv(tmp_path / "history.csv")
    assert len(back) == 10 and back.loss.iloc[-1] == pytest.approx(tr.history_frame().loss.iloc[-1])
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"]["num_layers"] == 2 and cfg["train"]["seq_len"] == 12


@pytest.mark.parametrize("task", ["adding", "copy_memory", "parity", "sentiment", "char_lm", "hello", "reverse",
                                  "copy", "sort"])
def test_every_task_trains_and_snapshots(task):
    seq = {"copy_memory": 5, "hello": 4}.get(task, 8)
    tr = Trainer(ModelConfig(cell="gru", hidden_size=8, attention="bahdanau"),
                 TrainConfig(task=task, seq_len=seq, snapshot_every=2, batch_size=4))
    assert tr.step(4) == 4 and tr.status == "training"
    assert len(tr.snapshots) == 3
    assert tr.latest.grad_norm.shape[-1] == tr.probe.x.shape[1]


@pytest.mark.parametrize("bad", [dict(task="nope"), dict(lr=-1.0), dict(optimizer="rmsprop"), dict(clip=0.0),
                                 dict(truncation=0), dict(batch_size=0), dict(seed=-1)])
def test_bad_train_config_is_rejected(bad):
    field = next(iter(bad))
    with pytest.raises(ValueError, match=field):
        Trainer(ModelConfig(), TrainConfig(**bad))


def test_train_config_round_trips_and_rejects_bad_dicts():
    c = TrainConfig(task="copy_memory", lr=0.01, clip=None, truncation=5)
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({**c.to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig.from_dict({**c.to_dict(), "batch_size": 0})


def _grad_flow_rows(tr: Trainer) -> pd.DataFrame:
    """The frame written out by hand: one row per (snapshot, layer, direction, t), in that order."""
    rows = [(s.step, i, d, t, float(s.grad_norm[i, d, t])) for s in tr.snapshots
            for i in range(s.grad_norm.shape[0]) for d in range(s.grad_norm.shape[1])
            for t in range(s.grad_norm.shape[2])]
    return pd.DataFrame(rows, columns=["step", "layer", "direction", "t", "grad_norm"])


def test_grad_flow_frame_is_every_snapshot_and_follows_new_and_thinned_snapshots():
    tr = Trainer(ModelConfig(cell="lstm", hidden_size=8, num_layers=2, bidirectional=True),
                 TrainConfig(task="adding", seq_len=12, batch_size=4, snapshot_every=1, snapshot_budget_mb=1.0))
    tr.step(3)
    pd.testing.assert_frame_equal(tr.grad_flow_frame(), _grad_flow_rows(tr), check_dtype=False)
    assert tr.grad_flow_frame() is tr.grad_flow_frame()  # unchanged snapshots: the same frame, not rebuilt
    tr.step(1)  # a new snapshot
    pd.testing.assert_frame_equal(tr.grad_flow_frame(), _grad_flow_rows(tr), check_dtype=False)
    while tr.snapshots_thinned_before is None:  # train until the snapshot budget thins the older ones
        tr.step(20)
    pd.testing.assert_frame_equal(tr.grad_flow_frame(), _grad_flow_rows(tr), check_dtype=False)
