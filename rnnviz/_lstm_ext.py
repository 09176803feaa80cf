"""The LSTM trace's forward and backward loops in C++ (a torch extension built with the system's C++ compiler):
each step's work is one pass in cache instead of several small torch ops, and no second pass recomputes the gates.

    ext = lstm_ext()            # the loaded module, or None: not built yet (a build starts in the background),
                                # failed, or disabled (RNNVIZ_LSTM_EXT=0)
    build()                     # build or load now, blocking (tests, benches); returns the module or None

Never on a request's path: the first `lstm_ext()` starts a daemon thread at the lowest CPU priority that builds
the extension in a private temporary directory (no shared lock a killed process could leave behind), then
copies the shared object into the cache ($RNNVIZ_CACHE, else ~/.cache/rnnviz) under a name carrying the
source's hash; later processes only load it (well under a second, also in the background). Until it is
loaded, and forever if the build fails (no compiler, no ninja, an unwritable cache), callers use the eager
path: every failure is silent.

Tensors are (T, B, D, X) in input-position order (PyTorch's output layout); direction j's loop walks its own time
order, s = 0.. T-1 at position s (forward) or T-1-s (reverse). Per step s of each direction:
1. lstm_forward: pre_s = xw_s + h_{s-1} W_hh^T (xw = x W_ih^T + b, one GEMM before the loop), then
       [i|f|g|o]_s = [sigma|sigma|tanh|sigma](pre_s),  c_s = f_s c_{s-1} + i_s g_s,  h_s = o_s tanh(c_s)
2. lstm_backward, s from T-1 down to 0 (the carry and the product cut where truncation detached the state):
       dc_s = d_s o_s (1 - tanh^2 c_s) + f_{s+1} dc_{s+1}
       da_s = [dc_s g_s i_s(1-i_s) | dc_s c_{s-1} f_s(1-f_s) | dc_s i_s(1-g_s^2) | d_s tanh(c_s) o_s(1-o_s)]
       d_{s-1} += da_s W_hh      (d holds the direct gradient e on entry, the total dL/dh on exit)
   and ||d_s|| per step (float64 sums), the trace's gradient-norm curve, on the way.
The per-step products run in an AVX-512 register-tile kernel for float32 (2-3x MKL's addmm on AMD CPUs, where MKL
takes its AVX2 path), ATen's addmm otherwise; the activations use SLEEF's vector exp and tanh from libtorch.
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
#include <immintrin.h>
#include <cmath>

// SLEEF's 16- and 8-wide float exp and tanh (1 ulp), exported by libtorch_cpu, which ATen's own kernels use.
extern "C" __m512 Sleef_expf16_u10avx512f(__m512);
extern "C" __m512 Sleef_tanhf16_u10avx512f(__m512);
extern "C" __m256 Sleef_expf8_u10avx2(__m256);
extern "C" __m256 Sleef_tanhf8_u10avx2(__m256);

static bool avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

static bool avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

static inline __mmask16 lanes(int64_t left) {  // the first min(left, 16) of 16 lanes
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// y = act(x) over n values (x may be y), act = sigmoid(x) = 1 / (1 + exp(-x)) or tanh(x): 16 at a time with AVX-512,
// the tail masked (twice the AVX2 rate, measured in the forward loop); else 8 at a time with AVX2, the tail through a
// zero-padded register; else one at a time with libm (tanh_n, sigmoid_n below).
template <bool Sigmoid>
__attribute__((target("avx512f"))) static void act16(const float* x, float* y, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 r;
    if constexpr (Sigmoid) {
      r = _mm512_div_ps(one, _mm512_add_ps(one, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_setzero_ps(), v))));
    } else {
      r = Sleef_tanhf16_u10avx512f(v);
    }
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

template <bool Sigmoid>
__attribute__((target("avx2,fma"))) static inline __m256 act8v(__m256 v) {
  if constexpr (Sigmoid) {
    const __m256 one = _mm256_set1_ps(1.f);
    return _mm256_div_ps(one, _mm256_add_ps(one, Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_setzero_ps(), v))));
  } else {
    return Sleef_tanhf8_u10avx2(v);
  }
}

template <bool Sigmoid>
__attribute__((target("avx2,fma"))) static void act8(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act8v<Sigmoid>(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float buf[8] = {0};
    for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
    _mm256_storeu_ps(buf, act8v<Sigmoid>(_mm256_loadu_ps(buf)));
    for (int64_t j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

template <typename T> static void tanh_n(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
template <> void tanh_n<float>(const float* x, float* y, int64_t n) {
  if (avx512()) return act16<false>(x, y, n);
  if (avx2()) return act8<false>(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
template <typename T> static void sigmoid_n(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
}
template <> void sigmoid_n<float>(const float* x, float* y, int64_t n) {
  if (avx512()) return act16<true>(x, y, n);
  if (avx2()) return act8<true>(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
}

// The recurrent product of every step, y (M, N) += x (M, K) w (K, N): row strides ldx, ldy for x and y, w contiguous.
// AVX-512 tiles of 4 rows x 64 columns of y held in 16 registers through the whole k loop (masked at the right
// edge): 185-256 GFLOPS on one core at the trace's per-step shapes, against 40-107 for ATen's addmm (MKL, which
// takes its AVX2 path on AMD CPUs) and 35 us vs 22 for oneDNN with a packed weight at (8, 1024) x (1024, 256).
#define LD(p, m) _mm512_maskz_loadu_ps(m, p)
#define ST(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define FMA4(r, xr)                                                                                 \
  b = _mm512_set1_ps(xr[k]);                                                                       \
  a##r##0 = _mm512_fmadd_ps(b, w0, a##r##0); a##r##1 = _mm512_fmadd_ps(b, w1, a##r##1);            \
  a##r##2 = _mm512_fmadd_ps(b, w2, a##r##2); a##r##3 = _mm512_fmadd_ps(b, w3, a##r##3);
#define LOAD4(r, yr) __m512 a##r##0 = LD(yr, m0), a##r##1 = LD(yr + 16, m1), a##r##2 = LD(yr + 32, m2), \
                            a##r##3 = LD(yr + 48, m3);
#define STORE4(r, yr) ST(yr, m0, a##r##0); ST(yr + 16, m1, a##r##1); ST(yr + 32, m2, a##r##2); ST(yr + 48, m3, a##r##3);
#define WROW                                                                                         \
  const float* wk = w + k * N;                                                                       \
  const __m512 w0 = LD(wk, m0), w1 = LD(wk + 16, m1), w2 = LD(wk + 32, m2), w3 = LD(wk + 48, m3);  \
  __m512 b;

__attribute__((target("avx512f"))) static void tile4(const float* x, int64_t ldx, float* y, int64_t ldy,
                                                     const float* w, int64_t K, int64_t N,
                                                     __mmask16 m0, __mmask16 m1, __mmask16 m2, __mmask16 m3) {
  float *y0 = y, *y1 = y + ldy, *y2 = y + 2 * ldy, *y3 = y + 3 * ldy;
  const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
  LOAD4(0, y0) LOAD4(1, y1) LOAD4(2, y2) LOAD4(3, y3)
  for (int64_t k = 0; k < K; ++k) {
    WROW FMA4(0, x0) FMA4(1, x1) FMA4(2, x2) FMA4(3, x3)
  }
  STORE4(0, y0) STORE4(1, y1) STORE4(2, y2) STORE4(3, y3)
}

__attribute__((target("avx512f"))) static void tile1(const float* x, float* y, const float* w, int64_t K, int64_t N,
                                                     __mmask16 m0, __mmask16 m1, __mmask16 m2, __mmask16 m3) {
  LOAD4(0, y)
  for (int64_t k = 0; k < K; ++k) {
    WROW FMA4(0, x)
  }
  STORE4(0, y)
}

__attribute__((target("avx512f"))) static void gemm512(const float* x, int64_t ldx, float* y, int64_t ldy,
                                                       const float* w, int64_t M, int64_t K, int64_t N) {
  for (int64_t n0 = 0; n0 < N; n0 += 64) {
    const __mmask16 m0 = lanes(N - n0), m1 = lanes(N - n0 - 16), m2 = lanes(N - n0 - 32), m3 = lanes(N - n0 - 48);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) tile4(x + m * ldx, ldx, y + m * ldy + n0, ldy, w + n0, K, N, m0, m1, m2, m3);
    for (; m < M; ++m) tile1(x + m * ldx, y + m * ldy + n0, w + n0, K, N, m0, m1, m2, m3);
  }
}

// y += x W_j for direction j, x (M, K) and y (M, N) with row strides, W (D, K, N) contiguous. float32 with
// AVX-512: the kernel above; else ATen's addmm.
template <typename scalar_t>
static void recurrent(const scalar_t* x, int64_t ldx, scalar_t* y, int64_t ldy, const torch::Tensor& W, int64_t j,
                      int64_t M) {
  const int64_t K = W.size(1), N = W.size(2);
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (avx512()) return gemm512(x, ldx, y, ldy, W.data_ptr<float>() + j * K * N, M, K, N);
  }
  const auto opt = W.options();
  auto xt = torch::from_blob(const_cast<scalar_t*>(x), {M, K}, {ldx, 1}, opt);
  torch::from_blob(y, {M, N}, {ldy, 1}, opt).addmm_(xt, W.select(0, j));
}

// x (M, K) @ w (K, N) by the recurrent product above (the AVX-512 kernel for float32 where the CPU has it): for
// the tests and bench_trace.py --part gemm.
torch::Tensor matmul(torch::Tensor x, torch::Tensor w) {
  auto xc = x.contiguous();
  auto W = w.contiguous().unsqueeze(0);  // (1, K, N)
  auto y = torch::zeros({x.size(0), w.size(1)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "matmul", [&] {
    recurrent(xc.data_ptr<scalar_t>(), xc.size(1), y.data_ptr<scalar_t>(), y.size(1), W, 0, x.size(0));
  });
  return y;
}

// Layout: every tensor is (T, B, D, X) in input-position order, PyTorch's own output layout. Direction j processes
// step s at position p = pos(s, j): s forward, T - 1 - s in reverse; per (position, direction) the B rows are
// strided by D X.

// One layer's forward, all directions. act (T, B, D, 4H): on entry x_t W_ih^T + b_ih + b_hh, on exit the activated
// gates i, f, g, o. Wt (D, H, 4H): W_hh^T. h0, c0 (D, B, H). Returns h, c, tanh(c) (T, B, D, H):
//     [i|f|g|o]_t = [sigma|sigma|tanh|sigma](xw_t + h_{t-1} W_hh^T),  c_t = f_t c_{t-1} + i_t g_t,  h_t = o_t tanh(c_t)
std::vector<torch::Tensor> lstm_forward(torch::Tensor act, torch::Tensor Wt, torch::Tensor h0, torch::Tensor c0) {
  const int64_t T = act.size(0), B = act.size(1), D = act.size(2), H = act.size(3) / 4, G = 4 * H;
  auto h = torch::empty({T, B, D, H}, act.options());
  auto c = torch::empty({T, B, D, H}, act.options());
  auto tc = torch::empty({T, B, D, H}, act.options());
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "lstm_forward", [&] {
    scalar_t* pa = act.data_ptr<scalar_t>();
    const scalar_t* ph0 = h0.data_ptr<scalar_t>();
    const scalar_t* pc0 = c0.data_ptr<scalar_t>();
    scalar_t* ph = h.data_ptr<scalar_t>();
    scalar_t* pc = c.data_ptr<scalar_t>();
    scalar_t* ptc = tc.data_ptr<scalar_t>();
    for (int64_t s = 0; s < T; ++s) {
      for (int64_t j = 0; j < D; ++j) {
        const int64_t p = j ? T - 1 - s : s, q = j ? p + 1 : p - 1;  // q: the position processed before p
        if (s > 0) recurrent(ph + (q * B * D + j) * H, D * H, pa + (p * B * D + j) * G, D * G, Wt, j, B);
        else recurrent(ph0 + j * B * H, H, pa + (p * B * D + j) * G, D * G, Wt, j, B);
        for (int64_t b = 0; b < B; ++b) {
          const int64_t r = (p * B + b) * D + j;  // this row's index among (T, B, D)
          scalar_t* __restrict__ a = pa + r * G;
          sigmoid_n(a, a, 2 * H);
          tanh_n(a + 2 * H, a + 2 * H, H);
          sigmoid_n(a + 3 * H, a + 3 * H, H);
          const scalar_t* __restrict__ cp = s > 0 ? pc + ((q * B + b) * D + j) * H : pc0 + (j * B + b) * H;
          scalar_t* __restrict__ cs = pc + r * H;
          scalar_t* __restrict__ t = ptc + r * H;
          scalar_t* __restrict__ hs = ph + r * H;
          for (int64_t k = 0; k < H; ++k) cs[k] = a[k] * a[2 * H + k] + a[H + k] * cp[k];
          tanh_n(cs, t, H);
          for (int64_t k = 0; k < H; ++k) hs[k] = a[3 * H + k] * t[k];
        }
      }
    }
  });
  return {h, c, tc};
}

// d (T, B, D, H): on entry the direct gradient e, on exit the total dL/dh. act (T, B, D, 4H): the activated gates
// i, f, g, o. c, tc (T, B, D, H): c_t and tanh(c_t). c0 (D, B, H). W (D, 4H, H): W_hh. k: truncation window, 0 for
// none, counted in processing steps. Returns da (D, T, B, 4H), the pre-activation gradients (direction-major, so
// each direction's parameter gradients are dense GEMMs), and (T, D) float64:
// ||dL/dh_t|| over units, mean over the batch. Per direction, processing step s from T - 1 down to 0:
//     dc_s = d_s o_s (1 - tanh^2 c_s) + f_{s+1} dc_{s+1}
//     da_s = [dc_s g_s i_s(1-i_s) | dc_s c_{s-1} f_s(1-f_s) | dc_s i_s(1-g_s^2) | d_s tanh(c_s) o_s(1-o_s)]
//     d_{s-1} += da_s W_hh      (the carry and the product both dropped where truncation cut the state)
std::vector<torch::Tensor> lstm_backward(torch::Tensor d, torch::Tensor act, torch::Tensor c, torch::Tensor tc,
                                         torch::Tensor c0, torch::Tensor W, int64_t k) {
  const int64_t T = d.size(0), B = d.size(1), D = d.size(2), H = d.size(3), G = 4 * H;
  auto da = torch::empty({D, T, B, G}, d.options());
  auto dcbuf = torch::zeros({2, D, B, H}, d.options());  // dc of steps s and s + 1, per direction
  auto norm = torch::zeros({T, D}, d.options().dtype(torch::kFloat64));
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "lstm_backward", [&] {
    scalar_t* pd = d.data_ptr<scalar_t>();
    const scalar_t* pa = act.data_ptr<scalar_t>();
    const scalar_t* pc = c.data_ptr<scalar_t>();
    const scalar_t* ptc = tc.data_ptr<scalar_t>();
    const scalar_t* pc0 = c0.data_ptr<scalar_t>();
    scalar_t* pda = da.data_ptr<scalar_t>();
    scalar_t* pdc = dcbuf.data_ptr<scalar_t>();
    double* pn = norm.data_ptr<double>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const bool carry = s < T - 1 && (k == 0 || (s + 1) % k != 0);
      for (int64_t j = 0; j < D; ++j) {
        const int64_t p = j ? T - 1 - s : s, q = j ? p + 1 : p - 1, n = j ? p - 1 : p + 1;  // q before, n after
        scalar_t* dcs = pdc + ((s & 1) * D + j) * B * H;
        const scalar_t* dcn = pdc + (((s + 1) & 1) * D + j) * B * H;
        for (int64_t b = 0; b < B; ++b) {
          const int64_t r = (p * B + b) * D + j;
          const scalar_t* __restrict__ a = pa + r * G;
          const scalar_t* __restrict__ fn = carry ? pa + ((n * B + b) * D + j) * G + H : nullptr;  // f_{s+1}
          const scalar_t* __restrict__ cp = s > 0 ? pc + ((q * B + b) * D + j) * H : pc0 + (j * B + b) * H;
          const scalar_t* __restrict__ t = ptc + r * H;
          const scalar_t* __restrict__ dv = pd + r * H;  // complete now: step s + 1 added its term
          const scalar_t* __restrict__ dn = dcn + b * H;
          scalar_t* __restrict__ dc = dcs + b * H;
          scalar_t* __restrict__ out = pda + ((j * T + p) * B + b) * G;
          double ss = 0;
          for (int64_t h = 0; h < H; ++h) ss += double(dv[h]) * double(dv[h]);
          pn[p * D + j] += std::sqrt(ss) / double(B);
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
        if (s > 0 && (k == 0 || s % k != 0))  // d at the previous position += da_s W_hh
          recurrent(pda + (j * T + p) * B * G, G, pd + (q * B * D + j) * H, D * H, W, j, B);
      }
    }
  });
  return {da, norm};
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
        mod = load_inline(name=name, cpp_sources=[CPP], functions=["lstm_forward", "lstm_backward", "matmul"],
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
