"""In a real browser: the compare control, changes that keep the weights, and a preset's claims on its page.

Uses the fixtures of tests/test_browser.py (its own `streamlit run app.py` for this module).
"""

from __future__ import annotations

import re

import pytest

from tests.test_browser import app_server, browser, open_app  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
LABEL_RE = re.compile(r"^(.+?): step \d+ ·", re.M)


def labels(app) -> list[str]:
    return LABEL_RE.findall(app.status_text())


def test_compare_control_builds_the_variants_and_keeps_them_in_the_url(open_app):  # noqa: F811
    app = open_app("/gradient_flow?cells=rnn_tanh&seq_len=20&hidden_size=8")
    assert labels(app) == ["RNN (tanh)"]
    app.select_option("Compare runs that differ in", "gradient clipping")
    assert labels(app) == ["RNN (tanh), no clipping", "RNN (tanh), clip at 1"], app.status_text()
    q = app.query()
    assert q.get("compare") == "clip" and q.get("compare_values") == "0,1", app.page.url
    # another set of values, typed
    box = app.page.locator('[data-testid="stSidebar"] input[aria-label^="Values of gradient clipping"]').first
    with app.rerun():
        box.fill("0, 0.5, 5")
        box.press("Enter")
    assert labels(app) == ["RNN (tanh), no clipping", "RNN (tanh), clip at 0.5", "RNN (tanh), clip at 5"]
    assert app.query().get("compare_values") == "0,0.5,5"
    # the same link in a new session reproduces the comparison
    other = open_app("/gradient_flow?" + app.page.url.split("?", 1)[1])
    assert labels(other) == labels(app)
    assert app.steps() == [0, 0, 0]
    assert app.step() == [1, 1, 1]  # lockstep
    app.assert_no_exception("compare control")


def test_optimiser_changes_keep_the_weights_and_model_changes_reset(open_app):  # noqa: F811
    app = open_app("/gradient_flow?cells=rnn_tanh,gru&seq_len=20&hidden_size=8")
    for _ in range(3):
        app.step()
    assert app.steps() == [3, 3]
    app.page.locator('[data-testid="stSidebar"]').get_by_text("Optimiser (changes keep the weights)").click()
    app.set_number("Gradient clipping threshold (0 = off)", 2.5)
    assert app.steps() == [3, 3], "changing the clipping threshold reset the runs"
    assert "clip changed from 1.0 to 2.5 at step 3 (same weights)" in app.status_text(), app.status_text()
    assert app.step() == [4, 4]
    app.set_number("Sequence length T", 30)
    assert app.steps() == [0, 0], "a new sequence length needs new models"
    app.assert_no_exception("retune")


def test_a_loaded_preset_shows_its_claims_on_its_page(open_app):  # noqa: F811
    app = open_app("/")
    app.load_preset("Truncated BPTT")
    head = app.page.get_by_text(re.compile(r"^The preset's claims"))
    head.first.wait_for(timeout=60_000)
    assert "checked after N =" in head.first.inner_text()
    head.first.click()
    body = app.page.locator('[data-testid="stExpanderDetails"]', has_text="before the last window").first
    body.wait_for(timeout=30_000)
    assert "… at N" in body.inner_text()  # not checked before N steps: not yet, rather than false
    app.assert_no_exception("preset claims")
