"""The models: an input embedding, a plain torch recurrent core (nn.RNN / nn.LSTM / nn.GRU) and a head.

    model = build_model(ModelConfig(cell="lstm", hidden_size=32), task)
    pred = model(batch)   # == model.head(model.core(model.core_input(batch))[0], batch)

The split core_input -> core -> head is the contract with rnnviz.trace:
    trace(model.core, model.core_input(b).detach(), loss_fn=lambda out: task.loss(model.head(out, b), b))
sees exactly the training loss. The core is always batch_first, float32, on the CPU.

Kinds (from task.kind):
    many_to_one   pred = Linear(last_state(out))                       (B, output_dim)
    many_to_many  pred_t = Linear(out_t)                                (B, T, output_dim)
    seq2seq       encoder = core, decoder = same cell (unidirectional)  (B, T_out, target_vocab)
                  s_0 = tanh(W_b last_state(enc_out))   the fixed context vector, every decoder layer
                  attention "bahdanau": e_ij = v^T tanh(W_q s_{i-1} + W_y E y_{i-1} + W_k h_j), c_i fed into the
                                        decoder input. The query also reads y_{i-1}, the token just emitted
                                        (s_{i-1} has not seen it): with a bidirectional encoder the learned map
                                        is then the textbook one (reverse: anti-diagonal, copy: diagonal). A
                                        unidirectional h_j summarises x_0..x_j, so on reverse the weights sit
                                        where y_{i-1} came from (T-i) and read x_{T-1-i} out of that state.
                  attention "luong_*":  e_ij = h_i . h_j (dot) or h_i^T W h_j (general),
                                        logits from tanh(W_c [c_i; h_i])
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

import pandas as pd
import torch
from torch import Tensor, nn

from rnnviz.tracing import GATE_NAMES, spectral_bound, truncated_forward

CELLS = {"rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU", "lstm": "LSTM", "gru": "GRU"}
INITS = ("default", "orthogonal", "identity")
ATTENTIONS = ("none", "bahdanau", "luong_dot", "luong_general")
KINDS = ("many_to_one", "many_to_many", "seq2seq")


@dataclass
class ModelConfig:
    cell: str = "lstm"  # "rnn_tanh" | "rnn_relu" | "lstm" | "gru"
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False  # forced False for many_to_many and for the seq2seq decoder
    dropout: float = 0.0  # between stacked layers (the torch module's own dropout)
    embed_dim: int = 16  # token inputs -> nn.Embedding(vocab, embed_dim, padding_idx=pad_id)
    one_hot: bool = False  # token inputs -> one-hot vectors x_t (vocab,) instead (SequenceModel only)
    init: str = "default"  # "default" | "orthogonal" | "identity" (IRNN)
    weight_scale: float = 1.0  # every H x H block of W_hh multiplied by this
    forget_bias: float | None = None  # LSTM only: b_if = forget_bias, b_hf = 0
    attention: str = "none"  # seq2seq only: "none" | "bahdanau" | "luong_dot" | "luong_general"
    seed: int = 0  # init seed; the global RNG is left untouched

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""

        def is_int(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if not (is_int(self.hidden_size) and 1 <= self.hidden_size <= 1024):
            raise ValueError(f"hidden_size must be an int in [1, 1024], got {self.hidden_size!r}")
        if not (is_int(self.num_layers) and 1 <= self.num_layers <= 4):
            raise ValueError(f"num_layers must be an int in [1, 4], got {self.num_layers!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"bidirectional must be a bool, got {self.bidirectional!r}")
        if not (is_num(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if not (is_int(self.embed_dim) and 1 <= self.embed_dim <= 512):
            raise ValueError(f"embed_dim must be an int in [1, 512], got {self.embed_dim!r}")
        if not isinstance(self.one_hot, bool):
            raise ValueError(f"one_hot must be a bool, got {self.one_hot!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {self.init!r}")
        if not (is_num(self.weight_scale) and 0 < self.weight_scale <= 10):
            raise ValueError(f"weight_scale must be a finite number in (0, 10], got {self.weight_scale!r}")
        if self.forget_bias is not None and not (is_num(self.forget_bias) and abs(self.forget_bias) <= 20):
            raise ValueError(f"forget_bias must be None or a finite number in [-20, 20], got {self.forget_bias!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {list(ATTENTIONS)}, got {self.attention!r}")
        if not is_int(self.seed):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of to_dict; unknown keys are a ValueError, and the result is validated."""
        return config_from_dict(cls, d)


