"""The unrolled view (rnnviz.unrolled): the expected nodes, edges and labels for given settings, the same weight
label on every step, cut marks exactly where rnnviz.tracing.truncated_forward detaches the state, and a snapshot's
‖∂L/∂h_t‖ drawn on every shown step."""

import numpy as np
import pytest
import torch

from rnnviz.models import ModelConfig
from rnnviz.tasks import TASKS, make_task
from rnnviz.tracing import truncated_forward
from rnnviz.training import TrainConfig, Trainer
from rnnviz.unrolled import (
    SHAPES,
    _short,
    cut_links,
    sequence_shape,
    shown_steps,
    unrolled_figure,
    unrolled_frames,
    unrolled_note,
)

torch.set_num_threads(1)


def count(df, kind, **eq):
    sel = df["kind"] == kind
    for k, v in eq.items():
        sel &= df[k] == v
    return int(sel.sum())


def texts(fig) -> list[str]:
    """Every text drawn in the figure's traces."""
    out = []
    for tr in fig.data:
        if tr.type == "scatter" and tr.text is not None and "text" in (tr.mode or ""):
            out += [tr.text] if isinstance(tr.text, str) else [str(t) for t in tr.text]
    return out


def test_sequence_shape_of_every_task():
    want = {"adding": "many_to_one", "parity": "many_to_one", "sentiment": "many_to_one",
            "copy_memory": "many_to_many", "char_lm": "many_to_many", "hello": "many_to_many",
            "reverse": "seq2seq", "copy": "seq2seq", "sort": "seq2seq"}
    assert {n: sequence_shape(make_task(n)) for n in TASKS} == want
    assert set(SHAPES) == {"many_to_one", "many_to_many", "one_to_many", "seq2seq"}
    with pytest.raises(ValueError):
        sequence_shape("one_to_one")


