"""The real `facesketch train` loop with glibc's heap kept (the default) and with glibc's defaults.

facesketch/process.py makes glibc keep freed memory in its heap, so that each step reuses the
blocks the step before freed instead of mapping and faulting them in again. This times whole
`facesketch train` runs (synthetic faces, 8 views) with FACESKETCH_KEEP_FREED_MEMORY=1 and =0,
alternating, per model / layout / precision, and reports the median images/s of epochs 3 on
(history.csv's own per-epoch timing) and each process's peak resident memory.

    python bench/malloc_bench.py [--runs dense_ae:nchw:bf16,conv_ae:channels_last:fp32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from readme_block import write_block
from train_bench import cpu_flags

from facesketch.process import KEEP_FREED_ENV

# a facesketch process that reports its peak resident memory when it exits
CHILD = ("import atexit, resource, sys; atexit.register(lambda: print('PEAK_RSS_MIB', "
         "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)); "
         "from facesketch.__main__ import main; sys.argv[0] = 'facesketch'; main()")


def one(model: str, layout: str, precision: str, keep: bool, epochs: int, n: int, root: Path, name: str):
    env = {**os.environ, KEEP_FREED_ENV: "1" if keep else "0"}
    cmd = [sys.executable, "-c", CHILD, "train", "--model", model, "--direction", "photo2sketch",
           "--layout", layout, "--precision", precision, "--epochs", str(epochs), "--synthetic-n", str(n),
           "--runs-dir", str(root), "--name", name]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    rows = list(csv.DictReader((root / name / "history.csv").open()))
    speeds = [float(r["images_per_s"]) for r in rows[2:]]     # epochs 3 on: past the warm-up
    peak = next(int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("PEAK_RSS_MIB"))
    for f in (root / name).glob("*.safetensors"):
        f.unlink()
    return statistics.median(speeds), peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="dense_ae:nchw:fp32,dense_ae:nchw:bf16,conv_ae:channels_last:fp32,"
                    "hybrid_ae:channels_last:fp32", help="model:layout:precision, comma-separated")
    ap.add_argument("--rounds", type=int, default=2, help="on/off pairs per run, alternating which goes first")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--synthetic-n", type=int, default=16)
    ap.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = ap.parse_args()
    if args.epochs < 3 or args.rounds < 1:
        ap.error(f"--epochs must be at least 3 (epochs 3 on are timed) and --rounds at least 1, "
                 f"got {args.epochs} and {args.rounds}")
    runs = [spec.split(":") for spec in args.runs.split(",")]
    for spec, parts in zip(args.runs.split(","), runs):
        if len(parts) != 3:
            ap.error(f"--runs: {spec!r} is not model:layout:precision")
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {cpu_flags()}; `facesketch train` on {args.synthetic_n} "
             f"synthetic pairs x 8 views, {args.epochs} epochs, median images/s of epochs 3 on; {args.rounds} "
             "processes each way, alternating.", "",
             "| model | layout | precision | heap kept (default) img/s | glibc defaults img/s | kept / defaults | "
             "each process, kept | each process, defaults | peak RSS MiB, kept / defaults |",
             "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for model, layout, precision in runs:
            spec = f"{model}:{layout}:{precision}"
            got = {True: [], False: []}
            for r in range(args.rounds):
                for keep in ((True, False) if r % 2 == 0 else (False, True)):
                    got[keep].append(one(model, layout, precision, keep, args.epochs, args.synthetic_n, Path(tmp),
                                         f"{model}-{layout}-{precision}-{keep}-{r}"))
                    print(spec, "kept" if keep else "defaults", got[keep][-1], flush=True)
            on, off = (statistics.median(s for s, _ in got[k]) for k in (True, False))
            lines.append(f"| {model} | {layout} | {precision} | {on:.1f} | {off:.1f} | {on / off:.2f}x | "
                         f"{' '.join(f'{s:.1f}' for s, _ in got[True])} | {' '.join(f'{s:.1f}' for s, _ in got[False])} | "
                         f"{max(p for _, p in got[True])} / {max(p for _, p in got[False])} |")
    print("\n".join(lines))
    if not args.no_readme:
        write_block("malloc-bench", lines, "glibc's heap kept between steps (`python bench/malloc_bench.py`)")


if __name__ == "__main__":
    main()
