"""`python -m rnnviz`: the headless report (rnnviz.report) and its command line (rnnviz.__main__)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import pandas as pd
import plotly.offline
import pytest

from rnnviz import __main__ as cli
from rnnviz import config, presets, report
from rnnviz.controls import Controls
from rnnviz.experiment import Experiment
from rnnviz.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
TINY = ["--set", "hidden_size=8", "--steps", "20"]

COLUMNS = {
    "history": ["run", "step", "loss", "metric", "grad_norm", "grad_norm_clipped", "baseline", "metric_name"],
    "grad_flow": ["run", "step", "layer", "direction", "t", "grad_norm"],
    "gate_stats": ["run", "step", "layer", "direction", "gate", "mean", "frac_low", "frac_high"],
    "layer_grads": ["run", "step", "group", "grad_norm"],
}


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnviz", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def figure_ids(page: str) -> list[str]:
    return re.findall(r'<div id="(fig-[^"]+)" class="plotly-graph-div"', page)


def dashboard_export(c: Controls) -> dict:
    """What the dashboard's "config.json" button downloads (pages/_ui.py downloads): tuples as lists."""
    cfg = {"controls": {f.name: getattr(c, f.name) for f in fields(Controls)},
           "runs": {"LSTM": {"model": {}, "train": {}}}, "notes": {"LSTM": []}}
    return json.loads(json.dumps(cfg, default=list))


# ----------------------------------------------------------------------------------------------------------
# End to end, as a user runs it


def test_preset_report_end_to_end(tmp_path):
    out = tmp_path / "report"
    # the preset, set back to comparing two cells at one window (the preset itself compares windows)
    fixed = ["--set", "compare=cells", "--set", "compare_values=", "--set", "cells=rnn_tanh,lstm",
             "--set", "seq_len=60", "--set", "truncation=10"]
    r = run_cli("--preset", "Truncated BPTT", *fixed, *TINY, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out / "report.html")
    assert "training 100%" in r.stderr  # not a terminal: progress as lines
    page = (out / "report.html").read_text(encoding="utf-8")

    ids = figure_ids(page)
    expected = ["fig-loss", "fig-metric", "fig-layer-grads", "fig-grad-norm", "fig-grad-flow-heatmap-rnn-tanh",
                "fig-grad-flow-heatmap-lstm", "fig-global-grad-norm", "fig-gates-lstm", "fig-gate-saturation-lstm",
                "fig-pca-rnn-tanh", "fig-units-rnn-tanh", "fig-pca-lstm", "fig-units-lstm"]
    assert ids == expected  # in page order, each once; the RNN has no gates, adding is not seq2seq
    assert page.count("Plotly.newPlot(") == len(ids)
    # self-contained: plotly.js embedded exactly once, nothing fetched from the network
    assert page.count(plotly.offline.get_plotlyjs()) == 1
    assert page.count("* plotly.js v") == 1
    assert not re.search(r"<script[^>]+src=", page) and 'src="http' not in page
    # the pages' headings and "how to read it" sentences, the preset, the configuration, the status
    for text in ["Truncated BPTT", "Gradient flow through time", "Read it right to left",
                 "How gradient flow changes while the model learns", "Gates at work", "Hidden-state trajectories",
                 "Configuration", "truncation", "All runs trained 20 steps without diverging",
                 "settings were changed, so its claims",
                 "python -m rnnviz --steps 20 --set cells=rnn_tanh,lstm"]:
        assert text in page, text

    runs = ["RNN (tanh)", "LSTM"]
    for name, cols in COLUMNS.items():
        df = pd.read_csv(out / f"{name}.csv")
        assert list(df.columns) == cols, name
        assert len(df) > 0, name
    hist = pd.read_csv(out / "history.csv")
    assert hist.groupby("run").size().to_dict() == {r: 20 for r in runs}
    assert (hist.groupby("run")["step"].apply(list) == [list(range(1, 21))] * 2).all()
    assert hist["loss"].notna().all() and (hist["metric_name"] == "mse").all()
    gf = pd.read_csv(out / "grad_flow.csv")
    assert set(gf["run"]) == set(runs) and sorted(gf["step"].unique()) == [0, 10, 20]
    assert gf["t"].max() == 59 and (gf["grad_norm"] == 0).any()  # T = 60; truncation cuts are exact zeros
    assert set(pd.read_csv(out / "gate_stats.csv")["run"]) == {"LSTM"}
    assert not (out / "attention.csv").exists()

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["controls"]["hidden_size"] == 8 and cfg["controls"]["truncation"] == 10
    assert cfg["report"]["steps"] == 20 and cfg["report"]["preset"] == "Truncated BPTT"
    assert set(cfg["runs"]) == set(runs)
    # the report's own config.json loads back to the same controls
    assert config.load_config(out / "config.json") == replace(
        presets.find_preset("truncated-bptt").controls(), hidden_size=8, compare="cells", compare_values=(),
        cells=("rnn_tanh", "lstm"), seq_len=60, truncation=10)


