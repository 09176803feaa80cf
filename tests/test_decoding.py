"""Seq2seq decoding (rnnviz.decoding): greedy decoding equals feeding the argmax back by hand through the model's own
forward; teacher-forced logits equal the model's forward; <sos> starts, <eos> stops (tasks built with eos=True)."""

import math

import numpy as np
import pytest
import torch

from rnnviz.config import ConfigError, apply_overrides, controls_from_dict, reproduce_command
from rnnviz.controls import Controls
from rnnviz.decoding import (
    accuracy_frame,
    decode,
    decoded_strip,
    decoding_attention,
    example_batch,
    greedy,
    teacher_forced,
)
from rnnviz.experiment import Experiment
from rnnviz.models import ATTENTIONS, ModelConfig, build_model
from rnnviz.tasks import Batch, make_task
from rnnviz.training import TrainConfig, Trainer

torch.set_num_threads(1)


def model_and_batch(attention, bidirectional=False, layers=1, cell="gru", task="reverse", T=6, eos=False, seed=0):
    t = make_task(task, T, **({"eos": True} if eos else {}))
    m = build_model(ModelConfig(cell=cell, hidden_size=12, num_layers=layers, bidirectional=bidirectional,
                                attention=attention, embed_dim=6, seed=seed), t).double()
    return t, m, t.sample(5, torch.Generator().manual_seed(seed))


def by_hand(model, b, n):
    """Greedy decoding written out with the model's public forward: feed [<sos>, g_0, ..., g_{i-1}] as y_in
    (teacher forcing on the model's own tokens), take the argmax of the last step, append, repeat."""
    model.eval()
    toks = []
    with torch.no_grad():
        for _ in range(n):
            y_in = torch.tensor([[model.bos_id, *toks]])
            logits = model(Batch(x=b.x, y=b.y, y_in=y_in))  # (1, i+1, V)
            toks.append(int(logits[0, -1].argmax()))
    return toks


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("bidirectional,layers,cell", [(False, 1, "gru"), (True, 2, "lstm"), (True, 1, "rnn_tanh")])
def test_greedy_equals_feeding_argmax_back_by_hand(attention, bidirectional, layers, cell):
    task, m, b = model_and_batch(attention, bidirectional, layers, cell)
    ref = m.greedy_decode(b)  # (B, T) the model's own greedy loop
    for e in range(b.x.shape[0]):
        one = example_batch(b, e)
        g = greedy(m, task, one)
        assert g.inputs[0] == task.bos_id and g.inputs[1:] == g.tokens[:-1]  # <sos>, then its own outputs
        assert g.tokens == by_hand(m, one, len(g.tokens)) == ref[e].tolist()
        assert g.stop == "length" and len(g.tokens) == task.seq_len  # no <eos> in this task: the target length


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("bidirectional,layers,cell", [(False, 1, "gru"), (True, 2, "lstm")])
def test_teacher_forced_logits_equal_the_models_forward(attention, bidirectional, layers, cell):
    task, m, b = model_and_batch(attention, bidirectional, layers, cell, task="sort", seed=1)
    m.eval()
    with torch.no_grad():
        full = m(b)  # (B, T, V): the whole target at once (Bahdanau: its own step loop)
        attn = m.last_attention
    for e in range(b.x.shape[0]):
        tf = teacher_forced(m, example_batch(b, e))
        assert tf.inputs == b.y_in[e].tolist()  # <sos>, then the true previous tokens
        torch.testing.assert_close(tf.logits, full[e], rtol=0, atol=1e-12)
        if attention == "none":
            assert tf.attention is None
        else:
            torch.testing.assert_close(tf.attention, attn[e], rtol=0, atol=1e-12)
            torch.testing.assert_close(tf.attention.sum(-1), torch.ones(task.seq_len, dtype=torch.float64))


def test_eos_option_of_the_seq2seq_tasks():
    for name in ("reverse", "copy", "sort"):
        plain, t = make_task(name, 5), make_task(name, 5, eos=True)
        assert plain.eos_id is None and plain.vocab_size == 12 and plain.baseline == math.log(10)
        assert (t.eos_id, t.vocab_size, t.target_vocab, t.output_dim) == (12, 13, 13, 13)
        assert t.itos[12] == "<eos>" and t.itos[:12] == plain.itos
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        b, bp = t.sample(4, g1), plain.sample(4, g2)
        assert torch.equal(b.x, bp.x) and torch.equal(b.y[:, :-1], bp.y) and (b.y[:, -1] == 12).all()
        assert torch.equal(b.y_in, torch.cat([torch.ones(4, 1, dtype=torch.long), b.y[:, :-1]], 1))
        assert t.baseline == pytest.approx(5 * math.log(10) / 6)
        # the baseline: a uniform guess over the digits and a sure EOS at the end
        logits = torch.full((4, 6, 13), -1e4)
        logits[:, :5, 2:12] = 0.0
        logits[:, 5, 12] = 0.0
        assert t.loss(logits, b).item() == pytest.approx(t.baseline, rel=1e-5)
    with pytest.raises(ValueError):
        make_task("reverse", 5, eos=1)


