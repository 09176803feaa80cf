"""Users' uploaded weights: safe loading, validation messages, and a malicious pickle that must not run."""

import io
import pickle

import pytest
import torch
from torch import nn

import rnnviz
from rnnviz.weights import MAX_UPLOAD_BYTES, example_input, load_recurrent_state_dict


def to_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("module,kind", [
    (nn.RNN(3, 8, num_layers=2), "rnn_tanh"),
    (nn.LSTM(5, 4, bidirectional=True), "lstm"),
    (nn.GRU(2, 6, num_layers=3, bias=False), "gru"),
])
def test_round_trip_every_kind(module, kind):
    m, notes = load_recurrent_state_dict(to_bytes(module.state_dict()))
    assert type(m) is type(module)
    for (n1, p1), (n2, p2) in zip(m.named_parameters(), module.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    assert notes[0].startswith(f"nn.{type(module).__name__}(")
    x = example_input("sine", 2, 9, module.input_size)
    tr = rnnviz.trace(m, x)
    assert tr.hidden.shape[3] == 9


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

    # both as a torch.save'd object and as a raw pickle stream
    for data in (to_bytes({"weight_ih_l0": Evil()}), pickle.dumps({"weight_ih_l0": Evil()})):
        with pytest.raises(ValueError, match="refused|could not read"):
            load_recurrent_state_dict(data)
        assert not marker.exists(), "unpickling ran code"
    # and the unsafe loader would have run it: the test can fail
    torch.load(io.BytesIO(to_bytes({"x": Evil()})), weights_only=False)
    assert marker.exists()


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
     "floating-point"),
    (lambda: {**nn.RNN(3, 4).state_dict(), "bias_hh_l0": torch.full((4,), float("nan"))}, "auto", "NaN"),
    (lambda: {"fc.weight": torch.zeros(2, 2)}, "auto", "no recurrent weights"),
    (lambda: [1, 2, 3], "auto", "expected a state_dict"),
    (lambda: {"a.weight_ih_l0": torch.zeros(4, 3), "b.weight_ih_l0": torch.zeros(4, 3)}, "auto", "several"),
])
def test_bad_files_say_what_does_not_match(make, claimed, match):
    with pytest.raises(ValueError, match=match):
        load_recurrent_state_dict(to_bytes(make()), claimed=claimed)


def test_size_cap_empty_and_garbage():
    with pytest.raises(ValueError, match="limit"):
        load_recurrent_state_dict(b"0" * (MAX_UPLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="empty"):
        load_recurrent_state_dict(b"")
    with pytest.raises(ValueError, match="could not read|refused"):
        load_recurrent_state_dict(b"this is not a torch file at all")


def test_relu_claim_builds_relu():
    m, _ = load_recurrent_state_dict(to_bytes(nn.RNN(3, 4).state_dict()), claimed="rnn_relu")
    assert m.nonlinearity == "relu"
