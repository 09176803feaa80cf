"""rnnviz.phase against rnnviz.trace run cell by cell on the actual modules, and against the closed form."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import rnnviz
from rnnviz.models import ModelConfig, apply_init, make_core
from rnnviz.phase import (
    COLUMNS,
    LOG_RATIO_CLIP,
    PhaseConfig,
    boundary,
    build_core,
    clear_cache,
    loss_fn,
    probe_inputs,
    sweep,
)


def independent_core(cfg: PhaseConfig, cell: str, scale: float, seed: int, hidden=None, fb=None):
    """What ModelConfig(cell, hidden, init, weight_scale=scale, seed=seed) builds, written out here."""
    mcfg = ModelConfig(cell=cell, hidden_size=hidden or cfg.hidden_size, init=cfg.init, weight_scale=scale,
                       forget_bias=fb, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        core = make_core(mcfg, cfg.input_size, False)
        apply_init(core, mcfg)
    return core


def traced_log_ratio(core, cfg: PhaseConfig, seed: int, T: int, dtype=torch.float32) -> float:
    """log10(grad_norm[0] / grad_norm[T-1]) of rnnviz.trace with the sweep's input prefix and loss."""
    x, v = probe_inputs(cfg, seed, core.hidden_size, dtype=dtype)
    tr = rnnviz.trace(core.to(dtype), x[:, :T], loss_fn(v))
    gn = tr.grad_norm[0, 0].double()
    return math.log10(float(gn[0] / gn[T - 1]))


def row(df, cell, scale, y):
    r = df[(df.cell == cell) & np.isclose(df.scale, scale) & (df.y == y)]
    assert len(r) == 1
    return r.iloc[0]


SMALL = PhaseConfig(cells=("rnn_tanh", "rnn_relu", "lstm", "gru"), scales=(0.5, 1.0, 1.4), seq_lens=(5, 17, 40),
                    hidden_size=16, input_size=2, seeds=(0, 3), batch=3)


@pytest.mark.parametrize("init", ["orthogonal", "default"])
def test_matches_trace_cell_by_cell_float32(init):
    cfg = replace(SMALL, init=init)
    df = sweep(cfg, cache=False)
    for cell in cfg.cells:
        for scale in cfg.scales:
            for T in (5, 17):  # a float32 trace's grad_norm underflows below ~1e-19 (squares < 1e-38)
                per_seed = []
                for seed in cfg.seeds:
                    core = independent_core(cfg, cell, scale, seed)
                    mine = build_core(cfg, cell, scale, seed)
                    for (n1, p1), (n2, p2) in zip(core.named_parameters(), mine.named_parameters(), strict=True):
                        assert n1 == n2 and torch.equal(p1, p2), n1
                    per_seed.append(traced_log_ratio(core, cfg, seed, T))
                r = row(df, cell, scale, T)
                assert r.log_ratio == pytest.approx(np.mean(per_seed), abs=1e-4), (cell, scale, T)
                assert r.log_ratio_std == pytest.approx(np.std(per_seed), abs=1e-4)
                assert r.n_seeds == 2 and not r.clipped


def test_matches_float64_trace_tightly_including_chaotic_points():
    cfg = replace(SMALL, cells=("rnn_tanh", "lstm", "gru"), scales=(0.5, 2.0), seq_lens=(30, 120), dtype="float64")
    df = sweep(cfg, cache=False)
    for cell in cfg.cells:
        for scale in cfg.scales:
            for T in cfg.seq_lens:
                want = np.mean([traced_log_ratio(build_core(cfg, cell, scale, s), cfg, s, T, torch.float64)
                                for s in cfg.seeds])
                assert row(df, cell, scale, T).log_ratio == pytest.approx(want, abs=1e-7), (cell, scale, T)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_closed_form_orthogonal_zero_input(dtype):
    """tanh RNN, W_hh = s Q, zero input and biases: h stays 0, so ||dL/dh_0|| / ||dL/dh_{T-1}|| = s^(T-1)."""
    cfg = PhaseConfig(cells=("rnn_tanh",), scales=(0.5, 0.9, 1.0, 1.3, 2.0), seq_lens=(2, 10, 100, 300, 500),
                      hidden_size=32, input="zero", zero_bias=True, dtype=dtype)
    df = sweep(cfg, cache=False)
    assert len(df) == 25
    for r in df.itertuples():
        # float64 is limited by the float32 rounding of s Q (~2e-7 here); float32 arithmetic drifts ~3e-9 per step
        tol = 1e-6 if dtype == "float64" else 5e-6
        assert r.log_ratio == pytest.approx((r.seq_len - 1) * math.log10(r.scale), abs=tol), (r.scale, r.seq_len)
        assert r.log_ratio_std < 1e-6 and not r.clipped