def test_greedy_stops_when_the_model_emits_eos_and_not_before():
    task, m, b = model_and_batch("luong_dot", eos=True, seed=2)
    one = example_batch(b, 0)
    with torch.no_grad():
        m.out.bias[task.eos_id] = 1e3  # the model now always says <eos>
    g = greedy(m, task, one)
    assert g.tokens == [task.eos_id] and g.stop == "eos"
    with torch.no_grad():
        m.out.bias[task.eos_id] = -1e3  # ... and now never
    g = greedy(m, task, one)
    assert len(g.tokens) == 2 * (task.seq_len + 1) and g.stop == "max_len" and task.eos_id not in g.tokens
    assert g.tokens == by_hand(m, one, len(g.tokens))
    assert len(greedy(m, task, one, max_len=3).tokens) == 3


def test_a_trained_model_decodes_reverse_and_stops_at_eos():
    tr = Trainer(ModelConfig(cell="gru", hidden_size=32, bidirectional=True, attention="luong_general"),
                 TrainConfig(task="reverse", seq_len=5, lr=1e-2, snapshot_every=0, task_options={"eos": True}))
    tr.step(200)
    acc = accuracy_frame(tr.model, tr.task, tr.probe)
    assert (acc["stop"] == "eos").mean() >= 0.75
    assert acc["greedy_accuracy"].mean() >= 0.9 and acc["tf_accuracy"].mean() >= 0.9
    d = decode(tr.model, tr.task, tr.probe, example=int(acc["greedy_accuracy"].idxmax()))
    assert d.steps["greedy"].iloc[-1] == "<eos>" and d.stop == "eos"
    assert d.steps["greedy_input"].iloc[0] == "<sos>"


def test_decode_frames():
    task, m, b = model_and_batch("bahdanau", True, seed=3)
    m = m.float()
    d = decode(m, task, b, example=2)
    T = task.seq_len
    assert len(d.steps) == T and d.source == [task.itos[i] for i in b.x[2].tolist()]
    assert d.steps["target"].tolist() == [task.itos[i] for i in b.y[2].tolist()]
    assert d.steps["tf_input"].tolist() == [task.itos[i] for i in b.y_in[2].tolist()]
    assert d.steps["greedy"].tolist() == [task.itos[i] for i in d.greedy.tokens]
    assert d.steps["greedy_input"].tolist() == ["<sos>"] + d.steps["greedy"].tolist()[:-1]
    assert (d.steps["greedy_correct"] == (d.steps["greedy"] == d.steps["target"])).all()
    p = torch.softmax(d.teacher.logits.double(), -1).max(-1).values.numpy()
    np.testing.assert_allclose(d.steps["p_tf"], p, rtol=1e-12)
    att = d.attention
    assert set(att["mode"]) == {"greedy", "teacher_forced"} and len(att) == 2 * T * T
    np.testing.assert_allclose(att.groupby(["mode", "step"])["weight"].sum(), 1.0, rtol=1e-6)
    # figures: the strip has target / teacher-forced / greedy rows and <sos> .. end columns; the attention two panels
    fig = decoded_strip(d.steps, d.stop, highlight=1)
    assert len(fig.data[0].z) == 3 and len(fig.data[0].z[0]) == T + 2 and fig.data[0].text[0][-1] == "<eos>*"
    assert fig.layout.shapes and fig.layout.shapes[0].x0 == 1.5
    fa = decoding_attention(att, d.steps, highlight=0)
    assert sum(tr.type == "heatmap" for tr in fa.data) == 2 and len(fa.layout.shapes) == 2
    # without attention: no attention frame, an empty figure, the strip still drawn
    task, m, b = model_and_batch("none")
    d = decode(m.float(), task, b)
    assert d.attention.empty and decoded_strip(d.steps, d.stop).data


@pytest.mark.parametrize("attention,eos,shift", [("bahdanau", False, 0), ("luong_general", True, -0.1),
                                                 ("none", True, 0.1)])
