"""The LSTM trace's backward recursion as one compiled C++ loop (a torch extension built with the system's C++
compiler), so each step's elementwise work is one fused pass in cache instead of several small torch ops.

    ext = lstm_ext()            # the loaded module, or None: not built yet (a build starts in the background),
                                # failed, or disabled (RNNVIZ_LSTM_EXT=0)
    build()                     # build or load now, blocking (tests, benches); returns the module or None

Never on a request's path: the first `lstm_ext()` starts a daemon thread at the lowest CPU priority that builds
the extension in a private temporary directory (no shared lock a killed process could leave behind), then
copies the shared object into the cache ($RNNVIZ_CACHE, else ~/.cache/rnnviz) under a name carrying the
source's hash; later processes only load it (well under a second, also in the background). Until it is
loaded, and forever if the build fails (no compiler, no ninja, an unwritable cache), callers use the eager
path: every failure is silent.

Two loops: the cell-state scan c_t = f_t c_{t-1} + i_t g_t (forward, all steps), and the backward recursion
(processing order, s from T-1 down to 0; cuts where truncation detached the state):
    dc_s = d_s o_s (1 - tanh^2 c_s) + f_{s+1} dc_{s+1}
    da_s = [dc_s g_s i_s(1-i_s) | dc_s c_{s-1} f_s(1-f_s) | dc_s i_s(1-g_s^2) | d_s tanh(c_s) o_s(1-o_s)]
    d_{s-1} = e_{s-1} + W_hh^T da_s      (ATen's addmm, per direction)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

CPP = r"""
#include <torch/extension.h>

// act (T, D, B, 4H): the activated gates i, f, g, o. c0 (D, B, H). Returns c (T, D, B, H): c_t = f_t c_{t-1} + i_t g_t.
torch::Tensor lstm_cell_scan(torch::Tensor act, torch::Tensor c0) {
  const int64_t T = act.size(0), D = act.size(1), B = act.size(2), H = act.size(3) / 4, N = D * B;
  auto c = torch::empty({T, D, B, H}, act.options());
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "lstm_cell_scan", [&] {
    const scalar_t* pa = act.data_ptr<scalar_t>();
    const scalar_t* pc0 = c0.data_ptr<scalar_t>();
    scalar_t* pc = c.data_ptr<scalar_t>();
    for (int64_t s = 0; s < T; ++s) {
      for (int64_t r = 0; r < N; ++r) {
        const scalar_t* a = pa + (s * N + r) * 4 * H;
        const scalar_t* cp = s > 0 ? pc + ((s - 1) * N + r) * H : pc0 + r * H;
        scalar_t* out = pc + (s * N + r) * H;
        for (int64_t h = 0; h < H; ++h) out[h] = a[h] * a[2 * H + h] + a[H + h] * cp[h];
      }
    }
  });
  return c;
}

