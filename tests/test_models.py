"""rnnviz.models against small fake tasks that follow the Task contract in docs/ENGINE.md."""

import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from rnnviz.models import (
    ModelConfig,
    Seq2SeqModel,
    SequenceModel,
    build_model,
    count_parameters,
    generate,
    param_groups,
    recurrent_matrices,
    spectral_stats,
)
from rnnviz.tracing import trace

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
N_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
CHARS = "abcde"


# ----------------------------------------------------------------------------------------------------------
# Fake tasks (only the contract attributes)


def _batch(x, y, lengths=None, y_in=None):
    return SimpleNamespace(x=x, y=y, lengths=lengths, y_in=y_in)


def _task(name, kind, T, sample, *, vocab_size=None, input_dim=None, output_dim, target_vocab=None,
          pad_id=None, bos_id=None, loss_kind="ce"):
    t = SimpleNamespace(name=name, kind=kind, seq_len=T, vocab_size=vocab_size, input_dim=input_dim,
                        output_dim=output_dim, target_vocab=target_vocab, pad_id=pad_id, bos_id=bos_id,
                        loss_kind=loss_kind, metric_name="mse" if loss_kind == "mse" else "accuracy",
                        baseline=1.0, baseline_note="fake")
    t.sample = sample

    def loss(pred, b):
        if loss_kind == "mse":
            return F.mse_loss(pred.squeeze(-1), b.y)
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), b.y.reshape(-1),
                               ignore_index=-100 if pad_id is None else pad_id)

    t.loss = loss
    t.metric = lambda pred, b: float(loss(pred, b))
    t.probe = lambda batch_size=8, seed=1234: sample(batch_size, torch.Generator().manual_seed(seed))
    t.decode = lambda ids: "".join(CHARS[int(i)] for i in ids)
    t.encode = lambda s: torch.tensor([CHARS.index(c) for c in s], dtype=torch.long)
    return t


def adding_task(T=6):
    def sample(B, g):
        x = torch.rand(B, T, 2, generator=g)
        return _batch(x, (x[..., 0] * x[..., 1]).sum(1))
    return _task("adding", "many_to_one", T, sample, input_dim=2, output_dim=1, loss_kind="mse")


def parity_task(T=6):
    """Padded tokens: PAD=0, symbols 1, 2; class = parity of the number of 2s."""
    def sample(B, g):
        lengths = torch.randint(2, T + 1, (B,), generator=g)
        lengths[0] = T
        x = torch.randint(1, 3, (B, T), generator=g)
        x[torch.arange(T) >= lengths[:, None]] = 0
        return _batch(x, (x == 2).sum(1) % 2, lengths)
    return _task("parity", "many_to_one", T, sample, vocab_size=3, output_dim=2, pad_id=0)


def charlm_task(T=7):
    def sample(B, g):
        s = torch.randint(0, len(CHARS), (B, T + 1), generator=g)
        return _batch(s[:, :-1], s[:, 1:])
    return _task("charlm", "many_to_many", T, sample, vocab_size=len(CHARS), output_dim=len(CHARS))


def reverse_task(T=5, K=4, padded=False):
    """PAD=0, BOS=1, symbols 2..K+1; y = the valid part reversed, padded with PAD."""
    V = K + 2

    def sample(B, g):
        x = torch.randint(2, V, (B, T), generator=g)
        lengths = None
        if padded:
            lengths = torch.randint(2, T + 1, (B,), generator=g)
            lengths[0] = T
            x[torch.arange(T) >= lengths[:, None]] = 0
        y = torch.zeros_like(x)
        for b in range(B):
            n = T if lengths is None else int(lengths[b])
            y[b, :n] = x[b, :n].flip(0)
        y_in = torch.cat([torch.ones(B, 1, dtype=torch.long), y[:, :-1]], dim=1)
        return _batch(x, y, lengths, y_in)
    return _task("reverse", "seq2seq", T, sample, vocab_size=V, output_dim=V, target_vocab=V, pad_id=0, bos_id=1)


TASKS = {"adding": adding_task, "parity": parity_task, "charlm": charlm_task, "reverse": reverse_task,
         "reverse_padded": lambda: reverse_task(padded=True)}


def sample(task, B=3, seed=0):
    return task.sample(B, torch.Generator().manual_seed(seed))


def cfg(**kw):
    kw.setdefault("hidden_size", 8)
    kw.setdefault("embed_dim", 4)
    return ModelConfig(**kw)


