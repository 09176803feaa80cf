import torch

# Small models on a shared 2-core machine: one intra-op thread is faster and far steadier.
torch.set_num_threads(1)
