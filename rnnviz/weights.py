"""Users' own weights: a `state_dict` of a torch.nn.RNN / LSTM / GRU, loaded safely, within a cost budget.

    module, notes = load_recurrent_state_dict(data: bytes, claimed="auto")
    probe = fit_probe(Spec.of(module), batch, steps)      # the probe the budget allows, and why it was cut

A small file can declare huge tensors (an expanded tensor is saved as one element with stride 0), so nothing
is allocated before the shapes the file declares have passed the budget. The order of work:

1. the bytes: at most MAX_UPLOAD_BYTES; a zip archive (torch.save's format since torch 1.6) of at most
   MAX_ZIP_ENTRIES entries, all stored uncompressed (a deflated entry could expand to gigabytes inside
   torch.load), with a pickle of at most MAX_PICKLE_BYTES (unpickling can build ~35 bytes of objects per byte);
2. `torch.load(..., weights_only=True)`: tensors and plain containers only, nothing in the file is run; the
   tensors are views of the file's own storages, so this holds at most the file's size;
3. the module the shapes declare (`Spec`, from `.shape` alone) is checked against the upload budget
   (`check_spec`), and every tensor's shape against the module's, before any tensor is copied, converted or
   checked for NaN, and before a module exists;
4. the weights are copied to float32 and assigned to a module built on the meta device (no random init).

The upload budget is the sidebar's (rnnviz/controls.py): tracing the weights may hold as much as tracing the
largest model the sidebar trains (MAX_WEIGHT_BYTES, from BOUNDS: about 4.2 M parameters for an LSTM, 4.9 M for a
GRU, 2.5 M for a vanilla RNN); the probe's trace and the page's frames at most SNAPSHOT_BUDGET_BYTES
and STEP_BUDGET_MACS multiply-adds forward (one training step of the compared runs). A model that cannot
afford even one sequence of two steps is refused; otherwise the probe is shortened (`fit_probe`) and the page
says so.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass

import torch
from torch import nn

from rnnviz.controls import BOUNDS, GATES, SNAPSHOT_BUDGET_BYTES, STEP_BUDGET_MACS
from rnnviz.tasks import MAX_VOCAB

MAX_UPLOAD_BYTES = 20 * 2**20  # a .pt file (Streamlit's uploader has the same cap: .streamlit/config.toml)
MAX_ZIP_ENTRIES = 4096  # one per storage (tensor) plus a few: a state_dict of up to ~4,000 tensors
MAX_PICKLE_BYTES = 256 * 2**10  # data.pkl of a state_dict: ~100 bytes per tensor
KINDS = GATES  # gate blocks per kind: rnn_tanh, rnn_relu 1, lstm 4, gru 3
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Cost model of tracing an uploaded module on a probe of B sequences x T steps (what the page does), float32;
# measured against peak RSS by bench/bench_memory.py --uploads.
#   weights: the module, the trace's working copies (the LSTM's kernel runs on [W_ih | W_hh] copies, the RNN's
#            and GRU's recursions on stacked ones) and the gradients: PARAM_COPIES[kind] x 4 bytes per parameter;
#   probe:   the input x with its working copy and dL/dx: INPUT_COPIES x 4 bytes per B*T*in; per (layer,
#            direction, sequence, step, unit) h, c, the gates, their pre-activations and gradients:
#            STATE_COPIES[kind] x (G + 4) x 4 bytes (controls.snapshot_bytes counts 2); the page's frames of one
#            sequence and layer: FRAME_BYTES per (step, unit, quantity drawn).
PARAM_COPIES = {"rnn_tanh": 12, "rnn_relu": 12, "lstm": 7, "gru": 6}
INPUT_COPIES = 5
STATE_COPIES = {"rnn_tanh": 4, "rnn_relu": 4, "lstm": 4, "gru": 5}
FRAME_BYTES = 80
MIN_PROBE = (1, 2)  # (sequences, steps): a model that cannot afford this is refused
MAX_PROBE_STEPS = BOUNDS["seq_len"][1]
MAX_PROBE_BATCH = 32


@dataclass(frozen=True)
class Spec:
    """The nn.RNN / LSTM / GRU a state_dict declares, from tensor shapes alone (nothing allocated)."""

    kind: str  # rnn_tanh | rnn_relu | lstm | gru
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    bias: bool

    @classmethod
    def of(cls, module: nn.Module) -> Spec:
        mode = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}[module.mode]
        return cls(mode, module.input_size, module.hidden_size, module.num_layers, module.bidirectional,
                   module.bias)

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    @property
    def dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def layer_input(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.dirs * self.hidden_size

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor of the module's state_dict and its shape (num_layers is bounded before this is called)."""
        GH, out = self.gates * self.hidden_size, {}
        for layer in range(self.num_layers):
            for sfx in ("", "_reverse")[: self.dirs]:
                out[f"weight_ih_l{layer}{sfx}"] = (GH, self.layer_input(layer))
                out[f"weight_hh_l{layer}{sfx}"] = (GH, self.hidden_size)
                if self.bias:
                    out[f"bias_ih_l{layer}{sfx}"] = (GH,)
                    out[f"bias_hh_l{layer}{sfx}"] = (GH,)
        return out

    @property
    def params(self) -> int:
        """Number of parameters: sum over layers and directions of G*H*(in_l + H + 2*bias)."""
        GH = self.gates * self.hidden_size
        return sum(self.dirs * GH * (self.layer_input(layer) + self.hidden_size + 2 * self.bias)
                   for layer in range(self.num_layers))

    def probe_macs(self, batch: int, steps: int) -> int:
        """Forward multiply-adds of tracing `batch` sequences of `steps`: B*T * sum_l D*G*H*(in_l + H)."""
        GH = self.gates * self.hidden_size
        return batch * steps * sum(self.dirs * GH * (self.layer_input(layer) + self.hidden_size)
                                   for layer in range(self.num_layers))

    def weight_bytes(self) -> int:
        return PARAM_COPIES[self.kind] * 4 * self.params

    def probe_bytes(self, batch: int, steps: int) -> int:
        """Bytes the trace of the probe and the page's frames hold (see the cost model above)."""
        states = self.num_layers * self.dirs * self.hidden_size * (self.gates + 4)
        drawn = self.hidden_size * (self.gates + 2) * steps  # gates, c_t, h_t of one sequence, one layer
        return (batch * steps * (INPUT_COPIES * 4 * self.input_size + STATE_COPIES[self.kind] * 4 * states)
                + FRAME_BYTES * drawn)

    def label(self) -> str:
        name = {"lstm": "LSTM", "gru": "GRU"}.get(self.kind, "RNN")
        extra = f", nonlinearity='{self.kind[4:]}'" if self.kind.startswith("rnn") else ""
        return (f"nn.{name}(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, bidirectional={self.bidirectional}, bias={self.bias}{extra})")


