"""rnnviz.trace against PyTorch's own modules and an independent unrolled re-implementation.

The reference below is written from the equations in PyTorch's documentation, one step at a time with
autograd, calling retain_grad() on every h_t: h_t.grad is then the total derivative dL/dh_t.
"""

import itertools
import math

import pytest
import torch
from torch import nn

import rnnviz
from rnnviz.tracing import truncated_forward

# ------------------------------------------------------------------------------------------------------
# Independent reference


def _step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of PyTorch's cells from the docs. x (B, in), h (B, H). Returns h, c, gates dict."""
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    if mode == "RNN_TANH":
        return torch.tanh(gi + gh), None, {}
    if mode == "RNN_RELU":
        return torch.relu(gi + gh), None, {}
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        return o * torch.tanh(c), c, {"input": i, "forget": f, "cell": g, "output": o}
    r_i, z_i, n_i = gi.chunk(3, dim=1)
    r_h, z_h, n_h = gh.chunk(3, dim=1)
    r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
    n = torch.tanh(n_i + r * n_h)
    return (1 - z) * n + z * h, None, {"reset": r, "update": z, "new": n}


def reference(module, x, loss_fn, h0=None, truncation=None):
    """Unrolled autograd reference. Returns dict of tensors in the Trace layout (L, D, B, T, H)."""
    mode = module.mode
    L, D, H = module.num_layers, 2 if module.bidirectional else 1, module.hidden_size
    xb = x if module.batch_first else x.transpose(0, 1)  # (B, T, in)
    B, T, _ = xb.shape
    params = {n: p.detach().clone().requires_grad_() for n, p in module.named_parameters()}
    x_leaf = xb.detach().clone().requires_grad_()
    if h0 is None:
        h0_ = torch.zeros(L * D, B, H, dtype=x.dtype)
        c0_ = torch.zeros(L * D, B, H, dtype=x.dtype)
    elif mode == "LSTM":
        h0_, c0_ = h0
    else:
        h0_, c0_ = h0, torch.zeros(L * D, B, H, dtype=x.dtype)
    hs = [[[None] * T for _ in range(D)] for _ in range(L)]
    cs = [[[None] * T for _ in range(D)] for _ in range(L)]
    gates = [[[None] * T for _ in range(D)] for _ in range(L)]
    inp = [x_leaf[:, t] for t in range(T)]
    for layer in range(L):
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            zeros = torch.zeros(w_ih.shape[0], dtype=x.dtype)
            b_ih = params.get("bias_ih" + sfx, zeros)
            b_hh = params.get("bias_hh" + sfx, zeros)
            h, c = h0_[layer * D + d], c0_[layer * D + d]
            order = range(T) if d == 0 else range(T - 1, -1, -1)
            for s, t in enumerate(order):
                if truncation is not None and s > 0 and s % truncation == 0:
                    h, c = h.detach(), c.detach()
                h, c_new, g = _step(mode, inp[t], h, c, w_ih, w_hh, b_ih, b_hh)
                c = c_new if c_new is not None else c
                h.retain_grad()
                hs[layer][d][t], cs[layer][d][t], gates[layer][d][t] = h, c, g
        inp = [torch.cat([hs[layer][d][t] for d in range(D)], dim=1) for t in range(T)]
    out = torch.stack(inp, dim=1)  # (B, T, D*H)
    output = out if module.batch_first else out.transpose(0, 1)
    loss = loss_fn(output)
    loss.backward()
    loss = loss.detach()

    def grid(f):
        return torch.stack([torch.stack([torch.stack([f(layer, d, t) for t in range(T)], dim=1)
                                         for d in range(D)]) for layer in range(L)])

    res = {
        "output": output.detach(),
        "loss": loss.item(),
        "hidden": grid(lambda layer, d, t: hs[layer][d][t].detach()),
        "grad_hidden": grid(lambda layer, d, t: hs[layer][d][t].grad),
        "param_grads": {n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in params.items()},
        "grad_input": (x_leaf.grad if module.batch_first else x_leaf.grad.transpose(0, 1)),
        "gates": {name: grid(lambda layer, d, t, name=name: gates[layer][d][t][name].detach())
                  for name in rnnviz.GATE_NAMES[mode]},
    }
    if mode == "LSTM":
        res["cell"] = grid(lambda layer, d, t: cs[layer][d][t].detach())
    return res


