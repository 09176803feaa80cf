"""Full-page screenshots of every page of the dashboard, for a human to look at.

    python bench/screenshots.py [OUT_DIR] [--steps 3] [--train 5] [--train-attention 10]

Starts `streamlit run app.py` on a free local port, drives Debian's Chromium (/usr/bin/chromium) with a
1600x1000 viewport and writes PNGs (the whole scrolling page, not just the viewport) to OUT_DIR
(default /tmp/rnnviz-shots):

  01_home.png … 08_your_model.png    every page at default settings, after pressing Step --steps times
                                     (Your weights: after uploading a small 2-layer LSTM state_dict)
  09_attention_reverse.png           Attention with task=reverse (the defaults' task has no attention)
  10_preset_vanishing_gradients.png  the "Vanishing gradients" preset, trained --train seconds, paused
  11_preset_attention.png            the attention preset, trained --train-attention seconds, paused

Prints each path, and any Streamlit exception shown on a page.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser import App, StreamlitServer, chromium_available, launch_browser, new_page  # noqa: E402

PAGES = [  # (file name, sidebar link text, live page: press Step)
    ("01_home", "Home", False),
    ("02_gradient_flow", "Gradient flow", True),
    ("03_gates", "Gates", True),
    ("04_hidden_states", "Hidden states", True),
    ("05_attention", "Attention", True),
    ("06_training", "Training & replay", True),
    ("07_phase", "Phase diagram", False),
    ("08_your_model", "Your weights", False),
]


def settle(app: App, timeout_ms: float = 90_000) -> None:
    """Idle, and every chart on the page drawn."""
    app.wait_idle(timeout_ms)
    app.page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                  .every(c => c.querySelector('.main-svg'))""", timeout=timeout_ms)
    app.page.wait_for_timeout(300)


def shoot(app: App, out: Path, name: str, shots: list) -> None:
    app.page.mouse.move(1590, 990)  # no tooltip from the last button pressed
    settle(app)
    path = app.full_screenshot(str(out / f"{name}.png"))
    exc = app.exceptions()
    shots.append((path, exc))
    print(path + ("   <-- EXCEPTION: " + exc[0].splitlines()[0] if exc else ""), flush=True)


def sample_state_dict(folder: Path) -> Path:
    import torch
    from torch import nn

    torch.manual_seed(0)
    path = folder / "lstm_2layer.pt"
    torch.save(nn.LSTM(3, 16, num_layers=2, batch_first=True).state_dict(), path)
    return path


def train_for(app: App, seconds: float) -> None:
    app.start()
    app.wait_steps(lambda s: min(s) > 0, timeout_ms=60_000)
    app.page.wait_for_timeout(int(seconds * 1000))
    app.pause()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="/tmp/rnnviz-shots", help="folder for the PNGs")
    ap.add_argument("--steps", type=int, default=3, help="Step presses on each live page")
    ap.add_argument("--train", type=float, default=5.0, help="seconds of training for the vanishing preset")
    ap.add_argument("--train-attention", type=float, default=10.0, help="seconds of training for attention")
    args = ap.parse_args()
    if not chromium_available():
        sys.exit("screenshots: /usr/bin/chromium not found (apt-get install -y chromium)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    t0 = time.perf_counter()
    with launch_browser() as browser, StreamlitServer() as server, tempfile.TemporaryDirectory() as tmp:
        # every page at defaults, one session, moving through the sidebar navigation
        app = App(new_page(browser), server.url)
        app.goto("/")
        for name, link, live in PAGES:
            if link != "Home":
                app.nav(link)
            if live:
                for _ in range(args.steps):
                    app.step()
            if name == "08_your_model":
                with app.rerun():
                    app.page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                        str(sample_state_dict(Path(tmp))))
                app.page.wait_for_selector(".st-key-yw_gf .main-svg", timeout=60_000)
            shoot(app, out, name, shots)
        app.page.context.close()

        # attention needs a seq2seq task
        app = App(new_page(browser), server.url)
        app.goto("/?task=reverse&cells=gru&seq_len=12")
        app.nav("Attention")
        for _ in range(args.steps):
            app.step()
        shoot(app, out, "09_attention_reverse", shots)
        app.page.context.close()

        for name, preset, seconds in (("10_preset_vanishing_gradients", "Vanishing gradients", args.train),
                                      ("11_preset_attention", "Attention vs the context-vector", args.train_attention)):
            app = App(new_page(browser), server.url)
            app.goto("/")
            app.load_preset(preset)
            train_for(app, seconds)
            shoot(app, out, name, shots)
            app.page.context.close()

    bad = [(p, e) for p, e in shots if e]
    print(f"{len(shots)} screenshots in {out} ({time.perf_counter() - t0:.0f} s)"
          + (f"; {len(bad)} with a Streamlit exception" if bad else ""))
    for p, e in bad:
        print(f"\n{p}:\n" + "\n---\n".join(e))


if __name__ == "__main__":
    main()
