"""`python -m rnnviz`: train a preset or an exported configuration headless and write a self-contained report.

Only argument parsing, the output-folder check and the progress bar live here; the work is
rnnviz.report.build_report. A preset without --steps trains its own N and checks its claims.
Exit codes: 0 report written (also when a run diverged: the report says so), 2 bad options or configuration,
130 interrupted.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from rnnviz import __version__
from rnnviz.config import ConfigError, apply_overrides, check_controls, control_help, load_config
from rnnviz.controls import SEQ2SEQ, Controls
from rnnviz.presets import PRESETS, find_preset, preset_slug
from rnnviz.report import DEFAULT_STEPS, MAX_STEPS, REPORT_FIGURES, build_report

PROG = "rnnviz"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: usage, then the same one-line form as ours
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


def _steps(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {s!r}") from None
    if not 0 <= v <= MAX_STEPS:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_STEPS}], got {v}")
    return v


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {s!r}") from None


def _threads(s: str) -> int:
    v = _int(s)
    if not 1 <= v <= 64:
        raise argparse.ArgumentTypeError(f"must be in [1, 64], got {v}")
    return v


def _epilog() -> str:
    presets = "\n".join(f"  {preset_slug(p.name):45s} {p.name}" for p in PRESETS)
    keys = "\n".join(f"  {k:15s} {rng:55s} default {d}" for k, rng, d in control_help())
    figs = "\n".join(f"  {k:30s} {v}" for k, v in REPORT_FIGURES.items())
    return f"""\
presets (--preset takes the name, the slug or a unique start of the slug):
{presets}

settings (--set KEY=VALUE, and the keys of a --config file):
{keys}

output (in --out):
  report.html     one self-contained file (plotly.js embedded once, opens offline): training curves, gradient
                  flow, gates, hidden states, attention (seq2seq), phase diagram (--phase), configuration
  history.csv, grad_flow.csv, gate_stats.csv, layer_grads.csv, decay.csv, attention.csv (seq2seq),
  phase.csv (--phase), accuracy_vs_length.csv (--length-sweep), config.json (loads back with --config)

figure ids in report.html (<run> is the run label as a slug, e.g. rnn-tanh, lstm, gru-no-attention):
{figs}

examples:
  python -m rnnviz --preset truncated-bptt --steps 300 --out report
  python -m rnnviz --config rnnviz-config.json --set hidden_size=64 --seed 3 --phase
  python -m rnnviz --preset attention --length-sweep --out attention-report

exit status: 0 report written (also when a run diverged; the report says where), 2 bad options or
configuration (nothing is trained), 130 interrupted."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m rnnviz",
        description="Train small RNN / LSTM / GRU models headless, exactly as the rnnviz dashboard does, and\n"
                    "write one self-contained HTML report with the dashboard's figures plus the data as CSV.",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME",
                     help="start from a preset (see below and --list-presets); default: the dashboard's defaults")
    src.add_argument("--config", metavar="FILE", type=Path,
                     help="start from a JSON configuration: the dashboard's config.json download (its \"controls\" "
                          "are read), a report's config.json, or a bare object of settings")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                   help="change one setting (repeatable; applied after --preset/--config), e.g. --set hidden_size=16 "
                        "--set cells=lstm,gru; an unknown key or a bad value is an error")
    p.add_argument("--seed", type=_int, metavar="N", help="the seed of model init and data order (= --set seed=N)")
    p.add_argument("--steps", type=_steps, default=None, metavar="N",
                   help=f"training steps of every run, in lockstep (default: a preset's own N, which its claims "
                        f"need, else {DEFAULT_STEPS}; 0 = at initialisation)")
    p.add_argument("--snapshot-every", type=_int, metavar="N",
                   help="trace the probe batch every N steps (= --set snapshot_every=N)")
    p.add_argument("--phase", action="store_true",
                   help="add a phase diagram (weight scale x sequence length at initialisation, small grid)")
    p.add_argument("--length-sweep", action="store_true",
                   help="seq2seq tasks: add accuracy vs length with and without attention (trains 10 small models)")
    p.add_argument("--text", metavar="FILE", type=Path,
                   help="char_lm task: train on this UTF-8 text file instead of the bundled Shakespeare")
    p.add_argument("--out", metavar="DIR", type=Path, default=Path("rnnviz-report"),
                   help="output folder, created if needed; its report files are overwritten (default rnnviz-report)")
    p.add_argument("--title", metavar="TEXT", help="the report's title (default: rnnviz report — <preset>)")
    p.add_argument("--threads", type=_threads, default=1, metavar="N",
                   help="PyTorch intra-op threads (default 1: fastest and steadiest for these small models)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar; only the report's path is printed")
    p.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    p.add_argument("--version", action="version", version=f"rnnviz {__version__}")
    return p


