"""Data pipeline throughput: is loading the bottleneck of training?

Measures, in one run: (a) decoding + resizing every pair from disk each time (what serving
'on the fly from files' would cost), (b) building the uint8 cache once, (c) serving cached
items with their dihedral view, (d) full DataLoader batches of 32. Prints pairs/s.

    python bench/data_bench.py --data ../shared/data/cufs [--size 256]
"""

from __future__ import annotations

import argparse
import time

import torch

from facesketch.data.dataset import PairDataset, make_loader
from facesketch.data.images import load_array
from facesketch.data.pairs import find_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(2)
    pairs = find_pairs(args.data).pairs
    n = len(pairs)

    t = time.perf_counter()
    for p in pairs:
        load_array(p.photo, args.size), load_array(p.sketch, args.size)
    from_files = n / (time.perf_counter() - t)

    t = time.perf_counter()
    ds = PairDataset(pairs, size=args.size, direction="photo2sketch", views=tuple(range(8)))
    cache_s = time.perf_counter() - t

    t = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    cached = len(ds) / (time.perf_counter() - t)

    t = time.perf_counter()
    for _ in make_loader(ds, batch_size=32, shuffle=True):
        pass
    loader = len(ds) / (time.perf_counter() - t)

    print(f"{n} pairs at {args.size}x{args.size}, 8 views = {len(ds)} items")
    print(f"decode+resize from files : {from_files:8.0f} pairs/s")
    print(f"build uint8 cache (once) : {cache_s:8.2f} s ({ds.photos.nbytes + ds.sketches.nbytes >> 20} MiB)")
    print(f"cached item with view    : {cached:8.0f} pairs/s ({cached / from_files:.0f}x files)")
    print(f"DataLoader, batch 32     : {loader:8.0f} pairs/s")


if __name__ == "__main__":
    main()