# The largest model the sidebar trains (BOUNDS: hidden_size, num_layers; a bidirectional LSTM reading up to
# MAX_VOCAB one-hot characters): tracing an upload may hold as much as tracing it.
SIDEBAR_MAX = Spec("lstm", MAX_VOCAB, BOUNDS["hidden_size"][1], BOUNDS["num_layers"][1], True, True)
MAX_WEIGHT_BYTES = SIDEBAR_MAX.weight_bytes()


def max_params(kind: str) -> int:
    """The most parameters an uploaded model of this kind may have (MAX_WEIGHT_BYTES when traced)."""
    return MAX_WEIGHT_BYTES // (PARAM_COPIES[kind] * 4)


def check_spec(spec: Spec) -> str | None:
    """None if the upload budget affords tracing `spec` on the smallest probe; else why not (naming the limit)."""
    if spec.weight_bytes() > MAX_WEIGHT_BYTES:
        return (f"{spec.label()} has {spec.params:,} parameters: tracing it would hold about "
                f"{spec.weight_bytes() / 2**20:,.0f} MB (the weights, the trace's working copies and gradients); "
                f"the limit is {MAX_WEIGHT_BYTES / 2**20:.0f} MB, what tracing the largest model the sidebar trains "
                f"holds (a bidirectional LSTM of hidden size {SIDEBAR_MAX.hidden_size} and {SIDEBAR_MAX.num_layers} "
                f"layers: BOUNDS in rnnviz/controls.py), so at most {max_params(spec.kind):,} parameters for this "
                "kind")
    B, T = MIN_PROBE
    if spec.probe_bytes(B, T) > SNAPSHOT_BUDGET_BYTES or spec.probe_macs(B, T) > STEP_BUDGET_MACS:
        return (f"{spec.label()} is too wide to trace even {B} sequence of {T} steps within the upload budget "
                f"({SNAPSHOT_BUDGET_BYTES / 2**20:.0f} MB, {STEP_BUDGET_MACS / 1e9:.0f} G multiply-adds: "
                "SNAPSHOT_BUDGET_BYTES and STEP_BUDGET_MACS in rnnviz/controls.py)")
    return None


