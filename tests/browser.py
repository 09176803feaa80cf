"""Drive `streamlit run app.py` with Debian's Chromium through Playwright (sync API).

Used by tests/test_browser.py and the bench/ scripts. Nothing here is a test; it is the harness:

    with StreamlitServer() as server:              # streamlit run app.py on 127.0.0.1:<free port>
        with launch_browser() as browser:          # /usr/bin/chromium, headless
            page = new_page(browser)               # 1600x1000 viewport
            ui = App(page, server.url)
            ui.goto("/gradient_flow")
            ui.click_sidebar_button("Step")

The server runs in its own process group and is always killed (group-wide) on exit, also on failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
VIEWPORT = {"width": 1600, "height": 1000}
START_TIMEOUT = 60.0  # importing torch is slow

# Streamlit's DOM hooks (1.5x): stable data-testid attributes
APP = '[data-testid="stApp"]'
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
SIDEBAR = '[data-testid="stSidebar"]'
NAV_LINK = '[data-testid="stSidebarNav"] a'
PLOT = '[data-testid="stPlotlyChart"]'
PLOT_DRAWN = ".js-plotly-plot .main-svg"
STEP_RE = re.compile(r"step (\d+) ·")

def PlaywrightTimeout():  # noqa: N802 - the exception class, imported late (playwright is optional)
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    return PlaywrightTimeoutError


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str, timeout: float = 2.0) -> tuple[bool, float]:
    """(answered "ok", seconds it took) for GET <url>/_stcore/health."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=timeout) as r:
            ok = r.status == 200 and r.read().decode().strip() == "ok"
    except (urllib.error.URLError, OSError, TimeoutError):
        ok = False
    return ok, time.perf_counter() - t0


# -- reading the server log ------------------------------------------------------------------------------------

_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
# A browser tab that closes while its websocket is being opened or closed makes Streamlit's own websocket endpoint
# (uvicorn + starlette, no app frame involved) log a traceback. That race is the server's, not the app's.
_CLIENT_GONE = re.compile(r'WebSocketDisconnect|ClientDisconnect|ConnectionClosed|'
                          r'Cannot call "send" once a close message|Need to call "accept" first')


def tracebacks(log: str) -> list[str]:
    """Every Python traceback report in a log, chained exceptions ("During handling of ...") kept in one report."""
    reports: list[str] = []
    cur: list[str] | None = None
    state = ""  # "frames": inside a stack; "summary": after "pkg.Error: msg"; "chain": after a chaining sentence
    for line in log.splitlines():
        starts_tb = line.startswith("Traceback (most recent call last)")
        if cur is not None:
            if state == "frames" and line.startswith((" ", "\t")):
                cur.append(line)
                continue
            if state == "frames" and not starts_tb:
                cur.append(line)  # the exception's summary line
                state = "summary"
                continue
            if state in ("summary", "chain") and not line.strip():
                cur.append(line)
                continue
            if state == "summary" and line.startswith(_CHAIN):
                cur.append(line)
                state = "chain"
                continue
            if state == "chain" and starts_tb:
                cur.append(line)
                state = "frames"
                continue
            reports.append("\n".join(cur).rstrip())
            cur = None
        if starts_tb:
            cur, state = [line], "frames"
    if cur is not None:
        reports.append("\n".join(cur).rstrip())
    return reports


def traceback_in_app_code(report: str, repo: Path = REPO) -> bool:
    """True if any frame of the report is a file of this project (app.py, pages/, rnnviz/), not an installed one."""
    for path in re.findall(r'File "([^"]+)"', report):
        p = Path(path)
        if p.is_absolute() and p.is_relative_to(repo) and not {".venv", "site-packages"} & set(p.parts):
            return True
    return False


def counts_against_app(report: str, repo: Path = REPO) -> bool:
    """False only for Streamlit's own client-disconnect race: no project frame, and only disconnect errors."""
    summaries = [ln for ln in report.splitlines()
                 if ln and not ln.startswith((" ", "\t", "Traceback")) and not ln.startswith(_CHAIN)]
    client_gone = bool(summaries) and all(_CLIENT_GONE.search(s) for s in summaries)
    return traceback_in_app_code(report, repo) or not client_gone


def app_tracebacks(log: str, repo: Path = REPO) -> list[str]:
    """The log's tracebacks that count against the app (see counts_against_app)."""
    return [r for r in tracebacks(log) if counts_against_app(r, repo)]


