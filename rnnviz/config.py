"""Configurations as text: `Controls` from JSON files, `--set KEY=VALUE` pairs and back, strictly checked.

    c = load_config("rnnviz-config.json")            # the dashboard's export, or a bare dict of Controls fields
    c = apply_overrides(c, ["hidden_size=16"])       # strict: unknown keys and bad values raise ConfigError
    check_controls(c)                                # Controls.validate + the cost budget, as ConfigError
    reproduce_command(c, steps=300)                  # 'python -m rnnviz --steps 300 --set hidden_size=16 ...'

The URL (`Controls.to_query` / `from_query`) is lenient: a bad value is skipped with a warning. Files and command
lines are strict: a typo is an error that names the key (with the closest valid one), never a silent default.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import fields, replace
from pathlib import Path

from rnnviz.controls import (
    ATTENTION_LABELS,
    BOUNDS,
    CELL_LABELS,
    COMPARABLE,
    Controls,
    check_budget,
    format_value,
    parse_text,
)

# The sidebar's labels, for the configuration table and --help.
CONTROL_LABELS = {
    "task": "Task", "cells": "Cells (trained side by side)", "seq_len": "Sequence length T",
    "weight_scale": "Recurrent weight scale", "init": "W_hh init", "truncation": "Truncation window k (0 = full BPTT)",
    "hidden_size": "Hidden size", "num_layers": "Layers", "bidirectional": "Bidirectional",
    "optimizer": "Optimiser", "lr": "Learning rate", "clip": "Gradient clipping threshold (0 = off)",
    "seed": "Seed", "batch_size": "Batch size", "forget_bias": "LSTM forget-gate bias",
    "attention": "Attention (seq2seq tasks)", "snapshot_every": "Snapshot every N steps",
    "dropout": "Dropout between layers", "compare": "Compare (the setting the runs differ in)",
    "compare_values": "Compared values (one run each)", "recall": "Copy memory: symbols to recall",
    "symbols": "Copy memory: alphabet size", "eos": "Seq2seq: targets end with <eos>",
}
CHOICES = {
    "task": None,  # filled from rnnviz.tasks.TASKS in control_help()
    "cells": tuple(CELL_LABELS), "init": ("default", "orthogonal", "identity"), "optimizer": ("adam", "sgd"),
    "attention": tuple(ATTENTION_LABELS), "bidirectional": ("true", "false"), "eos": ("true", "false"),
    "compare": tuple(COMPARABLE),
}


class ConfigError(ValueError):
    """A configuration that cannot run: the message says what and where (one line)."""


def _field_types() -> dict[str, type]:
    default = Controls()
    return {f.name: type(getattr(default, f.name)) for f in fields(Controls)}


def _unknown_key(key: str, source: str) -> ConfigError:
    names = list(_field_types())
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; valid keys: {', '.join(names)}"
    return ConfigError(f"{source}: unknown setting {key!r}{hint}")


def parse_value(name: str, raw: str, source: str = "--set") -> object:
    """A Controls field from its text form (as in the URL, Controls.to_query), strictly: ConfigError on an
    unknown field or a value of the wrong type. Ranges are checked later by Controls.validate."""
    kinds = _field_types()
    if name not in kinds:
        raise _unknown_key(name, source)
    try:
        return parse_text(kinds[name], raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: {name} {exc}") from None


def _json_value(name: str, v: object, source: str) -> object:
    """A Controls field from a JSON value: the JSON type must fit the field (a list or a comma-separated
    string for the tuple fields)."""
    kind = _field_types()[name]
    if kind is tuple:
        if isinstance(v, str):
            return parse_value(name, v, source)
        if isinstance(v, list) and all(isinstance(e, (str, int, float)) and not isinstance(e, bool) for e in v):
            return tuple(e if isinstance(e, str) else format_value(e) for e in v)
        raise ConfigError(f"{source}: {name} must be a list of names or values, got {v!r}")
    if kind is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{source}: {name} must be true or false, got {v!r}")
        return v
    if kind is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{source}: {name} must be an integer, got {v!r}")
        return v
    if kind is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{source}: {name} must be a finite number, got {v!r}")
        return float(v)
    if not isinstance(v, str):
        raise ConfigError(f"{source}: {name} must be a string, got {v!r}")
    return v


def check_controls(c: Controls, source: str = "settings") -> Controls:
    """Controls.validate (bounds, types, no repeated cell) and the cost budget; ConfigError naming the problem."""
    try:
        c.validate()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    problem = check_budget(c)
    if problem:
        raise ConfigError(f"{source}: over the cost budget: {problem}")
    return c


def controls_from_dict(d: dict, source: str = "config") -> Controls:
    """Controls from the dashboard's exported JSON ({"controls": {...}, ...}: only "controls" is read) or from
    a bare dict of Controls fields. Missing fields keep the defaults; unknown keys and bad values raise."""
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {type(d).__name__}")
    if "controls" in d:
        d = d["controls"]
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: \"controls\" must be a JSON object, got {type(d).__name__}")
    kinds = _field_types()
    for k in d:
        if k not in kinds:
            raise _unknown_key(k, source)
    values = {k: _json_value(k, v, source) for k, v in d.items()}
    return check_controls(replace(Controls(), **values), source)


def load_config(path: str | Path) -> Controls:
    """Controls from a JSON file (see controls_from_dict); ConfigError for a missing, unreadable or invalid file."""
    p = Path(path)
    source = f"config file {str(path)!r}"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{source} is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{source} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return controls_from_dict(data, source)


def apply_overrides(c: Controls, pairs: list[str], source: str = "--set") -> Controls:
    """Apply "key=value" strings (parse_value) in order, then check_controls the result."""
    values = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source} expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = parse_value(key.strip(), raw, source)
    return check_controls(replace(c, **values), source) if values else c


def control_help() -> list[tuple[str, str, str]]:
    """(field, range or choices, default) of every Controls field, for --help."""
    from rnnviz.tasks import TASKS

    default, rows = Controls(), []
    for f in fields(Controls):
        v = getattr(default, f.name)
        if f.name in BOUNDS:
            lo, hi = BOUNDS[f.name]
            rng = f"{lo:g}..{hi:g}"
        elif f.name == "task":
            rng = "|".join(TASKS)
        elif f.name == "cells":
            rng = "comma-separated: " + ",".join(CELL_LABELS)
        elif f.name == "compare_values":
            rng = "comma-separated values of the compared setting"
        else:
            rng = "|".join(CHOICES.get(f.name) or ())
        rows.append((f.name, rng, ",".join(v) if isinstance(v, tuple) else format_value(v)))
    return rows


def reproduce_command(c: Controls, steps: int, extra: list[str] | None = None) -> str:
    """A `python -m rnnviz` command line that rebuilds these runs: every non-default field as --set."""
    parts = ["python", "-m", "rnnviz", "--steps", str(steps)]
    for k, v in c.to_query().items():
        parts += ["--set", f"{k}={v}"]
    parts += extra or []
    return " ".join(_shell_quote(p) for p in parts)


def _shell_quote(s: str) -> str:
    return s if re.fullmatch(r"[A-Za-z0-9_.,=/:+-]+", s) else "'" + s.replace("'", "'\"'\"'") + "'"


__all__ = ["CHOICES", "CONTROL_LABELS", "ConfigError", "apply_overrides", "check_controls", "control_help",
           "controls_from_dict", "load_config", "parse_value", "reproduce_command"]