def config_from_dict(cls, d: dict):
    """A config dataclass (with .validate()) from a dict: unknown keys are a ValueError, the result is validated."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    cfg = cls(**d)
    cfg.validate()
    return cfg


# ----------------------------------------------------------------------------------------------------------
# Cores and their initialisation


def make_core(cfg: ModelConfig, input_size: int, bidirectional: bool) -> nn.Module:
    """A batch_first torch nn.RNN / nn.LSTM / nn.GRU. Dropout only exists between layers (needs >= 2)."""
    kw = dict(input_size=input_size, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True,
              bidirectional=bidirectional, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
    if cfg.cell == "lstm":
        return nn.LSTM(**kw)
    if cfg.cell == "gru":
        return nn.GRU(**kw)
    return nn.RNN(nonlinearity="tanh" if cfg.cell == "rnn_tanh" else "relu", **kw)


def _suffixes(core: nn.Module) -> list[tuple[int, int, str]]:
    """(layer, direction, parameter-name suffix) for every layer and direction of a core."""
    D = 2 if core.bidirectional else 1
    return [(k, d, f"_l{k}" + ("_reverse" if d else "")) for k in range(core.num_layers) for d in range(D)]


def _gates(core: nn.Module) -> tuple[str, ...]:
    return GATE_NAMES[core.mode] or ("hidden",)


def _orthogonal(H: int) -> Tensor:
    """Haar-random orthogonal H x H in float64 (QR of a Gaussian, signs fixed): all |eigenvalues| = 1."""
    q, r = torch.linalg.qr(torch.randn(H, H, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


@torch.no_grad()
def apply_init(core: nn.Module, cfg: ModelConfig) -> None:
    """Set W_hh (each gate block, rows i|f|g|o for LSTM, r|z|n for GRU) and biases in place, every layer
    and direction:
        default     W = scale * W_pytorch      (W_pytorch ~ U(-1/sqrt(H), 1/sqrt(H)))
        orthogonal  W = scale * Q, Q random orthogonal: spectral radius = max singular value = scale
        identity    W = scale * I, all biases 0 (IRNN, Le et al. 2015); W_ih keeps PyTorch's default
    then for an LSTM with forget_bias set: b_if = forget_bias, b_hf = 0 (the effective bias is b_if + b_hf).
    Uses the global RNG (build_model seeds it inside a fork_rng).
    """
    H = core.hidden_size
    for _, _, sfx in _suffixes(core):
        W = getattr(core, "weight_hh" + sfx)  # (G*H, H)
        for b in range(W.shape[0] // H):
            blk = W[b * H:(b + 1) * H]
            if cfg.init == "orthogonal":
                blk.copy_(cfg.weight_scale * _orthogonal(H))
            elif cfg.init == "identity":
                blk.copy_(cfg.weight_scale * torch.eye(H, dtype=torch.float64))
            else:
                blk.mul_(cfg.weight_scale)
        if core.bias and cfg.init == "identity":
            getattr(core, "bias_ih" + sfx).zero_()
            getattr(core, "bias_hh" + sfx).zero_()
        if core.bias and core.mode == "LSTM" and cfg.forget_bias is not None:
            getattr(core, "bias_ih" + sfx)[H:2 * H] = cfg.forget_bias
            getattr(core, "bias_hh" + sfx)[H:2 * H] = 0.0


def recurrent_matrices(core: nn.Module) -> dict[str, Tensor]:
    """Every H x H recurrent block, detached: {"l0.input": ..., "l0_reverse.forget": ..., "l1.hidden": ...}.
    Gate names are rnnviz.tracing.GATE_NAMES (a plain RNN has one block, "hidden")."""
    if not isinstance(core, (nn.RNN, nn.LSTM, nn.GRU)):
        raise TypeError(f"recurrent_matrices needs an nn.RNN, nn.LSTM or nn.GRU, got {type(core).__name__}")
    H = core.hidden_size
    out = {}
    for _, _, sfx in _suffixes(core):
        W = getattr(core, "weight_hh" + sfx).detach()
        for b, gate in enumerate(_gates(core)):
            out[f"{sfx[1:]}.{gate}"] = W[b * H:(b + 1) * H]
    return out


def spectral_stats(core: nn.Module) -> pd.DataFrame:
    """One row per (layer, direction, gate) block: spectral_radius = max |eig|, max_singular_value (float64)."""
    if not isinstance(core, (nn.RNN, nn.LSTM, nn.GRU)):
        raise TypeError(f"spectral_stats needs an nn.RNN, nn.LSTM or nn.GRU, got {type(core).__name__}")
    H = core.hidden_size
    rows = []
    for layer, d, sfx in _suffixes(core):
        W = getattr(core, "weight_hh" + sfx).detach()
        for b, gate in enumerate(_gates(core)):
            rho, sigma = spectral_bound(W[b * H:(b + 1) * H])
            rows.append({"layer": layer, "direction": d, "gate": gate,
                         "spectral_radius": rho, "max_singular_value": sigma})
    return pd.DataFrame(rows, columns=["layer", "direction", "gate", "spectral_radius", "max_singular_value"])


# ----------------------------------------------------------------------------------------------------------
# Shared pieces


def run_core(core: nn.Module, x: Tensor, truncation: int | None = None, hx=None) -> Tensor:
    """The core's full output (B, T, D*H); truncation=k detaches the recurrent state every k steps."""
    return truncated_forward(core, x, hx, truncation)[0]


