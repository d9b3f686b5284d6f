"""The process-wide memory settings the `facesketch` command makes before any training.

Training allocates and frees the same large tensors every step: dense_ae ~1.7 GB of weight
gradients (and, in bf16, 850 MB of bf16 weight copies), hybrid_ae 0.5-1 GB of activations.
Left alone, glibc hands every block over 32 MB straight back to the kernel when it is freed, and
the next step faults it in again, page by page, zeroed by the kernel, at times stalled while
the kernel compacts memory for huge pages. Two settings take that cost off the step:

- transparent huge pages for PyTorch's CPU allocator (THP_MEM_ALLOC_ENABLE, read by PyTorch at
  its first CPU allocation, so set before anything allocates): 512x fewer page faults;
- glibc's heap keeps what is freed (`mallopt`: large blocks from the heap instead of their own
  mappings, and the heap never trimmed), so a step reuses the memory the step before freed and
  faults nothing in. The process then holds its peak memory until it exits, as a GPU caching
  allocator does. dense_ae's bf16 training loop ran 1.5x faster with it (bench/malloc_bench.py).

A user's own THP_MEM_ALLOC_ENABLE wins; FACESKETCH_KEEP_FREED_MEMORY=0 leaves glibc's defaults.
Library users who want either call `configure_process()` before importing torch.
"""

from __future__ import annotations

import ctypes
import os

KEEP_FREED_ENV = "FACESKETCH_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4      # glibc <malloc.h>


def configure_process() -> None:
    """Both settings: huge pages for PyTorch's allocator, and glibc's heap kept (see the module)."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Make glibc serve large blocks from its heap and never give the heap back, so that freed
    tensors are reused rather than unmapped and faulted in again. True when set; False where
    FACESKETCH_KEEP_FREED_MEMORY=0 or the C library has no `mallopt` (not glibc)."""
    if os.environ.get(KEEP_FREED_ENV, "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # -1 disables trimming entirely (mallopt(3)); 0 mappings: every block comes from the heap
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, -1) == 1
