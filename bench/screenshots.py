"""Screenshots of every page of the dashboard at projector sizes, for a human to look at.

    python bench/screenshots.py [OUT_DIR] [--sizes 1280x800,1920x1080] [--steps 3] [--train 5]
                                [--train-attention 10] [--presentation QUERY]

Starts `streamlit run app.py` on a free local port and drives Debian's Chromium (/usr/bin/chromium). For each
viewport size it opens every page of the sidebar navigation in one session (pressing Step --steps times on the
pages that train; Your weights after uploading a small 2-layer LSTM state_dict), then Attention on a
sequence-to-sequence task and two presets trained for a few seconds, and writes into OUT_DIR/<W>x<H>/:

  NN_<page>.png        what the screen shows without scrolling (the lecturer's view)
  NN_<page>_full.png   the whole page (the main area stretched to its content)

--presentation QUERY (e.g. "present=1") adds that query to the first URL of every session, for the
dashboard's presentation mode; the shots then go to OUT_DIR/<W>x<H>-presentation/. Prints each path, any
Streamlit exception shown on a page, and for each page where its first chart ends (y in px) against the
viewport's height.

--syllabus shoots the syllabus pages instead, each in the state a lecturer would show it: “hello” trained with
five characters generated, Padding & packing trained with the masked run shown, Decoding on reverse with <eos>
(eos=1) after a few Steps, Unrolled on adding (truncated, k = 10) after Steps, Connectivity on the character
model (LSTM vs GRU) after Steps, and Home's shapes explainer (a 2-layer bidirectional LSTM) scrolled into view:

    python bench/screenshots.py /tmp/shots11 --sizes 1280x800 --syllabus
    python bench/screenshots.py /tmp/shots11 --sizes 1280x800 --syllabus --presentation present=1
"""

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser import (  # noqa: E402
    NAV_LINK,
    RUN_COUNTER_JS,
    App,
    StreamlitServer,
    chromium_available,
    launch_browser,
)

TRAINING_PAGES = ("Gradient flow", "Gates", "Hidden states", "Attention", "Training", "Connectivity", "hello")