def last_state(out: Tensor, lengths: Tensor | None, hidden_size: int) -> Tensor:
    """Top-layer final state per sequence, (B, T, D*H) -> (B, D*H).

    Forward direction: out[b, len_b - 1, :H]. Reverse direction: out[b, 0, H:] (it ends at position 0).
    Simplification: with padding the reverse direction has read the padded tail first (PAD embeds to 0 but
    the biases still act). Packing would fix that but then head(core(x)) would differ from what trace sees.
    """
    B, T, DH = out.shape
    H = hidden_size
    if lengths is None:
        fwd = out[:, -1, :H]  # (B, H)
    else:
        idx = (lengths.to(out.device).long() - 1).clamp(0, T - 1)
        fwd = out[torch.arange(B, device=out.device), idx, :H]  # (B, H)
    if DH == H:
        return fwd
    return torch.cat([fwd, out[:, 0, H:]], dim=-1)  # (B, 2H)


def _embedding(vocab: int, dim: int, pad_id: int | None) -> nn.Embedding:
    pad = pad_id if pad_id is not None and 0 <= pad_id < vocab else None
    return nn.Embedding(vocab, dim, padding_idx=pad)


class OneHot(nn.Module):
    """Token ids (B, T) -> one-hot vectors (B, T, V): x_t = column k of the identity, so the core's W_ih x_t
    is column k of W_ih (W_xh in the lecture notes). No parameters; PAD (if any) maps to the zero vector, as
    nn.Embedding's padding_idx row does."""

    def __init__(self, vocab: int, pad_id: int | None = None):
        super().__init__()
        eye = torch.eye(vocab)
        if pad_id is not None and 0 <= pad_id < vocab:
            eye[pad_id] = 0.0
        self.register_buffer("eye", eye, persistent=False)  # (V, V); follows .double() / .to()
        self.num_embeddings = self.embedding_dim = vocab

    def forward(self, ids: Tensor) -> Tensor:
        return self.eye[ids.long()]  # (B, T, V)


def _masked_softmax(e: Tensor, mask: Tensor | None) -> Tensor:
    """softmax over the last axis (source positions), invalid (padded) positions get weight 0."""
    if mask is not None:
        e = e.masked_fill(~mask, float("-inf"))
    return torch.softmax(e, dim=-1)


