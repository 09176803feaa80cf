"""The admission queue in a real server (pages/_admission.py wired into the live loop of pages/_ui.py).

`streamlit run app.py` with RNNVIZ_MAX_TRAINING=1 and two protocol tabs (tests/stream_client.py: Streamlit's own
websocket messages, no browser): the first tab trains; the second one's Start puts it in the visible queue
("Server busy: ... position 1") without training; the first one's Pause frees the slot and the second trains;
a closed tab's slot frees itself after the admission's timeout.
"""

from __future__ import annotations

import pytest

from pages._admission import BUSY
from tests.browser import StreamlitServer
from tests.stream_client import StreamTab

WAIT = 90.0
PAGE, QUERY = "/gradient_flow", "cells=rnn_tanh&hidden_size=8&seq_len=10&batch_size=8"
BUSY_TEXT = BUSY.split(":")[0]  # "Server busy"


def busy(tab: StreamTab) -> bool:
    """The queue's message and the status line drawn after it (deltas arrive one by one) both say so."""
    return (any(BUSY_TEXT in t and "position 1" in t for t in tab.texts)
            and "waiting for a training slot" in tab.status_text)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("RNNVIZ_MAX_TRAINING", "1")
    with StreamlitServer() as s:
        yield s


def test_second_session_waits_in_a_visible_queue_until_the_slot_frees(server):
    a = StreamTab(server.url, PAGE, QUERY, timeout=WAIT).open()
    b = StreamTab(server.url, PAGE, QUERY, timeout=WAIT).open()
    try:
        a.wait_idle()
        b.wait_idle()
        a.click("btn_start")
        a.wait_for(lambda s: s.steps() and s.steps()[0] >= 3, what="the first session training")
        b.click("btn_start")
        b.wait_for(busy, what="the second session told it waits, position 1")
        assert b.steps() == [0], b.status_text  # it trains nothing while queued
        assert "· running" not in b.status_text, b.status_text
        n = a.steps()[0]
        a.wait_for(lambda s, n=n: s.steps()[0] >= n + 3, what="the first session still training")

        a.click("btn_pause")  # frees the slot at once
        b.wait_for(lambda s: s.steps() and s.steps()[0] >= 3, what="the second session training after the Pause")
        assert not busy(b) or b.training()

        a.click("btn_start")  # now the first one waits behind the second
        a.wait_for(busy, what="the first session queued behind the second")
        m = a.steps()[0]
        a.wait_for(lambda s: s.ticking(), what="the queued session ticking (asking for its turn)")
        assert a.steps()[0] == m  # nothing trained while queued
        b.close()  # a closed tab stops asking: its slot frees itself after the admission's timeout
        a.wait_for(lambda s: s.steps()[0] >= m + 3, what="the first session training after the other tab closed")
        assert not a.exceptions and not b.exceptions, (a.exceptions, b.exceptions)
    finally:
        a.close()
        b.close()