def test_shown_steps():
    assert shown_steps(12) == list(range(12))
    s = shown_steps(50)
    assert len(s) == 13 and s.count(None) == 1 and s[0] == 0 and s[-1] == 49
    shown = [t for t in s if t is not None]
    assert len(shown) == 12 and shown == sorted(shown)
    s = shown_steps(50, truncation=10)  # the last cut (39 -> 40) is in view
    assert 39 in s and 40 in s and len([t for t in s if t is not None]) == 12
    s = shown_steps(1000, truncation=7)
    assert s[-1] == 999 and (999 // 7 * 7) - 1 in s


@pytest.mark.parametrize("T,k", [(9, 2), (12, 5), (10, 3), (7, 7), (8, 1)])
def test_cut_links_are_where_truncated_forward_detaches(T, k):
    """A link (a -> b) in a direction is cut iff the output at b does not depend on the input at a through the
    recurrence: measured with autograd on truncated_forward itself (the semantics of training's truncation)."""
    torch.manual_seed(0)
    rnn = torch.nn.RNN(3, 4, batch_first=True, bidirectional=True).double()
    x = torch.randn(1, T, 3, dtype=torch.float64, requires_grad=True)
    out, _ = truncated_forward(rnn, x, truncation=k)  # (1, T, 2H)
    for d in (0, 1):
        measured = []
        for a in range(T):
            b = a + 1 if d == 0 else a - 1
            if not 0 <= b < T:
                continue
            (g,) = torch.autograd.grad(out[0, b, d * 4:(d + 1) * 4].sum(), x, retain_graph=True)
            if torch.all(g[0, a] == 0):
                measured.append((a, b))
        assert sorted(cut_links(T, k, d)) == sorted(measured), (d, measured)
    assert cut_links(10, None) == [] and cut_links(10, 10) == [] and cut_links(10, 3) == [(2, 3), (5, 6), (8, 9)]


@pytest.mark.parametrize("layers,bi", [(1, False), (2, False), (1, True), (3, True)])
@pytest.mark.parametrize("T", [6, 40])
def test_many_to_one_nodes_edges_and_labels(layers, bi, T):
    nodes, edges = unrolled_frames("lstm", layers, bi, T, "many_to_one")
    D = 2 if bi else 1
    S = len([t for t in shown_steps(T) if t is not None])
    gap = T > 12  # one elided stretch
    assert count(nodes, "input") == S and count(nodes, "hidden") == layers * D * S
    assert count(nodes, "output") == 1 and count(nodes, "loss") == 1  # the loss enters once, at the end
    assert nodes.loc[nodes["kind"] == "loss", "t"].item() == T - 1
    links = S - 1 - gap
    assert count(edges, "W_hh") == layers * D * links and count(edges, "ellipsis") == layers * D * gap
    assert count(edges, "W_xh") == S * D + (layers - 1) * S * D * D
    assert count(edges, "W_hy") == D and count(edges, "loss") == 1
    if bi:  # the head reads the backward direction's final state at t = 0
        src = edges.loc[(edges["kind"] == "W_hy") & (edges["direction"] == 1), "src"].item()
        assert nodes.loc[src, "t"] == 0 and nodes.loc[src, "layer"] == layers - 1
    fig = unrolled_figure(nodes, edges)
    tx = texts(fig)
    # the same matrix named on every step: one W_hh label per drawn recurrent link of each layer and direction
    for layer in range(layers):
        for d in range(D):
            sup = [f"({layer + 1})"] * (layers > 1) + ["←"] * d
            lab = "W<sub>hh</sub>" + (f"<sup>{' '.join(sup)}</sup>" if sup else "")
            assert tx.count(lab) == links, lab
    assert sum(t.startswith("W<sub>xh</sub>") for t in tx) == S * D + (layers - 1) * S * D
    assert tx.count("W<sub>hy</sub>") == 1
    assert tx.count("⋯") == (1 + layers * D) * gap


@pytest.mark.parametrize("shape", ["many_to_many", "one_to_many"])
def test_output_at_every_step(shape):
    nodes, edges = unrolled_frames("gru", 2, True, 30, shape)  # drawn unidirectional, as the models run them
    S = 12
    assert count(nodes, "hidden") == 2 * S and count(nodes, "output") == S and count(nodes, "loss") == S
    assert count(edges, "W_hy") == S and count(edges, "loss") == S
    assert count(edges, "feedback") == (S - 2 if shape == "one_to_many" else 0)  # not across the ellipsis
    if shape == "one_to_many":
        labels = nodes.loc[nodes["kind"] == "input", "label"].tolist()
        assert labels[0] == "" and set(labels[1:]) == {"ŷ"}


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, True)])
def test_seq2seq(attention, layers, bi):
    nodes, edges = unrolled_frames("gru", layers, bi, 8, "seq2seq", out_len=8, attention=attention,
                                   tokens=list("12345678"), out_tokens=list("87654321"))
    D = 2 if bi else 1
    Se = len([t for t in shown_steps(8, 6) if t is not None])
    Sd = Se
    enc, dec = nodes[nodes["part"] == "encoder"], nodes[nodes["part"] == "decoder"]
    assert count(enc, "hidden") == layers * D * Se and count(dec, "hidden") == layers * Sd
    assert count(enc, "output") == 0 and count(dec, "output") == Sd and count(dec, "loss") == Sd
    assert count(nodes, "context") == 1
    assert count(edges, "context") == D + layers  # the encoder's last states in, every decoder layer out
    assert count(edges, "attention") == (Se if attention else 0)
    assert count(edges, "feedback") == Sd - 2  # y_i becomes the next input (not across the ellipsis)
    dec_in = dec[dec["kind"] == "input"].sort_values("t")["label"].tolist()
    assert dec_in[0] == "<sos>" and dec_in[1] == "8"
    fig = unrolled_figure(nodes, edges)
    tx = texts(fig)
    assert tx.count("W′<sub>hh</sub>" + ("<sup>(1)</sup>" if layers > 1 else "")) == Sd - 2  # the decoder's own
    assert any("encoder" in t for t in tx) and any("decoder" in t for t in tx)
    # the snapshot's gradient is the encoder's (L, D, T_in): drawn there; the decoder's states stay plain
    g = np.full((layers, D, 8), 0.25)
    nodes, edges = unrolled_frames("gru", layers, bi, 8, "seq2seq", grad_norm=g, attention=attention)
    assert nodes.loc[(nodes["kind"] == "hidden") & (nodes["part"] == "encoder"), "grad_norm"].eq(0.25).all()
    assert nodes.loc[(nodes["kind"] == "hidden") & (nodes["part"] == "decoder"), "grad_norm"].isna().all()
    tx = texts(unrolled_figure(nodes, edges))
    assert tx.count("0.25") == layers * D * Se and "nan" not in tx