class _Base(nn.Module):
    """core_input -> core -> head, shared by both model classes."""

    def core_input(self, batch) -> Tensor:
        """(B, T, in): embedded tokens, or the float input as float32."""
        if self.embed is not None:
            return self.embed(batch.x.long())  # (B, T, E)
        return batch.x.float()  # (B, T, input_dim)

    def forward(self, batch, truncation: int | None = None) -> Tensor:
        out = run_core(self.core, self.core_input(batch), truncation)  # (B, T, D*H)
        return self.head(out, batch)


# ----------------------------------------------------------------------------------------------------------
# many_to_one / many_to_many


class SequenceModel(_Base):
    """Embedding (token tasks) -> core -> Linear. many_to_one reads last_state, many_to_many every step."""

    def __init__(self, cfg: ModelConfig, task):
        super().__init__()
        self.cfg, self.kind = cfg, task.kind
        self.bidirectional = cfg.bidirectional and task.kind == "many_to_one"  # an LM can't see the future
        self.attention = "none"
        self.last_attention = None
        self.pad_id, self.bos_id = task.pad_id, task.bos_id
        self.embed = None
        if task.vocab_size:
            self.embed = OneHot(task.vocab_size, task.pad_id) if cfg.one_hot \
                else _embedding(task.vocab_size, cfg.embed_dim, task.pad_id)
        in_size = self.embed.embedding_dim if self.embed is not None else task.input_dim
        self.core = make_core(cfg, in_size, self.bidirectional)
        D = 2 if self.bidirectional else 1
        self.out = nn.Linear(D * cfg.hidden_size, task.output_dim)

    def head(self, out: Tensor, batch) -> Tensor:
        """out (B, T, D*H) -> (B, output_dim) for many_to_one, (B, T, output_dim) for many_to_many."""
        if self.kind == "many_to_one":
            return self.out(last_state(out, batch.lengths, self.cfg.hidden_size))
        return self.out(out)


# ----------------------------------------------------------------------------------------------------------
# seq2seq