def make(mode, layers=1, bidirectional=False, batch_first=True, bias=True, input_size=3, hidden=5,
         dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    kw = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if mode == "RNN_TANH":
        m = nn.RNN(input_size, hidden, nonlinearity="tanh", **kw)
    elif mode == "RNN_RELU":
        m = nn.RNN(input_size, hidden, nonlinearity="relu", **kw)
    elif mode == "LSTM":
        m = nn.LSTM(input_size, hidden, **kw)
    else:
        m = nn.GRU(input_size, hidden, **kw)
    return m.to(dtype)


def sum_loss(output):
    """A loss touching every step, with different weights, so every gradient path is exercised."""
    w = torch.linspace(0.5, 1.5, output.shape[-1], dtype=output.dtype)
    return (output.tanh() * w).sum() / output.shape[0] + output.pow(2).mean()


MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]


def assert_close(a, b, rtol, atol, what):
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    err = (a - b).abs().max().item()
    scale = b.abs().max().item()
    assert err <= atol + rtol * scale, f"{what}: max abs error {err:.3g} (scale {scale:.3g})"


# ------------------------------------------------------------------------------------------------------
# Exactness, every combination


@pytest.mark.parametrize(
    "mode,layers,bidirectional,batch_first,bias,truncation",
    [(m, layer, bd, bf, bias, k) for m, layer, bd, bf, bias, k in itertools.product(
        MODES, [1, 2], [False, True], [True, False], [True, False], [None, 3])
     if not (bias is False and (bf is False or k is not None))],  # bias=False on a subset keeps it fast
)
def test_matches_unrolled_reference_float64(mode, layers, bidirectional, batch_first, bias, truncation):
    m = make(mode, layers, bidirectional, batch_first, bias)
    x = torch.randn((4, 8, 3) if batch_first else (8, 4, 3), dtype=torch.float64)
    tr = rnnviz.trace(m, x, sum_loss, truncation=truncation)
    ref = reference(m, x, sum_loss, truncation=truncation)
    tol = dict(rtol=1e-10, atol=1e-12)
    assert_close(tr.output, ref["output"], what="output", **tol)
    assert_close(tr.hidden, ref["hidden"], what="hidden", **tol)
    assert_close(tr.grad_hidden, ref["grad_hidden"], what="grad_hidden", **tol)
    assert_close(tr.grad_input, ref["grad_input"], what="grad_input", **tol)
    assert set(tr.gates) == set(rnnviz.GATE_NAMES[mode])
    for name, g in tr.gates.items():
        assert_close(g, ref["gates"][name], what=f"gate {name}", **tol)
    if mode == "LSTM":
        assert_close(tr.cell, ref["cell"], what="cell", **tol)
    else:
        assert tr.cell is None
    assert list(tr.param_grads) == [n for n, _ in m.named_parameters()]
    for n, g in tr.param_grads.items():
        assert_close(g, ref["param_grads"][n], what=f"grad {n}", **tol)
    assert tr.loss == pytest.approx(ref["loss"], rel=1e-12)
    D = 2 if bidirectional else 1
    assert tr.hidden.shape == (layers, D, 4, 8, 5)
    assert tr.grad_norm.shape == (layers, D, 8)
    assert torch.allclose(tr.grad_norm, tr.grad_hidden.norm(dim=-1).mean(dim=2))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_float32_matches_native_module(mode, bidirectional):
    """Against nn.RNN/LSTM/GRU themselves in float32 (oneDNN kernels): 1e-5 states, 1e-4 relative grads."""
    m = make(mode, 2, bidirectional, True, dtype=torch.float32, hidden=16, input_size=4)
    x = torch.randn(6, 20, 4)
    h0 = torch.randn(2 * (2 if bidirectional else 1), 6, 16) * 0.5
    hx = (h0, torch.randn_like(h0) * 0.5) if mode == "LSTM" else h0
    tr = rnnviz.trace(m, x, sum_loss, h0=hx)
    xr = x.clone().requires_grad_()
    out, h_n = m(xr, hx)
    sum_loss(out).backward()
    assert_close(tr.output, out.detach(), rtol=0, atol=1e-5, what="output")
    assert_close(tr.h_n, (h_n[0] if mode == "LSTM" else h_n).detach(), rtol=0, atol=1e-5, what="h_n")
    if mode == "LSTM":
        assert_close(tr.c_n, h_n[1].detach(), rtol=0, atol=1e-5, what="c_n")
    # the top layer's hidden states are the output
    top = tr.hidden[-1].permute(1, 2, 0, 3).reshape(6, 20, -1)
    assert_close(top, out.detach(), rtol=0, atol=1e-5, what="top hidden")
    for n, p in m.named_parameters():
        assert_close(tr.param_grads[n], p.grad, rtol=1e-4, atol=1e-7, what=f"grad {n}")
    assert_close(tr.grad_input, xr.grad, rtol=1e-4, atol=1e-7, what="grad_input")


