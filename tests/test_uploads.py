"""Uploaded text for the character model: a binary file is refused as "not text", other encodings as not UTF-8,
before anything is trained on it."""

import random

import pytest

from rnnviz.tasks import MAX_CONTROL_SHARE, load_text_bytes


@pytest.mark.parametrize("data,match", [
    (bytes(5000), r"not text: it contains NUL bytes \(the first at offset 0\)"),
    (b"hello\x00world", r"NUL bytes \(the first at offset 5\)"),
    (bytes(range(1, 9)) * 100, "not text: 100% of its bytes are control characters"),
    (b"\x89PNG\r\n\x1a\n" + b"\x01\x02\x03\x04" * 50 + b"IHDR" * 10, "of its bytes are control characters"),
    ("café\n".encode("latin-1") * 50, r"not valid UTF-8 \(bad byte at offset 3\)"),
])
def test_not_text_and_not_utf8_are_told_apart(data, match):
    with pytest.raises(ValueError, match=match):
        load_text_bytes(data)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_not_text(seed):
    with pytest.raises(ValueError, match="the file is not text"):
        load_text_bytes(random.Random(seed).randbytes(5000))


def test_text_with_a_few_control_characters_is_still_text():
    ansi = "\x1b[1mbold\x1b[0m and plain\n"
    text = ansi + "x" * (int(2 / MAX_CONTROL_SHARE) - len(ansi))  # 2 ESC in 200 bytes: exactly the 1 % allowed
    assert load_text_bytes(text.encode()) == text
    with pytest.raises(ValueError, match="not text"):
        load_text_bytes(text[:-1].encode())  # 2 in 199: over it
    assert load_text_bytes(b"tabs\tand\r\nnewlines\x0cform feed\x0b") == "tabs\tand\r\nnewlines\x0cform feed\x0b"
