"""Memory settings for training: huge pages for PyTorch's allocator, glibc's heap kept while training.

Training allocates and frees the same large tensors every step: dense_ae ~1.7 GB of weight
gradients (and, in bf16, 850 MB of bf16 weight copies), hybrid_ae 0.5-1 GB of activations.
Left alone, glibc hands every block over 32 MB straight back to the kernel when it is freed, and
the next step faults it in again, page by page, zeroed by the kernel, at times stalled while
the kernel compacts memory for huge pages. Two settings take that cost off the step:

- transparent huge pages for PyTorch's CPU allocator (THP_MEM_ALLOC_ENABLE, read by PyTorch at
  its first CPU allocation, so set before anything allocates): 512x fewer page faults;
- while a run trains (`kept_heap()`, around facesketch.train's training loop), glibc's heap
  keeps what is freed (`mallopt`: large blocks from the heap instead of their own mappings, and
  the heap never trimmed), so a step reuses the memory the step before freed and faults nothing
  in. When the run ends the defaults come back and the free heap is handed back to the kernel
  (`malloc_trim`): kept for good, a process that trains one model after another (a bench,
  `demo`, `reproduce`) grew, a block of one size not fitting the holes of another, until the
  kernel killed it (19 GB after a few dense_ae runs). A run holds its peak memory until it ends,
  and that peak is higher: in bench/malloc_bench.py's run on the AVX-512 CPU the training loop ran
  2.0x faster for dense_ae in bf16, 1.4x for fsnet in bf16, 1.1x for dense_ae and conv_ae in
  fp32, at 10-50% more peak memory (dense_ae bf16: 11.4 instead of 7.6 GiB).

A user's own THP_MEM_ALLOC_ENABLE wins; FACESKETCH_KEEP_FREED_MEMORY=0 leaves glibc's defaults.
Library users who want huge pages call `configure_process()` before importing torch.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager

KEEP_FREED_ENV = "FACESKETCH_KEEP_FREED_MEMORY"
# glibc <malloc.h>, and its defaults (mallopt(3)) to go back to
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536


def configure_process() -> None:
    """Huge pages for PyTorch's CPU allocator, unless the user set THP_MEM_ALLOC_ENABLE."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def _libc():
    """The C library's mallopt and malloc_trim, or None where they are missing (not glibc)."""
    try:
        libc = ctypes.CDLL(None)
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return mallopt, trim


def keeps_freed_memory() -> bool:
    """FACESKETCH_KEEP_FREED_MEMORY as a bool (1, the default, or 0); anything else is refused."""
    setting = os.environ.get(KEEP_FREED_ENV, "1")
    if setting not in ("0", "1"):
        from facesketch import FacesketchError
        raise FacesketchError(f"{KEEP_FREED_ENV} must be 0 (glibc's defaults) or 1 (keep freed memory), got {setting!r}")
    return setting == "1"


@contextmanager
def kept_heap():
    """glibc keeps freed memory in its heap inside the block (large blocks from the heap, no
    trimming), so training steps reuse what the step before freed; on the way out the defaults
    come back and the free heap goes back to the kernel. Nothing where FACESKETCH_KEEP_FREED_MEMORY
    is 0 or the C library is not glibc."""
    libc = _libc() if keeps_freed_memory() else None
    if libc is None:
        yield False
        return
    mallopt, trim = libc
    # -1 disables trimming entirely (mallopt(3)); 0 mappings: every block comes from the heap
    mallopt(_M_MMAP_MAX, 0)
    mallopt(_M_TRIM_THRESHOLD, -1)
    try:
        yield True
    finally:
        mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        trim(0)