@pytest.mark.parametrize("mode", MODES)
def test_initial_state_is_used(mode):
    m = make(mode, 2, True, False)
    x = torch.randn(7, 3, 3, dtype=torch.float64)
    h0 = torch.randn(4, 3, 5, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0)) if mode == "LSTM" else h0
    tr = rnnviz.trace(m, x, sum_loss, h0=hx, truncation=2)
    ref = reference(m, x, sum_loss, h0=hx, truncation=2)
    assert_close(tr.hidden, ref["hidden"], rtol=1e-10, atol=1e-12, what="hidden")
    assert_close(tr.grad_hidden, ref["grad_hidden"], rtol=1e-10, atol=1e-12, what="grad_hidden")
    assert_close(tr.output, m(x, hx)[0].detach(), rtol=0, atol=1e-12, what="output vs module")


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_input(mode):
    m = make(mode, 1, True, True)
    x = torch.randn(6, 3, dtype=torch.float64)
    tr = rnnviz.trace(m, x, lambda o: o.pow(2).sum())
    assert tr.output.shape == m(x)[0].shape == (6, 10)
    assert torch.allclose(tr.output, m(x)[0].detach())
    assert tr.hidden.shape == (1, 2, 1, 6, 5)
    assert tr.grad_input.shape == x.shape


def test_lstm_grad_cell_matches_reference():
    """dL/dc_t, the additive path: checked against autograd on the unrolled cell states."""
    m = make("LSTM", 2, True, True)
    x = torch.randn(3, 9, 3, dtype=torch.float64)
    for k in (None, 4):
        tr = rnnviz.trace(m, x, sum_loss, truncation=k)
        # reference: perturb c via autograd on a re-run where each c_t is a retained intermediate
        ref = _reference_grad_cell(m, x, sum_loss, k)
        assert_close(tr.grad_cell, ref, rtol=1e-10, atol=1e-12, what=f"grad_cell k={k}")


def _reference_grad_cell(m, x, loss_fn, k):
    L, D, H = m.num_layers, 2, m.hidden_size
    B, T, _ = x.shape
    p = {n: q.detach() for n, q in m.named_parameters()}
    cs = [[[None] * T for _ in range(D)] for _ in range(L)]
    x = x.clone().requires_grad_()  # so every c_t is a non-leaf in the graph
    inp = [x[:, t] for t in range(T)]
    for layer in range(L):
        outs = [[None] * T for _ in range(D)]
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            h = c = torch.zeros(B, H, dtype=x.dtype)
            order = range(T) if d == 0 else range(T - 1, -1, -1)
            for s, t in enumerate(order):
                if k is not None and s > 0 and s % k == 0:
                    h, c = h.detach(), c.detach()
                h, c, _ = _step("LSTM", inp[t], h, c, p["weight_ih" + sfx], p["weight_hh" + sfx],
                                p["bias_ih" + sfx], p["bias_hh" + sfx])
                c.retain_grad()
                cs[layer][d][t], outs[d][t] = c, h
        inp = [torch.cat([outs[d][t] for d in range(D)], dim=1) for t in range(T)]
    loss_fn(torch.stack(inp, dim=1)).backward()
    return torch.stack([torch.stack([torch.stack([cs[layer][d][t].grad for t in range(T)], dim=1)
                                     for d in range(D)]) for layer in range(L)])


