"""Give a closed tab's memory back: one thread per server process that releases expired sessions.

    from pages import _janitor
    _janitor.start()          # in app.py, once per script run (st.cache_resource makes it one thread)

Streamlit (1.67) keeps a disconnected session for `server.disconnectedSessionTTL` seconds
(.streamlit/config.toml), so that a tab whose websocket dropped for a moment gets its models back. But:
1. an expired session is removed from the session storage only when another session disconnects (the storage is
   a TTL cache that expires entries on writes), and then without `AppSession.shutdown()` (its uploaded files
   stay in the upload manager);
2. the runtime's message loop keeps the last session it flushed referenced (a loop variable) until another
   session sends a message, so even a removed session can stay alive with all its session_state;
3. a session's models sit in reference cycles (page namespaces <-> their functions, widget callbacks), which only
   a full garbage collection frees, and glibc keeps freed heap pages unless asked to return them.

So every SWEEP_SECONDS the thread returns free heap pages to the system (malloc_trim, glibc only: live sessions
free buffers all the time, thinned snapshots and history, each tick's figures), and it expires the stored
sessions past their TTL on the event loop (where the storage is used), shuts each down as `close_session` would,
empties its session_state and fragments (so a shell kept by (2) holds nothing), then collects.
Measured with bench/bench_memory.py session: RSS back within 50 MB of its level before a session, TTL + one sweep
after the tab closed. Streamlit internals are used (1.67); on another version the thread only collects.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import sys
import threading
import time

import streamlit as st

SWEEP_SECONDS = 10.0
FALLBACK_EVERY = 6  # sweeps between collections when the internals are not there


def _say(msg: str) -> None:
    print(f"rnnviz: session janitor: {msg}", file=sys.stderr, flush=True)


def _expire_and_release(rt) -> int:
    """Expire stored sessions past their TTL and release them; returns how many. Runs on the event loop."""
    storage = rt._session_mgr._session_storage._cache  # MemorySessionStorage's TTLCache (Streamlit 1.67)
    gone = storage.expire()
    for sid, info in gone:
        try:
            session = info.session
            session.shutdown()  # its uploaded files, caches and script thread, as close_session does
            session.session_state.clear()
            session._fragment_storage.clear()
        except Exception as exc:  # noqa: BLE001 - one session's failure must not keep the others
            _say(f"releasing session {sid[:8]} failed: {exc!r}")
    return len(gone)


async def _on_loop(rt) -> int:
    return _expire_and_release(rt)


def _trim() -> None:
    """Return free heap pages to the system (glibc's malloc_trim); nothing elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def _sweep_forever() -> None:
    from streamlit import runtime

    internals, sweeps = True, 0
    while True:
        time.sleep(SWEEP_SECONDS)
        sweeps += 1
        released = 0
        if internals:
            try:
                rt = runtime.get_instance()
                loop = rt._get_async_objs().eventloop

                released = asyncio.run_coroutine_threadsafe(_on_loop(rt), loop).result(timeout=30)
            except Exception as exc:  # noqa: BLE001 - another Streamlit version, or shutting down: collect only
                _say(f"cannot release expired sessions ({exc!r}); collecting every "
                     f"{FALLBACK_EVERY * SWEEP_SECONDS:.0f} s only")
                internals = False
        if released or (not internals and sweeps % FALLBACK_EVERY == 0):
            gc.collect()
        _trim()  # every sweep: live sessions' freed buffers (thinned snapshots, old figures) go back too
        if released:
            _say(f"released {released} closed session(s)")


@st.cache_resource(show_spinner=False)
def start() -> threading.Thread:
    """Start the janitor once per server process (st.cache_resource is process-wide)."""
    t = threading.Thread(target=_sweep_forever, name="rnnviz-session-janitor", daemon=True)
    t.start()
    return t


__all__ = ["FALLBACK_EVERY", "SWEEP_SECONDS", "start"]
