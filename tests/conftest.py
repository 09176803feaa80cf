import os

import torch

# Small models on a shared 2-core machine: one intra-op thread is faster and far steadier.
torch.set_num_threads(1)

# pages/_admission.py lets CAPACITY sessions of one server process train at once and queues the rest. Tests run
# many sessions back to back in one process (AppTest) or one server, and a finished test's session keeps its slot
# until it times out: every test but the admission's own (tests/test_admission_live.py) runs uncapped. Servers
# started by tests inherit this.
os.environ.setdefault("RNNVIZ_MAX_TRAINING", "64")
