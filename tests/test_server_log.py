"""The browser tests' reading of the server log: which tracebacks count against the app (tests/browser.py)."""

from tests.browser import REPO, app_tracebacks, traceback_in_app_code, tracebacks

VENV = f"{REPO}/.venv/lib/python3.11/site-packages"

# Shape of what Streamlit 1.67's websocket endpoint logged in CI when a tab closed mid-handshake.
CLIENT_GONE = f"""\
2026-11-23 10:00:01.000 INFO uvicorn: 127.0.0.1 - "WebSocket /_stcore/stream" [accepted]
ERROR:    Exception in ASGI application
Traceback (most recent call last):
  File "{VENV}/streamlit/web/server/starlette/starlette_websocket.py", line 480, in _websocket_endpoint
    data = await websocket.receive_bytes()
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{VENV}/starlette/websockets.py", line 131, in receive_bytes
    raise WebSocketDisconnected('WebSocket is not connected. Need to call "accept" first.')
starlette.websockets.WebSocketDisconnected: WebSocket is not connected. Need to call "accept" first.

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "{VENV}/uvicorn/protocols/websockets/websockets_sansio_impl.py", line 409, in run_asgi
    result = await self.app(self.scope, self.receive, self.send)
  File "{VENV}/streamlit/web/server/starlette/starlette_websocket.py", line 524, in _websocket_endpoint
    await websocket.close()
  File "{VENV}/starlette/websockets.py", line 104, in send
    raise WebSocketDisconnected('Cannot call "send" once a close message has been sent.')
starlette.websockets.WebSocketDisconnected: Cannot call "send" once a close message has been sent.
2026-11-23 10:00:02.000 INFO something else
"""

APP_ERROR = f"""\
2026-11-23 10:00:03.000 Uncaught app execution
Traceback (most recent call last):
  File "{VENV}/streamlit/runtime/scriptrunner/exec_code.py", line 129, in exec_func_with_error_handling
    result = func()
  File "{REPO}/pages/gradient_flow.py", line 42, in <module>
    fig = figures.grad_norm_lines(frame)
KeyError: 'grad_norm'
"""

SERVER_ERROR = f"""\
Traceback (most recent call last):
  File "{VENV}/streamlit/runtime/app_session.py", line 300, in _on_message
    self._handle(msg)
RuntimeError: session state corrupted
"""


def test_a_chained_report_is_one_traceback():
    reports = tracebacks(CLIENT_GONE)
    assert len(reports) == 1
    assert reports[0].count("Traceback (most recent call last)") == 2
    assert "INFO something else" not in reports[0]


def test_three_reports_are_told_apart():
    reports = tracebacks(CLIENT_GONE + APP_ERROR + SERVER_ERROR)
    assert [r.splitlines()[-1] for r in reports] == [
        'starlette.websockets.WebSocketDisconnected: Cannot call "send" once a close message has been sent.',
        "KeyError: 'grad_norm'",
        "RuntimeError: session state corrupted",
    ]


def test_the_client_disconnect_race_is_not_counted_against_the_app():
    assert app_tracebacks(CLIENT_GONE) == []
    assert not traceback_in_app_code(tracebacks(CLIENT_GONE)[0])


def test_an_exception_in_a_page_is_counted():
    found = app_tracebacks(CLIENT_GONE + APP_ERROR)
    assert len(found) == 1 and "pages/gradient_flow.py" in found[0]
    assert traceback_in_app_code(found[0])


def test_any_other_server_error_is_counted():
    assert len(app_tracebacks(SERVER_ERROR + CLIENT_GONE)) == 1


def test_a_disconnect_error_raised_through_app_code_is_counted():
    through_app = CLIENT_GONE.replace(f"{VENV}/starlette/websockets.py", f"{REPO}/rnnviz/training.py")
    assert len(app_tracebacks(through_app)) == 1


def test_a_clean_log_has_no_tracebacks():
    assert tracebacks("2026-11-23 INFO ok\nYou can now view your Streamlit app in your browser.\n") == []
