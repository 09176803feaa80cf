"""rnnviz — train small RNN, LSTM and GRU models live and watch what happens inside them.

    streamlit run app.py
"""

import streamlit as st
import torch

from pages import _janitor, _warmup
from pages import _ui as ui

# Small models, many sessions, 2 cores: one intra-op thread per op is faster and steadier than two.
torch.set_num_threads(1)

st.set_page_config(page_title="rnnviz", page_icon="assets/favicon.png", layout="wide")

PAGES = {
    "home": st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    "gradient_flow": st.Page("pages/gradient_flow.py", title="Gradient flow", icon=":material/trending_down:"),
    "gates": st.Page("pages/gates.py", title="Gates", icon=":material/tune:"),
    "hidden_states": st.Page("pages/hidden_states.py", title="Hidden states", icon=":material/scatter_plot:"),
    "attention": st.Page("pages/attention.py", title="Attention", icon=":material/center_focus_strong:"),
    "connectivity": st.Page("pages/connectivity.py", title="Connectivity", icon=":material/hub:"),
    "hello": st.Page("pages/hello.py", title="“hello” step by step", icon=":material/abc:"),
    "unrolled": st.Page("pages/unrolled.py", title="Unrolled network", icon=":material/view_week:"),
    "padding": st.Page("pages/padding.py", title="Padding & packing", icon=":material/data_array:"),
    "decoding": st.Page("pages/decoding.py", title="Decoding", icon=":material/translate:"),
    "training": st.Page("pages/training.py", title="Training & replay", icon=":material/show_chart:"),
    "phase": st.Page("pages/phase.py", title="Phase diagram", icon=":material/grid_on:"),
    "your_model": st.Page("pages/your_model.py", title="Your weights", icon=":material/upload_file:"),
}

# Streamlit leaves 6 rem above the main column: on a 1280x800 projector the status and the main chart need it
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:1.5rem}</style>")
_janitor.start()  # once per process: releases closed tabs' sessions after server.disconnectedSessionTTL
_warmup.start()  # once per process, in the background: the first training page's slow first-time work
ui.init_session()
nav = st.navigation(list(PAGES.values()), expanded=True)  # every page listed, none behind 'View more'
goto = st.session_state.pop("goto", None)
if goto in PAGES:
    st.switch_page(PAGES[goto])
nav.run()
