"""rnnviz.tasks: seeded generators, shapes, targets, baselines and input validation."""

import json
import math
from collections import Counter

import pytest
import torch

from rnnviz.tasks import (
    MAX_TEXT_BYTES,
    MAX_VOCAB,
    TASKS,
    Batch,
    CharLM,
    Sentiment,
    bundled_text,
    load_text_bytes,
    make_task,
)

ALL = ["adding", "copy_memory", "parity", "sentiment", "char_lm", "hello", "reverse", "copy", "sort"]
SEQ2SEQ = ["reverse", "copy", "sort"]


def gen(seed):
    return torch.Generator().manual_seed(seed)


def same(a: Batch, b: Batch) -> bool:
    def eq(u, v):
        return (u is None and v is None) or (u is not None and v is not None and torch.equal(u, v))

    return eq(a.x, b.x) and eq(a.y, b.y) and eq(a.lengths, b.lengths) and eq(a.y_in, b.y_in)


@pytest.fixture(scope="module")
def shakespeare():
    return make_task("char_lm", seq_len=32)


# ----------------------------------------------------------------------------------------------------------
# Registry and options


def test_registry_names():
    assert sorted(TASKS) == sorted(ALL)
    for name, cls in TASKS.items():
        t = make_task(name)
        assert isinstance(t, cls) and t.name == name
        assert t.description and "\n" not in t.description


def test_unknown_task_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown task 'nope'.*adding.*copy_memory"):
        make_task("nope")


@pytest.mark.parametrize("name", ALL)
def test_seq_len_bounds(name):
    cls = TASKS[name]
    assert 1 <= cls.MIN_LEN <= cls.DEFAULT_LEN <= cls.MAX_LEN
    assert make_task(name, seq_len=cls.MIN_LEN).seq_len == cls.MIN_LEN
    assert make_task(name, seq_len=cls.MAX_LEN).seq_len == cls.MAX_LEN
    assert make_task(name).seq_len == cls.DEFAULT_LEN
    for bad in (cls.MIN_LEN - 1, cls.MAX_LEN + 1):
        with pytest.raises(ValueError, match=rf"{name}: seq_len must be in \[{cls.MIN_LEN}, {cls.MAX_LEN}\]"):
            make_task(name, seq_len=bad)
    for bad in (3.5, "10", True):
        with pytest.raises(ValueError, match="seq_len must be an int"):
            make_task(name, seq_len=bad)


def test_synthetic_tasks_reach_1000_steps():
    for name in ["adding", "copy_memory", "parity", "sentiment", "char_lm"]:
        assert TASKS[name].MAX_LEN == 1000


def test_unknown_options_rejected():
    msg = r"'adding' got unknown option\(s\) \['text'\]; allowed options: none"
    with pytest.raises(ValueError, match=msg):
        make_task("adding", text="abc")
    with pytest.raises(ValueError, match="allowed options: none"):
        make_task("hello", text="abc")
    with pytest.raises(ValueError, match="allowed options: text"):
        make_task("char_lm", txt="abc")


def test_sample_arguments_checked():
    t = make_task("adding")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        t.sample(0, gen(0))
    with pytest.raises(TypeError, match="torch.Generator"):
        t.sample(4, None)


# ----------------------------------------------------------------------------------------------------------
# Determinism, shapes, dtypes: every task


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_batch_and_global_rng_unused(name):
    t = make_task(name)
    torch.manual_seed(1)
    a = t.sample(16, gen(7))
    torch.manual_seed(2)  # a task that touched the global RNG would now differ
    b = t.sample(16, gen(7))
    assert same(a, b)
    assert same(t.probe(), t.probe())
    assert same(t.probe(batch_size=5, seed=3), t.sample(5, gen(3)))


@pytest.mark.parametrize("name", [n for n in ALL if n != "hello"])  # hello: every window is "hell"
def test_different_seed_different_batch(name):
    t = make_task(name)
    assert not same(t.sample(16, gen(7)), t.sample(16, gen(8)))
    g = gen(7)
    assert not same(t.sample(16, g), t.sample(16, g))  # the generator advances


