"""pages/_admission.py: fair share and FIFO admission, driven by a fake clock (deterministic, no sleeping)."""

from __future__ import annotations

import threading

import pytest

from pages._admission import BUSY, Admission, admission


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def make(**kw) -> tuple[Admission, Clock]:
    clock = Clock()
    opts = dict(capacity=3, period=0.5, min_budget=0.02, max_budget=1.0, timeout=5.0,
                default_overhead=0.1, smoothing=1.0)
    opts.update(kw)
    return Admission(clock=clock, **opts), clock


def test_one_session_trains_the_period_minus_its_overhead():
    adm, _ = make()
    g = adm.request("a")
    assert g.admitted and g.position is None and g.message == ""
    assert g.budget == pytest.approx(0.5 - 0.1)  # default overhead until it reports
    adm.report("a", 0.4 + 0.05)  # trained 0.4, drew for 0.05
    assert adm.request("a").budget == pytest.approx(0.5 - 0.05)


def test_every_session_aims_at_the_same_tick_length():
    adm, _ = make(capacity=8)
    for sid, extra in zip("abcd", (0.02, 0.04, 0.06, 0.08), strict=True):
        g = adm.request(sid)
        adm.report(sid, g.budget + extra)
    budgets = {sid: adm.request(sid).budget for sid in "abcd"}
    assert budgets == pytest.approx({"a": 0.48, "b": 0.46, "c": 0.44, "d": 0.42})
    # training plus its own overhead: one period for every session, whatever its drawing costs
    assert {sid: budgets[sid] + extra for sid, extra in zip("abcd", (0.02, 0.04, 0.06, 0.08), strict=True)} == \
        pytest.approx(dict.fromkeys("abcd", 0.5))


def test_budget_does_not_depend_on_how_many_sessions_train_and_is_clipped():
    adm, _ = make(capacity=10, default_overhead=0.0, min_budget=0.03, max_budget=0.3)
    assert [adm.request(f"s{i}").budget for i in range(10)] == [0.3] * 10  # 0.5, capped
    heavy, _ = make(capacity=10, default_overhead=0.49, min_budget=0.03)
    assert heavy.request(0).budget == pytest.approx(0.03)  # 0.5 - 0.49 = 0.01: the floor keeps it stepping


def test_a_session_trains_at_least_its_floor_share_of_its_own_overhead():
    adm, _ = make(capacity=8, min_budget=0.02, train_floor=0.5)
    for sid, extra in zip("abcd", (0.1, 0.4, 0.6, 0.8), strict=True):
        g = adm.request(sid)
        adm.report(sid, g.budget + extra)
    # overheads stretched by waiting for the GIL: past 1/3 of the period the floor (half the overhead) rules
    assert {sid: adm.request(sid).budget for sid in "abcd"} == pytest.approx(
        {"a": 0.4, "b": 0.2, "c": 0.3, "d": 0.4})


def test_overhead_is_an_exponential_mean():
    adm, _ = make(smoothing=0.5, default_overhead=0.1)
    g = adm.request("a")
    adm.report("a", g.budget + 0.2)  # first report sets it: 0.2
    g = adm.request("a")
    assert g.budget == pytest.approx(0.5 - 0.2)
    adm.report("a", g.budget + 0.0)  # 0.2 + 0.5 * (0 - 0.2) = 0.1
    assert adm.request("a").budget == pytest.approx(0.5 - 0.1)
    adm.report("a", 0.0)  # a tick shorter than its grant (cut short by a click) counts as no overhead
    assert adm.request("a").budget == pytest.approx(0.5 - 0.05)