// d (T, D, B, H): on entry the direct gradient e, on exit the total dL/dh. e (T, D, B, H). act (T, D, B, 4H):
// the activated gates i, f, g, o. c, tc (T, D, B, H): c_t and tanh(c_t). c0 (D, B, H). W (D, 4H, H).
// k: truncation window, 0 for none. Returns da (T, D, B, 4H), the pre-activation gradients.
torch::Tensor lstm_backward(torch::Tensor d, torch::Tensor e, torch::Tensor act, torch::Tensor c,
                            torch::Tensor tc, torch::Tensor c0, torch::Tensor W, int64_t k) {
  const int64_t T = e.size(0), D = e.size(1), B = e.size(2), H = e.size(3), N = D * B;
  auto da = torch::empty({T, D, B, 4 * H}, e.options());
  auto dcbuf = torch::zeros({2, N, H}, e.options());
  AT_DISPATCH_FLOATING_TYPES(e.scalar_type(), "lstm_backward", [&] {
    scalar_t* pd = d.data_ptr<scalar_t>();
    const scalar_t* pa = act.data_ptr<scalar_t>();
    const scalar_t* pc = c.data_ptr<scalar_t>();
    const scalar_t* ptc = tc.data_ptr<scalar_t>();
    const scalar_t* pc0 = c0.data_ptr<scalar_t>();
    scalar_t* pda = da.data_ptr<scalar_t>();
    scalar_t* pdc = dcbuf.data_ptr<scalar_t>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const bool carry = s < T - 1 && (k == 0 || (s + 1) % k != 0);
      scalar_t* dcs = pdc + (s & 1) * N * H;
      const scalar_t* dcn = pdc + ((s + 1) & 1) * N * H;
      for (int64_t r = 0; r < N; ++r) {
        const scalar_t* a = pa + (s * N + r) * 4 * H;
        const scalar_t* fn = pa + ((s + 1) * N + r) * 4 * H + H;  // f_{s+1}: read only when carry
        const scalar_t* cp = s > 0 ? pc + ((s - 1) * N + r) * H : pc0 + r * H;
        const scalar_t* t = ptc + (s * N + r) * H;
        const scalar_t* dv = pd + (s * N + r) * H;
        const scalar_t* dn = dcn + r * H;
        scalar_t* dc = dcs + r * H;
        scalar_t* out = pda + (s * N + r) * 4 * H;
        if (carry) {
          for (int64_t h = 0; h < H; ++h) dc[h] = dv[h] * a[3 * H + h] * (1 - t[h] * t[h]) + fn[h] * dn[h];
        } else {
          for (int64_t h = 0; h < H; ++h) dc[h] = dv[h] * a[3 * H + h] * (1 - t[h] * t[h]);
        }
        for (int64_t h = 0; h < H; ++h) {
          const scalar_t i = a[h], f = a[H + h], g = a[2 * H + h], o = a[3 * H + h], x = dc[h];
          out[h] = x * g * i * (1 - i);
          out[H + h] = x * cp[h] * f * (1 - f);
          out[2 * H + h] = x * i * (1 - g * g);
          out[3 * H + h] = dv[h] * t[h] * o * (1 - o);
        }
      }
      if (s > 0 && (k == 0 || s % k != 0)) {
        auto dprev = d.select(0, s - 1), eprev = e.select(0, s - 1), das = da.select(0, s);
        for (int64_t j = 0; j < D; ++j) {
          auto o = dprev.select(0, j);
          at::addmm_out(o, eprev.select(0, j), das.select(0, j), W.select(0, j));
        }
      }
    }
  });
  return da;
}
"""

_lock = threading.Lock()  # guards starting the background thread
_build_lock = threading.Lock()  # one build at a time in this process
_state: dict = {"ext": None, "started": False, "error": None}


def _cache_dir() -> Path:
    return Path(os.environ.get("RNNVIZ_CACHE") or Path.home() / ".cache" / "rnnviz")


def _disabled() -> bool:
    return os.environ.get("RNNVIZ_LSTM_EXT", "1").strip().lower() in ("0", "false", "no", "off")


def _so_name() -> str:
    import torch

    tag = f"{CPP}|{torch.__version__}|{sys.version_info[:2]}"
    return f"rnnviz_lstm_{hashlib.sha256(tag.encode()).hexdigest()[:16]}"


def _import(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build():
    """Load the cached shared object, or compile it in a private directory and cache it. Raises on failure."""
    import torch  # noqa: F401  (the extension links against the loaded libtorch)

    name = _so_name()
    cached = _cache_dir() / f"{name}.so"
    if cached.exists():
        return _import(name, cached)
    from torch.utils.cpp_extension import load_inline

    tmp = tempfile.mkdtemp(prefix="rnnviz_ext_")
    try:
        mod = load_inline(name=name, cpp_sources=[CPP], functions=["lstm_cell_scan", "lstm_backward"],
                          build_directory=tmp,
                          extra_cflags=["-O3"], verbose=False)
        try:  # cache for later processes: copy, then an atomic rename
            cached.parent.mkdir(parents=True, exist_ok=True)
            part = cached.with_suffix(f".{os.getpid()}.part")
            shutil.copyfile(mod.__file__, part)
            os.replace(part, cached)
        except OSError:
            pass
        return mod
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build():
    """Build or load the extension now (blocking). Returns it, or None if it cannot be built or is disabled."""
    if _disabled():
        return None
    with _build_lock:
        if _state["ext"] is None and _state["error"] is None:
            try:
                _state["ext"] = _build()
            except Exception as exc:  # no compiler, no ninja, an unwritable cache, a bad toolchain: stay eager
                _state["error"] = exc
    return _state["ext"]


def _background() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread (Linux), and the compiler
    except (AttributeError, OSError):
        pass
    build()


def lstm_ext():
    """The loaded extension, or None. The first call starts the background build; never blocks."""
    ext = _state["ext"]
    if ext is not None or _disabled():
        return ext
    with _lock:
        if not _state["started"]:
            _state["started"] = True
            threading.Thread(target=_background, name="rnnviz-lstm-ext", daemon=True).start()
    return None
