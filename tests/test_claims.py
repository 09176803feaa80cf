"""rnnviz.claims: each quantity equals the same number computed independently from the exported frames."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnnviz import claims
from rnnviz.controls import Controls
from rnnviz.experiment import Experiment


@pytest.fixture(scope="module")
def exp():
    e = Experiment(Controls(cells=("rnn_tanh",), compare="truncation", compare_values=("0", "4"), seq_len=14,
                            hidden_size=8, batch_size=8, snapshot_every=5))
    e.step(60)
    return e


def test_loss_ratio_metric_and_grad_ratio_from_the_frames(exp):
    full = exp.runs["RNN (tanh), full BPTT"]
    h = full.history_frame()
    assert claims.loss_ratio(full) == pytest.approx(h["loss"].tail(50).mean() / (1 / 6))
    assert claims.metric(full) == pytest.approx(h["metric"].tail(50).mean())
    gf = full.grad_flow_frame()
    last = gf[gf["step"] == gf["step"].max()].sort_values("t")["grad_norm"].to_numpy()
    assert claims.grad_log_ratio(full) == pytest.approx(math.log10(last[0] / last[-1]))
    g0 = gf[gf["step"] == 0].sort_values("t")["grad_norm"].to_numpy()
    assert claims.grad_log_ratio(full, at_step=0) == pytest.approx(math.log10(g0[0] / g0[-1]))


def test_window_leak_is_exactly_zero_only_when_truncated(exp):
    cut = exp.runs["RNN (tanh), truncated, k = 4"]
    assert claims.window_leak(cut) == 0.0
    g = cut.latest.grad_norm[0, 0]  # (T,) T = 14: the loss window starts at 12
    assert (g[:12] == 0).all() and (g[12:] > 0).all()
    assert math.isnan(claims.window_leak(exp.runs["RNN (tanh), full BPTT"]))


def test_growth_gap_against_the_prediction(exp):
    full = exp.runs["RNN (tanh), full BPTT"]
    s0 = full.snapshot_at(0)
    g = s0.grad_norm[0, 0]
    want = abs(math.log10(g[0] / g[-1]) - 13 * math.log10(s0.sigma_max))
    assert claims.growth_gap(full, at_step=0) == pytest.approx(want)


def test_attention_mass_on_a_known_matrix():
    a = torch.zeros(2, 4, 4)
    a[:, torch.arange(4), 3 - torch.arange(4)] = 0.75  # 0.75 on the anti-diagonal, the rest on the diagonal
    a[:, torch.arange(4), torch.arange(4)] += 0.25
    run = SimpleNamespace(latest=SimpleNamespace(attention=a), task=SimpleNamespace(attention_shape="anti-diagonal"))
    assert claims.attention_mass(run) == pytest.approx(0.75)
    run.task.attention_shape = "diagonal"
    assert claims.attention_mass(run) == pytest.approx(0.25)
    run.task.attention_shape = "no simple shape"
    assert math.isnan(claims.attention_mass(run))


def test_loss_spike_and_divergence():
    hist = SimpleNamespace(diverged=False, history_frame=lambda: __import__("pandas").DataFrame(
        {"loss": [2.0, 1.0, 30.0, 0.5]}))
    assert claims.loss_spike(hist) == pytest.approx(15.0)
    assert claims.loss_spike(SimpleNamespace(diverged=True)) == math.inf


def test_word_share_counts_known_words():
    exp = Experiment(Controls(task="char_lm", cells=("lstm",), seq_len=16, hidden_size=8, batch_size=4,
                              snapshot_every=50))
    t = exp.runs["LSTM"]
    share = claims.word_share(t)
    assert 0.0 <= share <= 1.0
    known = {w.lower() for w in __import__("re").findall(r"[A-Za-z]{2,}", t.task.text)}
    assert "the" in known and np.isfinite(share)


def test_a_versus_claim_is_the_ratio_of_two_runs(exp):
    full, cut = "RNN (tanh), full BPTT", "RNN (tanh), truncated, k = 4"
    ratio = claims.loss_ratio(exp.runs[cut]) / claims.loss_ratio(exp.runs[full])
    r = claims.Claim(cut, "loss_ratio", ">=", ratio - 1e-9, versus=full).check(exp)
    assert r.value == pytest.approx(ratio) and r.holds
    assert not claims.Claim(cut, "loss_ratio", ">=", ratio + 1e-9, versus=full).check(exp).holds
    assert "divided by RNN (tanh), full BPTT's" in r.claim.describe()
