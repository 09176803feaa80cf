"""rnnviz.hello and the one-hot input option, against nn.RNN / the model's own forward and the formula by hand."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnviz.hello import columns, greedy_step, greedy_steps, show_char, step_table
from rnnviz.models import ModelConfig, OneHot, build_model, generate
from rnnviz.tasks import Batch, make_task
from rnnviz.training import TrainConfig, Trainer


def _trained(cell="rnn_tanh", hidden=4, one_hot=True, layers=1, steps=150, task="hello", seq_len=4):
    tr = Trainer(ModelConfig(cell=cell, hidden_size=hidden, one_hot=one_hot, num_layers=layers),
                 TrainConfig(task=task, seq_len=seq_len, snapshot_every=0, batch_size=16, lr=3e-2))
    tr.step(steps)
    return tr


def _cols(df, prefix):
    return df[[c for c in df.columns if c.startswith(prefix + "[")]].to_numpy()


def test_one_hot_input_is_the_identity_column_and_w_ih_picks_a_column():
    task = make_task("hello", 4)
    model = build_model(ModelConfig(cell="rnn_tanh", hidden_size=3, one_hot=True), task)
    assert isinstance(model.embed, OneHot) and model.core.input_size == 4 == task.vocab_size
    b = task.probe(3)
    x = model.core_input(b)  # (B, T, V)
    assert torch.equal(x, F.one_hot(b.x, 4).float())
    k = int(b.x[0, 0])
    assert torch.allclose(model.core.weight_ih_l0 @ x[0, 0], model.core.weight_ih_l0[:, k])
    # no parameters, nothing in the state_dict; follows .double(); PAD (when a task has one) is the zero vector
    assert not list(model.embed.parameters()) and not any(k.startswith("embed") for k in model.state_dict())
    assert model.double().core_input(b).dtype == torch.float64
    oh = OneHot(3, pad_id=0)
    assert torch.equal(oh(torch.tensor([[0, 1, 2]])), torch.tensor([[[0., 0, 0], [0, 1, 0], [0, 0, 1]]]))
    par = build_model(ModelConfig(cell="gru", hidden_size=3, one_hot=True), make_task("parity", 6))
    pad = Batch(x=torch.zeros(1, 2, dtype=torch.long), y=None)  # parity's PAD is token 0
    assert par.core.input_size == 3 and float(par.core_input(pad).abs().sum()) == 0


def test_one_hot_config_validates_and_round_trips():
    c = ModelConfig(one_hot=True)
    assert ModelConfig.from_dict(c.to_dict()) == c and ModelConfig().one_hot is False
    with pytest.raises(ValueError, match="one_hot"):
        ModelConfig(one_hot=1).validate()
    emb = build_model(ModelConfig(embed_dim=5), make_task("hello", 4))
    assert isinstance(emb.embed, torch.nn.Embedding) and emb.core.input_size == 5  # the default path is unchanged


def test_step_table_equals_the_rnn_formula_by_hand():
    tr = _trained("rnn_tanh", hidden=3)
    model = copy.deepcopy(tr.model).double()
    text = "hell"
    df = step_table(model, tr.task, text)
    assert list(df.columns) == columns(tr.task, 3) and len(df) == 4
    W_xh, W_hh = model.core.weight_ih_l0.detach(), model.core.weight_hh_l0.detach()
    b = (model.core.bias_ih_l0 + model.core.bias_hh_l0).detach()
    W_hy, b_y = model.out.weight.detach(), model.out.bias.detach()
    h = torch.zeros(3, dtype=torch.float64)
    for t, c in enumerate(text):
        x = torch.zeros(4, dtype=torch.float64)
        x[tr.task.stoi[c]] = 1.0  # one-hot
        h = torch.tanh(W_xh @ x + W_hh @ h + b)
        z = W_hy @ h + b_y
        p = torch.exp(z) / torch.exp(z).sum()
        np.testing.assert_allclose(_cols(df, "x")[t], x.numpy())
        np.testing.assert_allclose(_cols(df, "h")[t], h.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(_cols(df, "z")[t], z.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(_cols(df, "p")[t], p.numpy(), rtol=1e-12, atol=1e-15)
        assert df.predicted[t] == tr.task.itos[int(p.argmax())] and df.p_predicted[t] == pytest.approx(float(p.max()))
    assert df.input.tolist() == list(text) and df.target.tolist() == ["e", "l", "l", ""]
    assert df.predicted.tolist() == ["e", "l", "l", "o"]  # trained: "hell" -> "ello"


@pytest.mark.parametrize("cell,layers,one_hot", [("rnn_tanh", 1, True), ("lstm", 2, True), ("gru", 1, False),
                                                 ("rnn_relu", 2, False)])
def test_step_table_equals_the_models_own_forward(cell, layers, one_hot):
    tr = _trained(cell, hidden=5, one_hot=one_hot, layers=layers, steps=20, task="char_lm", seq_len=12)
    b = Batch(x=tr.probe.x[:1], y=tr.probe.y[:1])
    text = tr.task.decode(b.x[0])
    df = step_table(tr.model, tr.task, text)
    with torch.no_grad():
        tr.model.eval()
        out = tr.model.core(tr.model.core_input(b))[0][0]  # (T, H) the nn.RNN/LSTM/GRU itself
        logits = tr.model(b)[0]  # (T, V)
    np.testing.assert_allclose(_cols(df, "h"), out.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_cols(df, "z"), logits.numpy(), rtol=1e-5, atol=1e-5)
    p = _cols(df, "p")
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-12)  # softmax rows sum to 1
    np.testing.assert_allclose(p, torch.softmax(logits.double(), -1).numpy(), rtol=1e-5, atol=1e-7)
    assert (_cols(df, "x").sum(1) == 1).all() and (_cols(df, "x").argmax(1) == b.x[0].numpy()).all()
    assert df.predicted.tolist() == [show_char(tr.task.itos[k]) for k in logits.argmax(-1).tolist()]
    assert df.target.tolist()[:-1] == [show_char(c) for c in text[1:]]


@pytest.mark.parametrize("cell,layers", [("rnn_tanh", 1), ("lstm", 2), ("gru", 1)])
def test_greedy_steps_equal_generate_and_the_table(cell, layers):
    tr = _trained(cell, layers=layers)
    steps = greedy_steps(tr.model, tr.task, "h", 9)
    assert "".join(steps.predicted) == generate(tr.model, tr.task, "h", 9, greedy=True)
    assert steps.t.tolist() == list(range(9)) and steps.input[0] == "h"
    assert steps.input.tolist()[1:] == steps.predicted.tolist()[:-1]  # each prediction is fed back
    # carrying the state one character at a time gives the same numbers as reading the text at once
    table = step_table(tr.model, tr.task, "h" + "".join(steps.predicted[:-1]))
    np.testing.assert_allclose(_cols(steps, "h"), _cols(table, "h"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_cols(steps, "p"), _cols(table, "p"), rtol=1e-5, atol=1e-7)


def test_greedy_step_is_pure():
    tr = _trained("lstm", steps=30)
    s1 = greedy_step(tr.model, tr.task, None, "h")
    saved = tuple(t.clone() for t in s1.state)
    s2 = greedy_step(tr.model, tr.task, s1.state, s1.char)
    s2b = greedy_step(tr.model, tr.task, s1.state, s1.char)
    assert all(torch.equal(a, b) for a, b in zip(saved, s1.state, strict=True))  # the state passed in is untouched
    assert s2.char == s2b.char and s2.row == s2b.row
    assert tr.model.training  # eval mode only inside


def test_rejects_what_it_cannot_read():
    tr = _trained(steps=0)
    with pytest.raises(ValueError, match="vocabulary"):
        step_table(tr.model, tr.task, "help")
    with pytest.raises(ValueError, match="non-empty"):
        step_table(tr.model, tr.task, "")
    with pytest.raises(ValueError, match="one character"):
        greedy_step(tr.model, tr.task, None, "he")
    with pytest.raises(ValueError, match="n must be"):
        greedy_steps(tr.model, tr.task, "h", -1)
    task = make_task("adding", 5)
    with pytest.raises(ValueError, match="character model"):
        step_table(build_model(ModelConfig(hidden_size=3), task), task, "h")
    assert show_char(" ") == "␣" and show_char("\n") == "↵" and show_char("a") == "a"


def test_weights_frame_is_the_modules_weights():
    from rnnviz.hello import weights_frame

    for cell, one_hot, G in [("rnn_tanh", True, 1), ("lstm", False, 4), ("gru", True, 3)]:
        tr = _trained(cell, hidden=3, one_hot=one_hot, steps=2)
        wf = weights_frame(tr.model, tr.task)
        assert list(wf.columns) == ["matrix", "row", "col", "row_label", "col_label", "value"]
        for name, W in [("W_xh (weight_ih_l0)", tr.model.core.weight_ih_l0), ("W_hh (weight_hh_l0)",
                        tr.model.core.weight_hh_l0), ("W_hy (the head)", tr.model.out.weight)]:
            g = wf[wf.matrix == name]
            m = np.full(tuple(W.shape), np.nan)
            m[g.row, g.col] = g.value
            np.testing.assert_array_equal(m, W.detach().double().numpy())
        xh = wf[wf.matrix == "W_xh (weight_ih_l0)"]
        assert len(xh) == G * 3 * (4 if one_hot else tr.model.cfg.embed_dim)
        assert set(xh.col_label) == ({"e", "h", "l", "o"} if one_hot else {f"e[{j}]" for j in range(16)})
        assert xh.row_label.iloc[0] == {1: "h[0]", 4: "i[0]", 3: "r[0]"}[G]
        assert set(wf[wf.matrix == "W_hy (the head)"].row_label) == {"e", "h", "l", "o"}
