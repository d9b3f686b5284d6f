"""The demo's own runs pinned to fp32 beside --precision auto, from an empty autotune cache.

`facesketch demo` pinned fp32 on the claim that on a short run auto's check (each candidate
timed, then fp32 and bf16 trained QUALITY_STEPS steps from the same weights) costs more than
bf16 can save. Where the CPU has no native bf16, auto has no bf16 to check and the two are
the same run. This bench measures the claim where it matters: each of the demo's learned models,
on the demo's data, split and schedule (facesketch.pipeline.demo_configs), trained once pinned to
fp32 and once with auto from an empty autotune cache (as on a machine's first demo). Its wall
time counts everything train() does, auto's check included; the test metrics say whether the
quicker run also keeps the demo's promise (fsnet beats every baseline on every metric).
The order alternates from model to model (a machine slowing down steadily hits both alike).

    python bench/demo_precision.py [--models fsnet,conv_ae] [--direction photo2sketch] [--no-readme]

Writes its table into bench/README.md, one block per direction.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from facesketch.process import configure_process

configure_process()  # huge pages, as the facesketch command sets them, before torch allocates

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from readme_block import write_block  # noqa: E402
from train_bench import cpu_flags  # noqa: E402

from facesketch import FacesketchError  # noqa: E402
from facesketch.config import RunConfig  # noqa: E402
from facesketch.evaluate import evaluate  # noqa: E402
from facesketch.metrics import ALL_METRICS, HIGHER_IS_BETTER  # noqa: E402
from facesketch.pipeline import BASELINES, DEMO_EPOCHS, demo_configs  # noqa: E402
from facesketch.train import train  # noqa: E402


def timed_run(cfg: RunConfig, cache: Path) -> tuple[float, RunConfig, dict]:
    """(train()'s wall seconds, the saved config with what auto chose, the test metrics), with
    the autotune cache at `cache`."""
    os.environ["XDG_CACHE_HOME"] = str(cache)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):   # the run's own lines are progress, not the table
        result = train(cfg, progress=False)
    seconds = time.perf_counter() - start
    saved = RunConfig.load(result.run_dir / "config.yaml")
    metrics = evaluate(result.run_dir, save_images=False, progress=False)["metrics"]
    return seconds, saved, metrics


def beats(metrics: dict, baseline: dict) -> bool:
    return all(metrics[k] > baseline[k] if k in HIGHER_IS_BETTER else metrics[k] < baseline[k] for k in ALL_METRICS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(DEMO_EPOCHS),
                   help=f"the demo's learned models to run (default: all of them, {','.join(DEMO_EPOCHS)})")
    p.add_argument("--direction", default="photo2sketch", choices=("photo2sketch", "sketch2photo"),
                   help="the direction to train (default: photo2sketch)")
    p.add_argument("--no-readme", action="store_true", help="print the table only; leave bench/README.md as it is")
    args = p.parse_args()
    models = args.models.split(",")
    if unknown := [m for m in models if m not in DEMO_EPOCHS]:
        sys.exit(f"demo_precision: {', '.join(unknown)}: not among the demo's learned models "
                 f"({', '.join(DEMO_EPOCHS)})")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def config(model: str, precision: str) -> RunConfig:
            cfgs = demo_configs(tmp / f"{model}-{precision}", precision=precision)
            return next(c for c in cfgs if c.model == model and c.direction == args.direction)
        baselines = {b: timed_run(config(b, "fp32"), tmp / "cache-baselines")[2] for b in BASELINES}
        for i, model in enumerate(models):
            got = {}
            for precision in (("fp32", "auto") if i % 2 == 0 else ("auto", "fp32")):
                cache = tmp / f"cache-{model}-{precision}"   # empty: auto measures, as on a first demo
                got[precision] = timed_run(config(model, precision), cache)
                seconds, saved, _ = got[precision]
                print(f"{model} {precision}: {seconds:.0f} s ({saved.layout_chosen} {saved.precision_chosen})",
                      file=sys.stderr, flush=True)
                shutil.rmtree(cache, ignore_errors=True)
            rows.append((model, got))
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().machine} ({cpu_flags()}), "
             f"{torch.get_num_threads()} threads, torch {torch.__version__}; the demo's {args.direction} runs "
             f"(facesketch.pipeline.demo_configs), auto from an empty autotune cache.", "",
             "| model | epochs | fp32 s | auto s | auto / fp32 | auto chose | beats every baseline: fp32 / auto | "
             "MAE fp32 / auto | SSIM fp32 / auto |", "|---|---|---|---|---|---|---|---|---|"]
    for model, got in rows:
        (s32, _, m32), (sa, saved, ma) = got["fp32"], got["auto"]
        verdict = " / ".join("yes" if all(beats(m, b) for b in baselines.values()) else "no" for m in (m32, ma))
        lines.append(f"| {model} | {DEMO_EPOCHS[model]} | {s32:.0f} | {sa:.0f} | {sa / s32:.2f} | "
                     f"{saved.layout_chosen} {saved.precision_chosen} | {verdict} | "
                     f"{m32['mae']:.4f} / {ma['mae']:.4f} | {m32['ssim']:.4f} / {ma['ssim']:.4f} |")
    print("\n".join(lines))
    if not args.no_readme:
        write_block(f"demo-precision-{args.direction}", lines,
                    "The demo's runs in fp32 and with auto (`python bench/demo_precision.py`)")


if __name__ == "__main__":
    try:
        main()
    except FacesketchError as e:
        sys.exit(f"demo_precision: {e}")
