"""Runs compared side by side: a base configuration and its variants, trained in lockstep on the same data.

    exp = Experiment(Controls(cells=("rnn_tanh", "lstm", "gru")))                  # one run per cell
    exp = Experiment(Controls(cells=("rnn_tanh",), compare="clip", compare_values=("0", "1")))  # any setting
    exp.step(100)                         # 100 optimisation steps of every run, one each in turn
    exp.step(10_000, time_budget=0.25)    # as many lockstep rounds as fit in 0.25 s (the live loop)
    exp.apply(new_controls)               # "continued" (only lr / clip / optimiser changed) or "rebuilt"
    exp.runs                              # label -> Trainer (its tidy frames are what the pages and CSVs show)

The method, in five steps:
1. Variants. `Controls.variants()` maps each run's label to single-cell controls: one per cell, or one per
   value of the compared setting (clipping, weight scale, init, forget bias, truncation, attention, lr, ...).
   Everything else is shared, the seed included.
2. Same data. Each run's Trainer draws batches from its own generator seeded with that shared seed, so every
   run sees the same stream of batches, and its model is initialised from the same seed.
3. Lockstep. A round steps every live run once, in order, so a comparison is always at the same step. A run
   that diverges stops (its status and history are kept) and the others go on.
4. Time budget. Rounds go on while the budget lasts (at least one round); a round interrupted between runs
   is finished by `catch_up()` before anything is shown.
5. Retune. Settings that only change how the optimiser steps (`controls.LIVE_FIELDS`) are applied to the
   running models (`Trainer.retune`); anything else builds new models.

No Streamlit here: the dashboard keeps one Experiment per browser session, `python -m rnnviz` uses the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rnnviz.controls import Controls
from rnnviz.training import RETUNABLE, Trainer

Progress = Callable[[str, float, str], None]  # (stage, fraction of that stage done in [0, 1], detail)


def _specs(c: Controls) -> dict[str, tuple]:
    """label -> (ModelConfig, TrainConfig) of every run of these controls."""
    return {label: (v.model_config(v.cells[0]), v.train_config()) for label, v in c.variants().items()}


class Experiment:
    """The runs of one configuration, trained side by side. See the module docstring."""

    def __init__(self, controls: Controls, text: str | None = None):
        controls.validate()
        self.controls = controls
        self.text = text if controls.task == "char_lm" else None  # the char-LM training text (None = bundled)
        self.runs: dict[str, Trainer] = {label: Trainer(mc, tc, text=self.text)
                                         for label, (mc, tc) in _specs(controls).items()}

    # -- training --------------------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """The step every run is at (the furthest live run's step: catch_up() makes the others level)."""
        live = [t.steps for t in self.runs.values() if not t.diverged]
        return max(live, default=max((t.steps for t in self.runs.values()), default=0))

    @property
    def finished(self) -> bool:
        """True when every run has diverged: nothing is left to train."""
        return all(t.diverged for t in self.runs.values())

    def catch_up(self) -> None:
        """Restore lockstep if a round was cut off between two runs' steps."""
        live = [t for t in self.runs.values() if not t.diverged]
        target = max((t.steps for t in live), default=0)
        for t in live:
            if t.steps < target:
                t.step(target - t.steps)

    def step(self, n: int = 1, time_budget: float | None = None, progress: Progress | None = None,
             stop: Callable[[], bool] | None = None) -> int:
        """Up to n lockstep rounds (fewer when time_budget seconds run out, `stop()` says so between rounds, or
        every run has diverged). Returns the number of rounds done (at least one unless finished)."""
        self.catch_up()
        t0, done = time.perf_counter(), 0
        while done < n and not self.finished:
            if done > 0 and ((time_budget is not None and time.perf_counter() - t0 >= time_budget)
                             or (stop is not None and stop())):
                break
            for t in self.runs.values():
                if not t.diverged:
                    t.step(1)
            done += 1
            if progress is not None:
                progress("training", done / n, f"step {self.steps}/{n} · {time.perf_counter() - t0:.1f} s")
        return done

    def snapshot(self) -> None:
        """Make sure every live run has a snapshot at its current step (e.g. after Step, or at the end)."""
        for t in self.runs.values():
            if not t.diverged and (t.latest is None or t.latest.step != t.steps):
                t.take_snapshot()

    # -- changing settings -----------------------------------------------------------------------------------
    def apply(self, controls: Controls, text: str | None = None) -> str:
        """Take new controls. "continued": the same runs go on from their current weights with the new optimiser
        settings (only LIVE_FIELDS changed); "rebuilt": new models (anything that shapes a model or its data
        changed); "unchanged"."""
        controls.validate()
        text = text if controls.task == "char_lm" else None
        if controls == self.controls and text == self.text:
            return "unchanged"
        specs = _specs(controls)
        old = {label: (t.model_cfg, t.cfg) for label, t in self.runs.items()}
        same_runs = list(specs) == list(old) and text == self.text and all(
            specs[k][0] == old[k][0] and _fixed(specs[k][1]) == _fixed(old[k][1]) for k in specs)
        if not same_runs:
            self.__init__(controls, text)
            return "rebuilt"
        for label, t in self.runs.items():
            t.retune(specs[label][1])
        self.controls = controls
        return "continued"

    def config_dict(self) -> dict:
        return {label: t.config_dict() for label, t in self.runs.items()}

    def notes(self) -> dict[str, list[str]]:
        return {label: t.notes() for label, t in self.runs.items()}


def _fixed(tc) -> dict:
    """A TrainConfig without the settings Trainer.retune may change."""
    return {k: v for k, v in tc.to_dict().items() if k not in RETUNABLE}


__all__ = ["Experiment"]
