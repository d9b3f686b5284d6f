"""The real training loop beside the bare model step, in one run, per model and candidate.

`loop`: `facesketch.train.train` on built-in synthetic faces, all 8 views, the model's own loss,
optimiser and step: what `facesketch train` does, with data loading, views and logging. Its
images/s is the median of its epochs after the first (which warms up), as history.csv records them.
`step`: the run's step kind on one random batch held in memory, timed alone in the same
process after WARMUP_STEPS untimed steps: what a micro-bench measures.
Both measure a trained-in state. The heap of a run still grows in its first steps (dense_ae: page
faults costing 0.8-1.7 s in the first two steps and in the odd step of epoch 2), so the loop's
default is 4 epochs (the median of epochs 2-4) and the step's timing starts after 3 steps. And the
loop's epochs are whole batches by default (20 pairs: 16 train x 8 views = 8 batches of 16): a
last batch of 8 costs dense_ae a whole step (its step is the work on its 425M weights, whatever
the batch), so 13 training pairs (104 views, 7 steps for 6.5 batches' images) made its loop 7%
slower per image than its step for that alone. A --synthetic-n or --batch-size that leaves a
partial batch is named in the output. Loop and step are measured --rounds times per candidate,
alternating (loop then step, then step then loop), and the table gives their medians: this
shared machine's speed drifts by more than the 10% the two should agree within.
`fresh`: bench/train_bench.py's measurement, a bare step in a fresh subprocess (how the earlier
bench ranked the layouts).
Each candidate of `--layout auto --precision auto` on this machine (layouts x fp32, and bf16
where native) gets all three; the ratio loop/step says how much of the loop the step explains.
`auto` is a run with the defaults, measured fresh (no cache): the choice it made and its speed.
With --keras-python, the same models built in Keras (bench/keras_bench.py) are timed in the same
run, so the default row can be read against Keras.

On CUDA the same runs use the GPU (bench/gpu.sh). Writes its table into bench/README.md.

    python bench/loop_bench.py [--models conv_ae,fsnet] [--device cpu] [--epochs 4] [--keras-python tf/bin/python]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from facesketch.process import configure_process, kept_heap

configure_process()  # huge pages, as the facesketch command sets them, before torch allocates

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from readme_block import write_block  # noqa: E402
from train_bench import cpu_flags, run, run_keras  # noqa: E402

from facesketch import autotune  # noqa: E402
from facesketch.config import RunConfig  # noqa: E402
from facesketch.distributed import DistInfo  # noqa: E402
from facesketch.registry import create_model, model_spec  # noqa: E402
from facesketch.runsetup import load_split  # noqa: E402
from facesketch.runtime import Placement, resolve_device  # noqa: E402
from facesketch.steps import STEP_KINDS, step_kind  # noqa: E402
from facesketch.train import train  # noqa: E402

WARMUP_STEPS = 3   # untimed steps before the bare step's timing: the heap has grown by then


def loop_run(cfg: RunConfig) -> tuple[float, RunConfig]:
    """(the median images/s of the run's epochs after the first, which warms up; the run's saved
    config, with what auto chose). The run folder is deleted: dense_ae's checkpoints are 5 GB a run."""
    with contextlib.redirect_stdout(sys.stderr):   # its 'layout: ...' line is progress, not the table
        result = train(cfg, progress=False)
    with (result.run_dir / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    saved = RunConfig.load(result.run_dir / "config.yaml")
    shutil.rmtree(result.run_dir)
    return statistics.median(float(r["images_per_s"]) for r in rows[1:] or rows), saved


def step_images_per_s(cfg: RunConfig, device: torch.device, channels_last: bool, seconds: float) -> float:
    with kept_heap():     # as facesketch.train runs its loop (src/facesketch/process.py)
        return _step_images_per_s(cfg, device, channels_last, seconds)


def bare_step(cfg: RunConfig, device: torch.device, channels_last: bool):
    """(the run's step kind on a fresh model, in training mode; one random batch (src, tgt) on the device)."""
    place = Placement(device, DistInfo(), channels_last)
    model = place.module(create_model(cfg.model))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")  # as asked
    step = STEP_KINDS[step_kind(cfg)](model, cfg=cfg, spec=model_spec(cfg.model), place=place, autocast=autocast)
    step.start_stage(step.stage_losses(cfg.stages())[0][0], total_steps=1000)
    step.train()
    size = model.image_size
    return step, *(place.batch(torch.rand(cfg.batch_size, 3, size, size)) for _ in range(2))


def _step_images_per_s(cfg: RunConfig, device: torch.device, channels_last: bool, seconds: float) -> float:
    step, src, tgt = bare_step(cfg, device, channels_last)
    for _ in range(WARMUP_STEPS):
        step(src, tgt)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        step(src, tgt)
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n * cfg.batch_size / (time.perf_counter() - t0)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dense_ae,conv_ae,hybrid_ae,fsnet")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--synthetic-n", type=_positive_int, default=20,
                    help="pairs of synthetic faces; 80%% train, x 8 views per epoch (20: 128 views, whole batches of 16)")
    ap.add_argument("--epochs", type=_positive_int, default=4, help="epochs per loop run; the first is not counted")
    ap.add_argument("--seconds", type=float, default=10.0, help="time per bare-step measurement")
    ap.add_argument("--rounds", type=_positive_int, default=3,
                    help="loop and step measurements per candidate, alternating; the table has their medians")
    ap.add_argument("--keras-python", help="a Python interpreter with TensorFlow: time the Keras builds too, "
                    "once before and once after each model's candidates (the table has their mean)")
    ap.add_argument("--keras-seconds", type=float, default=None, help="time per Keras measurement (default: --seconds)")
    ap.add_argument("--candidates", default="", help="only these layout:precision pairs, comma-separated "
                    "(e.g. channels_last:fp32,nchw:fp32); default: all that auto chooses among")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-subprocess step (train_bench's way)")
    ap.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = ap.parse_args()
    device = resolve_device(args.device)
    only = {tuple(c.split(":")) for c in args.candidates.split(",") if c}
    known = set(autotune.candidates("auto", "auto", device))
    if only - known:
        ap.error(f"--candidates: {', '.join(':'.join(c) for c in sorted(only - known))} is not among this "
                 f"device's candidates ({', '.join(':'.join(c) for c in sorted(known))})")
    rows, keras_runs = [], {}

    def time_keras(name):
        if args.keras_python:
            for k in run_keras(args.keras_python, name, args.keras_seconds or args.seconds):
                if k.get("jit_compile") == "auto" and "error" not in k:
                    keras_runs.setdefault(name, []).append(k)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")   # auto measures afresh
        # the runs' split (the same for every model): its faces drawn once, into this cache, for all the runs
        split = load_split(RunConfig(model="conv_ae", direction="photo2sketch", synthetic_n=args.synthetic_n))
        views = len(split.train) * len(split.train_views)
        partial = views % args.batch_size
        if partial:
            print(f"note: {views} training views per epoch leave a last batch of {partial} (--batch-size "
                  f"{args.batch_size}): where a step costs the same whatever its batch, the loop's images/s "
                  f"falls below the step's by that share", flush=True)
        for name in args.models.split(","):
            base = RunConfig(model=name, direction="photo2sketch", synthetic_n=args.synthetic_n, epochs=args.epochs,
                             batch_size=args.batch_size, device=args.device, runs_dir=str(Path(tmp) / "runs"))
            convolutional = any(isinstance(m, torch.nn.Conv2d) for m in create_model(name).modules())
            measured = {}
            time_keras(name)     # before and after: the machine drifts during a model's candidates
            for layout, precision in autotune.candidates("auto", "auto", device, convolutional=convolutional):
                if only and (layout, precision) not in only:
                    continue
                loops, steps = [], []
                for r in range(args.rounds):
                    cfg = dataclasses.replace(base, layout=layout, precision=precision,
                                              name=f"{name}-{layout}-{precision}-{r}")
                    # loop then step, then step then loop: a machine slowing down steadily hits both alike
                    for what in (("loop", "step") if r % 2 == 0 else ("step", "loop")):
                        if what == "loop":
                            loops.append(loop_run(cfg)[0])
                        else:
                            steps.append(step_images_per_s(cfg, device, layout == "channels_last", args.seconds))
                fresh = None if args.no_fresh or device.type != "cpu" else run(
                    {"kind": "train", "model": name, "batch": args.batch_size, "layout": layout,
                     "precision": precision, "seconds": args.seconds}).get("images_per_s")
                measured[(layout, precision)] = (statistics.median(loops), statistics.median(steps), fresh,
                                                 [lo / st for lo, st in zip(loops, steps)])
                print(f"{name} {layout} {precision}: loop {' '.join(f'{x:.1f}' for x in loops)} img/s, step "
                      f"{' '.join(f'{x:.1f}' for x in steps)} img/s"
                      + (f", fresh-process step {fresh:.1f} img/s" if fresh else ""), file=sys.stderr, flush=True)
            auto, saved = loop_run(dataclasses.replace(base, name=f"{name}-auto"))
            rows.append((name, measured, auto, (saved.layout_chosen, saved.precision_chosen)))
            print(f"{name} auto -> {' '.join(rows[-1][3])}: loop {auto:.1f} img/s", file=sys.stderr, flush=True)
            time_keras(name)
    keras = {name: {**ks[0], "images_per_s": statistics.mean(k["images_per_s"] for k in ks),
                    "each": [k["images_per_s"] for k in ks]} for name, ks in keras_runs.items()}
    what = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.machine()} ({cpu_flags()}), {torch.get_num_threads()} threads")
    versions = next((f"; Keras: TensorFlow {k['tensorflow']}, Keras {k['keras']}, jit_compile auto, the same "
                     "batch, fp32" for k in keras.values()), "")
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {what}, torch {torch.__version__}, batch {args.batch_size}; "
             f"loop: {args.synthetic_n} synthetic pairs ({len(split.train)} train x 8 views = {views} per epoch"
             f"{f', the last batch {partial}' if partial else ', whole batches'}), {args.epochs} epochs "
             f"(the median of epochs 2 on); step: after {WARMUP_STEPS} untimed steps; "
             f"{args.rounds} rounds of loop and step ({args.seconds:g} s) per candidate, alternating, medians"
             f"{versions}.", "",
             "| model | layout | precision | loop img/s | step img/s | loop / step | each round's loop / step | "
             "fresh-process step img/s | loop / Keras |", "|---|---|---|---|---|---|---|---|---|"]

    def vs_keras(name, ips):
        return f"{ips / keras[name]['images_per_s']:.2f}x" if name in keras else ""
    for name, measured, auto, chosen in rows:
        for (layout, precision), (loop, step, fresh, ratios) in measured.items():
            lines.append(f"| {name} | {layout} | {precision} | {loop:.1f} | {step:.1f} | {loop / step:.2f} | "
                         f"{' '.join(f'{x:.2f}' for x in ratios)} | "
                         + (f"{fresh:.1f}" if fresh else "") + f" | {vs_keras(name, loop)} |")
        vs = vs_keras(name, auto)
        lines.append(f"| {name} | auto -> {chosen[0]} | {chosen[1]} | **{auto:.1f}** | | | | | "
                     + (f"**{vs}** |" if vs else " |"))
        if name in keras:
            each = " and ".join(f"{x:.1f}" for x in keras[name]["each"])
            lines.append(f"| {name} | Keras (mean of {each}, before and after) | fp32 | "
                         f"{keras[name]['images_per_s']:.1f} | | | | | 1.00x |")

    ratios = [m[0] / m[1] for _, ms, _, _ in rows for m in ms.values()]
    lines += ["", f"Loop and step agree within 10% (median over the rounds) in "
              f"{sum(abs(r - 1) <= 0.10 for r in ratios)} of {len(ratios)} rows; the ratios run from "
              f"{min(ratios):.2f} to {max(ratios):.2f}."]

    def best(measured, k):
        return " ".join(max(measured, key=lambda c: measured[c][k] or 0))
    lines += ["", "Fastest by the loop / by the in-process step / by the fresh-process step / auto's pick: " + "; ".join(
        f"{n}: {best(m, 0)} / {best(m, 1)} / {best(m, 2) if not args.no_fresh else '-'} / {' '.join(c)}"
        for n, m, _, c in rows) + "."]
    print("\n".join(lines))
    if not args.no_readme:
        write_block("loop-bench", lines, "The training loop beside the bare step (`python bench/loop_bench.py`)")


if __name__ == "__main__":
    from facesketch import FacesketchError
    try:
        main()
    except FacesketchError as e:   # a bad option or data: one line, not a traceback
        sys.exit(f"loop_bench.py: {e}")