# ------------------------------------------------------------------------------------------------------
# Closed forms


@pytest.mark.parametrize("scale", [0.5, 0.9, 1.0, 1.1, 1.7])
def test_orthogonal_closed_form(scale):
    """tanh RNN, W_hh = s*Q (Q orthogonal), zero input/bias/state: ||dL/dh_t|| = s^(T-1-t) ||dL/dh_{T-1}||."""
    T, H = 30, 16
    m = nn.RNN(4, H, batch_first=True).double()
    with torch.no_grad():
        for q in m.parameters():
            q.zero_()
        Q, _ = torch.linalg.qr(torch.randn(H, H, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
        m.weight_hh_l0.copy_(scale * Q)
    v = torch.randn(H, dtype=torch.float64)
    tr = rnnviz.trace(m, torch.zeros(2, T, 4, dtype=torch.float64), lambda o: (o[:, -1] @ v).sum())
    g = tr.grad_norm[0, 0]  # (T,)
    expected = g[-1] * scale ** torch.arange(T - 1, -1, -1, dtype=torch.float64)
    assert torch.allclose(g, expected, rtol=1e-13, atol=0), (g / expected - 1).abs().max()
    assert g[-1].item() == pytest.approx(v.norm().item(), rel=1e-14)


def test_lstm_forget_gate_closed_form():
    """LSTM with W_hh = 0 and x = 0: dL/dc_t = sigma(b_f)^(T-1-t) dL/dc_{T-1} (Jozefowicz et al. 2015)."""
    T, H = 20, 4
    m = nn.LSTM(2, H, batch_first=True).double()
    with torch.no_grad():
        for q in m.parameters():
            q.zero_()
        m.bias_ih_l0[H:2 * H] = 1.0  # effective forget bias b_if + b_hf = 1
    tr = rnnviz.trace(m, torch.zeros(1, T, 2, dtype=torch.float64), lambda o: o[:, -1].sum())
    dc = tr.grad_cell[0, 0, 0, :, 0]
    ratio = dc[:-1] / dc[-1]
    f = 1 / (1 + math.exp(-1.0))
    expected = torch.tensor([f ** (T - 1 - t) for t in range(T - 1)], dtype=torch.float64)
    assert torch.allclose(ratio, expected, rtol=1e-12)


# ------------------------------------------------------------------------------------------------------
# Truncated BPTT


def chunked_native(m, x, loss_fn, k):
    """Run the *native* module chunk by chunk, detaching the state; return its parameter gradients."""
    m.zero_grad(set_to_none=True)
    T = x.shape[1]
    hx, outs = None, []
    for s in range(0, T, k):
        if hx is not None:
            hx = tuple(h.detach() for h in hx) if isinstance(hx, tuple) else hx.detach()
        o, hx = m(x[:, s:s + k], hx)
        outs.append(o)
    loss_fn(torch.cat(outs, dim=1)).backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 3, 5, 12, 40])
