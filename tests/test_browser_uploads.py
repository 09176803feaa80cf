"""Hostile uploads through the real pages in Chromium: the two cost bombs of issue 13 are refused (or a model is
traced on a smaller probe) while /_stcore/health keeps answering within 1 s; a re-upload with the same name and
size is read again; every refusal names the file and the reason.

Uses the fixtures of tests/test_browser.py (its own `streamlit run app.py` for this module).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.browser import wait_warmed_up
from tests.test_browser import app_server, browser, open_app  # noqa: F401  (fixtures)
from tests.test_weights import BOMBS, expanded_state_dict

pytestmark = pytest.mark.browser
ALERT = '[data-testid="stMain"] [data-testid="stAlert"]'
UPLOAD = '[data-testid="stFileUploader"] input[type="file"]'


def server_rss_mb(server) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class HealthWatch:
    """Polls /_stcore/health every 0.1 s in a thread; `worst` is the slowest answer (s), `failed` the misses."""

    def __init__(self, url: str):
        self.url, self.times, self.failed = url, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from tests.browser import health

        while not self._stop.is_set():
            ok, seconds = health(self.url, timeout=5.0)
            self.times.append(seconds)
            self.failed += not ok
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    @property
    def worst(self) -> float:
        return max(self.times)


def upload(app, path, selector: str = UPLOAD) -> None:
    with app.rerun():
        app.page.locator(selector).first.set_input_files(str(path))


def alert_with(app, text: str, timeout_ms: float = 60_000) -> str:
    loc = app.page.locator(ALERT, has_text=text).first
    loc.wait_for(state="visible", timeout=timeout_ms)
    return loc.inner_text()


@pytest.mark.parametrize("name", list(BOMBS))
def test_cost_bombs_are_refused_and_the_server_stays_responsive(open_app, app_server, tmp_path, name):  # noqa: F811
    cls, kw = BOMBS[name]
    path = tmp_path / f"{name}.pt"
    torch.save(expanded_state_dict(cls, **kw), path)
    assert path.stat().st_size < 25_000
    app = open_app("/your_model")
    wait_warmed_up(app_server)  # its first-visit warm-up allocates too: not the upload's
    rss_before = server_rss_mb(app_server)
    with HealthWatch(app_server.url) as watch:
        upload(app, path)
        msg = alert_with(app, "Not loaded")
        time.sleep(1.0)  # and a moment after
    app.assert_no_exception("your_model after the bomb")
    assert f"{name}.pt" in msg and "over the upload budget" in msg and "at most 4,206,592 parameters" in msg, msg
    assert app.page.locator(ALERT, has_text="No weights loaded yet").count() == 1
    assert watch.failed == 0 and watch.worst <= 1.0, f"health: worst {watch.worst:.2f} s, {watch.failed} misses"
    grew = server_rss_mb(app_server) - rss_before
    assert grew < 100, f"the server's RSS grew by {grew:.0f} MB"  # it was +4,291 MB and +3,187 MB


def test_a_model_too_costly_for_the_probe_is_traced_on_a_smaller_one(open_app, app_server, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    path = tmp_path / "wide_gru.pt"
    torch.save(nn.GRU(50_000, 8).state_dict(), path)  # 1.2 M parameters, but x of 4 x 50 steps is 40 MB
    app = open_app("/your_model")
    with HealthWatch(app_server.url) as watch:
        upload(app, path)
        note = alert_with(app, "Limited by the upload budget")
        app.page.wait_for_selector(".st-key-yw_gf .js-plotly-plot .main-svg", timeout=60_000)
        app.wait_idle()
    app.assert_no_exception("your_model after a reduced probe")
    assert "traced on 1 sequence of 50 steps, not the 4 × 50 asked" in note and "SNAPSHOT_BUDGET_BYTES" in note
    assert "Loaded wide_gru.pt" in alert_with(app, "Loaded")
    assert watch.failed == 0 and watch.worst <= 1.0, f"health: worst {watch.worst:.2f} s, {watch.failed} misses"


def test_a_reupload_with_the_same_name_and_size_is_read_again(open_app, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    sd = nn.GRU(3, 8).state_dict()
    good, bad = tmp_path / "a" / "weights.pt", tmp_path / "b" / "weights.pt"
    good.parent.mkdir()
    bad.parent.mkdir()
    torch.save(sd, good)
    sd["weight_hh_l0"][2, 5] = float("nan")
    torch.save(sd, bad)
    assert good.stat().st_size == bad.stat().st_size and good.read_bytes() != bad.read_bytes()
    app = open_app("/your_model")
    upload(app, good)
    assert "nn.GRU(input_size=3, hidden_size=8" in alert_with(app, "Loaded")
    upload(app, bad)
    msg = alert_with(app, "Not loaded", timeout_ms=20_000)  # a check on name and size saw nothing new here
    assert "weight_hh_l0 contains NaN or infinite values (1 of 192)" in msg, msg
    assert msg.startswith("Not loaded: weights.pt (") and "Still showing the previous file, weights.pt" in msg
    assert "nn.GRU(input_size=3, hidden_size=8" in alert_with(app, "Loaded weights.pt:")
    upload(app, good)  # and back: read again, loaded, no error left
    app.page.locator(ALERT, has_text="Not loaded").wait_for(state="detached", timeout=30_000)
    assert app.page.locator(ALERT, has_text="Loaded weights.pt").count() == 1


def test_an_oversize_file_is_refused_by_the_uploader_with_its_size_and_the_cap(open_app, tmp_path):  # noqa: F811
    empty, big = tmp_path / "empty.pt", tmp_path / "big.pt"
    empty.write_bytes(b"")
    big.write_bytes(os.urandom(25 * 2**20))
    app = open_app("/your_model")
    upload(app, empty)
    assert "Not loaded: empty.pt (0 bytes): the file is empty (0 bytes)" in alert_with(app, "Not loaded")
    # the uploader refuses a file over server.maxUploadSize in the browser: nothing reaches the script, so the
    # page's message stays the one about empty.pt, by name, and the uploader shows the new file's size and the cap
    app.page.locator(UPLOAD).set_input_files(str(big))
    widget = app.page.locator('[data-testid="stFileUploader"]')
    widget.get_by_text("File must be 20.0MB or smaller.").wait_for(timeout=30_000)
    text = widget.inner_text()
    assert "big.pt" in text and "26.2MB" in text, text
    app.wait_idle()
    alerts = app.page.locator(ALERT).all_inner_texts()
    assert not [a for a in alerts if "big.pt" in a or ("empty" in a and "empty.pt" not in a)], alerts
    assert app.page.get_by_text("is refused by the uploader itself").count() == 1


@pytest.mark.parametrize("content,reason", [
    (lambda: os.urandom(5000), "the file is not text"),
    (lambda: bytes(5000), "it contains NUL bytes (the first at offset 0)"),
    ("café\n".encode("latin-1") * 100, "not valid UTF-8"),
])
def test_a_file_that_is_not_text_is_refused_as_the_character_models_text(open_app, tmp_path, content,  # noqa: F811
                                                                           reason):
    path = tmp_path / "data.bin"
    path.write_bytes(content() if callable(content) else content)
    app = open_app("/hidden_states?task=char_lm")
    app.page.get_by_text("Train the character model on your own text").click()
    upload(app, path)
    msg = alert_with(app, "Not usable")
    assert f"data.bin ({path.stat().st_size:,} bytes)" in msg and reason in msg, msg
    assert app.page.get_by_role("button", name="Use this text").is_disabled()
    app.assert_no_exception("hidden_states after a binary text")
