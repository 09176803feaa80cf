"""rnnviz.experiment.Experiment and Controls' comparisons: lockstep, same data, divergence, retune vs rebuild."""

from dataclasses import replace

import pytest
import torch

from rnnviz.controls import COMPARABLE, Controls
from rnnviz.experiment import Experiment
from rnnviz.training import Trainer

SMALL = dict(hidden_size=8, seq_len=10, batch_size=8, snapshot_every=5)


def test_variants_of_every_comparable_setting_differ_only_there():
    base = Controls(cells=("gru", "lstm"), **SMALL)
    values = {"clip": ("0", "1"), "weight_scale": ("0.5", "1.5"), "init": ("default", "orthogonal"),
              "forget_bias": ("0", "2"), "truncation": ("0", "3"), "attention": ("bahdanau", "none"),
              "lr": ("0.001", "0.01"), "optimizer": ("adam", "sgd"), "hidden_size": ("4", "16")}
    assert set(values) | {"cells"} == set(COMPARABLE)
    for name, vals in values.items():
        c = replace(base, compare=name, compare_values=vals)
        c.validate()
        vs = list(c.variants().values())
        assert len(vs) == 2 and all(v.cells == ("gru",) for v in vs), name  # the first cell only
        a, b = (replace(v, **{name: getattr(Controls(), name)}) for v in vs)
        assert a == b, f"{name}: the variants differ in more than {name}"
        assert getattr(vs[0], name) != getattr(vs[1], name)


def test_compare_validation_names_the_problem():
    with pytest.raises(ValueError, match="compare must be one of"):
        Controls(compare="seq_len", compare_values=("5", "10")).validate()
    with pytest.raises(ValueError, match="2 to 4 different values"):
        Controls(compare="clip", compare_values=("1",)).validate()
    with pytest.raises(ValueError, match="2 to 4 different values"):
        Controls(compare="clip", compare_values=("1", "1")).validate()
    with pytest.raises(ValueError, match="clip must be a number"):
        Controls(compare="clip", compare_values=("0", "-3")).validate()
    with pytest.raises(ValueError, match="must be a number"):
        Controls(compare="lr", compare_values=("0.01", "fast")).validate()
    with pytest.raises(ValueError, match="compare_values is for"):
        Controls(compare_values=("0", "1")).validate()


def test_compare_round_trips_through_the_url():
    c = Controls(cells=("rnn_tanh",), compare="truncation", compare_values=("0", "10"), seq_len=40)
    q = c.to_query()
    assert q["compare"] == "truncation" and q["compare_values"] == "0,10"
    back, problems = Controls.from_query(q)
    assert back == c and problems == []


def test_lockstep_same_data_same_init_and_labels():
    c = Controls(cells=("rnn_tanh",), compare="clip", compare_values=("0", "0.5"), **SMALL)
    exp = Experiment(c)
    assert list(exp.runs) == ["RNN (tanh), no clipping", "RNN (tanh), clip at 0.5"]
    a, b = exp.runs.values()
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)  # same seed: the same initial weights
    assert exp.step(7) == 7 and exp.steps == 7 and a.steps == b.steps == 7
    # the same data stream: a run trained alone with the same settings sees the same batches, so its losses match
    alone = Trainer(c.varied("0").model_config("rnn_tanh"), c.varied("0").train_config())
    alone.step(7)
    assert alone.history_frame()["loss"].tolist() == a.history_frame()["loss"].tolist()
    # clipping at 0.5 changed the steps taken: the losses part after the first step
    assert a.history_frame()["loss"].iloc[0] == b.history_frame()["loss"].iloc[0]
    assert a.history_frame()["loss"].tolist() != b.history_frame()["loss"].tolist()


def test_time_budget_and_catch_up():
    exp = Experiment(Controls(cells=("rnn_tanh", "gru"), **SMALL))
    done = exp.step(10**6, time_budget=0.05)
    assert 1 <= done < 10**6 and all(t.steps == done for t in exp.runs.values())
    first = next(iter(exp.runs.values()))
    first.step(3)  # as if a round had been cut off after the first run
    exp.catch_up()
    assert len({t.steps for t in exp.runs.values()}) == 1


def test_a_diverged_run_stops_and_the_others_go_on():
    c = Controls(cells=("rnn_relu",), init="identity", weight_scale=1.2, optimizer="sgd", lr=0.3, compare="clip",
                 compare_values=("0", "1"), seq_len=40, hidden_size=8, batch_size=8, snapshot_every=50)
    exp = Experiment(c)
    exp.step(30)
    unclipped, clipped = exp.runs.values()
    assert unclipped.diverged and not clipped.diverged, (unclipped.message, clipped.message)
    assert clipped.steps == 30 and unclipped.steps < 30 and len(unclipped.history_frame()) == unclipped.steps
    assert not exp.finished


def test_retune_keeps_weights_and_rebuild_resets():
    c = Controls(cells=("lstm", "gru"), **SMALL)
    exp = Experiment(c)
    exp.step(5)
    before = {k: [p.detach().clone() for p in t.model.parameters()] for k, t in exp.runs.items()}
    trainers = dict(exp.runs)
    assert exp.apply(replace(c, lr=0.01, clip=0.0)) == "continued"
    assert exp.runs == trainers and exp.steps == 5  # the same Trainer objects, not retrained
    for k, t in exp.runs.items():
        assert all(torch.equal(p, q) for p, q in zip(t.model.parameters(), before[k], strict=True))
        assert t.cfg.lr == 0.01 and t.cfg.clip is None and t.opt.param_groups[0]["lr"] == 0.01
        assert any("lr changed from 0.003 to 0.01 at step 5 (same weights)" in n for n in t.notes())
    exp.step(2)
    assert exp.steps == 7
    assert exp.apply(replace(c, lr=0.01, clip=0.0, optimizer="sgd")) == "continued"
    assert all(isinstance(t.opt, torch.optim.SGD) for t in exp.runs.values())
    assert exp.apply(replace(c, lr=0.01, clip=0.0, optimizer="sgd")) == "unchanged"
    assert exp.apply(replace(c, hidden_size=16)) == "rebuilt"
    assert exp.steps == 0 and all(t.model_cfg.hidden_size == 16 for t in exp.runs.values())


def test_retune_refuses_what_needs_new_models():
    t = Trainer()
    with pytest.raises(ValueError, match="seq_len cannot change while training"):
        t.retune(replace(t.cfg, seq_len=7))