def test_clipping_floor_and_ceiling_never_nan():
    # relu RNN at h = 0: relu'(0) = 0, so the gradient is exactly zero -> the floor
    zero = sweep(PhaseConfig(cells=("rnn_relu",), scales=(1.0,), seq_lens=(5,), hidden_size=8, input="zero",
                             zero_bias=True, seeds=(0,)), cache=False)
    assert zero.log_ratio.iloc[0] == -LOG_RATIO_CLIP and zero.clipped.iloc[0]
    # tanh RNN at scale 10 over 400 steps: 399 decades -> the ceiling (computed without overflow)
    big = sweep(PhaseConfig(cells=("rnn_tanh",), scales=(0.5, 10.0), seq_lens=(50, 400), hidden_size=8,
                            input="zero", zero_bias=True, seeds=(0,)), cache=False)
    assert row(big, "rnn_tanh", 10.0, 400).log_ratio == LOG_RATIO_CLIP and row(big, "rnn_tanh", 10.0, 400).clipped
    assert row(big, "rnn_tanh", 10.0, 50).log_ratio == pytest.approx(49.0, abs=1e-5)
    assert row(big, "rnn_tanh", 0.5, 400).log_ratio == pytest.approx(399 * math.log10(0.5), abs=1e-5)
    assert big.clipped.sum() == 1
    assert not big.isna().any().any() and not zero.isna().any().any()


def test_forget_bias_axis_matches_trace():
    cfg = PhaseConfig(cells=("lstm",), scales=(0.3, 1.0), hidden_size=12, seeds=(1,), batch=2, y_axis="forget_bias",
                      forget_biases=(-2.0, 0.0, 3.0), seq_len=60)
    df = sweep(cfg, cache=False)
    assert len(df) == 6 and set(df.seq_len) == {60} and list(df.y.unique()) == [-2.0, 0.0, 3.0]
    for fb in cfg.forget_biases:
        core = independent_core(cfg, "lstm", 0.3, 1, fb=fb)
        assert float(core.bias_ih_l0[12:24].detach().mean()) == fb
        # -44 decades at fb = -2: below what a float32 trace can show, so the truth is a float64 trace
        want = traced_log_ratio(core, cfg, 1, 60, torch.float64)
        assert row(df, "lstm", 0.3, fb).log_ratio == pytest.approx(want, abs=1e-4)
    # the classic picture: a larger forget bias keeps the gradient alive along the cell path
    lr = [row(df, "lstm", 0.3, fb).log_ratio for fb in cfg.forget_biases]
    assert lr[0] < lr[1] < lr[2]


def test_hidden_size_axis_matches_trace():
    cfg = PhaseConfig(cells=("rnn_tanh", "gru"), scales=(0.8,), seeds=(0,), batch=2, y_axis="hidden_size",
                      hidden_sizes=(4, 24), seq_len=25, init="default")
    df = sweep(cfg, cache=False)
    assert sorted(df.hidden_size.unique()) == [4, 24]
    for cell in cfg.cells:
        for H in cfg.hidden_sizes:
            core = independent_core(cfg, cell, 0.8, 0, hidden=H)
            assert row(df, cell, 0.8, H).log_ratio == pytest.approx(traced_log_ratio(core, cfg, 0, 25), abs=1e-4)


