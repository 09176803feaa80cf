"""Users' own weights: a `state_dict` of a torch.nn.RNN / LSTM / GRU, loaded safely and validated.

    module, notes = load_recurrent_state_dict(data: bytes, claimed="auto")

Only `torch.load(..., weights_only=True)` is used: it unpickles tensors and plain containers, and refuses
anything that would construct arbitrary objects or run code. Sizes are capped before loading.
"""

from __future__ import annotations

import io
import pickle
import re

import torch
from torch import nn

MAX_UPLOAD_BYTES = 20 * 2**20  # a .pt file
MAX_HIDDEN = 1024
MAX_LAYERS = 8
KINDS = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}  # gate blocks per kind
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


def _detect_prefix(keys: list[str]) -> str:
    """'' for a bare nn.RNN state_dict, else the one prefix under which `weight_ih_l0` appears."""
    prefixes = sorted({k[: -len("weight_ih_l0")] for k in keys if k.endswith("weight_ih_l0")})
    if not prefixes:
        raise ValueError("no recurrent weights found: expected keys like 'weight_ih_l0' and 'weight_hh_l0' "
                         "(the state_dict of an nn.RNN, nn.LSTM or nn.GRU)")
    if len(prefixes) > 1:
        raise ValueError(f"several recurrent modules in this file ({', '.join(p or '(top level)' for p in prefixes)});"
                         " save the state_dict of just one")
    return prefixes[0]


def load_recurrent_state_dict(data: bytes, claimed: str = "auto") -> tuple[nn.Module, list[str]]:
    """Build the nn.RNN/LSTM/GRU the bytes describe and load them into it.

    `claimed` is "auto" or one of rnn_tanh, rnn_relu, lstm, gru (a tanh/relu RNN cannot be told apart from
    its weights; auto assumes tanh). Raises ValueError with a message naming what does not match.
    Returns the module (eval mode, float32) and notes on what was inferred or ignored.
    """
    if claimed != "auto" and claimed not in KINDS:
        raise ValueError(f"claimed kind must be 'auto' or one of {list(KINDS)}, got {claimed!r}")
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    if len(data) == 0:
        raise ValueError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MB")
    try:
        obj = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError("refused: the file is not a plain state_dict of tensors (weights_only loading rejected "
                         f"it; nothing in it was run). Details: {str(exc).splitlines()[0][:200]}") from None
    except Exception as exc:  # corrupt zip, truncated file, not a torch file at all
        raise ValueError(f"could not read a PyTorch file: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise ValueError(f"expected a state_dict (a dict of name -> tensor), got {type(obj).__name__}")

    notes = []
    prefix = _detect_prefix(list(obj))
    sd = {k[len(prefix):]: v for k, v in obj.items() if k.startswith(prefix) and _KEY.match(k[len(prefix):])}
    ignored = [k for k in obj if not (k.startswith(prefix) and _KEY.match(k[len(prefix):]))]
    if prefix:
        notes.append(f"using the recurrent weights under '{prefix}'")
    if ignored:
        notes.append(f"ignored {len(ignored)} other entries (e.g. {', '.join(ignored[:3])})")
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            raise ValueError(f"{k} must be a floating-point tensor, got {type(v).__name__}")
        if not torch.isfinite(v).all():
            raise ValueError(f"{k} contains NaN or infinite values")

    w_hh = sd.get("weight_hh_l0")
    w_ih = sd.get("weight_ih_l0")
    if w_hh is None or w_ih is None or w_hh.dim() != 2 or w_ih.dim() != 2:
        raise ValueError("weight_ih_l0 and weight_hh_l0 must both be present and 2-D")
    H = w_hh.shape[1]
    if not 1 <= H <= MAX_HIDDEN or w_hh.shape[0] % H:
        raise ValueError(f"weight_hh_l0 has shape {tuple(w_hh.shape)}: expected (G*H, H) with H <= {MAX_HIDDEN}")
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
    layers = 1 + max(int(_KEY.match(k).group(2)) for k in sd)
    if layers > MAX_LAYERS:
        raise ValueError(f"{layers} layers; the limit is {MAX_LAYERS}")
    bidirectional = any(k.endswith("_reverse") for k in sd)
    bias = any(k.startswith("bias_") for k in sd)
    kw = dict(input_size=w_ih.shape[1], hidden_size=H, num_layers=layers, bias=bias, batch_first=True,
              bidirectional=bidirectional)
    module = (nn.LSTM(**kw) if kind == "lstm" else nn.GRU(**kw) if kind == "gru"
              else nn.RNN(nonlinearity=kind.split("_")[1], **kw))
    want = module.state_dict()
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    wrong = [f"{k}: file {tuple(sd[k].shape)} vs expected {tuple(want[k].shape)}"
             for k in sorted(set(want) & set(sd)) if sd[k].shape != want[k].shape]
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
               ([f"unexpected {', '.join(unexpected)}"] if unexpected else []) + wrong
    if problems:
        raise ValueError(f"does not match an nn.{type(module).__name__}(input_size={kw['input_size']}, "
                         f"hidden_size={H}, num_layers={layers}, bidirectional={bidirectional}, bias={bias}): "
                         + "; ".join(problems))
    module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    notes.insert(0, f"nn.{type(module).__name__}(input_size={kw['input_size']}, hidden_size={H}, "
                    f"num_layers={layers}, bidirectional={bidirectional}, bias={bias})")
    return module.eval(), notes


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


__all__ = ["KINDS", "MAX_UPLOAD_BYTES", "example_input", "load_recurrent_state_dict"]