def test_beyond_capacity_sessions_wait_in_fifo_order_with_positions():
    adm, clock = make(capacity=2)
    assert adm.request("a").admitted and adm.request("b").admitted
    gc, gd, ge = adm.request("c"), adm.request("d"), adm.request("e")
    assert [g.position for g in (gc, gd, ge)] == [1, 2, 3]
    assert not gc.admitted and gc.budget == 0.0 and gc.training == 2 and ge.waiting == 3
    assert gd.message == BUSY.format(k=2) == "Server busy: your run starts when a slot frees, position 2"
    # asking again keeps one's place
    assert adm.request("d").position == 2
    adm.release("a")
    # the freed slot is the head's: d and e asking first do not get it
    assert adm.request("e").position == 3 and adm.request("d").position == 2
    gc = adm.request("c")
    assert gc.admitted and gc.training == 2 and gc.waiting == 2
    assert adm.request("d").position == 1 and adm.request("e").position == 2
    assert adm.state() == {"training": ["b", "c"], "waiting": ["d", "e"]}


def test_silent_sessions_lose_their_slot_and_their_place_after_the_timeout():
    adm, clock = make(capacity=1, timeout=5.0)
    assert adm.request("a").admitted
    assert adm.request("b").position == 1 and adm.request("c").position == 2
    clock.advance(4.0)
    assert adm.request("c").position == 2  # a is still within its timeout; b too
    clock.advance(1.5)  # a and b silent for 5.5 s; c asked 1.5 s ago
    g = adm.request("c")
    assert g.admitted and g.training == 1 and g.waiting == 0
    assert adm.state() == {"training": ["c"], "waiting": []}
    # b comes back: it queues again at the tail like a new session
    assert adm.request("b").position == 1


def test_report_keeps_a_long_tick_alive():
    adm, clock = make(capacity=1, timeout=5.0)
    adm.request("a")
    clock.advance(4.9)
    adm.report("a", 4.9)  # a very long tick ends: the session was not silent
    clock.advance(4.9)
    assert adm.request("b").position == 1  # a still holds the slot (seen 4.9 s ago)


def test_release_of_a_waiting_session_and_unknown_ids_is_harmless():
    adm, _ = make(capacity=1)
    adm.request("a")
    adm.request("b")
    adm.request("c")
    adm.release("b")
    assert adm.request("c").position == 1
    adm.release("nobody")
    adm.report("nobody", 1.0)
    assert adm.state() == {"training": ["a"], "waiting": ["c"]}


def test_bad_settings_are_refused():
    for kw in ({"capacity": 0}, {"min_budget": 0.0}, {"min_budget": 2.0, "max_budget": 1.0},
               {"period": 0.0}, {"timeout": 0.0}, {"smoothing": 0.0}):
        with pytest.raises(ValueError):
            make(**kw)


def test_threads_never_admit_more_than_capacity():
    """Many threads asking at once: the number of holders never exceeds capacity, and every waiting session
    has a distinct position 1..k."""
    adm = Admission(capacity=3, timeout=1e9)
    barrier = threading.Barrier(24)
    grants: dict[int, object] = {}

    def ask(i: int) -> None:
        barrier.wait()
        grants[i] = adm.request(i)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admitted = [i for i, g in grants.items() if g.admitted]
    assert len(admitted) == 3
    positions = sorted(g.position for g in grants.values() if not g.admitted)
    assert positions == list(range(1, 22))
    # the freed slots go to the queue in position order, whoever asks first
    by_position = sorted((g.position, i) for i, g in grants.items() if not g.admitted)
    for i in admitted:
        adm.release(i)
    assert not adm.request(by_position[3][1]).admitted
    assert [adm.request(i).admitted for _, i in by_position[:4]] == [True, True, True, False]


def test_process_wide_instance_reads_the_environment(monkeypatch):
    import pages._admission as mod

    monkeypatch.setattr(mod, "_INSTANCE", None)
    monkeypatch.setenv("RNNVIZ_MAX_TRAINING", "5")
    monkeypatch.setenv("RNNVIZ_TICK_PERIOD", "0.7")
    a = admission()
    assert a is admission() and a.capacity == 5 and a.period == 0.7