@pytest.mark.parametrize("name", ALL)
def test_shapes_dtypes_and_describe(name):
    t = make_task(name)
    B, T = 6, t.seq_len
    b = t.sample(B, gen(0))
    for v in (b.x, b.y, b.lengths, b.y_in):
        assert v is None or v.device.type == "cpu"
    if t.input_dim is not None:  # float inputs
        assert t.vocab_size is None and b.x.dtype == torch.float32 and b.x.shape == (B, T, t.input_dim)
    else:
        assert t.input_dim is None and b.x.dtype == torch.int64
        assert b.x.min() >= 0 and b.x.max() < t.vocab_size
    if t.kind == "many_to_one":
        assert b.y.shape == (B,)
        assert b.y.dtype == (torch.float32 if t.loss_kind == "mse" else torch.int64)
    else:
        assert b.y.dtype == torch.int64 and b.y.shape == b.x.shape[:2]
        assert b.y.min() >= 0 and b.y.max() < t.output_dim
    assert (b.y_in is not None) == (t.kind == "seq2seq")
    assert (b.lengths is not None) == (name in ("parity", "sentiment"))
    d = t.describe()
    json.dumps(d)
    assert d["name"] == name and d["kind"] == t.kind and d["seq_len"] == T
    assert d["x_shape"] == ["B", *b.x.shape[1:]] and d["baseline"] == pytest.approx(t.baseline)
    assert t.baseline > 0 and t.baseline_note


# ----------------------------------------------------------------------------------------------------------
# adding


def test_adding_targets_and_markers():
    t = make_task("adding", seq_len=11)
    b = t.sample(500, gen(0))
    u, m = b.x[..., 0], b.x[..., 1]
    assert u.min() >= 0 and u.max() <= 1
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert (m.sum(1) == 2).all()
    assert (m[:, :5].sum(1) == 1).all() and (m[:, 5:].sum(1) == 1).all()  # one in each half
    assert torch.allclose(b.y, (u * m).sum(1))
    assert m[:, 0].any() and m[:, 4].any() and m[:, 5].any() and m[:, 10].any()  # whole halves are used


def test_adding_baseline_is_one_sixth_empirically():
    t = make_task("adding", seq_len=10)
    assert t.baseline == pytest.approx(1 / 6)
    b = t.sample(20_000, gen(0))
    assert abs(t.loss(torch.ones(20_000, 1), b).item() - 1 / 6) < 0.01
    assert t.metric(torch.ones(20_000, 1), b) == pytest.approx(t.loss(torch.ones(20_000, 1), b).item())
    assert t.loss(b.y[:, None], b).item() == 0.0
    assert not t.higher_is_better


# ----------------------------------------------------------------------------------------------------------
# copy_memory


@pytest.mark.parametrize("T", [1, 5, 100])
def test_copy_memory_layout(T):
    t = make_task("copy_memory", seq_len=T)
    b = t.sample(64, gen(T))
    assert b.x.shape == (64, T + 20) == b.y.shape and t.input_len == T + 20
    sym = b.x[:, :10]
    assert sym.min() >= 1 and sym.max() <= 8
    assert (b.x[:, 10:T + 9] == 0).all()  # T-1 blanks
    assert (b.x[:, T + 9] == 9).all()  # delimiter
    assert (b.x[:, T + 10:] == 0).all()  # 10 blanks
    assert (b.y[:, :T + 10] == 0).all() and torch.equal(b.y[:, T + 10:], sym)
    assert (b.x == 9).sum() == 64


def test_copy_memory_baselines():
    assert round(make_task("copy_memory", seq_len=100).baseline, 3) == 0.173
    assert round(make_task("copy_memory", seq_len=200).baseline, 4) == 0.0945
    assert round(make_task("copy_memory", seq_len=500).baseline, 3) == 0.040


def test_copy_memory_memoryless_predictor_scores_baseline_and_chance():
    t = make_task("copy_memory", seq_len=30)
    b = t.sample(32, gen(0))
    logits = torch.full((32, 50, 10), -1e4)
    logits[:, :40, 0] = 0.0  # sure of the blanks
    logits[:, 40:, 1:9] = 0.0  # uniform over the 8 symbols at the end
    assert t.loss(logits, b).item() == pytest.approx(t.baseline, rel=1e-4)
    perfect = torch.nn.functional.one_hot(b.y, 10).float()
    assert t.metric(perfect, b) == 1.0
    blanks_only = torch.nn.functional.one_hot(torch.zeros_like(b.y), 10).float()
    assert t.metric(blanks_only, b) == 0.0  # blanks are 80% of positions but not scored


# ----------------------------------------------------------------------------------------------------------
# parity


def test_parity_labels_lengths_and_padding():
    t = make_task("parity", seq_len=12)
    b = t.sample(2000, gen(0))
    assert b.lengths.min() == 6 and b.lengths.max() == 12
    for row, n, y in zip(b.x.tolist(), b.lengths.tolist(), b.y.tolist(), strict=True):
        assert all(v in (1, 2) for v in row[:n]) and all(v == 0 for v in row[n:])
        xor = 0
        for v in row[:n]:
            xor ^= v - 1
        assert y == xor
    assert 0.45 < b.y.float().mean() < 0.55
    assert t.baseline == pytest.approx(math.log(2))
    assert t.decode(b.x[0]) == "".join("01"[v - 1] for v in b.x[0, : b.lengths[0]].tolist())


