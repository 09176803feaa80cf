"""rnnviz for a whole class: N `streamlit run app.py` replicas behind HAProxy, with sticky sessions.

    python deploy/serve.py                          # one replica per core, HAProxy on port 8501 (all interfaces)
    python deploy/serve.py --replicas 2 --port 8080 --bind 127.0.0.1
    python deploy/serve.py --print-config --servers 10.0.0.11:8501,10.0.0.12:8501 > haproxy.cfg   # other hosts

Why: one Streamlit process runs every session's script in threads under one GIL, so it uses about one core
however many the machine has, and it keeps each session (its models, websocket, uploads, downloads) in its own
memory. So: several processes, and a proxy that sends every request of a browser to the replica that holds its
session. HAProxy (Debian's package, `apt-get install haproxy`) does that with a cookie:

- `cookie rnnviz_replica insert nocache`: the first response to a new browser sets rnnviz_replica=<replica name>;
  every later request (the websocket, uploads to /_stcore/upload_file, downloads from /media) carries it and
  goes to that replica. The cookie is left in the request, so the app can see which replica a browser was on.
- `balance leastconn`: a new browser goes to the replica with the fewest open connections (websockets = open
  tabs).
- Websockets: HAProxy forwards the HTTP/1.1 Upgrade as is; once upgraded the connection is a tunnel and
  `timeout tunnel` (1 h) applies instead of the client/server timeouts. Streamlit's own reconnect takes over after.
- Health: `GET /_stcore/health` must answer "ok" every 2 s; 3 failures in a row (a replica that died, or is stuck
  for 15 s) take it out. A browser whose replica is out is sent to a live one: its session there is new (the
  models trained on the dead replica are gone; the settings come back from the URL).
- All replicas share one `server.cookieSecret` (generated here, passed in the environment), so the XSRF cookie
  of a browser that moved to another replica is still valid there (uploads keep working).

This script writes the config, starts the replicas on 127.0.0.1:<base-port + i> (each in its own process
group, RNNVIZ_REPLICA=<name> in its environment), waits until each is healthy, starts
`haproxy -f <config> -db` in the foreground, and on Ctrl-C (SIGINT) or SIGTERM stops everything it started.
With --servers it starts no replicas: the config points at replicas on other hosts (the recipe for several
machines; start `streamlit run app.py --server.address 0.0.0.0 --server.port 8501` on each, with the same
STREAMLIT_SERVER_COOKIE_SECRET).

From Python (tests/test_scaleout.py, bench/bench_load.py):

    with Deployment(replicas=2, bind="127.0.0.1") as dep:   # free ports when none are given
        dep.url                     # http://127.0.0.1:<port> (the proxy)
        dep.replicas[0].url         # a replica directly; .name ("r1"), .proc, .alive(), .kill()
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
COOKIE = "rnnviz_replica"
START_TIMEOUT = 90.0  # a replica imports torch: slow on a loaded machine
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost: never an env proxy


def haproxy_config(servers: list[tuple[str, str]], bind: str = "*:8501", cookie: str = COOKIE,
                   log: bool = True) -> str:
    """The HAProxy configuration: `servers` is [(name, "host:port"), ...]; `bind` is HAProxy's listen address."""
    lines = [
        "# rnnviz behind HAProxy: written by deploy/serve.py (python deploy/serve.py --help)",
        "global",
        "    maxconn 4096",
        *(["    log stdout format raw local0 info"] if log else []),
        "",
        "defaults",
        "    mode http",
        *(["    log global", "    option httplog", "    option dontlognull"] if log else []),
        "    option forwardfor",
        "    option redispatch          # a request for a replica that fails is sent to another one",
        "    retries 2",
        "    timeout connect 5s",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 30s",
        "    timeout client 60s",
        "    timeout server 120s        # a script run that reruns a page answers within this",
        "    timeout tunnel 1h          # an upgraded websocket (an open tab), idle at most this long",
        "    timeout client-fin 5s",
        "",
        "frontend rnnviz",
        f"    bind {bind}",
        "    default_backend streamlit",
        "",
        "backend streamlit",
        "    balance leastconn          # open websockets = open tabs: a new tab goes where fewest are",
        f"    cookie {cookie} insert nocache httponly   # sticky: every request of a browser to one replica",
        "    option httpchk GET /_stcore/health",
        "    http-check expect string ok",
        "    timeout check 5s",
        "    default-server inter 2s fall 3 rise 2",
    ]
    lines += [f"    server {name} {addr} check cookie {name}" for name, addr in servers]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with _OPENER.open(url + "/_stcore/health", timeout=timeout) as r:
            return r.status == 200 and r.read().decode().strip() == "ok"
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def _stop_group(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """SIGTERM the process group the process leads, SIGKILL what is left after `grace` seconds."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the leader (same group)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


@dataclass
class Replica:
    """One `streamlit run app.py` process on 127.0.0.1:port, leader of its own process group."""

    name: str
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None
    extra_env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, app: str = "app.py", cwd: Path = REPO, args: tuple[str, ...] = ()) -> None:
        cmd = [sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *args]
        env = dict(os.environ, PYTHONUNBUFFERED="1", RNNVIZ_REPLICA=self.name, **self.extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash, not a shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        _stop_group(self.proc)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Deployment:
    """N local replicas (or remote `servers`) behind one HAProxy; see the module docstring."""

    def __init__(self, replicas: int | None = None, port: int | None = None, bind: str = "127.0.0.1",
                 base_port: int | None = None, servers: list[str] | None = None, workdir: str | Path | None = None,
                 app: str = "app.py", streamlit_args: tuple[str, ...] = (), timeout: float = START_TIMEOUT,
                 env: dict | None = None):
        self.port = port or free_port()
        self.bind = bind
        self.remote = list(servers or [])
        n = 0 if self.remote else (replicas or os.cpu_count() or 1)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="rnnviz-deploy-")
        self.workdir = Path(workdir or self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        secret_env = {"STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(32), **(env or {})}
        self.replicas = [Replica(f"r{i + 1}", base_port + i if base_port else free_port(),
                                 self.workdir / f"replica-r{i + 1}.log", extra_env=secret_env) for i in range(n)]
        self.app, self.streamlit_args, self.timeout = app, tuple(streamlit_args), timeout
        self.config_path = self.workdir / "haproxy.cfg"
        self.proxy_log = self.workdir / "haproxy.log"
        self.proxy: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("", "*", "0.0.0.0") else self.bind
        return f"http://{host}:{self.port}"

    def servers(self) -> list[tuple[str, str]]:
        if self.remote:
            return [(f"r{i + 1}", addr) for i, addr in enumerate(self.remote)]
        return [(r.name, f"127.0.0.1:{r.port}") for r in self.replicas]

    def config(self) -> str:
        return haproxy_config(self.servers(), bind=f"{self.bind or '*'}:{self.port}")

    def start(self) -> Deployment:
        try:
            self.config_path.write_text(self.config())
            check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(self.config_path)], capture_output=True,
                                   text=True)
            if check.returncode != 0:
                raise RuntimeError(f"haproxy refused the config:\n{check.stdout}{check.stderr}")
            for r in self.replicas:
                r.start(self.app, args=self.streamlit_args)
            deadline = time.perf_counter() + self.timeout
            for r in self.replicas:
                while not healthy(r.url, timeout=1.0):
                    if not r.alive():
                        raise RuntimeError(f"replica {r.name} exited before it was healthy:\n{r.log()[-3000:]}")
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"replica {r.name} not healthy after {self.timeout:.0f} s")
                    time.sleep(0.2)
            with open(self.proxy_log, "ab") as log:
                self.proxy = subprocess.Popen([HAPROXY, "-f", str(self.config_path), "-db"], stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)
            while not healthy(self.url, timeout=1.0):
                if self.proxy.poll() is not None:
                    raise RuntimeError(f"haproxy exited:\n{self.proxy_log.read_text(errors='replace')[-3000:]}")
                if time.perf_counter() > deadline + 10:
                    raise TimeoutError("haproxy not answering")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop_group(self.proxy)
        for r in self.replicas:
            r.stop()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="README: 'A whole class: several processes behind HAProxy'.")
    ap.add_argument("--replicas", type=int, default=os.cpu_count() or 1, help="local replicas (default: one per core)")
    ap.add_argument("--port", type=int, default=8501, help="HAProxy's port (default 8501, Streamlit's)")
    ap.add_argument("--bind", default="*", help="HAProxy's address (default * = all interfaces; 127.0.0.1 = local)")
    ap.add_argument("--base-port", type=int, default=8601, help="replica i listens on 127.0.0.1:base-port+i")
    ap.add_argument("--servers", default="", help="host:port,... of replicas on other hosts: start no local ones")
    ap.add_argument("--workdir", default=None, help="config and logs go here (default: a new /tmp/rnnviz-deploy-*)")
    ap.add_argument("--print-config", action="store_true", help="print the HAProxy config and exit")
    args = ap.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    workdir = args.workdir or (None if args.print_config else tempfile.mkdtemp(prefix="rnnviz-deploy-"))
    dep = Deployment(args.replicas, args.port, args.bind, args.base_port, servers, workdir)
    if args.print_config:
        sys.stdout.write(dep.config())
        return 0
    if not os.path.exists(HAPROXY):
        print(f"haproxy not found at {HAPROXY}: apt-get install haproxy", file=sys.stderr)
        return 2
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))
    dep.start()
    names = ", ".join(f"{n} {a}" for n, a in dep.servers())
    print(f"rnnviz: {dep.url} -> {names}\nconfig {dep.config_path}, logs in {dep.workdir}\nCtrl-C stops it.",
          flush=True)
    try:
        while not stop:
            if dep.proxy.poll() is not None:
                print("haproxy exited; stopping", file=sys.stderr)
                return 1
            for r in dep.replicas:
                if r.proc is not None and not r.alive():
                    print(f"replica {r.name} exited (code {r.proc.returncode}); its sessions moved to the others. "
                          f"Log: {r.log_path}", file=sys.stderr, flush=True)
                    r.proc = None
            time.sleep(0.5)
    finally:
        dep.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
