"""Where the time of one training step goes, PyTorch against Keras/TensorFlow, by oneDNN primitive.

Both frameworks run their convolutions through oneDNN on x86 CPUs. With ONEDNN_VERBOSE=1 oneDNN
logs every primitive it executes with its implementation (e.g. brg_conv_fwd:avx512_core, gemm:jit)
and its time. This script runs a few training steps of one model in each framework (batch 16,
fp32, a fixed random batch; PyTorch in the layout asked for), keeps the last STEPS steps, and sums
the time per (primitive kind, propagation, implementation). "outside oneDNN" is the step's wall
time minus everything oneDNN logged: PyTorch's own kernels (element-wise ops, a transposed conv
PyTorch does not hand to oneDNN, the optimiser) and framework overhead.

    python bench/onednn_compare.py --model conv_ae --keras-python /tmp/tf/bin/python [--layout nchw] [--no-readme]

Writes its tables into bench/README.md (one block per model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

STEPS = 3


def _torch_child(model_name: str, layout: str, batch: int) -> None:
    import torch

    from facesketch.config import RunConfig
    from facesketch.distributed import DistInfo
    from facesketch.registry import create_model, model_spec
    from facesketch.runtime import Placement
    from facesketch.steps import SupervisedStep
    torch.manual_seed(0)
    cfg = RunConfig(model=model_name, direction="photo2sketch")
    place = Placement(torch.device("cpu"), DistInfo(), layout == "channels_last")
    model = place.module(create_model(model_name))
    step = SupervisedStep(model, cfg=cfg, spec=model_spec(model_name), place=place,
                          autocast=torch.autocast("cpu", enabled=False))
    step.start_stage(cfg.stages()[0][0], total_steps=1000)
    step.train()
    size = model.image_size
    x, y = (place.batch(torch.rand(batch, 3, size, size)) for _ in range(2))
    _steps(lambda: step(x, y))


def _keras_child(model_name: str, batch: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import keras
    import numpy as np
    from keras_bench import BUILDERS
    keras.utils.set_random_seed(0)
    model, loss = BUILDERS[model_name](keras)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss=loss)
    x = np.random.rand(batch, *model.input_shape[1:]).astype("float32")
    y = np.random.rand(batch, *model.output_shape[1:]).astype("float32")
    _steps(lambda: model.train_on_batch(x, y))


def _steps(step) -> None:
    """Warm up, then STEPS steps between markers on stdout (oneDNN logs to stdout too)."""
    step()
    step()
    for _ in range(STEPS):
        sys.stdout.flush()
        print("@@step-begin", flush=True)
        t = time.perf_counter()
        step()
        sys.stdout.flush()
        print(f"@@step-end {1000 * (time.perf_counter() - t):.3f}", flush=True)


def parse(text: str) -> tuple[dict, float]:
    """({(kind, prop, impl): ms per step}, wall ms per step) from the marked part of a verbose log."""
    per, wall, inside = defaultdict(float), 0.0, False
    for line in text.splitlines():
        if line.startswith("@@step-begin"):
            inside = True
        elif line.startswith("@@step-end"):
            inside, wall = False, wall + float(line.split()[1])
        elif inside and line.startswith("onednn_verbose") and ",exec," in line:
            f = line.split(",")
            i = f.index("exec")
            kind, impl, prop = f[i + 2], f[i + 3], f[i + 4]
            per[(kind, prop, impl)] += float(f[-1])
    return {k: v / STEPS for k, v in per.items()}, wall / STEPS


def run(cmd: list[str], env: dict) -> tuple[dict, float]:
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])}: {out.stderr.strip().splitlines()[-1:]}")
    return parse(out.stdout)


def table(name: str, per: dict, wall: float) -> list[str]:
    lines = [f"**{name}**: {wall:.0f} ms per step, {sum(per.values()):.0f} ms in oneDNN, "
             f"{wall - sum(per.values()):.0f} ms outside it", "",
             "| primitive | propagation | implementation | ms per step |", "|---|---|---|---|"]
    for (kind, prop, impl), ms in sorted(per.items(), key=lambda kv: -kv[1]):
        if ms >= 0.5:
            lines.append(f"| {kind} | {prop} | {impl} | {ms:.1f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="conv_ae")
    ap.add_argument("--layout", default="both", choices=("nchw", "channels_last", "both"))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--keras-python", help="an interpreter with TensorFlow")
    ap.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "torch":
        return _torch_child(args.model, args.layout, args.batch)
    if args.child == "keras":
        return _keras_child(args.model, args.batch)
    verbose = {"ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "THP_MEM_ALLOC_ENABLE": "1"}
    here = str(Path(__file__).resolve())
    base = ["--model", args.model, "--batch", str(args.batch)]
    import platform

    import torch
    from train_bench import cpu_flags
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({cpu_flags()}), torch "
             f"{torch.__version__}; `{args.model}`, batch {args.batch}, fp32, ONEDNN_VERBOSE=1 (which slows both a "
             f"little), mean of {STEPS} steps after two warm-up steps.", ""]
    for layout in (("nchw", "channels_last") if args.layout == "both" else (args.layout,)):
        per, wall = run([sys.executable, here, "--child", "torch", "--layout", layout, *base], verbose)
        lines += table(f"PyTorch, {layout}", per, wall) + [""]
    if args.keras_python:
        per, wall = run([args.keras_python, here, "--child", "keras", *base], verbose)
        lines += table("Keras (TensorFlow), NHWC", per, wall)
    print("\n".join(lines))
    if not args.no_readme:
        from readme_block import write_block
        write_block(f"onednn-{args.model}", lines, f"Where the step's time goes, by oneDNN primitive: {args.model} "
                    "(`python bench/onednn_compare.py`)")
    print(json.dumps({"model": args.model, "batch": args.batch}))


if __name__ == "__main__":
    main()