def settle(app: App, timeout_ms: float = 90_000) -> None:
    """Idle, and every chart on the page drawn."""
    app.wait_idle(timeout_ms)
    app.page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                  .every(c => c.querySelector('.main-svg'))""", timeout=timeout_ms)
    app.page.wait_for_timeout(400)


def first_chart_bottom(app: App) -> float | None:
    return app.page.evaluate("""() => { const c = document.querySelector('[data-testid="stPlotlyChart"]');
                                        return c ? c.getBoundingClientRect().bottom : null; }""")


def shoot(app: App, folder: Path, name: str, shots: list, anchor: str | None = None) -> None:
    """anchor: the text of a heading to scroll to the top of the screen first (else the page's top)."""
    size = app.page.viewport_size
    app.page.mouse.move(size["width"] - 10, size["height"] - 10)  # no tooltip from the last button pressed
    settle(app)
    app.page.evaluate("""() => { const m = document.querySelector('[data-testid="stMain"]');
                                  if (m) m.scrollTop = 0; window.scrollTo(0, 0); }""")
    if anchor:
        app.page.locator('[data-testid="stMain"] :is(h2, h3, h4)', has_text=anchor).first.evaluate(
            "e => e.scrollIntoView({block: 'start'})")
        app.page.wait_for_timeout(300)
    path = str(folder / f"{name}.png")
    app.page.screenshot(path=path)
    bottom = first_chart_bottom(app)
    app.full_screenshot(str(folder / f"{name}_full.png"))
    exc = app.exceptions()
    shots.append((path, exc))
    where = "" if bottom is None else f"   first chart ends at y={bottom:.0f} of {size['height']}" + \
        (" (below the fold)" if bottom > size["height"] else "")
    print(path + where + ("   <-- EXCEPTION: " + exc[0].splitlines()[0] if exc else ""), flush=True)


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
    if app.sidebar_button("❚❚ Pause").count():  # a preset pauses by itself at its N
        app.pause()
    app.wait_idle()


def session(browser, url: str, size: dict) -> App:
    ctx = browser.new_context(viewport=size)
    ctx.set_default_timeout(60_000)
    ctx.add_init_script(RUN_COUNTER_JS)
    return App(ctx.new_page(), url)


def click_main(app: App, name: str) -> None:
    with app.rerun():
        app.page.locator('[data-testid="stMain"]').get_by_role("button", name=name, exact=True).click()


def syllabus(browser, url: str, size: dict, q: str, folder: Path, shots: list, steps: int) -> None:
    """The syllabus pages of issue 11, each in a state worth showing (see --syllabus)."""
    app = session(browser, url, size)
    app.goto(with_query("/hello", q))
    click_main(app, "Train 100 steps")
    for _ in range(5):
        click_main(app, "Next character ▶")
    shoot(app, folder, "01_hello", shots)
    shoot(app, folder, "01_hello_generation", shots, anchor="Generate greedily")

    app.goto(with_query("/padding", q))
    click_main(app, "Train 100 steps")
    with app.rerun():
        app.page.locator('[data-testid="stMain"]').get_by_text("Also show the padded + masked run").click()
    shoot(app, folder, "02_padding", shots)
    shoot(app, folder, "02_padding_gradients", shots, anchor="Which positions the loss reaches")
    app.page.context.close()

    for name, path, n, anchor in (
            ("03_decoding_eos", "/decoding?task=reverse&cells=gru&seq_len=6&eos=1&lr=0.01", max(steps, 12), None),
            ("04_unrolled", "/unrolled?cells=rnn_tanh,lstm&seq_len=30&truncation=10", steps, None),
            ("05_connectivity", "/connectivity?task=char_lm&cells=lstm,gru&seq_len=32&hidden_size=64", steps, None),
            ("06_shapes", "/?cells=lstm,gru&num_layers=2&bidirectional=true&dropout=0.2&seq_len=20", 0,
             "Shapes of the current configuration")):
        app = session(browser, url, size)  # a fresh session per page: its settings come from the link
        app.goto(with_query(path, q))
        for _ in range(n):
            app.step()
        shoot(app, folder, name, shots, anchor=anchor)
        app.page.context.close()


def with_query(path: str, query: str) -> str:
    if not query:
        return path
    return path + ("&" if "?" in path else "?") + query


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="/tmp/rnnviz-shots", help="folder for the PNGs")
    ap.add_argument("--sizes", default="1280x800,1920x1080", help="viewports, WxH,WxH")
    ap.add_argument("--steps", type=int, default=3, help="Step presses on each page that trains")
    ap.add_argument("--train", type=float, default=5.0, help="seconds of training for the vanishing preset")
    ap.add_argument("--train-attention", type=float, default=10.0, help="seconds of training for attention")
    ap.add_argument("--presentation", default="", help='query for presentation mode, e.g. "present=1"')
    ap.add_argument("--syllabus", action="store_true", help="the syllabus pages in a state worth showing instead")
    args = ap.parse_args()
    if not chromium_available():
        sys.exit("screenshots: /usr/bin/chromium not found (apt-get install -y chromium)")
    sizes = [dict(zip(("width", "height"), map(int, s.split("x")), strict=True)) for s in args.sizes.split(",")]
    shots = []
    t0 = time.perf_counter()
    q = args.presentation
    with launch_browser() as browser, StreamlitServer() as server, tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = Path(args.out) / (f"{size['width']}x{size['height']}" + ("-presentation" if q else ""))
            folder.mkdir(parents=True, exist_ok=True)
            if args.syllabus:
                syllabus(browser, server.url, size, q, folder, shots, args.steps)
                continue
            # every page at defaults, one session, moving through the sidebar navigation
            app = session(browser, server.url, size)
            app.goto(with_query("/", q))
            links = [t.split("\n")[-1].strip() for t in app.page.locator(NAV_LINK).all_inner_texts()]
            for i, link in enumerate(links, start=1):
                if i > 1:
                    app.nav(link)
                if any(p in link for p in TRAINING_PAGES) and app.sidebar_button("Step").count():
                    for _ in range(args.steps):
                        app.step()
                if link == "Your weights":
                    with app.rerun():
                        app.page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                            str(sample_state_dict(Path(tmp))))
                    app.page.wait_for_selector(".st-key-yw_gf .main-svg", timeout=60_000)
                shoot(app, folder, f"{i:02d}_{slug(link)}", shots)
            app.page.context.close()
            n = len(links)

            # attention needs a seq2seq task
            app = session(browser, server.url, size)
            app.goto(with_query("/?task=reverse&cells=gru&seq_len=12", q))
            app.nav("Attention")
            for _ in range(args.steps):
                app.step()
            shoot(app, folder, f"{n + 1:02d}_attention_reverse", shots)
            app.page.context.close()

            for k, (name, preset, seconds) in enumerate((
                    ("preset_vanishing_gradients", "Vanishing gradients", args.train),
                    ("preset_attention", "Attention vs the context-vector", args.train_attention)), start=n + 2):
                app = session(browser, server.url, size)
                app.goto(with_query("/", q))
                app.load_preset(preset)
                train_for(app, seconds)
                shoot(app, folder, f"{k:02d}_{name}", shots)
                app.page.context.close()

    bad = [(p, e) for p, e in shots if e]
    print(f"{len(shots)} screenshots in {args.out} ({time.perf_counter() - t0:.0f} s)"
          + (f"; {len(bad)} with a Streamlit exception" if bad else ""))
    for p, e in bad:
        print(f"\n{p}:\n" + "\n---\n".join(e))


if __name__ == "__main__":
    main()
