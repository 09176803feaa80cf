"""rnnviz.connectivity against an independent re-implementation: the cell unrolled by hand with the module's
weights, and the Jacobian taken with torch.autograd.functional.jacobian (float64)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnviz.connectivity import auto_groups, connectivity, connectivity_frame, connectivity_frames, reach_frame, window
from rnnviz.models import ModelConfig, build_model
from rnnviz.tasks import make_task
from rnnviz.training import TrainConfig, Trainer


def _unrolled(model, e, ids_k, output):
    """f_t for t = 0..T-1 from e (T, E), by hand: every layer's cell written out, then the linear head."""
    core = model.core
    T = e.shape[0]
    x = [e[t] for t in range(T)]
    for layer in range(core.num_layers):
        W_ih, W_hh = getattr(core, f"weight_ih_l{layer}"), getattr(core, f"weight_hh_l{layer}")
        b_ih, b_hh = getattr(core, f"bias_ih_l{layer}"), getattr(core, f"bias_hh_l{layer}")
        H = core.hidden_size
        h = torch.zeros(H, dtype=e.dtype)
        c = torch.zeros(H, dtype=e.dtype)
        ys = []
        for t in range(T):
            if core.mode in ("RNN_TANH", "RNN_RELU"):
                a = W_ih @ x[t] + b_ih + W_hh @ h + b_hh
                h = torch.tanh(a) if core.mode == "RNN_TANH" else torch.relu(a)
            elif core.mode == "LSTM":
                a = W_ih @ x[t] + b_ih + W_hh @ h + b_hh
                i, f, g, o = a[:H].sigmoid(), a[H:2 * H].sigmoid(), a[2 * H:3 * H].tanh(), a[3 * H:].sigmoid()
                c = f * c + i * g
                h = o * torch.tanh(c)
            else:  # GRU
                gi, gh = W_ih @ x[t] + b_ih, W_hh @ h + b_hh
                r = (gi[:H] + gh[:H]).sigmoid()
                z = (gi[H:2 * H] + gh[H:2 * H]).sigmoid()
                n = torch.tanh(gi[2 * H:] + r * gh[2 * H:])
                h = (1 - z) * n + z * h
            ys.append(h)
        x = ys
    logits = torch.stack([model.out.weight @ h + model.out.bias for h in x])  # (T, V)
    if output == "log_prob":
        logits = torch.log_softmax(logits, dim=-1)
    return logits.gather(1, ids_k[:, None])[:, 0]  # (T,)


def _reference(model, ids, y, output, token):
    """C (T, T) for one sequence: ||d f_t / d e_s|| with e built independently of model.core_input."""
    if isinstance(model.embed, torch.nn.Embedding):
        e = model.embed.weight.detach()[ids]  # (T, E)
    else:
        e = F.one_hot(ids, model.embed.num_embeddings).double()  # (T, V)
    if token == "target":
        k = y
    else:
        with torch.no_grad():
            k = torch.stack([_unrolled(model, e, torch.full_like(ids, v), "logit")
                             for v in range(model.out.out_features)], dim=1).argmax(1)  # (T,)
    J = torch.autograd.functional.jacobian(lambda e_: _unrolled(model, e_, k, output), e)  # (T, T, E)
    return torch.linalg.vector_norm(J, dim=-1)


def _trained(cell, task="hello", seq_len=7, layers=1, one_hot=False, steps=30, hidden=6):
    tr = Trainer(ModelConfig(cell=cell, hidden_size=hidden, num_layers=layers, one_hot=one_hot, embed_dim=5),
                 TrainConfig(task=task, seq_len=seq_len, snapshot_every=0, batch_size=8, lr=1e-2))
    tr.step(steps)  # away from initialisation: gates and states of every size
    return tr


CASES = [  # cell, layers, one_hot, output, token
    ("rnn_tanh", 1, True, "logit", "target"),
    ("rnn_tanh", 2, False, "log_prob", "predicted"),
    ("rnn_relu", 1, False, "logit", "predicted"),
    ("lstm", 1, False, "logit", "target"),
    ("lstm", 2, True, "log_prob", "target"),
    ("gru", 1, True, "logit", "predicted"),
    ("gru", 2, False, "log_prob", "target"),
]