@pytest.mark.parametrize("k", [3, 4, 5])
def test_cut_marks_at_multiples_of_k(k):
    T = 12
    nodes, edges = unrolled_frames("rnn_tanh", 1, True, T, "many_to_one", truncation=k)
    cut = edges[(edges["kind"] == "W_hh") & edges["cut"]]
    fwd = cut[cut["direction"] == 0]
    to_t = sorted(nodes.loc[fwd["dst"], "t"].astype(int).tolist())
    assert to_t == list(range(k, T, k))  # forward: the link into t = k, 2k, ...
    assert all(nodes.loc[s, "t"] == nodes.loc[d, "t"] - 1 for s, d in zip(fwd["src"], fwd["dst"], strict=True))
    bwd = cut[cut["direction"] == 1]
    assert sorted(nodes.loc[bwd["dst"], "t"].astype(int).tolist()) == list(range(T - 1 - k, -1, -k))[::-1]
    fig = unrolled_figure(nodes, edges)
    marks = [tr for tr in fig.data if tr.name == "cut (state detached)"]
    assert len(marks) == 1
    xs = sorted(np.round(marks[0].x, 6).tolist())
    want = sorted([t - 0.5 for t in range(k, T, k)] + [t + 0.5 + 0.28 for t in range(T - 1 - k, -1, -k)])
    assert xs == pytest.approx(want)
    assert len(unrolled_frames("rnn_tanh", 1, True, T, "many_to_one", truncation=None)[1].query("cut")) == 0


def test_grad_norm_of_a_snapshot_is_drawn_on_every_step_and_zero_before_the_last_cut():
    T, k = 30, 8
    tr = Trainer(ModelConfig(cell="rnn_tanh", hidden_size=8),
                 TrainConfig(task="adding", seq_len=T, truncation=k, snapshot_every=1))
    tr.step(2)
    g = tr.latest.grad_norm  # (1, 1, T)
    nodes, edges = unrolled_frames("rnn_tanh", 1, False, T, "many_to_one", truncation=k, grad_norm=g)
    hid = nodes[nodes["kind"] == "hidden"]
    np.testing.assert_array_equal(hid["grad_norm"].to_numpy(), g[0, 0, hid["t"].astype(int)])
    last_cut = (T - 1) // k * k  # the loss is at T-1: nothing reaches back across the last cut
    assert (hid.loc[hid["t"] < last_cut, "grad_norm"] == 0).all()
    assert (hid.loc[hid["t"] >= last_cut, "grad_norm"] > 0).all()
    grad = edges[edges["kind"] == "grad"]
    assert len(grad) == count(edges, "W_hh")  # one backward arrow per drawn link
    assert set(grad.loc[grad["cut"], "t"].astype(int)) == {last_cut - 1}
    fig = unrolled_figure(nodes, edges, note=unrolled_note("many_to_one", "rnn_tanh", T, k, True))
    zero = [t for t in fig.data if t.name == "‖∂L/∂h_t‖ = 0 exactly"]
    assert zero and len(zero[0].x) == int((hid["grad_norm"] == 0).sum())
    hidden = [tr for tr in fig.data if tr.name == "hidden state h_t"][0]
    shown = hid[hid["grad_norm"] > 0]
    assert list(hidden.text) == [_short(v) for v in shown["grad_norm"]]  # the values, written in the states
    assert [_short(v) for v in (0.5612, 0.0123, 3.21e-4, 9.96e-4, 2.34, 45.6, 1e-12)] == \
        ["0.56", "0.01", "3e-4", "1e-3", "2.3", "46", "1e-12"]
    np.testing.assert_allclose(hidden.marker.color, np.log10(shown["grad_norm"]))
    with pytest.raises(ValueError):
        unrolled_frames("rnn_tanh", 1, False, T, "many_to_one", grad_norm=np.ones((1, 1, T - 1)))