def test_progress_monotone_and_cache():
    clear_cache()
    cfg = replace(SMALL, cells=("lstm", "gru"), seq_lens=(5, 60), seeds=(0,))
    seen = []
    df = sweep(cfg, progress=seen.append)
    assert len(seen) >= 4 and seen[0] == 0.0 and seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen) and all(a <= b for a, b in zip(seen, seen[1:], strict=False))
    again = []
    df2 = sweep(cfg, progress=again.append)  # a cache hit: same values, a copy, progress still ends at 1
    assert again[-1] == 1.0 and df2.equals(df)
    df2.loc[0, "log_ratio"] = 123.0
    assert sweep(cfg).loc[0, "log_ratio"] == df.loc[0, "log_ratio"]
    assert sweep(cfg, cache=False).equals(df)  # deterministic without the cache too


def test_columns_order_and_default_grid():
    cfg = PhaseConfig()
    cfg.validate()
    assert len(cfg.scales) == 20 and min(cfg.scales) == 0.25 and max(cfg.scales) == 2.0
    assert len(cfg.seq_lens) == 20 and cfg.seq_lens[0] == 5 and cfg.seq_lens[-1] == 500
    assert list(cfg.seq_lens) == sorted(set(cfg.seq_lens))
    assert hash(cfg) == hash(PhaseConfig()) and cfg == PhaseConfig()
    assert hash(PhaseConfig(scales=[0.5, 1.0])) == hash(PhaseConfig(scales=(0.5, 1.0)))  # lists become tuples
    df = sweep(replace(SMALL, seeds=(0,), cells=("gru", "rnn_tanh")), cache=False)
    assert list(df.columns) == COLUMNS
    assert len(df) == 2 * 3 * 3 and list(df.cell.unique()) == ["gru", "rnn_tanh"]
    assert df.attrs["y_axis"] == "seq_len" and (df.y == df.seq_len).all() and (df.hidden_size == 16).all()
    assert df.dtypes["clipped"] == np.dtype(bool) and (df.n_seeds == 1).all()


def test_default_sweep_obeys_the_tanh_bound():
    """The page's default (20 x 20 x 3 cells x 3 seeds, hidden 64): complete, never NaN, and every tanh RNN
    value under Pascanu et al.'s bound (T-1) log10(sigma_max), sigma_max = scale for orthogonal init."""
    df = sweep(PhaseConfig(), cache=False)
    assert len(df) == 3 * 20 * 20 and not df.isna().any().any()
    rnn = df[(df.cell == "rnn_tanh") & ~df.clipped]
    assert (rnn.log_ratio <= (rnn.seq_len - 1) * np.log10(rnn.scale) + 1e-4).all()
    assert df.clipped.sum() == 1  # tanh RNN at scale 0.25, T = 500: below -300 decades
    for cell in ("lstm", "gru"):  # vanishing over 500 steps at the smallest scale, for every cell
        assert row(df, cell, 0.25, 500).log_ratio < -10


@pytest.mark.parametrize("field, value", [
    ("cells", ("lstm", "transformer")), ("cells", ()), ("scales", (0.0, 1.0)), ("scales", (1.0, 1.0)),
    ("seq_lens", (1, 5)), ("seq_lens", (5, 5000)), ("hidden_size", 1024), ("input", "ones"), ("init", "xavier"),
    ("seeds", ()), ("batch", 0), ("y_axis", "time"), ("dtype", "float16"), ("forget_bias", math.nan),
    ("seq_lens", tuple(range(2, 52))),  # 20 scales x 50 lengths = 1000 > 900 grid points
])
def test_validate_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        replace(PhaseConfig(), **{field: value}).validate()


def test_forget_bias_axis_needs_lstm_only():
    with pytest.raises(ValueError, match="cells"):
        PhaseConfig(y_axis="forget_bias").validate()
    PhaseConfig(y_axis="forget_bias", cells=("lstm",)).validate()


def test_boundary():
    orth = boundary(PhaseConfig(hidden_size=32, seeds=(0, 1)))
    assert len(orth) == 20 and np.allclose(orth.critical_scale, 1.0, atol=1e-6)
    dflt = boundary(PhaseConfig(init="default", y_axis="hidden_size", hidden_sizes=(16, 128)))
    assert list(dflt.hidden_size) == [16, 128]
    assert ((dflt.critical_scale > 0.7) & (dflt.critical_scale < 1.0)).all()  # sigma_max ~ 2/sqrt(3) at large H
