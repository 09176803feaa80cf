"""A closed tab gives its memory back: `streamlit run app.py` (which starts pages/_janitor.py), a heavy session
in Chromium, the tab closed, and the server's RSS back within 50 MB of its level before the session.

server.disconnectedSessionTTL is set to 3 s so that the test is short (the shipped value is 60 s).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.browser import (
    REPO,
    App,
    StreamlitServer,
    chromium_available,
    launch_browser,
    new_page,
    wait_warmed_up,
)

pytestmark = pytest.mark.browser
TTL = 3


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def released(server) -> int:
    return sum(int(n) for n in re.findall(r"session janitor: released (\d+)", server.output(tail=10**7)))


def wait_until(predicate, timeout: float, what: str) -> None:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture
def site():
    if not chromium_available():
        if os.environ.get("CI") == "true":
            pytest.fail("/usr/bin/chromium not found: required in CI")
        pytest.skip("/usr/bin/chromium not found")
    return REPO


def _worst_case():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_memory", REPO / "bench" / "bench_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.worst_case()[0]


def test_a_closed_tabs_memory_comes_back(site):
    heavy = "/gradient_flow?" + urlencode(_worst_case().to_query())  # 4 bidirectional 3-layer LSTMs, H 256
    tiny = "/gradient_flow?task=char_lm&cells=lstm&hidden_size=4&seq_len=8&batch_size=2"
    with StreamlitServer(cwd=site,
                         extra_args=("--server.disconnectedSessionTTL", str(TTL))) as server, \
            launch_browser() as browser:
        pid = server.proc.pid
        # a warm-up session on the same page: imports, kernels and figure code are loaded before the measure
        app = App(new_page(browser), server.url)
        app.goto(tiny)
        app.start()
        time.sleep(5)
        app.page.context.close()
        wait_until(lambda: released(server) >= 1, TTL + 40, "the warm-up session released")
        wait_warmed_up(server)
        time.sleep(2)
        before = rss_mb(pid)

        app = App(new_page(browser), server.url)
        app.goto(heavy)
        app.start()
        wait_until(lambda: rss_mb(pid) >= before + 150, 90, "the heavy session holding 150 MB more")
        held = rss_mb(pid)
        app.page.context.close()
        closed = time.perf_counter()
        wait_until(lambda: released(server) >= 2, TTL + 40, "the heavy session released")
        wait_until(lambda: rss_mb(pid) <= before + 50, 20,
                   f"RSS back within 50 MB of {before:.0f} MB (held {held:.0f} MB, now {rss_mb(pid):.0f} MB)")
        print(f"\nRSS before {before:.0f} MB, holding {held:.0f} MB, back to {rss_mb(pid):.0f} MB "
              f"{time.perf_counter() - closed:.0f} s after the tab closed (TTL {TTL} s)")
        assert "Traceback" not in server.output(tail=10**7)
