"""Users' uploaded weights: safe loading, the upload budget (checked before anything is allocated), the
messages of every refusal, and a malicious pickle that must not run."""

import io
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import rnnviz
from rnnviz.controls import SNAPSHOT_BUDGET_BYTES, STEP_BUDGET_MACS
from rnnviz.weights import (
    MAX_UPLOAD_BYTES,
    MAX_WEIGHT_BYTES,
    MIN_PROBE,
    SIDEBAR_MAX,
    Spec,
    check_spec,
    example_input,
    fit_probe,
    load_recurrent_state_dict,
    max_params,
    upload_key,
)

REPO = Path(__file__).resolve().parents[1]


def to_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


# -- the two cost bombs of issue 13 ------------------------------------------------------------------------------
def expanded_state_dict(cls, **kw) -> dict[str, torch.Tensor]:
    """The state_dict of cls(**kw) without building it: every tensor a stride-0 view of one element, so
    torch.save writes one float per tensor however large the shape it declares."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in cls(**kw).state_dict().items()}
    return {k: torch.full((1,), 0.01).expand(s) for k, s in shapes.items()}


BOMBS = {
    "wide_input": (nn.LSTM, dict(input_size=1_000_000, hidden_size=8)),  # 32 M parameters
    "deep_wide": (nn.LSTM, dict(input_size=16, hidden_size=1024, num_layers=8, bidirectional=True)),  # 185 M
}


def bomb_bytes(name: str) -> bytes:
    cls, kw = BOMBS[name]
    return to_bytes(expanded_state_dict(cls, **kw))


class LargestAllocation(TorchDispatchMode):
    """Records the largest storage any aten op returns on the CPU (factories, copies, conversions, isfinite)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                self.largest = max(self.largest, t.untyped_storage().nbytes())
        return out


@pytest.mark.parametrize("name", list(BOMBS))
def test_the_bombs_are_small_files_that_declare_huge_models(name):
    data = bomb_bytes(name)
    assert len(data) < 25_000
    sd = torch.load(io.BytesIO(data), weights_only=True)
    declared = sum(v.numel() for v in sd.values())
    held = sum(v.untyped_storage().nbytes() for v in sd.values())
    assert declared > 30_000_000 and held <= 4 * len(sd)  # loading them is cheap: one float per tensor


@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_are_refused_before_anything_is_allocated(name):
    data = bomb_bytes(name)
    spy = LargestAllocation()
    with spy, pytest.raises(ValueError) as err:
        load_recurrent_state_dict(data)
    msg = str(err.value)
    assert "over the upload budget" in msg and f"at most {max_params('lstm'):,} parameters" in msg, msg
    assert f"the limit is {MAX_WEIGHT_BYTES / 2**20:.0f} MB" in msg
    assert "BOUNDS in rnnviz/controls.py" in msg and "Nothing was allocated" in msg
    cls, kw = BOMBS[name]
    with torch.device("meta"):
        n = sum(p.numel() for p in cls(**kw).parameters())
    assert f"{n:,} parameters" in msg
    assert spy.largest < 2**20, f"an op allocated {spy.largest:,} bytes before the refusal"


def test_the_allocation_spy_sees_a_module_being_built():
    spy = LargestAllocation()
    with spy:
        nn.LSTM(100_000, 8)  # weight_ih_l0 (32, 100000): 12.8 MB
    assert spy.largest >= 32 * 100_000 * 4


