"""Scale-out: 2 replicas of `streamlit run app.py` behind HAProxy (deploy/serve.py), on 127.0.0.1 only.

Four simulated tabs (tests/stream_client.py: Streamlit's own websocket protocol, no browser) open a link to the
Gradient flow page, spread over both replicas and train; two Chromium pages, pinned to one replica each by the
proxy's sticky cookie, upload weights and download a CSV through the proxy (both need the replica that holds the
session). Then one replica is killed (SIGKILL to its process group): only its own sessions lose their
connection, the others keep training, and a lost page that reloads lands on the live replica with its settings
(from the URL) and works.

Every process is started in its own process group and killed with it (Deployment.stop, also on failure).
"""

from __future__ import annotations

import os
import time

import pytest

from deploy.serve import HAPROXY, Deployment, healthy
from tests.browser import App, app_tracebacks, chromium_available, launch_browser, new_page
from tests.stream_client import StreamTab

pytestmark = pytest.mark.browser

COOKIE = "rnnviz_replica"
WAIT = 120.0  # seconds for any one wait: four sessions train on two shared cores
GF_PATH = "/gradient_flow?cells=lstm&seq_len=20"


def _require(what: str, ok: bool, hint: str) -> None:
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} not found ({hint}): required in CI")
    pytest.skip(f"{what} not found ({hint})")


@pytest.fixture(scope="module")
def cluster():
    """The deployment, four trained tabs over it and a browser; everything stopped afterwards."""
    _require("haproxy", os.access(HAPROXY, os.X_OK), "apt-get install -y haproxy")
    _require("/usr/bin/chromium", chromium_available(), "apt-get install -y chromium")
    dep = Deployment(replicas=2, bind="127.0.0.1", timeout=WAIT)
    tabs: list[StreamTab] = []
    dep.start()
    try:
        # a link with a small configuration (not a preset: a preset pauses at its N steps)
        for cell in ("lstm", "gru", "lstm", "gru"):
            tab = StreamTab(dep.url, "/gradient_flow", f"cells={cell}&seq_len=20", timeout=WAIT).open()
            tabs.append(tab)
            tab.wait_idle()  # a new visitor: no cookie yet, so the proxy chose the replica
            assert not tab.exceptions, tab.exceptions
        for tab in tabs:
            tab.wait_done(tab.click("btn_start"))
        with launch_browser() as browser:
            yield dep, tabs, browser
    finally:
        for tab in tabs:
            tab.close()
        logs = {r.name: r.log() for r in dep.replicas}
        dep.stop()
        bad = {name: app_tracebacks(log) for name, log in logs.items()}
        assert not any(bad.values()), f"tracebacks in the replicas' logs: {bad}"


def pinned_page(dep: Deployment, browser, replica: str):
    """A browser context whose sticky cookie already names `replica` (what the proxy set on an earlier visit)."""
    page = new_page(browser, timeout_ms=WAIT * 1000)
    page.context.add_cookies([{"name": COOKIE, "value": replica, "url": dep.url}])
    return page


def cookie(page) -> str | None:
    return {c["name"]: c["value"] for c in page.context.cookies()}.get(COOKIE)


def upload_and_download(app: App, tmp_path, tag: str) -> None:
    """Your weights: upload a GRU state_dict; Gradient flow: Step, then download grad_flow.csv."""
    import pandas as pd
    import torch
    from torch import nn

    torch.manual_seed(0)
    f = tmp_path / f"gru-{tag}.pt"
    torch.save(nn.GRU(3, 8, batch_first=True).state_dict(), f)
    app.goto("/your_model", timeout_ms=WAIT * 1000)
    with app.rerun(timeout_ms=WAIT * 1000):
        app.page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(f))
    ok = app.page.locator('[data-testid="stAlert"]', has_text="Loaded").first
    ok.wait_for(timeout=WAIT * 1000)
    assert "gru" in ok.inner_text().lower(), ok.inner_text()
    app.goto(GF_PATH, timeout_ms=WAIT * 1000)
    app.step(timeout_ms=WAIT * 1000)
    with app.page.expect_download(timeout=WAIT * 1000) as dl:
        app.page.get_by_role("button", name="⬇ grad_flow.csv").click()
    path = tmp_path / f"grad_flow-{tag}.csv"
    dl.value.save_as(path)
    gf = pd.read_csv(path)
    assert {"run", "step", "t", "grad_norm"} <= set(gf.columns), list(gf.columns)
    assert set(gf["run"]) == {"LSTM"} and gf["t"].max() == 19 and gf["step"].max() == 1


