"""A browser tab without a browser: a small client of Streamlit's own websocket protocol.

Used by bench/bench_load.py and tests/test_scaleout.py. Nothing here is a test; it is the harness:

    tab = StreamTab("http://127.0.0.1:8501", "/")   # GET the page (cookies, e.g. a proxy's sticky one), then
    tab.open()                                      # ws /_stcore/stream, first script run (Home)
    tab.wait_idle()
    tab.click("preset_0")                           # a button by its key: BackMsg rerun_script + trigger_value
    tab.wait_idle()                                 # switch_page followed: tab.page is the preset's page
    tab.click("btn_start")                          # run_every ticks follow: the tab answers AutoRerun itself
    tab.steps()                                     # [412, 412, 412] from the status line "**LSTM**: step 412 · …"
    tab.close()

What a browser does and this does too (streamlit 1.67, lib/streamlit/proto):
- the websocket offers the subprotocol "streamlit" (the browser also passes its XSRF token and, on reconnect, the
  previous session id as 2nd and 3rd entries) and carries the page's cookies;
- the first BackMsg is `rerun_script` with the page name from the URL path and the URL's query string; later ones
  carry the current page's script hash (NewSession.page_script_hash, then Navigation.page_script_hash once
  st.navigation has resolved the page, so switch_page is followed) and the query string the app last wrote
  (PageInfo);
- a button press is a `rerun_script` whose `widget_states` hold `trigger_value=True` for the button's element id
  (found in the ForwardMsg deltas: every widget element has an `id`, `$$ID-<hash>-<key>` for a keyed widget);
  other widgets keep their server-side values (the browser would resend them unchanged);
- `AutoRerun(interval, fragment_id)` starts a repeating timer that sends `rerun_script(fragment_id=...,
  is_auto_rerun=True)`; `StopAutoRerun` and the start of every full run (NewSession) clear timers;
- ForwardMsgs the server marks cacheable are remembered by hash and their hashes sent back
  (`cached_message_hashes`), so the server answers with `ref_hash` references, as it does for a browser.

Not done (a browser does them; the load test does not need them): drawing, component iframes, uploads (tests use
a real browser for those), reconnecting after a dropped connection.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

# importing streamlit.proto imports the streamlit package (once, here: not from two threads at a time)
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect

# websockets >= 15 would use a proxy from the environment: localhost only, never a proxy
_NO_PROXY = {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}

STEP_RE = re.compile(r"\*\*(.+?)\*\*: step (\d+) ·")
# urllib without any proxy from the environment: localhost only
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, cookies: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes, dict]:
    """GET url (no proxy); returns (status, body, cookies the response set)."""
    req = urllib.request.Request(url)
    if cookies:
        req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    with _OPENER.open(req, timeout=timeout) as r:
        body = r.read()
        jar = SimpleCookie()
        for h in r.headers.get_all("Set-Cookie") or []:
            jar.load(h)
        return r.status, body, {k: m.value for k, m in jar.items()}


@dataclass
class Run:
    """One script run (full or fragment) as the client saw it: NewSession ... ScriptFinished."""

    run_id: str
    fragment: bool
    started_at: float
    finished_at: float = float("nan")
    status: str = ""  # ScriptFinishedStatus name; "REPLACED" if another run started before its end arrived
    charts: int = 0  # plotly charts it drew
    first_chart_at: float = float("nan")
    steps: list[int] = field(default_factory=list)  # step counts in its status line, if it drew one

    @property
    def done(self) -> bool:
        return self.finished_at == self.finished_at  # not nan


TERMINAL = {"FINISHED_SUCCESSFULLY", "FINISHED_FRAGMENT_RUN_SUCCESSFULLY", "FINISHED_WITH_COMPILE_ERROR"}


class StreamTab:
    """One simulated tab. Thread-safe reads; a reader thread applies ForwardMsgs, a timer thread sends ticks."""

    def __init__(self, base_url: str, path: str = "/", query: str = "", timeout: float = 60.0,
                 cookies: dict[str, str] | None = None):
        self.base = base_url.rstrip("/")
        self.path = path if path.startswith("/") else "/" + path
        self.query_string = query.lstrip("?")
        self.timeout = timeout
        self.cookies: dict[str, str] = dict(cookies or {})
        self._cv = threading.Condition()
        self._ws = None
        self._stack = contextlib.ExitStack()
        self._send_lock = threading.Lock()
        self.session_id = ""
        self.page_script_hash = ""
        self.main_script_hash = ""
        self.pages: dict[str, str] = {}  # url path ("" = default page) -> page script hash
        self.widgets: dict[str, str] = {}  # widget key (or label) -> element id
        self.disabled: dict[str, bool] = {}  # element id -> disabled
        self.fragment_of: dict[str, str] = {}  # element id -> the fragment that drew it ("" = none)
        self.status_text = ""
        self.texts: list[str] = []  # markdown/heading/alert bodies of the latest full run, in arrival order
        self.exceptions: list[str] = []  # st.exception elements received (an app error shown on the page)
        self.running = False
        self.runs: list[Run] = []
        self._current: Run | None = None
        self._auto: dict[str, tuple[float, float]] = {}  # fragment id -> (interval, next due)
        self._cache: set[str] = set()
        self.closed = False
        self.close_reason = ""
        self.page_loaded_s = float("nan")  # GET of the page (HTML)
        self.opened_at = float("nan")
        self._threads: list[threading.Thread] = []

    # -- connection ---------------------------------------------------------------------------------------------
    def open(self, load_page: bool = True) -> StreamTab:
        """GET the page as a browser would (its cookies are kept), connect the websocket, ask for the first run."""
        self.opened_at = time.perf_counter()
        if load_page:
            _, _, set_cookies = http_get(self.base + self.path, self.cookies, timeout=self.timeout)
            self.cookies.update(set_cookies)
            self.page_loaded_s = time.perf_counter() - self.opened_at
        u = urlsplit(self.base)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        self._ws = self._stack.enter_context(connect(  # a context manager in every websockets version
            f"ws://{u.netloc}{u.path}/_stcore/stream", subprotocols=["streamlit"], additional_headers=headers,
            open_timeout=self.timeout, max_size=2**26, ping_interval=None, compression=None, **_NO_PROXY))
        for target in (self._reader, self._ticker):
            t = threading.Thread(target=target, daemon=True, name=f"stream-tab-{target.__name__}")
            t.start()
            self._threads.append(t)
        self._rerun(page_name=self.path.strip("/"))
        return self

    def close(self) -> None:
        """Close the websocket, as closing the tab does."""
        with self._cv:
            self.closed = True
            self._cv.notify_all()
        with contextlib.suppress(Exception):
            self._stack.close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> StreamTab:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sending ------------------------------------------------------------------------------------------------
    def _rerun(self, widgets: list | None = None, fragment_id: str = "", auto: bool = False,
               page_name: str = "") -> float:
        """Send rerun_script; returns when it was sent (perf_counter)."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = self.page_script_hash
        cs.page_name = page_name
        cs.is_auto_rerun = auto
        if fragment_id:
            cs.fragment_id = fragment_id
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        ci = cs.context_info
        ci.timezone, ci.timezone_offset, ci.locale = "UTC", 0, "en-US"
        ci.url, ci.is_embedded, ci.color_scheme = self.base + self.path, False, "light"
        with self._cv:
            cs.cached_message_hashes.extend(sorted(self._cache))
        sent = time.perf_counter()
        self._send(msg)
        return sent

    def _send(self, msg) -> None:
        with self._send_lock:
            self._ws.send(msg.SerializeToString())

    def click(self, key: str) -> float:
        """Press the button whose key (or label) is `key`: a rerun with its trigger set, scoped to the fragment that
        drew the button if one did (as the browser does: e.g. Step reruns only the live area); returns when it was
        sent."""
        with self._cv:
            wid = self.widgets.get(key)
            fragment_id = self.fragment_of.get(wid, "")
        if wid is None:
            raise KeyError(f"no widget {key!r} on the page; known: {sorted(self.widgets)}; "
                           f"exceptions on the page: {self.exceptions}")
        w = WidgetState(id=wid, trigger_value=True)
        return self._rerun([w], fragment_id=fragment_id)

    def rerun(self) -> float:
        """A plain full rerun (what pressing R does)."""
        return self._rerun()

    # -- receiving ----------------------------------------------------------------------------------------------
    def _reader(self) -> None:
        reason = "closed"
        try:
            while True:
                data = self._ws.recv()
                msg = ForwardMsg()
                msg.ParseFromString(data)
                with self._cv:
                    self._apply(msg, time.perf_counter())
                    self._cv.notify_all()
        except Exception as exc:  # noqa: BLE001 - any end of the connection ends the tab
            reason = f"{type(exc).__name__}: {exc}"
        with self._cv:
            if not self.closed:
                self.close_reason = reason
            self.closed = True
            self._cv.notify_all()

    def _apply(self, msg, now: float) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self._cache.add(msg.hash)
        if kind == "new_session":
            ns = msg.new_session
            self.session_id = ns.initialize.session_id or self.session_id
            self.page_script_hash = ns.page_script_hash
            self.main_script_hash = ns.main_script_hash
            fragment = bool(msg.metadata.run.fragment_ids)
            if not fragment:
                self._auto.clear()  # a full run starts: its fragments re-register their timers
                self.texts = []
            if self._current is not None and not self._current.done:
                self._current.finished_at, self._current.status = now, "REPLACED"
            self._current = Run(msg.metadata.run.script_run_id, fragment, now)
            self.runs.append(self._current)
        elif kind == "session_status_changed":
            self.running = msg.session_status_changed.script_is_running
        elif kind == "navigation":  # st.navigation ran: the page this run shows is the tab's page from now on
            self.page_script_hash = msg.navigation.page_script_hash or self.page_script_hash
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            for p in msg.navigation.app_pages:
                if p.is_default:
                    self.pages.setdefault("", p.page_script_hash)
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            interval = msg.auto_rerun.interval
            fid = msg.auto_rerun.fragment_id
            if fid and (fid not in self._auto or self._auto[fid][0] != interval):
                self._auto[fid] = (interval, now + interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self._auto.pop(fid, None)
        elif kind == "delta":
            self._delta(msg.delta, now)
        elif kind == "script_finished":
            rid = msg.metadata.run.script_run_id
            run = next((r for r in reversed(self.runs) if r.run_id == rid), None) if rid else self._current
            if run is not None and not run.done:
                run.finished_at = now
                run.status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
            if run is self._current:
                self._current = None
        elif kind == "ref_hash":
            pass  # a cached element we already had: nothing new to read (charts are counted on arrival)

    def _delta(self, delta, now: float) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        etype = el.WhichOneof("type")
        inner = getattr(el, etype) if etype else None
        wid = getattr(inner, "id", "") if inner is not None and "id" in inner.DESCRIPTOR.fields_by_name else ""
        if wid:
            key = wid.rsplit("-", 1)[1] if wid.startswith("$$ID-") and wid.count("-") >= 2 else ""
            if key and key != "None":
                self.widgets[key] = wid
            label = getattr(inner, "label", "")
            if label:
                self.widgets[label] = wid
            self.disabled[wid] = bool(getattr(inner, "disabled", False))
            self.fragment_of[wid] = delta.fragment_id
        if etype == "exception":
            self.exceptions.append(f"{el.exception.type}: {el.exception.message}")
        run = self._current
        if etype == "plotly_chart" and run is not None:
            run.charts += 1
            if run.first_chart_at != run.first_chart_at:
                run.first_chart_at = now
        body = ""
        if etype == "markdown":
            body = el.markdown.body
        elif etype == "heading":
            body = el.heading.body
        elif etype == "alert":
            body = el.alert.body
        if body:
            self.texts.append(body)
            if "steps/s" in body:
                self.status_text = body
                if run is not None:
                    run.steps = [int(n) for _, n in STEP_RE.findall(body)]

    def _ticker(self) -> None:
        """run_every timers: fire each due fragment's rerun, like the browser's setInterval."""
        while True:
            with self._cv:
                if self.closed:
                    return
                now = time.perf_counter()
                due = [fid for fid, (_, at) in self._auto.items() if at <= now]
                for fid in due:
                    interval, at = self._auto[fid]
                    self._auto[fid] = (interval, max(at + interval, now))
                wait = min([at for _, at in self._auto.values()], default=now + 0.05) - now
            for fid in due:
                with contextlib.suppress(Exception):
                    self._rerun(fragment_id=fid, auto=True)
            with self._cv:
                if not self.closed:
                    self._cv.wait(timeout=min(max(wait, 0.005), 0.05))

    # -- reading and waiting ------------------------------------------------------------------------------------
    def wait_for(self, predicate, timeout: float | None = None, what: str = "condition"):
        """Until predicate(self) is true (evaluated under the lock on every message); returns its value."""
        deadline = time.perf_counter() + (self.timeout if timeout is None else timeout)
        with self._cv:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.perf_counter()
                if self.closed:
                    raise ConnectionError(f"{what}: connection closed ({self.close_reason})")
                if left <= 0:
                    raise TimeoutError(f"{what} not reached in {timeout or self.timeout:.0f} s; status "
                                       f"{self.status_text!r}, running={self.running}, exceptions {self.exceptions}")
                self._cv.wait(timeout=min(left, 0.5))

    def wait_done(self, since: float, timeout: float | None = None, fragment: bool = False) -> Run:
        """Until a full run (a fragment run if `fragment`, e.g. after pressing Step) that started after `since` (e.g.
        a click's send time) is over, and no run is going on or was cut short for a rerun; returns that run."""
        def done(s):
            runs = [r for r in s.runs if r.fragment == fragment and r.started_at >= since]
            last = s.runs[-1] if s.runs else None
            ok = runs and last.done and last.status in TERMINAL and not s.running and s._current is None
            return runs[-1] if ok else None
        return self.wait_for(done, timeout, "run finished")

    def wait_idle(self, timeout: float | None = None) -> None:
        """Until the latest run is over (not for a tab that is training: its fragment ticks on)."""
        self.wait_for(lambda s: s.runs and s.runs[-1].done and s.runs[-1].status in TERMINAL and not s.running,
                      timeout, "idle")

    def has_widget(self, key: str) -> bool:
        with self._cv:
            return key in self.widgets

    def steps(self) -> list[int]:
        with self._cv:
            return [int(n) for _, n in STEP_RE.findall(self.status_text)]

    def labels(self) -> list[str]:
        with self._cv:
            return [lbl for lbl, _ in STEP_RE.findall(self.status_text)]

    def training(self) -> bool:
        """The status line says running (what the sidebar's Pause button means)."""
        with self._cv:
            return "· running" in self.status_text

    def ticking(self) -> bool:
        with self._cv:
            return bool(self._auto)

    def finished_runs(self, since: float = 0.0) -> list[Run]:
        with self._cv:
            return [r for r in self.runs if r.done and r.finished_at >= since]