_PEAK_CHILD = """
import io, resource, sys
sys.path.insert(0, {repo!r})
import torch
from rnnviz.weights import load_recurrent_state_dict
data = open({path!r}, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_recurrent_state_dict(data)
    print("loaded", end=" ")
except ValueError:
    print("refused", end=" ")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_raise_peak_memory_by_less_than_10_mb(name, tmp_path):
    """In a fresh process: the peak RSS after the refusal is within 10 MB of before (it was +218 MB and +711 MB
    when the module was built first)."""
    path = tmp_path / f"{name}.pt"
    path.write_bytes(bomb_bytes(name))
    code = _PEAK_CHILD.format(repo=str(REPO), path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    verdict, grew_mb = out.stdout.split()
    assert verdict == "refused" and int(grew_mb) < 10, out.stdout


# -- the budget --------------------------------------------------------------------------------------------------
def test_the_weights_limit_is_what_the_largest_sidebar_model_costs():
    with torch.device("meta"):
        big = nn.LSTM(SIDEBAR_MAX.input_size, 256, num_layers=3, bidirectional=True)
    assert Spec.of(big) == SIDEBAR_MAX and SIDEBAR_MAX.params == sum(p.numel() for p in big.parameters())
    assert MAX_WEIGHT_BYTES == SIDEBAR_MAX.weight_bytes() and max_params("lstm") == SIDEBAR_MAX.params
    assert check_spec(SIDEBAR_MAX) is None
    assert "the limit is" in check_spec(Spec("lstm", SIDEBAR_MAX.input_size, 257, 3, True, True))
    for kind in ("rnn_tanh", "gru", "lstm"):  # at the limit and one parameter over, in every kind
        G = {"rnn_tanh": 1, "gru": 3, "lstm": 4}[kind]
        at = Spec(kind, max_params(kind) // G - 3, 1, 1, False, True)  # G*(in + 1 + 2) parameters
        assert at.params <= max_params(kind) < Spec(kind, at.input_size + 1 + max_params(kind) // G, 1, 1, False,
                                                     True).params
        assert "the limit is" not in (check_spec(at) or "")
        assert "the limit is" in check_spec(Spec(kind, at.input_size + 1 + max_params(kind) // G, 1, 1, False, True))


@pytest.mark.parametrize("module", [nn.RNN(7, 5, num_layers=2), nn.LSTM(3, 4, bidirectional=True, bias=False),
                                   nn.GRU(6, 9, num_layers=3, bidirectional=True)])
def test_spec_counts_what_torch_builds(module):
    spec = Spec.of(module)
    assert spec.params == sum(p.numel() for p in module.parameters())
    assert spec.shapes() == {k: tuple(v.shape) for k, v in module.state_dict().items()}
    # forward multiply-adds of a probe: the matmuls W_ih x_t and W_hh h_{t-1}, per step, layer and direction
    B, T = 3, 11
    macs = B * T * sum(w.shape[0] * w.shape[1] for k, w in module.state_dict().items() if k.startswith("weight"))
    assert spec.probe_macs(B, T) == macs


def test_a_model_too_wide_for_even_the_smallest_probe_is_refused():
    spec = Spec("rnn_tanh", 2_000_000, 1, 1, False, True)  # 2 M parameters, within the limit, but x is huge
    assert spec.params <= max_params("rnn_tanh")
    msg = check_spec(spec)
    assert msg and "even 1 sequence of 2 steps" in msg and "SNAPSHOT_BUDGET_BYTES" in msg


@pytest.mark.parametrize("spec,batch,steps", [
    (Spec("lstm", 16, 1000, 1, False, True), 32, 1000),
    (Spec("lstm", 8, 64, 2, True, True), 32, 1000),
    (Spec("gru", 50_000, 8, 1, False, True), 4, 50),
    (Spec("rnn_tanh", 4, 8, 1, False, True), 32, 1000),
])
def test_fit_probe_is_the_largest_probe_within_the_budget(spec, batch, steps):
    assert check_spec(spec) is None
    p = fit_probe(spec, batch, steps)

    def fits(b, t):
        return spec.probe_macs(b, t) <= STEP_BUDGET_MACS and spec.probe_bytes(b, t) <= SNAPSHOT_BUDGET_BYTES

    assert fits(p.batch, p.steps) and p.batch >= MIN_PROBE[0] and p.steps >= MIN_PROBE[1]
    if (p.batch, p.steps) == (batch, steps):
        assert p.note is None
        return
    assert "not the" in p.note and ("STEP_BUDGET_MACS" in p.note or "SNAPSHOT_BUDGET_BYTES" in p.note)
    if p.steps == steps:  # fewer sequences: one more would not fit
        assert not fits(p.batch + 1, p.steps)
    else:  # one sequence, fewer steps: one more step would not fit
        assert p.batch == 1 and not fits(1, p.steps + 1)


def test_a_model_of_the_largest_size_loads_and_traces():
    torch.manual_seed(0)
    m = nn.LSTM(SIDEBAR_MAX.input_size, 256, num_layers=3, bidirectional=True)
    data = to_bytes(m.state_dict())
    assert len(data) <= MAX_UPLOAD_BYTES
    got, notes = load_recurrent_state_dict(data)
    assert Spec.of(got) == SIDEBAR_MAX
    p = fit_probe(Spec.of(got), 4, 50)
    tr = rnnviz.trace(got, example_input("sine", p.batch, p.steps, got.input_size))
    assert tr.hidden.shape == (3, 2, p.batch, p.steps, 256)


# -- loading -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module,kind", [
    (nn.RNN(3, 8, num_layers=2), "rnn_tanh"),
    (nn.RNN(3, 8, nonlinearity="relu"), "rnn_relu"),
    (nn.LSTM(5, 4, bidirectional=True, num_layers=2), "lstm"),
    (nn.GRU(2, 6, num_layers=3, bias=False), "gru"),
])
def test_round_trip_every_kind(module, kind):
    torch.manual_seed(0)
    m, notes = load_recurrent_state_dict(to_bytes(module.state_dict()), claimed=kind)
    assert type(m) is type(module) and m.mode == module.mode and m.batch_first
    for (n1, p1), (n2, p2) in zip(m.named_parameters(), module.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2) and p1.device.type == "cpu" and p1.dtype == torch.float32
    assert notes[0].startswith(f"nn.{type(module).__name__}(")
    x = example_input("sine", 2, 9, module.input_size)
    assert torch.equal(m(x)[0], module(x.transpose(0, 1))[0].transpose(0, 1))  # the module's own forward
    tr = rnnviz.trace(m, x)
    assert tr.hidden.shape[3] == 9


def test_half_and_double_files_load_as_float32():
    module = nn.GRU(3, 4)
    for dtype in (torch.float16, torch.float64, torch.bfloat16):
        sd = {k: v.to(dtype) for k, v in module.state_dict().items()}
        m, _ = load_recurrent_state_dict(to_bytes(sd))
        assert all(p.dtype == torch.float32 for p in m.parameters())
        assert torch.equal(m.weight_hh_l0, sd["weight_hh_l0"].float())


def test_prefixed_state_dict_of_a_bigger_model():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.rnn = nn.LSTM(4, 7)
            self.head = nn.Linear(7, 2)

    m, notes = load_recurrent_state_dict(to_bytes(Net().state_dict()))
    assert isinstance(m, nn.LSTM) and m.hidden_size == 7
    assert any("rnn." in n for n in notes) and any("ignored" in n for n in notes)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create a file when unpickled

    # as a torch.save'd object, in torch's older format, and as a raw pickle stream
    for data in (to_bytes({"weight_ih_l0": Evil()}), to_bytes({"weight_ih_l0": Evil()},
                                                               _use_new_zipfile_serialization=False),
                 pickle.dumps({"weight_ih_l0": Evil()})):
        with pytest.raises(ValueError, match="refused|not a file written by torch.save"):
            load_recurrent_state_dict(data)
        assert not marker.exists(), "unpickling ran code"
    # and the unsafe loader would have run it: the test can fail
    torch.load(io.BytesIO(to_bytes({"x": Evil()})), weights_only=False)
    assert marker.exists()


def test_a_whole_module_file_says_so_in_one_plain_sentence():
    with pytest.raises(ValueError) as err:
        load_recurrent_state_dict(to_bytes(nn.LSTM(3, 4)))
    msg = str(err.value)
    assert "\x1b" not in msg and "two options" not in msg and "\n" not in msg, msg
    assert "torch.nn.modules.rnn.LSTM" in msg and "a whole model" in msg and "model.state_dict()" in msg
    assert "nothing in it was run" in msg


def _rezip(data: bytes, replace: dict | None = None, deflate: tuple = (), extra: int = 0) -> bytes:
    """The same torch archive with entries replaced, compressed, or padded with `extra` empty entries."""
    zin, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in zin.infolist():
            short = info.filename.split("/", 1)[1]
            body = (replace or {}).get(short, zin.read(info))
            z.writestr(info.filename, body,
                       compress_type=zipfile.ZIP_DEFLATED if short in deflate else zipfile.ZIP_STORED)
        for i in range(extra):
            z.writestr(f"archive/pad/{i}", b"")
    return out.getvalue()


def test_archives_that_could_expand_inside_torch_load_are_refused():
    good = to_bytes(nn.GRU(3, 4).state_dict())
    load_recurrent_state_dict(_rezip(good))  # rewriting alone changes nothing
    with pytest.raises(ValueError, match="compressed entries"):
        load_recurrent_state_dict(_rezip(good, deflate=("data/0",)))
    with pytest.raises(ValueError, match="4,096"):
        load_recurrent_state_dict(_rezip(good, extra=5000))
    # a pickle that unpickles to ~35x its size in Python objects: 300 KB of "{} appended to a list"
    bomb = b"\x80\x02]" + b"}a" * 150_000 + b"."
    with pytest.raises(ValueError, match="its pickle .* is 300,004 bytes; the limit is 262,144"):
        load_recurrent_state_dict(_rezip(good, {"data.pkl": bomb}))


def test_a_storage_declared_larger_than_its_record_is_refused():
    data = to_bytes({"weight_ih_l0": torch.zeros(3)})
    pkl = zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl")
    assert b"cpuq\x06K\x03t" in pkl
    big = pkl.replace(b"cpuq\x06K\x03t", b"cpuq\x06J" + struct.pack("<i", 2_000_000_000) + b"t")
    with pytest.raises(ValueError, match="could not read a PyTorch file"):
        load_recurrent_state_dict(_rezip(data, {"data.pkl": big}))


@pytest.mark.parametrize("make,claimed,match", [
    (lambda: nn.LSTM(3, 4).state_dict(), "gru", "you said gru"),
    (lambda: {"weight_ih_l0": torch.zeros(4, 3)}, "auto", "weight_ih_l0 and weight_hh_l0"),
    (lambda: {**nn.GRU(3, 4).state_dict(), "weight_hh_l0": torch.zeros(12, 5)}, "auto", r"shape \(12, 5\)"),
    (lambda: {**nn.GRU(3, 4).state_dict(), "weight_hh_l0": torch.zeros(15, 5)}, "auto",
     r"does not match an nn.GRU.*weight_ih_l0: file \(12, 3\) vs expected \(15, 3\)"),
    (lambda: {**nn.GRU(3, 4).state_dict(), "weight_hh_l0": torch.zeros(10, 5)}, "auto", "2 gate blocks"),
    (lambda: {k: v for k, v in nn.GRU(3, 4, num_layers=2).state_dict().items() if k != "bias_hh_l1"}, "auto",
     "missing bias_hh_l1"),
    (lambda: {**nn.RNN(3, 4).state_dict(), "weight_ih_l0": torch.zeros(4, 3, dtype=torch.long)}, "auto",
     r"weight_ih_l0 must be a floating-point tensor, got torch.int64 \(shape \(4, 3\)\)"),
    (lambda: {**nn.RNN(3, 4).state_dict(), "bias_hh_l0": torch.tensor([1.0, float("nan"), 0.0, 0.0])}, "auto",
     r"bias_hh_l0 contains NaN or infinite values \(1 of 4\)"),
    (lambda: {**nn.RNN(3, 4).state_dict(), "weight_hh_l0": torch.full((4, 4), float("inf")).expand(4, 4)}, "auto",
     r"weight_hh_l0 contains NaN or infinite values \(16 of 16\)"),
    (lambda: {**nn.RNN(3, 4).state_dict(), "weight_hh_l0": torch.eye(4).to_sparse()}, "auto", "dense"),
    (lambda: {**nn.RNN(3, 4).state_dict(), "weight_ih_l999999": torch.zeros(4, 4)}, "auto",
     r"weights of layer 999999 but not of every layer below it \(layers present: 0, 999999\)"),
    (lambda: {"fc.weight": torch.zeros(2, 2)}, "auto", "no recurrent weights"),
    (lambda: [1, 2, 3], "auto", "got a list of 3 items"),
    (lambda: torch.zeros(3), "auto", r"got a torch.float32 tensor of shape \(3,\)"),
    (lambda: {0: torch.zeros(2), 1: torch.zeros(2)}, "auto", "keys are not all names: 2 are int"),
    (lambda: {"a.weight_ih_l0": torch.zeros(4, 3), "b.weight_ih_l0": torch.zeros(4, 3)}, "auto", "several"),
])
def test_bad_files_say_what_does_not_match(make, claimed, match):
    with pytest.raises(ValueError, match=match) as err:
        load_recurrent_state_dict(to_bytes(make()), claimed=claimed)
    assert "got dict" not in str(err.value) and "got Tensor" not in str(err.value)


def test_size_cap_empty_and_garbage():
    with pytest.raises(ValueError, match=r"the file is 20.0 MB; the limit is 20 MB"):
        load_recurrent_state_dict(b"0" * (MAX_UPLOAD_BYTES + 1))
    with pytest.raises(ValueError, match=r"the file is empty \(0 bytes\)"):
        load_recurrent_state_dict(b"")
    with pytest.raises(ValueError, match="not a file written by torch.save"):
        load_recurrent_state_dict(b"this is not a torch file at all")
    whole = to_bytes(nn.GRU(3, 4).state_dict())
    for cut in (200, len(whole) // 2):
        with pytest.raises(ValueError, match="cut short or damaged"):
            load_recurrent_state_dict(whole[:-cut])


def test_upload_key_is_the_content_not_the_name_or_size():
    a = to_bytes(nn.GRU(3, 4).state_dict())
    sd = nn.GRU(3, 4).state_dict()
    sd["weight_hh_l0"][0, 0] = float("nan")
    b = to_bytes(sd)
    assert len(a) == len(b) and a != b  # same size: a name + size check cannot tell them apart
    assert upload_key(a, "auto") != upload_key(b, "auto")
    assert upload_key(a, "auto") == upload_key(bytes(a), "auto") != upload_key(a, "gru")

