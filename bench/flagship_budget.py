"""The flagship's budget on this machine: training time per direction and single-image inference.

Training is timed in the real loop (`facesketch.train.train`: data, 8 views, loss, optimiser, EMA,
per-epoch test loss), `--epochs` epochs of the paper-protocol schedule at the flagship's batch
size, and projected to the full schedule. With `--runs RUN ...` it also reads finished runs'
history.csv (the time each of their epochs took) and states their total.

    python bench/flagship_budget.py --data ../shared/data/cufs          # CUFS paper split
    python bench/flagship_budget.py                                     # synthetic, same sizes
    python bench/flagship_budget.py --runs runs/fsnet-photo2sketch      # add finished runs
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from readme_block import write_block  # noqa: E402
from train_bench import cpu_flags  # noqa: E402

from facesketch.config import RunConfig  # noqa: E402
from facesketch.direction import DIRECTIONS  # noqa: E402
from facesketch.registry import create_model, model_spec  # noqa: E402
from facesketch.train import train  # noqa: E402

MODEL, BATCH = "fsnet", 8
BUDGET_MIN, INFER_MS = 60.0, 50.0


def _history(run: Path) -> list[dict]:
    with (run / "history.csv").open() as f:
        return list(csv.DictReader(f))


def time_training(direction: str, data: Path | None, epochs: int) -> dict:
    """Seconds per epoch in the real loop, test loss included, and the full schedule projected."""
    planned = sum(e for _, e in RunConfig(model=MODEL, direction=direction).stages())
    with tempfile.TemporaryDirectory() as tmp:
        # synthetic stand-in of the paper split's size: 188 pairs, 13 test identities
        cfg = RunConfig(model=MODEL, direction=direction, data=str(data) if data else None, synthetic_n=188,
                        protocol="paper" if data else "random", test_fraction=None if data else 13 / 188,
                        epochs=epochs, batch_size=BATCH, device="cpu", runs_dir=tmp, name="bench")
        t0 = time.perf_counter()
        train(cfg, progress=False)
        wall = time.perf_counter() - t0
        rows = _history(Path(tmp) / "bench")
    loop = [float(r["seconds"]) for r in rows]
    per_epoch = wall / epochs  # the loop, the test loss and the set-up, shared out
    return {"direction": direction, "epochs": epochs, "loop_s": statistics.median(loop),
            "img_s": statistics.median(float(r["images_per_s"]) for r in rows), "per_epoch_s": per_epoch,
            "projected_min": per_epoch * planned / 60, "planned": planned}


def finished_run(run: Path) -> dict:
    rows = _history(run)
    secs = [float(r["seconds"]) for r in rows]
    return {"run": str(run), "epochs": len(rows), "loop_total_min": sum(secs) / 60,
            "median_epoch_s": statistics.median(secs)}


def time_inference(repeats: int = 30) -> dict:
    spec = model_spec(MODEL)
    model = create_model(MODEL).eval()
    x = torch.rand(1, 3, spec.image_size, spec.image_size)
    if spec.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 5):
            t0 = time.perf_counter()
            model(x)
            if i >= 5:
                times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "p90_ms": sorted(times)[int(0.9 * len(times))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="CUFS folder (default: synthetic faces of the same size)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed per direction")
    ap.add_argument("--runs", type=Path, nargs="*", default=[], help="finished run folders to read too")
    ap.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = ap.parse_args()
    rows = [time_training(d, args.data, args.epochs) for d in DIRECTIONS]
    inf = time_inference()
    data = f"CUFS paper split ({args.data})" if args.data else "synthetic faces, 175 train / 13 test pairs"
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({cpu_flags()}), "
             f"{torch.get_num_threads()} threads, torch {torch.__version__}, fp32, batch {BATCH}; {data}.", "",
             "| direction | loop images/s | s per epoch (loop + test loss) | projected full schedule | "
             f"budget {BUDGET_MIN:.0f} min |", "|---|---|---|---|---|"]
    for r in rows:
        ok = "met" if r["projected_min"] <= BUDGET_MIN else "NOT met"
        lines.append(f"| {r['direction']} | {r['img_s']:.1f} | {r['per_epoch_s']:.1f} | "
                     f"{r['projected_min']:.1f} min ({r['planned']} epochs, from {r['epochs']}) | {ok} |")
    ok = "met" if inf["median_ms"] <= INFER_MS else "NOT met"
    lines += ["", f"Single-image inference (batch 1, 256x256): median {inf['median_ms']:.1f} ms, "
              f"90th percentile {inf['p90_ms']:.1f} ms; budget {INFER_MS:.0f} ms: {ok}."]
    if args.runs:
        lines += ["", "| finished run | epochs | training loop, total | median epoch |", "|---|---|---|---|"]
        for run in args.runs:
            f = finished_run(run)
            lines.append(f"| {Path(f['run']).name} | {f['epochs']} | {f['loop_total_min']:.1f} min | "
                         f"{f['median_epoch_s']:.1f} s |")
    print("\n".join(lines))
    if not args.no_readme:
        write_block("flagship-budget", lines, "The flagship's budget (`python bench/flagship_budget.py`)")


if __name__ == "__main__":
    main()
