"""Padding and packing (rnnviz.packing) against PyTorch itself: packed == padded + masked at every valid position and
in h_n; h_n is the state at each sequence's own last step (== the sequence run alone, unpadded); padded positions get
exactly zero gradient and cannot change h_n; the padding_idx row of nn.Embedding gets exactly zero gradient."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnviz.models import ModelConfig
from rnnviz.packing import (
    METHOD_NAMES,
    PackingRun,
    PaddedClassifier,
    embedding_grad_figure,
    input_grad_figure,
    inspect,
    padded_batch_frame,
    run_core,
    run_packed,
)
from rnnviz.tasks import make_task

torch.set_num_threads(1)
CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
SHAPES = [(1, False), (1, True), (2, False), (2, True)]  # (layers, bidirectional)


def batch(task="sentiment", T=10, B=12, seed=0):
    t = make_task(task, T)
    b = t.sample(B, torch.Generator().manual_seed(seed))
    assert b.lengths.min() < T, "the test needs padded sequences"  # lengths ~ U{T/2..T}
    return t, b


def model(cell, layers, bi, task, seed=0, dtype=torch.float64):
    m = PaddedClassifier(ModelConfig(cell=cell, num_layers=layers, bidirectional=bi, hidden_size=6, embed_dim=5,
                                     seed=seed), task)
    return m.to(dtype)


def valid_mask(b):
    return torch.arange(b.x.shape[1])[None, :] < b.lengths[:, None]  # (B, T)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bi", SHAPES)
def test_packed_equals_masked_outputs_and_h_n(cell, layers, bi):
    task, b = batch()
    m = model(cell, layers, bi, task)
    e = m.embed(b.x)
    out_p, h_p, c_p = run_core(m.core, e, b.lengths, "packed")
    out_m, h_m, c_m = run_core(m.core, e, b.lengths, "masked")
    v = valid_mask(b)
    torch.testing.assert_close(out_m[v], out_p[v], rtol=0, atol=1e-12)
    assert torch.equal(out_p[~v], torch.zeros_like(out_p[~v])) and torch.equal(out_m[~v], torch.zeros_like(out_m[~v]))
    torch.testing.assert_close(h_m, h_p, rtol=0, atol=1e-12)
    if cell == "lstm":
        torch.testing.assert_close(c_m, c_p, rtol=0, atol=1e-12)
    # float32 too, as the page trains: equal to rounding
    m32 = model(cell, layers, bi, task, dtype=torch.float32)
    e32 = m32.embed(b.x)
    torch.testing.assert_close(run_core(m32.core, e32, b.lengths, "masked")[1],
                               run_core(m32.core, e32, b.lengths, "packed")[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bi", SHAPES)
def test_packed_h_n_is_the_state_at_each_sequences_last_valid_step(cell, layers, bi):
    task, b = batch(seed=1)
    m = model(cell, layers, bi, task)
    e = m.embed(b.x)
    out, h_n, _ = run_packed(m.core, e, b.lengths)
    H, D = m.core.hidden_size, 2 if bi else 1
    top = h_n.view(layers, D, *h_n.shape[1:])[-1]  # (D, B, H)
    for i, n in enumerate(b.lengths.tolist()):
        torch.testing.assert_close(top[0, i], out[i, n - 1, :H], rtol=0, atol=0)  # forward: its last valid step
        if bi:
            torch.testing.assert_close(top[1, i], out[i, 0, H:], rtol=0, atol=0)  # backward: ends at t = 0
        # the sequence alone, unpadded, through the same nn module: the same h_n, every layer and direction
        _, alone = m.core(e[i:i + 1, :n])
        alone = alone[0] if isinstance(alone, tuple) else alone
        torch.testing.assert_close(h_n[:, i], alone[:, 0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bi", SHAPES)
def test_padded_positions_get_exactly_zero_gradient(cell, layers, bi):
    task, b = batch(seed=2)
    m = model(cell, layers, bi, task, dtype=torch.float32)
    v = valid_mask(b)
    for method in ("packed", "masked", "padded"):
        m.zero_grad(set_to_none=True)
        e = m.embed(b.x).detach().requires_grad_(True)  # (B, T, E)
        feats = m.features(e, b.lengths, method)[0]
        F.cross_entropy(m.out(feats), b.y).backward()
        g = e.grad
        if method == "padded":  # lengths ignored: the pads are read, so they get gradient (the test can fail)
            assert (g[~v].abs().sum(-1) > 0).all()
        else:
            assert torch.equal(g[~v], torch.zeros_like(g[~v])), method  # exactly 0, not small
            assert (g[v].abs().sum(-1) > 0).float().mean() > 0.9, method


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bi", [False, True])
def test_whatever_is_in_the_pads_does_not_change_h_n(cell, bi):
    task, b = batch(seed=3)
    m = model(cell, 2, bi, task, dtype=torch.float32)
    v = valid_mask(b)
    junk = torch.where(v, b.x, torch.randint(1, task.vocab_size, b.x.shape, generator=torch.Generator().manual_seed(9)))
    assert not torch.equal(junk, b.x)
    with torch.no_grad():
        for method in ("packed", "masked"):
            h1 = m.features(m.embed(b.x), b.lengths, method)[1]
            h2 = m.features(m.embed(junk), b.lengths, method)[1]
            assert torch.equal(h1, h2), method  # bit for bit
        h1 = m.features(m.embed(b.x), b.lengths, "padded")[1]
        h2 = m.features(m.embed(junk), b.lengths, "padded")[1]
        assert not torch.allclose(h1, h2)


def test_padding_idx_row_gets_exactly_zero_gradient_and_never_moves():
    task, b = batch(seed=4)
    m = model("gru", 1, True, task, dtype=torch.float32)
    pad = task.pad_id
    assert m.embed.padding_idx == pad and torch.equal(m.embed.weight[pad], torch.zeros(5))
    for method in ("packed", "masked", "padded"):  # even when the pads are read, their embedding row learns nothing
        m.zero_grad(set_to_none=True)
        F.cross_entropy(m(b.x, b.lengths, method), b.y).backward()
        gw = m.embed.weight.grad
        assert torch.equal(gw[pad], torch.zeros_like(gw[pad])), method
        used = torch.unique(b.x[valid_mask(b)])
        assert (gw[used].abs().sum(-1) > 0).all(), method
    # an independent check of nn.Embedding: the same lookup as a one-hot matmul gives the pad row a gradient
    W = m.embed.weight.detach().clone().requires_grad_(True)
    (F.one_hot(b.x, task.vocab_size).double() @ W.double()).sum().backward()
    assert W.grad[pad].abs().sum() > 0
    run = PackingRun(ModelConfig(cell="gru", hidden_size=8), "sentiment", 10, batch_size=16, seed=1)
    before = {k: mm.embed.weight.detach().clone() for k, mm in run.models.items()}
    run.step(15)
    for k, mm in run.models.items():
        w = mm.embed.weight.detach()
        assert torch.equal(w[pad], torch.zeros_like(w[pad])), k
        assert not torch.equal(w[1:], before[k][1:]), k


def test_packed_and_masked_runs_train_the_same_function():
    run = PackingRun(ModelConfig(cell="lstm", hidden_size=8, num_layers=2, bidirectional=True), "parity", 8,
                     batch_size=16, seed=2)
    p, q = run.models["packed"], run.models["masked"]
    for (n1, a), (n2, c) in zip(p.state_dict().items(), q.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(a, c)  # the same initial weights
    run.step(10)
    h = run.history_frame()
    assert set(h["run"]) == {METHOD_NAMES["packed"], METHOD_NAMES["masked"]} and len(h) == 20
    assert run.max_loss_gap() < 1e-4  # float32 rounding only (the step loop vs the fused kernel)
    assert h["loss"].iloc[0] != h["loss"].iloc[-1]  # it did train
    for (_, a), (_, c) in zip(p.state_dict().items(), q.state_dict().items(), strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-4)


def test_inspect_frames_and_figures():
    run = PackingRun(ModelConfig(cell="gru", hidden_size=8), "sentiment", 10, seed=0)
    run.step(3)
    fr = inspect(run.models["packed"], run.task, run.probe)
    bf, sf, ef = fr["batch"], fr["states"], fr["embedding"]
    B, T = run.probe.x.shape
    assert len(bf) == B * T and len(sf) == B and len(ef) == run.task.vocab_size
    pads = ~bf["valid"]
    assert pads.any()
    assert (bf.loc[pads, "grad_packed"] == 0).all() and (bf.loc[pads, "grad_masked"] == 0).all()
    assert (bf.loc[pads, "grad_padded"] > 0).all()
    assert (sf["packed_pads_replaced"] == 0).all() and (sf["masked_pads_replaced"] == 0).all()
    assert (sf["masked_vs_packed"] < 1e-5).all()
    short = sf["length"] < T
    assert (sf.loc[short, "padded_vs_packed"] > 1e-4).all() and (sf.loc[short, "padded_pads_replaced"] > 0).all()
    assert ef.loc[ef["is_pad"], "grad_norm"].item() == 0 and ef.loc[ef["is_pad"], "weight_norm"].item() == 0
    assert ef.loc[ef["is_pad"], "count"].item() == int((~run.probe.x.bool()).sum())
    # the gradient reaching each input: recomputed independently with autograd on the packed model
    m = run.models["packed"]
    e = m.embed(run.probe.x).detach().requires_grad_(True)
    F.cross_entropy(m.out(m.features(e, run.probe.lengths, "packed")[0]), run.probe.y).backward()
    np.testing.assert_allclose(bf["grad_packed"], e.grad.norm(dim=-1).reshape(-1).double().numpy(), rtol=1e-6)
    pf = padded_batch_frame(run.task, run.probe)
    assert list(pf.columns[:3]) == ["seq", "length", "label"] and pf.shape == (B, 3 + T)
    assert (pf.iloc[:, 3:] == "<pad>").sum(axis=1).tolist() == (T - run.probe.lengths).tolist()

    fig = input_grad_figure(bf, pad_token="<pad>")
    heat = [tr for tr in fig.data if tr.type == "heatmap"]
    assert len(heat) == 6  # per panel: pad background, values, exact zeros
    zeros = heat[2].text  # packed panel: every pad reads 0
    assert sum(c == "0" for row in zeros for c in row) == int(pads.sum())
    lines = [tr for tr in fig.data if tr.type == "scatter"]
    assert sum(x is not None for x in lines[0].x) == 2 * int(short.sum())  # an end bar per padded sequence
    ebar = embedding_grad_figure(ef)
    assert [a.text for a in ebar.layout.annotations] == ["exactly 0 (padding_idx)"]
