"""The Unrolled network, Decoding and Padding & packing pages under AppTest: they run, draw what rnnviz computes from
the session's own runs, and react to their widgets."""

from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from rnnviz.decoding import example_batch, greedy
from rnnviz.unrolled import _short, shown_steps
from tests.test_pages import app, figures, no_exception, values  # the AppTest helpers

ROOT = Path(__file__).resolve().parents[1]


def traces(fig: dict, name: str) -> list[dict]:
    return [tr for tr in fig["data"] if tr.get("name") == name]


def downloads(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


# -- Unrolled network ------------------------------------------------------------------------------------------------


def test_unrolled_page_draws_the_snapshot_gradient_on_the_tasks_shape():
    at = app({"cells": "rnn_tanh,gru", "seq_len": "30", "truncation": "7"}).run()
    at.switch_page("pages/unrolled.py").run()
    no_exception(at)
    assert any("is a **many-to-one** task" in m.value for m in at.markdown)
    at.button(key="btn_step").click().run()
    no_exception(at)
    (fig,) = figures(at)
    runs = at.session_state["experiment"].runs
    g = runs["RNN (tanh)"].latest.grad_norm[0, 0]  # (T,) the snapshot the figure must show
    steps = shown_steps(30, 8, truncation=7)
    assert steps == [0, 1, 2, None, 25, 26, 27, 28, 29]  # the last cut, 27 -> 28, in view
    shown = [t for t in steps if t is not None]
    nodes = traces(fig, "hidden state h_t")[0]
    assert nodes["text"] == [_short(v) for v in g[shown] if v > 0]
    zeros = traces(fig, "‖∂L/∂h_t‖ = 0 exactly")
    assert len(values(zeros[0]["x"])) == int((g[shown] == 0).sum()) == 6  # t < 28, the last cut: exactly 0
    cut = traces(fig, "cut (state detached)")[0]
    assert values(cut["x"]) == [6.5]  # the link 27 -> 28, between columns 6 and 7
    assert "step 1" in fig["layout"]["title"]["text"]
    # the other run, then another shape (no gradient there)
    at.radio(key="un_run").set_value("GRU").run()
    no_exception(at)
    (fig,) = figures(at)
    g = runs["GRU"].latest.grad_norm[0, 0]
    assert traces(fig, "hidden state h_t")[0]["text"] == [_short(v) for v in g[shown] if v > 0]
    at.radio(key="un_shape_many_to_one").set_value("many_to_many").run()
    no_exception(at)
    (fig,) = figures(at)
    assert not traces(fig, "‖∂L/∂h_t‖ = 0 exactly") and "structure only" in fig["layout"]["title"]["text"]
    assert len(values(traces(fig, "loss term ℓ_t")[0]["x"])) == 8  # a loss at every drawn step
    assert any("no gradient is drawn" in c.value for c in at.caption)
    at.slider(key="un_max").set_value(12).run()
    no_exception(at)
    assert len(values(traces(figures(at)[0], "loss term ℓ_t")[0]["x"])) == 12
    labels = downloads(at)
    assert "⬇ unrolled_nodes.csv" in labels and "⬇ unrolled_edges.csv" in labels and "⬇ config.json" in labels
    weights = at.dataframe[0].value
    assert weights["PyTorch parameter"].tolist() == ["core.weight_ih_l0", "core.weight_hh_l0", "out.weight"]


def test_unrolled_page_seq2seq_with_a_bidirectional_encoder():
    at = app({"task": "reverse", "cells": "gru", "seq_len": "6", "bidirectional": "true",
              "attention": "bahdanau"}).run()
    at.switch_page("pages/unrolled.py").run()
    at.button(key="btn_step").click().run()
    no_exception(at)
    assert any("**sequence-to-sequence** task" in m.value for m in at.markdown)
    fig = figures(at)[0]
    texts = [t for tr in fig["data"] if tr.get("mode") == "text" for t in (tr.get("text") or [])]
    assert any("encoder" in t for t in texts) and any("decoder" in t for t in texts)
    assert "W′<sub>hh</sub>" in texts and "W<sub>hh</sub><sup>←</sup>" in texts
    assert traces(fig, "attention (drawn for step 0)")
    t = at.session_state["experiment"].runs["GRU + Bahdanau attention"]
    plain, coloured = traces(fig, "hidden state h_t")  # the decoder's states, the encoder's with their gradient
    assert set(plain["text"]) == {""}
    g = t.latest.grad_norm  # (1, 2, 6): the encoder's, both directions
    shown = [s for s in shown_steps(6, 4) if s is not None]  # half of the 8 steps drawn go to the encoder
    assert coloured["text"] == [_short(v) for v in g[0][:, shown].reshape(-1)]
    weights = at.dataframe[0].value
    assert "decoder.weight_hh_l0" in weights["PyTorch parameter"].tolist()


# -- Decoding ----------------------------------------------------------------------------------------------------------


def test_decoding_page_needs_a_seq2seq_task():
    at = app().run()
    at.switch_page("pages/decoding.py").run()
    no_exception(at)
    assert any("sequence-to-sequence task" in i.value for i in at.info)
    assert not figures(at)


def test_decoding_page_shows_the_models_own_greedy_and_teacher_forced_tokens():
    at = app({"task": "reverse", "cells": "gru", "seq_len": "6", "attention": "luong_general"}).run()
    at.switch_page("pages/decoding.py").run()
    at.button(key="btn_step").click().run()
    no_exception(at)
    runs = at.session_state["experiment"].runs
    (t,) = [r for r in runs.values() if r.model.attention == "luong_general"]  # the page opens on it
    strip, att = figures(at)
    z_text = strip["data"][0]["text"]  # rows: greedy, teacher-forced, target; columns <sos>, 0..T-1, end
    ref = t.model.greedy_decode(t.probe)[0].tolist()
    assert z_text[0][1:-1] == [t.task.itos[i] for i in ref] and z_text[0][-1] == "<eos>*"
    with torch.no_grad():
        t.model.eval()
        tf = t.model(t.probe).argmax(-1)[0].tolist()
        t.model.train()
    assert z_text[1][1:-1] == [t.task.itos[i] for i in tf]
    assert z_text[2][1:-1] == [t.task.itos[i] for i in t.probe.y[0].tolist()]
    assert [tr["type"] for tr in att["data"]] == ["heatmap", "heatmap"]
    steps = at.dataframe[0].value
    assert steps["greedy_input"].iloc[0] == "<sos>" and len(steps) == 6
    # another example, a highlighted step, the run without attention
    at.number_input(key="dec_example").set_value(3).run()
    at.slider(key="dec_step").set_value(2).run()
    no_exception(at)
    strip, att = figures(at)
    g = greedy(t.model, t.task, example_batch(t.probe, 3))
    assert strip["data"][0]["text"][0][1:-1] == [t.task.itos[i] for i in g.tokens]
    assert strip["layout"]["shapes"][0]["x0"] == 2.5 and att["layout"]["shapes"][0]["y0"] == 1.5
    at.radio(key="dec_run").set_value("GRU, no attention").run()
    no_exception(at)
    assert len(figures(at)) == 1 and any("has no attention" in c.value for c in at.caption)
    acc = at.dataframe[1].value
    assert list(acc.columns) == ["example", "greedy_accuracy", "tf_accuracy", "first_greedy_error", "stop"]
    labels = downloads(at)
    assert {"⬇ decoding_steps.csv", "⬇ decoding_attention.csv", "⬇ decoding_accuracy.csv"} <= set(labels)


def test_decoding_page_with_eos_starts_at_sos_and_stops_at_eos():
    at = app({"task": "reverse", "cells": "gru", "seq_len": "5", "eos": "1"}).run()
    at.switch_page("pages/decoding.py").run()
    no_exception(at)
    assert at.checkbox(key="ctl_eos").value is True  # the sidebar shows the control, on
    at.button(key="btn_step").click().run()
    no_exception(at)
    runs = at.session_state["experiment"].runs
    assert all(t.task.eos_id == 12 and t.cfg.task_options == {"eos": True} for t in runs.values())
    t = next(r for r in runs.values() if r.model.attention != "none")
    with torch.no_grad():
        t.model.out.bias[t.task.eos_id] = 1e3  # this model now says <eos> at once
    at.number_input(key="dec_example").set_value(2).run()  # another example: decoded again with these weights
    no_exception(at)
    strip = figures(at)[0]
    text = strip["data"][0]["text"]  # rows greedy, teacher-forced, target; columns <sos>, steps, end
    assert [row[0] for row in text] == ["<sos>"] * 3
    assert text[0][1] == "<eos>" and text[0][-1] == "stop" and text[2][-2] == "<eos>"
    assert text[1][1:-1] == ["<eos>"] * 6  # teacher forcing runs the target's T + 1 steps, whatever it says
    assert text[2][1:-1] == [t.task.itos[i] for i in t.probe.y[2].tolist()]
    assert any("stopped at the model emitted <eos>" in m.value for m in at.markdown)
    assert "greedy stopped: the model emitted <eos>" in str(strip["layout"])
    assert not any("tick **End targets with <eos>**" in c.value for c in at.caption)  # the hint is for eos off
    steps = at.dataframe[0].value
    assert steps["greedy_input"].iloc[0] == "<sos>" and steps["target"].tolist()[-1] == "<eos>" and len(steps) == 6
    # switching to a task without <eos> turns it off (and hides the control); the URL follows
    at.selectbox(key="ctl_task").set_value("adding").run()
    no_exception(at)
    assert at.session_state["controls"].eos is False and "eos" not in at.query_params
    assert not [cb for cb in at.checkbox if cb.key == "ctl_eos"]


def test_decoding_page_eos_checkbox_and_the_hint_without_it():
    at = app({"task": "copy", "cells": "gru", "seq_len": "4"}).run()
    at.switch_page("pages/decoding.py").run()
    at.button(key="btn_step").click().run()
    no_exception(at)
    assert any("tick **End targets with <eos>**" in c.value for c in at.caption)
    at.checkbox(key="ctl_eos").check().run()
    no_exception(at)
    assert at.session_state["controls"].eos is True and at.query_params["eos"] == "true"
    at.button(key="btn_step").click().run()
    no_exception(at)
    t = next(iter(at.session_state["experiment"].runs.values()))
    assert t.task.eos_id == 12 and t.steps == 1  # new models, built with the <eos> task
    assert figures(at)[0]["data"][0]["text"][2][5] == "<eos>"  # <sos>, 4 digits, then <eos>


# -- Padding & packing -------------------------------------------------------------------------------------------------


def test_padding_page_zero_gradients_and_training():
    at = app().run()
    at.switch_page("pages/padding.py").run()
    no_exception(at)
    assert not [b for b in at.sidebar.button if b.label in ("▶ Start", "Step", "Reset")]  # its own settings
    run = at.session_state["pad_run"]
    probe = run.probe
    batch = at.dataframe[0].value
    assert batch["length"].tolist() == probe.lengths.tolist()
    assert (batch.iloc[:, 3:] == "<pad>").sum(axis=1).tolist() == (probe.x.shape[1] - probe.lengths).tolist()
    grads = figures(at)[0]
    heat = [tr for tr in grads["data"] if tr["type"] == "heatmap"]
    assert len(heat) == 6  # packed and lengths-ignored panels
    n_pad = int((probe.x == 0).sum())
    assert sum(c == "0" for row in heat[2]["text"] for c in row) == n_pad  # packed: every pad exactly 0
    assert sum(c == "0" for row in heat[5]["text"] for c in row) == 0  # lengths ignored: none
    assert any(f"packed **{n_pad} of {n_pad}**" in m.value for m in at.markdown)
    states = at.dataframe[1].value
    assert (states["packed_pads_replaced"] == 0).all() and (states["masked_pads_replaced"] == 0).all()
    emb = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("‖∂L/∂E[v]‖")][0]
    assert [a["text"] for a in emb["layout"]["annotations"]] == ["exactly 0 (padding_idx)"]
    at.button(key="pad_train20").click().run()
    no_exception(at)
    assert at.session_state["pad_run"] is run and run.steps == 20
    loss = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("Training loss")][0]
    assert {tr["name"] for tr in loss["data"]} >= {"packed (pack_padded_sequence)", "padded + mask"}
    assert run.max_loss_gap() < 1e-4
    assert np.allclose(run.models["packed"].embed.weight[0].detach(), 0)
    # settings: a new model; the masked panel
    at.selectbox(key="pad_cell").set_value("lstm").run()
    at.toggle(key="pad_show_masked").set_value(True).run()
    no_exception(at)
    assert at.session_state["pad_run"] is not run and at.session_state["pad_run"].steps == 0
    heat = [tr for tr in figures(at)[0]["data"] if tr["type"] == "heatmap"]
    assert len(heat) == 9
    labels = downloads(at)
    assert {"⬇ padded_batch.csv", "⬇ input_gradients.csv", "⬇ final_states.csv", "⬇ embedding_gradients.csv",
            "⬇ padding_model.json"} <= set(labels)
    assert any("pack_padded_sequence" in c.value for c in at.code)