class Seq2SeqModel(_Base):
    """Encoder (`core`, may be bidirectional) -> fixed context vector -> decoder (teacher forcing on y_in).

    `last_attention` holds the detached (B, T_out, T_in) weights of the latest forward (None without attention).
    """

    def __init__(self, cfg: ModelConfig, task):
        super().__init__()
        if task.bos_id is None:
            raise ValueError("a seq2seq task needs bos_id (the decoder's first input)")
        self.cfg, self.kind = cfg, "seq2seq"
        self.bidirectional = cfg.bidirectional
        self.attention = cfg.attention
        self.last_attention = None
        self.pad_id, self.bos_id = task.pad_id, task.bos_id
        H, L, E, V = cfg.hidden_size, cfg.num_layers, cfg.embed_dim, task.target_vocab
        enc_dim = H * (2 if self.bidirectional else 1)
        self.embed = _embedding(task.vocab_size, E, task.pad_id) if task.vocab_size else None
        self.core = make_core(cfg, E if self.embed is not None else task.input_dim, self.bidirectional)
        self.bridge = nn.Linear(enc_dim, L * H)  # fixed context vector -> s_0 of every decoder layer
        self.tgt_embed = _embedding(V, E, task.pad_id)
        self.decoder = make_core(cfg, E + (enc_dim if self.attention == "bahdanau" else 0), False)
        self.attn = nn.ModuleDict()
        if self.attention == "bahdanau":
            self.attn["W_q"] = nn.Linear(H, H, bias=False)
            self.attn["W_y"] = nn.Linear(E, H, bias=False)  # the token just emitted, y_{i-1}, into the query
            self.attn["W_k"] = nn.Linear(enc_dim, H)
            self.attn["v"] = nn.Linear(H, 1, bias=False)
        elif self.attention.startswith("luong"):
            if self.attention == "luong_general" or enc_dim != H:  # dot needs equal dims: project h_j
                self.attn["W_k"] = nn.Linear(enc_dim, H, bias=False)
            self.attn["W_c"] = nn.Linear(enc_dim + H, H, bias=False)
        self.out = nn.Linear(H + (enc_dim if self.attention == "bahdanau" else 0), V)

    @property
    def encoder(self) -> nn.Module:
        return self.core

    def _start(self, enc: Tensor, lengths: Tensor | None):
        """Decoder initial state and attention memory from the encoder output enc (B, T_in, D*H)."""
        B, T_in, _ = enc.shape
        H, L = self.cfg.hidden_size, self.cfg.num_layers
        s0 = torch.tanh(self.bridge(last_state(enc, lengths, H)))  # (B, L*H)
        s0 = s0.view(B, L, H).transpose(0, 1).contiguous()  # (L, B, H)
        state = (s0, torch.zeros_like(s0)) if self.decoder.mode == "LSTM" else s0
        mask = None
        if lengths is not None:
            mask = torch.arange(T_in, device=enc.device) < lengths.to(enc.device).clamp(min=1).unsqueeze(1)
        keys = self.attn["W_k"](enc) if "W_k" in self.attn else enc  # (B, T_in, H) or enc for plain dot
        return state, (enc, keys, mask)

    def _decode(self, y_in: Tensor, state, mem):
        """Decoder over tokens y_in (B, t). Returns logits (B, t, V), the new state, attention (B, t, T_in)|None."""
        enc, keys, mask = mem
        emb = self.tgt_embed(y_in)  # (B, t, E)
        if self.attention == "bahdanau":  # the query s_{i-1} is only known step by step
            logits, attns = [], []
            for i in range(emb.shape[1]):
                s = (state[0] if isinstance(state, tuple) else state)[-1]  # (B, H) top layer s_{i-1}
                q = self.attn["W_q"](s) + self.attn["W_y"](emb[:, i])  # (B, H): W_q s_{i-1} + W_y E y_{i-1}
                e = self.attn["v"](torch.tanh(q.unsqueeze(1) + keys)).squeeze(-1)  # (B, T_in)
                a = _masked_softmax(e, mask)
                c = (a.unsqueeze(1) @ enc)  # (B, 1, D*H)
                h, state = self.decoder(torch.cat([emb[:, i:i + 1], c], dim=-1), state)  # (B, 1, H)
                logits.append(self.out(torch.cat([h, c], dim=-1)))
                attns.append(a)
            return torch.cat(logits, dim=1), state, torch.stack(attns, dim=1)
        h, state = self.decoder(emb, state)  # (B, t, H)
        if self.attention == "none":
            return self.out(h), state, None
        e = h @ keys.transpose(1, 2)  # (B, t, T_in): h_i . h_j (dot) or h_i^T W h_j (general)
        a = _masked_softmax(e, None if mask is None else mask.unsqueeze(1))
        c = a @ enc  # (B, t, D*H)
        h_att = torch.tanh(self.attn["W_c"](torch.cat([c, h], dim=-1)))  # (B, t, H)
        return self.out(h_att), state, a

    def head(self, out: Tensor, batch) -> Tensor:
        """Encoder output (B, T_in, D*H) -> logits (B, T_out, target_vocab), teacher forcing with batch.y_in."""
        if getattr(batch, "y_in", None) is None:
            raise ValueError("a seq2seq batch needs y_in (the teacher-forcing decoder input)")
        state, mem = self._start(out, batch.lengths)
        logits, _, attn = self._decode(batch.y_in.long(), state, mem)
        self.last_attention = None if attn is None else attn.detach()
        return logits

    def attention_weights(self, batch) -> Tensor:
        """(B, T_out, T_in) attention of a teacher-forced pass; rows are non-negative and sum to 1."""
        if self.attention == "none":
            raise ValueError("attention_weights needs a model built with attention != 'none'")
        with torch.no_grad():
            self(batch)
        return self.last_attention

    @torch.no_grad()
    def greedy_decode(self, batch, max_len: int | None = None) -> Tensor:
        """(B, T_out) argmax tokens, each step fed back as the next input (no teacher forcing).
        max_len defaults to batch.y's length."""
        if max_len is None:
            if getattr(batch, "y", None) is None:
                raise ValueError("greedy_decode needs max_len when the batch has no y")
            max_len = batch.y.shape[1]
        enc = self.core(self.core_input(batch))[0]  # (B, T_in, D*H)
        state, mem = self._start(enc, batch.lengths)
        tok = torch.full((enc.shape[0], 1), self.bos_id, dtype=torch.long, device=enc.device)
        outs = []
        for _ in range(max_len):
            logits, state, _ = self._decode(tok, state, mem)
            tok = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
            outs.append(tok)
        return torch.cat(outs, dim=1) if outs else tok[:, :0]


