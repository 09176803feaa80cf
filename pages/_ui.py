"""Shared Streamlit pieces: session state, the sidebar controls, live training, status and downloads.

Thin by design: every number and figure comes from `rnnviz`. Each browser session has its own
`Controls` and `Trainer`s in st.session_state; nothing mutable is shared between sessions.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import fields, replace

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pages._admission import admission
from rnnviz import figures
from rnnviz.controls import (
    ATTENTION_LABELS,
    BOUNDS,
    CELL_LABELS,
    COMPARABLE,
    MAX_RUNS,
    Controls,
    check_budget,
)
from rnnviz.experiment import Experiment
from rnnviz.presets import PRESETS_BY_NAME
from rnnviz.tasks import TASKS
from rnnviz.training import Trainer

TICK_SECONDS = 0.5  # the browser asks for the next live tick this often (a slower tick is followed at once)
FULL_RUN_BUDGET = 0.2  # seconds of training in a full script run (a tick of the fragment trains its grant)
TICK_LOG = os.environ.get("RNNVIZ_TICK_LOG")  # a file: one line per drawn training tick (bench_presets_live reads it)
LIVE_EVERY = 2.0  # while training, a page's secondary charts are rebuilt at most this often (seconds)
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
SEQ2SEQ = ("reverse", "copy", "sort")
HIDDEN_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 5e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
KEY = "ctl_"  # session-state prefix of the control widgets
COMPARE_DEFAULTS = {"clip": ("0", "1"), "weight_scale": ("0.9", "1.1"), "init": ("default", "orthogonal"),
                    "forget_bias": ("0", "1"), "truncation": ("0", "10"), "attention": ("bahdanau", "none"),
                    "lr": ("0.001", "0.01"), "optimizer": ("adam", "sgd"), "hidden_size": ("16", "64")}
NEW_MODELS = "Changing this builds new models (training starts again at step 0)."
SAME_MODELS = "Changing this while training goes on with the same weights (no reset)."


LOST_SESSION = ("**Your session was lost** (the server process that ran it stopped, or it expired while the tab "
                "was away). This page reconnected to a live server and a new session: your settings came back "
                "from the link, the models start again at step 0. Press ▶ Start.")


# -- session ---------------------------------------------------------------------------------------------------
def _reconnected_after_loss() -> bool:
    """A new session whose tab says it had another one: Streamlit's client sends its previous session id as the
    third Sec-WebSocket-Protocol entry when it reconnects; a server that no longer knows it (another replica, a
    restart, the session expired) makes a new session instead. A fresh page load sends none."""
    try:
        entries = [e.strip() for e in (st.context.headers.get("Sec-WebSocket-Protocol") or "").split(",")]
    except Exception:  # noqa: BLE001 - no request headers (AppTest, bare mode)
        return False
    return len(entries) >= 3 and bool(entries[2]) and entries[2] != _session_id()


def init_session() -> None:
    """First run of a session: controls from the URL (a shared link reproduces the demo)."""
    ss = st.session_state
    if "controls" in ss:
        return
    query = dict(st.query_params)
    ss.presentation = query.pop("present", "") in ("1", "true")  # a view setting, not a control
    c, problems = Controls.from_query(query)
    ss.controls = c
    ss.url_problems = problems
    if _reconnected_after_loss():
        ss.url_problems = [LOST_SESSION, *problems]
    ss.running = False
    ss.replay = None  # a snapshot step to replay, or None for live
    ss.lm_text = None  # user text for the char LM (None = bundled)
    _write_widgets(c)


def setup(training_controls: bool = True, home: bool = False) -> Controls:
    """Every page starts with this: the session, then the sidebar controls (drawn by the page, so a page run
    on its own, as AppTest's switch_page does, is complete). Pages that train nothing pass False: their
    sidebar says where the controls are instead of showing knobs that do nothing there. Home shows no runs, so
    its Start and Step open the page the runs are shown on (the loaded preset's, else Gradient flow)."""
    _leave_v1_pages_mode()
    init_session()
    st.session_state.pop("transport_slots", None)  # slots are only good for the run whose sidebar made them
    return sidebar(home) if training_controls else _sidebar_note()


def _sidebar_note() -> Controls:
    st.sidebar.container(key="sidebar_note").caption(
        "The training controls (Start, cells, weight scale, sequence length, …) are on the training pages: "
        "Gradient flow, Gates, Hidden states, Attention, Training & replay. This page has its own settings; "
        "your runs and settings are kept.")
    c = st.session_state.controls
    _mirror_url(c)  # the link still reproduces the demo
    return c


def _mirror_url(c: Controls) -> None:
    """Write the controls (and presentation mode) into the URL; show what a shared link had that could not be
    used (once)."""
    st.query_params.from_dict({**c.to_query(), **({"present": "1"} if presenting() else {})})
    for p in st.session_state.pop("url_problems", []):
        st.warning(p)


def _leave_v1_pages_mode() -> None:
    """A deep link (e.g. /attention) as the very first request to a fresh server runs that page directly:
    Streamlit assumes the legacy `pages/` folder mode until some run of app.py has called st.navigation.
    Switch that mode off and rerun, so app.py (layout, navigation, session set-up) runs first."""
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    # AppTest resets the flag before every run and drives pages itself (switch_page): leave it alone there
    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def _write_widgets(c: Controls) -> None:
    for f in fields(c):
        v = getattr(c, f.name)
        if f.name == "compare_values":  # a text box: "0, 1"
            v = ", ".join(v)
        st.session_state[KEY + f.name] = list(v) if isinstance(v, tuple) else v


def apply_preset(name: str) -> None:
    """Widget callback: set every control at once and open the preset's page."""
    preset = PRESETS_BY_NAME[name]
    load_config(preset.controls())
    st.session_state.preset = name  # its claims are shown (and checked live) on its page
    st.session_state.goto = preset.page


def load_config(c: Controls) -> None:
    """Load a configuration (e.g. from the phase diagram) into the controls."""
    _write_widgets(c)
    st.session_state.controls = c
    st.session_state.running = False
    st.session_state.replay = None
    st.session_state.pop("preset", None)


def controls() -> Controls:
    return st.session_state.controls


# -- runs ------------------------------------------------------------------------------------------------
def experiment() -> Experiment:
    """The session's experiment: the same runs go on when only optimiser settings changed (Experiment.apply),
    new ones are built when anything that shapes a model or its data changed."""
    ss = st.session_state
    c = ss.controls
    exp = ss.get("experiment")
    if exp is None:
        ss.experiment = exp = Experiment(c, text=ss.lm_text)
        ss.replay = None
    elif exp.apply(c, text=ss.lm_text) == "rebuilt":
        ss.replay = None
    return exp


def runs() -> dict[str, Trainer]:
    return experiment().runs


def reset_runs() -> None:
    st.session_state.pop("experiment", None)
    st.session_state.running = False
    st.session_state.replay = None


def _training_lock() -> threading.Lock:
    """One trainer must never be stepped by two script threads at once (a fragment tick and a button's rerun)."""
    return st.session_state.setdefault("train_lock", threading.Lock())


def _click_waiting() -> bool:
    """True when the user did something (a click, a changed widget) while a tick trains: the tick then stops
    training at once, so Pause and every control answer within one training step. That is a rerun of the whole page
    waiting, or a rerun of the live area that is not the browser's tick timer (a button the fragment drew, such as
    Pause: Streamlit lets it wait for the running tick instead of interrupting it)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_requests import (
            ScriptRequestType,
            _fragment_run_should_not_preempt_script,
        )

        req = get_script_run_ctx().script_requests
        if req is None or req._state != ScriptRequestType.RERUN:
            return False
        data = req._rerun_data
        if not _fragment_run_should_not_preempt_script(data.fragment_id_queue, data.is_fragment_scoped_rerun):
            return True
        # a timer tick and a click coalesced into one request keep the click's trigger
        return not data.is_auto_rerun or any(w.WhichOneof("value") == "trigger_value" and w.trigger_value
                                             for w in (data.widget_states.widgets if data.widget_states else ()))
    except (AttributeError, ImportError):  # another Streamlit version: train the whole budget
        return False


def active_preset(exp: Experiment):
    """The loaded preset, if its settings are unchanged (its claims are about exactly these runs), else None."""
    name = st.session_state.get("preset")
    preset = PRESETS_BY_NAME.get(name) if name else None
    return preset if preset is not None and preset.controls() == exp.controls else None


def _session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def _fragment_tick() -> bool:
    """True in a run of the live fragment alone (a tick), False in a run of the whole page."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def answer_waiting_click() -> None:
    """In a training tick, end the tick here when a click waits (see _click_waiting): st.rerun(scope="fragment")
    joins the click's rerun, which starts at once; what this tick already drew stays shown."""
    if st.session_state.get("running") and _fragment_tick() and _click_waiting():
        st.rerun(scope="fragment")


def train_tick(exp: Experiment, budget: float, rounds: int = 1_000_000) -> None:
    """One time-budgeted chunk of lockstep training (Experiment.step, at most `rounds`), unless another script
    thread of this session is training right now; cut short when a click is waiting."""
    lock = _training_lock()
    if not lock.acquire(blocking=False):
        return
    try:
        exp.step(rounds, time_budget=budget, stop=_click_waiting)
    finally:
        lock.release()


def step_once(exp: Experiment) -> None:
    with _training_lock():
        exp.step(1)
        exp.snapshot()


def settle(exp: Experiment) -> None:
    """When not running: make sure the runs are level before they are shown."""
    lock = _training_lock()
    if lock.acquire(blocking=False):
        try:
            exp.catch_up()
        finally:
            lock.release()


def snapshot_step() -> int | None:
    return st.session_state.get("replay")


def current_snapshot(t: Trainer):
    """The snapshot a page shows: the replayed one, else the latest; None (with a hint) before the first."""
    step = snapshot_step()
    snap = t.snapshot_at(step) if step is not None else t.latest
    if snap is None:
        st.info("No snapshot yet: press Step or Start.")
    return snap


# -- sidebar -----------------------------------------------------------------------------------------------
def _sync() -> None:
    """on_change of every control: copy the widgets into the session's Controls (validated).

    The Controls, not the widget keys, are the source of truth: widget state does not survive a page
    switch, so each run writes the Controls back into the widgets before drawing them."""
    ss = st.session_state
    values = {f.name: ss[KEY + f.name] for f in fields(Controls) if KEY + f.name in ss}
    if "cells" in values:
        values["cells"] = tuple(values["cells"])
    if "compare_values" in values:
        values["compare_values"] = tuple(v.strip() for v in str(values["compare_values"]).split(",") if v.strip())
    if values.get("compare", ss.controls.compare) == "cells":
        values["compare_values"] = ()
    elif not values.get("compare_values"):  # a new comparison starts from two sensible values
        values["compare_values"] = COMPARE_DEFAULTS[values["compare"]]
    try:
        c = replace(ss.controls, **values)
        c.validate()
    except (ValueError, TypeError) as exc:
        ss.control_error = f"Setting ignored: {exc}"
        return
    ss.controls = c
    ss.control_error = None


def _on_task_change() -> None:
    task = TASKS[st.session_state[KEY + "task"]]
    st.session_state[KEY + "seq_len"] = min(max(st.session_state[KEY + "seq_len"], task.MIN_LEN), task.MAX_LEN)
    if task.kind == "many_to_many":
        st.session_state[KEY + "bidirectional"] = False
    if "eos" not in task.OPTIONS:  # only the seq2seq tasks have an <eos> token
        st.session_state[KEY + "eos"] = False
    _sync()


def _start(home: bool = False) -> None:
    st.session_state.running = True
    st.session_state.replay = None
    if home:
        _open_runs_page()


def _open_runs_page() -> None:
    name = st.session_state.get("preset")
    st.session_state.goto = PRESETS_BY_NAME[name].page if name else "gradient_flow"


def _toggle_presentation() -> None:
    st.session_state.presentation = st.session_state.present_toggle


def _pause() -> None:
    st.session_state.running = False
    st.session_state.paused_now = True  # read by the live fragment's run this click starts (see live)


def _with(options: list, value) -> list:
    """A widget's options plus the current value, so a valid value from a link or a file is shown as it is
    instead of being snapped to a listed one on the next change."""
    return options if value in options else sorted([*options, value])


def sidebar(home: bool = False) -> Controls:
    """Draw the controls; returns the (validated) Controls and mirrors them in the URL."""
    ss = st.session_state
    _write_widgets(ss.controls)
    sb = st.sidebar
    start_slot = sb.empty()
    b2, b3 = sb.columns(2)
    ss.transport_slots = (start_slot, b2.empty())  # Start/Pause and Step: drawn by the live area (see live)
    b3.button("Reset", on_click=reset_runs, width="stretch", key="btn_reset")
    if not presenting():  # not as tooltips: Streamlit draws them above the button, over ▶ Start
        sb.caption("Step: one optimisation step, then a fresh snapshot. Reset: new models, same settings.")
    ss.present_toggle = presenting()  # widget state does not survive a page without this sidebar
    sb.toggle("Presentation mode", key="present_toggle", on_change=_toggle_presentation,
              help="For a projector: larger chart text, no long explanations. Kept in the URL (present=1).")

    sb.selectbox("Task", list(TASKS), key=KEY + "task", on_change=_on_task_change, help=NEW_MODELS,
                 format_func=lambda n: f"{n} — {TASKS[n].kind.replace('_', '-')}")
    task = TASKS[ss[KEY + "task"]]
    sb.caption(task.description)
    if task.name == "copy_memory":
        r, k = sb.columns(2)
        r.number_input("Symbols to recall", *BOUNDS["recall"], key=KEY + "recall", on_change=_sync, help=NEW_MODELS)
        k.number_input("Alphabet size", *BOUNDS["symbols"], key=KEY + "symbols", on_change=_sync, help=NEW_MODELS)
    if "eos" in task.OPTIONS:
        sb.checkbox("End targets with <eos>", key=KEY + "eos", on_change=_sync,
                    help="Targets end with an <eos> token; greedy decoding stops when the model emits it. "
                    "In the URL: eos=1. " + NEW_MODELS)
    sb.selectbox("Compare runs that differ in", list(COMPARABLE), key=KEY + "compare", on_change=_sync,
                 format_func=COMPARABLE.get, help="Every run shares the seed and the data stream; only this differs. "
                 + NEW_MODELS)
    comparing_cells = ss[KEY + "compare"] == "cells"
    sb.multiselect("Cells (trained side by side)" if comparing_cells else "Cell (the first is used)",
                   list(CELL_LABELS), key=KEY + "cells", on_change=_sync, format_func=CELL_LABELS.get,
                   max_selections=MAX_RUNS, help=NEW_MODELS)
    if not comparing_cells:
        sb.text_input(f"Values of {COMPARABLE[ss[KEY + 'compare']]} (comma-separated, one run each)",
                      key=KEY + "compare_values", on_change=_sync,
                      help=f"2 to {MAX_RUNS} values, e.g. 0, 1 for clipping off and on. " + NEW_MODELS)
    sb.slider("Recurrent weight scale", *BOUNDS["weight_scale"], step=0.05, key=KEY + "weight_scale", on_change=_sync,
              help="W_hh is multiplied by this. With orthogonal init its spectral radius equals it. " + NEW_MODELS)
    sb.selectbox("W_hh init", ["default", "orthogonal", "identity"], key=KEY + "init", on_change=_sync,
                 help="default: PyTorch's U(-1/√H, 1/√H); orthogonal: scale × Q; identity: IRNN (use with relu). "
                 + NEW_MODELS)
    sb.number_input("Sequence length T", min_value=task.MIN_LEN, max_value=min(task.MAX_LEN, BOUNDS["seq_len"][1]),
                    step=10, key=KEY + "seq_len", on_change=_sync, help=NEW_MODELS)
    sb.number_input("Truncation window k (0 = full BPTT)", min_value=0, max_value=BOUNDS["truncation"][1], step=5,
                    key=KEY + "truncation", on_change=_sync, help="The state is detached every k steps. " + NEW_MODELS)
    with sb.expander("Optimiser (changes keep the weights)", expanded=False):
        st.radio("Optimiser", ["adam", "sgd"], key=KEY + "optimizer", horizontal=True, on_change=_sync,
                 help=SAME_MODELS + " A new optimiser starts with fresh moments.")
        st.select_slider("Learning rate", _with(LRS, ss[KEY + "lr"]), key=KEY + "lr", format_func=lambda v: f"{v:g}",
                         on_change=_sync, help=SAME_MODELS)
        st.number_input("Gradient clipping threshold (0 = off)", min_value=0.0, max_value=BOUNDS["clip"][1],
                        step=0.5, key=KEY + "clip", on_change=_sync, help=SAME_MODELS)
        st.number_input("Snapshot every N steps", *BOUNDS["snapshot_every"], key=KEY + "snapshot_every",
                        on_change=_sync, help=SAME_MODELS)
    with sb.expander("Model (changes build new models)", expanded=False):
        st.select_slider("Hidden size", _with(HIDDEN_SIZES, ss[KEY + "hidden_size"]), key=KEY + "hidden_size",
                         on_change=_sync)
        st.slider("Layers", *BOUNDS["num_layers"], key=KEY + "num_layers", on_change=_sync)
        st.slider("Dropout between layers", *BOUNDS["dropout"], step=0.1, key=KEY + "dropout", on_change=_sync,
                  disabled=ss[KEY + "num_layers"] < 2,
                  help="nn.RNN/LSTM/GRU's dropout: applied to each layer's output except the last (needs ≥ 2 "
                       "layers), only while training.")
        st.checkbox("Bidirectional", key=KEY + "bidirectional", disabled=task.kind == "many_to_many",
                    help="Not for language models: they must not see the future", on_change=_sync)
        st.slider("LSTM forget-gate bias", *BOUNDS["forget_bias"], step=0.5, key=KEY + "forget_bias", on_change=_sync)
        st.selectbox("Attention (seq2seq tasks)", list(ATTENTION_LABELS), key=KEY + "attention", on_change=_sync,
                     format_func=ATTENTION_LABELS.get,
                     help="Comparing cells on a seq2seq task trains the first cell with this attention (Bahdanau if "
                          "none) and without, side by side.")
        st.number_input("Batch size", *BOUNDS["batch_size"], key=KEY + "batch_size", on_change=_sync)
        st.number_input("Seed", *BOUNDS["seed"], key=KEY + "seed", on_change=_sync)

    if ss.get("control_error"):
        sb.error(ss.control_error)
    c = ss.controls
    _mirror_url(c)
    if home:  # the runs (or why they cannot run) are shown on the page Start and Step open
        transport_outside_live(home=True)
    return c


def _transport(slots, home: bool = False) -> bool:
    """Draw Start (or Pause) and Step into the sidebar's slots; True when Step was pressed."""
    start_slot, step_slot = slots
    if st.session_state.running:
        start_slot.button("❚❚ Pause", on_click=_pause, width="stretch", key="btn_pause")
    else:
        start_slot.button("▶ Start", on_click=_start, args=(home,), width="stretch", type="primary",
                          key="btn_start", help="Opens the page the runs are shown on" if home else None)
    return step_slot.button("Step", width="stretch", key="btn_step", disabled=st.session_state.running)


def transport_outside_live(home: bool = False) -> None:
    """Draw Start/Pause and Step on a page without a live area (Home, a page that stops before its charts): a
    click reruns the whole page; Step steps the runs if their budget allows. Home shows no runs: its Step then
    opens the page they are shown on."""
    slots = st.session_state.pop("transport_slots", None)
    if slots is None or not _transport(slots, home):
        return
    if check_budget(controls()) is None:
        step_once(experiment())
    if home:
        _open_runs_page()
        st.rerun()


def stop_page() -> None:
    """End the page here (st.stop) with the sidebar complete: its Start and Step are drawn outside a live area."""
    transport_outside_live()
    st.stop()


def require_seq2seq(c: Controls) -> None:
    """Stop the page with a pointer when the task is not sequence-to-sequence (Attention, Decoding)."""
    if c.task not in SEQ2SEQ:
        st.info("This page needs a sequence-to-sequence task. Pick **reverse**, **copy** or **sort** in the "
                "sidebar, or load the *Attention vs the context-vector bottleneck* preset on the Home page.")
        stop_page()


def budget_guard(c: Controls) -> bool:
    """Show why a configuration is refused; True when it may run."""
    problem = check_budget(c)
    if problem:
        st.error(problem)
        st.session_state.running = False
        return False
    return True


# -- live area ---------------------------------------------------------------------------------------------
def live(render) -> None:
    """Run `render(runs)` in a fragment that, while running, trains a time-budgeted chunk each tick.

    Ticks are driven by the browser (st.fragment(run_every=...)): no open tab, no training. When every run has
    diverged the whole page reruns once, so Start comes back and the ticking stops.

    The sidebar's Start/Pause and Step are drawn by this fragment (into their slots there), so pressing one reruns
    only the live area: the sidebar and the page around it are not rebuilt or re-sent, and the browser shows the
    answer in about half the time of a whole-page run. Only a full run can start or stop the fragment's ticking:
    Start reruns the whole page at once; Pause is answered by the fragment (▶ Start back, the runs level) and the
    next tick, training nothing, reruns the whole page.
    """
    c = controls()
    if not budget_guard(c):
        transport_outside_live()
        _draw_intro()
        return
    running = st.session_state.running
    slots = st.session_state.pop("transport_slots", None)  # this full run's; a fragment rerun redraws into them

    @st.fragment(run_every=TICK_SECONDS if running else None)
    def _live():
        ss = st.session_state
        paused_now = ss.pop("paused_now", False) and _fragment_tick()  # Pause pressed: this run answers it
        stepped = slots is not None and _transport(slots)
        exp = experiment()
        if stepped:
            step_once(exp)
        if ss.running != running and not paused_now:  # the ticking must start or stop: only a full run can do it
            st.rerun()  # after Pause this is the next tick's, so the click itself is answered by this fragment
        sid, t0, trained = _session_id(), time.perf_counter(), (0, 0.0)
        if ss.running:
            grant = admission().request(sid)  # a slot and this tick's fair share, or a place in the queue
            if not grant.admitted:
                st.warning(f"**{grant.message}** ({grant.training} sessions are training on this server; "
                           "Pause to leave the queue).", icon=":material/hourglass_top:")
                status(exp, queued=True)
                return  # nothing trained or drawn while waiting: a queued tab costs a few ms per tick
            preset = active_preset(exp)
            to_n = preset.steps - exp.steps if preset is not None and exp.steps < preset.steps else None
            # a full run (Start, a changed control) trains briefly: the browser's tick timer fires during a full run
            # longer than a tick, and Streamlit's client then fails on the next deltas ("Bad delta path index")
            budget = grant.budget if _fragment_tick() else min(grant.budget, FULL_RUN_BUDGET)
            steps0, t_train = exp.steps, time.perf_counter()
            train_tick(exp, budget, to_n or 1_000_000)  # a click cuts it short
            trained = (exp.steps - steps0, time.perf_counter() - t_train)
            if exp.finished or (to_n is not None and exp.steps >= preset.steps):
                ss.running = False  # a preset pauses at its N, where its claims are checked (Start goes on)
                admission().release(sid)
                st.rerun()  # scope "app": the sidebar shows Start again and this fragment stops ticking
            answer_waiting_click()  # e.g. Pause: answered now instead of this tick drawing first
        else:
            admission().release(sid)
            settle(exp)
        status(exp)
        claims(exp)
        ss.charts_as_drawn = paused_now  # Pause's run resends the figures as they are; the full run after rebuilds
        try:
            render(exp.runs)
        finally:
            ss.charts_as_drawn = False
        if ss.running:
            tick = time.perf_counter() - t0
            admission().report(sid, tick)  # its server time: the overhead beyond training
            if TICK_LOG:
                _log_tick(sid, t0, tick, trained)

    _live()
    _draw_intro()


def _log_tick(sid: str, t0: float, tick: float, trained: tuple[int, float]) -> None:
    """Append `start  session  kind  steps  train_s  tick_s` to TICK_LOG: start on time.perf_counter's clock
    (CLOCK_MONOTONIC on Linux, shared by every process), kind "tick" for the fragment's timer, "full" otherwise."""
    kind = "tick" if _fragment_tick() else "full"
    with open(TICK_LOG, "a") as f:
        f.write(f"{t0:.4f}\t{sid[:8]}\t{kind}\t{trained[0]}\t{trained[1]:.4f}\t{tick:.4f}\n")


def status(exp: Experiment, queued: bool = False) -> None:
    ss = st.session_state
    parts = []
    for label, t in exp.runs.items():
        rate = t.steps / t.train_seconds if t.train_seconds > 0 else 0.0
        if t.diverged:
            state = f":red[**{t.message}**] (history kept)"
        elif ss.running:
            state = "waiting for a training slot" if queued else "running"
        else:
            state = "paused" if t.steps else "ready — press Start or Step"
        parts.append(f"**{label}**: step {t.steps} · {rate:.0f} steps/s · {state}")
    if exp.finished:
        parts.append("Every run has diverged: nothing is left to train. Lower the learning rate or the weight scale, "
                     "or turn clipping on, then Reset.")
    replay = snapshot_step()
    if replay is not None:
        parts.append(f"**Replaying** the snapshot at step ≤ {replay} (Training & replay page: back to live)")
    else:
        shown = {t.latest.step for t in exp.runs.values() if t.latest is not None}
        if shown and shown != {t.steps for t in exp.runs.values()}:
            every = exp.controls.snapshot_every
            parts.append(f":gray[Charts of h_t, gates and ‖∂L/∂h_t‖ show the snapshot at step {max(shown)} (one every "
                         f"{every} steps); loss curves are live."
                         + (f" While training, the charts below the first are redrawn every {LIVE_EVERY:g} s."
                            if ss.running else "") + "]")
    changes = sorted({n for t in exp.runs.values() for n in t.notes() if "(same weights)" in n})
    if changes:
        parts.append(":gray[" + "; ".join(changes[-3:]) + "]")
    st.markdown("  \n".join(parts))


def claims(exp: Experiment) -> None:
    """The loaded preset's claims, checked on these runs (the same check as tests/test_presets.py). Training
    pauses at the preset's N, where the test checks them; Start trains on and the check follows the runs."""
    name = st.session_state.get("preset")
    if name is None:
        return
    preset = active_preset(exp)
    if preset is None:
        st.caption(f"Preset “{name}” was changed: its claims are about its own settings, so they are not checked "
                   "here (load it again from Home).")
        return
    key = (id(exp), exp.steps)
    cached = st.session_state.get("claims_cache")
    if cached is None or cached[0] != key:
        cached = (key, preset.check(exp))
        st.session_state.claims_cache = cached
    results = cached[1]
    task = next(iter(exp.runs.values())).task
    done = sum(r.holds for r in results if r.checked)
    head = (f"The preset's claims: {done} of {len(results)} hold at step {exp.steps}"
            if exp.steps >= preset.steps else
            f"The preset's claims, checked after N = {preset.steps} steps (now step {exp.steps})")
    if exp.steps == preset.steps:
        head += f" — paused at N = {preset.steps}, where the test checks them (Start trains on)"
    with st.expander(head, expanded=exp.steps == preset.steps and not presenting()):
        lines = []
        for r in results:
            # plain symbols, not emoji: a projector's machine may have no emoji font (Chromium drew empty boxes)
            mark = (":green[**✓ holds**]" if r.holds else ":red[**✗ fails**]") if r.checked else ":gray[… at N]"
            lines.append(f"{mark} {r.claim.describe(task)} — now **{r.value:.3g}**")
        st.markdown("  \n".join(lines))
        if preset.step0:
            st.caption(preset.step0)


def presenting() -> bool:
    """Presentation mode (sidebar toggle, `present=1` in the URL): larger chart text, no long explanations."""
    return bool(st.session_state.get("presentation"))


def intro(text: str) -> None:
    """A page's explanation: drawn under the live charts (live() does it), so on a projector the status and the
    main chart come first; hidden in presentation mode."""
    st.session_state.page_intro = text


def _draw_intro() -> None:
    text = st.session_state.pop("page_intro", None)
    if text and not presenting():
        st.markdown("#### About this page")
        st.markdown(text)


def explain(text: str) -> None:
    """How to read a chart, under its heading (hidden in presentation mode)."""
    if not presenting():
        st.caption(text)


def explain_md(text: str) -> None:
    """A page's opening explanation where it is read first (pages that train nothing have no live area to put it
    under): full-size markdown, hidden in presentation mode like the other explanations."""
    if not presenting():
        st.markdown(text)


def details(label: str):
    """An expander for the maths; in presentation mode an empty container (nothing shown)."""
    return st.container(height=1, border=False) if presenting() else st.expander(label, expanded=False)


def chart(fig, key: str, every: float | None = None, deps: tuple = ()) -> None:
    """Draw a plotly figure; `fig` may be a zero-argument function that builds it.

    every: while training, rebuild this chart at most every `every` seconds (a page's secondary charts: only its
    main chart follows every tick). In between, the figure built last is sent again unchanged: no rebuild on the
    server, and no redraw in the browser, whose plotly element skips a figure it already shows (measured: an
    unchanged figure costs the browser ~5 ms, a changed one ~40 ms). `deps` are the chart's other inputs
    (a selected layer, example, ...): a change rebuilds at once. Paused, every chart is rebuilt on every run, except
    in the run that answers Pause (it resends what is drawn, so ▶ Start is back sooner; the full run after it
    rebuilds)."""
    ss = st.session_state
    answer_waiting_click()  # before the figure is built: a click waiting behind this tick's drawing goes first
    cache = ss.setdefault("chart_cache", {})
    state = (id(ss.get("experiment")), snapshot_step(), presenting(), deps)
    now, hit = time.perf_counter(), cache.get(key)
    if hit is not None and hit[1] == state and (
            ss.get("charts_as_drawn") or (every is not None and ss.get("running") and now - hit[0] < every)):
        fig = hit[2]
    else:
        fig = fig() if callable(fig) else fig
        if presenting():
            figures.presentation(fig)
        cache[key] = (now, state, fig)
    st.plotly_chart(fig, width="stretch", key=key, config=PLOTLY_CONFIG)


def table(df, precision: int = 4) -> None:
    """A small table, numbers to `precision` decimals and "–" where a value does not apply (NaN): Streamlit's
    grid prints a missing value as a grey "None" whatever a pandas Styler says, so the text is made here."""
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = [f"{v:.{precision}f}" if pd.notna(v) else "–" for v in shown[col]]
    st.dataframe(shown, hide_index=True, width="stretch")


def downloads(frames: dict, key: str, static: bool = False) -> None:
    """CSV of each frame (a DataFrame, or a function that builds one) plus the configuration as JSON (not rebuilt
    on every live tick: pause first).
    static: the frames do not change while training runs (e.g. the phase diagram), so they are always offered."""
    if st.session_state.get("running") and not static:
        st.caption("Pause training to download this page's data (CSV) and the configuration (JSON).")
        return
    cols = st.columns(len(frames) + 1)
    for col, (name, df) in zip(cols, frames.items(), strict=False):
        # deferred: the CSV is written when the button is clicked, not on every rerun (the frame is this run's);
        # on_click="ignore": a click must not rerun the page, which would retire the file before it is fetched
        # a frame may be a function that builds it: then it is built only when clicked
        col.download_button(f"⬇ {name}.csv", lambda df=df: (df() if callable(df) else df).to_csv(index=False).encode(),
                            file_name=f"{name}.csv",
                            mime="text/csv", key=f"dl_{key}_{name}", width="stretch", on_click="ignore")
    exp = st.session_state.get("experiment")
    rs = exp.runs if exp is not None else {}
    cfg = {"controls": {f.name: getattr(controls(), f.name) for f in fields(Controls)},
           "runs": {label: t.config_dict() for label, t in rs.items()},
           "notes": {label: t.notes() for label, t in rs.items()}}
    cols[-1].download_button("⬇ config.json", lambda: json.dumps(cfg, indent=2, default=list).encode(),
                             file_name="rnnviz-config.json", mime="application/json", key=f"dl_{key}_cfg",
                             width="stretch", on_click="ignore")
    notes = [n for run_notes in cfg["notes"].values() for n in run_notes]
    if notes:
        st.caption("Note: " + "; ".join(sorted(set(notes))))