def test_accuracy_frame_decodes_the_batch_as_each_example_alone(attention, eos, shift):
    task, m, b = model_and_batch(attention, True, eos=eos, seed=4)
    if eos:  # some examples stop early, some do not: <eos> made about as likely as the likeliest token
        with torch.no_grad():
            m.out.bias[task.eos_id] = m.out.bias.max() + shift
    acc = accuracy_frame(m, task, b)
    assert len(acc) == b.x.shape[0]
    for e in range(b.x.shape[0]):
        one = example_batch(b, e)
        g, tf = greedy(m, task, one), teacher_forced(m, one)
        y = b.y[e].tolist()
        hits = [i < len(g.tokens) and g.tokens[i] == y[i] for i in range(len(y))]
        row = acc.iloc[e]
        assert row["greedy_accuracy"] == pytest.approx(np.mean(hits))
        assert row["tf_accuracy"] == pytest.approx(np.mean([a == c for a, c in zip(tf.tokens, y, strict=True)]))
        assert row["first_greedy_error"] == next((i for i, h in enumerate(hits) if not h), -1)
        assert row["stop"] == g.stop
    if eos:
        assert set(acc["stop"]) == {"eos", "max_len"}  # a batch that stops unevenly


# -- the eos control (rnnviz.controls.Controls.eos: URL eos=1, config, --set) ------------------------------------------


def test_eos_control_reaches_the_task_its_targets_and_its_loss():
    assert Controls().task_options() == {} and Controls(task="reverse").task_options() == {}  # off: as before
    for name in ("reverse", "copy", "sort"):
        c = Controls(task=name, eos=True, cells=("gru",), seq_len=5, hidden_size=8, batch_size=4)
        c.validate()
        assert c.task_options() == {"eos": True} and c.train_config().task_options == {"eos": True}
        exp = Experiment(c)
        for t in exp.runs.values():  # with attention and without: both built with the <eos> task
            assert t.task.eos_id == 12 and t.model.out.out_features == 13
            y = t.probe.y
            assert y.shape == (8, 6) and (y[:, -1] == t.task.eos_id).all() and (y[:, :-1] != 12).all()
            # the loss covers the <eos> step: a model right on every digit but wrong on <eos> is not at zero loss
            right = torch.full((8, 6, 13), -30.0)
            right.scatter_(2, y[..., None], 30.0)
            wrong = right.clone()
            wrong[:, -1, 12], wrong[:, -1, 2] = -30.0, 30.0
            assert t.task.loss(right, t.probe).item() < 1e-6 < 1.0 < t.task.loss(wrong, t.probe).item()
            logits = right.clone().requires_grad_(True)
            t.task.loss(logits, t.probe).backward()
            assert logits.grad[:, -1].abs().sum() > 0  # the gradient reaches the <eos> position
        exp.step(2)


def test_greedy_decoding_of_a_run_built_from_the_controls_stops_at_eos():
    exp = Experiment(Controls(task="copy", eos=True, cells=("gru",), seq_len=4, hidden_size=8, batch_size=4))
    t = next(iter(exp.runs.values()))
    with torch.no_grad():
        t.model.out.bias[t.task.eos_id] = 1e3  # the model says <eos> at once
    d = decode(t.model, t.task, t.probe, example=1)
    assert d.stop == "eos" and d.steps["greedy"].tolist() == ["<eos>"] + [""] * 4  # tf runs the target's 5 steps
    assert d.steps["greedy_input"].iloc[0] == "<sos>" and d.steps["target"].iloc[-1] == "<eos>"
    assert decoded_strip(d.steps, d.stop).data[0].text[0][-1] == "stop"


def test_eos_round_trips_through_the_url_config_and_set():
    c = Controls(task="sort", cells=("lstm",), seq_len=6, eos=True)
    q = c.to_query()
    assert q["eos"] == "true" and "eos" not in Controls(task="sort").to_query()  # default off: not in the URL
    back, problems = Controls.from_query(q)
    assert back == c and problems == []
    back, problems = Controls.from_query({"task": "reverse", "eos": "1"})
    assert back.eos and problems == []
    assert controls_from_dict({"controls": {"task": "copy", "eos": True}}).eos
    assert apply_overrides(Controls(task="reverse"), ["eos=true"]).eos
    assert "--set eos=true" in reproduce_command(c, 10)
    assert not controls_from_dict({"task": "copy"}).eos  # an older config.json without the key: off


@pytest.mark.parametrize("task", ["adding", "copy_memory", "char_lm", "hello", "parity", "sentiment"])
def test_eos_on_a_task_without_it_is_ignored_with_a_warning(task):
    c, problems = Controls.from_query({"task": task, "eos": "1"})
    assert c == Controls(task=task) and not c.eos
    assert len(problems) == 1 and problems[0].startswith("ignored URL parameter eos='1'")
    assert "seq2seq tasks (reverse, copy, sort)" in problems[0] and repr(task) in problems[0]
    with pytest.raises(ConfigError, match="eos"):
        apply_overrides(Controls(task=task), ["eos=true"])
    with pytest.raises(ValueError, match="eos must be true or false"):
        Controls(task="reverse", eos=1).validate()
