"""facesketch: face photo <-> pencil sketch synthesis, reproducible and measured."""

import os

# dense_ae allocates and frees ~1.7 GB of weight gradients every step (hybrid_ae 0.5 GB
# activations); with transparent huge pages PyTorch's CPU allocator takes 512x fewer page
# faults for them: dense_ae trains 2.2x, hybrid_ae 1.46x, conv_ae 1.16x faster on the 2-core
# development CPU (bench/README.md). PyTorch reads this once, at
# its first allocation, so it must be set before torch is imported; a user's own value wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"


class FacesketchError(Exception):
    """An error with a one-line message meant for the user (bad input, missing file, ...)."""