class ProgressBar:
    """A one-line text bar on a terminal (redrawn in place); elsewhere (CI logs) a line every 10 %."""

    def __init__(self, stream=None, width: int = 28):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width, self.stage, self.shown, self.drawn, self.last = width, None, -1, 0, 0.0

    def __call__(self, stage: str, frac: float, detail: str = "") -> None:
        frac = min(max(float(frac), 0.0), 1.0)
        if stage != self.stage:
            self.finish()
            self.stage, self.shown = stage, -1
        if self.tty:
            now = time.monotonic()
            if now - self.last < 0.08 and frac < 1.0:
                return
            self.last = now
            n = round(frac * self.width)
            line = f"{stage:>13s} [{'#' * n}{'.' * (self.width - n)}] {frac:4.0%} {detail}"
            self.stream.write("\r" + line.ljust(self.drawn))
            self.drawn = len(line)
        else:
            decile = int(frac * 10)
            if decile <= self.shown or decile == 0:
                return
            self.shown = decile
            self.stream.write(f"{PROG}: {stage} {frac:.0%}" + (f" ({detail})" if detail else "") + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
        self.drawn = 0


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 2


def check_out_dir(out: Path) -> None:
    """Before any training: the output folder exists or can be made, and a file can be written in it
    (ConfigError with one line saying why not: under a file, a missing or unwritable parent, a name too long)."""
    where = f"--out {str(out)[:80]!r}" + ("…" if len(str(out)) > 80 else "")
    probe = out / ".rnnviz-write-test"
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{where} exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise ConfigError(f"{where}: a part of the path is a file, not a folder") from None
    except NotADirectoryError:
        raise ConfigError(f"{where}: a part of the path is a file, not a folder") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be written: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.list_presets:
        for pr in PRESETS:
            print(f"{preset_slug(pr.name)}\n    {pr.name} (page: {pr.page}, N = {pr.steps} steps)\n    {pr.blurb}")
            for cl in pr.claims:
                print(f"    claim: {cl.describe()}")
        return 0
    try:
        preset = None
        if args.preset is not None:
            preset = find_preset(args.preset)
            c = check_controls(preset.controls(), f"preset {preset.name!r}")
        elif args.config is not None:
            c = load_config(args.config)
        else:
            c = Controls()
        pairs = list(args.overrides)
        if args.seed is not None:
            pairs.append(f"seed={args.seed}")
        if args.snapshot_every is not None:
            pairs.append(f"snapshot_every={args.snapshot_every}")
        c = apply_overrides(c, pairs)
        text = None
        if args.text is not None:
            if c.task != "char_lm":
                raise ConfigError(f"--text is for the char_lm task, got task {c.task!r}")
            from rnnviz.tasks import load_text_bytes

            try:
                text = load_text_bytes(args.text.read_bytes())
            except OSError as exc:
                raise ConfigError(f"--text {str(args.text)!r} cannot be read: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise ConfigError(f"--text {str(args.text)!r}: {exc}") from None
        if args.length_sweep and c.task not in SEQ2SEQ:
            raise ConfigError(f"--length-sweep needs a seq2seq task (reverse, copy, sort), got task {c.task!r}")
        check_out_dir(args.out)
        steps = args.steps if args.steps is not None else (preset.steps if preset is not None else DEFAULT_STEPS)
    except ConfigError as exc:
        return _fail(str(exc))

    import torch

    torch.set_num_threads(args.threads)
    bar = None if args.quiet else ProgressBar()
    try:
        path = build_report(c, steps, args.out, bar, phase=args.phase, length_sweep=args.length_sweep,
                            text=text, title=args.title, preset=preset,
                            command="python -m rnnviz " + shlex.join(argv))
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        if bar is not None:
            bar.finish()
        sys.stderr.write(f"{PROG}: interrupted; the report was not written\n")
        return 130
    if bar is not None:
        bar.finish()
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
