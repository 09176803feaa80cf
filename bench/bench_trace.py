"""Speed of rnnviz.trace vs the native module's forward+backward, measured side by side.

    python bench/bench_trace.py [--repeats 15] [--threads 1] [--part all|cells|lstm|loop|gemm]

cells: RNN/LSTM/GRU at two sizes, the median time of native fwd+bwd and of trace, and their ratio (trace / native).
lstm:  the LSTM over the dashboard's shapes (hidden 32-256, T 20-1000, batch 8-128, layers 1-3, bidirectional),
       each of trace's LSTM paths against native: kernel (the fused kernel's backward on zero-augmented input),
       explicit (the eager backward recursion), ext (the compiled forward and backward loops, rnnviz/_lstm_ext.py).
loop:  the LSTM backward recursion alone (one layer, gates given), fused in each way tried: eager torch ops, the
       loop under TorchScript, a torch.compile (inductor, C++) per-step cell, inductor for the step-independent
       factors + the eager loop, and the C++ extension. Compile times are printed, not counted.
gemm:  the trace's GEMMs: the compiled per-step kernel vs ATen's addmm, oneDNN's matmul vs torch.mm.
Everything runs in this process, interleaved, so machine noise hits all alike. Goal: ratio <= 1.5.
One torch thread by default, as the dashboard (app.py) sets.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rnnviz  # noqa: E402
from rnnviz import _lstm_ext  # noqa: E402
from rnnviz.tracing import _lstm_backward  # noqa: E402

SIZES = [(32, 100, 8, 64), (8, 1000, 8, 256)]  # (batch, time, input, hidden)
CELLS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
# (batch, time, input, hidden, layers, bidirectional): the probe batch (8) and training batches, presets' sizes
LSTM_SHAPES = [(8, 50, 2, 32, 1, False), (32, 50, 2, 32, 1, False), (8, 100, 8, 64, 2, False),
               (32, 100, 8, 64, 1, False), (32, 50, 8, 64, 2, True), (128, 50, 8, 128, 1, False),
               (32, 20, 8, 256, 2, False), (64, 100, 8, 128, 3, False), (8, 50, 16, 256, 1, True),
               (8, 1000, 8, 256, 1, False)]
LSTM_PATHS = ("kernel", "explicit", "ext")


def native(m, x):
    m.zero_grad(set_to_none=True)
    out, _ = m(x)
    out[:, -1].pow(2).mean().backward()


def interleaved(fs: dict, repeats: int) -> dict:
    """Median ms of each callable, run round-robin after one warm-up call each."""
    for f in fs.values():
        f()
    ts = {n: [] for n in fs}
    for _ in range(repeats):
        for n, f in fs.items():
            t0 = time.perf_counter()
            f()
            ts[n].append(time.perf_counter() - t0)
    return {n: statistics.median(v) * 1e3 for n, v in ts.items()}


def part_cells(repeats):
    print(f"{'cell':5} {'(B, T, in, H)':>18} {'native ms':>10} {'trace ms':>10} {'ratio':>6}")
    worst = 0.0
    for B, T, I, H in SIZES:
        x = torch.randn(B, T, I)
        for name, cls in CELLS.items():
            m = cls(I, H, batch_first=True)
            r = interleaved({"native": lambda m=m, x=x: native(m, x), "trace": lambda m=m, x=x: rnnviz.trace(m, x)},
                            repeats)
            worst = max(worst, r["trace"] / r["native"])
            print(f"{name:5} {str((B, T, I, H)):>18} {r['native']:10.2f} {r['trace']:10.2f} "
                  f"{r['trace'] / r['native']:6.2f}", flush=True)
    print(f"worst ratio {worst:.2f} (goal <= 1.5); LSTM path used by trace: "
          f"{'ext' if _lstm_ext.lstm_ext() is not None else 'kernel'}")


def part_lstm(repeats):
    paths = [p for p in LSTM_PATHS if p != "ext" or _lstm_ext.build() is not None]
    print(f"LSTM: ratio to native fwd+bwd per path ({', '.join(paths)}); native in ms")
    print(f"{'(B, T, in, H, layers, bidir)':>30} {'native':>8} " + " ".join(f"{p:>8}" for p in paths) + "  best")
    best = {}
    for B, T, I, H, L, bd in LSTM_SHAPES:
        m = nn.LSTM(I, H, L, batch_first=True, bidirectional=bd)
        x = torch.randn(B, T, I)
        fs = {"native": lambda m=m, x=x: native(m, x)}
        fs.update({p: (lambda p=p, m=m, x=x: rnnviz.trace(m, x, _lstm_path=p)) for p in paths})
        r = interleaved(fs, repeats)
        ratios = {p: r[p] / r["native"] for p in paths}
        b = min(ratios, key=ratios.get)
        best[(B, T, I, H, L, bd)] = (b, ratios[b])
        print(f"{str((B, T, I, H, L, bd)):>30} {r['native']:8.2f} " + " ".join(f"{ratios[p]:8.2f}" for p in paths)
              + f"  {b}", flush=True)
    print(f"worst best-path ratio {max(v[1] for v in best.values()):.2f} (goal <= 1.5)")


# ---- the backward recursion alone, fused in each way tried


def _loop_inputs(T, D, B, H):
    g = torch.Generator().manual_seed(0)
    pre = torch.randn(T, D, B, 4 * H, generator=g)
    act = torch.cat([pre[..., :2 * H].sigmoid(), pre[..., 2 * H:3 * H].tanh(), pre[..., 3 * H:].sigmoid()], -1)
    i, f, gg, o = act.chunk(4, dim=-1)
    c0 = torch.randn(D, B, H, generator=g)
    c, cp = torch.empty(T, D, B, H), c0
    for s in range(T):
        cp = c[s] = f[s] * cp + i[s] * gg[s]
    st = {"input": i, "forget": f, "cell": gg, "output": o, "c": c, "tc": c.tanh(), "act": act, "c0": c0,
          "W_hh": torch.randn(D, 4 * H, H, generator=g) / H ** 0.5}
    return st, torch.randn(T, D, B, H, generator=g) * 1e-3


def _coef(i, f, g, o, c, c0):  # the factors that do not depend on d: (T, D, B, 5, H)
    c_prev = torch.cat([c0.unsqueeze(0), c[:-1]], dim=0)
    tc = c.tanh()
    return torch.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o),
                        o * (1 - tc * tc)], dim=3)


def _ts_loop(d, e, f, coef, W_hh):
    T, D, B, H = e.shape
    buf = torch.empty([T, D, B, 5, H], dtype=e.dtype)
    for s in range(T - 1, -1, -1):
        torch.mul(d[s].unsqueeze(2), coef[s, :, :, 3:], out=buf[s, :, :, 3:])
        if s < T - 1:
            buf[s, :, :, 4].addcmul_(f[s + 1], buf[s + 1, :, :, 4])
        torch.mul(buf[s, :, :, 4:], coef[s, :, :, :3], out=buf[s, :, :, :3])
        if s > 0:
            torch.baddbmm(e[s - 1], buf[s, :, :, :4].reshape(D, B, 4 * H), W_hh, out=d[s - 1])
    return buf


def _cell_step(d, dc_next, f_next, coef):  # one step's elementwise work: d, dc_next, f_next (D, B, H),
    # coef (D, B, 5, H)
    dc = d * coef[:, :, 4] + f_next * dc_next
    return dc, torch.cat([dc.unsqueeze(2) * coef[:, :, :3], (d * coef[:, :, 3]).unsqueeze(2)], dim=2).flatten(2)


def _flip_reverse(t):  # (T, D, ...) processing order <-> position order: the reverse direction flipped in time
    return t if t.shape[1] == 1 else torch.stack([t[:, 0], t[:, 1].flip(0)], dim=1)


def _pos(t):  # (T, D, B, X) processing order -> (T, B, D, X) position order, the compiled loops' layout
    return _flip_reverse(t).transpose(1, 2).contiguous()


def _ext_backward(ext, st, e):
    d = _pos(e)  # e in, the total dL/dh out
    ext.lstm_backward(d, _pos(st["act"]), _pos(st["c"]), _pos(st["tc"]), st["c0"].contiguous(), st["W_hh"], 0)
    return _flip_reverse(d.transpose(1, 2))  # back to (T, D, B, H) processing order, as the eager variant's


def part_gemm(repeats):
    """The trace's GEMMs: the per-step recurrent product (the compiled kernel vs ATen's addmm) and the big
    all-steps products (oneDNN's matmul, as rnnviz.tracing._mm_nt calls it, vs torch.mm)."""
    ext = _lstm_ext.build()
    lp = torch.ops.mkldnn._linear_pointwise
    print("per-step product y += x W, us (GFLOPS): (M, K, N) = (batch, K, N) of the LSTM loops; the kernel's time "
          "includes allocating y (inside the loops it is not)")
    for M, K, N in [(8, 32, 128), (8, 128, 32), (32, 64, 256), (32, 256, 64), (8, 256, 1024), (8, 1024, 256),
                    (128, 128, 512)]:
        x, w, y = torch.randn(M, K), torch.randn(K, N), torch.zeros(M, N)
        fs = {"addmm": lambda x=x, w=w, y=y: torch.addmm(y, x, w, out=y)}
        if ext is not None:
            fs["kernel"] = lambda x=x, w=w: ext.matmul(x, w)
        r = interleaved(fs, repeats * 20)
        print(f"  {str((M, K, N)):>16} " + "  ".join(f"{n} {t * 1e3:7.2f} ({2 * M * K * N / t / 1e6:4.0f})"
                                                    for n, t in r.items()), flush=True)
    print("all-steps product a @ b^T, ms (GFLOPS)")
    for M, K, N in [(3200, 8, 256), (3200, 64, 256), (400, 256, 1024), (6400, 128, 512)]:
        a, b = torch.randn(M, K), torch.randn(N, K)
        r = interleaved({"torch.mm": lambda a=a, b=b: a @ b.t(),
                         "oneDNN": lambda a=a, b=b: lp(a, b, None, "none", [], "")}, repeats)
        print(f"  {str((M, K, N)):>16} " + "  ".join(f"{n} {t:6.3f} ({2 * M * K * N / t / 1e6:4.0f})"
                                                    for n, t in r.items()), flush=True)


def part_loop(repeats):
    t0 = time.perf_counter()
    ts_loop = torch.jit.script(_ts_loop)
    print(f"TorchScript: script {time.perf_counter() - t0:.2f} s")
    compiled = {}
    try:
        t0 = time.perf_counter()
        compiled["coef"] = torch.compile(_coef, dynamic=True)
        compiled["step"] = torch.compile(_cell_step, dynamic=True)
        st, e = _loop_inputs(4, 1, 2, 3)
        compiled["coef"](st["input"], st["forget"], st["cell"], st["output"], st["c"], st["c0"])
        compiled["step"](e[0], e[1], e[2], torch.zeros(1, 2, 5, 3))
        print(f"inductor: first compile {time.perf_counter() - t0:.1f} s (dynamic shapes; cached on disk after)")
    except Exception as exc:  # noqa: BLE001 - report and go on without it
        print(f"inductor unavailable: {exc!r}")
    t0 = time.perf_counter()
    ext = _lstm_ext.build()
    status = "ok" if ext else _lstm_ext._state["error"]
    print(f"C++ extension: build or load {time.perf_counter() - t0:.1f} s ({status})")

    def eager(st, e):
        return _lstm_backward(st, e, None)

    def script(st, e):
        coef = _coef(st["input"], st["forget"], st["cell"], st["output"], st["c"], st["c0"])
        d = e.clone()
        return ts_loop(d, e, st["forget"], coef, st["W_hh"])

    def step_compiled(st, e, coef_fn=_coef):
        T, D, B, H = e.shape
        coef = coef_fn(st["input"], st["forget"], st["cell"], st["output"], st["c"], st["c0"])
        d, f, da = e.clone(), st["forget"], torch.empty(T, D, B, 4 * H)
        dc = torch.zeros(D, B, H)
        for s in range(T - 1, -1, -1):
            dc, da[s] = compiled["step"](d[s], dc, f[s + 1] if s < T - 1 else f[s], coef[s])
            if s > 0:
                torch.baddbmm(e[s - 1], da[s], st["W_hh"], out=d[s - 1])
        return d

    def coef_compiled(st, e):  # the inductor factors, then the eager loop's four ops per step
        coef = compiled["coef"](st["input"], st["forget"], st["cell"], st["output"], st["c"], st["c0"])
        d = e.clone()
        _ts_loop(d, e, st["forget"], coef, st["W_hh"])  # the loop TorchScript compiles, run eagerly
        return d

    variants = {"eager": eager, "script": script}
    if compiled:
        variants.update({"ind-step": step_compiled, "ind-coef": coef_compiled})
    if ext is not None:
        variants["ext"] = lambda st, e: _ext_backward(ext, st, e)
    print("LSTM backward recursion alone (one layer, gates given), ms; exactness vs eager in max |diff| of d")
    print(f"{'(T, D, B, H)':>18} " + " ".join(f"{n:>9}" for n in variants) + "  max|diff|")
    for T, B, H, D in [(50, 8, 32, 1), (100, 32, 64, 1), (50, 128, 128, 1), (50, 32, 64, 2), (1000, 8, 256, 1)]:
        st, e = _loop_inputs(T, D, B, H)
        ref = eager(st, e)[0]
        diffs = []
        for fn in variants.values():
            out = fn(st, e)
            d = out[0] if isinstance(out, tuple) else (out if out.shape == ref.shape else None)
            if d is not None:
                diffs.append((d - ref).abs().max().item())
        r = interleaved({n: (lambda fn=fn, st=st, e=e: fn(st, e)) for n, fn in variants.items()}, repeats)
        print(f"{str((T, D, B, H)):>18} " + " ".join(f"{r[n]:9.2f}" for n in variants)
              + f"  {max(diffs):.1e}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the dashboard uses 1; 0 = torch's default)")
    ap.add_argument("--part", choices=["all", "cells", "lstm", "loop", "gemm"], default="all")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    if args.part in ("all", "lstm", "cells"):
        _lstm_ext.build()  # loaded (or built) before timing, as a running server has it after its background build
    if args.part in ("all", "cells"):
        part_cells(args.repeats)
    if args.part in ("all", "lstm"):
        part_lstm(args.repeats)
    if args.part in ("all", "loop"):
        part_loop(args.repeats)
    if args.part in ("all", "gemm"):
        part_gemm(args.repeats)


if __name__ == "__main__":
    main()
