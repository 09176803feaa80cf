# %% [markdown]
# # Look inside your own `nn.LSTM` with rnnviz
#
# A notebook-style script: the `# %%` lines are cells, so Jupyter (with jupytext), VS Code and PyCharm open it as
# a notebook, where every figure shows in place; `python examples/notebook_trace.py [OUT_DIR]` runs it top to
# bottom as a script and writes the figures as HTML into OUT_DIR (a temporary folder by default).
#
# What it shows:
# 1. `rnnviz.trace` on a model of your own: every hidden state, gate and ‖∂L/∂h_t‖, per time step.
# 2. `rnnviz.analysis` turns traces into tidy DataFrames, `rnnviz.figures` turns those into plotly figures.
# 3. Tracing inside your own training loop, to see gradient flow change while the model learns.
# 4. Connectivity ‖∂f_t/∂e_s‖ of a character model: how far back its predictions reach.

# %%
import sys
import tempfile
from pathlib import Path

import plotly.io as pio
import torch
from torch import nn

try:
    import rnnviz
except ModuleNotFoundError:  # a checkout, not installed: use the repository's copy
    _here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
    sys.path.insert(0, str(_here.parent))
    import rnnviz
from rnnviz import analysis, connectivity, figures, figures_syllabus
from rnnviz.models import ModelConfig
from rnnviz.training import Snapshot, TrainConfig, Trainer

torch.manual_seed(0)
torch.set_num_threads(1)  # small recurrent models: one thread is faster and steadier than several


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab), whose sys.argv is the kernel's own
    (`ipykernel_launcher.py -f kernel.json`), not arguments for this script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


IN_NOTEBOOK = in_notebook()
# In a notebook the figures show in place (set OUT = Path("some/folder") to also save HTML copies);
# as a script they are written to OUT_DIR.
OUT = None if IN_NOTEBOOK else Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="rnnviz-"))
_plotlyjs_shown = False


def show(fig, name: str) -> None:
    """In a notebook: display in place, as plotly's own bundle (JupyterLab, Notebook 7, VS Code draw it) plus
    HTML for any other viewer, with plotly.js embedded in the first figure only and nothing fetched from the web.
    With OUT set: save `name`.html into OUT (plotly.js written once, next to the files: works offline)."""
    global _plotlyjs_shown
    if OUT is not None:
        OUT.mkdir(parents=True, exist_ok=True)
        fig.write_html(OUT / f"{name}.html", include_plotlyjs="directory")
    if IN_NOTEBOOK:
        from IPython.display import display

        bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
        bundle["text/html"] = fig.to_html(full_html=False, include_plotlyjs=not _plotlyjs_shown,
                                          include_mathjax=False)
        _plotlyjs_shown = True
        display(bundle, raw=True)


# %% [markdown]
# ## Your model
# Any standard `nn.RNN`, `nn.LSTM` or `nn.GRU` works, batch-first or not, any number of layers, bidirectional
# or not. Here: a 2-layer LSTM with a linear head that must remember the first input of a long sequence.

# %%
class MyModel(nn.Module):
    def __init__(self, input_size: int = 3, hidden: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1]).squeeze(-1)


model = MyModel()
T = 60


def batch(n: int = 32):
    x = torch.randn(n, T, 3)
    return x, x[:, 0, 0]  # target: the very first input value (a long-range dependency)


x, y = batch()


def loss_fn(out):
    """The loss from the LSTM's output (B, T, H): exactly what training minimises."""
    return (model.head(out[:, -1]).squeeze(-1) - y).pow(2).mean()


# %% [markdown]
# ## Trace it
# `rnnviz.trace(module, x, loss_fn)` runs the module (only reading it) and returns per-step tensors shaped
# (layers, directions, batch, time, hidden).