# ----------------------------------------------------------------------------------------------------------
# Building, generation, bookkeeping


def build_model(cfg: ModelConfig, task) -> SequenceModel | Seq2SeqModel:
    """SequenceModel for many_to_one / many_to_many, Seq2SeqModel for seq2seq; float32 on the CPU.
    Deterministic in cfg.seed without touching the global RNG. cfg.attention is ignored unless seq2seq."""
    cfg.validate()
    if task.kind not in KINDS:
        raise ValueError(f"task.kind must be one of {list(KINDS)}, got {task.kind!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = Seq2SeqModel(cfg, task) if task.kind == "seq2seq" else SequenceModel(cfg, task)
        apply_init(model.core, cfg)
        if isinstance(model, Seq2SeqModel):
            apply_init(model.decoder, cfg)
    return model.float()


@torch.no_grad()
def generate(model: SequenceModel, task, prefix: str, n: int, temperature: float = 1.0, greedy: bool = False,
             generator: torch.Generator | None = None) -> str:
    """Char LM, one-to-many: read `prefix`, then emit n tokens, each fed back into the core's state.
    Samples softmax(logits / temperature) (argmax if greedy); PAD and BOS are never emitted.
    Returns the n new characters only. An empty prefix starts from BOS, or from the zero state without one."""
    if not (isinstance(model, SequenceModel) and model.kind == "many_to_many" and model.embed is not None):
        raise ValueError("generate needs a many_to_many model with token inputs (a char LM)")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not greedy and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0 when sampling (use greedy=True for argmax), got {temperature!r}")
    was_training = model.training
    model.eval()
    try:
        ids = task.encode(prefix) if prefix else None
        if ids is None and model.bos_id is not None:
            ids = [model.bos_id]
        state = None
        if ids is not None and len(ids) > 0:
            x = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)  # (1, t)
            out, state = model.core(model.embed(x), state)  # (1, t, H)
        else:
            out = torch.zeros(1, 1, model.cfg.hidden_size)  # the zero state
        banned = [i for i in (model.pad_id, model.bos_id) if i is not None and 0 <= i < model.out.out_features]
        new = []
        for _ in range(n):
            logits = model.head(out[:, -1:], None)[0, -1]  # (V,)
            logits[banned] = float("-inf")
            if greedy:
                tok = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                tok = int(torch.multinomial(probs, 1, generator=generator))
            new.append(tok)
            out, state = model.core(model.embed(torch.tensor([[tok]])), state)  # (1, 1, H)
        return task.decode(torch.tensor(new, dtype=torch.long))
    finally:
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_GROUP = {"out": "head", "attn": "attention", "tgt_embed": "decoder_embed"}


def param_groups(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Parameters grouped for per-layer gradient norms, in module order:
    "embed", "core.l0", "core.l0_reverse", "core.l1", ..., "bridge", "decoder_embed", "decoder.l0", ...,
    "attention", "head". Every parameter appears in exactly one group."""
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        m = re.search(r"_(l\d+(?:_reverse)?)$", name)
        key = f"{top}.{m.group(1)}" if top in ("core", "decoder") and m else _GROUP.get(top, top)
        groups.setdefault(key, []).append((name, p))
    return groups


__all__ = [
    "ATTENTIONS", "CELLS", "INITS", "ModelConfig", "OneHot", "Seq2SeqModel", "SequenceModel", "apply_init",
    "build_model", "count_parameters", "generate", "last_state", "make_core", "param_groups", "recurrent_matrices",
    "run_core", "spectral_stats",
]