def test_truncation_equals_native_chunk_by_chunk(mode, k):
    m = make(mode, layers=2, batch_first=True)
    x = torch.randn(3, 12, 3, dtype=torch.float64)
    tr = rnnviz.trace(m, x, sum_loss, truncation=k)
    want = chunked_native(m, x, sum_loss, k)
    for n in want:
        assert_close(tr.param_grads[n], want[n], rtol=1e-10, atol=1e-13, what=f"{n} k={k}")
    # and the training-side forward has the same semantics
    out, _ = truncated_forward(m, x, None, k)
    sum_loss(out).backward()
    for n, p in m.named_parameters():
        assert_close(p.grad, want[n], rtol=1e-10, atol=1e-13, what=f"truncated_forward {n} k={k}")
    m.zero_grad(set_to_none=True)


@pytest.mark.parametrize("mode", MODES)
def test_truncated_forward_bidirectional_matches_reference(mode):
    m = make(mode, layers=2, bidirectional=True, batch_first=False)
    x = torch.randn(10, 2, 3, dtype=torch.float64)
    out, _ = truncated_forward(m, x, None, 4)
    sum_loss(out).backward()
    ref = reference(m, x, sum_loss, truncation=4)
    assert_close(out.detach(), ref["output"], rtol=0, atol=1e-12, what="output")
    for n, p in m.named_parameters():
        assert_close(p.grad, ref["param_grads"][n], rtol=1e-10, atol=1e-13, what=n)


@pytest.mark.parametrize("mode", MODES)
def test_truncation_cuts_gradient_exactly(mode):
    """Loss at the last step only: steps before the last window get exactly zero gradient."""
    T, k = 23, 5
    m = make(mode)
    x = torch.randn(2, T, 3, dtype=torch.float64)
    tr = rnnviz.trace(m, x, lambda o: o[:, -1].sum(), truncation=k)
    last_chunk_start = ((T - 1) // k) * k  # 20
    g = tr.grad_norm[0, 0]
    assert (g[:last_chunk_start] == 0).all()
    assert (g[last_chunk_start:] > 0).all()
    full = rnnviz.trace(m, x, lambda o: o[:, -1].sum())
    assert (full.grad_norm[0, 0] > 0).all()
    # within the last window truncation changes nothing
    assert torch.allclose(full.grad_hidden[..., last_chunk_start:, :], tr.grad_hidden[..., last_chunk_start:, :])


@pytest.mark.parametrize("mode", MODES)
def test_window_at_least_T_equals_full_bptt(mode):
    m = make(mode, 2, True)
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    a, b = rnnviz.trace(m, x, sum_loss), rnnviz.trace(m, x, sum_loss, truncation=9)
    c = rnnviz.trace(m, x, sum_loss, truncation=1000)
    assert torch.equal(a.grad_hidden, b.grad_hidden) and torch.equal(a.grad_hidden, c.grad_hidden)


# ------------------------------------------------------------------------------------------------------
# Contract details


@pytest.mark.parametrize("mode", MODES)
def test_module_is_only_read(mode):
    m = make(mode, 2, True, dtype=torch.float32)
    m.train()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    for p in m.parameters():
        p.grad = torch.full_like(p, 7.0)
    rnnviz.trace(m, torch.randn(2, 5, 3), truncation=2)
    assert m.training
    for n, p in m.named_parameters():
        assert torch.equal(p.detach(), before[n])
        assert torch.equal(p.grad, torch.full_like(p, 7.0))
        assert p.requires_grad


def test_loss_fn_receives_exactly_the_module_output():
    seen = {}
    m = make("LSTM", 2, True, batch_first=False)
    x = torch.randn(6, 3, 3, dtype=torch.float64)

    def loss_fn(out):
        seen["out"] = out.detach().clone()
        return out.sum()

    rnnviz.trace(m, x, loss_fn)
    want = m(x)[0].detach()
    assert seen["out"].shape == want.shape == (6, 3, 10)  # the module's own (time-major) layout
    assert_close(seen["out"], want, rtol=0, atol=1e-14, what="output given to loss_fn")


def test_default_loss_is_mean_square_of_final_states():
    m = make("GRU", 1, True)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    out = m(x)[0].detach()
    expected = torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=-1).pow(2).mean()
    assert rnnviz.trace(m, x).loss == pytest.approx(expected.item(), rel=1e-12)