def test_new_sessions_spread_over_both_replicas(cluster):
    dep, tabs, _ = cluster
    placed = sorted(t.cookies.get(COOKIE, "none") for t in tabs)
    assert set(placed) == {"r1", "r2"}, f"the proxy put the four new sessions on {placed}"
    for t in tabs:  # every one trains where its cookie says (its websocket went there)
        before = t.steps()
        t.wait_for(lambda s, b=before: s.steps() and s.steps()[0] > b[0], what="training through the proxy")
        assert not t.closed and t.training()


def test_upload_and_download_stay_on_the_session_replica(cluster, tmp_path):
    dep, _, browser = cluster
    for name in ("r1", "r2"):
        page = pinned_page(dep, browser, name)
        try:
            upload_and_download(App(page, dep.url), tmp_path, name)
            assert cookie(page) == name, f"the browser moved from {name} to {cookie(page)}"
        finally:
            page.context.close()


def test_killing_a_replica_loses_only_its_own_sessions(cluster, tmp_path):
    dep, tabs, browser = cluster
    victim, survivor = dep.replicas
    page = pinned_page(dep, browser, victim.name)
    closed_sockets: list[str] = []
    page.on("websocket", lambda ws: ws.on("close", lambda w: closed_sockets.append(w.url)))
    app = App(page, dep.url)
    app.goto(GF_PATH, timeout_ms=WAIT * 1000)
    app.start()
    app.wait_steps(lambda s: s[0] >= 1, timeout_ms=WAIT * 1000)
    lost = [t for t in tabs if t.cookies[COOKIE] == victim.name]
    kept = [t for t in tabs if t.cookies[COOKIE] == survivor.name]
    assert lost and kept
    steps_at_kill = [t.steps()[0] for t in kept]

    victim.kill()
    assert not victim.alive()
    for t in lost:  # their connection ends: Streamlit's client shows its connection-lost state
        with pytest.raises(ConnectionError):
            t.wait_for(lambda s: False, timeout=30, what="connection kept")
    deadline = time.perf_counter() + 30
    while not any("/_stcore/stream" in u for u in closed_sockets) and time.perf_counter() < deadline:
        page.wait_for_timeout(200)
    assert any("/_stcore/stream" in u for u in closed_sockets), "the page's websocket did not see its replica go"
    # Streamlit's client reconnects by itself; the proxy sends it to the live replica, which does not know its
    # session: the page says so (pages/_ui.py LOST_SESSION) instead of silently showing step 0
    page.get_by_text("Your session was lost").first.wait_for(timeout=WAIT * 1000)

    for t, n in zip(kept, steps_at_kill, strict=True):  # the others keep training on the live replica
        t.wait_for(lambda s, n=n: s.steps() and s.steps()[0] >= n + 3, what="training after the other replica died")
        assert not t.closed and t.training()
    assert healthy(dep.url), "the proxy stopped answering /_stcore/health"

    # the student reloads: the proxy sends the page to the live replica; settings come back from the URL
    app.goto(GF_PATH, timeout_ms=WAIT * 1000)
    assert cookie(page) == survivor.name, f"after the reload the cookie names {cookie(page)}"
    assert app.query().get("cells") == "lstm" and app.query().get("seq_len") == "20", page.url
    assert app.steps() == [0], f"a new session on {survivor.name} starts at step 0: {app.status_text()!r}"
    assert page.get_by_text("Your session was lost").count() == 0, "a fresh page load is not a lost session"
    assert app.step(timeout_ms=WAIT * 1000) == [1]
    app.assert_no_exception("after the reload onto the live replica")
    page.context.close()

    # a lost protocol tab that opens the page again lands there too
    again = StreamTab(dep.url, "/", timeout=WAIT, cookies=lost[0].cookies).open()
    try:
        again.wait_idle()
        assert again.cookies[COOKIE] == survivor.name
        assert any("inside recurrent networks" in t for t in again.texts)
    finally:
        again.close()
