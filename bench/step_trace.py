"""Where a training loop's time goes, step by step: the real loop, then bare steps, one process.

Runs `facesketch.train.train` on built-in synthetic faces and records, for every step: its wall
time, the kernel (system) time and page faults it caused, the process's resident and huge-page
memory; the gaps between steps (data, logging) and between epochs (evaluation, checkpoints);
then times bare steps of the same step kind on one random batch in the same process (what
bench/loop_bench.py's `step` column measures). Prints one line per step and a summary:

    python bench/step_trace.py --model dense_ae --precision bf16 [--epochs 4] [--synthetic-n 20]

What it showed for dense_ae in bf16 is in bench/README.md ("Why dense_ae in bf16 ...").
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import sys
import tempfile
import time

from facesketch.process import configure_process, kept_heap

configure_process()   # as the facesketch command does, before torch allocates

import torch  # noqa: E402

import facesketch.steps as steps_module  # noqa: E402
from facesketch import train as train_module  # noqa: E402
from facesketch.config import RunConfig  # noqa: E402
from facesketch.registry import list_models  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loop_bench import WARMUP_STEPS, bare_step  # noqa: E402  (the bare step loop_bench times)

def memory_mib() -> tuple[int, int]:
    """(resident, of which in transparent huge pages) in MiB, from /proc/self/smaps_rollup."""
    got = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            key, value, *_ = line.split() + [""]
            if key in ("Rss:", "AnonHugePages:"):   # the first line names the mapping
                got[key] = int(value) // 1024
    return got.get("Rss:", 0), got.get("AnonHugePages:", 0)


class Tracer:
    """Wraps every step kind's __call__: per-step wall, system time, minor faults, memory."""

    def __init__(self):
        self.rows: list[dict] = []
        self.last_out: float | None = None
        self.gaps: list[float] = []

    def install(self) -> None:
        for cls in set(steps_module.STEP_KINDS.values()):
            if "__call__" not in vars(cls):   # inherited: wrapped with its own class, not twice
                continue
            call = cls.__call__

            def traced(step, src, tgt, _call=call):
                start = time.perf_counter()
                if self.last_out is not None:
                    self.gaps.append(start - self.last_out)
                before = resource.getrusage(resource.RUSAGE_SELF)
                loss = _call(step, src, tgt)
                loss.item()
                after = resource.getrusage(resource.RUSAGE_SELF)
                self.last_out = time.perf_counter()
                rss, huge = memory_mib()
                self.rows.append({"s": self.last_out - start, "sys": after.ru_stime - before.ru_stime,
                                  "faults": after.ru_minflt - before.ru_minflt, "rss": rss, "huge": huge})
                return loss
            cls.__call__ = traced


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dense_ae", choices=list_models(learned=True), help="default: dense_ae")
    ap.add_argument("--layout", default="nchw", choices=("nchw", "channels_last"), help="default: nchw")
    ap.add_argument("--precision", default="bf16", choices=("fp32", "bf16"), help="default: bf16")
    ap.add_argument("--batch-size", type=int, default=16, help="default: 16")
    ap.add_argument("--synthetic-n", type=int, default=20,
                    help="pairs of synthetic faces, 80%% of them for training (default 20: whole batches of 16)")
    ap.add_argument("--epochs", type=int, default=4, help="at least 2: epoch 1 warms up (default 4)")
    ap.add_argument("--bare-steps", type=int, default=16, help="bare steps after the loop (default 16)")
    args = ap.parse_args()
    if args.epochs < 2 or args.bare_steps <= WARMUP_STEPS:
        ap.error(f"--epochs must be at least 2 and --bare-steps at least {WARMUP_STEPS + 1} (epoch 1 and the first "
                 f"{WARMUP_STEPS} steps warm up)")
    tracer = Tracer()
    tracer.install()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")
        cfg = RunConfig(model=args.model, direction="photo2sketch", synthetic_n=args.synthetic_n, epochs=args.epochs,
                        batch_size=args.batch_size, layout=args.layout, precision=args.precision,
                        runs_dir=os.path.join(tmp, "runs"), name="trace")
        result = train_module.train(cfg, progress=False)
        with (result.run_dir / "history.csv").open() as f:
            history = list(csv.DictReader(f))
        del result   # the bare steps below run without the loop's model and optimiser in memory
    loop_rows, tracer.rows, tracer.last_out = tracer.rows, [], None
    between = [g for g in tracer.gaps if g > 0.05]   # evaluation and checkpoints, between epochs
    within = [g for g in tracer.gaps if g <= 0.05]   # data, logging

    step, src, tgt = bare_step(cfg, torch.device("cpu"), args.layout == "channels_last")
    with kept_heap():
        for _ in range(args.bare_steps):
            step(src, tgt)
    bare_rows = tracer.rows

    print(f"{args.model} {args.layout} {args.precision}, batch {args.batch_size}, torch {torch.__version__}")
    for what, rows in (("loop", loop_rows), ("bare", bare_rows)):
        for i, r in enumerate(rows):
            print(f"{what} {i:3d} {r['s']:.3f} s  sys {r['sys']:.2f} s  faults {r['faults']:6d}  "
                  f"rss {r['rss']} MiB (huge pages {r['huge']})")
    per_epoch = len(loop_rows) // max(1, len(history))
    print("epochs (images/s, as history.csv):", " ".join(h["images_per_s"] for h in history))
    later = loop_rows[per_epoch:]
    print(f"loop steps after epoch 1: median {statistics.median(r['s'] for r in later):.3f} s, "
          f"{sum(r['faults'] > 100 for r in later)} of {len(later)} with >100 faults")
    timed = bare_rows[WARMUP_STEPS:]   # as loop_bench times them
    print(f"bare steps after {WARMUP_STEPS}: median {statistics.median(r['s'] for r in timed):.3f} s, "
          f"{sum(r['faults'] > 100 for r in timed)} of {len(timed)} with >100 faults")
    print(f"gaps between steps within epochs: median {1000 * statistics.median(within or [0]):.1f} ms; "
          f"between epochs: {' '.join(f'{g:.2f}' for g in between)} s")


if __name__ == "__main__":
    from facesketch import FacesketchError
    try:
        main()
    except FacesketchError as e:   # a bad option or data: one line, not a traceback
        sys.exit(f"step_trace.py: {e}")