def test_bad_config_exits_2_from_the_command_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"controls": {"hidden_size": 8,}}')
    r = run_cli("--config", str(bad), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.startswith("rnnviz: error: ") and "not valid JSON" in r.stderr and str(bad) in r.stderr
    assert r.stderr.count("\n") == 1 and r.stdout == ""
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------------
# Configurations


def test_config_exported_by_the_dashboard(tmp_path, capsys):
    c = Controls(task="parity", cells=("lstm", "gru"), seq_len=12, hidden_size=8, lr=1e-2, seed=3)
    path = tmp_path / "rnnviz-config.json"
    path.write_text(json.dumps(dashboard_export(c), indent=2))
    assert config.load_config(path) == c
    out = tmp_path / "r"
    assert cli.main(["--config", str(path), "--steps", "5", "--seed", "4", "--snapshot-every", "5", "--quiet",
                     "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""  # --quiet: no progress
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["controls"] == {**asdict(replace(c, seed=4, snapshot_every=5)), "cells": ["lstm", "gru"],
                               "compare_values": []}
    assert set(figure_ids((out / "report.html").read_text())) >= {"fig-gates-lstm", "fig-gates-gru", "fig-pca-gru"}


def test_config_json_and_reproduce_line_retrain_the_same_numbers(tmp_path, capsys):
    assert cli.main(["--preset", "exploding", "--set", "hidden_size=4", "--steps", "8", "-q",
                     "--out", str(tmp_path / "a")]) == 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["report"]["reproduce"].startswith("python -m rnnviz --steps 8 --set cells=rnn_relu ")
    assert "--set compare=clip --set compare_values=0,1" in cfg["report"]["reproduce"]
    args = cfg["report"]["reproduce"].split()[3:]
    assert cli.main([*args, "-q", "--out", str(tmp_path / "b")]) == 0
    assert cli.main(["--config", str(tmp_path / "a" / "config.json"), "--steps", "8", "-q",
                     "--out", str(tmp_path / "c")]) == 0
    first = (tmp_path / "a" / "history.csv").read_text()
    assert first == (tmp_path / "b" / "history.csv").read_text() == (tmp_path / "c" / "history.csv").read_text()


def test_bare_dict_and_overrides():
    c = config.controls_from_dict({"task": "adding", "cells": "lstm", "seq_len": 30})
    assert c == Controls(cells=("lstm",), seq_len=30)
    c = config.apply_overrides(c, ["cells=rnn_tanh,gru", "bidirectional=true", "lr=0.01", "clip=0", "init=orthogonal"])
    assert (c.cells, c.bidirectional, c.lr, c.clip, c.init) == (("rnn_tanh", "gru"), True, 0.01, 0.0, "orthogonal")
    # the reproduce line's --set pairs parse back to the same controls
    pairs = re.findall(r"--set (\S+)", config.reproduce_command(c, 10))
    assert config.apply_overrides(Controls(), pairs) == c


@pytest.mark.parametrize("slug", [presets.preset_slug(p.name) for p in PRESETS])
def test_every_preset_is_found_by_name_slug_and_prefix(slug):
    p = next(p for p in PRESETS if presets.preset_slug(p.name) == slug)
    assert presets.find_preset(p.name) is p and presets.find_preset(p.name.upper()) is p
    assert presets.find_preset(slug) is p and presets.find_preset(slug.split("-")[0]) is p
    assert config.check_controls(p.apply()) == p.apply()  # every preset is within the budget


BAD = [  # (config file text or None, extra arguments, words the message must contain)
    ('{"controls": {"hidden_size": 8,}}', [], ["not valid JSON", "line 1"]),
    ("", [], ["not valid JSON"]),
    ('[1, 2]', [], ["expected a JSON object", "list"]),
    ('{"controls": {"hiden_size": 8}}', [], ["unknown setting 'hiden_size'", "did you mean 'hidden_size'"]),
    ('{"colour": "red"}', [], ["unknown setting 'colour'", "valid keys", "hidden_size"]),
    ('{"controls": {"hidden_size": 999}}', [], ["hidden_size must be an int in [1, 256], got 999"]),
    ('{"controls": {"hidden_size": 8.5}}', [], ["hidden_size must be an integer, got 8.5"]),
    ('{"controls": {"cells": ["lstm", "transformer"]}}', [], ["cells must be a non-empty subset"]),
    ('{"controls": {"task": "translate"}}', [], ["task must be one of"]),
    ('{"controls": {"bidirectional": "yes"}}', [], ["bidirectional must be true or false"]),
    ('{"controls": {"seq_len": 1000, "hidden_size": 256, "batch_size": 128}}', [], ["over the cost budget"]),
    (None, ["--preset", "nonexistent"], ["unknown preset 'nonexistent'", "truncated-bptt"]),
    (None, ["--preset", "lstm-gates", "--set", "seq_len=1000", "--set", "hidden_size=256", "--set", "batch_size=128"],
     ["over the cost budget", "Lower the"]),
    (None, ["--set", "hidden_size"], ["expects KEY=VALUE"]),
    (None, ["--set", "hidden=8"], ["unknown setting 'hidden'"]),
    (None, ["--set", "lr=fast"], ["lr must be a number, got 'fast'"]),
    (None, ["--set", "lr=nan"], ["lr must be a finite number"]),
    (None, ["--set", "task=reverse", "--set", "seq_len=500"], ["seq_len must be in [2, 200] for task 'reverse'"]),
    (None, ["--set", "cells=lstm,lstm"], ["without repeats"]),
    (None, ["--seed", "99999"], ["seed must be an int in [0, 10000]"]),
    (None, ["--snapshot-every", "0"], ["snapshot_every must be an int in [1, 100]"]),
    (None, ["--length-sweep"], ["--length-sweep needs a seq2seq task"]),
    (None, ["--text", "missing.txt"], ["--text is for the char_lm task"]),
    (None, ["--preset", "character", "--text", "/nonexistent/t.txt"], ["cannot be read"]),
]


@pytest.mark.parametrize(("text", "args", "words"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_configuration_is_rejected_with_a_clear_message(tmp_path, capsys, text, args, words):
    argv = list(args)
    if text is not None:
        (tmp_path / "c.json").write_text(text)
        argv += ["--config", str(tmp_path / "c.json")]
    out = tmp_path / "out"
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnviz: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    assert not out.exists()  # checked before any work


def test_missing_or_unreadable_config_file(tmp_path, capsys):
    assert cli.main(["--config", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["--config", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "latin1.json").write_bytes(b'{"task": "caf\xe9"}')
    assert cli.main(["--config", str(tmp_path / "latin1.json")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli.main(["--out", str(tmp_path / "file"), "--steps", "1"]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--steps", "-1"], ["--steps", "ten"], ["--preset", "x", "--config", "y"],
                                  ["--threads", "0"], ["--bogus"]])
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "rnnviz: error: " in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    options = [s for a in cli.build_parser()._actions for s in a.option_strings]
    assert len(options) >= 15
    for opt in options:
        assert opt in text, opt
    for f in fields(Controls):  # every --set key, every preset, every figure id
        assert f"\n  {f.name} " in text, f.name
    for p in PRESETS:
        assert presets.preset_slug(p.name) in text
    for fid in report.REPORT_FIGURES:
        assert fid in text
    assert "exit status" in text


def test_list_presets(capsys):
    assert cli.main(["--list-presets"]) == 0
    out = capsys.readouterr().out
    assert all(presets.preset_slug(p.name) in out and p.name in out for p in PRESETS)


# ----------------------------------------------------------------------------------------------------------
# The other report sections, called directly


def test_seq2seq_report_has_attention_and_both_runs(tmp_path):
    c = Controls(task="reverse", cells=("gru", "lstm"), seq_len=6, hidden_size=8, attention="luong_dot")
    path = report.build_report(c, 6, tmp_path, phase=True)
    page = path.read_text()
    ids = figure_ids(page)
    assert "fig-attention" in ids and "fig-phase" in ids
    assert "fig-grad-flow-heatmap-gru-luong-attention" in ids and "fig-grad-flow-heatmap-gru-no-attention" in ids
    assert "first cell only" in page  # two cells given, seq2seq trains the first
    att = pd.read_csv(tmp_path / "attention.csv")
    assert list(att.columns) == ["run", "step", "example", "dec", "enc", "weight"]
    assert set(att["run"]) == {"GRU + Luong attention"} and (att["step"] == 6).all()
    sums = att.groupby(["example", "dec"])["weight"].sum()
    assert len(sums) == 8 * 6 and ((sums - 1).abs() < 1e-4).all()  # every row of every probe sequence sums to 1
    phase = pd.read_csv(tmp_path / "phase.csv")
    assert set(phase["cell"]) == {"gru", "lstm"} and phase["log_ratio"].notna().all()
    assert json.loads((tmp_path / "config.json").read_text())["report"]["phase"]["hidden_size"] == 8
    report.build_report(replace(c, task="adding", seq_len=5), 1, tmp_path)  # same folder: no stale files
    assert not (tmp_path / "attention.csv").exists() and not (tmp_path / "phase.csv").exists()


def test_char_lm_report_colours_text_and_samples(tmp_path):
    c = Controls(task="char_lm", cells=("lstm",), seq_len=16, hidden_size=8, batch_size=4)
    text = "to be or not to be, that is the question. " * 20
    stages = []
    page = report.build_report(c, 3, tmp_path, progress=lambda s, f, d: stages.append((s, f)), text=text,
                               title="My <notes>").read_text()
    assert "<title>My &lt;notes&gt;</title>" in page
    assert "coloured by unit" in page and "A sample from the character model" in page
    assert stages[0][0] == "training" and stages[-1] == ("writing", 1.0)
    assert [f for s, f in stages if s == "training"][-1] == 1.0


def test_divergence_is_reported_not_raised(tmp_path):
    c = Controls(cells=("rnn_relu",), init="identity", weight_scale=3.0, seq_len=200, lr=1.0, clip=0.0,
                 optimizer="sgd", hidden_size=8)
    page = report.build_report(c, 30, tmp_path).read_text()
    status = json.loads((tmp_path / "config.json").read_text())["status"]["RNN (relu)"]
    assert status["status"] == "diverged" and status["message"].startswith("diverged at step")
    assert status["message"] in page and "up to the divergence" in page


def test_build_report_checks_before_work(tmp_path):
    with pytest.raises(config.ConfigError, match="steps must be"):
        report.build_report(Controls(), -1, tmp_path / "a")
    with pytest.raises(config.ConfigError, match="hidden_size"):
        report.build_report(Controls(hidden_size=0), 1, tmp_path / "b")
    with pytest.raises(config.ConfigError, match="training text"):
        report.build_report(Controls(task="char_lm", cells=("lstm",), seq_len=64), 1, tmp_path / "c", text="ab")
    assert not any(tmp_path.iterdir())


def test_runs_as_the_dashboard_trains_them():
    def specs(c):
        exp = Experiment(replace(c, hidden_size=4, seq_len=5))
        return {label: (t.model_cfg, t.cfg) for label, t in exp.runs.items()}

    s = specs(Controls(task="sort", cells=("gru", "lstm"), attention="luong_dot"))
    assert list(s) == ["GRU + Luong attention", "GRU, no attention"]  # seq2seq: first cell, with and without
    assert [mc.attention for mc, _ in s.values()] == ["luong_dot", "none"]
    s = specs(Controls(task="sort", attention="none"))
    assert [mc.attention for mc, _ in s.values()] == ["bahdanau", "none"]
    s = specs(Controls(cells=("rnn_relu", "lstm"), forget_bias=2.0))
    assert list(s) == ["RNN (relu)", "LSTM"]
    assert [mc.forget_bias for mc, _ in s.values()] == [None, 2.0]
    s = specs(Controls(cells=("rnn_tanh", "lstm"), compare="clip", compare_values=("0", "2.5")))
    assert list(s) == ["RNN (tanh), no clipping", "RNN (tanh), clip at 2.5"]  # another setting: the first cell
    assert [tc.clip for _, tc in s.values()] == [None, 2.5] and {mc.cell for mc, _ in s.values()} == {"rnn_tanh"}


def test_progress_bar_lines_and_terminal():
    log = io.StringIO()
    bar = cli.ProgressBar(log)
    for i in range(1, 101):
        bar("training", i / 100, f"step {i}/100")
    bar("writing", 1.0, "x")
    lines = log.getvalue().splitlines()
    assert lines[0] == "rnnviz: training 10% (step 10/100)" and len(lines) == 11
    assert lines[-1] == "rnnviz: writing 100% (x)"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = cli.ProgressBar(tty)
    bar("training", 0.5, "half")
    bar("training", 1.0, "done")
    bar.finish()
    assert "\r" in tty.getvalue() and "100%" in tty.getvalue() and tty.getvalue().endswith("\n")


# ----------------------------------------------------------------------------------------------------------
# The example


def test_notebook_example_runs(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "notebook_trace.py"), str(tmp_path)], cwd=tmp_path,
                       env={**ENV, "PYTHONPATH": ""}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "hidden      (2, 1, 32, 60, 32)" in r.stdout and "grad_norm   (2, 1, 60)" in r.stdout
    for name in ["grad_norm_vs_time", "gate_heatmaps", "grad_flow_heatmap", "pca"]:
        page = (tmp_path / f"{name}.html").read_text()
        assert "plotly-graph-div" in page and 'src="plotly.min.js"' in page
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    first = (ROOT / "examples" / "notebook_trace.py").read_text().splitlines()[0]
    assert first.startswith("# %%")


@pytest.mark.parametrize("case", ["under_a_file", "name_too_long", "unwritable"])
def test_bad_out_folder_exits_2_before_training(tmp_path, case):
    if case == "under_a_file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "report"
    elif case == "name_too_long":
        out = tmp_path / ("r" * 300)
    else:
        out = Path("/proc/rnnviz-report")  # not writable, even for root
    r = run_cli("--set", "hidden_size=4", "--steps", "1000", "--out", str(out), timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnviz: error: --out"), r.stderr
    assert "Traceback" not in r.stderr and "training" not in r.stderr  # refused before any training