@dataclass(frozen=True)
class Probe:
    batch: int
    steps: int
    note: str | None  # why the probe is smaller than asked (None: it is not)


def fit_probe(spec: Spec, batch: int, steps: int) -> Probe:
    """The largest probe within the upload budget: fewer sequences first (time is the axis the page is about),
    then fewer steps, never below MIN_PROBE. Costs are linear in B*T (bytes: plus a per-step term), so each
    limit is found in closed form. Assumes check_spec(spec) is None."""
    batch = max(MIN_PROBE[0], min(int(batch), MAX_PROBE_BATCH))
    steps = max(MIN_PROBE[1], min(int(steps), MAX_PROBE_STEPS))
    macs_1 = spec.probe_macs(1, 1)  # per sequence and step
    bytes_1 = spec.probe_bytes(1, 1) - spec.probe_bytes(0, 1)  # per sequence and step
    frames_1 = spec.probe_bytes(0, 1)  # per step (the frames of one sequence)

    def most_sequences(t: int) -> int:
        return min(STEP_BUDGET_MACS // (t * macs_1), (SNAPSHOT_BUDGET_BYTES - t * frames_1) // (t * bytes_1))

    b = min(batch, most_sequences(steps))
    if b >= 1:
        t = steps
    else:
        b = 1
        t = min(steps, STEP_BUDGET_MACS // macs_1, SNAPSHOT_BUDGET_BYTES // (bytes_1 + frames_1))
        t = max(t, MIN_PROBE[1])
    if (b, t) == (batch, steps):
        return Probe(b, t, None)
    macs, nbytes = spec.probe_macs(batch, steps), spec.probe_bytes(batch, steps)
    over = (f"{macs / 1e9:.1f} G multiply-adds (budget {STEP_BUDGET_MACS / 1e9:.0f} G, STEP_BUDGET_MACS)"
            if macs > STEP_BUDGET_MACS else
            f"{nbytes / 2**20:.0f} MB (budget {SNAPSHOT_BUDGET_BYTES / 2**20:.0f} MB, SNAPSHOT_BUDGET_BYTES)")
    return Probe(b, t, f"traced on {b} sequence{'s' * (b != 1)} of {t:,} steps, not the {batch} × {steps:,} asked: "
                       f"those would cost about {over}")


# -- reading the file ------------------------------------------------------------------------------------------
def _zip_entries(data: bytes) -> int | None:
    """Number of entries a zip archive's end-of-central-directory record declares (None: not a zip)."""
    tail = data[-(2**16 + 22):]
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    n = struct.unpack_from("<H", tail, at + 10)[0]
    if n == 0xFFFF and at >= 20 and tail[at - 20: at - 16] == b"PK\x06\x07":  # zip64: the count is in its record
        offset = struct.unpack_from("<Q", tail, at - 12)[0]
        if offset + 40 <= len(data) and data[offset: offset + 4] == b"PK\x06\x06":
            n = struct.unpack_from("<Q", data, offset + 32)[0]
    return n


def _check_archive(data: bytes) -> None:
    """Refuse what could make torch.load allocate far more than the file: see the module docstring (1)."""
    n = _zip_entries(data)
    if n is None and data.startswith(b"PK\x03\x04"):
        raise ValueError("could not read the archive: it is cut short or damaged (no end record); "
                         "upload the whole file")
    if n is None:
        raise ValueError("this is not a file written by torch.save (a zip archive, the format since torch 1.6); "
                         "the older format is not accepted: load it and save it again with a current torch")
    if n > MAX_ZIP_ENTRIES:
        raise ValueError(f"the archive has {n:,} entries; the limit is {MAX_ZIP_ENTRIES:,} (about one per tensor)")
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ValueError(f"could not read the archive: {exc}") from None
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise ValueError(f"the archive has compressed entries ({', '.join(packed[:3])}): torch.save stores them "
                         "uncompressed, and a compressed one could expand to far more than the file")
    if sum(i.file_size for i in infos) > len(data):
        raise ValueError("the archive declares more content than the file holds")
    big = [i for i in infos if i.filename.endswith("data.pkl") and i.file_size > MAX_PICKLE_BYTES]
    if big:
        raise ValueError(f"its pickle ({big[0].filename}) is {big[0].file_size:,} bytes; the limit is "
                         f"{MAX_PICKLE_BYTES:,} (a state_dict needs about 100 bytes per tensor)")


def _unpickling_message(exc: Exception) -> str:
    """torch's weights_only refusal, said in one plain sentence (no ANSI codes, no cut-off hints)."""
    text = _ANSI.sub("", str(exc))
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        name = found.group(1)
        what = ("a whole model saved with torch.save(model)" if ".nn.modules." in name or name.startswith("__main__")
                else "a Python object")
        return (f"refused: the file holds a pickled {name} ({what}), not just tensors; nothing in it was run. "
                "Save the weights instead: torch.save(model.state_dict(), 'rnn.pt')")
    detail = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
    detail = (detail.group(1) if detail else text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
    detail = detail.split(". ")[0].rstrip(".")[:160]
    return f"refused: the file is not a plain state_dict of tensors ({detail}); nothing in it was run"


def _load(data: bytes) -> object:
    _check_archive(data)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(_unpickling_message(exc)) from None
    except Exception as exc:  # corrupt archive, truncated file, records of the wrong size
        msg = _ANSI.sub("", str(exc)).strip().splitlines()
        raise ValueError(f"could not read a PyTorch file: {type(exc).__name__}: "
                         f"{(msg[0] if msg else '')[:200]}") from None


def _describe(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a {obj.dtype} tensor of shape {tuple(obj.shape)}"
    return type(obj).__name__


def _as_state_dict(obj) -> dict[str, object]:
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if not bad:
            return obj
        raise ValueError(f"expected a state_dict (a dict of name -> tensor), but its keys are not all names: "
                         f"{len(bad)} are {type(bad[0]).__name__} (e.g. {bad[0]!r}); an optimizer's state_dict "
                         "or a dict of layers numbered 0, 1, ... looks like this")
    if isinstance(obj, (list, tuple)):
        raise ValueError(f"expected a state_dict (a dict of name -> tensor), got a {type(obj).__name__} of "
                         f"{len(obj)} items")
    raise ValueError(f"expected a state_dict (a dict of name -> tensor), got {_describe(obj)}")


def _detect_prefix(keys: list[str]) -> str:
    """'' for a bare nn.RNN state_dict, else the one prefix under which `weight_ih_l0` appears."""
    prefixes = sorted({k[: -len("weight_ih_l0")] for k in keys if k.endswith("weight_ih_l0")})
    if not prefixes:
        raise ValueError("no recurrent weights found: expected keys like 'weight_ih_l0' and 'weight_hh_l0' "
                         "(the state_dict of an nn.RNN, nn.LSTM or nn.GRU)")
    if len(prefixes) > 1:
        shown = ", ".join(p or "(top level)" for p in prefixes[:5]) + (" …" if len(prefixes) > 5 else "")
        raise ValueError(f"several recurrent modules in this file ({shown}); save the state_dict of just one")
    return prefixes[0]


def _listed(names, n: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" … and {len(names) - n} more" if len(names) > n else "")


def declared_spec(sd: dict[str, object], claimed: str = "auto") -> tuple[Spec, list[str]]:
    """The module a recurrent state_dict declares, from its keys and shapes only; ValueError if none fits.

    Returns the spec and notes. Nothing is allocated: only `.shape`, `.dtype` and `.layout` are read."""
    notes = []
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"{k} must be a floating-point tensor, got {_describe(v)}")
        if v.layout != torch.strided or v.device.type != "cpu":
            raise ValueError(f"{k} must be a dense tensor, got layout {v.layout} on {v.device.type}")
        if not v.is_floating_point():
            raise ValueError(f"{k} must be a floating-point tensor, got {v.dtype} (shape {tuple(v.shape)})")
    w_hh, w_ih = sd.get("weight_hh_l0"), sd.get("weight_ih_l0")
    if w_hh is None or w_ih is None or w_hh.dim() != 2 or w_ih.dim() != 2:
        raise ValueError("weight_ih_l0 and weight_hh_l0 must both be present and 2-D")
    H = w_hh.shape[1]
    if w_ih.shape[1] < 1:
        raise ValueError(f"weight_ih_l0 has shape {tuple(w_ih.shape)}: no inputs")
    if H < 1 or w_hh.shape[0] % H:
        raise ValueError(f"weight_hh_l0 has shape {tuple(w_hh.shape)}: expected (G*H, H), G gate blocks of H rows")
    G = w_hh.shape[0] // H
    detected = {1: "rnn_tanh", 4: "lstm", 3: "gru"}.get(G)
    if detected is None:
        raise ValueError(f"weight_hh_l0 has {G} gate blocks of size {H}: not an RNN (1), GRU (3) or LSTM (4)")
    kind = detected if claimed == "auto" else claimed
    if KINDS[kind] != G:
        raise ValueError(f"you said {kind}, but weight_hh_l0 has shape {tuple(w_hh.shape)} = {G} x {H} rows: "
                         f"that is a {detected.upper().replace('_TANH', '')} ({G} gate blocks)")
    if claimed == "auto" and G == 1:
        notes.append("a vanilla RNN's weights do not say tanh or relu: assuming tanh (choose relu if needed)")
    present = sorted({int(_KEY.match(k).group(2)) for k in sd})
    layers = present[-1] + 1
    if layers > len(present):  # checked before Spec.shapes() enumerates every layer's keys
        raise ValueError(f"the file has weights of layer {layers - 1} but not of every layer below it "
                         f"(layers present: {_listed(map(str, present))})")
    spec = Spec(kind, w_ih.shape[1], H, layers, any(k.endswith("_reverse") for k in sd),
                any(k.startswith("bias_") for k in sd))
    return spec, notes


def _check_shapes(spec: Spec, sd: dict[str, torch.Tensor]) -> None:
    want = spec.shapes()
    missing = [k for k in want if k not in sd]
    unexpected = sorted(set(sd) - set(want))
    wrong = [f"{k}: file {tuple(sd[k].shape)} vs expected {want[k]}" for k in want
             if k in sd and tuple(sd[k].shape) != want[k]]
    problems = ([f"missing {_listed(missing)}"] if missing else []) + \
               ([f"unexpected {_listed(unexpected)}"] if unexpected else []) + wrong[:5]
    if problems:
        raise ValueError(f"does not match an {spec.label()}: " + "; ".join(problems))


def load_recurrent_state_dict(data: bytes, claimed: str = "auto") -> tuple[nn.Module, list[str]]:
    """Build the nn.RNN/LSTM/GRU the bytes describe and load them into it, within the upload budget.

    `claimed` is "auto" or one of rnn_tanh, rnn_relu, lstm, gru (a tanh/relu RNN cannot be told apart from
    its weights; auto assumes tanh). Raises ValueError with a message naming what does not match or which
    limit is exceeded. Returns the module (eval mode, float32, batch_first) and notes on what was inferred.
    """
    if claimed != "auto" and claimed not in KINDS:
        raise ValueError(f"claimed kind must be 'auto' or one of {list(KINDS)}, got {claimed!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("data must be bytes")
    data = bytes(data)
    if len(data) == 0:
        raise ValueError("the file is empty (0 bytes)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MB")
    obj = _as_state_dict(_load(data))

    notes = []
    prefix = _detect_prefix(list(obj))
    sd = {k[len(prefix):]: v for k, v in obj.items() if k.startswith(prefix) and _KEY.match(k[len(prefix):])}
    ignored = [k for k in obj if not (k.startswith(prefix) and _KEY.match(k[len(prefix):]))]
    if prefix:
        notes.append(f"using the recurrent weights under '{prefix}'")
    if ignored:
        notes.append(f"ignored {len(ignored)} other entries (e.g. {', '.join(ignored[:3])})")
    spec, spec_notes = declared_spec(sd, claimed)
    notes += spec_notes
    refusal = check_spec(spec)  # before anything is allocated
    if refusal:
        raise ValueError(f"over the upload budget: {refusal}. Nothing was allocated")
    _check_shapes(spec, sd)

    weights = {}
    for k in spec.shapes():  # now bounded: copy to float32 (an expanded tensor becomes real here)
        w = torch.empty(sd[k].shape, dtype=torch.float32)
        w.copy_(sd[k])
        bad = int((~torch.isfinite(w)).sum())
        if bad:
            raise ValueError(f"{k} contains NaN or infinite values ({bad:,} of {w.numel():,})")
        weights[k] = w
    del obj, sd
    kw = dict(input_size=spec.input_size, hidden_size=spec.hidden_size, num_layers=spec.num_layers,
              bias=spec.bias, batch_first=True, bidirectional=spec.bidirectional)
    with torch.device("meta"):  # no storage, no random init: the weights are assigned below
        module = (nn.LSTM(**kw) if spec.kind == "lstm" else nn.GRU(**kw) if spec.kind == "gru"
                  else nn.RNN(nonlinearity=spec.kind[4:], **kw))
    module.load_state_dict(weights, strict=True, assign=True)
    notes.insert(0, spec.label())
    return module.eval(), notes


def upload_key(data: bytes, claimed: str) -> str:
    """What decides whether an upload is new: its content (SHA-256) and the claimed kind, never name or size."""
    return f"{hashlib.sha256(bytes(data)).hexdigest()}:{claimed}"


def example_input(kind: str, batch: int, time: int, features: int, seed: int = 0) -> torch.Tensor:
    """Inputs to look at a user's module with: "noise" (N(0,1)), "sine" (phase-shifted waves), "zeros"."""
    g = torch.Generator().manual_seed(seed)
    if kind == "noise":
        return torch.randn(batch, time, features, generator=g)
    if kind == "sine":
        t = torch.arange(time, dtype=torch.float32).view(1, -1, 1)
        phase = torch.rand(batch, 1, features, generator=g) * 6.283
        freq = 0.05 + 0.25 * torch.rand(1, 1, features, generator=g)
        return torch.sin(freq * t + phase)
    if kind == "zeros":
        return torch.zeros(batch, time, features)
    raise ValueError(f"input kind must be noise, sine or zeros, got {kind!r}")


__all__ = ["KINDS", "MAX_PROBE_BATCH", "MAX_PROBE_STEPS", "MAX_UPLOAD_BYTES", "MAX_WEIGHT_BYTES", "Probe", "Spec",
           "check_spec", "declared_spec", "example_input", "fit_probe", "load_recurrent_state_dict", "max_params",
           "upload_key"]
