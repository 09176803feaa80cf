"""Every preset proves its point: trained headless for its own N steps, every claim it shows must hold.

These claims are the product's truth. When one fails, change the experiment (rnnviz/presets.py), never the
threshold or the wording.
"""

import math

import pytest
import torch

from rnnviz.claims import QUANTITIES, Claim
from rnnviz.experiment import Experiment
from rnnviz.presets import PRESETS, find_preset


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the dashboard and the CLI train
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_preset_claims_hold_after_its_steps(preset):
    exp = Experiment(preset.controls())
    named = {c.run for c in preset.claims} | {c.versus for c in preset.claims if c.versus}
    assert named <= set(exp.runs), "a claim names a run the preset does not train"
    step0 = [c.check(exp) for c in preset.claims if c.at_step == 0]
    exp.step(preset.steps)
    exp.snapshot()
    assert exp.steps == preset.steps or any(t.diverged for t in exp.runs.values())
    results = [r for r in preset.check(exp) if r.claim.at_step != 0] + step0
    task = next(iter(exp.runs.values())).task
    report = "\n".join(f"{'ok ' if r.holds else 'NO '} {r.claim.describe(task)}: measured {r.value:.4g}"
                       for r in results)
    print(f"\n{preset.name} after {preset.steps} steps:\n{report}")
    assert all(r.checked for r in results)
    assert all(r.holds for r in results), report


def test_every_preset_states_claims_a_test_checks():
    for p in PRESETS:
        assert p.claims, p.name
        assert 0 < p.steps <= 5000, p.name
        assert all(c.quantity in QUANTITIES for c in p.claims)
        assert find_preset(p.name) is p


def test_a_claim_is_not_checked_before_n_and_fails_when_false():
    p = find_preset("truncated")
    exp = Experiment(p.controls())
    exp.step(2)
    early = p.check(exp)
    assert not any(r.checked for r in early if r.claim.at_step != 0)
    # the same quantity with the opposite comparison must fail: a claim is not a tautology
    for r in early:
        if math.isfinite(r.value):
            flipped = Claim(r.claim.run, r.claim.quantity, ">=" if r.claim.op == "<=" else "<=",
                            r.value + (1e-9 if r.claim.op == "<=" else -1e-9), r.claim.at_step)
            assert not flipped.check(exp).holds
