"""CopyMemory's options (n_recall, n_symbols) and its phases() (gate heatmaps are marked with them)."""

import math

import pytest
import torch

from rnnviz.tasks import CopyMemory, make_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_defaults_unchanged():
    t = make_task("copy_memory", seq_len=100)
    assert (t.n_recall, t.n_symbols, t.vocab_size, t.output_dim, t.DELIM) == (10, 8, 10, 10, 9)
    assert t.itos == ["-", "1", "2", "3", "4", "5", "6", "7", "8", ":"]
    assert t.input_len == 120 and t.baseline == 10 * math.log(8) / 120
    assert "n_recall" in CopyMemory.OPTIONS and "n_symbols" in CopyMemory.OPTIONS


@pytest.mark.parametrize("T,R,K", [(7, 3, 4), (1, 1, 2), (20, 5, 4), (4, 12, 20)])
def test_options_layout(T, R, K):
    t = make_task("copy_memory", seq_len=T, n_recall=R, n_symbols=K)
    b = t.sample(64, gen(T))
    assert b.x.shape == b.y.shape == (64, T + 2 * R) and t.input_len == T + 2 * R
    assert t.vocab_size == t.output_dim == K + 2 == len(t.itos) and t.DELIM == K + 1
    sym = b.x[:, :R]
    assert sym.min() >= 1 and sym.max() <= K
    assert (b.x[:, R:R + T - 1] == 0).all() and (b.x[:, R + T - 1] == K + 1).all() and (b.x[:, R + T:] == 0).all()
    assert (b.y[:, :T + R] == 0).all() and torch.equal(b.y[:, T + R:], sym)
    assert t.decode(t.encode(t.decode(b.x[0]))) == t.decode(b.x[0])


def test_memoryless_predictor_scores_the_baseline_formula():
    """Blanks for sure, uniform over the K symbols on the last R steps: R ln K / (T + 2R); metric = R-position
    accuracy only."""
    T, R, K = 9, 4, 5
    t = make_task("copy_memory", seq_len=T, n_recall=R, n_symbols=K)
    assert t.baseline == pytest.approx(R * math.log(K) / (T + 2 * R), rel=1e-12)
    b = t.sample(32, gen())
    logits = torch.full((32, T + 2 * R, K + 2), -1e4)
    logits[:, :T + R, 0] = 0.0
    logits[:, T + R:, 1:K + 1] = 0.0
    assert t.loss(logits, b).item() == pytest.approx(t.baseline, rel=1e-4)
    perfect = torch.nn.functional.one_hot(b.y, K + 2).float()
    assert t.metric(perfect, b) == 1.0
    assert t.metric(torch.nn.functional.one_hot(torch.zeros_like(b.y), K + 2).float(), b) == 0.0


@pytest.mark.parametrize("T,R,K", [(20, 10, 8), (1, 3, 4), (10, 5, 4)])
def test_phases_tile_the_input_and_match_the_samples(T, R, K):
    t = make_task("copy_memory", seq_len=T, n_recall=R, n_symbols=K)
    ph = t.phases()
    assert [p[0] for p in ph] == ["symbols", "delay", "delimiter", "recall"]
    assert ph[0][1] == 0 and ph[-1][2] == t.input_len
    assert all(ph[k][2] == ph[k + 1][1] for k in range(3))  # contiguous, no gaps or overlaps
    assert [p[2] - p[1] for p in ph] == [R, T - 1, 1, R]
    b = t.sample(16, gen(1))
    where = {name: slice(s, e) for name, s, e in ph}
    assert ((b.x[:, where["symbols"]] >= 1) & (b.x[:, where["symbols"]] <= K)).all()
    assert (b.x[:, where["delay"]] == 0).all()
    assert (b.x[:, where["delimiter"]] == t.DELIM).all() and (b.x == t.DELIM).sum() == 16
    assert (b.x[:, where["recall"]] == 0).all()
    assert ((b.y != 0) == (torch.arange(t.input_len) >= ph[3][1])).all()  # targets exactly in the recall phase
    assert t.describe()["phases"] == [list(p) for p in ph]


@pytest.mark.parametrize("opts,msg", [
    ({"n_recall": 0}, r"n_recall must be an int in \[1, 50\], got 0"),
    ({"n_recall": 51}, "n_recall must be an int"), ({"n_recall": 2.0}, "n_recall must be an int"),
    ({"n_recall": True}, "n_recall must be an int"), ({"n_symbols": 1}, r"n_symbols must be an int in \[2, 20\]"),
    ({"n_symbols": 21}, "n_symbols must be an int"), ({"n_symbols": "4"}, "n_symbols must be an int"),
])
def test_bad_options(opts, msg):
    with pytest.raises(ValueError, match=msg):
        make_task("copy_memory", seq_len=5, **opts)


def test_unknown_option_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"allowed options: n_recall, n_symbols"):
        make_task("copy_memory", seq_len=5, recall=3)