def test_parity_length_range_small_T():
    b = make_task("parity", seq_len=2).sample(200, gen(1))
    assert set(b.lengths.tolist()) == {1, 2}


# ----------------------------------------------------------------------------------------------------------
# sentiment


def _score_words(words):
    pos, neg = set(Sentiment.POSITIVE), set(Sentiment.NEGATIVE)
    score, prev = 0, None
    for w in words:
        s = 1 if w in pos else -1 if w in neg else 0
        score += -s if prev == "not" else s
        prev = w
    return score


def test_sentiment_labels_follow_the_rule_no_ties_balanced():
    t = make_task("sentiment", seq_len=16)
    assert 25 <= t.vocab_size <= 35 and t.pad_id == 0
    b = t.sample(1500, gen(0))
    assert b.lengths.min() == 8 and b.lengths.max() == 16
    n_not = 0
    for row, n, y in zip(b.x.tolist(), b.lengths.tolist(), b.y.tolist(), strict=True):
        assert all(v != 0 for v in row[:n]) and all(v == 0 for v in row[n:])
        words = t.decode(torch.tensor(row)).split(" ")
        assert len(words) == n
        score = _score_words(words)
        assert score != 0 and y == int(score > 0)
        for i, w in enumerate(words):  # "not" always flips something
            if w == "not":
                n_not += 1
                assert words[i + 1] in Sentiment.POSITIVE + Sentiment.NEGATIVE
    assert n_not > 300  # negation is common enough to matter
    assert 0.45 < b.y.float().mean() < 0.55
    assert t.baseline == pytest.approx(math.log(2))


def test_sentiment_negation_changes_the_label_and_encode_roundtrips():
    t = make_task("sentiment")
    x = torch.stack([t.encode("the movie was a good"), t.encode("the movie was not good")])
    assert t.score(x).tolist() == [1, -1]
    ids = t.encode("not bad and great")
    assert t.decode(ids) == "not bad and great"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        t.encode("the movie was meh")


# ----------------------------------------------------------------------------------------------------------
# char_lm, hello, text loading


def test_bundled_text_is_real_and_in_the_package():
    s = bundled_text()
    assert 100_000 <= len(s.encode("utf-8")) <= 300_000
    assert s.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert "Methinks I hear hither your husband's drum" in s  # a page join, seamless
    assert s.endswith("\n")


def test_char_lm_windows_are_shifted_text(shakespeare):
    t = shakespeare
    text = bundled_text()
    assert t.itos == sorted(set(text)) and t.vocab_size == t.output_dim == len(set(text))
    b = t.sample(20, gen(0))
    assert torch.equal(b.x[:, 1:], b.y[:, :-1])
    for xr, yr in zip(b.x, b.y, strict=True):
        window = t.decode(xr) + t.decode(yr[-1:])
        assert len(window) == 33 and window in text


def test_char_lm_baseline_is_unigram_entropy(shakespeare):
    text = bundled_text()
    n = len(text)
    h = -sum(c / n * math.log(c / n) for c in Counter(text).values())
    assert shakespeare.baseline == pytest.approx(h, rel=1e-9)
    assert 2.5 < h < 3.5
    assert "unigram" in shakespeare.baseline_note


def test_char_lm_custom_text_encode_decode():
    t = make_task("char_lm", seq_len=3, text="abcab\u00e9")
    assert t.itos == ["a", "b", "c", "\u00e9"]
    assert t.encode("cab\u00e9").tolist() == [2, 0, 1, 3]
    assert t.decode(t.encode("bac")) == "bac"
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['z'\]"):
        t.encode("az")
    b = t.sample(50, gen(0))
    assert {t.decode(r) for r in b.x} == {"abc", "bca", "cab"}  # every window start is used


