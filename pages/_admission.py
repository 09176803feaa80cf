"""Admission and fair share of one server process's training time among its live sessions.

One Python process runs every session's script in threads under one GIL, so all sessions share about one core
for training and drawing. This object decides, tick by tick, who trains and for how long:

- **Fair share.** Each live tick of a training session asks for its budget (seconds of training this tick). The
  budgets of the n sessions training now are equal and sized so that one tick of every one of them, training plus
  its own measured overhead (script run, figures, sending), fits in `core_seconds` (default: one core for one
  tick interval), but never less than `train_floor` times the session's own overhead (so that when redraws
  alone fill the round, a session still trains a fixed share of its tick instead of one step per redraw):

      budget_i = clip(max((core_seconds - sum_j overhead_j) / n, train_floor * overhead_i), min_budget, max_budget)

  overhead_j is session j's last tick time minus the training it was granted (an exponential mean over ticks,
  `default_overhead` until it reports one). With few sessions the cap `max_budget` leaves the rest of the core
  idle; with many the floor `min_budget` keeps every session stepping (a tick always trains at least one step).
- **Admission.** At most `capacity` sessions train at once. Beyond that a session waits in a FIFO queue and is
  told its 1-based position ("server busy: your run starts when a slot frees, position k"). A freed slot goes to
  the head of the queue when it next asks; nobody overtakes a waiting session.
- **Release.** `release(sid)` when a session pauses, resets or finishes. A session that stops asking for
  `timeout` seconds (tab closed, page left) loses its slot or its place in the queue, so idle tabs cost nothing.

API (thread-safe; every method takes the lock once; `clock` is injectable for tests):

    adm = Admission(capacity=8, core_seconds=0.5, timeout=10.0)
    g = adm.request(sid)            # at the start of a tick -> Grant
    g.admitted, g.budget            # train for g.budget seconds (0.0 while waiting)
    g.position, g.message           # 1-based queue position and the sentence to show (None / "" when admitted)
    g.training, g.waiting           # sessions training now / waiting now
    adm.report(sid, tick_seconds)   # at the end of the tick: its whole server time (train + draw)
    adm.release(sid)                # paused, reset, finished: slot (or queue place) freed at once
    adm.state()                     # {"training": [...], "waiting": [...]} for a status line or a bench

`admission()` returns the process-wide instance (settings from RNNVIZ_MAX_TRAINING and RNNVIZ_CORE_SECONDS).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

BUSY = "Server busy: your run starts when a slot frees, position {k}"
# One process trains on about one core (one GIL) whatever the machine. A live redraw costs that core about
# 0.1-0.2 s (script run, figures, sending): CAPACITY sessions sharing CORE_SECONDS per round each get about one
# redraw a second. More students: more processes (deploy/serve.py runs one per core behind HAProxy).
CAPACITY = 4
CORE_SECONDS = 1.0
# Measured with 4 sessions (bench/bench_load.py): redraws alone took the whole round (168 ms of CPU each), so
# every session trained the 0.02 s floor, 1.7 steps/s. A session trains at least half as long as it draws.
TRAIN_FLOOR = 0.5


@dataclass(frozen=True)
class Grant:
    """The answer to one tick's request."""

    admitted: bool
    budget: float  # seconds of training for this tick (0.0 while waiting)
    position: int | None  # 1-based place in the queue; None when admitted
    training: int  # sessions holding a slot now (this one included if admitted)
    waiting: int  # sessions in the queue now

    @property
    def message(self) -> str:
        return "" if self.admitted else BUSY.format(k=self.position)