@pytest.mark.parametrize("cell,layers,one_hot,output,token", CASES)
def test_connectivity_equals_jacobian_of_the_unrolled_model(cell, layers, one_hot, output, token):
    tr = _trained(cell, task="copy_memory" if cell == "rnn_relu" else "hello",
                  seq_len=3 if cell == "rnn_relu" else 7, layers=layers, one_hot=one_hot)
    model = copy.deepcopy(tr.model).double()
    b = tr.probe
    C = connectivity(model, b, output=output, token=token)  # (B, T, T)
    assert C.dtype == torch.float64 and C.shape == (b.x.shape[0], b.x.shape[1], b.x.shape[1])
    for i in range(3):
        ref = _reference(model, b.x[i], b.y[i], output, token)
        np.testing.assert_allclose(C[i].numpy(), ref.numpy(), rtol=1e-9, atol=1e-13)
    causal = torch.ones(C.shape[1], C.shape[1], dtype=torch.bool).tril()  # s <= t
    assert (C[:, causal] > 0).float().mean() > 0.9  # not trivially zero: nearly every causal entry is positive


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("groups", [1, 3, None])
def test_exactly_zero_for_later_inputs(cell, groups):
    tr = _trained(cell, task="char_lm", seq_len=20, hidden=8, steps=5)
    C = connectivity(tr.model, tr.probe, groups=groups)  # float32, as on the page
    T = C.shape[1]
    later = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # s > t
    assert (C[:, later] == 0).all()
    assert (C[:, ~later] > 0).all()  # the diagonal and below: every prediction depends on what it has read


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_groups_chunks_and_windows_agree(cell):
    tr = _trained(cell, task="char_lm", seq_len=24, hidden=8, layers=2, steps=5)
    model = copy.deepcopy(tr.model).double()
    ref = connectivity(model, tr.probe, groups=1)
    for kw in ({"groups": 2}, {"groups": 5}, {"groups": 24}, {"chunk_floats": 1}):  # chunk_floats=1: one copy at a time
        np.testing.assert_allclose(connectivity(model, tr.probe, **kw).numpy(), ref.numpy(), rtol=1e-10, atol=1e-15)
    # causality: the first W steps alone give the top-left W x W corner exactly
    w = window(tr.probe, 3, 10)
    assert w.x.shape == (1, 10)
    np.testing.assert_allclose(connectivity(model, w)[0].numpy(), ref[3, :10, :10].numpy(), rtol=1e-10, atol=1e-15)


def test_the_model_is_only_read():
    tr = _trained("lstm", layers=2, steps=3)
    tr.model.train()
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    grads = [p.grad.clone() for p in tr.model.parameters()]  # left by the last training step
    connectivity(tr.model, tr.probe)
    assert tr.model.training
    assert all(torch.equal(before[k], v) for k, v in tr.model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, tr.model.parameters(), strict=True))


def test_frames_and_reach():
    tr = _trained("gru", task="hello", seq_len=9, steps=5)
    cf = connectivity_frame(tr.model, tr.task, tr.probe, example=2)
    T = 9
    assert list(cf.columns) == ["t", "s", "lag", "connectivity", "input", "target"]
    assert len(cf) == T * (T + 1) // 2 and (cf.s <= cf.t).all() and (cf.lag == cf.t - cf.s).all()
    C = connectivity(tr.model, tr.probe)[2]
    np.testing.assert_allclose(cf.connectivity, C[cf.t, cf.s].double().numpy(), rtol=1e-6)
    text_x, text_y = tr.task.decode(tr.probe.x[2]), tr.task.decode(tr.probe.y[2])
    assert "".join(cf[cf.t == T - 1].sort_values("s").input) == text_x
    assert "".join(cf[cf.s == 0].sort_values("t").target) == text_y

    runs = {"GRU": tr, "RNN (tanh)": _trained("rnn_tanh", task="hello", seq_len=9, steps=5)}
    cfs = connectivity_frames(runs, example=2, max_len=5)
    assert set(cfs.run) == set(runs) and cfs.groupby("run").size().tolist() == [15, 15]
    assert (cfs.step == 5).all()
    gru = cfs[cfs.run == "GRU"].reset_index(drop=True)
    np.testing.assert_allclose(gru.connectivity, cf[cf.t < 5].reset_index(drop=True).connectivity, rtol=1e-6)

    rf = reach_frame(cfs)
    assert list(rf.columns) == ["run", "lag", "connectivity", "n"]
    lag0 = rf[(rf.run == "GRU") & (rf.lag == 0)].iloc[0]
    assert lag0.n == 5 and lag0.connectivity == pytest.approx(gru[gru.lag == 0].connectivity.mean())
    assert rf[rf.run == "GRU"].n.tolist() == [5, 4, 3, 2, 1]
    assert reach_frame(cfs.iloc[:0]).empty


def test_rejects_models_without_a_prediction_per_step():
    task = make_task("adding", 10)
    model = build_model(ModelConfig(cell="gru", hidden_size=4), task)
    with pytest.raises(ValueError, match="every step"):
        connectivity(model, task.probe(2))
    tr = _trained("gru", steps=0)
    with pytest.raises(ValueError, match="output"):
        connectivity(tr.model, tr.probe, output="prob")
    with pytest.raises(ValueError, match="token"):
        connectivity(tr.model, tr.probe, token="best")
    with pytest.raises(ValueError, match="groups"):
        connectivity(tr.model, tr.probe, groups=0)
    with pytest.raises(ValueError, match="example"):
        window(tr.probe, 99)


def test_auto_groups():
    assert auto_groups("LSTM", 64) == 4 and auto_groups("LSTM", 63) == 1
    assert auto_groups("GRU", 500) == 1 and auto_groups("RNN_TANH", 500) == 1