# %%
tr = rnnviz.trace(model.lstm, x, loss_fn)
print("hidden     ", tuple(tr.hidden.shape))
print("cell       ", tuple(tr.cell.shape))
print("gates      ", {k: tuple(v.shape) for k, v in tr.gates.items()})
print("grad_norm  ", tuple(tr.grad_norm.shape), "(layers, directions, time)")
print("loss       ", round(tr.loss, 4))
print("‖∂L/∂h_t‖ of the top layer at t = 0, T/2, T-1:",
      [f"{float(tr.grad_norm[-1, 0, t]):.2e}" for t in (0, T // 2, T - 1)])

# %% [markdown]
# ## Gradient flow: full BPTT vs truncated BPTT
# `Snapshot.from_trace` keeps what the figures need; `analysis.grad_flow_frames_from` makes the tidy frame
# (run, step, layer, direction, t, grad_norm) that `figures.grad_norm_vs_time` draws. With a truncation window
# k the gradient terms crossing a window boundary are exactly zero (drawn as × at the bottom).

# %%
tr_k = rnnviz.trace(model.lstm, x, loss_fn, truncation=15)
gf = analysis.grad_flow_frames_from({"full BPTT": [Snapshot.from_trace(tr)],
                                     "truncated, k = 15": [Snapshot.from_trace(tr_k)]})
print(gf.head())
show(figures.grad_norm_vs_time(gf), "grad_norm_vs_time")

# %% [markdown]
# ## Gates and the cell state of one sequence

# %%
snap = Snapshot.from_trace(tr)
gates = analysis.gate_frame(snap, layer=0, direction=0, example=0)  # gate, t, unit, value
print(gates.groupby("gate", sort=False)["value"].agg(["mean", "min", "max"]).round(3))
show(figures.gate_heatmaps(gates), "gate_heatmaps")

# %% [markdown]
# ## Inside your own training loop
# Trace a fixed probe batch every few steps and keep the snapshots (`step=` labels them): the heatmap shows how
# ‖∂L/∂h_t‖ changes while the model learns, and the PCA basis is fitted once over all snapshots.

# %%
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
snaps = [Snapshot.from_trace(tr, step=0)]
for step in range(1, 41):
    xb, yb = batch()
    loss = (model(xb) - yb).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step % 10 == 0:
        snaps.append(Snapshot.from_trace(rnnviz.trace(model.lstm, x, loss_fn), step=step))
        print(f"step {step}: loss {loss.item():.4f}")

gf_train = analysis.grad_flow_frames_from({"my LSTM": snaps})
show(figures.grad_flow_heatmap(gf_train, run="my LSTM", layer=1), "grad_flow_heatmap")

basis = analysis.pca_basis(snaps, layer=1)
pf = analysis.pca_frame(snaps[-1], basis, layer=1)
show(figures.pca_trajectories(pf, explained=analysis.explained_variance(snaps[-1], basis, layer=1)), "pca")

# %% [markdown]
# ## Connectivity: how far back a character model's predictions reach
# For a model with a prediction at every step (rnnviz's own models: `rnnviz.models.build_model`, or a `Trainer`),
# `connectivity.connectivity_frames` computes C[t, s] = ‖∂f_t/∂e_s‖ exactly: how strongly the prediction at
# step t (f_t = the logit of the target character) depends on the input vector e_s read at step s ≤ t. Above the
# diagonal it is exactly zero (the model never reads the future). Here a tanh RNN and an LSTM, trained side by
# side on the bundled Shakespeare for 150 steps.

# %%
lms = {label: Trainer(ModelConfig(cell=cell, hidden_size=32), TrainConfig(task="char_lm", seq_len=32, snapshot_every=0))
       for label, cell in [("RNN (tanh)", "rnn_tanh"), ("LSTM", "lstm")]}
for lm in lms.values():
    lm.step(150)
cf = connectivity.connectivity_frames(lms, example=0)  # run, step, t, s, lag, connectivity, input, target
reach = connectivity.reach_frame(cf)  # run, lag, connectivity (mean over t), n
print("text:", repr(lms["LSTM"].task.decode(lms["LSTM"].probe.x[0])))
print(reach[reach.lag.isin([0, 10, 30])].pivot(index="lag", columns="run", values="connectivity").to_string(
    float_format="{:.2e}".format))
show(figures_syllabus.connectivity_heatmaps(cf), "connectivity")
show(figures_syllabus.connectivity_reach(reach), "connectivity_reach")

# %%
if OUT is not None:
    print("figures written to", OUT, sorted(p.name for p in OUT.glob("*.html")))
