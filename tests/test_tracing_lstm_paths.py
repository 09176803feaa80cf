"""The LSTM trace's three paths (kernel, explicit, ext) against the unrolled reference and each other, and the
compiled extension's contract: built off the caller's path, every failure silently back to the eager path."""

import itertools
import os
import threading
import time

import pytest
import torch
from test_tracing import assert_close, make, reference, sum_loss

import rnnviz
from rnnviz import _lstm_ext

PATHS = ["kernel", "explicit", "ext"]
TOL = dict(rtol=1e-10, atol=1e-12)  # as test_tracing's float64 oracle tests


@pytest.fixture(scope="module")
def ext():
    mod = _lstm_ext.build()
    if mod is None:
        why = f"the LSTM extension cannot be built here: {_lstm_ext._state['error']!r}"
        if os.environ.get("CI") == "true":  # .ci/run installs g++ and ninja: there the compiled path must be tested
            pytest.fail(why)
        pytest.skip(why)
    return mod


def _trace(m, x, path, **kw):
    if path == "ext" and _lstm_ext.build() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the LSTM extension cannot be built in CI: {_lstm_ext._state['error']!r}")
        pytest.skip("the LSTM extension cannot be built here")
    return rnnviz.trace(m, x, sum_loss, _lstm_path=path, **kw)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("layers,bidirectional,batch_first,bias,truncation", [
    c for c in itertools.product([1, 2], [False, True], [True, False], [True, False], [None, 3])
    if not (c[3] is False and (c[2] is False or c[4] is not None))])
def test_path_matches_unrolled_reference_float64(path, layers, bidirectional, batch_first, bias, truncation):
    m = make("LSTM", layers, bidirectional, batch_first, bias)
    x = torch.randn((4, 8, 3) if batch_first else (8, 4, 3), dtype=torch.float64)
    h0 = torch.randn(layers * (2 if bidirectional else 1), 4, 5, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0))
    tr = _trace(m, x, path, h0=hx, truncation=truncation)
    ref = reference(m, x, sum_loss, h0=hx, truncation=truncation)
    for name in ("output", "hidden", "cell", "grad_hidden", "grad_input"):
        assert_close(getattr(tr, name), ref[name], what=name, **TOL)
    for name, g in tr.gates.items():
        assert_close(g, ref["gates"][name], what=f"gate {name}", **TOL)
    assert list(tr.param_grads) == [n for n, _ in m.named_parameters()]
    for n, g in tr.param_grads.items():
        assert g.is_contiguous()
        assert_close(g, ref["param_grads"][n], what=f"grad {n}", **TOL)
    assert tr.loss == pytest.approx(ref["loss"], rel=1e-12)


@pytest.mark.parametrize("path", ["explicit", "ext"])
@pytest.mark.parametrize("k", [None, 1, 4, 40])
def test_path_equals_kernel_path(path, k):
    """Every field of the Trace, float64, against the kernel path (the default until the extension is loaded)."""
    m = make("LSTM", 3, True, True, hidden=7)
    x = torch.randn(3, 13, 3, dtype=torch.float64)
    a, b = _trace(m, x, "kernel", truncation=k), _trace(m, x, path, truncation=k)
    for name in ("output", "h_n", "c_n", "hidden", "cell", "grad_hidden", "grad_norm", "grad_input", "grad_cell"):
        assert_close(getattr(b, name), getattr(a, name), what=name, **TOL)
    for name in a.gates:
        assert_close(b.gates[name], a.gates[name], what=name, **TOL)
    for n in a.param_grads:
        assert_close(b.param_grads[n], a.param_grads[n], what=n, **TOL)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_ext_float32_matches_native_module(ext, bidirectional):
    """As test_tracing's float32 test: 1e-5 states, 1e-4 relative gradients against nn.LSTM itself."""
    m = make("LSTM", 2, bidirectional, True, dtype=torch.float32, hidden=16, input_size=4)
    x = torch.randn(6, 20, 4)
    h0 = torch.randn(2 * (2 if bidirectional else 1), 6, 16) * 0.5
    hx = (h0, torch.randn_like(h0) * 0.5)
    tr = rnnviz.trace(m, x, sum_loss, h0=hx, _lstm_path="ext")
    xr = x.clone().requires_grad_()
    out, (h_n, c_n) = m(xr, hx)
    sum_loss(out).backward()
    assert_close(tr.output, out.detach(), rtol=0, atol=1e-5, what="output")
    assert_close(tr.c_n, c_n.detach(), rtol=0, atol=1e-5, what="c_n")
    for n, p in m.named_parameters():
        assert_close(tr.param_grads[n], p.grad, rtol=1e-4, atol=1e-7, what=f"grad {n}")
    assert_close(tr.grad_input, xr.grad, rtol=1e-4, atol=1e-7, what="grad_input")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (3, 5, 7), (4, 64, 64), (5, 33, 65), (8, 32, 128), (13, 100, 129),
                                   (32, 256, 64), (7, 1, 200)])