class Admission:
    """Process-wide admission and fair share; see the module docstring for the API and the formula."""

    def __init__(self, capacity: int = 8, core_seconds: float = 0.5, min_budget: float = 0.02,
                 max_budget: float = 1.0, timeout: float = 10.0, default_overhead: float = 0.1,
                 smoothing: float = 0.3, train_floor: float = 0.0, clock: Callable[[], float] = time.monotonic):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if not 0 < min_budget <= max_budget:
            raise ValueError("need 0 < min_budget <= max_budget")
        if core_seconds <= 0 or timeout <= 0 or not 0 < smoothing <= 1:
            raise ValueError("core_seconds and timeout must be > 0, smoothing in (0, 1]")
        self.capacity = capacity
        self.core_seconds = core_seconds
        self.min_budget, self.max_budget = min_budget, max_budget
        self.timeout = timeout
        self.default_overhead = default_overhead
        self.smoothing = smoothing
        self.train_floor = train_floor
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[Hashable, float] = {}  # sid -> last seen (insertion order = admission order)
        self._granted: dict[Hashable, float] = {}  # sid -> budget granted at its last request
        self._overhead: dict[Hashable, float] = {}  # sid -> mean seconds of a tick beyond its training
        self._queue: OrderedDict[Hashable, float] = OrderedDict()  # sid -> last seen, FIFO

    # -- the three calls of a tick ------------------------------------------------------------------------------
    def request(self, sid: Hashable) -> Grant:
        """Start of a tick: a slot and this tick's budget, or the queue position."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if sid not in self._active:
                self._queue[sid] = now  # joins the tail, or keeps its place and is seen again
                head = next(iter(self._queue))
                if sid == head and len(self._active) < self.capacity:
                    del self._queue[sid]
                else:
                    position = list(self._queue).index(sid) + 1
                    return Grant(False, 0.0, position, len(self._active), len(self._queue))
            self._active[sid] = now
            budget = self._budget(sid)
            self._granted[sid] = budget
            return Grant(True, budget, None, len(self._active), len(self._queue))

    def report(self, sid: Hashable, tick_seconds: float) -> None:
        """End of a tick: its whole server time (training + drawing); the part beyond the grant is overhead."""
        with self._lock:
            if sid not in self._active:
                return
            self._active[sid] = self._clock()
            extra = max(tick_seconds - self._granted.get(sid, 0.0), 0.0)
            prev = self._overhead.get(sid)
            self._overhead[sid] = extra if prev is None else prev + self.smoothing * (extra - prev)

    def release(self, sid: Hashable) -> None:
        """The session stopped training (pause, reset, finished): its slot or queue place is free at once."""
        with self._lock:
            self._drop(sid)

    # -- reading ------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, list]:
        """Who trains and who waits now (after dropping sessions silent for `timeout`)."""
        with self._lock:
            self._expire(self._clock())
            return {"training": list(self._active), "waiting": list(self._queue)}

    # -- inside the lock ----------------------------------------------------------------------------------------
    def _budget(self, sid: Hashable) -> float:
        n = len(self._active)
        overhead = sum(self._overhead.get(s, self.default_overhead) for s in self._active)
        share = (self.core_seconds - overhead) / n
        floor = self.train_floor * self._overhead.get(sid, self.default_overhead)
        return min(max(share, floor, self.min_budget), self.max_budget)

    def _expire(self, now: float) -> None:
        for table in (self._active, self._queue):
            for sid in [s for s, seen in table.items() if now - seen > self.timeout]:
                self._drop(sid)

    def _drop(self, sid: Hashable) -> None:
        self._active.pop(sid, None)
        self._queue.pop(sid, None)
        self._granted.pop(sid, None)
        self._overhead.pop(sid, None)


_INSTANCE: Admission | None = None
_INSTANCE_LOCK = threading.Lock()


def admission() -> Admission:
    """The one instance of this server process (created on first use)."""
    global _INSTANCE
    with _INSTANCE_LOCK:
        if _INSTANCE is None:
            _INSTANCE = Admission(capacity=int(os.environ.get("RNNVIZ_MAX_TRAINING", str(CAPACITY))),
                                  core_seconds=float(os.environ.get("RNNVIZ_CORE_SECONDS", str(CORE_SECONDS))),
                                  train_floor=TRAIN_FLOOR)
        return _INSTANCE
