"""The real training loop beside the bare model step, in one run, per model and layout.

`loop`: `facesketch.train.train` on built-in synthetic faces, all 8 views, the model's own loss,
optimiser and step: what `facesketch train` does, with data loading, views and logging. Its
images/s is the last epoch's, as history.csv records it (the first epoch warms up).
`step`: the same step object on one random batch held in memory, timed alone: what a
micro-bench measures. Both in the same process, right after each other, for each layout; the
ratio loop/step says how much of the loop the step explains, and the layouts are ranked by the
loop. `auto` is the layout `--layout auto` picks here (timed fresh, not from the cache).

On CUDA the same runs use the GPU (bench/gpu.sh). Writes its table into bench/README.md.

    python bench/loop_bench.py [--models conv_ae,fsnet] [--device cpu] [--epochs 3] [--no-readme]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from readme_block import write_block  # noqa: E402
from train_bench import cpu_flags  # noqa: E402

from facesketch import autotune  # noqa: E402
from facesketch.config import RunConfig  # noqa: E402
from facesketch.distributed import DistInfo  # noqa: E402
from facesketch.registry import create_model, model_spec  # noqa: E402
from facesketch.runtime import Placement, resolve_device  # noqa: E402
from facesketch.steps import STEP_KINDS, step_kind  # noqa: E402
from facesketch.train import train  # noqa: E402


def loop_images_per_s(cfg: RunConfig) -> float:
    result = train(cfg, progress=False)
    with (result.run_dir / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["images_per_s"])


def step_images_per_s(cfg: RunConfig, device: torch.device, channels_last: bool, seconds: float) -> float:
    spec = model_spec(cfg.model)
    place = Placement(device, DistInfo(), channels_last)
    model = place.module(create_model(cfg.model))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    step = STEP_KINDS[step_kind(cfg)](model, cfg=cfg, spec=spec, place=place, autocast=autocast)
    step.start_stage(step.stage_losses(cfg.stages())[0][0], total_steps=1000)
    step.train()
    size = model.image_size
    src, tgt = (place.batch(torch.rand(cfg.batch_size, 3, size, size)) for _ in range(2))
    step(src, tgt)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        step(src, tgt)
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n * cfg.batch_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="conv_ae,unet,fsnet")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--synthetic-n", type=int, default=24, help="pairs of synthetic faces (x 8 views per epoch)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0, help="time per bare-step measurement")
    ap.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = ap.parse_args()
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")   # auto measures afresh
        for name in args.models.split(","):
            base = RunConfig(model=name, direction="photo2sketch", synthetic_n=args.synthetic_n, epochs=args.epochs,
                             batch_size=args.batch_size, device=args.device, runs_dir=str(Path(tmp) / "runs"))
            measured = {}
            for layout in autotune.LAYOUTS:
                cfg = dataclasses.replace(base, layout=layout, name=f"{name}-{layout}")
                loop = loop_images_per_s(cfg)
                step = step_images_per_s(cfg, device, layout == "channels_last", args.seconds)
                measured[layout] = (loop, step)
            auto = loop_images_per_s(dataclasses.replace(base, layout="auto", name=f"{name}-auto"))
            chosen = RunConfig.load(Path(tmp) / "runs" / f"{name}-auto" / "config.yaml").layout_chosen
            best_loop = max(measured, key=lambda k: measured[k][0])
            best_step = max(measured, key=lambda k: measured[k][1])
            rows.append((name, measured, auto, chosen, best_loop, best_step))
    what = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.machine()} ({cpu_flags()}), {torch.get_num_threads()} threads")
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {what}, torch {torch.__version__}, fp32, batch "
             f"{args.batch_size}; loop: {args.synthetic_n} synthetic pairs x 8 views, epoch {args.epochs} of "
             f"{args.epochs}.", "",
             "| model | layout | loop img/s | step img/s | loop / step |", "|---|---|---|---|---|"]
    for name, measured, auto, chosen, best_loop, best_step in rows:
        for layout, (loop, step) in measured.items():
            lines.append(f"| {name} | {layout} | {loop:.1f} | {step:.1f} | {loop / step:.2f} |")
        lines.append(f"| {name} | auto -> {chosen} | {auto:.1f} | | |")
    lines += ["", "Faster layout by the loop / by the bare step / auto's pick: " + "; ".join(
        f"{n} {bl} / {bs} / {c}" for n, _, _, c, bl, bs in rows) + "."]
    print("\n".join(lines))
    if not args.no_readme:
        write_block("loop-bench", lines, "The training loop beside the bare step (`python bench/loop_bench.py`)")


if __name__ == "__main__":
    main()
