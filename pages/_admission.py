"""Admission and fair share of one server process's training time among its live sessions.

One Python process runs every session's script in threads under one GIL, so all sessions share about one core
for training and drawing. This object decides, tick by tick, who trains and for how long:

- **Fair share.** Every admitted session aims at one redraw per `period` seconds: it trains for the period minus
  its own measured overhead (script run, figures, sending), so training fills the rest of its tick. Sessions
  train at the same time and ask for the same tick length, so the cores (and the GIL) are shared among them
  equally. Alone, a session trains most of each period; with many, each one's overhead stretches (its script
  waits for the GIL behind the others' redraws) and its budget shrinks with it, never below `train_floor` times
  its own overhead (so a session still trains a fixed share of its tick when redraws fill the process):

      budget_i = clip(period - overhead_i, max(train_floor * overhead_i, min_budget), max_budget)

  overhead_i is session i's tick time minus the training it was granted (an exponential mean over ticks,
  `default_overhead` until it reports one). Fewer redraws than the browser's 0.5 s timer would allow leave the
  process's time to training: one redraw costs it 40-100 ms, a step of a small model about 10 ms.
- **Admission.** At most `capacity` sessions train at once. Beyond that a session waits in a FIFO queue and is
  told its 1-based position ("server busy: your run starts when a slot frees, position k"). A freed slot goes to
  the head of the queue when it next asks; nobody overtakes a waiting session.
- **Release.** `release(sid)` when a session pauses, resets or finishes. A session that stops asking for
  `timeout` seconds (tab closed, page left) loses its slot or its place in the queue, so idle tabs cost nothing.

API (thread-safe; every method takes the lock once; `clock` is injectable for tests):

    adm = Admission(capacity=8, period=0.8, timeout=10.0)
    g = adm.request(sid)            # at the start of a tick -> Grant
    g.admitted, g.budget            # train for g.budget seconds (0.0 while waiting)
    g.position, g.message           # 1-based queue position and the sentence to show (None / "" when admitted)
    g.training, g.waiting           # sessions training now / waiting now
    adm.report(sid, tick_seconds)   # at the end of the tick: its whole server time (train + draw)
    adm.release(sid)                # paused, reset, finished: slot (or queue place) freed at once
    adm.state()                     # {"training": [...], "waiting": [...]} for a status line or a bench

`admission()` returns the process-wide instance (settings from RNNVIZ_MAX_TRAINING and RNNVIZ_TICK_PERIOD).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

BUSY = "Server busy: your run starts when a slot frees, position {k}"
# One process trains on about one core for its Python (one GIL) whatever the machine. Measured with
# bench/bench_load.py on 2 cores: 8 sessions in one process each got 1.20-1.33 redraws a second, within 1.2x of
# each other, health p99 under 0.25 s. More students: more processes (deploy/serve.py runs one per core behind
# HAProxy).
CAPACITY = 8
PERIOD = 0.8  # seconds: each training session redraws about once per period (at least one redraw a second)
TRAIN_FLOOR = 0.5  # a session trains at least half as long as its tick's overhead (drawing, waiting)


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

    def __init__(self, capacity: int = 8, period: float = PERIOD, min_budget: float = 0.02,
                 max_budget: float = 1.0, timeout: float = 10.0, default_overhead: float = 0.1,
                 smoothing: float = 0.3, train_floor: float = 0.0, clock: Callable[[], float] = time.monotonic):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if not 0 < min_budget <= max_budget:
            raise ValueError("need 0 < min_budget <= max_budget")
        if period <= 0 or timeout <= 0 or not 0 < smoothing <= 1:
            raise ValueError("period and timeout must be > 0, smoothing in (0, 1]")
        self.capacity = capacity
        self.period = period
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
        overhead = self._overhead.get(sid, self.default_overhead)
        return min(max(self.period - overhead, self.train_floor * overhead, self.min_budget), self.max_budget)

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
                                  period=float(os.environ.get("RNNVIZ_TICK_PERIOD", str(PERIOD))),
                                  train_floor=TRAIN_FLOOR)
        return _INSTANCE
