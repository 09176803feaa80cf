"""Seeded task generators: the Task contract of docs/ENGINE.md.

Every `Task.sample(batch_size, generator)` draws *all* its randomness from the given `torch.Generator`,
so the same seed gives the same batch, bit for bit. Nothing is downloaded: the char-LM text ships in
`rnnviz/data/`. Everything returned is on the CPU: float32 for values, int64 for tokens and classes.

    task = make_task("copy_memory", seq_len=100)      # seq_len = the delay T; inputs have T + 2R steps (R = 10)
    batch = task.sample(32, torch.Generator().manual_seed(0))
    loss = task.loss(model(batch), batch)             # compare with task.baseline

| name              | kind         | x                    | y              | loss | baseline         |
| ----------------- | ------------ | -------------------- | -------------- | ---- | ---------------- |
| adding            | many_to_one  | (B, T, 2) float      | (B,) float     | mse  | 1/6              |
| copy_memory       | many_to_many | (B, T+2R) long       | (B, T+2R) long | ce   | R ln K / (T+2R)  |
| parity            | many_to_one  | (B, T) long, padded  | (B,) long      | ce   | ln 2             |
| sentiment         | many_to_one  | (B, T) long, padded  | (B,) long      | ce   | ln 2             |
| char_lm, hello    | many_to_many | (B, T) long          | (B, T) long    | ce   | unigram entropy  |
| reverse/copy/sort | seq2seq      | (B, T) long          | (B, T) long    | ce   | ln 10            |
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MAX_TEXT_BYTES", "MAX_VOCAB", "TASKS", "Adding", "Batch", "CharLM", "Copy", "CopyMemory", "Hello",
    "Parity", "Reverse", "Sentiment", "Seq2SeqTask", "Sort", "Task", "bundled_text", "load_text_bytes",
    "make_task",
]

MAX_TEXT_BYTES = 1_000_000  # cap on a char-LM text (UTF-8 bytes), uploads included
MAX_VOCAB = 256  # cap on distinct characters of a char-LM text
MAX_CONTROL_SHARE = 0.01  # an upload with more C0 control bytes (not tab, newlines, form feed) is not text
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
DATA_DIR = Path(__file__).resolve().parent / "data"
BUNDLED_TEXT_PATH = DATA_DIR / "shakespeare.txt"


@dataclass
class Batch:
    x: Tensor  # (B, T) long tokens, or (B, T, input_dim) float32
    y: Tensor  # many_to_one: (B,) long class / float32 target; many_to_many: (B, T) long; seq2seq: (B, T_out)
    lengths: Tensor | None = None  # (B,) long valid lengths when x is padded with pad_id, else None
    y_in: Tensor | None = None  # seq2seq only: decoder input [BOS, y[:, :-1]], (B, T_out) long


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


class Task:
    """Base class: contract attributes, probe/loss/metric/decode/encode/describe. Subclasses set the
    class attributes below and implement `sample`."""

    name = "task"
    kind = "many_to_one"  # "many_to_one" | "many_to_many" | "seq2seq"
    description = ""  # one line for the UI
    lesson = ""  # one line: what watching this task teaches
    loss_kind = "ce"  # "mse" | "ce"
    metric_name = "accuracy"  # "mse" | "accuracy"
    MIN_LEN, MAX_LEN, DEFAULT_LEN = 2, 1000, 20  # bounds of seq_len (inclusive)
    OPTIONS: tuple[str, ...] = ()  # extra keyword options make_task accepts
    vocab_size: int | None = None
    input_dim: int | None = None
    output_dim = 2
    target_vocab: int | None = None
    pad_id: int | None = None
    bos_id: int | None = None
    itos: list[str] | None = None  # token id -> display string (token tasks)
    sep = ""  # joins decoded tokens ("" for characters/digits, " " for words)
    baseline = math.nan
    baseline_note = ""

    def __init__(self, seq_len: int | None = None):
        cls = type(self)
        if seq_len is None:
            seq_len = cls.DEFAULT_LEN
        if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral):
            raise ValueError(f"{self.name}: seq_len must be an int, got {seq_len!r}")
        if not cls.MIN_LEN <= seq_len <= cls.MAX_LEN:
            raise ValueError(f"{self.name}: seq_len must be in [{cls.MIN_LEN}, {cls.MAX_LEN}], got {seq_len}")
        self.seq_len = int(seq_len)
        self.stoi = {s: i for i, s in enumerate(self.itos)} if self.itos is not None else None

    # -- data ------------------------------------------------------------------------------------------------
    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def _check(self, batch_size, generator) -> int:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"{self.name}.sample needs a torch.Generator, got {generator!r}")
        return _positive_int(batch_size, "batch_size")

    def probe(self, batch_size: int = 8, seed: int = 1234) -> Batch:
        """A fixed batch: the same (batch_size, seed) always gives the same batch."""
        return self.sample(batch_size, torch.Generator().manual_seed(seed))

    # -- scoring ---------------------------------------------------------------------------------------------
    def _ignore_index(self) -> int:
        return self.pad_id if self.pad_id is not None else -100

    def loss(self, pred: Tensor, batch: Batch) -> Tensor:
        """Scalar loss. mse: mean (pred - y)^2; ce: mean cross-entropy over samples (many_to_one) or over
        all non-pad positions (many_to_many, seq2seq). pred: (B, 1) | (B, C) | (B, T, C)."""
        if self.loss_kind == "mse":
            return F.mse_loss(pred.squeeze(-1), batch.y)
        if self.kind == "many_to_one":
            return F.cross_entropy(pred, batch.y)
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), batch.y.reshape(-1),
                               ignore_index=self._ignore_index())

    @torch.no_grad()
    def metric(self, pred: Tensor, batch: Batch) -> float:
        """mse tasks: the mse. Token tasks: accuracy of argmax over samples / non-pad positions."""
        if self.metric_name == "mse":
            return float(F.mse_loss(pred.squeeze(-1), batch.y))
        hit = pred.argmax(-1) == batch.y
        if self.kind != "many_to_one" and self.pad_id is not None:
            keep = batch.y != self.pad_id
            return float(hit[keep].float().mean()) if keep.any() else math.nan
        return float(hit.float().mean())

    @property
    def higher_is_better(self) -> bool:
        return self.metric_name == "accuracy"

    # -- tokens ----------------------------------------------------------------------------------------------
    def decode(self, ids) -> str:
        """Token ids (any shape, flattened) -> text; pad and BOS are dropped."""
        if self.itos is None:
            raise NotImplementedError(f"{self.name} has float inputs: nothing to decode")
        skip = {self.pad_id, self.bos_id} - {None}
        out = []
        for i in torch.as_tensor(ids).reshape(-1).tolist():
            if not 0 <= i < len(self.itos):
                raise ValueError(f"{self.name}: token id {i} is outside the vocabulary [0, {len(self.itos)})")
            if i not in skip:
                out.append(self.itos[i])
        return self.sep.join(out)

    def encode(self, s: str) -> Tensor:
        """Text -> (L,) long ids (characters, or words for word tasks). Unknown symbols raise ValueError."""
        if self.stoi is None:
            raise NotImplementedError(f"{self.name} has float inputs: nothing to encode")
        toks = s.split() if self.sep == " " else list(s)
        unknown = sorted({t for t in toks if t not in self.stoi})
        if unknown:
            raise ValueError(f"{self.name}: not in the vocabulary: {unknown[:10]}")
        return torch.tensor([self.stoi[t] for t in toks], dtype=torch.long)

    def describe(self) -> dict:
        """JSON-serialisable summary (shapes with 'B' for the batch dimension)."""
        b = self.probe(batch_size=1)

        def shape(t):
            return None if t is None else ["B", *t.shape[1:]]

        return {
            "name": self.name, "kind": self.kind, "description": self.description, "lesson": self.lesson,
            "seq_len": self.seq_len, "seq_len_bounds": [self.MIN_LEN, self.MAX_LEN],
            "x_shape": shape(b.x), "x_dtype": str(b.x.dtype).removeprefix("torch."),
            "y_shape": shape(b.y), "y_dtype": str(b.y.dtype).removeprefix("torch."),
            "y_in_shape": shape(b.y_in), "padded": b.lengths is not None,
            "vocab_size": self.vocab_size, "input_dim": self.input_dim, "output_dim": self.output_dim,
            "target_vocab": self.target_vocab, "pad_id": self.pad_id, "bos_id": self.bos_id,
            "loss_kind": self.loss_kind, "metric_name": self.metric_name,
            "baseline": float(self.baseline), "baseline_note": self.baseline_note,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq_len={self.seq_len})"


# ------------------------------------------------------------------------------------------------------------
# Float inputs


class Adding(Task):
    """Adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015).

    x_t = (u_t, m_t), u_t ~ U[0, 1]; the marker m has exactly two 1s, at i in [0, T//2) and j in [T//2, T).
    y = u_i + u_j. Predicting the constant 1 (= E[y]) scores E[(y - 1)^2] = Var(u_i + u_j) = 2/12 = 1/6.
    """

    name, kind, loss_kind, metric_name = "adding", "many_to_one", "mse", "mse"
    description = "Add the two numbers marked by a 1 in the second channel; one is in each half."
    lesson = "Long-range credit assignment: the first marked number sits up to T steps back."
    DEFAULT_LEN = 50
    input_dim, output_dim = 2, 1
    baseline = 1 / 6
    baseline_note = "always predicting 1 (the mean of the sum) gives MSE 1/6"

    def sample(self, batch_size, generator):
        B, T = self._check(batch_size, generator), self.seq_len
        u = torch.rand(B, T, generator=generator, dtype=torch.float32)  # (B, T)
        i = torch.randint(0, T // 2, (B,), generator=generator)  # first half
        j = torch.randint(T // 2, T, (B,), generator=generator)  # second half
        rows = torch.arange(B)
        m = torch.zeros(B, T)
        m[rows, i] = 1.0
        m[rows, j] = 1.0
        return Batch(x=torch.stack([u, m], dim=-1), y=u[rows, i] + u[rows, j])  # (B, T, 2), (B,)


# ------------------------------------------------------------------------------------------------------------
# Token inputs


class CopyMemory(Task):
    """Copy-memory problem (Arjovsky et al. 2016). `seq_len` is the delay T; sequences have T + 2R steps.

    Options: n_recall = R symbols to remember (default 10), n_symbols = K categories (default 8).
    Tokens: 0 blank, 1..K symbols, K+1 delimiter. Input  = R symbols, T-1 blanks, delimiter, R blanks.
                                                   Target = T+R blanks, then the R symbols.
    Loss: mean CE over all T+2R positions. A memoryless model that outputs blanks perfectly and is uniform
    over the K symbols on the last R steps scores R ln K / (T + 2R) (defaults, T=100: 10 ln 8 / 120 = 0.173).
    Metric: accuracy over the last R positions only (the recalled symbols), so 1/K is chance.
    """

    name, kind = "copy_memory", "many_to_many"
    description = "Remember a few symbols, wait T steps, then play them back after the delimiter."
    lesson = "Memory over a delay of T steps: the gradient must survive T+R steps of recurrence."
    MIN_LEN, MAX_LEN, DEFAULT_LEN = 1, 1000, 20
    OPTIONS = ("n_recall", "n_symbols")
    N_SYMBOLS, N_RECALL, BLANK = 8, 10, 0  # defaults
    RECALL_BOUNDS, SYMBOL_BOUNDS = (1, 50), (2, 20)
    GLYPHS = "123456789ABCDEFGHIJK"  # display strings of symbols 1..20

    def __init__(self, seq_len=None, n_recall: int | None = None, n_symbols: int | None = None):
        super().__init__(seq_len)
        R = self.N_RECALL if n_recall is None else n_recall
        K = self.N_SYMBOLS if n_symbols is None else n_symbols
        for what, v, (lo, hi) in (("n_recall", R, self.RECALL_BOUNDS), ("n_symbols", K, self.SYMBOL_BOUNDS)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
                raise ValueError(f"{self.name}: {what} must be an int in [{lo}, {hi}], got {v!r}")
        self.n_recall, self.n_symbols = int(R), int(K)
        self.DELIM = self.n_symbols + 1
        self.vocab_size = self.output_dim = self.n_symbols + 2
        self.itos = ["-", *self.GLYPHS[:self.n_symbols], ":"]
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self.input_len = self.seq_len + 2 * self.n_recall  # x.shape[1] == T + 2R
        self.baseline = self.n_recall * math.log(self.n_symbols) / self.input_len
        self.baseline_note = (f"blanks perfectly, then uniform over the {self.n_symbols} symbols: "
                              f"{self.n_recall} ln {self.n_symbols} / (T + {2 * self.n_recall})")

    def phases(self) -> list[tuple[str, int, int]]:
        """Input positions of each phase, (name, start, end_exclusive), in order; they tile [0, T + 2R).
        symbols [0, R), delay [R, R+T-1) (the T-1 blanks; empty when T = 1), delimiter [R+T-1, R+T),
        recall [R+T, T+2R) (blank inputs; the targets are the symbols)."""
        R, T = self.n_recall, self.seq_len
        return [("symbols", 0, R), ("delay", R, R + T - 1), ("delimiter", R + T - 1, R + T),
                ("recall", R + T, T + 2 * R)]

    def sample(self, batch_size, generator):
        B, T, R = self._check(batch_size, generator), self.seq_len, self.n_recall
        sym = torch.randint(1, self.n_symbols + 1, (B, R), generator=generator)  # (B, R)
        x = torch.zeros(B, T + 2 * R, dtype=torch.long)  # (B, T+2R) blanks
        x[:, :R] = sym
        x[:, R + T - 1] = self.DELIM
        y = torch.zeros_like(x)
        y[:, -R:] = sym
        return Batch(x=x, y=y)

    @torch.no_grad()
    def metric(self, pred, batch):
        R = self.n_recall
        return float((pred[:, -R:].argmax(-1) == batch.y[:, -R:]).float().mean())

    def describe(self) -> dict:
        return {**super().describe(), "n_recall": self.n_recall, "n_symbols": self.n_symbols,
                "phases": [list(p) for p in self.phases()]}

    def __repr__(self) -> str:
        return f"CopyMemory(seq_len={self.seq_len}, n_recall={self.n_recall}, n_symbols={self.n_symbols})"


def _lengths_and_mask(B: int, lo: int, T: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    lengths = torch.randint(lo, T + 1, (B,), generator=g)  # (B,) uniform in [lo, T]
    return lengths, torch.arange(T)[None, :] < lengths[:, None]  # (B,), (B, T) bool


class Parity(Task):
    """Parity of a variable-length bit string: y = b_1 XOR ... XOR b_L (padding excluded).

    Tokens: 0 pad, 1 = bit 0, 2 = bit 1. L ~ U{max(1, T//2), ..., T}; x padded to T with pad_id.
    Labels are balanced, so a constant guess of (1/2, 1/2) scores ln 2.
    """

    name, kind = "parity", "many_to_one"
    description = "Is the number of 1s odd? Bit strings of varying length, padded."
    lesson = "Every bit matters to the end: one wrong bit flips the answer, so no shortcut exists."
    DEFAULT_LEN = 16
    vocab_size, output_dim, pad_id = 3, 2, 0
    itos = ["_", "0", "1"]
    baseline = math.log(2)
    baseline_note = "balanced classes: predicting 50/50 gives ln 2"

    def sample(self, batch_size, generator):
        B, T = self._check(batch_size, generator), self.seq_len
        bits = torch.randint(0, 2, (B, T), generator=generator)  # (B, T)
        lengths, valid = _lengths_and_mask(B, max(1, T // 2), T, generator)
        bits = bits * valid
        x = torch.where(valid, bits + 1, torch.zeros_like(bits))  # (B, T), 0 = pad
        return Batch(x=x, y=bits.sum(1) % 2, lengths=lengths)


class Sentiment(Task):
    """Synthetic reviews. Score = (#positive - #negative sentiment words), where "not" flips the word right
    after it ("not good" counts as negative). Label 1 iff score > 0.

    Generation keeps every "not" directly before a sentiment word and the number of sentiment words odd
    (so score != 0: no ties); the label is drawn 50/50 first and, if the review disagrees, every sentiment
    word is swapped for its opposite (good <-> bad), which negates the score. Lengths ~ U{max(2, T//2)..T}.
    """

    name, kind = "sentiment", "many_to_one"
    description = "Is this made-up review positive? Words like good/bad count, 'not' flips the next one."
    lesson = "Which words matter: watch the state jump on sentiment words and ignore the fillers."
    DEFAULT_LEN = 20
    POSITIVE = ["good", "great", "fine", "love", "excellent", "nice", "fun", "wonderful"]
    NEGATIVE = ["bad", "awful", "hate", "terrible", "boring", "poor", "dull", "worst"]  # opposes POSITIVE[k]
    NEUTRAL = ["the", "movie", "film", "was", "is", "it", "plot", "acting", "and", "a", "this", "story"]
    NOT, POS0, NEG0, NEU0 = 1, 2, 10, 18  # token ids; 0 = pad
    itos = ["<pad>", "not", *POSITIVE, *NEGATIVE, *NEUTRAL]
    vocab_size, output_dim, pad_id = len(itos), 2, 0
    sep = " "
    baseline = math.log(2)
    baseline_note = "balanced classes: predicting 50/50 gives ln 2"

    def score(self, x: Tensor) -> Tensor:
        """(B, T) ids -> (B,) long sentiment score; a sentiment word right after "not" counts reversed."""
        sign = ((x >= self.POS0) & (x < self.NEG0)).long() - ((x >= self.NEG0) & (x < self.NEU0)).long()
        after_not = torch.zeros_like(x, dtype=torch.bool)
        after_not[:, 1:] = x[:, :-1] == self.NOT
        return torch.where(after_not, -sign, sign).sum(1)

    def sample(self, batch_size, generator):
        B, T, g = self._check(batch_size, generator), self.seq_len, generator
        NEU, POS, NEG, NOT = 0, 1, 2, 3  # word categories
        lengths, valid = _lengths_and_mask(B, max(2, T // 2), T, g)
        cat = torch.bucketize(torch.rand(B, T, generator=g), torch.tensor([0.55, 0.725, 0.9]))  # (B, T)
        pol = torch.randint(POS, NEG + 1, (B, T), generator=g)  # a random polarity for forced words
        after_not = torch.zeros_like(valid)
        after_not[:, 1:] = cat[:, :-1] == NOT
        senti = lambda c: (c == POS) | (c == NEG)  # noqa: E731
        cat = torch.where(after_not & ~senti(cat), pol, cat)  # every "not" is followed by a sentiment word
        rows, last = torch.arange(B), lengths - 1
        cat[rows, last] = torch.where(cat[rows, last] == NOT, NEU, cat[rows, last])  # ... if it can be
        # Odd number of sentiment words => no ties: fix the last word if the count is even.
        even = (senti(cat) & valid).sum(1) % 2 == 0
        last_senti = senti(cat[rows, last])
        cat[rows, last] = torch.where(even, torch.where(last_senti, NEU, pol[rows, last]), cat[rows, last])
        prev = (last - 1).clamp(min=0)
        orphan = even & last_senti & (cat[rows, prev] == NOT)  # its sentiment word just became neutral
        cat[rows, prev] = torch.where(orphan, NEU, cat[rows, prev])
        # Words within each category, then ids.
        k = torch.randint(0, len(self.POSITIVE), (B, T), generator=g)
        kn = torch.randint(0, len(self.NEUTRAL), (B, T), generator=g)
        x = torch.full((B, T), self.NOT, dtype=torch.long)
        x = torch.where(cat == NEU, self.NEU0 + kn, x)
        x = torch.where(cat == POS, self.POS0 + k, x)
        x = torch.where(cat == NEG, self.NEG0 + k, x)
        x = torch.where(valid, x, torch.zeros_like(x))
        # Balanced labels: draw y, then mirror good <-> bad where the review says otherwise.
        y = torch.randint(0, 2, (B,), generator=g)
        flip = ((self.score(x) > 0).long() != y)[:, None] & (x >= self.POS0) & (x < self.NEU0)
        x = torch.where(flip, torch.where(x < self.NEG0, x + 8, x - 8), x)
        return Batch(x=x, y=(self.score(x) > 0).long(), lengths=lengths)


# ------------------------------------------------------------------------------------------------------------
# Character language models


def bundled_text() -> str:
    """The bundled public-domain text (rnnviz/data/shakespeare.txt, ~128 KB of Coriolanus)."""
    return BUNDLED_TEXT_PATH.read_text(encoding="utf-8")


def load_text_bytes(data: bytes) -> str:
    """Uploaded bytes -> str: strict UTF-8 (a leading BOM is dropped).

    Raises ValueError when the data is empty, over MAX_TEXT_BYTES, not text (a NUL byte, or more than
    MAX_CONTROL_SHARE of C0 control bytes other than tab, newlines and form feed: a binary file), or not valid
    UTF-8 (text in another encoding)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ValueError("the text is empty")
    if len(data) > MAX_TEXT_BYTES:
        raise ValueError(f"the text is {len(data):,} bytes, over the MAX_TEXT_BYTES cap "
                         f"of {MAX_TEXT_BYTES:,}")
    if b"\x00" in data:
        raise ValueError(f"the file is not text: it contains NUL bytes (the first at offset {data.index(0):,}), "
                         "as a binary file does; upload plain UTF-8 text")
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    if controls > MAX_CONTROL_SHARE * len(data):
        raise ValueError(f"the file is not text: {controls / len(data):.0%} of its bytes are control characters, "
                         "as in a binary file; upload plain UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"the file is not valid UTF-8 (bad byte at offset {e.start}); "
                         "save it as UTF-8") from e
    return text.removeprefix("\ufeff")


class CharLM(Task):
    """Character-level language model on a text: x = text[i : i+T], y = text[i+1 : i+T+1].

    Vocabulary = sorted set of the text's characters. Baseline = unigram entropy of the text,
    H = -sum_c p_c ln p_c (nats): the CE of always predicting the character frequencies.
    """

    name, kind = "char_lm", "many_to_many"
    description = "Predict the next character of a text (Shakespeare, or your own)."
    lesson = "What a recurrent state can hold: spelling, words, line breaks, who speaks next."
    MIN_LEN, MAX_LEN, DEFAULT_LEN = 1, 1000, 64
    OPTIONS = ("text",)
    ALIGN = 1  # windows start at multiples of ALIGN

    def __init__(self, seq_len=None, text: str | None = None):
        super().__init__(seq_len)
        text = bundled_text() if text is None else text
        if not isinstance(text, str):
            raise ValueError(f"{self.name}: text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError(f"{self.name}: the text is empty")
        n_bytes = len(text.encode("utf-8"))
        if n_bytes > MAX_TEXT_BYTES:
            raise ValueError(f"{self.name}: the text is {n_bytes:,} bytes, over the MAX_TEXT_BYTES cap "
                             f"of {MAX_TEXT_BYTES:,}")
        self.itos = sorted(set(text))
        if len(self.itos) > MAX_VOCAB:
            raise ValueError(f"{self.name}: the text has {len(self.itos)} distinct characters, over the "
                             f"MAX_VOCAB cap of {MAX_VOCAB}")
        if len(text) < self.seq_len + 1:
            raise ValueError(f"{self.name}: the text has {len(text)} characters; seq_len={self.seq_len} "
                             f"needs at least seq_len + 1 = {self.seq_len + 1}")
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self.text = text
        self.data = torch.tensor([self.stoi[c] for c in text], dtype=torch.long)  # (N,)
        self.vocab_size = self.output_dim = len(self.itos)
        p = torch.bincount(self.data, minlength=self.vocab_size).double() / len(self.data)
        self.baseline = float(-(p[p > 0] * p[p > 0].log()).sum())
        self.baseline_note = "predicting the text's character frequencies: unigram entropy (nats)"

    def sample(self, batch_size, generator):
        B, T = self._check(batch_size, generator), self.seq_len
        n_starts = (len(self.data) - T - 1) // self.ALIGN + 1  # window starts 0, A, 2A, ... with i + T < N
        i = torch.randint(0, n_starts, (B,), generator=generator) * self.ALIGN  # (B,)
        w = self.data[i[:, None] + torch.arange(T + 1)]  # (B, T+1)
        return Batch(x=w[:, :-1], y=w[:, 1:])


class Hello(CharLM):
    """The classic toy: "hello" repeated, windows aligned to the h. seq_len 4: "hell" -> "ello"."""

    name = "hello"
    description = "The classic toy: read 'hell', predict 'ello' (vocabulary h, e, l, o)."
    lesson = "The smallest char-RNN: after 'l' the answer is 'l' or 'o', so the state must count."
    MIN_LEN, MAX_LEN, DEFAULT_LEN = 1, 100, 4
    OPTIONS = ()
    ALIGN = 5

    def __init__(self, seq_len=None):
        n = self.DEFAULT_LEN if seq_len is None else seq_len
        ok = isinstance(n, numbers.Integral) and not isinstance(n, bool)
        reps = min(int(n), self.MAX_LEN) // 5 + 4 if ok else 1  # bad seq_len: the base class raises
        super().__init__(seq_len, text="hello" * reps)


# ------------------------------------------------------------------------------------------------------------
# Sequence to sequence


class Seq2SeqTask(Task):
    """Digit sequences in, digit sequences out. Tokens: 0 PAD, 1 BOS (shown as <sos>), 2..11 = digits 0..9.

    x (B, T) source, y (B, T) target, y_in = [BOS, y[:, :-1]] (teacher forcing). A uniform guess over the
    10 digits scores ln 10. Metric: token accuracy.

    Option eos=True (default False: everything above unchanged): token 12 = EOS ends every target,
    y (B, T+1) = [target, EOS], y_in = [BOS, y[:, :-1]] (B, T+1); baseline T ln 10 / (T+1) (the EOS step is
    known). Greedy decoding can then stop when the model emits EOS (rnnviz.decoding).
    """

    kind = "seq2seq"
    MIN_LEN, MAX_LEN, DEFAULT_LEN = 2, 200, 8  # attention maps are T x T
    OPTIONS = ("eos",)
    vocab_size = target_vocab = output_dim = 12
    pad_id, bos_id, eos_id = 0, 1, None
    itos = ["<pad>", "<sos>", *"0123456789"]  # <sos> (bos_id) starts the decoder
    attention_shape = ""  # what the attention map should look like once learned
    baseline = math.log(10)
    baseline_note = "a uniform guess over the 10 digits gives ln 10"

    def __init__(self, seq_len=None, eos: bool = False):
        super().__init__(seq_len)
        if not isinstance(eos, bool):
            raise ValueError(f"{self.name}: eos must be a bool, got {eos!r}")
        self.eos = eos
        if eos:
            self.eos_id = 12
            self.vocab_size = self.target_vocab = self.output_dim = 13
            self.itos = [*type(self).itos, "<eos>"]
            self.stoi = {s: i for i, s in enumerate(self.itos)}
            self.baseline = self.seq_len * math.log(10) / (self.seq_len + 1)
            self.baseline_note = "a uniform guess over the 10 digits, then EOS: T ln 10 / (T + 1)"

    def target(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, batch_size, generator):
        B, T = self._check(batch_size, generator), self.seq_len
        x = torch.randint(2, 12, (B, T), generator=generator)  # (B, T) digits
        y = self.target(x)  # (B, T)
        if self.eos:
            y = torch.cat([y, torch.full((B, 1), self.eos_id, dtype=torch.long)], dim=1)  # (B, T+1)
        y_in = torch.cat([torch.full((B, 1), self.bos_id, dtype=torch.long), y[:, :-1]], dim=1)
        return Batch(x=x, y=y, y_in=y_in)

    def describe(self) -> dict:
        return {**super().describe(), "attention_shape": self.attention_shape, "eos_id": self.eos_id}


class Reverse(Seq2SeqTask):
    """y_t = x_{T-1-t}: output step t attends to input T-1-t (an anti-diagonal attention map)."""

    name = "reverse"
    description = "Write the digits backwards."
    lesson = "Without attention the first output needs the last-but-T input; with it: an anti-diagonal."
    attention_shape = "anti-diagonal"

    def target(self, x):
        return x.flip(1)


class Copy(Seq2SeqTask):
    """y = x: output step t attends to input t (a diagonal attention map)."""

    name = "copy"
    description = "Write the same digits again."
    lesson = "The easiest alignment: attention learns the diagonal."
    attention_shape = "diagonal"

    def target(self, x):
        return x.clone()


class Sort(Seq2SeqTask):
    """y = sorted(x) ascending: no fixed alignment; each output attends to where that digit occurs."""

    name = "sort"
    description = "Write the digits in ascending order."
    lesson = "Attention by content, not position: no simple shape, it looks up where each digit is."
    attention_shape = "no simple shape (content-based: each output looks for its digit)"

    def target(self, x):
        return x.sort(dim=1).values


# ------------------------------------------------------------------------------------------------------------

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (Adding, CopyMemory, Parity, Sentiment, CharLM, Hello, Reverse, Copy, Sort)
}


def make_task(name: str, seq_len: int | None = None, **opts) -> Task:
    """Build a task by name. seq_len=None picks the task's default; options (Task.OPTIONS): char_lm takes
    text=, copy_memory takes n_recall= and n_symbols=."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    cls = TASKS[name]
    bad = sorted(set(opts) - set(cls.OPTIONS))
    if bad:
        allowed = ", ".join(cls.OPTIONS) or "none"
        raise ValueError(f"task {name!r} got unknown option(s) {bad}; allowed options: {allowed}")
    return cls(seq_len=seq_len, **opts)
