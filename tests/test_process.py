"""Memory settings for training (facesketch/process.py)."""

import ctypes
import os
import subprocess
import sys

import pytest

from facesketch.process import KEEP_FREED_ENV, kept_heap


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).mallopt
        return True
    except (OSError, AttributeError):
        return False


def test_kept_heap_does_nothing_when_switched_off(monkeypatch):
    monkeypatch.setenv(KEEP_FREED_ENV, "0")
    with kept_heap() as kept:
        assert kept is False


def test_kept_heap_refuses_a_setting_it_does_not_know(monkeypatch):
    from facesketch import FacesketchError
    monkeypatch.setenv(KEEP_FREED_ENV, "yes")
    with pytest.raises(FacesketchError, match="must be 0 .* or 1 .*got 'yes'"):
        with kept_heap():
            pass


# in a fresh process: where a freed 64 MB block's successor comes from, inside kept_heap and after it
PROBE = """
import ctypes, os
from facesketch.process import configure_process, kept_heap
configure_process()
libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p; libc.free.argtypes = [ctypes.c_void_p]
def from_heap():
    a = libc.malloc(64 << 20); libc.free(a); b = libc.malloc(64 << 20)
    ctypes.memset(b, 1, 64 << 20)            # touch it: resident
    heap = [l for l in open('/proc/self/maps').read().splitlines() if l.endswith('[heap]')]
    lo, hi = (int(x, 16) for x in heap[0].split()[0].split('-')) if heap else (0, 0)
    return b, lo <= b < hi
def rss_mib():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') >> 20
with kept_heap():
    b, inside = from_heap()
    libc.free(b)
    held = rss_mib()
after_rss = rss_mib()
b2, after = from_heap()
print(inside, after, held - after_rss >= 32, os.environ['THP_MEM_ALLOC_ENABLE'])
"""


@pytest.mark.skipif(not _glibc() or not os.path.exists("/proc/self/maps"), reason="glibc on Linux only")
def test_kept_heap_reuses_freed_blocks_then_hands_them_back():
    """Inside kept_heap a 64 MB block comes from the heap (the freed one is reused, not unmapped);
    on the way out the free heap goes back to the kernel (resident memory drops) and blocks get
    their own mappings again. FACESKETCH_KEEP_FREED_MEMORY=0 leaves glibc's defaults; huge pages
    default to on and a user's value wins."""
    base = {k: v for k, v in os.environ.items() if k not in (KEEP_FREED_ENV, "THP_MEM_ALLOC_ENABLE")}

    def run(env):
        return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                              env=env).stdout.split()
    assert run(base) == ["True", "False", "True", "1"]
    assert run({**base, KEEP_FREED_ENV: "0", "THP_MEM_ALLOC_ENABLE": "0"}) == ["False", "False", "False", "0"]