def test_char_lm_rejects_bad_texts():
    with pytest.raises(ValueError, match="text is empty"):
        CharLM(seq_len=4, text="")
    with pytest.raises(ValueError, match=r"5 characters; seq_len=5 needs at least seq_len \+ 1 = 6"):
        CharLM(seq_len=5, text="abcde")
    CharLM(seq_len=4, text="abcde")  # exactly seq_len + 1 is enough
    with pytest.raises(ValueError, match="over the MAX_TEXT_BYTES cap of 1,000,000"):
        CharLM(seq_len=4, text="a" * (MAX_TEXT_BYTES + 1))
    with pytest.raises(ValueError, match="MAX_TEXT_BYTES"):  # the cap is on UTF-8 bytes, not characters
        CharLM(seq_len=4, text="\u00e9" * (MAX_TEXT_BYTES // 2 + 1))
    many = "".join(chr(0x100 + i) for i in range(MAX_VOCAB + 1))
    with pytest.raises(ValueError, match="257 distinct characters, over the MAX_VOCAB cap of 256"):
        CharLM(seq_len=4, text=many)
    assert CharLM(seq_len=4, text=many[:MAX_VOCAB]).vocab_size == MAX_VOCAB
    with pytest.raises(ValueError, match="text must be a str"):
        make_task("char_lm", text=b"bytes")


def test_load_text_bytes():
    assert load_text_bytes("h\u00e9llo\n".encode()) == "h\u00e9llo\n"
    assert load_text_bytes(b"\xef\xbb\xbfhi") == "hi"  # BOM dropped
    with pytest.raises(ValueError, match="empty"):
        load_text_bytes(b"")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_text_bytes(b"abc\xff\xfe")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_text_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(ValueError, match="MAX_TEXT_BYTES"):
        load_text_bytes(b"a" * (MAX_TEXT_BYTES + 1))
    assert len(load_text_bytes(b"a" * MAX_TEXT_BYTES)) == MAX_TEXT_BYTES


def test_hello_is_the_classic_toy():
    t = make_task("hello")
    assert t.seq_len == 4 and t.itos == ["e", "h", "l", "o"] and t.kind == "many_to_many"
    b = t.probe(batch_size=3)
    assert [t.decode(r) for r in b.x] == ["hell"] * 3 and [t.decode(r) for r in b.y] == ["ello"] * 3
    b9 = make_task("hello", seq_len=9).sample(10, gen(0))
    assert {t.decode(r) for r in b9.x} == {"hellohell"} and {t.decode(r) for r in b9.y} == {"ellohello"}
    p = torch.tensor([0.2, 0.2, 0.4, 0.2])  # e, h, l, o frequencies in "hello"
    assert t.baseline == pytest.approx(float(-(p * p.log()).sum()))
    make_task("hello", seq_len=100).sample(2, gen(0))


# ----------------------------------------------------------------------------------------------------------
# seq2seq


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_seq2seq_targets(name):
    t = make_task(name, seq_len=7)
    assert (t.vocab_size, t.target_vocab, t.output_dim, t.pad_id, t.bos_id) == (12, 12, 12, 0, 1)
    b = t.sample(300, gen(0))
    assert b.x.min() >= 2 and b.x.max() <= 11 and b.x.shape == b.y.shape == b.y_in.shape == (300, 7)
    expect = {"reverse": [r[::-1] for r in b.x.tolist()], "copy": b.x.tolist(),
              "sort": [sorted(r) for r in b.x.tolist()]}[name]
    assert b.y.tolist() == expect
    assert (b.y_in[:, 0] == 1).all() and torch.equal(b.y_in[:, 1:], b.y[:, :-1])
    assert t.decode(b.x[0]) == "".join(str(v - 2) for v in b.x[0].tolist())
    assert t.decode(torch.tensor([1, 3, 4, 0])) == "12"  # BOS and PAD dropped
    assert t.encode("907").tolist() == [11, 2, 9]
    assert t.describe()["attention_shape"] == t.attention_shape


def test_seq2seq_attention_shapes_and_baseline():
    assert make_task("reverse").attention_shape == "anti-diagonal"
    assert make_task("copy").attention_shape == "diagonal"
    assert "no simple shape" in make_task("sort").attention_shape
    t = make_task("reverse", seq_len=5)
    b = t.sample(8, gen(0))
    logits = torch.full((8, 5, 12), -1e4)
    logits[..., 2:] = 0.0  # uniform over the 10 digits
    assert t.loss(logits, b).item() == pytest.approx(math.log(10), rel=1e-5) == pytest.approx(t.baseline)
    assert t.metric(torch.nn.functional.one_hot(b.y, 12).float(), b) == 1.0


# ----------------------------------------------------------------------------------------------------------
# loss / metric for classification


def test_many_to_one_ce_loss_and_accuracy():
    t = make_task("parity", seq_len=8)
    b = t.sample(100, gen(0))
    assert t.loss(torch.zeros(100, 2), b).item() == pytest.approx(math.log(2))
    right = torch.nn.functional.one_hot(b.y, 2).float() * 5
    assert t.metric(right, b) == 1.0 and t.metric(-right, b) == 0.0
    assert t.loss(right, b).item() < 0.01
    assert t.higher_is_better


def test_decode_checks_ids():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        make_task("parity").decode(torch.tensor([5]))
    with pytest.raises(NotImplementedError):
        make_task("adding").decode(torch.tensor([1]))