def core_loss(model, task, b, truncation=None):
    """The loss the tracer sees: head(core(core_input))."""
    from rnnviz.tracing import truncated_forward
    out = truncated_forward(model.core, model.core_input(b).detach(), None, truncation)[0]
    return task.loss(model.head(out, b), b)


# ----------------------------------------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("name", ["adding", "parity", "charlm", "reverse"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_prediction_shapes(name, cell, bidirectional, layers):
    task = TASKS[name]()
    model = build_model(cfg(cell=cell, bidirectional=bidirectional, num_layers=layers, dropout=0.1), task)
    b = sample(task, B=3)
    pred = model(b)
    T = task.seq_len
    want = {"adding": (3, 1), "parity": (3, 2), "charlm": (3, T, len(CHARS)), "reverse": (3, T, 6)}[name]
    assert pred.shape == want and pred.dtype == torch.float32
    assert model.core.batch_first and model.core.num_layers == layers
    assert isinstance(model.core, {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN))
    assert model.core.bidirectional == (bidirectional and name != "charlm")  # an LM never sees the future
    assert model.core_input(b).shape[:2] == (3, T)
    if name == "reverse":
        assert isinstance(model, Seq2SeqModel) and model.encoder is model.core
        assert not model.decoder.bidirectional and model.decoder.num_layers == layers
    else:
        assert isinstance(model, SequenceModel)
    if cell == "rnn_relu":
        assert model.core.nonlinearity == "relu"


# ----------------------------------------------------------------------------------------------------------
# Initialisation and spectra


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("scale", [0.5, 1.7])
def test_orthogonal_init_fixes_spectrum(cell, scale):
    model = build_model(cfg(cell=cell, init="orthogonal", weight_scale=scale, num_layers=2,
                            bidirectional=True, hidden_size=16), parity_task())
    df = spectral_stats(model.core)
    assert len(df) == 2 * 2 * N_GATES[cell] == len(recurrent_matrices(model.core))
    assert list(df.columns) == ["layer", "direction", "gate", "spectral_radius", "max_singular_value"]
    assert (df["spectral_radius"] - scale).abs().max() < 1e-5
    assert (df["max_singular_value"] - scale).abs().max() < 1e-5
    assert set(df["direction"]) == {0, 1} and set(df["layer"]) == {0, 1}


def test_orthogonal_blocks_are_distinct_and_seeded():
    a = recurrent_matrices(build_model(cfg(cell="lstm", init="orthogonal"), adding_task()).core)
    b = recurrent_matrices(build_model(cfg(cell="lstm", init="orthogonal", seed=1), adding_task()).core)
    assert not torch.equal(a["l0.input"], a["l0.forget"])
    assert not torch.equal(a["l0.input"], b["l0.input"])


@pytest.mark.parametrize("cell", ["rnn_relu", "lstm", "gru"])
def test_identity_init(cell):
    model = build_model(cfg(cell=cell, init="identity", weight_scale=0.8, num_layers=2, bidirectional=True),
                        parity_task())
    for W in recurrent_matrices(model.core).values():
        assert torch.equal(W, 0.8 * torch.eye(8))
    biases = [p for n, p in model.core.named_parameters() if n.startswith("bias")]
    assert len(biases) == 2 * 2 * 2 and all(torch.count_nonzero(p) == 0 for p in biases)
    assert spectral_stats(model.core)["spectral_radius"].sub(0.8).abs().max() < 1e-6


def test_default_init_times_scale():
    base = build_model(cfg(cell="gru"), adding_task())
    scaled = build_model(cfg(cell="gru", weight_scale=2.5), adding_task())
    for name, p in base.core.named_parameters():
        q = dict(scaled.core.named_parameters())[name]
        torch.testing.assert_close(q, 2.5 * p if name.startswith("weight_hh") else p, rtol=0, atol=0)
    assert base.core.weight_hh_l0.abs().max() <= 1 / math.sqrt(8)


