"""Shared Streamlit pieces: session state, the sidebar controls, live training, status and downloads.

Thin by design: every number and figure comes from `rnnviz`. Each browser session has its own
`Controls` and `Trainer`s in st.session_state; nothing mutable is shared between sessions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import fields, replace

import streamlit as st

from rnnviz.controls import ATTENTION_LABELS, BOUNDS, CELL_LABELS, PRESETS_BY_NAME, Controls, check_budget
from rnnviz.report import runs_from_controls
from rnnviz.tasks import TASKS
from rnnviz.training import Trainer

TICK_SECONDS = 0.4  # the live fragment reruns this often while training
TRAIN_FRACTION = 0.6  # share of a tick spent training (the rest draws)
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
SEQ2SEQ = ("reverse", "copy", "sort")
HIDDEN_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 5e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
KEY = "ctl_"  # session-state prefix of the control widgets


# -- session ---------------------------------------------------------------------------------------------------
def init_session() -> None:
    """First run of a session: controls from the URL (a shared link reproduces the demo)."""
    ss = st.session_state
    if "controls" in ss:
        return
    c, problems = Controls.from_query(dict(st.query_params))
    ss.controls = c
    ss.url_problems = problems
    ss.running = False
    ss.replay = None  # a snapshot step to replay, or None for live
    ss.lm_text = None  # user text for the char LM (None = bundled)
    _write_widgets(c)


def setup(training_controls: bool = True) -> Controls:
    """Every page starts with this: the session, then the sidebar controls (drawn by the page, so a page run
    on its own, as AppTest's switch_page does, is complete). Pages that train nothing pass False: their
    sidebar says where the controls are instead of showing knobs that do nothing there."""
    _leave_v1_pages_mode()
    init_session()
    return sidebar() if training_controls else _sidebar_note()


def _sidebar_note() -> Controls:
    st.sidebar.container(key="sidebar_note").caption(
        "The training controls (Start, cells, weight scale, sequence length, …) are on the training pages: "
        "Gradient flow, Gates, Hidden states, Attention, Training & replay. This page has its own settings; "
        "your runs and settings are kept.")
    c = st.session_state.controls
    _mirror_url(c)  # the link still reproduces the demo
    return c


def _mirror_url(c: Controls) -> None:
    """Write the controls into the URL; show what a shared link had that could not be used (once)."""
    st.query_params.from_dict(c.to_query())
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
        st.session_state[KEY + f.name] = list(v) if isinstance(v, tuple) else v


def apply_preset(name: str) -> None:
    """Widget callback: set every control at once and open the preset's page."""
    preset = PRESETS_BY_NAME[name]
    load_config(preset.apply())
    st.session_state.goto = preset.page


def load_config(c: Controls) -> None:
    """Load a configuration (e.g. from the phase diagram) into the controls."""
    _write_widgets(c)
    st.session_state.controls = c
    st.session_state.running = False
    st.session_state.replay = None


def controls() -> Controls:
    return st.session_state.controls


# -- runs --------------------------------------------------------------------------------------------------
def runs() -> dict[str, Trainer]:
    """The session's trainers, rebuilt when a setting that needs new models changed."""
    ss = st.session_state
    c = ss.controls
    key = (c.run_key(), ss.lm_text)
    if ss.get("run_key") != key or "runs" not in ss:
        ss.runs = runs_from_controls(c, text=ss.lm_text)
        ss.run_key = key
        ss.replay = None
        ss.started_at = {label: None for label in ss.runs}
    return ss.runs


def reset_runs() -> None:
    st.session_state.pop("runs", None)
    st.session_state.pop("run_key", None)
    st.session_state.running = False
    st.session_state.replay = None


def _training_lock() -> threading.Lock:
    """One trainer must never be stepped by two script threads at once (a fragment tick and a button's rerun)."""
    return st.session_state.setdefault("train_lock", threading.Lock())


def _catch_up(rs: dict[str, Trainer]) -> None:
    """Restore lockstep if a tick was cut short between two runs' steps."""
    live = [t for t in rs.values() if not t.diverged]
    target = max((t.steps for t in live), default=0)
    for t in live:
        if t.steps < target:
            t.step(target - t.steps)


def train_tick(rs: dict[str, Trainer], budget: float) -> None:
    """One time-budgeted chunk of training. The runs advance in lockstep (one step each in turn), so a
    side-by-side comparison is always at the same training step."""
    lock = _training_lock()
    if not lock.acquire(blocking=False):
        return  # another script thread of this session is training right now
    try:
        _catch_up(rs)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < budget:
            live = [t for t in rs.values() if not t.diverged]
            if not live:
                break
            for t in live:
                t.step(1)
    finally:
        lock.release()
    if all(t.diverged for t in rs.values()):
        st.session_state.running = False


def step_once(rs: dict[str, Trainer]) -> None:
    with _training_lock():
        _catch_up(rs)
        for t in rs.values():
            t.step(1)
            if t.latest is None or t.latest.step != t.steps:
                t.take_snapshot()


def settle(rs: dict[str, Trainer]) -> None:
    """When not running: make sure the runs are level before they are shown."""
    lock = _training_lock()
    if lock.acquire(blocking=False):
        try:
            _catch_up(rs)
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
    _sync()


def _start() -> None:
    st.session_state.running = True
    st.session_state.replay = None


def _pause() -> None:
    st.session_state.running = False


def sidebar() -> Controls:
    """Draw the controls; returns the (validated) Controls and mirrors them in the URL."""
    ss = st.session_state
    _write_widgets(ss.controls)
    sb = st.sidebar
    if ss.running:
        sb.button("❚❚ Pause", on_click=_pause, width="stretch", key="btn_pause")
    else:
        sb.button("▶ Start", on_click=_start, width="stretch", type="primary", key="btn_start")
    b2, b3 = sb.columns(2)
    step_clicked = b2.button("Step", width="stretch", key="btn_step", disabled=ss.running,
                             help="One optimisation step, then a fresh snapshot")
    b3.button("Reset", on_click=reset_runs, width="stretch", key="btn_reset", help="New models, same settings")

    sb.selectbox("Task", list(TASKS), key=KEY + "task", on_change=_on_task_change,
                 format_func=lambda n: f"{n} — {TASKS[n].kind.replace('_', '-')}")
    task = TASKS[ss[KEY + "task"]]
    sb.caption(task.description)
    sb.multiselect("Cells (trained side by side)", list(CELL_LABELS), key=KEY + "cells", on_change=_sync,
                   format_func=CELL_LABELS.get)
    sb.slider("Recurrent weight scale", *BOUNDS["weight_scale"], step=0.05, key=KEY + "weight_scale", on_change=_sync,
              help="W_hh is multiplied by this. With orthogonal init its spectral radius equals it.")
    sb.selectbox("W_hh init", ["default", "orthogonal", "identity"], key=KEY + "init", on_change=_sync,
                 help="default: PyTorch's U(-1/√H, 1/√H); orthogonal: scale × Q; identity: IRNN (use with relu)")
    sb.number_input("Sequence length T", min_value=task.MIN_LEN, max_value=min(task.MAX_LEN, BOUNDS["seq_len"][1]),
                    step=10, key=KEY + "seq_len", on_change=_sync)
    sb.number_input("Truncation window k (0 = full BPTT)", min_value=0, max_value=BOUNDS["truncation"][1], step=5,
                    key=KEY + "truncation", on_change=_sync, help="The state is detached every k steps")
    with sb.expander("Model and optimiser", expanded=False):
        st.select_slider("Hidden size", HIDDEN_SIZES, key=KEY + "hidden_size", on_change=_sync)
        st.slider("Layers", *BOUNDS["num_layers"], key=KEY + "num_layers", on_change=_sync)
        st.checkbox("Bidirectional", key=KEY + "bidirectional", disabled=task.kind == "many_to_many",
                    help="Not for language models: they must not see the future", on_change=_sync)
        st.radio("Optimiser", ["adam", "sgd"], key=KEY + "optimizer", horizontal=True, on_change=_sync)
        st.select_slider("Learning rate", LRS, key=KEY + "lr", format_func=lambda v: f"{v:g}",
                         on_change=_sync)
        st.number_input("Gradient clipping threshold (0 = off)", min_value=0.0, max_value=BOUNDS["clip"][1],
                        step=0.5, key=KEY + "clip", on_change=_sync)
        st.slider("LSTM forget-gate bias", *BOUNDS["forget_bias"], step=0.5, key=KEY + "forget_bias", on_change=_sync)
        st.selectbox("Attention (seq2seq tasks)", list(ATTENTION_LABELS)[1:], key=KEY + "attention", on_change=_sync,
                     format_func=ATTENTION_LABELS.get)
        st.number_input("Batch size", *BOUNDS["batch_size"], key=KEY + "batch_size", on_change=_sync)
        st.number_input("Snapshot every N steps", *BOUNDS["snapshot_every"], key=KEY + "snapshot_every",
                        on_change=_sync)
        st.number_input("Seed", *BOUNDS["seed"], key=KEY + "seed", on_change=_sync)

    if ss.get("control_error"):
        sb.error(ss.control_error)
    c = ss.controls
    _mirror_url(c)
    if step_clicked:
        problem = check_budget(c)
        if problem is None:
            step_once(runs())
    return c


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

    Ticks are driven by the browser (st.fragment(run_every=...)): no open tab, no training.
    """
    c = controls()
    if not budget_guard(c):
        return
    running = st.session_state.running

    @st.fragment(run_every=TICK_SECONDS if running else None)
    def _live():
        rs = runs()
        if st.session_state.running:
            train_tick(rs, TICK_SECONDS * TRAIN_FRACTION)
        else:
            settle(rs)
        status(rs)
        render(rs)

    _live()


def status(rs: dict[str, Trainer]) -> None:
    ss = st.session_state
    parts = []
    for label, t in rs.items():
        rate = t.steps / t.train_seconds if t.train_seconds > 0 else 0.0
        if t.diverged:
            state = f":red[**{t.message}**]"
        elif ss.running:
            state = "running"
        else:
            state = "paused" if t.steps else "ready — press Start or Step"
        parts.append(f"**{label}**: step {t.steps} · {rate:.0f} steps/s · {state}")
    replay = snapshot_step()
    if replay is not None:
        parts.append(f"**Replaying** the snapshot at step ≤ {replay} (Training & replay page: back to live)")
    st.markdown("  \n".join(parts))


def chart(fig, key: str) -> None:
    st.plotly_chart(fig, width="stretch", key=key, config=PLOTLY_CONFIG)


def downloads(frames: dict, key: str, static: bool = False) -> None:
    """CSV of each frame plus the configuration as JSON (not rebuilt on every live tick: pause first).
    static: the frames do not change while training runs (e.g. the phase diagram), so they are always offered."""
    if st.session_state.get("running") and not static:
        st.caption("Pause training to download this page's data (CSV) and the configuration (JSON).")
        return
    cols = st.columns(len(frames) + 1)
    for col, (name, df) in zip(cols, frames.items(), strict=False):
        # deferred: the CSV is written when the button is clicked, not on every rerun (the frame is this run's);
        # on_click="ignore": a click must not rerun the page, which would retire the file before it is fetched
        col.download_button(f"⬇ {name}.csv", lambda df=df: df.to_csv(index=False).encode(), file_name=f"{name}.csv",
                            mime="text/csv", key=f"dl_{key}_{name}", width="stretch", on_click="ignore")
    rs = st.session_state.get("runs", {})
    cfg = {"controls": {f.name: getattr(controls(), f.name) for f in fields(Controls)},
           "runs": {label: t.config_dict() for label, t in rs.items()},
           "notes": {label: t.notes() for label, t in rs.items()}}
    cols[-1].download_button("⬇ config.json", lambda: json.dumps(cfg, indent=2, default=list).encode(),
                             file_name="rnnviz-config.json", mime="application/json", key=f"dl_{key}_cfg",
                             width="stretch", on_click="ignore")
    notes = [n for run_notes in cfg["notes"].values() for n in run_notes]
    if notes:
        st.caption("Note: " + "; ".join(sorted(set(notes))))