def test_compiled_matmul_matches_torch(ext, dtype, M, K, N):
    """The per-step product of both loops (AVX-512 tiles of 4 rows x 64 columns for float32, masked at the edges;
    addmm otherwise) on shapes that leave every kind of remainder."""
    x, w = torch.randn(M, K, dtype=dtype), torch.randn(K, N, dtype=dtype)
    want = (x.double() @ w.double())
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else TOL
    assert_close(ext.matmul(x, w).double(), want, what="matmul", **tol)


@pytest.mark.parametrize("layers,bidirectional,hidden,batch", [(1, False, 37, 5), (2, True, 70, 3), (1, True, 5, 9)])
def test_ext_float32_odd_sizes_match_native_module(ext, layers, bidirectional, hidden, batch):
    """float32 through the compiled loops with sizes off the kernel's tile and SIMD widths, truncated, against the
    unrolled reference (run in float32 too)."""
    m = make("LSTM", layers, bidirectional, True, dtype=torch.float32, hidden=hidden, input_size=3)
    x = torch.randn(batch, 11, 3)
    tr = rnnviz.trace(m, x, sum_loss, _lstm_path="ext", truncation=4)
    ref = reference(m, x, sum_loss, truncation=4)
    assert_close(tr.output, ref["output"], rtol=0, atol=1e-5, what="output")
    assert_close(tr.grad_hidden, ref["grad_hidden"], rtol=1e-4, atol=1e-6, what="grad_hidden")
    for n, g in tr.param_grads.items():
        assert_close(g, ref["param_grads"][n], rtol=1e-4, atol=1e-5, what=f"grad {n}")


def test_auto_uses_the_ext_once_loaded(ext, monkeypatch):
    calls, orig = [], ext.lstm_backward

    def spy(*a):
        calls.append(1)
        return orig(*a)

    monkeypatch.setattr(ext, "lstm_backward", spy)
    m = make("LSTM", 1, False, True)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    assert _lstm_ext.lstm_ext() is ext
    tr = rnnviz.trace(m, x, sum_loss)
    assert calls, "trace did not use the loaded extension"
    assert_close(tr.grad_hidden, rnnviz.trace(m, x, sum_loss, _lstm_path="kernel").grad_hidden, what="d", **TOL)


@pytest.fixture
def fresh_state(monkeypatch):
    """A process that has not loaded the extension yet (restored afterwards)."""
    monkeypatch.setattr(_lstm_ext, "_state", {"ext": None, "started": False, "error": None})
    return _lstm_ext._state


def test_first_use_does_not_wait_for_the_build(fresh_state, monkeypatch):
    """lstm_ext() starts the build in a background thread and returns None at once; trace runs eagerly."""
    release = threading.Event()

    def slow_build():
        release.wait(10)
        raise RuntimeError("no compiler")

    monkeypatch.setattr(_lstm_ext, "_build", slow_build)
    monkeypatch.delenv("RNNVIZ_LSTM_EXT", raising=False)
    m = make("LSTM", 1, False, True)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    t0 = time.perf_counter()
    tr = rnnviz.trace(m, x, sum_loss)  # starts the build, does not wait for it
    assert time.perf_counter() - t0 < 5
    assert fresh_state["started"] and fresh_state["ext"] is None
    release.set()
    for _ in range(100):
        if fresh_state["error"] is not None:
            break
        time.sleep(0.05)
    assert isinstance(fresh_state["error"], RuntimeError)  # failed, silently
    assert _lstm_ext.lstm_ext() is None
    again = rnnviz.trace(m, x, sum_loss)  # still the eager path, same numbers
    assert torch.equal(again.grad_hidden, tr.grad_hidden)


def test_disabled_by_environment(fresh_state, monkeypatch):
    monkeypatch.setenv("RNNVIZ_LSTM_EXT", "0")
    monkeypatch.setattr(_lstm_ext, "_build", lambda: pytest.fail("built although disabled"))
    assert _lstm_ext.lstm_ext() is None and _lstm_ext.build() is None
    assert not fresh_state["started"]
    rnnviz.trace(make("LSTM"), torch.randn(2, 4, 3, dtype=torch.float64), sum_loss)


def test_ext_path_raises_when_unavailable(fresh_state, monkeypatch):
    monkeypatch.setattr(_lstm_ext, "_build", lambda: (_ for _ in ()).throw(OSError("no gcc")))
    with pytest.raises(RuntimeError, match="not available"):
        rnnviz.trace(make("LSTM"), torch.randn(2, 4, 3, dtype=torch.float64), sum_loss, _lstm_path="ext")