def test_head_gradients_are_not_touched():
    """A caller's head inside loss_fn keeps its .grad (trace uses autograd.grad, not backward)."""
    m = make("RNN_TANH", dtype=torch.float32)
    head = nn.Linear(5, 1)
    rnnviz.trace(m, torch.randn(2, 4, 3), lambda o: head(o[:, -1]).pow(2).mean())
    assert head.weight.grad is None


def test_frames():
    m = make("LSTM", 2, True, dtype=torch.float32)
    tr = rnnviz.trace(m, torch.randn(3, 7, 3))
    df = tr.grad_norm_frame()
    assert list(df.columns) == ["layer", "direction", "t", "grad_norm", "log10_grad_norm"]
    assert len(df) == 2 * 2 * 7
    row = df[(df.layer == 1) & (df.direction == 1) & (df.t == 3)].iloc[0]
    assert row.grad_norm == pytest.approx(tr.grad_norm[1, 1, 3].item())
    gs = tr.gate_stats_frame()
    assert set(gs.gate) == {"input", "forget", "cell", "output"} and len(gs) == 4 * 2 * 2
    assert ((gs.frac_low >= 0) & (gs.frac_high <= 1)).all()


# ------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda m: rnnviz.trace(nn.Linear(3, 5), torch.randn(2, 4, 3)), TypeError, "nn.RNN, nn.LSTM or nn.GRU"),
        (lambda m: rnnviz.trace(m, [[1.0]]), TypeError, "torch.Tensor"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3, 1)), ValueError, "rank"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 7)), ValueError, "input_size=3"),
        (lambda m: rnnviz.trace(m, torch.zeros(2, 4, 3, dtype=torch.long)), TypeError, "floating"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3, dtype=torch.float64)), TypeError, "dtype"),
        (lambda m: rnnviz.trace(m, torch.full((2, 4, 3), float("nan"))), ValueError, "NaN"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 0, 3)), ValueError, "at least one time step"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3), lambda o: o), ValueError, "scalar"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3), lambda o: 1.0), TypeError, "torch.Tensor"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3), lambda o: torch.tensor(1.0)), ValueError, "depend"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3), "mse"), TypeError, "callable"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3), truncation=0), ValueError, "truncation"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3), truncation=2.5), TypeError, "truncation"),
        (lambda m: rnnviz.trace(m, torch.randn(2, 4, 3), h0=torch.zeros(1, 3, 5)), ValueError, "h0 must have shape"),
        (lambda m: rnnviz.trace(nn.LSTM(3, 5, proj_size=2), torch.randn(2, 4, 3)), ValueError, "proj_size"),
        (lambda m: rnnviz.trace(nn.LSTM(3, 5), torch.randn(4, 2, 3), h0=torch.zeros(1, 2, 5)), TypeError, "tuple"),
    ],
)
def test_bad_input_gets_a_clear_error(call, exc, match):
    m = nn.GRU(3, 5, batch_first=True)
    with pytest.raises(exc, match=match):
        call(m)


def test_float32_tiny_gradients_do_not_underflow_in_the_norm():
    """||dL/dh_0|| = 0.1^29 ~ 1e-29: each float32 entry is representable, its square is not. The norm must not
    read 0 (which the pages would show as 'cut by truncation')."""
    T, H = 30, 16
    m = nn.RNN(4, H, batch_first=True)
    with torch.no_grad():
        for q in m.parameters():
            q.zero_()
        Q, _ = torch.linalg.qr(torch.randn(H, H, generator=torch.Generator().manual_seed(2)))
        m.weight_hh_l0.copy_(0.1 * Q)
    v = torch.randn(H)
    tr = rnnviz.trace(m, torch.zeros(1, T, 4), lambda o: (o[:, -1] @ v).sum())
    assert tr.grad_norm.dtype == torch.float64
    assert tr.grad_norm[0, 0, 0].item() == pytest.approx(0.1 ** 29 * v.norm().item(), rel=1e-4)