@pytest.mark.parametrize("init", ["default", "orthogonal", "identity"])
def test_forget_bias(init):
    task = reverse_task()
    model = build_model(cfg(cell="lstm", forget_bias=1.5, init=init, num_layers=2, bidirectional=True), task)
    plain = build_model(cfg(cell="lstm", init=init, num_layers=2, bidirectional=True), task)
    H = 8
    for core, ref in ((model.core, plain.core), (model.decoder, plain.decoder)):
        names = [n[len("bias_ih"):] for n, _ in core.named_parameters() if n.startswith("bias_ih")]
        assert len(names) == (4 if core.bidirectional else 2)
        for sfx in names:
            b_ih, b_hh = getattr(core, "bias_ih" + sfx), getattr(core, "bias_hh" + sfx)
            assert torch.equal(b_ih[H:2 * H] + b_hh[H:2 * H], torch.full((H,), 1.5))
            for other in (slice(0, H), slice(2 * H, 4 * H)):  # the other gates are untouched
                assert torch.equal(b_ih[other], getattr(ref, "bias_ih" + sfx)[other])


def test_forget_bias_ignored_for_other_cells():
    a = build_model(cfg(cell="gru", forget_bias=3.0), adding_task()).state_dict()
    b = build_model(cfg(cell="gru"), adding_task()).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_recurrent_matrices_rejects_non_core():
    with pytest.raises(TypeError):
        recurrent_matrices(torch.nn.Linear(3, 3))


# ----------------------------------------------------------------------------------------------------------
# Determinism


@pytest.mark.parametrize("name", ["parity", "reverse"])
def test_seeded_and_global_rng_untouched(name):
    c = cfg(cell="lstm", init="orthogonal", attention="bahdanau", bidirectional=True, num_layers=2, seed=7)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = build_model(c, TASKS[name]()).state_dict()
    b = build_model(c, TASKS[name]()).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = build_model(cfg(cell="lstm", init="orthogonal", attention="bahdanau", bidirectional=True,
                            num_layers=2, seed=8), TASKS[name]()).state_dict()
    assert not all(torch.equal(a[k], other[k]) for k in a)


# ----------------------------------------------------------------------------------------------------------
# The core_input / core / head split (what rnnviz.trace relies on)


SPLIT_CASES = [
    ("adding", dict(cell="rnn_tanh")),
    ("parity", dict(cell="lstm", bidirectional=True, num_layers=2)),
    ("charlm", dict(cell="gru", num_layers=2)),
    ("reverse", dict(cell="gru", bidirectional=True)),
    ("reverse_padded", dict(cell="lstm", bidirectional=True, attention="bahdanau")),
    ("reverse_padded", dict(cell="rnn_relu", attention="luong_general", num_layers=2)),
]


