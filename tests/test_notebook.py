"""examples/notebook_trace.py run for real: as a notebook in a Jupyter kernel (jupytext converts it, nbclient
executes it, as JupyterLab would from the examples folder) and as a script."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPT = EXAMPLES / "notebook_trace.py"
FIGURES = ["grad_norm_vs_time", "gate_heatmaps", "grad_flow_heatmap", "pca", "connectivity", "connectivity_reach"]


def _need(module: str):
    """The dev requirements install jupytext, nbclient and ipykernel: missing in CI is a failure, locally a skip."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def executed():
    jupytext, nbclient = _need("jupytext"), _need("nbclient")
    _need("ipykernel")
    before = sorted(p.name for p in EXAMPLES.iterdir())
    nb = jupytext.read(SCRIPT)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    after = sorted(p.name for p in EXAMPLES.iterdir())
    return nb, before, after


def _outputs(nb, output_type: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == output_type]


def test_the_notebook_runs_without_errors_and_writes_nothing(executed):
    nb, before, after = executed
    assert not _outputs(nb, "error"), [o.get("evalue") for o in _outputs(nb, "error")]
    assert after == before, f"the notebook wrote files into examples/: {sorted(set(after) - set(before))}"
    assert "-f" not in after  # the kernel's own argument is not taken for an output folder


def test_every_figure_is_displayed_in_place(executed):
    nb, _, _ = executed
    figs = [o for o in _outputs(nb, "display_data") if "application/vnd.plotly.v1+json" in o.data]
    assert len(figs) == len(FIGURES)
    titles = [o.data["application/vnd.plotly.v1+json"]["layout"]["title"]["text"] for o in figs]
    assert titles[0].startswith("‖∂L/∂h_t‖ at each time step")
    assert titles[4].startswith("‖∂f_t/∂e_s‖: how much prediction t depends on input s")
    assert titles[5] == "How far back the predictions reach"
    # every figure also as HTML for viewers without the plotly renderer, with plotly.js embedded once (offline)
    for o in figs:
        assert re.search(r'<div id="[^"]+" class="plotly-graph-div"', o.data["text/html"])
    html = [o.data["text/html"] for o in _outputs(nb, "display_data") if "text/html" in o.data]
    assert sum("Plotly=" in h or "var Plotly" in h for h in html) == 1
    assert not any(re.search(r"""<script[^>]*\ssrc=["']?https?://""", h) for h in html)  # nothing from the web
    # the connectivity figure: one panel per model, exactly zero (blank) above the diagonal
    conn = figs[4].data["application/vnd.plotly.v1+json"]
    heat = [tr for tr in conn["data"] if tr["type"] == "heatmap"]
    assert len(heat) == 2 and [a["text"] for a in conn["layout"]["annotations"][:2]] == ["RNN (tanh)", "LSTM"]


def test_the_notebook_prints_the_shapes(executed):
    nb, _, _ = executed
    text = "".join(o.text for o in _outputs(nb, "stream") if o.name == "stdout")
    assert "hidden      (2, 1, 32, 60, 32)" in text
    assert "grad_norm   (2, 1, 60) (layers, directions, time)" in text
    assert re.search(r"^text: ", text, re.M) and "figures written to" not in text


def test_as_a_script_it_writes_every_figure(tmp_path):
    out = tmp_path / "figs"
    r = subprocess.run([sys.executable, str(SCRIPT), str(out)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.stem for p in out.glob("*.html")) == sorted(FIGURES)
    assert (out / "plotly.min.js").exists()  # written once, next to the files: they open offline
    assert f"figures written to {out}" in r.stdout
