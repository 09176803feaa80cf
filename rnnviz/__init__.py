"""rnnviz: train small RNN, LSTM and GRU models live and look inside them.

The engine (this package) has no Streamlit in it; `app.py` and `pages/` are the dashboard.
"""

from rnnviz.tracing import GATE_NAMES, Trace, trace, truncated_forward

__all__ = ["GATE_NAMES", "Trace", "trace", "truncated_forward"]
__version__ = "0.1.0"