@pytest.mark.parametrize("name,kw", SPLIT_CASES)
def test_split_reproduces_loss_and_trace_gradients(name, kw):
    task = TASKS[name]()
    model = build_model(cfg(**kw), task)
    b = sample(task, B=4)
    loss = task.loss(model(b), b)
    assert torch.equal(loss, core_loss(model, task, b))
    x = model.core_input(b).detach()
    tr = trace(model.core, x, loss_fn=lambda out: task.loss(model.head(out, b), b))
    assert abs(tr.loss - loss.item()) < 1e-6
    # the tracer's core-parameter gradients are the autograd ones of the real loss with the input detached
    grads = torch.autograd.grad(core_loss(model, task, b), list(model.core.parameters()))
    for (pname, _), g in zip(model.core.named_parameters(), grads, strict=True):
        torch.testing.assert_close(tr.param_grads[pname], g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm"])
def test_truncation_keeps_values_changes_gradients(cell):
    task = charlm_task(T=8)
    model = build_model(cfg(cell=cell), task)
    b = sample(task, B=2)
    full, cut = model(b), model(b, truncation=3)
    torch.testing.assert_close(cut, full)
    assert torch.equal(model(b, truncation=8), full)
    g_full = torch.autograd.grad(task.loss(full, b), model.core.weight_hh_l0)[0]
    g_cut = torch.autograd.grad(task.loss(cut, b), model.core.weight_hh_l0)[0]
    assert not torch.allclose(g_full, g_cut)
    tr = trace(model.core, model.core_input(b).detach(), lambda out: task.loss(model.head(out, b), b),
               truncation=3)
    g = torch.autograd.grad(core_loss(model, task, b, truncation=3), model.core.weight_hh_l0)[0]
    torch.testing.assert_close(tr.param_grads["weight_hh_l0"], g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh"])
def test_last_state_is_final_state_of_each_direction(cell):
    """Unpadded: the head reads exactly the top layer's h_n of both directions (reverse ends at t=0)."""
    task = adding_task()
    model = build_model(cfg(cell=cell, bidirectional=True, num_layers=2), task)
    b = sample(task, B=3)
    h_n = model.core(model.core_input(b))[1]
    h_n = h_n[0] if cell == "lstm" else h_n  # (L*D, B, H)
    want = model.out(torch.cat([h_n[-2], h_n[-1]], dim=-1))
    torch.testing.assert_close(model(b), want, rtol=0, atol=1e-6)


def test_many_to_one_reads_last_valid_step():
    task = parity_task()
    model = build_model(cfg(cell="gru"), task)
    b = sample(task, B=4)
    assert int(b.lengths.min()) < task.seq_len
    out = model.core(model.core_input(b))[0]
    last = out[torch.arange(4), b.lengths - 1]
    torch.testing.assert_close(model(b), model.out(last), rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------------------
# Attention, decoding, generation


@pytest.mark.parametrize("attention", ["bahdanau", "luong_dot", "luong_general"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_attention_weights(attention, bidirectional, padded):
    task = reverse_task(T=6, padded=padded)
    model = build_model(cfg(cell="lstm", attention=attention, bidirectional=bidirectional, num_layers=2), task)
    b = sample(task, B=4)
    assert model.last_attention is None
    a = model.attention_weights(b)
    assert a.shape == (4, 6, 6) and not a.requires_grad
    assert (a >= 0).all()
    torch.testing.assert_close(a.sum(-1), torch.ones(4, 6))
    model(b)
    torch.testing.assert_close(model.last_attention, a)  # grad vs no_grad kernels may differ in ulps
    if padded:
        invalid = torch.arange(6) >= b.lengths[:, None]  # (B, T_in)
        assert invalid.any() and (a.masked_select(invalid[:, None, :].expand_as(a)) == 0).all()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_attention_formulas(cell):
    """Bahdanau step 0: query = W_q (top layer of s_0 = tanh(W_b last_state)) + W_y E(BOS);
    Luong general: h_i^T W h_j."""
    task = reverse_task(T=5)
    b = sample(task, B=3)
    bah = build_model(cfg(cell=cell, attention="bahdanau", num_layers=2, bidirectional=True), task)
    enc = bah.core(bah.core_input(b))[0]  # (B, T_in, 2H)
    s0 = torch.tanh(bah.bridge(torch.cat([enc[:, -1, :8], enc[:, 0, 8:]], dim=-1))).view(3, 2, 8)[:, -1]
    q = bah.attn["W_q"](s0) + bah.attn["W_y"](bah.tgt_embed(b.y_in[:, 0]))  # y_in[:, 0] = BOS
    e = bah.attn["v"](torch.tanh(q.unsqueeze(1) + bah.attn["W_k"](enc))).squeeze(-1)
    torch.testing.assert_close(bah.attention_weights(b)[:, 0], torch.softmax(e, -1))
    lu = build_model(cfg(cell=cell, attention="luong_general", num_layers=2), task)
    enc = lu.core(lu.core_input(b))[0]  # (B, T_in, H)
    s0 = torch.tanh(lu.bridge(enc[:, -1])).view(3, 2, 8).transpose(0, 1).contiguous()
    h = lu.decoder(lu.tgt_embed(b.y_in), (s0, torch.zeros_like(s0)) if cell == "lstm" else s0)[0]
    e = h @ lu.attn["W_k"].weight @ enc.transpose(1, 2)  # (B, T_out, T_in)
    torch.testing.assert_close(lu.attention_weights(b), torch.softmax(e, -1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bahdanau_every_step_matches_a_cell_by_cell_reimplementation(cell):
    """Every decoder step i, with torch's own GRUCell / LSTMCell carrying the decoder's weights:
    e_ij = v^T tanh(W_q s_{i-1} + W_y E y_{i-1} + W_k h_j), a_i = softmax_j e_i, c_i = sum_j a_ij h_j,
    s_i = cell([E y_{i-1}; c_i], s_{i-1}), logits_i = W_o [s_i; c_i]."""
    task = reverse_task(T=5)
    b = sample(task, B=3)
    m = build_model(cfg(cell=cell, attention="bahdanau", bidirectional=True), task)
    H, E = 8, 4
    with torch.no_grad():
        logits = m(b)  # (B, T_out, V)
        enc = m.core(m.core_input(b))[0]  # (B, T_in, 2H)
        step = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(E + 2 * H, H)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(step, name).copy_(getattr(m.decoder, name + "_l0"))
        s = torch.tanh(m.bridge(torch.cat([enc[:, -1, :H], enc[:, 0, H:]], dim=-1)))  # (B, H)
        c_cell = torch.zeros_like(s)
        Wq, Wy, Wk, v = (m.attn[k] for k in ("W_q", "W_y", "W_k", "v"))
        keys = enc @ Wk.weight.T + Wk.bias  # (B, T_in, H)
        for i in range(b.y.shape[1]):
            y_prev = m.tgt_embed.weight[b.y_in[:, i]]  # (B, E)
            e = torch.tanh((s @ Wq.weight.T + y_prev @ Wy.weight.T)[:, None] + keys) @ v.weight[0]  # (B, T_in)
            a = torch.softmax(e, dim=-1)
            c = torch.einsum("bt,btd->bd", a, enc)  # (B, 2H)
            if cell == "lstm":
                s, c_cell = step(torch.cat([y_prev, c], -1), (s, c_cell))
            else:
                s = step(torch.cat([y_prev, c], -1), s)
            torch.testing.assert_close(m.last_attention[:, i], a)
            torch.testing.assert_close(logits[:, i], torch.cat([s, c], -1) @ m.out.weight.T + m.out.bias)


def test_bahdanau_learns_the_exact_anti_diagonal_on_reverse():
    """Reverse, bidirectional encoder: >= 0.6 of the attention mass on step i -> source T-1-i (the textbook map).
    Without W_y E y_{i-1} in the query this run put 0.57 there (the weights spread to the neighbour T-i)."""
    T = 10
    task = reverse_task(T=T, K=10)
    model = build_model(cfg(cell="gru", hidden_size=48, embed_dim=8, attention="bahdanau", bidirectional=True), task)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):  # ~2.5 s on one core
        b = task.sample(32, g)
        loss = task.loss(model(b), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    probe = sample(task, B=64, seed=99)
    a = model.attention_weights(probe)  # (B, T_out, T_in)
    i = torch.arange(T)
    assert a[:, i, T - 1 - i].mean() >= 0.6
    assert (model.greedy_decode(probe) == probe.y).float().mean() >= 0.9


def test_no_attention():
    task = reverse_task()
    model = build_model(cfg(cell="gru"), task)
    model(sample(task))
    assert model.last_attention is None
    with pytest.raises(ValueError, match="attention"):
        model.attention_weights(sample(task))


def test_attention_ignored_outside_seq2seq():
    model = build_model(cfg(attention="bahdanau"), adding_task())
    assert model.attention == "none" and not hasattr(model, "attention_weights")


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong_dot"])
@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh"])
def test_greedy_decode_matches_teacher_forcing(attention, cell):
    task = reverse_task(T=5)
    model = build_model(cfg(cell=cell, attention=attention, bidirectional=True), task).eval()
    b = sample(task, B=4)
    out = model.greedy_decode(b)
    assert out.shape == (4, 5) and out.dtype == torch.long
    assert model.greedy_decode(b, max_len=9).shape == (4, 9)
    # feeding the greedy tokens back as y_in, forward's argmax reproduces them step by step
    fed = SimpleNamespace(**vars(b))
    fed.y_in = torch.cat([torch.full((4, 1), task.bos_id), out[:, :-1]], dim=1)
    assert torch.equal(model(fed).argmax(-1), out)


def test_generate():
    task = charlm_task()
    model = build_model(cfg(cell="lstm"), task)
    s = generate(model, task, "abc", 20, temperature=0.8, generator=torch.Generator().manual_seed(0))
    assert isinstance(s, str) and len(s) == 20 and set(s) <= set(CHARS)
    assert s == generate(model, task, "abc", 20, temperature=0.8, generator=torch.Generator().manual_seed(0))
    g1 = generate(model, task, "ab", 15, greedy=True)
    assert g1 == generate(model, task, "ab", 15, greedy=True, temperature=0) and len(g1) == 15
    assert len(generate(model, task, "", 4)) == 4
    assert generate(model, task, "a", 0) == ""
    assert model.training  # the mode is restored
    with pytest.raises(ValueError, match="temperature"):
        generate(model, task, "a", 5, temperature=0)
    with pytest.raises(ValueError, match="many_to_many"):
        generate(build_model(cfg(), parity_task()), task, "a", 5)


def test_generate_follows_the_state():
    """Greedy generation equals argmax of forward() on the growing sequence."""
    task = charlm_task()
    model = build_model(cfg(cell="gru"), task).eval()
    text = "abd" + generate(model, task, "abd", 6, greedy=True)
    with torch.no_grad():
        for t in range(3, len(text)):
            x = task.encode(text[:t]).unsqueeze(0)
            pred = model(_batch(x, None))
            assert CHARS[int(pred[0, -1].argmax())] == text[t]


# ----------------------------------------------------------------------------------------------------------
# Training


def test_seq2seq_training_reduces_loss():
    task = reverse_task(T=5, K=4)  # ~0.2 s on an idle CPU; no wall-clock assert (flaky on shared CPUs)
    model = build_model(cfg(cell="gru", hidden_size=32, embed_dim=8, attention="luong_general"), task)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    probe = sample(task, B=64, seed=99)
    with torch.no_grad():
        before = float(task.loss(model(probe), probe))
    for _ in range(60):
        b = task.sample(32, g)
        loss = task.loss(model(b), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(task.loss(model(probe), probe))
    assert after < 0.25 * before, (before, after)
    assert (model.greedy_decode(probe) == probe.y).float().mean() > 0.7


# ----------------------------------------------------------------------------------------------------------
# Config and bookkeeping


@pytest.mark.parametrize("field,value", [
    ("cell", "transformer"), ("hidden_size", 0), ("hidden_size", 1025), ("hidden_size", 8.0),
    ("num_layers", 0), ("num_layers", 5), ("bidirectional", "yes"), ("dropout", -0.1), ("dropout", 1.0),
    ("embed_dim", 0), ("embed_dim", 513), ("init", "xavier"), ("weight_scale", 0.0), ("weight_scale", -1.0),
    ("weight_scale", 10.5), ("weight_scale", float("nan")), ("weight_scale", float("inf")),
    ("forget_bias", float("nan")), ("attention", "transformer"), ("seed", 1.5),
])
def test_validate_names_the_field(field, value):
    c = ModelConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        c.validate()
    with pytest.raises(ValueError, match=field):
        build_model(c, adding_task())


def test_validate_accepts_edges():
    for c in (ModelConfig(), ModelConfig(hidden_size=1, num_layers=4, dropout=0.99, embed_dim=512,
                                         weight_scale=10, forget_bias=-2.0, attention="luong_dot")):
        c.validate()


def test_config_round_trip():
    c = ModelConfig(cell="gru", hidden_size=12, num_layers=3, bidirectional=True, dropout=0.2, embed_dim=5,
                    init="orthogonal", weight_scale=1.3, forget_bias=1.0, attention="bahdanau", seed=4)
    assert ModelConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
    with pytest.raises(ValueError, match="colour"):
        ModelConfig.from_dict({**c.to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="hidden_size"):
        ModelConfig.from_dict({**c.to_dict(), "hidden_size": -1})


def test_param_groups_and_count():
    model = build_model(cfg(cell="lstm", num_layers=2, bidirectional=True, attention="luong_general"),
                        reverse_task())
    groups = param_groups(model)
    assert list(groups) == ["embed", "core.l0", "core.l0_reverse", "core.l1", "core.l1_reverse", "bridge",
                            "decoder_embed", "decoder.l0", "decoder.l1", "attention", "head"]
    names = [n for ps in groups.values() for n, _ in ps]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert all(n.endswith("_l0_reverse") for n, _ in groups["core.l0_reverse"])
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    seq = build_model(cfg(cell="rnn_tanh"), adding_task())
    assert list(param_groups(seq)) == ["core.l0", "head"]
    assert count_parameters(seq) == 8 * 2 + 8 * 8 + 2 * 8 + 8 + 1  # W_ih, W_hh, biases, head


def test_real_tasks_if_present():
    tasks = pytest.importorskip("rnnviz.tasks")
    for name in tasks.TASKS:
        task = tasks.make_task(name)
        model = build_model(ModelConfig(hidden_size=8, embed_dim=4,
                                        attention="bahdanau" if task.kind == "seq2seq" else "none"), task)
        b = task.sample(2, torch.Generator().manual_seed(0))
        pred = model(b)
        loss = task.loss(pred, b)
        assert torch.isfinite(loss) and torch.equal(loss, core_loss(model, task, b)), name