# -- the server ------------------------------------------------------------------------------------------------
class StreamlitServer:
    """`streamlit run app.py` on 127.0.0.1:<free port>, cwd = repo root, in its own process group."""

    def __init__(self, port: int | None = None, timeout: float = START_TIMEOUT, app: str = "app.py",
                 cwd: Path | str = REPO, extra_args: tuple[str, ...] = ()):
        self.cwd = Path(cwd)
        self.extra_args = tuple(extra_args)  # more `streamlit run` options, e.g. ("--runner.fastReruns", "false")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        self.app = app
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="rnnviz-streamlit-", suffix=".log", delete=False)
        self._final_output: str | None = None
        self.launched_at = 0.0
        self.ready_seconds = float("nan")  # process launch -> health "ok"

    def start(self) -> StreamlitServer:
        cmd = [sys.executable, "-m", "streamlit", "run", self.app,
               "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.launched_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = self.launched_at + self.timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode} before it was healthy:\n"
                                   f"{self.output()}")
            ok, _ = health(self.url, timeout=1.0)
            if ok:
                self.ready_seconds = time.perf_counter() - self.launched_at
                return
            time.sleep(0.1)
        raise TimeoutError(f"streamlit not healthy at {self.url} after {self.timeout:.0f} s:\n{self.output()}")

    def output(self, tail: int = 4000) -> str:
        """The server's stdout+stderr so far (the last `tail` characters); still available after stop()."""
        if self._final_output is not None:
            return self._final_output[-tail:]
        try:
            return Path(self.log.name).read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, from /proc (Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # children that outlived the leader (same group)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        self._final_output = self.output(tail=10**9)
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)
        self.proc = None

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the browser -----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def launch_browser():
    """Yields a Playwright Chromium Browser (Debian's /usr/bin/chromium, headless); closes everything after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                browser.close()


# Counts script runs in the page: window.__stRuns goes up each time stApp's script state becomes "running",
# so an action can wait for *its* rerun to start and finish instead of racing a stale "notRunning".
# window.__stTimes keeps when (performance.now(), ms since navigation start) each state was entered.
RUN_COUNTER_JS = """
window.__stRuns = 0;
window.__stTimes = [];
new MutationObserver(records => {
  for (const r of records) {
    const state = r.target.getAttribute('data-test-script-state');
    if (state === 'running') window.__stRuns += 1;
    window.__stTimes.push([state, performance.now()]);
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
"""


def new_page(browser, timeout_ms: float = 30_000):
    """A page in a fresh context (= a separate Streamlit session), 1600x1000."""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(timeout_ms)
    ctx.add_init_script(RUN_COUNTER_JS)
    return ctx.new_page()


class App:
    """The rnnviz dashboard in one browser page: navigation, sidebar buttons, status, charts."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base = base_url.rstrip("/")

    # navigation -----------------------------------------------------------------------------------------------
    def goto(self, path: str = "/", wait_idle: bool = True, timeout_ms: float = 60_000) -> None:
        """Open a url path and/or query ("/attention", "/?task=reverse", "?seq_len=12")."""
        if path.startswith("?"):
            path = "/" + path
        self.page.goto(self.base + path, wait_until="domcontentloaded")
        if wait_idle:
            self.wait_idle(timeout_ms)

    def wait_idle(self, timeout_ms: float = 60_000) -> None:
        """Until the script run has finished (not for a page that is training: its fragment reruns forever)."""
        self.page.wait_for_selector(APP, state="attached", timeout=timeout_ms)
        # idle = the script run is over, the sidebar is drawn (its Step button, or on a page that trains nothing
        # its note) and no widget is still a lazy-loading skeleton
        self.page.wait_for_function(
            """() => {
                const app = document.querySelector('[data-testid="stApp"]');
                return app && app.getAttribute('data-test-script-state') === 'notRunning'
                    && document.querySelector('[data-testid="stSidebar"] .st-key-btn_step button, '
                                              + '[data-testid="stSidebar"] .st-key-sidebar_note') !== null
                    && document.querySelector('[data-testid="stSkeleton"]') === null;
            }""", timeout=timeout_ms)

    def runs(self) -> int:
        """Script runs (full or fragment) this page has seen start."""
        return self.page.evaluate("window.__stRuns || 0")

    @contextlib.contextmanager
    def rerun(self, timeout_ms: float = 60_000, start_ms: float = 5_000):
        """`with ui.rerun(): <click>` waits for the rerun the click triggers to start and then finish.

        A very short run can flip the script state to "running" and back within one React render, so that no
        mutation is seen: after `start_ms` without one, the run is assumed done (callers check its effect).
        """
        before = self.runs()
        yield
        with contextlib.suppress(PlaywrightTimeout()):
            self.page.wait_for_function("n => (window.__stRuns || 0) > n", arg=before, timeout=start_ms)
        self.wait_idle(timeout_ms)

    def nav(self, title: str, timeout_ms: float = 60_000) -> None:
        """Click the sidebar navigation link whose text contains `title`, wait for that page to finish."""
        link = self.page.locator(NAV_LINK, has_text=title).first
        href = link.get_attribute("href") or ""
        with self.rerun(timeout_ms):
            link.click()
        if href:
            from urllib.parse import urlparse

            target = urlparse(href).path
            self.page.wait_for_function("p => location.pathname === p", arg=target, timeout=timeout_ms)
            self.wait_idle(timeout_ms)

    def load_phases(self) -> dict[str, float | None]:
        """Seconds from this document's navigation start to: "dom" (HTML + JS loaded), "run" (first script run
        started: websocket up), "idle" (last script run ended), "now"."""
        marks = self.page.evaluate(
            """() => {
                const nav = performance.getEntriesByType('navigation')[0];
                const t = window.__stTimes || [];
                const run = t.find(([s]) => s === 'running');
                const idle = [...t].reverse().find(([s]) => s === 'notRunning');
                return {dom: nav ? nav.domContentLoadedEventEnd : null, run: run ? run[1] : null,
                        idle: idle ? idle[1] : null, now: performance.now()};
            }""")
        return {k: (v / 1000 if v is not None else None) for k, v in marks.items()}

    def load_preset(self, name: str, timeout_ms: float = 60_000) -> None:
        """On Home: press "Load this demo" in the preset card whose title contains `name`; wait for its page."""
        card = self.page.locator('[data-testid="stVerticalBlock"]', has_text=name).last  # innermost block
        button = card.get_by_role("button", name="Load this demo")
        if button.count() != 1:
            raise AssertionError(f"found {button.count()} 'Load this demo' buttons in the card {name!r}")
        start = self.path()
        with self.rerun(timeout_ms):
            button.click()
        self.page.wait_for_function("p => location.pathname !== p", arg=start, timeout=timeout_ms)
        self.wait_idle(timeout_ms)

    def path(self) -> str:
        from urllib.parse import urlparse

        return urlparse(self.page.url).path

    def query(self) -> dict[str, str]:
        from urllib.parse import parse_qsl, urlparse

        return dict(parse_qsl(urlparse(self.page.url).query))

    # sidebar --------------------------------------------------------------------------------------------------
    def sidebar_button(self, text: str):
        return self.page.locator(SIDEBAR).get_by_role("button", name=text, exact=True)

    def click_sidebar_button(self, text: str) -> None:
        self.sidebar_button(text).click()

    def start(self) -> None:
        """Press ▶ Start and wait until the button has become ❚❚ Pause."""
        self.click_sidebar_button("▶ Start")
        self.sidebar_button("❚❚ Pause").wait_for(state="visible", timeout=30_000)

    def pause(self, timeout_ms: float = 30_000) -> None:
        """Press ❚❚ Pause, wait until ▶ Start is back and the script is idle."""
        self.click_sidebar_button("❚❚ Pause")
        self.sidebar_button("▶ Start").wait_for(state="visible", timeout=timeout_ms)
        self.wait_idle(timeout_ms)

    def step(self, timeout_ms: float = 30_000) -> list[int]:
        """Press Step, wait until the shown step counts change and the run is over; returns the new counts."""
        before = self.steps()
        if not before:  # a page without the live status (e.g. Home): nothing to watch but the rerun
            with self.rerun(timeout_ms):
                self.click_sidebar_button("Step")
            return self.steps()
        self.click_sidebar_button("Step")
        self.wait_steps(lambda s: s != before, timeout_ms)
        self.wait_idle(timeout_ms)
        return self.steps()

    def sidebar_text(self) -> str:
        return self.page.locator(SIDEBAR).inner_text()

    def widget_value(self, label: str) -> str:
        """The value shown by the sidebar text/number input or selectbox whose aria-label is `label`."""
        return self.page.locator(SIDEBAR).locator(f'input[aria-label="{label}"]').first.input_value()

    def select_option(self, label: str, option: str) -> None:
        """Pick `option` (its shown text) in the sidebar selectbox labelled `label`; wait for the rerun."""
        box = self.page.locator(SIDEBAR).locator(f'input[aria-label="{label}"]').first
        # mid-sidebar first: at the viewport's bottom edge the dropdown opened with no options in it
        box.evaluate("e => e.scrollIntoView({block: 'center'})")
        box.click()
        with self.rerun():
            self.page.get_by_role("option", name=option, exact=True).click()

    def set_number(self, label: str, value) -> None:
        """Type a value into a sidebar number input, commit it (Enter) and wait for the rerun to finish."""
        box = self.page.locator(SIDEBAR).locator(f'input[aria-label="{label}"]').first
        with self.rerun():
            box.fill(str(value))
            box.press("Enter")

    # status ---------------------------------------------------------------------------------------------------
    def status_text(self) -> str:
        """The live status line(s): the markdown containing "steps/s" ("**LSTM**: step 12 · 30 steps/s · …")."""
        texts = self.page.locator('[data-testid="stMarkdownContainer"]', has_text="steps/s").all_inner_texts()
        return "\n".join(texts)

    def steps(self) -> list[int]:
        """Step count of each run, in status order (empty if no status is shown)."""
        return [int(n) for n in STEP_RE.findall(self.status_text())]

    def wait_steps(self, predicate, timeout_ms: float = 30_000, poll_ms: float = 50) -> list[int]:
        deadline = time.perf_counter() + timeout_ms / 1000
        last = self.steps()
        while time.perf_counter() < deadline:
            last = self.steps()
            if last and predicate(last):
                return last
            self.page.wait_for_timeout(poll_ms)
        raise AssertionError(f"step counts never satisfied the condition within {timeout_ms / 1000:.0f} s; "
                             f"last {last}; status: {self.status_text()!r}")

    # charts, errors -------------------------------------------------------------------------------------------
    def plot_count(self) -> int:
        return self.page.locator(PLOT).count()

    def drawn_plot_count(self) -> int:
        return self.page.locator(".js-plotly-plot").count()

    def wait_plots(self, n: int = 1, timeout_ms: float = 60_000) -> int:
        """Until at least n plotly charts have drawn their svg; returns how many are drawn."""
        self.page.wait_for_function(
            "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n", arg=n, timeout=timeout_ms)
        return self.drawn_plot_count()

    def exceptions(self) -> list[str]:
        return [t.strip() for t in self.page.locator(EXCEPTION).all_inner_texts()]

    def assert_no_exception(self, where: str = "") -> None:
        exc = self.exceptions()
        assert not exc, f"{where or self.page.url}: Streamlit exception on the page:\n" + "\n---\n".join(exc)

    def title(self) -> str:
        h1 = self.page.locator('[data-testid="stMain"] h1').first
        return h1.inner_text().strip() if h1.count() else ""

    def screenshot(self, name: str, folder: str = "/tmp") -> str:
        """A PNG of the whole page, saved as <folder>/<name>.png; returns its path (best effort: never raises).

        Streamlit scrolls inside its main area, not the document, so a full-page screenshot would show only
        the viewport: the viewport is stretched to the content's height for the shot, then restored.
        """
        path = str(Path(folder) / f"{name}.png")
        try:
            self.full_screenshot(path)
        except Exception:  # noqa: BLE001 - a failure screenshot must not hide the failure
            with contextlib.suppress(Exception):
                self.page.screenshot(path=path)
        return path

    def full_screenshot(self, path: str, max_height: int = 12_000) -> str:
        size = self.page.viewport_size or VIEWPORT
        height = self.page.evaluate(
            """() => Math.max(...['[data-testid="stMain"]', '[data-testid="stSidebarContent"]']
                .map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight), innerHeight)""")
        try:
            if height > size["height"]:
                self.page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, max_height)})
                self.page.wait_for_timeout(400)  # charts re-lay out
            self.page.screenshot(path=path, full_page=True)
        finally:
            self.page.set_viewport_size(size)
        return path


def wait_warmed_up(server: StreamlitServer, timeout: float = 120.0) -> None:
    """Wait until the server's warm-up thread (pages/_warmup.py, started at the first visit) has finished, so that
    a test measuring the server's memory does not count the warm-up's allocations."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        out = server.output(tail=10**7)
        if "rnnviz: warmed up" in out or "rnnviz: warm-up failed" in out:
            return
        time.sleep(0.25)
    raise AssertionError(f"the server's warm-up did not finish within {timeout:.0f} s")
