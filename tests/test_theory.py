"""rnnviz.theory against exact closed forms measured with rnnviz.trace, and against real torch modules."""

import contextlib
import io
import itertools
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from rnnviz import theory, trace


def _orthogonal(H: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(H, H, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    return q


def _scaled_rnn(s: float, H: int = 6, bias: bool = False) -> nn.RNN:
    rnn = nn.RNN(1, H, bias=bias, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.zero_()
        rnn.weight_hh_l0.copy_(s * _orthogonal(H))
    return rnn


@pytest.mark.parametrize("s", [0.8, 1.0, 1.25])
def test_bound_is_exact_for_scaled_orthogonal(s):
    T, H = 30, 6
    rnn = _scaled_rnn(s, H)
    v = torch.randn(H, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tr = trace(rnn, torch.zeros(3, T, 1, dtype=torch.float64), lambda out: (out[:, -1] * v).sum())
    g = tr.grad_norm[0, 0].numpy()  # (T,)
    np.testing.assert_allclose(theory.tanh_rnn_bound(s, T, g[-1]), g, rtol=1e-12)
    assert theory.measured_slope(g) == pytest.approx(math.log10(s), abs=1e-12)
    df = theory.predicted_decay_frame(rnn, T, float(g[-1]))
    assert list(df.columns) == ["t", "bound_sigma", "rate_rho"] and len(df) == T
    np.testing.assert_allclose(df["bound_sigma"], g, rtol=1e-12)
    np.testing.assert_allclose(df["rate_rho"], g, rtol=1e-12)  # normal W: rho = sigma_max


def test_bound_holds_with_inputs_and_biases():
    T = 40
    rnn = _scaled_rnn(1.1, 8, bias=True)
    with torch.no_grad():
        rnn.weight_ih_l0.normal_(generator=torch.Generator().manual_seed(2))
    x = torch.randn(4, T, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    g = trace(rnn, x, lambda out: out[:, -1].sum()).grad_norm[0, 0].numpy()
    assert (g <= theory.tanh_rnn_bound(1.1, T, g[-1]) * (1 + 1e-12)).all()
    assert theory.measured_slope(g) < math.log10(1.1)  # saturation only makes it decay faster


def test_predicted_decay_frame_is_empty_for_gated_cells():
    for core in (nn.LSTM(2, 4), nn.GRU(2, 4)):
        df = theory.predicted_decay_frame(core, 10, 1.0)
        assert df.empty and list(df.columns) == ["t", "bound_sigma", "rate_rho"]


def test_measured_slope_skips_zeros_and_needs_two_points():
    g = 10.0 ** (0.5 * (9 - np.arange(10)))  # grows going back: +0.5 decades per step
    g[:3] = 0.0  # truncation cuts
    assert theory.measured_slope(g) == pytest.approx(0.5)
    assert math.isnan(theory.measured_slope([0.0, 0.0, 1.0]))
    assert math.isnan(theory.measured_slope([]))


def test_forget_gate_decay_numbers_from_the_notes():
    assert theory.forget_gate_decay(0.0, 51)[0] == pytest.approx(8.9e-16, rel=0.01)
    assert theory.forget_gate_decay(1.0, 51)[0] == pytest.approx(1.6e-7, rel=0.02)
    assert theory.forget_gate_decay(1.0, 51)[-1] == 1.0


@pytest.mark.parametrize("b_f", [0.0, 1.0])
def test_forget_gate_decay_matches_lstm_cell_gradient(b_f):
    """W_hh = 0, W_ih = 0, x = 0: dL/dc_t = sigma(b_f)^(T-1-t) dL/dc_{T-1} exactly."""
    T, H = 25, 4
    lstm = nn.LSTM(1, H, batch_first=True).double()
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.bias_ih_l0[H:2 * H] = b_f
    tr = trace(lstm, torch.zeros(2, T, 1, dtype=torch.float64), lambda out: out[:, -1].sum())
    dc = tr.grad_cell[0, 0].norm(dim=-1).mean(dim=0).numpy()  # (T,)
    np.testing.assert_allclose(dc / dc[-1], theory.forget_gate_decay(b_f, T), rtol=1e-12)


def test_clip_matches_torch_clip_grad_norm():
    for norm, thr in [(10.0, 1.0), (0.5, 1.0), (3.0, 3.0)]:
        p = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
        p.grad = torch.full((5,), norm / math.sqrt(5), dtype=torch.float64)
        pre = float(torch.nn.utils.clip_grad_norm_([p], thr))
        assert pre == pytest.approx(norm)
        assert theory.clip(norm, thr) == pytest.approx(float(p.grad.norm()), rel=1e-12)
    np.testing.assert_allclose(theory.clip(np.array([0.5, 10.0]), 1.0), [0.5, 10.0 / (10.0 + 1e-6)])


@pytest.mark.parametrize("cell,layers,bidir",
                         list(itertools.product(["rnn_tanh", "rnn_relu", "lstm", "gru"], [1, 2], [False, True])))
def test_output_shapes_agree_with_torch(cell, layers, bidir):
    B, T, H = 3, 7, 5
    kw = dict(input_size=2, hidden_size=H, num_layers=layers, batch_first=True, bidirectional=bidir)
    core = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell, nn.RNN)(
        **kw, **({"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}))
    out, state = core(torch.randn(B, T, 2))
    shapes = theory.output_shapes(B, T, H, layers, bidir, cell=cell)
    assert shapes["output"][0] == tuple(out.shape)
    h_n = state[0] if cell == "lstm" else state
    assert shapes["h_n"][0] == tuple(h_n.shape)
    assert ("c_n" in shapes) == (cell == "lstm")
    if cell == "lstm":
        assert shapes["c_n"][0] == tuple(state[1].shape)
    assert shapes["weight_hh_l0"][0] == tuple(core.weight_hh_l0.shape)
    assert all(isinstance(why, str) and why for _, why in shapes.values())


def test_output_shapes_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell"):
        theory.output_shapes(1, 2, 3, cell="transformer")


def _core(cell, layers, bidir, batch_first, input_size=2, H=5, dropout=0.0):
    kw = dict(input_size=input_size, hidden_size=H, num_layers=layers, batch_first=batch_first,
              bidirectional=bidir, dropout=dropout)
    return {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell, nn.RNN)(
        **kw, **({"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}))


@pytest.mark.parametrize("cell,layers,bidir,batch_first",
                         list(itertools.product(["rnn_tanh", "rnn_relu", "lstm", "gru"], [1, 3], [False, True],
                                                [True, False])))
def test_output_shapes_with_the_input_and_both_layouts(cell, layers, bidir, batch_first):
    B, T, H, I = 3, 7, 5, 2
    core = _core(cell, layers, bidir, batch_first, I, H)
    x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    out, state = core(x)
    shapes = theory.output_shapes(B, T, H, layers, bidir, cell, batch_first=batch_first, input_size=I)
    got = {"input": x, "output": out, "h_n": state[0] if cell == "lstm" else state,
           "weight_ih_l0": core.weight_ih_l0, "weight_hh_l0": core.weight_hh_l0}
    if cell == "lstm":
        got["c_n"] = state[1]
    assert list(shapes) == [k for k in ["input", "output", "h_n", "c_n", "weight_ih_l0", "weight_hh_l0"] if k in got]
    assert {k: v[0] for k, v in shapes.items()} == {k: tuple(t.shape) for k, t in got.items()}
    assert ("batch_first=True" if batch_first else "batch_first=False") in shapes["output"][1]
    # without input_size: the four keys the Home page has always shown, unchanged
    assert list(theory.output_shapes(B, T, H, layers, bidir, cell, batch_first=batch_first)) == \
        [k for k in ["output", "h_n", "c_n", "weight_hh_l0"] if k in got]


def _printed_shapes(code: str) -> dict[str, tuple[int, ...]]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "<snippet>", "exec"), {})
    out = {}
    for line in buf.getvalue().splitlines():
        m = re.fullmatch(r"(\w+) \(([\d, ]*)\)", line)
        assert m, f"unexpected line {line!r}"
        out[m.group(1)] = tuple(int(v) for v in m.group(2).split(",") if v.strip())
    return out


@pytest.mark.parametrize("cell,layers,bidir,batch_first,dropout",
                         [("rnn_tanh", 1, False, True, 0.0), ("rnn_relu", 2, True, False, 0.0),
                          ("lstm", 2, True, True, 0.3), ("lstm", 1, False, False, 0.0), ("gru", 3, False, True, 0.1),
                          ("gru", 1, True, False, 0.0)])
def test_shapes_snippet_runs_and_prints_the_explained_shapes(cell, layers, bidir, batch_first, dropout):
    B, T, I, H = 4, 9, 3, 6
    code = theory.shapes_snippet(cell, B, T, I, H, layers, bidir, batch_first, dropout)
    printed = _printed_shapes(code)
    shapes = theory.output_shapes(B, T, H, layers, bidir, cell, batch_first=batch_first, input_size=I)
    assert printed == {k: v[0] for k, v in shapes.items()}
    assert ("c_n" in printed) == (cell == "lstm")
    assert (f"dropout={dropout:g}" in code) == (layers > 1 and dropout > 0)
    assert f"batch_first={batch_first}" in code and len(code.splitlines()) <= 14  # short


def test_shapes_frame_covers_every_cell_and_rejects_bad_input():
    df = theory.shapes_frame(["rnn_tanh", "lstm", "gru"], 2, 3, 4, num_layers=2, input_size=5)
    assert list(df.columns) == ["cell", "name", "shape", "why"]
    assert df.groupby("cell", sort=False).size().to_dict() == {"rnn_tanh": 5, "lstm": 6, "gru": 5}
    assert df[(df.cell == "lstm") & (df.name == "c_n")]["shape"].item() == "(2, 2, 4)"
    with pytest.raises(ValueError, match="hidden"):
        theory.shapes_snippet("gru", 2, 3, 4, 0)
    with pytest.raises(ValueError, match="cell"):
        theory.shapes_snippet("transformer", 2, 3, 4, 5)
